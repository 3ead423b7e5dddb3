// PLACEHOLDER (replaced by the providers helper): Alpha Vantage through alphavantage.
import type { Config } from '../config.ts';
import type { ProviderOptions } from './index.ts';
import type { PriceProvider } from './types.ts';
export function createAlphaVantageProvider(_config: Config, _opts: ProviderOptions): PriceProvider {
  throw new Error('alphavantage provider not built yet');
}
