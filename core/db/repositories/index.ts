/**
 * Every repository, built over one knex instance. Repositories own all SQL: processors and
 * route handlers call these and never import knex. Add one line per new repository.
 */
import type { Knex } from '../knex.ts';
import { createAuthRepository } from './auth.ts';
import { createBarsRepository } from './bars.ts';
import { createCalendarRepository } from './calendar.ts';
import { createCheckpointsRepository } from './checkpoints.ts';
import { createGeneratorRepository } from './generator.ts';
import { createRollupsRepository } from './rollups.ts';
import { createSecuritiesRepository } from './securities.ts';

export function createRepositories(db: Knex) {
  return {
    auth: createAuthRepository(db),
    bars: createBarsRepository(db),
    calendar: createCalendarRepository(db),
    checkpoints: createCheckpointsRepository(db),
    generator: createGeneratorRepository(db),
    rollups: createRollupsRepository(db),
    securities: createSecuritiesRepository(db),
  };
}

export type Repositories = ReturnType<typeof createRepositories>;
