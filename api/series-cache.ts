/**
 * The API's cache of serialized price series (issue 8: history and intraday at a fifth of /health's
 * rate; see ARCHITECTURE.md, Decisions: serving history). Whole response bodies, keyed by route
 * and resolved parameters, invalidated by PostgreSQL itself:
 *
 * - Triggers on every table a series is computed from send `series_changed` notifications with
 *   the security ids a committed statement touched, or '*' (migrations/20261204000500_series_notify.ts;
 *   retention sends '*' when it drops 5-minute partitions). One dedicated connection (not from the
 *   pool) LISTENs; a notification evicts those securities' entries (all on '*').
 * - Never served while not listening: until LISTEN has succeeded, and from the moment the
 *   connection errors or ends until a new one has listened again, `get` misses and `store`
 *   refuses; every such transition flushes (notifications sent in a gap are lost). A heartbeat
 *   query finds a connection that died silently.
 * - A read that started before a commit must not store its old result after the commit's
 *   notification evicted: `begin()` takes the notification counter before the query, `store()`
 *   refuses when that security (or everything) was notified since. The security's id is known
 *   only from the result (requests name tickers), hence a global counter with, per security, the
 *   counter value of its last notification.
 * - Bounded: least recently used entries go first once the bodies pass `maxBytes`.
 *
 * What remains: a change is served once its notification has been processed, which follows the
 * commit by the time PostgreSQL takes to signal the listener and the socket to deliver (well
 * under a millisecond on one host). A client that commits and reads at once through another
 * path can, in that window, get the previous body. The caller's revocation check is not cached.
 */
import pg from 'pg';
import type { Logger } from '../core/logger.ts';

export const SERIES_CHANNEL = 'series_changed';

/** Opaque: the notification counter when a read began. */
export interface SeriesTicket {
  readonly seen: number;
}

export interface SeriesCacheStats {
  listening: boolean;
  /** PostgreSQL backend pid of the listening connection (tests terminate it). */
  pid: number | undefined;
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
  stores: number;
  /** Stores refused because the security (or everything) was notified during the read. */
  refused: number;
  evictions: number;
  notifications: number;
  flushes: number;
}

export interface SeriesCache {
  /** The cached body, only while listening. */
  get(key: string): Buffer | undefined;
  /** Before the read; undefined when nothing read now may be stored (not listening). */
  begin(): SeriesTicket | undefined;
  /** After the read: keeps `body` unless `securityId` (or everything) was notified since `ticket`. */
  store(ticket: SeriesTicket, key: string, securityId: number, body: Buffer): boolean;
  stats(): SeriesCacheStats;
  /** Resolves once LISTEN has succeeded (tests, bench). */
  listening(): Promise<void>;
  close(): Promise<void>;
}

interface Entry {
  body: Buffer;
  securityId: number;
  size: number;
}

/** Per entry besides the body: key, map slots, index. An estimate, so the bound stays honest for small bodies. */
const OVERHEAD = 128;

export function createSeriesCache(opts: {
  databaseUrl: string;
  maxBytes: number;
  logger: Logger;
  /** Heartbeat on the listening connection, ms. */
  heartbeatMs?: number;
  /** First reconnect delay, doubled up to 5 s. */
  retryMs?: number;
}): SeriesCache {
  const { logger, maxBytes } = opts;
  const heartbeatMs = opts.heartbeatMs ?? 10_000;
  const retryMs = opts.retryMs ?? 100;
  const entries = new Map<string, Entry>(); // insertion order = recency (oldest first)
  const bySecurity = new Map<number, Set<string>>();
  /** Counter of notifications and flushes; the value of the last one per security, and of the last flush. */
  let counter = 0;
  const notifiedAt = new Map<number, number>();
  let flushedAt = 0;
  let bytes = 0;
  let active = false;
  let pid: number | undefined;
  let closed = false;
  let client: pg.Client | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let retry: NodeJS.Timeout | undefined;
  let delay = retryMs;
  let waiters: (() => void)[] = [];
  const s = { hits: 0, misses: 0, stores: 0, refused: 0, evictions: 0, notifications: 0, flushes: 0 };

  const remove = (key: string, e: Entry): void => {
    entries.delete(key);
    bytes -= e.size;
    const keys = bySecurity.get(e.securityId);
    keys?.delete(key);
    if (keys?.size === 0) bySecurity.delete(e.securityId);
  };

  const flush = (): void => {
    entries.clear();
    bySecurity.clear();
    notifiedAt.clear(); // flushedAt is above every value it held
    bytes = 0;
    flushedAt = ++counter;
    s.flushes++;
  };

  const invalidate = (id: number): void => {
    notifiedAt.set(id, ++counter);
    const keys = bySecurity.get(id);
    if (!keys) return;
    for (const key of [...keys]) {
      const e = entries.get(key);
      if (e) remove(key, e);
    }
  };

  const onNotification = (msg: pg.Notification): void => {
    if (msg.channel !== SERIES_CHANNEL) return;
    s.notifications++;
    const payload = msg.payload ?? '*';
    if (payload === '*') return flush();
    for (const part of payload.split(',')) {
      const id = Number(part);
      if (Number.isInteger(id)) invalidate(id);
      else return flush(); // not ours to understand: safe side
    }
  };

  const lost = (c: pg.Client, err?: unknown): void => {
    if (c !== client) return;
    client = undefined;
    if (heartbeat) clearInterval(heartbeat);
    heartbeat = undefined;
    if (active)
      logger.warn(
        { err: (err as Error | undefined)?.message },
        'series cache: listening connection lost, bypassed',
      );
    active = false;
    flush();
    c.end().catch(() => undefined);
    schedule();
  };

  const schedule = (): void => {
    if (closed || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      void connect();
    }, delay);
    retry.unref();
    delay = Math.min(delay * 2, 5000);
  };

  const connect = async (): Promise<void> => {
    if (closed) return;
    const c = new pg.Client({
      connectionString: opts.databaseUrl,
      application_name: 'market-data-api-series-cache',
      keepAlive: true,
      connectionTimeoutMillis: 5000,
      query_timeout: heartbeatMs, // a heartbeat on a silently dead connection fails, not hangs
    });
    client = c;
    c.on('error', (err) => lost(c, err));
    c.on('end', () => lost(c));
    c.on('notification', onNotification);
    try {
      await c.connect();
      // Without the triggers nothing would ever evict: stay bypassed on an unmigrated database.
      const check = await c.query<{ ok: boolean }>(
        `select to_regprocedure('series_notify(integer[])') is not null as ok`,
      );
      if (!check.rows[0]?.ok) throw new Error('series_notify() missing: migrations not applied');
      await c.query(`listen ${SERIES_CHANNEL}`);
      pid = (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid;
    } catch (err) {
      if (c === client) {
        logger.warn({ err: (err as Error).message }, 'series cache: cannot listen, bypassed');
        lost(c, err);
      }
      return;
    }
    if (c !== client || closed) return;
    flush(); // whatever was heard before, or missed in a gap
    active = true;
    delay = retryMs;
    heartbeat = setInterval(() => {
      c.query('select 1').catch((err: unknown) => lost(c, err));
    }, heartbeatMs);
    heartbeat.unref();
    for (const w of waiters) w();
    waiters = [];
  };

  void connect();

  return {
    get(key) {
      if (!active) return undefined;
      const e = entries.get(key);
      if (!e) {
        s.misses++;
        return undefined;
      }
      entries.delete(key);
      entries.set(key, e);
      s.hits++;
      return e.body;
    },

    begin() {
      return active ? { seen: counter } : undefined;
    },

    store(ticket, key, securityId, body) {
      if (!active || flushedAt > ticket.seen || (notifiedAt.get(securityId) ?? 0) > ticket.seen) {
        s.refused++;
        return false;
      }
      const size = body.length + key.length + OVERHEAD;
      if (size > maxBytes) return false;
      const old = entries.get(key);
      if (old) remove(key, old);
      entries.set(key, { body, securityId, size });
      let keys = bySecurity.get(securityId);
      if (!keys) bySecurity.set(securityId, (keys = new Set()));
      keys.add(key);
      bytes += size;
      s.stores++;
      for (const [k, e] of entries) {
        if (bytes <= maxBytes) break;
        remove(k, e);
        s.evictions++;
      }
      return true;
    },

    stats() {
      return { listening: active, pid: active ? pid : undefined, entries: entries.size, bytes, ...s };
    },

    listening() {
      return active ? Promise.resolve() : new Promise((resolve) => waiters.push(resolve));
    },

    async close() {
      closed = true;
      active = false;
      if (retry) clearTimeout(retry);
      if (heartbeat) clearInterval(heartbeat);
      const c = client;
      client = undefined;
      flush();
      await c?.end().catch(() => undefined);
    },
  };
}
