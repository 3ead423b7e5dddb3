/**
 * The demo's last table: each portfolio's variance attribution for the quarter the flow computed
 * (variance.quarterly), from the database (repos.generator.varianceSummary, sums in numeric), as
 * plain text lines. Money is printed from the numeric strings as they are (thousands grouped,
 * never through a binary float), and each line is checked: corp + qty + price + FX = total.
 */
import { dec, sum } from '../core/domain/money.ts';
import type { VarianceSummaryRow } from '../core/db/repositories/generator.ts';

/** `-1234567.5` → `-1,234,567.50`; null → `n/a`. */
export function groupedMoney(value: string | null): string {
  if (value === null) return 'n/a';
  const fixed = dec(value).toFixed(2);
  const negative = fixed.startsWith('-');
  const [whole = '0', cents = '00'] = (negative ? fixed.slice(1) : fixed).split('.');
  return `${negative ? '-' : ''}${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${cents}`;
}

/** The summary table's lines; a line saying why when there is nothing to show. */
export function varianceSummaryLines(quarter: string | null, rows: readonly VarianceSummaryRow[]): string[] {
  if (quarter === null)
    return ['variance: the generated range holds no complete quarter, nothing to attribute'];
  if (rows.length === 0) return [`variance ${quarter}: variance.quarterly wrote no rows for this quarter`];
  const header = ['portfolio', 'MV start', 'MV end', 'corp', 'qty', 'price', 'FX', 'total'];
  const flagged = rows.some((r) => r.flagged > 0);
  if (flagged) header.push('flagged');
  const body = rows.map((r) => {
    const cells = [
      r.portfolioId ?? 'all',
      groupedMoney(r.mvStart),
      groupedMoney(r.mvEnd),
      groupedMoney(r.corporateAction),
      groupedMoney(r.quantity),
      groupedMoney(r.price),
      groupedMoney(r.fx),
      groupedMoney(r.total),
    ];
    if (flagged) cells.push(String(r.flagged));
    return cells;
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((cells) => (cells[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  const out = [`variance ${quarter} (base currency; corp includes distributions received):`, line(header)];
  out.push(line(widths.map((w) => '-'.repeat(w))));
  for (const cells of body.slice(0, -1)) out.push(line(cells));
  const total = body.at(-1);
  if (total && rows.at(-1)?.portfolioId === null) {
    out.push(line(widths.map((w) => '-'.repeat(w))));
    out.push(line(total));
  } else if (total) out.push(line(total));
  const off = rows.filter((r) => {
    const parts = [r.corporateAction, r.quantity, r.price, r.fx];
    if (r.total === null || parts.some((p) => p === null)) return false;
    return !sum(parts.map((p) => dec(p ?? '0'))).equals(dec(r.total));
  });
  out.push(
    off.length === 0
      ? 'corp + qty + price + FX = total on every line, to the cent'
      : `corp + qty + price + FX differs from total for ${off.map((r) => r.portfolioId ?? 'all').join(', ')}`,
  );
  if (flagged) out.push('flagged rows (a missing price or rate) are not in the sums');
  return out;
}
