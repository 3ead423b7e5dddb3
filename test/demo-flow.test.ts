/**
 * The demo's flow: data.generate → rollups → analytics → corporate-actions.apply →
 * holdings.snapshot → variance.quarterly → reports.variance-excel, each step the parent of the one
 * before (BullMQ runs a parent after its children, so the report is the root), with the books steps' explicit
 * periods. Built as a tree (pure) and added to real Redis under a prefix of this file's own, with
 * no workers, so nothing runs.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { JobNode } from 'bullmq';
import type { Deps } from '../core/deps.ts';
import { addGeneratePipeline, generatePipelineSteps, generatePipelineTree } from '../jobs/flows.ts';
import { closeDeps, dropPrefix, testDeps } from './support.ts';

const generate = { seed: 42, securities: 60, years: 2, endDate: '2026-10-02' };
const books = { asOf: '2026-10-02', from: '2024-10-03', to: '2026-10-02', quarter: '2026Q3' };
const ORDER = [
  'data.generate',
  'bars.rollup-5m',
  'bars.rollup-1d',
  'analytics.indicators',
  'analytics.risk',
  'corporate-actions.apply',
  'holdings.snapshot',
  'variance.quarterly',
  'reports.variance-excel',
];

describe('the generate pipeline with the books steps', () => {
  it('runs the books steps after the analytics, with explicit periods, the quarter’s report last', () => {
    const steps = generatePipelineSteps(generate, books);
    expect(steps.map((s) => s.name)).toEqual(ORDER);
    expect(steps.slice(5).map((s) => s.data)).toEqual([
      { asOf: '2026-10-02' },
      { from: '2024-10-03', to: '2026-10-02' },
      { quarter: '2026Q3' },
      { quarter: '2026Q3' },
    ]);
    expect(steps[0]?.data).toEqual({ ...generate, scale: 'small' });
    // The tree is inverted: the root is the last step, the deepest leaf data.generate.
    const names: string[] = [];
    for (
      let n: ReturnType<typeof generatePipelineTree> | undefined = generatePipelineTree(generate, books);
      n;
    ) {
      names.unshift(n.name);
      expect(n.queueName).toBe(n.name);
      expect(n.children?.length ?? 0).toBeLessThanOrEqual(1);
      n = n.children?.[0];
    }
    expect(names).toEqual(ORDER);
  });

  it('without books is the offline pipeline as before; without a complete quarter stops at the books', () => {
    expect(generatePipelineSteps(generate).map((s) => s.name)).toEqual(ORDER.slice(0, 5));
    expect(generatePipelineSteps(generate, { ...books, quarter: null }).map((s) => s.name)).toEqual(
      ORDER.slice(0, 7),
    );
  });

  it('refuses a books period the catalogue refuses, naming the field', () => {
    expect(() => generatePipelineSteps(generate, { ...books, quarter: '2026Q5' })).toThrow(/quarter/);
    expect(() => generatePipelineSteps(generate, { ...books, from: '2026-10-03' })).toThrow(/from/);
  });

  describe('in Redis', () => {
    let deps: Deps | undefined;
    afterAll(async () => {
      if (deps) {
        await dropPrefix(deps);
        await closeDeps(deps);
      }
    });

    it('adds the flow: the report waits for its children, data.generate is ready to run', async () => {
      deps = testDeps();
      const node = await addGeneratePipeline(deps.config, deps.redis, generate, undefined, books);
      const chain: JobNode[] = [];
      for (let n: JobNode | undefined = node; n; n = n.children?.[0]) chain.unshift(n);
      expect(chain.map((n) => n.job.name)).toEqual(ORDER);
      expect(chain.map((n) => n.job.data as unknown).slice(5)).toEqual([
        { asOf: '2026-10-02' },
        { from: '2024-10-03', to: '2026-10-02' },
        { quarter: '2026Q3' },
        { quarter: '2026Q3' },
      ]);
      expect(await chain[0]!.job.getState()).toBe('waiting');
      expect(await chain.at(-1)!.job.getState()).toBe('waiting-children');
      expect(await chain[6]!.job.getState()).toBe('waiting-children');
    });
  });
});
