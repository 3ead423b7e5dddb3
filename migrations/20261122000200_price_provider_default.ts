/**
 * A security's price provider may be left to configuration: `securities.price_provider` null means
 * "use PRICE_PROVIDER". The generator still writes 'synthetic' for its made-up tickers, so a real
 * provider configured for real securities never quotes them. Unknown names are refused here.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table securities alter column price_provider drop not null;
    alter table securities alter column price_provider drop default;
    alter table securities add constraint securities_price_provider_check
      check (price_provider in ('synthetic', 'yahoo', 'alphavantage'));
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table securities drop constraint securities_price_provider_check;
    update securities set price_provider = 'synthetic' where price_provider is null;
    alter table securities alter column price_provider set default 'synthetic';
    alter table securities alter column price_provider set not null;
  `);
}
