/**
 * Report catalogue and downloads (issue 10), behind `results:read`:
 * - `GET /api/reports` lists runs (filter by type, period, status; newest first, paginated);
 * - `GET /api/reports/{id}` one run;
 * - `GET /api/reports/{id}/download` streams a SUCCEEDED run's file from the PostgreSQL store
 *   (report_chunks), chunk by chunk (never the whole file in memory), with its media type,
 *   Content-Disposition, Content-Length, `ETag` = the quoted SHA-256, `If-None-Match` → 304, and
 *   one byte range (`Range: bytes=a-b`, `a-`, `-n`) → 206 with Content-Range, 416 when the range
 *   starts past the end; several ranges, or an `If-Range` that does not match, get the whole file.
 *   A run that is RUNNING or FAILED has no file: 409 naming its status (and error).
 * Renders are triggered through the generic jobs route: `POST /api/jobs/reports.variance-excel`.
 */
import type { Response } from 'express';
import { z } from 'zod';
import type { Deps } from '../../core/deps.ts';
import type { ReportRun } from '../../core/db/repositories/reports.ts';
import { decimalInt, strictObject } from '../../core/input.ts';
import { ConflictError, defineRoute, HttpError, NotFoundError, StreamReply, type RouteDef } from '../http.ts';

export const XLSX_MEDIA_TYPE = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
const MAX_ID = Number.MAX_SAFE_INTEGER;

const idParams = z.object({
  id: decimalInt({ min: 1, max: MAX_ID })
    .unwrap()
    .openapi({ param: { description: 'Report run id (decimal digits).' } }),
});

const statusEnum = z.enum(['RUNNING', 'SUCCEEDED', 'FAILED']);

const listQuery = strictObject({
  type: z
    .string()
    .regex(/^[a-z0-9-]{1,50}$/, 'must be a report type like variance-excel')
    .optional(),
  period: z
    .string()
    .regex(
      /^([0-9]{4}Q[1-4]|[0-9]{4}-[0-9]{2}|[0-9]{4}-[0-9]{2}-[0-9]{2}\/[0-9]{4}-[0-9]{2}-[0-9]{2})$/,
      'must be a period label like 2025Q1, 2025-03 or 2025-01-01/2025-03-31',
    )
    .optional(),
  status: statusEnum.optional(),
  limit: decimalInt({ min: 1, max: 500, default: 50 }),
  offset: decimalInt({ min: 0, max: 1_000_000_000, default: 0 }),
});

const Report = z
  .object({
    id: z.number().int(),
    type: z.string().openapi({ example: 'variance-excel' }),
    period: z.string().openapi({ example: '2025Q1' }),
    period_from: z.string().nullable(),
    period_to: z.string().nullable(),
    portfolio_ids: z
      .array(z.string())
      .nullable()
      .openapi({ description: 'null = every portfolio with rows.' }),
    version: z.number().int().openapi({ description: 'Per (type, period, portfolio set), from 1.' }),
    status: statusEnum,
    params: z.record(z.string(), z.unknown()),
    job_id: z.string().nullable(),
    file_name: z.string().nullable(),
    bytes: z.number().int().nullable(),
    rows: z.number().int().nullable().openapi({ description: 'Detail rows written.' }),
    sha256: z.string().nullable(),
    error: z.string().nullable(),
    started_at: z.string(),
    finished_at: z.string().nullable(),
    render_ms: z.number().int().nullable(),
    download: z.string().nullable().openapi({ description: 'Download path when SUCCEEDED.' }),
  })
  .openapi('ReportRun');

const ReportList = z
  .object({
    total: z.number().int(),
    limit: z.number().int(),
    offset: z.number().int(),
    reports: z.array(Report),
  })
  .openapi('ReportRunList');

function toJson(r: ReportRun): z.input<typeof Report> {
  return {
    id: r.id,
    type: r.reportType,
    period: r.periodLabel,
    period_from: r.periodFrom,
    period_to: r.periodTo,
    portfolio_ids: r.portfolioIds,
    version: r.version,
    status: r.status,
    params: r.params,
    job_id: r.jobId,
    file_name: r.fileName,
    bytes: r.bytes,
    rows: r.rowCount,
    sha256: r.sha256,
    error: r.error,
    started_at: r.startedAt.toISOString(),
    finished_at: r.finishedAt?.toISOString() ?? null,
    render_ms: r.renderMs,
    download: r.status === 'SUCCEEDED' ? `/api/reports/${r.id}/download` : null,
  };
}

/**
 * The one range a `Range` header asks for, as [start, end] inclusive; 'all' for none, several,
 * or one we do not understand (the whole file is sent); 'unsatisfiable' past the end.
 */
export function parseRange(
  header: string | undefined,
  size: number,
): [number, number] | 'all' | 'unsatisfiable' {
  if (!header) return 'all';
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'all';
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    return size === 0 ? 'unsatisfiable' : [Math.max(0, size - n), size - 1];
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (!Number.isSafeInteger(start) || start >= size) return 'unsatisfiable';
  if (end < start) return 'all';
  return [start, end];
}

const etagMatches = (header: string | undefined, etag: string): boolean =>
  header !== undefined &&
  header.split(',').some((t) => {
    const v = t.trim().replace(/^W\//, '');
    return v === '*' || v === etag;
  });

export function reportsRoutes(deps: Deps): RouteDef[] {
  const { repos } = deps;

  async function stream(res: Response, run: ReportRun, start: number, end: number): Promise<void> {
    const layout = await repos.reports.chunkLayout(run.id);
    let offset = 0;
    for (const c of layout) {
      const cStart = offset;
      const cEnd = offset + c.bytes - 1;
      offset += c.bytes;
      if (cEnd < start) continue;
      if (cStart > end) break;
      if (res.destroyed) return;
      const from = Math.max(start, cStart) - cStart;
      const to = Math.min(end, cEnd) - cStart;
      const slice = await repos.reports.chunkSlice(run.id, c.seq, from, to - from + 1);
      if (!res.write(slice))
        await new Promise<void>((resolve) => {
          const done = (): void => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
    }
    if (offset !== run.bytes)
      throw new Error(`report run ${run.id}: store holds ${offset} bytes, catalogue says ${run.bytes}`);
    res.end();
  }

  return [
    defineRoute({
      method: 'get',
      path: '/api/reports',
      summary: 'Report runs',
      description:
        'Report runs, newest first, filtered by type (`variance-excel`), period label and status; `limit` (1–500, default 50) and `offset` page through them, `total` counts all matches.',
      tags: ['reports'],
      access: 'results:read',
      query: listQuery,
      response: ReportList,
      async handler({ query }) {
        const { total, runs } = await repos.reports.list({
          ...(query.type !== undefined ? { type: query.type } : {}),
          ...(query.period !== undefined ? { period: query.period } : {}),
          ...(query.status !== undefined ? { status: query.status } : {}),
          limit: query.limit,
          offset: query.offset,
        });
        return { total, limit: query.limit, offset: query.offset, reports: runs.map(toJson) };
      },
    }),

    defineRoute({
      method: 'get',
      path: '/api/reports/{id}',
      summary: 'One report run',
      description:
        'Status, parameters, period, version, size, SHA-256, row count, timings and the error of a failed run.',
      tags: ['reports'],
      access: 'results:read',
      params: idParams,
      response: Report,
      errors: [404],
      async handler({ params }) {
        const run = await repos.reports.get(params.id);
        if (!run) throw new NotFoundError(`unknown report ${params.id}`);
        return toJson(run);
      },
    }),

    defineRoute({
      method: 'get',
      path: '/api/reports/{id}/download',
      summary: "Download a report's workbook",
      description:
        'The .xlsx file of a SUCCEEDED run, streamed from the store. Headers: Content-Disposition (attachment, the file name), Content-Length, ETag (the quoted SHA-256 of the file), Accept-Ranges. `If-None-Match` with the ETag → 304. One byte range (`Range: bytes=0-99`, `bytes=100-`, `bytes=-100`) → 206 with Content-Range; a range starting past the end → 416; several ranges, or an `If-Range` that is not the ETag, → the whole file (200). 404 for an unknown id; 409 while the run is RUNNING or when it FAILED (no partial file is ever served).',
      tags: ['reports'],
      access: 'results:read',
      params: idParams,
      response: z.string().openapi({ type: 'string', format: 'binary' }),
      mediaType: XLSX_MEDIA_TYPE,
      errors: [404, 409, 416],
      async handler({ params, req }) {
        const run = await repos.reports.get(params.id);
        if (!run) throw new NotFoundError(`unknown report ${params.id}`);
        if (run.status !== 'SUCCEEDED' || run.sha256 === null || run.bytes === null)
          throw new ConflictError(
            `report ${run.id} is ${run.status}${run.error ? `: ${run.error}` : ''}; it has no file to download`,
          );
        const size = run.bytes;
        const etag = `"${run.sha256}"`;
        const name = run.fileName ?? `report-${run.id}.xlsx`;
        return new StreamReply(async (res) => {
          res.setHeader('ETag', etag);
          res.setHeader('Accept-Ranges', 'bytes');
          res.setHeader('Cache-Control', 'private, no-cache');
          if (etagMatches(req.get('if-none-match'), etag)) {
            res.status(304).end();
            return;
          }
          const ifRange = req.get('if-range');
          const range =
            ifRange !== undefined && ifRange !== etag ? 'all' : parseRange(req.get('range'), size);
          if (range === 'unsatisfiable') {
            res.setHeader('Content-Range', `bytes */${size}`);
            throw new HttpError(
              416,
              'range_not_satisfiable',
              `range: ${req.get('range')} is outside the file's ${size} bytes`,
              [{ path: 'range', message: `must start before byte ${size}` }],
            );
          }
          const [start, end] = range === 'all' ? [0, size - 1] : range;
          res.status(range === 'all' ? 200 : 206);
          res.setHeader('Content-Type', XLSX_MEDIA_TYPE);
          res.setHeader(
            'Content-Disposition',
            `attachment; filename="${name.replace(/[^A-Za-z0-9._-]/g, '_')}"`,
          );
          res.setHeader('Content-Length', String(end - start + 1));
          if (range !== 'all') res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
          if (req.method === 'HEAD') {
            res.end();
            return;
          }
          try {
            await stream(res, run, start, end);
          } catch (err) {
            // Headers are gone: cut the connection so the client sees a short body, never a "complete" file.
            deps.logger.error({ err, report: run.id }, 'report download failed mid-stream');
            res.destroy(err instanceof Error ? err : new Error(String(err)));
          }
        });
      },
    }),
  ];
}
