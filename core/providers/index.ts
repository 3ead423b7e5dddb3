/**
 * Builds the configured providers and the fallback chain between them. The chain only ever moves
 * between real providers: a real security whose providers all fail fails its job (with the cause)
 * rather than quietly storing generated prices.
 */
import type { Config } from '../config.ts';
import type { Clock } from '../deps.ts';
import { createAlphaVantageProvider } from './alphavantage.ts';
import { createSyntheticProvider } from './synthetic.ts';
import {
  ProviderError,
  ProviderRateLimitError,
  ProviderTransientError,
  type PriceProvider,
  type ProviderName,
  type ProviderSet,
} from './types.ts';
import { createYahooProvider } from './yahoo.ts';

export interface ProviderOptions {
  /** Injected fetch for tests (a local HTTP server's, or a function); default the global fetch. */
  fetch?: typeof fetch;
  clock?: Clock;
}

export function createProviders(config: Config, opts: ProviderOptions = {}): ProviderSet {
  const built = new Map<ProviderName, PriceProvider>();
  const make = (name: ProviderName): PriceProvider => {
    switch (name) {
      case 'synthetic':
        return createSyntheticProvider(config, opts);
      case 'yahoo':
        return createYahooProvider(config, opts);
      case 'alphavantage':
        return createAlphaVantageProvider(config, opts);
    }
  };
  // Built on first use: a missing Alpha Vantage key only matters to securities that use it.
  const get = (name: ProviderName): PriceProvider => {
    let p = built.get(name);
    if (!p) {
      p = make(name);
      built.set(name, p);
    }
    return p;
  };
  const chainFor = (primary: ProviderName): PriceProvider[] => {
    if (primary === 'synthetic') return [get('synthetic')];
    const order = [primary, ...config.providers.fallback.filter((p) => p !== primary)];
    return order.map(get);
  };
  return {
    get,
    chainFor,
    async withFallback(primary, call, onFallback) {
      const chain = chainFor(primary);
      const errors: ProviderError[] = [];
      for (const p of chain) {
        try {
          return { provider: p.name, value: await call(p) };
        } catch (err) {
          const e =
            err instanceof ProviderError
              ? err
              : new ProviderTransientError(p.name, err instanceof Error ? err.message : String(err));
          errors.push(e);
          if (p !== chain.at(-1)) onFallback?.(p.name, e);
        }
      }
      // Only the primary's throttle pauses the caller's queue (the lane is the primary's); a
      // throttled fallback makes the failure transient, so the job retries with backoff rather
      // than failing on the primary's error or pausing a lane for another provider's quota.
      const primaryError = errors[0]!;
      if (primaryError instanceof ProviderRateLimitError) throw primaryError;
      const throttled = errors.find((e): e is ProviderRateLimitError => e instanceof ProviderRateLimitError);
      if (throttled)
        throw new ProviderTransientError(
          primaryError.provider,
          `${primaryError.message.replace(`${primaryError.provider}: `, '')}; fallback ${throttled.message}`,
          primaryError.raw,
        );
      throw primaryError;
    },
  };
}

export * from './types.ts';
