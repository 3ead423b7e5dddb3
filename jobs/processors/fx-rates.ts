/**
 * fx.rates: daily rates of every currency in the security master (or the payload's) to the base
 * currency, from..to (default: the last 5 days through today, New York date).
 *
 * Each currency C is asked of the provider as the direct pair C→base (Yahoo `EURUSD=X`, Alpha
 * Vantage FX_DAILY, synthetic); when the provider does not know that pair (a permanent error),
 * the inverse base→C is asked and stored as its reciprocal, computed in numeric by PostgreSQL.
 * Crosses between non-base currencies are then triangulated through the base in numeric
 * (A→B = (A→base) / (B→base), e.g. EUR→JPY from EURUSD and JPYUSD), never through binary floats.
 * Bad rates are quarantined; the rest load. Upserts on (from, to, date), so reruns change
 * nothing. A currency the provider cannot serve at all is reported (and logged) without failing
 * the others; throttling and transient faults fail the job so the queue retries it.
 */
import { UnrecoverableError } from 'bullmq';
import { addDays, isValidDate, sessionDateOf } from '../../core/calendar/nyse.ts';
import type { Deps } from '../../core/deps.ts';
import type { FxUpsert } from '../../core/db/repositories/fx.ts';
import { decimalText, quarantineRows } from '../../core/ingest/load.ts';
import { validateFxRates } from '../../core/ingest/validate.ts';
import { ProviderError, type ProviderName } from '../../core/providers/types.ts';
import type { JobPayload } from '../catalogue.ts';
import type { JobContext } from '../types.ts';

const JOB = 'fx.rates';
/** Source of triangulated cross rates in fx_rates. */
export const TRIANGULATED = 'triangulated';

export interface FxRatesResult {
  base: string;
  from: string;
  to: string;
  currencies: string[];
  direct: { inserted: number; updated: number; unchanged: number };
  /** Currencies stored from the inverse pair (base→C), reciprocated. */
  inverted: string[];
  crosses: { inserted: number; updated: number; unchanged: number };
  duplicates: number;
  quarantined: number;
  failed: { currency: string; error: string }[];
}

export async function fxRates(
  deps: Deps,
  payload: JobPayload<'fx.rates'>,
  ctx: JobContext,
): Promise<FxRatesResult> {
  const base = deps.config.market.baseCurrency;
  const now = deps.clock.now();
  const today = sessionDateOf(now);
  const from = payload.from ?? addDays(today, -5);
  const to = payload.to ?? today;
  for (const [field, d] of [
    ['from', from],
    ['to', to],
  ] as const)
    if (!isValidDate(d)) throw new UnrecoverableError(`${field}: ${d} is not a calendar date`);
  if (to < from) throw new UnrecoverableError(`to: ${to} is before from ${from}`);
  const currencies = [...new Set(payload.currencies ?? (await deps.repos.securities.currenciesInUse()))]
    .filter((c) => c !== base)
    .sort();
  const primary: ProviderName = payload.provider ?? deps.config.market.provider;
  const result: FxRatesResult = {
    base,
    from,
    to,
    currencies,
    direct: { inserted: 0, updated: 0, unchanged: 0 },
    inverted: [],
    crosses: { inserted: 0, updated: 0, unchanged: 0 },
    duplicates: 0,
    quarantined: 0,
    failed: [],
  };
  await ctx.log(`fx ${from}..${to}: ${currencies.length} currencies to ${base} via ${primary}`);
  const meta = (source: string, pair: string) => ({ source, jobName: JOB, jobId: ctx.id, symbol: pair });
  const onFallback = (p: ProviderName, err: ProviderError): void =>
    void ctx.log(`${p} failed (${err.message}); trying the next provider`);
  /** An error or throttle body that came with a provider failure goes to the quarantine too. */
  const quarantineError = async (err: unknown, pair: string): Promise<void> => {
    if (err instanceof ProviderError && err.raw !== undefined)
      result.quarantined += await deps.repos.quarantine.insert([
        {
          ...meta(err.provider, pair),
          entity: 'response',
          reason: `error_body: ${err.message}`,
          raw: err.raw,
        },
      ]);
  };

  for (const [i, ccy] of currencies.entries()) {
    let invert = false;
    let fetched;
    try {
      fetched = await deps.providers.withFallback(primary, (p) => p.fxDaily(ccy, base, from, to), onFallback);
    } catch (err) {
      await quarantineError(err, `${ccy}${base}`);
      if (!(err instanceof ProviderError) || err.kind !== 'permanent') throw err;
      await ctx.log(`${ccy}${base}: ${err.message}; trying ${base}${ccy}`);
      try {
        fetched = await deps.providers.withFallback(
          primary,
          (p) => p.fxDaily(base, ccy, from, to),
          onFallback,
        );
        invert = true;
      } catch (err2) {
        await quarantineError(err2, `${base}${ccy}`);
        if (!(err2 instanceof ProviderError) || err2.kind !== 'permanent') throw err2;
        result.failed.push({ currency: ccy, error: err2.message });
        await ctx.log(`${ccy}: no rate from any provider (${err2.message})`);
        await ctx.progress(((i + 1) / currencies.length) * 90);
        continue;
      }
    }
    const pair = invert ? `${base}${ccy}` : `${ccy}${base}`;
    const v = validateFxRates(fetched.value, { pair, now });
    const rows: FxUpsert[] = v.accepted.map((r) => ({
      from: ccy,
      to: base,
      date: r.date,
      rate: decimalText(r.rate),
      invert,
      source: fetched.provider,
    }));
    const res = await deps.repos.fx.upsertRates(
      rows,
      quarantineRows(v.rejected, meta(fetched.provider, pair)),
    );
    result.direct.inserted += res.inserted;
    result.direct.updated += res.updated;
    result.direct.unchanged += res.unchanged;
    result.duplicates += v.duplicates;
    result.quarantined += res.quarantined;
    if (invert) result.inverted.push(ccy);
    await ctx.log(
      `${ccy}→${base} via ${fetched.provider}${invert ? ` (reciprocal of ${pair})` : ''}: ${res.inserted} new, ${res.updated} revised, ${res.unchanged} unchanged, ${res.quarantined} quarantined`,
    );
    await ctx.progress(((i + 1) / currencies.length) * 90);
  }

  if (currencies.length > 1) {
    result.crosses = await deps.repos.fx.triangulate(base, currencies, from, to, TRIANGULATED);
    await ctx.log(
      `crosses among ${currencies.join(', ')}: ${result.crosses.inserted} new, ${result.crosses.updated} revised, ${result.crosses.unchanged} unchanged`,
    );
  }
  await ctx.progress(100);
  if (currencies.length > 0 && result.failed.length === currencies.length)
    throw new UnrecoverableError(
      `currencies: no provider served any of ${currencies.join(', ')} (${result.failed[0]?.error ?? ''})`,
    );
  return result;
}
