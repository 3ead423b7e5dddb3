/**
 * Seeded pseudo-random streams. Every stream is keyed by (seed, purpose, index…) through a
 * hash, so a security's prices, a session's ticks or a client's book come out the same no
 * matter in which order, by how many workers, or after how many resumes they are generated.
 */

/** splitmix32 finaliser: a well-mixed 32-bit hash of one integer. */
function mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Combines integers into one 32-bit stream key. */
export function streamKey(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) h = mix32(h ^ mix32(p | 0));
  return h;
}

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number;
  /** Standard normal. */
  normal(): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
}

/** mulberry32 with a cached Box–Muller pair. */
export function createRng(key: number): Rng {
  let state = key >>> 0;
  let spare = 0;
  let hasSpare = false;
  const next = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    normal() {
      if (hasSpare) {
        hasSpare = false;
        return spare;
      }
      const u = 1 - next();
      const v = next();
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      hasSpare = true;
      return r * Math.cos(2 * Math.PI * v);
    },
    pick(items) {
      const item = items[Math.floor(next() * items.length)];
      if (item === undefined) throw new Error('pick from an empty list');
      return item;
    },
    chance: (p) => next() < p,
  };
}

/** Stream purposes, so two uses of the same indices never share numbers. */
export const Stream = {
  universe: 1,
  dailyPath: 2,
  ticks: 3,
  fx: 4,
  actions: 5,
  portfolios: 6,
  clients: 7,
  ratings: 8,
  market: 9,
  roles: 10,
} as const;
