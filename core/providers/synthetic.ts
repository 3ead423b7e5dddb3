// PLACEHOLDER (replaced by the ingest helper): the offline synthetic provider.
import type { Config } from '../config.ts';
import type { ProviderOptions } from './index.ts';
import type { PriceProvider } from './types.ts';
export function createSyntheticProvider(_config: Config, _opts: ProviderOptions): PriceProvider {
  throw new Error('synthetic provider not built yet');
}
