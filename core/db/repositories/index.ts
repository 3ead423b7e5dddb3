/**
 * Every repository, built over one knex instance. Repositories own all SQL: processors and
 * route handlers call these and never import knex. Add one line per new repository.
 */
import type { Knex } from '../knex.ts';
import { createAnalyticsRepository } from './analytics.ts';
import { createAuthRepository } from './auth.ts';
import { createBarsRepository } from './bars.ts';
import { createBooksRepository } from './books.ts';
import { createCalendarRepository } from './calendar.ts';
import { createCheckpointsRepository } from './checkpoints.ts';
import { createClientsRepository } from './clients.ts';
import { createFxRepository } from './fx.ts';
import { createGeneratorRepository } from './generator.ts';
import { createIngestRepository } from './ingest.ts';
import { createLedgerRepository } from './ledger.ts';
import { createMarginRepository } from './margin.ts';
import { createPlatformRepository } from './platform.ts';
import { createProviderBarsRepository } from './provider-bars.ts';
import { createQuarantineRepository } from './quarantine.ts';
import { createReportsRepository } from './reports.ts';
import { createRetentionRepository } from './retention.ts';
import { createRollupsRepository } from './rollups.ts';
import { createSecuritiesRepository } from './securities.ts';
import { createTicksRepository } from './ticks.ts';
import { createTradingRepository } from './trading.ts';
import { createWatchlistRepository } from './watchlist.ts';

export function createRepositories(db: Knex) {
  return {
    analytics: createAnalyticsRepository(db),
    auth: createAuthRepository(db),
    bars: createBarsRepository(db),
    books: createBooksRepository(db),
    calendar: createCalendarRepository(db),
    checkpoints: createCheckpointsRepository(db),
    clients: createClientsRepository(db),
    fx: createFxRepository(db),
    generator: createGeneratorRepository(db),
    ingest: createIngestRepository(db),
    ledger: createLedgerRepository(db),
    margin: createMarginRepository(db),
    platform: createPlatformRepository(db),
    providerBars: createProviderBarsRepository(db),
    quarantine: createQuarantineRepository(db),
    reports: createReportsRepository(db),
    retention: createRetentionRepository(db),
    rollups: createRollupsRepository(db),
    securities: createSecuritiesRepository(db),
    ticks: createTicksRepository(db),
    trading: createTradingRepository(db),
    watchlist: createWatchlistRepository(db),
  };
}

export type Repositories = ReturnType<typeof createRepositories>;
