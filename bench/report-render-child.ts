/**
 * The rendering process of the reports bench (bench/reports.ts): renders one period's variance
 * workbook exactly as the worker does (the reports.variance-excel processor into the PostgreSQL
 * store) and prints one JSON line: the result, the wall time, and its own peak RSS (VmHWM from
 * /proc/self/status, and process.resourceUsage().maxRSS). Args: quarter.
 */
import { readFileSync } from 'node:fs';
import { buildDeps, closeDeps } from '../core/deps.ts';
import { parsePayload } from '../jobs/catalogue.ts';
import { reportsVarianceExcel } from '../jobs/processors/reports.ts';
import { directContext } from '../jobs/types.ts';

const quarter = process.argv[2] ?? '2025Q1';
const deps = buildDeps({ name: 'bench-report', poolMax: 3 });
try {
  const started = performance.now();
  const result = await reportsVarianceExcel(
    deps,
    parsePayload('reports.variance-excel', { quarter }),
    directContext(),
  );
  const ms = performance.now() - started;
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  console.log(
    JSON.stringify({
      result,
      ms,
      vmHwmKb: hwm ? Number(hwm) : null,
      maxRssKb: process.resourceUsage().maxRSS,
    }),
  );
} finally {
  await closeDeps(deps);
}
