/**
 * The few HTML pages auth serves (the built-in provider's login form, logout, and error pages).
 * Every interpolated value is escaped; pages forbid framing (clickjacking on the login form) and
 * load nothing from anywhere.
 */
import type { Response } from 'express';

export function escapeHtml(value: string): string {
  return value.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

const STYLE = `
  body { font-family: system-ui, sans-serif; background: #f4f5f7; margin: 0; }
  main { max-width: 22rem; margin: 10vh auto; background: #fff; padding: 2rem; border-radius: 8px;
         box-shadow: 0 1px 4px rgba(0,0,0,.15); }
  h1 { font-size: 1.25rem; margin-top: 0; }
  label { display: block; margin: 1rem 0 .25rem; font-size: .9rem; }
  input[type=text], input[type=password] { width: 100%; box-sizing: border-box; padding: .5rem; }
  button { margin-top: 1.5rem; width: 100%; padding: .6rem; font-size: 1rem; cursor: pointer; }
  .error { color: #b00020; font-size: .9rem; }
  .muted { color: #666; font-size: .85rem; }
`;

export function sendPage(res: Response, status: number, title: string, body: string): void {
  res
    .status(status)
    .set('Content-Type', 'text/html; charset=utf-8')
    .set('Cache-Control', 'no-store')
    .set('X-Frame-Options', 'DENY')
    .set(
      'Content-Security-Policy',
      "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    )
    .send(
      `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
        `<meta name="viewport" content="width=device-width, initial-scale=1">` +
        `<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>` +
        `<body><main>${body}</main></body></html>`,
    );
}

export function messagePage(
  res: Response,
  status: number,
  title: string,
  message: string,
  link?: { href: string; text: string },
): void {
  const a = link ? `<p><a href="${escapeHtml(link.href)}">${escapeHtml(link.text)}</a></p>` : '';
  sendPage(res, status, title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>${a}`);
}

export function loginPage(
  res: Response,
  opts: {
    status: number;
    action: string;
    clientName: string;
    hidden: Record<string, string>;
    username?: string;
    error?: string;
  },
): void {
  const hidden = Object.entries(opts.hidden)
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
    .join('');
  const error = opts.error ? `<p class="error" role="alert">${escapeHtml(opts.error)}</p>` : '';
  sendPage(
    res,
    opts.status,
    'Sign in',
    `<h1>Sign in</h1><p class="muted">to continue to ${escapeHtml(opts.clientName)}</p>${error}` +
      `<form method="post" action="${escapeHtml(opts.action)}">${hidden}` +
      `<label for="username">Username</label>` +
      `<input type="text" id="username" name="username" autocomplete="username" required autofocus value="${escapeHtml(opts.username ?? '')}">` +
      `<label for="password">Password</label>` +
      `<input type="password" id="password" name="password" autocomplete="current-password" required>` +
      `<button type="submit">Sign in</button></form>`,
  );
}
