/**
 * The fallback chain with the real clients behind it (createProviders + the local provider
 * server): a failing primary hands over to the next real provider, synthetic is never part of a
 * real security's chain, and when the primary is throttled its rate-limit error comes back so
 * the queue waits instead of failing the job (a throttled fallback alone makes it a retry).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createProviders } from '../core/providers/index.ts';
import {
  type ProviderError,
  ProviderPermanentError,
  ProviderRateLimitError,
  ProviderTransientError,
  type ProviderName,
} from '../core/providers/types.ts';
import { respond, startProviderServer, type ProviderServer } from './provider-server.ts';
import { testConfig } from './support.ts';

let server: ProviderServer;

const providers = (overrides: Record<string, string> = {}): ReturnType<typeof createProviders> =>
  createProviders(
    testConfig({
      ALPHAVANTAGE_API_KEY: 'CHAINKEY',
      PRICE_PROVIDER_FALLBACK: 'yahoo,alphavantage',
      PROVIDER_TIMEOUT_MS: '300',
      ...overrides,
    }),
    { fetch: server.fetch },
  );

const daily = (p: {
  daily: (s: string, f: string, t: string) => Promise<{ bars: { date: string; close: number | null }[] }>;
}) => p.daily('AAPL', '2020-08-31', '2020-09-02');

beforeAll(async () => {
  server = await startProviderServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.reset();
});

describe('provider chain', () => {
  it('orders the primary first, then the configured real fallbacks, never synthetic', () => {
    const set = providers();
    const names = (primary: ProviderName): string[] => set.chainFor(primary).map((p) => p.name);
    expect(names('yahoo')).toEqual(['yahoo', 'alphavantage']);
    expect(names('alphavantage')).toEqual(['alphavantage', 'yahoo']);
    const yahooOnly = providers({ PRICE_PROVIDER_FALLBACK: 'yahoo' });
    expect(yahooOnly.chainFor('yahoo').map((p) => p.name)).toEqual(['yahoo']);
    expect(yahooOnly.chainFor('alphavantage').map((p) => p.name)).toEqual(['alphavantage', 'yahoo']);
  });

  it('a failing primary (HTTP 500) falls back to the next real provider, which parses its data', async () => {
    const set = providers();
    const steps: [ProviderName, ProviderError][] = [];
    server.script('yahoo-chart', respond.serverError(500));
    const r = await set.withFallback('yahoo', daily, (from, err) => steps.push([from, err]));
    expect(r.provider).toBe('alphavantage');
    expect(r.value.bars.map((b) => [b.date, b.close])).toEqual([
      ['2020-08-31', 129.04],
      ['2020-09-01', 134.18],
      ['2020-09-02', 131.4],
    ]);
    expect(steps).toHaveLength(1);
    expect(steps[0]![0]).toBe('yahoo');
    expect(steps[0]![1]).toBeInstanceOf(ProviderTransientError);
    expect(steps[0]![1].message).toMatch(/HTTP 500/);
    expect(server.requests.map((r) => r.provider)).toEqual(['yahoo', 'alphavantage']);
  });

  it('a throttled or timed-out or unknown-symbol primary falls back too', async () => {
    const set = providers();
    server.script('alphavantage', respond.avNote());
    await expect(set.withFallback('alphavantage', daily)).resolves.toMatchObject({ provider: 'yahoo' });

    server.script('alphavantage', respond.hang());
    await expect(set.withFallback('alphavantage', daily)).resolves.toMatchObject({ provider: 'yahoo' });

    server.script('yahoo-chart', respond.yahooNotFound());
    await expect(set.withFallback('yahoo', daily)).resolves.toMatchObject({ provider: 'alphavantage' });
  });

  it('a healthy primary is the only provider asked', async () => {
    const r = await providers().withFallback('yahoo', (p) => p.quote('AAPL'));
    expect(r).toMatchObject({ provider: 'yahoo', value: { price: 244.6, currency: 'USD' } });
    expect(server.requests.every((q) => q.provider === 'yahoo')).toBe(true);
  });

  it('throttled everywhere → the rate-limit error, so the queue waits', async () => {
    server.script('yahoo-chart', respond.rateLimited(30));
    server.script('alphavantage', respond.avNote());
    const err = await providers()
      .withFallback('yahoo', daily)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderRateLimitError);
    expect((err as ProviderRateLimitError).provider).toBe('yahoo');
    expect((err as ProviderRateLimitError).retryAfterMs).toBe(30_000);
    expect(server.pendingScripts()).toBe(0);
  });

  it("a broken primary and a throttled fallback → a transient error of the primary's: retry, don't pause its lane", async () => {
    server.script('yahoo-chart', respond.serverError(503));
    server.script('alphavantage', respond.avInformation());
    const err = await providers()
      .withFallback('yahoo', daily)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderTransientError);
    expect((err as ProviderError).provider).toBe('yahoo');
    expect((err as Error).message).toMatch(/HTTP 503.*fallback alphavantage/);
  });

  it("every real provider failing fails the call with the primary's cause: no generated prices", async () => {
    server.script('yahoo-chart', respond.yahooInvalidChart());
    server.script('alphavantage', respond.avErrorMessage('TIME_SERIES_DAILY_ADJUSTED'));
    const err = await providers()
      .withFallback('yahoo', daily)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderPermanentError);
    expect((err as ProviderError).provider).toBe('yahoo');
    expect((err as Error).message).toMatch(/failed validation.*\/meta\/currency/);
    expect(server.requests.map((r) => r.provider)).toEqual(['yahoo', 'alphavantage']);
  });

  it("a fallback without an API key is skipped with its cause, the primary's error is reported", async () => {
    server.script('yahoo-chart', respond.serverError(502));
    const steps: string[] = [];
    const err = await providers({ ALPHAVANTAGE_API_KEY: '' })
      .withFallback('yahoo', daily, (from, e) => steps.push(`${from}: ${e.message}`))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderTransientError);
    expect((err as Error).message).toMatch(/^yahoo: HTTP 502/);
    expect(steps).toEqual([expect.stringMatching(/^yahoo: yahoo: HTTP 502/)]);
    expect(server.requests.map((r) => r.provider)).toEqual(['yahoo']);
  });
});
