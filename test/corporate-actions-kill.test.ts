/**
 * corporate-actions.apply killed halfway (kill -9 of a real worker process) and resumed through
 * BullMQ's stalled-job recovery by another worker process: every effect is applied exactly once.
 *
 * A book large enough for the kill to land mid-run: 1,000 client accounts holding one security
 * (odd and even quantities), a 3:2 split (cash in lieu on odd holdings, priced at the ex-date close)
 * and a dividend paid on its ex-date. The first worker is SIGKILLed once a hundred ledger rows
 * are committed; right then every committed ledger row must already have its effect (positions),
 * since both are one transaction. The dead worker's lock would expire by itself (JOB_LOCK_MS); the
 * test deletes it and the stalled-check key instead of waiting, as test/backfill-resume.test.ts
 * does. The second worker finishes the same job; then each account has one APPLY per action, the
 * split quantity, and cash = cash in lieu + dividend, once.
 */
import { QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../core/redis.ts';
import type { Deps } from '../core/deps.ts';
import { dec } from '../core/domain/money.ts';
import { createQueues } from '../jobs/queues.ts';
import { insertAction, insertClose, insertSecurity } from './ca-fixtures.ts';
import { closeDeps, dropPrefix, scratchDatabase, testConfig, testDeps, uniquePrefix } from './support.ts';
import { kill, killAll, startWorkerProcess, until } from './worker-process.ts';

const ACCOUNTS = 1000;
let scratch: { url: string; drop: () => Promise<void> };
let deps: Deps;

beforeAll(async () => {
  scratch = await scratchDatabase();
  deps = testDeps({ config: testConfig({ DATABASE_URL: scratch.url, QUEUE_PREFIX: uniquePrefix() }) });
});

afterAll(async () => {
  await killAll();
  if (deps) {
    await dropPrefix(deps);
    await closeDeps(deps);
  }
  await scratch?.drop();
});

async function ledgerCount(): Promise<number> {
  const r = await deps.db.raw<{ rows: { n: number }[] }>(
    `select count(*)::int as n from corporate_action_ledger`,
  );
  return r.rows[0]!.n;
}

/**
 * `n` clients `<tag>-<i>` (i = 1..n), each with a USD margin account holding 10 + i shares of
 * `securityId` bought on 2025-01-02 at 12 (its positions row and its trade).
 */
async function insertHolders(tag: string, name: string, n: number, securityId: number): Promise<void> {
  await deps.db.raw(
    `with c as (
       insert into clients (client_code, name)
       select ? || '-' || g, ? from generate_series(1, ?) g
       returning id, client_code
     ), a as (
       insert into accounts (client_id, account_type, currency, cash_balance)
       select id, 'MARGIN', 'USD', 0 from c
       returning id, client_id
     ), x as (
       select a.id, split_part(c.client_code, '-', 2)::int as i from a join c on c.id = a.client_id
     ), p as (
       insert into positions (account_id, security_id, quantity, cost_basis)
       select id, ?, 10 + i, 12 from x
     )
     insert into transactions (txn_id, account_id, security_id, txn_type, quantity, price, txn_date, settlement_date, currency)
     select 'TXN-' || ? || '-' || i, id, ?, 'BUY', 10 + i, 12, '2025-01-02', '2025-01-03', 'USD' from x`,
    [tag, name, n, securityId, tag, securityId],
  );
}

/** The test's queues, events of corporate-actions.apply (ready), and the env its worker processes get. */
async function applyQueue() {
  const prefix = deps.config.queue.prefix;
  const queues = createQueues(deps.config);
  const events = new QueueEvents('corporate-actions.apply', {
    connection: createRedis(deps.config, { forWorker: true }),
    prefix,
  });
  await events.waitUntilReady();
  return { prefix, queues, events, env: { DATABASE_URL: scratch.url, QUEUE_PREFIX: prefix } };
}

describe('corporate-actions.apply killed mid-run', () => {
  it('resumes in another worker process and applies every effect once', { timeout: 240_000 }, async () => {
    const { db } = deps;
    const sec = await insertSecurity(db);
    // Account i holds 10 + i shares bought on 2025-01-02 (the positions row and its trade).
    await insertHolders('KILL', 'kill test', ACCOUNTS, sec.id);
    await insertClose(db, sec.id, '2025-03-03', '8');
    const split = await insertAction(db, {
      securityId: sec.id,
      type: 'STOCK_SPLIT',
      exDate: '2025-03-03',
      ratio: '1.5',
    });
    const div = await insertAction(db, {
      securityId: sec.id,
      type: 'DIVIDEND',
      exDate: '2025-03-04',
      amount: '0.10',
    });

    const { prefix, queues, events, env } = await applyQueue();
    const job = await queues.enqueue('corporate-actions.apply', { asOf: '2025-03-04' });
    const first = startWorkerProcess(env, { names: ['corporate-actions.apply'] });
    await until(async () => (await ledgerCount()) >= 100, 120_000, 'the first ledger rows');
    await kill(first);

    // Killed mid-run: some applied, not all; and no committed row lacks its effect.
    const committed = await ledgerCount();
    expect(committed).toBeLessThan(ACCOUNTS * 2);
    const orphans = await db.raw<{ rows: { n: number }[] }>(
      `select count(*)::int as n
         from corporate_action_ledger l join corporate_actions a on a.id = l.action_id
         join positions p on p.account_id = l.account_id and p.security_id = a.security_id
        where a.action_id = ? and p.quantity <> l.quantity_held + l.quantity_delta`,
      [split],
    );
    expect(orphans.rows[0]!.n).toBe(0);
    expect(await job.getState()).toBe('active');

    // What the passing of time would do: the dead worker's lock expires, the stalled check is due.
    await deps.redis.del(
      `${prefix}:corporate-actions.apply:${job.id}:lock`,
      `${prefix}:corporate-actions.apply:stalled-check`,
    );
    startWorkerProcess({ ...env, JOB_STALLED_CHECK_MS: '500' }, { names: ['corporate-actions.apply'] });
    const result = (await job.waitUntilFinished(events, 180_000)) as {
      applied: Record<string, number>;
      skipped: Record<string, number>;
      paid: Record<string, number>;
    };
    await events.close();
    await queues.close();
    // The resumed attempt skipped what the killed one had committed.
    expect(
      result.applied.STOCK_SPLIT! +
        result.applied.DIVIDEND! +
        result.skipped.STOCK_SPLIT! +
        result.skipped.DIVIDEND!,
    ).toBe(ACCOUNTS * 2);
    expect(result.skipped.STOCK_SPLIT! + result.skipped.DIVIDEND!).toBeGreaterThan(0);

    const rows = await db.raw<{
      rows: { i: number; quantity: string; cash: string; applies: number; split: number; div: number }[];
    }>(
      `select substr(c.client_code, 6)::int as i, p.quantity::text, a.cash_balance::text as cash,
              (select count(*)::int from corporate_action_ledger l where l.account_id = a.id and l.entry = 'APPLY') as applies,
              (select count(*)::int from corporate_action_ledger l join corporate_actions x on x.id = l.action_id
                where l.account_id = a.id and x.action_id = :split) as split,
              (select count(*)::int from corporate_action_ledger l join corporate_actions x on x.id = l.action_id
                where l.account_id = a.id and x.action_id = :div and l.paid_at is not null) as div
         from accounts a join clients c on c.id = a.client_id
         left join positions p on p.account_id = a.id and p.security_id = :sec
        where c.client_code like 'KILL-%'
        order by i`,
      { split, div, sec: sec.id },
    );
    expect(rows.rows).toHaveLength(ACCOUNTS);
    const wrong = rows.rows.filter((r) => {
      const q = 10 + r.i;
      const kept = Math.floor(q * 1.5);
      const cash = dec(q).times('1.5').minus(kept).times(8).plus(dec(kept).times('0.10'));
      return (
        r.applies !== 2 ||
        r.split !== 1 ||
        r.div !== 1 ||
        r.quantity !== dec(kept).toFixed(8) ||
        r.cash !== cash.toFixed(2)
      );
    });
    expect(wrong.slice(0, 5)).toEqual([]);
  });

  it(
    'two worker processes running two jobs at once apply every effect once',
    { timeout: 240_000 },
    async () => {
      const { db } = deps;
      const sec = await insertSecurity(db);
      const n = 800;
      await insertHolders('DUO', 'two workers', n, sec.id);
      await insertClose(db, sec.id, '2025-04-01', '5');
      const split = await insertAction(db, {
        securityId: sec.id,
        type: 'REVERSE_SPLIT',
        exDate: '2025-04-01',
        ratio: '0.5',
      });
      const div = await insertAction(db, {
        securityId: sec.id,
        type: 'DIVIDEND',
        exDate: '2025-04-02',
        amount: '0.30',
      });

      const { queues, events, env } = await applyQueue();
      startWorkerProcess(env, { names: ['corporate-actions.apply'] });
      startWorkerProcess(env, { names: ['corporate-actions.apply'] });
      const payload = { asOf: '2025-04-02', actionIds: [split, div] };
      const jobs = [
        await queues.enqueue('corporate-actions.apply', payload),
        await queues.enqueue('corporate-actions.apply', payload),
      ];
      type Result = { applied: Record<string, number>; skipped: Record<string, number> };
      const results = [
        (await jobs[0]!.waitUntilFinished(events, 180_000)) as Result,
        (await jobs[1]!.waitUntilFinished(events, 180_000)) as Result,
      ];
      await events.close();
      await queues.close();
      const applied = results.reduce((s, r) => s + r.applied.REVERSE_SPLIT! + r.applied.DIVIDEND!, 0);
      expect(applied).toBe(n * 2);

      const rows = await db.raw<{ rows: { i: number; quantity: string; cash: string; applies: number }[] }>(
        `select substr(c.client_code, 5)::int as i, p.quantity::text, a.cash_balance::text as cash,
              (select count(*)::int from corporate_action_ledger l where l.account_id = a.id and l.entry = 'APPLY') as applies
         from accounts a join clients c on c.id = a.client_id
         left join positions p on p.account_id = a.id and p.security_id = :sec
        where c.client_code like 'DUO-%'
        order by i`,
        { sec: sec.id },
      );
      expect(rows.rows).toHaveLength(n);
      const wrong = rows.rows.filter((r) => {
        const q = 10 + r.i;
        const kept = Math.floor(q / 2);
        const cash = dec(q).times('0.5').minus(kept).times(5).plus(dec(kept).times('0.30'));
        return r.applies !== 2 || r.quantity !== dec(kept).toFixed(8) || r.cash !== cash.toFixed(2);
      });
      expect(wrong.slice(0, 5)).toEqual([]);
    },
  );
});
