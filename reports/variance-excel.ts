/**
 * The variance workbook (issue 10), written row by row through exceljs's streaming
 * `WorkbookWriter` (each row committed as soon as it is built; one sheet open at a time), from a
 * `ReportSnapshot` whose detail rows come through a pg-query-stream cursor. Nothing holds a whole
 * sheet: memory is one cursor batch, the zip's deflate window and the sink's chunk.
 *
 * Sheets: Summary, one detail sheet per portfolio, Top movers, FX rates, Corporate actions, About.
 *
 * What the streaming writer supports, and how the rest is done (exceljs 4.4, read in its source,
 * lib/stream/xlsx/worksheet-writer.js and workbook-writer.js):
 * - frozen panes (`views`), autofilter (`autoFilter`, written at commit), conditional formatting
 *   (`addConditionalFormatting`, written at commit, so the range can name the last row), page
 *   setup, margins and header/footer, and print titles (`pageSetup.printTitlesRow`, which the
 *   workbook xform turns into `_xlnm.Print_Titles`) all work as in the in-memory workbook;
 * - defined names: `workbook.definedNames.add("'Sheet'!$A$1", name)`, written with workbook.xml
 *   at `commit()`, after every sheet;
 * - column widths cannot be fitted after the rows (the `<cols>` element precedes `<sheetData>`), so
 *   they are fitted BEFORE: `detailWidths` asks PostgreSQL for the longest text per column and the
 *   digits of the largest figure, and the width follows from the number format;
 * - formulas are written with their cached `result`, computed exactly (decimal) from the rows as
 *   they stream (subtotals) or from PostgreSQL (Summary); Excel and LibreOffice recalculate on
 *   open, a reader without a calculation engine (openpyxl data_only) sees the stored figures.
 */
import type { Writable } from 'node:stream';
import ExcelJS from 'exceljs';
import type {
  ActionInPeriod,
  FxUsed,
  PortfolioSummary,
  ReportSnapshot,
  TopMover,
  VarianceDetailRow,
} from '../core/db/repositories/reports.ts';
import { REPORT_SQL } from '../core/db/repositories/reports.ts';
import { dec, ZERO, type Dec } from '../core/domain/money.ts';

export const MONEY_FMT = '#,##0.00;[Red]-#,##0.00';
export const PCT_FMT = '0.00%;[Red]-0.00%';
export const QTY_FMT = '#,##0.####;[Red]-#,##0.####';
export const PRICE_FMT = '#,##0.00######';
export const FX_FMT = '0.0000000000';
export const DATE_FMT = 'yyyy-mm-dd';
export const TIME_FMT = 'yyyy-mm-dd hh:mm:ss "UTC"';
export const TOP_MOVERS = 25;

const HEADER_STYLE: Partial<ExcelJS.Style> = {
  font: { bold: true, color: { argb: 'FFFFFFFF' } },
  fill: { type: 'pattern', pattern: 'solid', fgColor: { argb: 'FF1F3864' } },
  alignment: { vertical: 'middle', wrapText: true },
  border: { bottom: { style: 'thin', color: { argb: 'FF000000' } } },
};
const TITLE_FONT: Partial<ExcelJS.Font> = { bold: true, size: 14 };
const SUBTOTAL_FONT: Partial<ExcelJS.Font> = { bold: true, italic: true };
const TOTAL_FONT: Partial<ExcelJS.Font> = { bold: true };
const TOTAL_BORDER: Partial<ExcelJS.Borders> = { top: { style: 'thin' }, bottom: { style: 'double' } };

export interface ReportParams {
  runId: number;
  version: number;
  jobId: string | null;
  periodLabel: string;
  periodFrom: string;
  periodTo: string;
  portfolioIds: string[] | null;
  params: Record<string, unknown>;
  generatedAt: Date;
}

export interface SheetInfo {
  name: string;
  rows: number;
  query: string;
}

export interface RenderResult {
  /** Detail rows written (every portfolio sheet). */
  detailRows: number;
  sheets: SheetInfo[];
  portfolios: PortfolioSummary[];
}

export interface RenderHooks {
  /** Called every `every` detail rows (and at the end of each sheet): progress, and a chance to stop. */
  onRows(written: number, total: number): Promise<void>;
  every?: number;
}

const num = (v: string | null | undefined): number | null =>
  v === null || v === undefined ? null : Number(v);
/**
 * Money columns are numeric(24,2), which pg prints with exactly two decimals: summed exactly as
 * integer cents (BigInt; a tenth of decimal.js's cost per row); anything else goes through decimal.
 */
export function centsOf(v: string): bigint {
  if (/^-?\d+\.\d{2}$/.test(v)) return BigInt(v.replace('.', ''));
  return BigInt(dec(v).times(100).toFixed(0));
}
/** Cents as the JS number nearest the decimal value (one correctly rounded IEEE division). */
export const fromCents = (c: bigint): number => Number(c) / 100;

/** A pg `date` ('YYYY-MM-DD') as an Excel date (UTC midnight, shown with DATE_FMT). */
const day = (v: string | null): Date | null => (v === null ? null : new Date(`${v}T00:00:00Z`));

/** Fitted width in characters for a number of `digits` integer digits in a #,##0.00 format. */
const moneyWidth = (digits: number): number => digits + Math.floor((digits - 1) / 3) + 5;

const clampWidth = (w: number, min = 8, max = 60): number => Math.max(min, Math.min(max, w + 2));

const colLetter = (n: number): string => {
  let s = '';
  for (let c = n; c > 0; c = Math.floor((c - 1) / 26)) s = String.fromCharCode(65 + ((c - 1) % 26)) + s;
  return s;
};

/** A sheet name Excel accepts: ≤ 31 characters, none of []:*?/\ . */
export function sheetName(name: string): string {
  return name.replace(/[[\]:*?/\\]/g, '_').slice(0, 31);
}

/** A defined name Excel accepts: letters, digits, underscore, dot. */
export const definedName = (s: string): string => s.replace(/[^A-Za-z0-9_.]/g, '_');

type WS = ExcelJS.Worksheet;

function headerRow(ws: WS, labels: string[]): void {
  const row = ws.addRow(labels);
  row.height = 30;
  row.eachCell((c) => {
    c.style = { ...HEADER_STYLE };
  });
  row.commit();
}

function titleRow(ws: WS, text: string): void {
  const row = ws.addRow([text]);
  row.getCell(1).font = TITLE_FONT;
  row.commit();
}

function printSetup(headerRows: number): Partial<ExcelJS.PageSetup> {
  return {
    orientation: 'landscape',
    fitToPage: true,
    fitToWidth: 1,
    fitToHeight: 0,
    paperSize: 9,
    printTitlesRow: `${headerRows}:${headerRows}`,
    margins: { left: 0.4, right: 0.4, top: 0.6, bottom: 0.6, header: 0.3, footer: 0.3 },
  };
}

const SUMMARY_FIELDS = [
  ['mvStart', 'MV start', 'MV_Start'],
  ['mvEnd', 'MV end', 'MV_End'],
  ['priceEffect', 'Price effect', 'Price_Effect'],
  ['qtyEffect', 'Quantity effect', 'Qty_Effect'],
  ['fxEffect', 'FX effect', 'FX_Effect'],
  ['corpActionEffect', 'Corporate-action effect', 'CA_Effect'],
  ['distributions', 'Distributions', 'Distributions'],
  ['totalPnl', 'Total P&L', 'Total_PnL'],
] as const;

/** return = total P&L ÷ |MV start| (null when MV start is 0 or missing). */
export function returnOf(total: string | null, mvStart: string | null): Dec | null {
  if (total === null || mvStart === null) return null;
  const base = dec(mvStart).abs();
  return base.isZero() ? null : dec(total).dividedBy(base);
}

/**
 * Renders the workbook into `out` (the sink: the zip is piped into it). Resolves when the zip is
 * finalised and every byte was handed to the sink; rejects on the first error of the snapshot,
 * the writer or the sink (the caller fails the run and discards what the sink stored).
 */
export async function renderVarianceWorkbook(
  snap: ReportSnapshot,
  p: ReportParams,
  out: Writable,
  hooks: RenderHooks,
): Promise<RenderResult> {
  let sinkError: Error | undefined;
  const sinkFailed = new Promise<never>((_, reject) => {
    out.once('error', (err: Error) => {
      sinkError = err;
      reject(err);
    });
  });
  sinkFailed.catch(() => undefined);
  const check = (): void => {
    if (sinkError) throw sinkError;
  };

  const wb = new ExcelJS.stream.xlsx.WorkbookWriter({
    stream: out,
    useStyles: true,
    useSharedStrings: false,
  });
  wb.creator = 'market-data-workers';
  wb.created = p.generatedAt;
  const sheets: SheetInfo[] = [];
  const portfolios = await snap.summary(p.periodLabel, p.portfolioIds);
  const widths = await snap.detailWidths(p.periodLabel, p.portfolioIds);
  const totalRows = portfolios.reduce((n, s) => n + s.rows, 0);
  const every = hooks.every ?? 5000;

  try {
    // ---- Summary -------------------------------------------------------------------------
    {
      const ws = wb.addWorksheet('Summary', {
        views: [{ state: 'frozen', ySplit: 3, xSplit: 1 }],
        pageSetup: printSetup(3),
        properties: { tabColor: { argb: 'FF1F3864' } },
      });
      const mw = clampWidth(moneyWidth(widths.money_digits + 1));
      ws.columns = [
        { width: 12 },
        { width: clampWidth(Math.max(14, ...portfolios.map((s) => s.portfolioName.length))) },
        { width: 8 },
        { width: 10, style: { numFmt: '#,##0' } },
        { width: 9, style: { numFmt: '#,##0' } },
        ...SUMMARY_FIELDS.map(() => ({ width: mw, style: { numFmt: MONEY_FMT } })),
        { width: 10, style: { numFmt: PCT_FMT } },
      ];
      titleRow(
        ws,
        `Variance attribution ${p.periodLabel} (${p.periodFrom} to ${p.periodTo}), generated ${p.generatedAt.toISOString()}`,
      );
      ws.addRow([
        'Figures in each portfolio’s base currency; effects add up to MV end − MV start + distributions. Flagged rows (missing price or rate) are counted, not valued.',
      ]).commit();
      headerRow(ws, [
        'Portfolio',
        'Name',
        'Base ccy',
        'Rows',
        'Flagged',
        ...SUMMARY_FIELDS.map(([, label]) => label),
        'Return %',
      ]);
      // Portfolios grouped by base currency, one total row per currency (sums across currencies are meaningless).
      const byCcy = new Map<string, PortfolioSummary[]>();
      for (const s of [...portfolios].sort(
        (a, b) => a.baseCurrency.localeCompare(b.baseCurrency) || a.portfolioId.localeCompare(b.portfolioId),
      ))
        byCcy.set(s.baseCurrency, [...(byCcy.get(s.baseCurrency) ?? []), s]);
      let r = 4;
      const firstCol = 6;
      for (const [ccy, group] of byCcy) {
        const first = r;
        for (const s of group) {
          const ret = returnOf(s.totalPnl, s.mvStart);
          ws.addRow([
            s.portfolioId,
            s.portfolioName,
            s.baseCurrency,
            s.rows,
            s.flagged,
            ...SUMMARY_FIELDS.map(([k]) => num(s[k])),
            ret === null ? null : ret.toNumber(),
          ]).commit();
          r++;
        }
        const last = r - 1;
        const sums = SUMMARY_FIELDS.map(([k]) =>
          group.reduce((acc, s) => (s[k] === null ? acc : acc.plus(dec(s[k]))), ZERO),
        );
        const row = ws.addRow([
          byCcy.size === 1 ? 'Total' : `Total ${ccy}`,
          null,
          ccy,
          { formula: `SUM(D${first}:D${last})`, result: group.reduce((n, s) => n + s.rows, 0) },
          { formula: `SUM(E${first}:E${last})`, result: group.reduce((n, s) => n + s.flagged, 0) },
          ...sums.map((v, i) => {
            const c = colLetter(firstCol + i);
            return { formula: `SUM(${c}${first}:${c}${last})`, result: v.toNumber() };
          }),
          (() => {
            const mvS = colLetter(firstCol);
            const tot = colLetter(firstCol + SUMMARY_FIELDS.length - 1);
            const ret = returnOf(sums[SUMMARY_FIELDS.length - 1]!.toString(), sums[0]!.toString());
            return {
              formula: `IF(${mvS}${r}=0,"",${tot}${r}/ABS(${mvS}${r}))`,
              result: ret === null ? '' : ret.toNumber(),
            };
          })(),
        ]);
        row.eachCell((c) => {
          c.font = TOTAL_FONT;
          c.border = TOTAL_BORDER;
        });
        row.commit();
        const suffix = byCcy.size === 1 ? '' : `_${ccy}`;
        SUMMARY_FIELDS.forEach(([, , nm], i) => {
          wb.definedNames.add(
            `'Summary'!$${colLetter(firstCol + i)}$${r}`,
            definedName(`Total_${nm}${suffix}`),
          );
        });
        wb.definedNames.add(`'Summary'!$D$${r}`, definedName(`Total_Rows${suffix}`));
        r++;
      }
      ws.autoFilter = { from: { row: 3, column: 1 }, to: { row: 3, column: 5 + SUMMARY_FIELDS.length + 1 } };
      if (portfolios.length)
        dataBars(ws, [`${colLetter(firstCol + 2)}4:${colLetter(firstCol + 5)}${3 + portfolios.length}`]);
      ws.commit();
      sheets.push({ name: 'Summary', rows: portfolios.length, query: REPORT_SQL.summary });
    }

    // ---- One detail sheet per portfolio --------------------------------------------------
    let written = 0;
    const detailCols: { label: string; width: number; numFmt?: string }[] = [
      { label: 'Security ID', width: clampWidth(Math.max(11, widths.security_id)) },
      { label: 'Ticker', width: clampWidth(Math.max(6, widths.ticker)) },
      { label: 'ISIN', width: clampWidth(Math.max(4, widths.isin)) },
      { label: 'CUSIP', width: clampWidth(Math.max(5, widths.cusip)) },
      { label: 'Name', width: clampWidth(Math.max(8, widths.security_name), 8, 40) },
      { label: 'Type', width: clampWidth(Math.max(14, widths.security_type + 9)) },
      { label: 'Ccy', width: 6 },
      { label: 'Qty start', width: clampWidth(moneyWidth(widths.qty_digits) + 2), numFmt: QTY_FMT },
      { label: 'Qty end', width: clampWidth(moneyWidth(widths.qty_digits) + 2), numFmt: QTY_FMT },
      { label: 'Split factor', width: 12, numFmt: '0.########' },
      { label: 'Price start', width: 14, numFmt: PRICE_FMT },
      { label: 'Price end', width: 14, numFmt: PRICE_FMT },
      { label: 'FX start', width: 14, numFmt: FX_FMT },
      { label: 'FX end', width: 14, numFmt: FX_FMT },
      ...[
        'MV start',
        'MV end',
        'Price effect',
        'Quantity effect',
        'FX effect',
        'Corporate-action effect',
        'Distributions',
        'Total P&L',
      ].map((label) => ({
        label,
        width: clampWidth(moneyWidth(widths.money_digits + 1)),
        numFmt: MONEY_FMT,
      })),
      { label: 'Flag', width: clampWidth(Math.max(6, widths.flag), 6, 50) },
    ];
    const MONEY_KEYS = [
      'mv_start',
      'mv_end',
      'price_effect',
      'qty_effect',
      'fx_effect',
      'corp_action_effect',
      'distributions',
      'total_pnl',
    ] as const;
    const moneyFirst = 15; // column O
    const effectsFrom = colLetter(moneyFirst + 2); // price effect
    const effectsTo = colLetter(moneyFirst + 5); // corporate-action effect
    const lastCol = detailCols.length;
    const columnStyles: Partial<ExcelJS.Style>[] = detailCols.map((c) =>
      c.numFmt ? { numFmt: c.numFmt } : {},
    );

    for (const s of portfolios) {
      check();
      const name = sheetName(s.portfolioId);
      const ws = wb.addWorksheet(name, {
        views: [{ state: 'frozen', ySplit: 2, xSplit: 2 }],
        pageSetup: printSetup(2),
      });
      ws.columns = detailCols.map((c) => ({
        width: c.width,
        ...(c.numFmt ? { style: { numFmt: c.numFmt } } : {}),
      }));
      titleRow(
        ws,
        `${s.portfolioId} ${s.portfolioName}: variance ${p.periodLabel}, base currency ${s.baseCurrency}`,
      );
      headerRow(
        ws,
        detailCols.map((c) => c.label),
      );
      let r = 3;
      let groupType: string | null = null;
      let groupFirst = 3;
      let groupSums = MONEY_KEYS.map(() => 0n);
      const totalSums = MONEY_KEYS.map(() => 0n);
      let sheetRows = 0;

      const subtotal = (): void => {
        const row = ws.addRow([
          `Subtotal ${groupType}`,
          null,
          null,
          null,
          null,
          groupType,
          ...Array(8).fill(null),
          ...groupSums.map((v, i) => {
            const c = colLetter(moneyFirst + i);
            return { formula: `SUBTOTAL(9,${c}${groupFirst}:${c}${r - 1})`, result: fromCents(v) };
          }),
        ]);
        row.eachCell((c) => {
          c.font = SUBTOTAL_FONT;
        });
        row.commit();
        r++;
      };

      for await (const d of snap.detail(p.periodLabel, s.portfolioId) as AsyncIterable<VarianceDetailRow>) {
        if (groupType !== null && d.security_type !== groupType) {
          subtotal();
          groupSums = MONEY_KEYS.map(() => 0n);
        }
        if (groupType !== d.security_type) {
          groupType = d.security_type;
          groupFirst = r;
        }
        const row = ws.addRow([
          d.security_id,
          d.ticker,
          d.isin,
          d.cusip,
          d.security_name,
          d.security_type,
          d.currency,
          num(d.qty_start),
          num(d.qty_end),
          num(d.split_factor),
          num(d.price_start),
          num(d.price_end),
          num(d.fx_start),
          num(d.fx_end),
          // A flagged row is not valued: its money cells stay empty, so the live SUBTOTALs equal the stored sums.
          ...MONEY_KEYS.map((k) => (d.flag !== null ? null : num(d[k]))),
          d.flag,
        ]);
        // One shared style object per column: exceljs caches a style's id by object identity
        // (a WeakMap), while the per-cell merge of the column style makes a new object each time.
        row.eachCell((cell, col) => {
          cell.style = columnStyles[col - 1]!;
        });
        row.commit();
        if (d.flag === null)
          MONEY_KEYS.forEach((k, i) => {
            const v = d[k];
            if (v !== null) {
              const c = centsOf(v);
              groupSums[i] = groupSums[i]! + c;
              totalSums[i] = totalSums[i]! + c;
            }
          });
        r++;
        sheetRows++;
        written++;
        if (written % 500 === 0) await drain(ws, check);
        if (written % every === 0) {
          check();
          await hooks.onRows(written, totalRows);
        }
      }
      if (groupType !== null) subtotal();
      const lastData = r - 1;
      const total = ws.addRow([
        'Total',
        null,
        null,
        null,
        null,
        null,
        s.baseCurrency,
        ...Array(7).fill(null),
        ...totalSums.map((v, i) => {
          const c = colLetter(moneyFirst + i);
          return { formula: `SUBTOTAL(9,${c}3:${c}${Math.max(3, lastData)})`, result: fromCents(v) };
        }),
      ]);
      total.eachCell((c) => {
        c.font = TOTAL_FONT;
        c.border = TOTAL_BORDER;
      });
      total.commit();
      MONEY_KEYS.forEach((k, i) => {
        wb.definedNames.add(
          `'${name}'!$${colLetter(moneyFirst + i)}$${r}`,
          definedName(`${s.portfolioId}.Total_${k}`),
        );
      });
      ws.autoFilter = { from: { row: 2, column: 1 }, to: { row: Math.max(2, lastData), column: lastCol } };
      if (lastData >= 3) dataBars(ws, [`${effectsFrom}3:${effectsTo}${lastData}`]);
      ws.commit();
      await hooks.onRows(written, totalRows);
      sheets.push({ name, rows: sheetRows, query: REPORT_SQL.detail });
    }

    // ---- Top movers ----------------------------------------------------------------------
    {
      const movers: TopMover[] = await snap.topMovers(p.periodLabel, p.portfolioIds, TOP_MOVERS);
      const ws = wb.addWorksheet('Top movers', {
        views: [{ state: 'frozen', ySplit: 2 }],
        pageSetup: printSetup(2),
      });
      const mw = clampWidth(moneyWidth(widths.money_digits + 1));
      ws.columns = [
        { width: 6 },
        { width: 12 },
        { width: clampWidth(Math.max(6, widths.ticker)) },
        { width: clampWidth(Math.max(8, widths.security_name), 8, 40) },
        { width: 10 },
        { width: 6 },
        { width: mw, style: { numFmt: MONEY_FMT } },
        { width: mw, style: { numFmt: MONEY_FMT } },
        { width: mw, style: { numFmt: MONEY_FMT } },
        { width: 10, style: { numFmt: PCT_FMT } },
      ];
      titleRow(ws, `Top ${TOP_MOVERS} movers by absolute total P&L, ${p.periodLabel}`);
      headerRow(ws, [
        'Rank',
        'Portfolio',
        'Ticker',
        'Name',
        'Type',
        'Ccy',
        'MV start',
        'MV end',
        'Total P&L',
        'Return %',
      ]);
      movers.forEach((m, i) => {
        ws.addRow([
          i + 1,
          m.portfolio_id,
          m.ticker,
          m.security_name,
          m.security_type,
          m.currency,
          num(m.mv_start),
          num(m.mv_end),
          num(m.total_pnl),
          num(m.return_pct),
        ]).commit();
      });
      ws.autoFilter = {
        from: { row: 2, column: 1 },
        to: { row: 2 + Math.max(movers.length, 0), column: 10 },
      };
      if (movers.length) dataBars(ws, [`I3:I${2 + movers.length}`]);
      ws.commit();
      sheets.push({ name: 'Top movers', rows: movers.length, query: REPORT_SQL.topMovers });
    }

    // ---- FX rates used -------------------------------------------------------------------
    {
      const fx: FxUsed[] = await snap.fxUsed(p.periodLabel, p.portfolioIds);
      const ws = wb.addWorksheet('FX rates', {
        views: [{ state: 'frozen', ySplit: 2 }],
        pageSetup: printSetup(2),
      });
      ws.columns = [
        { width: 8 },
        { width: 8 },
        { width: 15, style: { numFmt: FX_FMT } },
        { width: 15, style: { numFmt: FX_FMT } },
        { width: 10, style: { numFmt: PCT_FMT } },
        { width: 12, style: { numFmt: DATE_FMT } },
        { width: 12, style: { numFmt: DATE_FMT } },
        { width: 20 },
        { width: 8, style: { numFmt: '#,##0' } },
      ];
      titleRow(ws, `FX rates used (security currency → portfolio base currency), ${p.periodLabel}`);
      headerRow(ws, [
        'From',
        'To',
        'Rate at start',
        'Rate at end',
        'Change %',
        'Start date',
        'End date',
        'Source',
        'Rows',
      ]);
      for (const f of fx) {
        const chg =
          f.fx_start !== null && f.fx_end !== null && !dec(f.fx_start).isZero()
            ? dec(f.fx_end).dividedBy(dec(f.fx_start)).minus(1).toNumber()
            : null;
        ws.addRow([
          f.from_currency,
          f.to_currency,
          num(f.fx_start),
          num(f.fx_end),
          chg,
          day(f.start_date),
          day(f.end_date),
          f.from_currency === f.to_currency ? 'same currency' : (f.source ?? 'variance rows'),
          f.rows,
        ]).commit();
      }
      ws.autoFilter = { from: { row: 2, column: 1 }, to: { row: 2 + fx.length, column: 9 } };
      ws.commit();
      sheets.push({ name: 'FX rates', rows: fx.length, query: REPORT_SQL.fx });
    }

    // ---- Corporate actions in the period -------------------------------------------------
    {
      const actions: ActionInPeriod[] = await snap.actions(
        p.periodLabel,
        p.portfolioIds,
        p.periodFrom,
        p.periodTo,
      );
      const ws = wb.addWorksheet('Corporate actions', {
        views: [{ state: 'frozen', ySplit: 2 }],
        pageSetup: printSetup(2),
      });
      ws.columns = [
        { width: 18 },
        { width: 10 },
        { width: 14 },
        { width: 11, style: { numFmt: DATE_FMT } },
        { width: 11, style: { numFmt: DATE_FMT } },
        { width: 12, style: { numFmt: '0.##########' } },
        { width: 12, style: { numFmt: PRICE_FMT } },
        { width: 6 },
        { width: 10 },
        { width: 9 },
        { width: 12 },
        { width: 9 },
        { width: 9 },
        { width: 16, style: { numFmt: QTY_FMT } },
        { width: 16, style: { numFmt: MONEY_FMT } },
        { width: 24, style: { numFmt: TIME_FMT } },
        { width: 24, style: { numFmt: TIME_FMT } },
      ];
      titleRow(
        ws,
        `Corporate actions with ex-date in ${p.periodFrom} to ${p.periodTo}, as applied to the portfolios`,
      );
      headerRow(ws, [
        'Action',
        'Ticker',
        'Type',
        'Ex-date',
        'Payment date',
        'Ratio',
        'Amount',
        'Ccy',
        'Status',
        'Revision',
        'Portfolio',
        'Entry',
        'Applied rev.',
        'Quantity delta',
        'Cash amount',
        'Applied at',
        'Paid at',
      ]);
      for (const a of actions) {
        ws.addRow([
          a.action_id,
          a.ticker,
          a.action_type,
          day(a.ex_date),
          day(a.payment_date),
          num(a.ratio),
          num(a.amount),
          a.currency,
          a.status,
          a.revision,
          a.portfolio_id ?? '(not applied)',
          a.entry,
          a.action_revision,
          num(a.quantity_delta),
          num(a.cash_amount),
          a.applied_at,
          a.paid_at,
        ]).commit();
      }
      ws.autoFilter = { from: { row: 2, column: 1 }, to: { row: 2 + actions.length, column: 17 } };
      ws.commit();
      sheets.push({ name: 'Corporate actions', rows: actions.length, query: REPORT_SQL.actions });
    }

    // ---- About ---------------------------------------------------------------------------
    {
      const asOf = await snap.dataAsOf(p.periodLabel, p.portfolioIds);
      const ws = wb.addWorksheet('About', { pageSetup: { ...printSetup(1), printTitlesRow: undefined } });
      ws.columns = [{ width: 22 }, { width: 14, style: { alignment: { vertical: 'top' } } }, { width: 120 }];
      titleRow(ws, 'About this report');
      const kv: [string, ExcelJS.CellValue][] = [
        ['Report', 'reports.variance-excel (variance attribution)'],
        ['Period', p.periodLabel],
        ['Period from', p.periodFrom],
        ['Period to', p.periodTo],
        ['Portfolios', p.portfolioIds ? p.portfolioIds.join(', ') : 'all with variance rows in the period'],
        ['Parameters', JSON.stringify(p.params)],
        ['Run id', p.runId],
        ['Version', p.version],
        ['Job id', p.jobId ?? ''],
        ['Data as of', asOf ?? 'no rows'],
        ['Generated at', p.generatedAt],
        ['Detail rows', totalRows],
        ['Return %', 'Total P&L ÷ |MV start|; blank when MV start is 0'],
        [
          'Totals',
          'Live SUM/SUBTOTAL formulas; their stored results are the database sums (decimal, to the cent)',
        ],
      ];
      for (const [k, v] of kv) {
        const row = ws.addRow([k, null, v]);
        row.getCell(1).font = TOTAL_FONT;
        if (v instanceof Date) row.getCell(3).numFmt = TIME_FMT;
        row.commit();
      }
      ws.addRow([]).commit();
      headerRow(ws, ['Sheet', 'Rows', 'Source query ($1 = period label, $2 = portfolio ids or null)']);
      const about = { name: 'About', rows: kv.length + sheets.length, query: 'parameters of the run' };
      for (const s of [...sheets, about]) {
        const row = ws.addRow([s.name, s.rows, s.query.replace(/\s+/g, ' ')]);
        row.getCell(3).alignment = { wrapText: true, vertical: 'top' };
        row.commit();
      }
      ws.commit();
      sheets.push(about);
    }

    check();
    await Promise.race([wb.commit(), sinkFailed]);
    // The writer resolves when the zip ended; the sink has flushed when it emitted 'finish'.
    if (!out.writableFinished) await Promise.race([new Promise((r) => out.once('finish', r)), sinkFailed]);
    check();
    return { detailRows: written, sheets, portfolios };
  } catch (err) {
    // Stop the zip: nothing more reaches the sink.
    (wb as unknown as { zip: { abort(): void } }).zip.abort();
    throw err;
  }
}

/** Bytes the zip has not compressed yet: hold the producer above this. */
export const MAX_BACKLOG_BYTES = 4 * 1024 * 1024;

interface StreamState {
  length?: number;
}
interface PipedStreamBuf {
  buffers?: { length?: number; bufSize?: number }[];
  /** archiver wraps each entry's source in a (readable-stream) PassThrough piped into deflate. */
  pipes?: { _writableState?: StreamState; _readableState?: StreamState }[];
}

/**
 * What the sheet has written that the zip has not yet taken in and compressed. exceljs's
 * StreamBuf pushes into the zip's deflate stream ignoring its backpressure, and deflate runs
 * chunk by chunk on the thread pool, each chunk needing an event-loop turn: a producer that builds
 * rows synchronously from a 2,000-row cursor batch starves it, and the backlog (memory) grows
 * with the report (44 MB behind after 50,000 rows, measured). Measured where exceljs and archiver
 * keep it: the StreamBuf's own buffers (an entry the zip has not reached yet) and the buffers of the
 * PassThrough archiver pipes the entry through into deflate (internal fields of exceljs 4.4 and
 * archiver 5; if they move, the measure reads 0 and the render still works, unthrottled).
 */
function backlog(ws: WS): number {
  const sb = (ws as unknown as { stream: PipedStreamBuf }).stream;
  let n = 0;
  for (const b of sb.buffers ?? []) n += b.length ?? b.bufSize ?? 0;
  for (const p of sb.pipes ?? []) n += (p._writableState?.length ?? 0) + (p._readableState?.length ?? 0);
  return n;
}

/** Waits (yielding the event loop to zlib and the sink) until the backlog is under the limit. */
async function drain(ws: WS, check: () => void): Promise<void> {
  while (backlog(ws) > MAX_BACKLOG_BYTES) {
    check();
    await new Promise((r) => setTimeout(r, 1));
  }
}

/**
 * Data bars on `ref`. exceljs's streaming writer renders a dataBar rule with an x14 extension
 * reference (`<extLst>…<x14:id/>`) but never writes the worksheet-level x14 extension it refers to
 * (the in-memory writer does), leaving an empty, dangling id. So the sheet writes a plain
 * ECMA-376 data bar itself, in the writer's own conditional-formatting slot (after autoFilter,
 * before pageMargins, as the schema orders them).
 */
function dataBars(ws: WS, refs: string[]): void {
  const xml = refs
    .map(
      (ref, i) =>
        `<conditionalFormatting sqref="${ref}"><cfRule type="dataBar" priority="${i + 1}"><dataBar>` +
        '<cfvo type="min"/><cfvo type="max"/><color rgb="FF5B9BD5"/></dataBar></cfRule></conditionalFormatting>',
    )
    .join('');
  const writer = ws as unknown as { _writeConditionalFormatting(): void; stream: { write(s: string): void } };
  writer._writeConditionalFormatting = function write(): void {
    this.stream.write(xml);
  };
}
