/**
 * Issue 7 §3, the generator's determinism: two generators of tick buffers running interleaved
 * (what the default two COPY lanes do: one lane's generator yields mid-session while the other
 * runs) must give exactly the bytes each gives alone; and a dataset of another shape is refused
 * naming the field that differs.
 */
import { UnrecoverableError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { dataGenerate } from '../jobs/processors/data-generate.ts';
import { directContext } from '../jobs/types.ts';
import { closeDeps, frozenClock, scratchDatabase, testConfig, testDeps } from './support.ts';
import { dailyPath } from '../core/generator/paths.ts';
import { tickBuffers } from '../core/generator/ticks.ts';
import { buildUniverse, resolvePlan } from '../core/generator/universe.ts';
import { datasetMismatchField } from '../core/generator/dataset.ts';

describe('tick buffers of concurrent lanes', () => {
  it('are the same bytes interleaved as alone', () => {
    const plan = resolvePlan({
      seed: 42,
      scale: 'small',
      securities: 4,
      years: 1,
      tickSessions: 12,
      endDate: '2024-12-27',
    });
    const [x, y] = buildUniverse(plan).securities;
    const sessions = Array.from({ length: 12 }, (_, i) => plan.tickStart + i);
    const gen = (spec: NonNullable<typeof x>) =>
      tickBuffers(plan, spec, dailyPath(plan, spec), spec.index + 1, sessions);
    const alone = (spec: NonNullable<typeof x>) => Buffer.concat([...gen(spec)].map((b) => Buffer.from(b)));
    const wantX = alone(x!);
    const wantY = alone(y!);
    // Interleave buffer by buffer, as two lanes whose COPY streams take turns do.
    const gx = gen(x!);
    const gy = gen(y!);
    const gotX: Buffer[] = [];
    const gotY: Buffer[] = [];
    let doneX = false;
    let doneY = false;
    while (!doneX || !doneY) {
      if (!doneX) {
        const r = gx.next();
        if (r.done) doneX = true;
        else gotX.push(Buffer.from(r.value));
      }
      if (!doneY) {
        const r = gy.next();
        if (r.done) doneY = true;
        else gotY.push(Buffer.from(r.value));
      }
    }
    expect(gotX.length).toBeGreaterThan(2);
    expect(Buffer.concat(gotX).equals(wantX)).toBe(true);
    expect(Buffer.concat(gotY).equals(wantY)).toBe(true);
  });
});

describe('a database holding another dataset', () => {
  const base: Parameters<typeof resolvePlan>[0] = {
    seed: 7,
    scale: 'small',
    securities: 12,
    years: 1,
    tickSessions: 4,
    endDate: '2024-12-27',
  };
  const sig = (p: Partial<typeof base>) => resolvePlan({ ...base, ...p }).signature;

  it('is refused naming the field that differs', () => {
    const held = { seed: 7, signature: sig({}), to: '2024-12-27' };
    const plan = (p: Partial<typeof base>) => resolvePlan({ ...base, ...p });
    expect(datasetMismatchField(held, plan({}))).toBeUndefined();
    expect(datasetMismatchField(held, plan({ seed: 8 }))).toBe('seed');
    expect(datasetMismatchField(held, plan({ securities: 13 }))).toBe('securities');
    expect(datasetMismatchField(held, plan({ tickSessions: 5 }))).toBe('tickSessions');
    expect(datasetMismatchField(held, plan({ years: 2 }))).toBe('years');
    expect(datasetMismatchField(held, plan({ endDate: '2024-12-26' }))).toBe('endDate');
    expect(
      datasetMismatchField(held, plan({ scale: 'seed', securities: 12, years: 1, tickSessions: 4 })),
    ).toBe('scale');
  });

  it('fails data.generate permanently naming securities when only the number of securities differs', async () => {
    const scratch = await scratchDatabase();
    const deps = testDeps({
      config: testConfig({ DATABASE_URL: scratch.url }),
      clock: frozenClock('2025-01-15T12:00:00Z'),
    });
    try {
      await deps.repos.checkpoints.set('data.generate', 'dataset', {
        seed: 7,
        signature: sig({}),
        to: '2024-12-27',
      });
      const run = dataGenerate(deps, { ...base, scale: 'small', securities: 13 }, directContext());
      await expect(run).rejects.toBeInstanceOf(UnrecoverableError);
      await expect(run).rejects.toThrow(/^securities: /);
    } finally {
      await closeDeps(deps);
      await scratch.drop();
    }
  });
});
