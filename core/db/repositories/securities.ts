/**
 * Reads of the security master. Writes belong to the generator and reference-data jobs.
 */
import type { Knex } from '../knex.ts';

/** What ingest needs of a security (its currency and price provider). */
export interface IngestSecurity {
  id: number;
  ticker: string;
  currency: string;
  /** securities.price_provider (not checked against the known provider names here). */
  provider: string | null;
  status: string;
}

export interface SecurityRecord {
  /** Surrogate key every fact table references. */
  id: number;
  /** Business id, e.g. 'SEC-0001'. */
  securityId: string;
  ticker: string;
  name: string;
  securityType: string;
  assetClass: string;
  currency: string;
  exchange: string;
  status: string;
}

interface SecurityRow {
  id: number;
  security_id: string;
  ticker: string;
  security_name: string;
  security_type: string;
  asset_class: string;
  currency: string;
  exchange: string;
  status: string;
}

const columns = [
  'id',
  'security_id',
  'ticker',
  'security_name',
  'security_type',
  'asset_class',
  'currency',
  'exchange',
  'status',
] as const;

const toSecurity = (r: SecurityRow): SecurityRecord => ({
  id: r.id,
  securityId: r.security_id,
  ticker: r.ticker,
  name: r.security_name,
  securityType: r.security_type,
  assetClass: r.asset_class,
  currency: r.currency,
  exchange: r.exchange,
  status: r.status,
});

export function createSecuritiesRepository(db: Knex) {
  return {
    /** The security with this exact ticker (tickers are stored upper-case), or undefined. */
    async findBySymbol(ticker: string): Promise<SecurityRecord | undefined> {
      const row = (await db('securities').select(columns).where({ ticker }).first()) as
        SecurityRow | undefined;
      return row ? toSecurity(row) : undefined;
    },

    /** Surrogate ids of the given tickers; tickers not found are absent from the map. */
    async idsForTickers(tickers: string[]): Promise<Map<string, number>> {
      const rows = await db<SecurityRow>('securities').select('id', 'ticker').whereIn('ticker', tickers);
      return new Map(rows.map((r) => [r.ticker, r.id]));
    },

    /** Securities by ticker with what ingest needs (currency, provider); unknown tickers are absent. */
    async forIngest(tickers: readonly string[]): Promise<Map<string, IngestSecurity>> {
      const rows = await db('securities')
        .select<
          { id: number; ticker: string; currency: string; price_provider: string | null; status: string }[]
        >('id', 'ticker', 'currency', 'price_provider', 'status')
        .whereIn('ticker', tickers as string[]);
      return new Map(
        rows.map((r) => [
          r.ticker,
          { id: r.id, ticker: r.ticker, currency: r.currency, provider: r.price_provider, status: r.status },
        ]),
      );
    },

    /** Distinct currencies of the security master (what fx.rates loads by default). */
    async currenciesInUse(): Promise<string[]> {
      const rows = await db('securities').distinct<{ currency: string }[]>('currency').orderBy('currency');
      return rows.map((r) => r.currency);
    },
  };
}

export type SecuritiesRepository = ReturnType<typeof createSecuritiesRepository>;
