// PLACEHOLDER (replaced by the providers helper): Yahoo Finance through yahoo-finance2.
import type { Config } from '../config.ts';
import type { ProviderOptions } from './index.ts';
import type { PriceProvider } from './types.ts';
export function createYahooProvider(_config: Config, _opts: ProviderOptions): PriceProvider {
  throw new Error('yahoo provider not built yet');
}
