/**
 * Bull Board at /admin/queues, for operators only: every queue the process knows, with its jobs,
 * logs, progress and Job Schedulers. The operator guard redirects browsers to the OAuth2 login,
 * answers 401 to the board's own XHR calls when the session is gone, and refuses state-changing
 * calls (retry, clean, pause, ...) that do not come from our own origin (CSRF).
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import type express from 'express';
import { queuesByStage } from '../jobs/stages.ts';
import type { Auth } from './auth/index.ts';

export const ADMIN_BASE_PATH = '/admin/queues';

/**
 * One adapter per queue, in pipeline order, named `<stage>:<queue>` with ':' as the board's
 * delimiter (BullMQ queue names cannot contain ':'), so the board's menu groups queues under their
 * stage; the description is the catalogue's. Queues the catalogue does not know come last, as is.
 */
export function boardAdapters(queues: Queue[]): BullMQAdapter[] {
  const byName = new Map(queues.map((q) => [q.name, q]));
  const known = queuesByStage().flatMap((info) => {
    const q = byName.get(info.queueName);
    byName.delete(info.queueName);
    return q
      ? [new BullMQAdapter(q, { prefix: `${info.stage}:`, delimiter: ':', description: info.description })]
      : [];
  });
  return [...known, ...[...byName.values()].map((q) => new BullMQAdapter(q))];
}

export function mountAdmin(app: express.Express, opts: { auth: Auth; queues: Queue[] }): void {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(ADMIN_BASE_PATH);
  createBullBoard({
    queues: boardAdapters(opts.queues),
    serverAdapter,
    options: {
      uiConfig: {
        boardTitle: 'Market data',
        miscLinks: [{ text: 'Log out', url: '/admin/logout' }],
      },
    },
  });
  const board = serverAdapter.getRouter() as express.Router;
  app.use(ADMIN_BASE_PATH, opts.auth.session, opts.auth.requireOperator, board);
}
