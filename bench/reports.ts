/**
 * Reports bench (issue 10): a variance workbook of BENCH_REPORT_ROWS detail rows (default
 * 1,000,000: BENCH_REPORT_ROWS / 50,000 portfolios × 50,000 securities), rendered in a child
 * process exactly as the worker renders it (into the PostgreSQL store), against a plain
 * `COPY (the same detail query) TO STDOUT` CSV export of the same rows in the same run.
 * Figures: rows/s, the rendering process's peak RSS (VmHWM; aim < 300 MB), the ratio of the
 * render time to the COPY time (aim ≤ 4). The child runs with REPORT_NODE_OPTIONS (default
 * `--max-old-space-size=128 --max-semi-space-size=16`, the flags the reports worker group is
 * deployed with; see notes), and once more without them when BENCH_REPORT_UNCAPPED=1.
 */
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Deps } from '../core/deps.ts';
import { seedVarianceFixture } from '../test/report-fixtures.ts';

export const REPORT_NODE_OPTIONS = '--max-old-space-size=128 --max-semi-space-size=16';
const CHILD = fileURLToPath(new URL('./report-render-child.ts', import.meta.url));

export interface ReportsBench {
  rows: number;
  portfolios: number;
  seedSeconds: number;
  renderSeconds: number;
  rowsPerSecond: number;
  bytes: number;
  peakRssMb: number;
  copySeconds: number;
  copyBytes: number;
  ratio: number;
  nodeOptions: string;
  uncapped?: { renderSeconds: number; peakRssMb: number };
}

interface ChildOut {
  result: { rows: number; bytes: number };
  ms: number;
  vmHwmKb: number | null;
  maxRssKb: number;
}

function renderInChild(databaseUrl: string, quarter: string, nodeOptions: string): Promise<ChildOut> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeOptions.split(' ').filter(Boolean), CHILD, quarter], {
      env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn', NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => (out += s));
    child.on('error', reject);
    child.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`render child exited ${code}: ${out}`));
      resolve(JSON.parse(line) as ChildOut);
    });
  });
}

export async function benchReports(deps: Deps, opts: { rows?: number } = {}): Promise<ReportsBench> {
  const rows = opts.rows ?? 1_000_000;
  const securities = Math.min(50_000, rows);
  const portfolios = Math.max(1, Math.round(rows / securities));
  const t0 = performance.now();
  const { portfolioIds } = await seedVarianceFixture(deps.db, { securities, portfolios });
  await deps.db.raw('analyze variance_rows, securities');
  const seedSeconds = (performance.now() - t0) / 1000;

  const nodeOptions = process.env.REPORT_NODE_OPTIONS ?? REPORT_NODE_OPTIONS;
  const r = await renderInChild(deps.config.db.url, '2025Q1', nodeOptions);

  // The baseline: the same detail query per portfolio, COPY … TO STDOUT as CSV, bytes discarded.
  let copyBytes = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      copyBytes += chunk.length;
      cb();
    },
  });
  const c0 = performance.now();
  for (const id of portfolioIds) await deps.repos.reports.copyDetailCsv('2025Q1', id, sink);
  const copySeconds = (performance.now() - c0) / 1000;

  const renderSeconds = r.ms / 1000;
  const out: ReportsBench = {
    rows: r.result.rows,
    portfolios,
    seedSeconds,
    renderSeconds,
    rowsPerSecond: r.result.rows / renderSeconds,
    bytes: r.result.bytes,
    peakRssMb: (r.vmHwmKb ?? r.maxRssKb) / 1024,
    copySeconds,
    copyBytes,
    ratio: renderSeconds / copySeconds,
    nodeOptions,
  };
  if (process.env.BENCH_REPORT_UNCAPPED === '1') {
    const u = await renderInChild(deps.config.db.url, '2025Q1', '');
    out.uncapped = { renderSeconds: u.ms / 1000, peakRssMb: (u.vmHwmKb ?? u.maxRssKb) / 1024 };
  }
  return out;
}
