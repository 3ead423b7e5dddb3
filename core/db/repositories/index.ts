/**
 * Every repository, built over one knex instance. Repositories own all SQL: processors and
 * route handlers call these and never import knex. Add one line per new repository.
 */
import type { Knex } from '../knex.ts';
import { createAnalyticsRepository } from './analytics.ts';
import { createAuthRepository } from './auth.ts';
import { createBarsRepository } from './bars.ts';
import { createCalendarRepository } from './calendar.ts';
import { createCheckpointsRepository } from './checkpoints.ts';
import { createGeneratorRepository } from './generator.ts';
import { createMarketRepository } from './market.ts';
import { createRetentionRepository } from './retention.ts';
import { createRollupsRepository } from './rollups.ts';
import { createSecuritiesRepository } from './securities.ts';
import { createWatchlistRepository } from './watchlist.ts';

export function createRepositories(db: Knex) {
  return {
    analytics: createAnalyticsRepository(db),
    auth: createAuthRepository(db),
    bars: createBarsRepository(db),
    calendar: createCalendarRepository(db),
    checkpoints: createCheckpointsRepository(db),
    generator: createGeneratorRepository(db),
    market: createMarketRepository(db),
    retention: createRetentionRepository(db),
    rollups: createRollupsRepository(db),
    securities: createSecuritiesRepository(db),
    watchlist: createWatchlistRepository(db),
  };
}

export type Repositories = ReturnType<typeof createRepositories>;
