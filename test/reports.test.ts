/**
 * reports.variance-excel end to end on real PostgreSQL and Redis: the job through the API and a
 * real worker, the workbook checked by an independent reader (Debian's python3-openpyxl:
 * test/fixtures/xlsx_dump.py) against the database, its structure, the catalogue and the
 * download (ETag, 304, ranges, 404/403/409/416), versions and retention, the schedule rule, and
 * the failure paths: store unwritable, database connection lost mid-render, worker killed -9
 * mid-render (a real process; its retry fails the orphan and renders again).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dec, round } from '../core/domain/money.ts';
import type { Deps } from '../core/deps.ts';
import { parsePayload } from '../jobs/catalogue.ts';
import { maintenanceRetention } from '../jobs/processors/maintenance.ts';
import { reportsVarianceExcel, scheduledPeriod } from '../jobs/processors/reports.ts';
import { addVarianceReport } from '../jobs/report-flow.ts';
import { directContext } from '../jobs/types.ts';
import { startWorkers, type WorkerHost } from '../jobs/worker-host.ts';
import { centsOf, fromCents, MONEY_FMT, PCT_FMT } from '../reports/variance-excel.ts';
import { clientToken, startTestApp, stopTestApp, type TestApp } from './api-fixtures.ts';
import { createJobRunner, type JobRunner } from './job-runner.ts';
import { seedVarianceFixture } from './report-fixtures.ts';
import { frozenClock, scratchDatabase, testConfig, testDeps } from './support.ts';
import { kill, killAll, startWorkerProcess, until } from './worker-process.ts';

const DUMP = fileURLToPath(new URL('./fixtures/xlsx_dump.py', import.meta.url));
// Debian's interpreter (python3-openpyxl), not whatever python3 a version manager puts first.
const PYTHON = '/usr/bin/python3';

interface SheetDump {
  name: string;
  maxRow: number;
  freeze: string | null;
  autoFilter: string | null;
  orientation: string | null;
  fitToWidth: number | null;
  fitToPage: boolean | null;
  printTitleRows: string | null;
  widths: Record<string, number>;
  conditional: { range: string; types: string[] }[];
  rows: unknown[][];
  formulas: Record<string, string>;
  formats: Record<string, string>;
}
interface WorkbookDump {
  sheets: SheetDump[];
  definedNames: Record<string, string>;
}

const tmp = mkdtempSync(path.join(tmpdir(), 'reports-test-'));

function readWorkbook(bytes: Buffer): WorkbookDump {
  const file = path.join(tmp, `${createHash('sha256').update(bytes).digest('hex')}.xlsx`);
  writeFileSync(file, bytes);
  return JSON.parse(
    execFileSync(PYTHON, [DUMP, file], { maxBuffer: 512 * 1024 * 1024 }).toString(),
  ) as WorkbookDump;
}

const cents = (v: string | null): number | null => (v === null ? null : round(dec(v), 2).toNumber());
const sheetOf = (wb: WorkbookDump, name: string): SheetDump => {
  const s = wb.sheets.find((x) => x.name === name);
  if (!s) throw new Error(`no sheet ${name}: ${wb.sheets.map((x) => x.name).join(', ')}`);
  return s;
};

let scratch: { url: string; drop: () => Promise<void> };
let deps: Deps;
let t: TestApp;
let host: WorkerHost;
let runner: JobRunner;
let reader: string;
let writer: string;
let writerOnly: string;
let ports: string[];

const MONEY = [
  'mv_start',
  'mv_end',
  'price_effect',
  'qty_effect',
  'fx_effect',
  'corp_action_effect',
  'distributions',
  'total_pnl',
];

async function sums(where: string, values: unknown[]): Promise<Record<string, string | null>> {
  const res = await deps.db.raw<{ rows: Record<string, string | null>[] }>(
    `select count(*)::int as n, ${MONEY.map((m) => `sum(${m}) filter (where flag is null) as ${m}`).join(', ')}
       from variance_rows vr join securities s on s.id = vr.security_id where ${where}`,
    values as never[],
  );
  return res.rows[0]!;
}

async function download(id: number, headers: Record<string, string> = {}): Promise<request.Response> {
  let req = request(t.app).get(`/api/reports/${id}/download`).set('Authorization', reader);
  for (const [k, v] of Object.entries(headers)) req = req.set(k, v);
  return req.buffer(true).parse((res, cb) => {
    const parts: Buffer[] = [];
    res.on('data', (b: Buffer) => parts.push(b));
    res.on('end', () => cb(null, Buffer.concat(parts)));
  });
}

beforeAll(async () => {
  scratch = await scratchDatabase();
  deps = testDeps({ config: testConfig({ DATABASE_URL: scratch.url }) });
  // 4000 securities; 2025Q1: 3 portfolios × 150 rows (the workbook checked cell by cell);
  // 2025Q2: 3 portfolios × 4000 rows (long enough to be interrupted mid-render).
  ports = (await seedVarianceFixture(deps.db, { securities: 4000, portfolios: 3, rowsPerPortfolio: 150 }))
    .portfolioIds;
  await seedVarianceFixture(deps.db, {
    securities: 4000,
    portfolios: 3,
    reuseSecurities: true,
    periodLabel: '2025Q2',
    periodFrom: '2025-04-01',
    periodTo: '2025-06-30',
  });
  t = await startTestApp(deps);
  host = startWorkers(deps, { names: ['reports.variance-excel'] });
  runner = createJobRunner(deps, t.queues, 120_000);
  reader = (await clientToken(deps, t.app, ['results:read'])).header;
  writer = (await clientToken(deps, t.app, ['results:read', 'jobs:write'])).header;
  writerOnly = (await clientToken(deps, t.app, ['jobs:write'])).header;
}, 120_000);

afterAll(async () => {
  await killAll();
  await runner?.close();
  await host?.close();
  if (t) await stopTestApp(t, deps);
  await scratch?.drop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('reports.variance-excel through the API and a real worker', () => {
  let runId: number;
  let file: Buffer;
  let wb: WorkbookDump;

  it('POST /api/jobs/reports.variance-excel renders the quarter; the run is SUCCEEDED and listed', async () => {
    const res = await request(t.app)
      .post('/api/jobs/reports.variance-excel')
      .set('Authorization', writer)
      .send({ quarter: '2025Q1' });
    expect(res.status).toBe(202);
    const events = await runner.events('reports.variance-excel');
    const job = (await t.queues.byQueueName('reports.variance-excel')!.getJob(res.body.id as string))!;
    await job.waitUntilFinished(events, 120_000);
    const done = (await t.queues.byQueueName('reports.variance-excel')!.getJob(res.body.id as string))!;
    expect(done.returnvalue).toMatchObject({
      status: 'SUCCEEDED',
      period: '2025Q1',
      rows: 450,
      portfolios: 3,
    });
    runId = (done.returnvalue as { runId: number }).runId;
    expect(done.progress).toMatchObject({ progress: 100 });

    const list = await request(t.app)
      .get('/api/reports?type=variance-excel&period=2025Q1&status=SUCCEEDED')
      .set('Authorization', reader);
    expect(list.status).toBe(200);
    expect(list.body.total).toBe(1);
    expect(list.body.reports[0]).toMatchObject({
      id: runId,
      version: 1,
      status: 'SUCCEEDED',
      rows: 450,
      portfolio_ids: null,
    });

    const one = await request(t.app).get(`/api/reports/${runId}`).set('Authorization', reader);
    expect(one.status).toBe(200);
    expect(one.body.download).toBe(`/api/reports/${runId}/download`);
    expect(one.body.sha256).toMatch(/^[0-9a-f]{64}$/);

    const dl = await download(runId);
    expect(dl.status).toBe(200);
    file = dl.body as Buffer;
    expect(file.length).toBe(one.body.bytes);
    expect(createHash('sha256').update(file).digest('hex')).toBe(one.body.sha256);
    wb = readWorkbook(file);
  }, 120_000);

  it('the independent reader: sheet names, header rows, number formats, frozen panes, autofilter, print setup, defined names', () => {
    expect(wb.sheets.map((s) => s.name)).toEqual([
      'Summary',
      ...ports,
      'Top movers',
      'FX rates',
      'Corporate actions',
      'About',
    ]);
    const summary = sheetOf(wb, 'Summary');
    expect(summary.rows[2]).toEqual([
      'Portfolio',
      'Name',
      'Base ccy',
      'Rows',
      'Flagged',
      'MV start',
      'MV end',
      'Price effect',
      'Quantity effect',
      'FX effect',
      'Corporate-action effect',
      'Distributions',
      'Total P&L',
      'Return %',
    ]);
    expect(summary.freeze).toBe('B4');
    expect(summary.autoFilter).toBe('A3:N3');
    for (const c of 'FGHIJKLM') expect(summary.formats[c]).toBe(MONEY_FMT);
    expect(summary.formats.N).toBe(PCT_FMT);
    expect(summary.conditional).toEqual([{ range: 'H4:K6', types: ['dataBar'] }]);

    for (const id of ports) {
      const s = sheetOf(wb, id);
      expect(s.rows[1]!.slice(0, 7)).toEqual([
        'Security ID',
        'Ticker',
        'ISIN',
        'CUSIP',
        'Name',
        'Type',
        'Ccy',
      ]);
      expect(s.rows[1]!.slice(14, 23)).toEqual([
        'MV start',
        'MV end',
        'Price effect',
        'Quantity effect',
        'FX effect',
        'Corporate-action effect',
        'Distributions',
        'Total P&L',
        'Flag',
      ]);
      expect(s.freeze).toBe('C3');
      expect(s.autoFilter).toBe(`A2:W${s.maxRow - 1}`);
      for (const c of 'OPQRSTUV') expect(s.formats[c]).toBe(MONEY_FMT);
      expect(s.conditional).toEqual([{ range: `Q3:T${s.maxRow - 1}`, types: ['dataBar'] }]);
      expect(s.orientation).toBe('landscape');
      expect(s.fitToWidth).toBe(1);
      expect(s.fitToPage).toBe(true);
      expect(s.printTitleRows).toBe('$2:$2');
      // Fitted widths: the name column is as wide as the longest name (+2), within bounds.
      expect(s.widths.E).toBeGreaterThanOrEqual(20);
    }
    for (const name of ['Top movers', 'FX rates', 'Corporate actions']) {
      expect(sheetOf(wb, name).freeze).toBe('A3');
      expect(sheetOf(wb, name).printTitleRows).toBe('$2:$2');
    }
    expect(wb.definedNames.Total_MV_Start).toBe('Summary!$F$7');
    expect(wb.definedNames.Total_Total_PnL).toBe('Summary!$M$7');
    expect(wb.definedNames['PORT_001.Total_total_pnl']).toMatch(/^'PORT-001'!\$V\$\d+$/);
  });

  it('totals, row counts and formula results equal the database, to the cent', async () => {
    const summary = sheetOf(wb, 'Summary');
    const grand = await sums('vr.period_label = ?', ['2025Q1']);
    const totalRow = summary.rows[6]!;
    expect(totalRow[0]).toBe('Total');
    expect(totalRow[3]).toBe(450);
    MONEY.forEach((m, i) => expect(totalRow[5 + i], m).toBe(cents(grand[m]!)));
    expect(summary.formulas.F7).toBe('=SUM(F4:F6)');
    expect(summary.formulas.M7).toBe('=SUM(M4:M6)');
    expect(totalRow[13]).toBeCloseTo(
      dec(grand.total_pnl!).dividedBy(dec(grand.mv_start!).abs()).toNumber(),
      12,
    );

    for (const [i, id] of ports.entries()) {
      const db = await sums('vr.period_label = ? and vr.portfolio_id = ?', ['2025Q1', id]);
      const row = summary.rows[3 + i]!;
      expect(row[0]).toBe(id);
      expect(row[3]).toBe(Number(db.n));
      MONEY.forEach((m, k) => expect(row[5 + k], `${id} ${m}`).toBe(cents(db[m]!)));

      const s = sheetOf(wb, id);
      const data = s.rows.slice(2, -1);
      const details = data.filter((r) => typeof r[0] === 'string' && (r[0] as string).startsWith('SEC-'));
      expect(details).toHaveLength(Number(db.n));
      const flagged = await deps
        .db('variance_rows')
        .where({ period_label: '2025Q1', portfolio_id: id })
        .whereNotNull('flag')
        .count<{ count: string }[]>();
      expect(details.filter((r) => r[22] !== null)).toHaveLength(Number(flagged[0]!.count));
      const total = s.rows[s.rows.length - 1]!;
      expect(total[0]).toBe('Total');
      MONEY.forEach((m, k) => expect(total[14 + k], `${id} total ${m}`).toBe(cents(db[m]!)));
      expect(s.formulas[`V${s.maxRow}`]).toBe(`=SUBTOTAL(9,V3:V${s.maxRow - 1})`);
      // Subtotals by security type equal the database's group sums.
      for (const type of ['BOND', 'EQUITY']) {
        const ts = await sums('vr.period_label = ? and vr.portfolio_id = ? and s.security_type = ?', [
          '2025Q1',
          id,
          type,
        ]);
        const sub = data.find((r) => r[0] === `Subtotal ${type}`)!;
        MONEY.forEach((m, k) => expect(sub[14 + k], `${id} ${type} ${m}`).toBe(cents(ts[m]!)));
      }
    }

    const about = sheetOf(wb, 'About');
    const kv = Object.fromEntries(about.rows.filter((r) => r[0] !== null).map((r) => [r[0], r[2] ?? r[1]]));
    expect(kv['Run id']).toBe(runId);
    expect(kv.Period).toBe('2025Q1');
    expect(kv['Detail rows']).toBe(450);
    const counts = Object.fromEntries(
      about.rows.filter((r) => typeof r[1] === 'number').map((r) => [r[0], r[1]]),
    );
    for (const id of ports) expect(counts[id]).toBe(150);
    expect(String(about.rows.find((r) => r[0] === ports[0])![2])).toMatch(/^select .* from variance_rows/);

    // Corporate actions: each ledger row with when it was applied.
    const ca = sheetOf(wb, 'Corporate actions');
    const ledger = await deps.db.raw<{ rows: { n: number }[] }>(
      `select count(*)::int as n from corporate_action_ledger l join corporate_actions ca on ca.id = l.action_id
        where ca.ex_date between '2025-01-01' and '2025-03-31'
          and exists (select 1 from variance_rows vr where vr.period_label = '2025Q1' and vr.security_id = ca.security_id)`,
    );
    const applied = ca.rows.slice(2).filter((r) => r[11] === 'APPLY');
    expect(applied).toHaveLength(ledger.rows[0]!.n);
    for (const r of applied) expect(String(r[15])).toMatch(/^2025-0[1-3]-\d\dT06:05:00/);

    const top = sheetOf(wb, 'Top movers');
    const best = await deps.db.raw<{ rows: { total_pnl: string }[] }>(
      `select total_pnl from variance_rows where period_label = '2025Q1' and flag is null order by abs(total_pnl) desc limit 1`,
    );
    expect(top.rows[2]![8]).toBe(cents(best.rows[0]!.total_pnl));
  });

  // LibreOffice (opt-in: scripts/install-report-readers.sh --libreoffice) opens the file headless
  // and exports every sheet; its Summary totals equal the database's.
  it.skipIf(!existsSync('/usr/bin/soffice'))(
    'LibreOffice converts the workbook headless without error',
    async () => {
      const dir = mkdtempSync(path.join(tmp, 'lo-'));
      const src = path.join(dir, 'report.xlsx');
      writeFileSync(src, file);
      execFileSync(
        '/usr/bin/soffice',
        [
          '--headless',
          '--norestore',
          `-env:UserInstallation=file://${dir}/profile`,
          '--convert-to',
          'csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1',
          '--outdir',
          dir,
          src,
        ],
        { timeout: 120_000, stdio: 'ignore' },
      );
      const summary = readFileSync(path.join(dir, 'report-Summary.csv'), 'utf8').trim().split('\n');
      const total = summary.find((l) => l.startsWith('Total,'))!.split(',');
      const grand = await sums('vr.period_label = ?', ['2025Q1']);
      MONEY.forEach((m, i) => expect(Number(total[5 + i]), m).toBe(cents(grand[m]!)));
      for (const id of ports) expect(existsSync(path.join(dir, `report-${id}.csv`))).toBe(true);
    },
    180_000,
  );

  it('download: ETag/304, single ranges (206, exact bytes), 416, wrong id 404, bad id 400, no token 401, no scope 403', async () => {
    const full = await download(runId);
    expect(full.headers['content-type']).toBe(
      'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    );
    expect(full.headers['content-disposition']).toBe('attachment; filename="variance-2025Q1-all-v1.xlsx"');
    expect(full.headers['content-length']).toBe(String(file.length));
    const etag = `"${createHash('sha256').update(file).digest('hex')}"`;
    expect(full.headers.etag).toBe(etag);
    expect(full.headers['accept-ranges']).toBe('bytes');

    expect((await download(runId, { 'If-None-Match': etag })).status).toBe(304);
    expect((await download(runId, { 'If-None-Match': '"abc"' })).status).toBe(200);

    const mid = await download(runId, { Range: 'bytes=100-4099' });
    expect(mid.status).toBe(206);
    expect(mid.headers['content-range']).toBe(`bytes 100-4099/${file.length}`);
    expect(Buffer.compare(mid.body as Buffer, file.subarray(100, 4100))).toBe(0);
    const tail = await download(runId, { Range: 'bytes=-77' });
    expect(tail.status).toBe(206);
    expect(Buffer.compare(tail.body as Buffer, file.subarray(file.length - 77))).toBe(0);
    const open = await download(runId, { Range: `bytes=${file.length - 10}-` });
    expect(Buffer.compare(open.body as Buffer, file.subarray(file.length - 10))).toBe(0);
    const past = await download(runId, { Range: `bytes=${file.length}-` });
    expect(past.status).toBe(416);
    expect(past.headers['content-range']).toBe(`bytes */${file.length}`);
    // If-Range with another validator: the whole file.
    expect((await download(runId, { Range: 'bytes=0-9', 'If-Range': '"other"' })).status).toBe(200);

    expect(
      (await request(t.app).get('/api/reports/999999/download').set('Authorization', reader)).status,
    ).toBe(404);
    expect((await request(t.app).get('/api/reports/0x10/download').set('Authorization', reader)).status).toBe(
      400,
    );
    expect((await request(t.app).get(`/api/reports/${runId}/download`)).status).toBe(401);
    expect(
      (await request(t.app).get(`/api/reports/${runId}/download`).set('Authorization', writerOnly)).status,
    ).toBe(403);
    expect((await request(t.app).get('/api/reports').set('Authorization', writerOnly)).status).toBe(403);
    const bad = await request(t.app).get('/api/reports?status=DONE&limit=0').set('Authorization', reader);
    expect(bad.status).toBe(400);
    expect(bad.body.error.fields.map((f: { path: string }) => f.path).sort()).toEqual([
      'query.limit',
      'query.status',
    ]);
  });

  it('a re-run makes version 2 and keeps version 1; retention removes superseded versions past REPORTS_RETENTION_DAYS', async () => {
    // The demo's entry point (jobs/report-flow.ts), through the real queue and worker.
    const added = await addVarianceReport(t.queues, { quarter: '2025Q1' });
    await added.waitUntilFinished(await runner.events('reports.variance-excel'), 120_000);
    const finished = (await t.queues.byQueueName('reports.variance-excel')!.getJob(added.id!))!;
    const again = { state: await finished.getState(), result: finished.returnvalue as unknown };
    expect(again.state).toBe('completed');
    expect(again.result).toMatchObject({ version: 2 });
    const list = await request(t.app)
      .get('/api/reports?period=2025Q1&limit=1&offset=0')
      .set('Authorization', reader);
    expect(list.body.total).toBe(2);
    expect(list.body.reports).toHaveLength(1);
    expect(list.body.reports[0].version).toBe(2);
    expect((await download(runId)).status).toBe(200);

    const days = deps.config.reports.retentionDays;
    const later = {
      ...deps,
      clock: frozenClock(new Date(Date.now() + (days + 1) * 86_400_000).toISOString()),
    };
    const res = await maintenanceRetention(later, parsePayload('maintenance.retention', {}), directContext());
    expect(res.reports).toMatchObject({ runs: 1 });
    expect((await request(t.app).get(`/api/reports/${runId}`).set('Authorization', reader)).status).toBe(404);
    const kept = (again.result as { runId: number }).runId;
    expect((await download(kept)).status).toBe(200);
    expect(await deps.db('report_chunks').where({ run_id: runId }).count<{ count: string }[]>()).toEqual([
      { count: '0' },
    ]);
  }, 120_000);
});

describe('subtotals in integer cents agree with decimal arithmetic', () => {
  it('centsOf/fromCents: the exact sum, and the same double as the decimal result', () => {
    const values = ['0.00', '-0.50', '12345.67', '-99999999999.99', '0.01', '7', '-3.5', '1.239'];
    for (const v of values) expect(fromCents(centsOf(v))).toBe(round(dec(v), 2).toNumber());
    let seed = 7;
    const next = (): string => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      const cents = (seed % 2_000_000_001) - 1_000_000_000;
      return (cents / 100).toFixed(2);
    };
    const many = Array.from({ length: 5000 }, next);
    const bySum = many.reduce((a, v) => a + centsOf(v), 0n);
    const byDec = many.reduce((a, v) => a.plus(dec(v)), dec('0'));
    expect(fromCents(bySum)).toBe(byDec.toNumber());
    expect(bySum.toString()).toBe(byDec.times(100).toFixed(0));
  });
});

describe('input and catalogue hygiene', () => {
  it('a meaningless payload is a 400 naming the field, and no job is queued', async () => {
    for (const [body, field] of [
      [{ quarter: '2025Q5' }, 'body.quarter'],
      [{ quarter: '2025Q1', month: '2025-01' }, 'body.quarter'],
      [{ from: '2025-01-01' }, 'body.to'],
      [{ quarter: '2025Q1', portfolioIds: ['P1'] }, 'body.portfolioIds.0'],
      [{ quarter: '2025Q1', format: 'csv' }, 'body.format'],
    ] as const) {
      const res = await request(t.app)
        .post('/api/jobs/reports.variance-excel')
        .set('Authorization', writer)
        .send(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.fields.map((f: { path: string }) => f.path)).toContain(field);
    }
  });

  it('a RUNNING run whose heartbeat is stale is failed by maintenance.retention and its chunks deleted', async () => {
    const [run] = await deps
      .db('report_runs')
      .insert({
        report_type: 'variance-excel',
        period_label: '2024Q4',
        status: 'RUNNING',
        heartbeat_at: deps.db.raw(`now() - interval '1 hour'`),
        job_id: 'lost-job',
      })
      .returning<{ id: string }[]>('id');
    await deps.db('report_chunks').insert({ run_id: run!.id, seq: 0, data: Buffer.from('partial') });
    const res = await maintenanceRetention(deps, parsePayload('maintenance.retention', {}), directContext());
    expect(res.reports?.staleFailed).toBeGreaterThanOrEqual(1);
    const after = await deps.db('report_runs').where({ id: run!.id }).first();
    expect(after.status).toBe('FAILED');
    expect(after.error).toContain('no heartbeat');
    expect(await deps.db('report_chunks').where({ run_id: run!.id }).count<{ count: string }[]>()).toEqual([
      { count: '0' },
    ]);
    const dl = await request(t.app).get(`/api/reports/${run!.id}/download`).set('Authorization', reader);
    expect(dl.status).toBe(409);
  });
});

describe('the schedule: first NYSE trading day of a month, for the month just ended', () => {
  it('picks the first trading day only (holidays and weekends skipped)', () => {
    // 2025-09-01 is Labor Day: the first trading day of September is Tuesday the 2nd.
    expect(scheduledPeriod(new Date('2025-09-01T11:00:00Z')).period).toBeUndefined();
    expect(scheduledPeriod(new Date('2025-09-02T11:00:00Z')).period).toEqual({
      label: '2025-08',
      from: '2025-08-01',
      to: '2025-08-31',
    });
    expect(scheduledPeriod(new Date('2025-09-03T11:00:00Z')).period).toBeUndefined();
    // 2026-01-01 holiday, 2026-01-02 Friday: the first trading day, for December 2025.
    expect(scheduledPeriod(new Date('2026-01-02T12:00:00Z')).period?.label).toBe('2025-12');
    // 07:00 New York on 2025-06-02 is 11:00 UTC; 02:00 UTC on the 2nd is still the 1st in New York (a Sunday).
    expect(scheduledPeriod(new Date('2025-06-02T02:00:00Z')).period).toBeUndefined();
  });

  it('the scheduled {} payload skips on other days and creates no run', async () => {
    const before = await deps.db('report_runs').count<{ count: string }[]>();
    const out = await reportsVarianceExcel(
      { ...deps, clock: frozenClock('2025-04-02T11:00:00Z') },
      parsePayload('reports.variance-excel', {}),
      directContext(),
    );
    expect(out).toEqual({ skipped: expect.stringContaining('not the first trading day') });
    expect(await deps.db('report_runs').count<{ count: string }[]>()).toEqual(before);
  });

  it('on the first trading day: the month’s attribution then its workbook, added once as one flow', async () => {
    const before = await deps.db('report_runs').count<{ count: string }[]>();
    const run = () =>
      reportsVarianceExcel(
        { ...deps, clock: frozenClock('2025-04-01T11:00:00Z') },
        parsePayload('reports.variance-excel', {}),
        directContext(),
      );
    const out = await run();
    expect(out).toEqual({ chained: { month: '2025-03', reportJobId: 'scheduled-variance-excel-2025-03' } });
    expect(await run()).toEqual(out); // a retried scheduled run adds nothing twice
    expect(await deps.db('report_runs').count<{ count: string }[]>()).toEqual(before);
    const report = await t.queues.get('reports.variance-excel').getJob('scheduled-variance-excel-2025-03');
    const variance = await t.queues
      .get('variance.quarterly')
      .getJob('scheduled-variance-excel-2025-03-variance');
    expect(report?.data).toEqual({ month: '2025-03' });
    expect(variance?.data).toEqual({ month: '2025-03' });
    // No variance worker runs in this file: the attribution waits, the report waits for it.
    expect(await variance!.getState()).toBe('waiting');
    expect(await report!.getState()).toBe('waiting-children');
    await report!.remove({ removeChildren: true });
  });

  it('a month with no variance rows: a FAILED run naming the period, failing permanently', async () => {
    const err = await reportsVarianceExcel(
      deps,
      parsePayload('reports.variance-excel', { month: '2025-03' }),
      directContext(),
    ).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toBe('UnrecoverableError');
    expect((err as Error).message).toContain('no variance rows for 2025-03');
    const run = await deps.db('report_runs').where({ period_label: '2025-03' }).first();
    expect(run).toMatchObject({ status: 'FAILED' });
    expect(run.error).toContain('no variance rows for 2025-03');
  });
});

describe('failure paths leave a FAILED run, a clear error and no downloadable file', () => {
  async function lastRun(period: string): Promise<{ id: string; status: string; error: string | null }> {
    return deps.db('report_runs').where({ period_label: period }).orderBy('id', 'desc').first();
  }
  async function noFile(id: number): Promise<void> {
    const res = await request(t.app).get(`/api/reports/${id}/download`).set('Authorization', reader);
    expect(res.status).toBe(409);
    expect(res.body.error.message).toContain('FAILED');
    expect(await deps.db('report_chunks').where({ run_id: id }).count<{ count: string }[]>()).toEqual([
      { count: '0' },
    ]);
  }

  it('the store is unwritable (a trigger refuses chunk inserts, as a full disk would)', async () => {
    await deps.db.raw(`
      create function refuse_chunk() returns trigger language plpgsql as $$
      begin raise exception 'could not extend file: No space left on device' using errcode = '53100'; end $$;
      create trigger refuse_chunk before insert on report_chunks for each row execute function refuse_chunk();`);
    try {
      const err = await reportsVarianceExcel(
        deps,
        parsePayload('reports.variance-excel', { quarter: '2025Q2' }),
        directContext(),
      ).catch((e: unknown) => e as Error);
      expect((err as Error).message).toContain('No space left on device');
      const run = await lastRun('2025Q2');
      expect(run.status).toBe('FAILED');
      expect(run.error).toContain('No space left on device');
      await noFile(Number(run.id));
    } finally {
      await deps.db.raw('drop trigger refuse_chunk on report_chunks; drop function refuse_chunk()');
    }
  }, 60_000);

  it("the database connection is lost mid-render (pg_terminate_backend of the render's snapshot)", async () => {
    let terminated = false;
    const ctx = directContext();
    const progress = ctx.progress.bind(ctx);
    ctx.progress = async (pct, detail) => {
      await progress(pct, detail);
      if (!terminated && Number(detail?.rows ?? 0) > 0) {
        terminated = true;
        const res = await deps.db.raw<{ rows: { ok: boolean }[] }>(
          `select pg_terminate_backend(pid) as ok from pg_stat_activity
            where datname = current_database() and application_name like 'report-render-%'`,
        );
        expect(res.rows).toHaveLength(1);
      }
    };
    const err = await reportsVarianceExcel(
      deps,
      parsePayload('reports.variance-excel', { quarter: '2025Q2' }),
      ctx,
    ).catch((e: unknown) => e as Error);
    expect(terminated).toBe(true);
    expect((err as Error).message).toMatch(/^database connection lost mid-render: /);
    const run = await lastRun('2025Q2');
    expect(run.status).toBe('FAILED');
    expect(run.error).toMatch(/^database connection lost mid-render: /);
    await noFile(Number(run.id));
  }, 60_000);

  it('the worker is killed -9 mid-render: no file while RUNNING; the retry fails the orphan and renders a complete one', async () => {
    // Hold the chunk table so the render blocks at its first chunk, mid-render, deterministically.
    const locker = await deps.db.client.acquireConnection();
    await locker.query('begin');
    await locker.query('lock table report_chunks in exclusive mode');
    const env = {
      DATABASE_URL: scratch.url,
      QUEUE_PREFIX: deps.config.queue.prefix,
      JOB_LOCK_MS: '2000',
      JOB_STALLED_CHECK_MS: '500',
    };
    await host.close(); // only the child process serves the queue now
    const child = startWorkerProcess(env, { names: ['reports.variance-excel'] });
    let released = false;
    try {
      const before = Number((await deps.db('report_runs').max<{ max: string }[]>('id as max'))[0]!.max);
      const job = await t.queues.enqueue('reports.variance-excel', {
        quarter: '2025Q2',
        portfolioIds: ['PORT-002', 'PORT-001'],
      });
      await until(
        async () =>
          (
            await deps.db.raw<{ rows: unknown[] }>(
              `select 1 from pg_stat_activity a
                where a.datname = current_database() and a.wait_event_type = 'Lock' and a.query like '%insert into report_chunks%'
                  and exists (select 1 from report_runs r where r.id > ? and r.status = 'RUNNING')`,
              [before],
            )
          ).rows.length > 0,
        60_000,
        'the render to block on its first chunk',
      );
      const orphan = await lastRun('2025Q2');
      expect(Number(orphan.id)).toBeGreaterThan(before);
      expect(orphan.status).toBe('RUNNING');
      const mid = await request(t.app).get(`/api/reports/${orphan.id}/download`).set('Authorization', reader);
      expect(mid.status).toBe(409);
      expect(mid.body.error.message).toContain('RUNNING');
      await kill(child);
      await locker.query('commit');
      released = true;

      // A new worker picks the stalled job up again (same job id): the orphan FAILED, a new complete version.
      const second = startWorkerProcess(env, { names: ['reports.variance-excel'] });
      const events = await runner.events('reports.variance-excel');
      await job.waitUntilFinished(events, 120_000);
      const orphanAfter = await deps.db('report_runs').where({ id: orphan.id }).first();
      expect(orphanAfter.status).toBe('FAILED');
      expect(orphanAfter.error).toContain('render abandoned');
      await noFile(Number(orphan.id));
      const fresh = await lastRun('2025Q2');
      expect(fresh.status).toBe('SUCCEEDED');
      const runRow = await deps.db('report_runs').where({ id: fresh.id }).first();
      expect(runRow.portfolio_ids).toEqual(['PORT-001', 'PORT-002']);
      const dl = await download(Number(fresh.id));
      expect(dl.status).toBe(200);
      const wb = readWorkbook(dl.body as Buffer);
      expect(wb.sheets.map((s) => s.name)).toEqual([
        'Summary',
        'PORT-001',
        'PORT-002',
        'Top movers',
        'FX rates',
        'Corporate actions',
        'About',
      ]);
      const rows = sheetOf(wb, 'PORT-001').rows.filter(
        (r) => typeof r[0] === 'string' && (r[0] as string).startsWith('SEC-'),
      );
      expect(rows).toHaveLength(4000);
      await kill(second);
    } finally {
      if (!released) await locker.query('rollback').catch(() => undefined);
      await deps.db.client.releaseConnection(locker);
      host = startWorkers(deps, { names: ['reports.variance-excel'] });
    }
  }, 180_000);
});
