import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { MiddlewareHandler } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';

/**
 * Who may use the page. It can start materializations and backfills, so:
 *  - it listens on loopback unless told otherwise, and anywhere else only with a token;
 *  - with a token, every request carries it (an `Authorization: Bearer` header for scripts, or
 *    the cookie set when a person first opens the page's address with `?token=…`);
 *  - on loopback, a request whose Host is not a loopback name is refused (DNS rebinding: a
 *    hostile site's name pointed at 127.0.0.1 would otherwise be "same origin");
 *  - a change (POST) must be JSON from the page's own origin, which a cross-site form cannot send
 *    without a CORS preflight this server never answers (cross-site request forgery).
 */

export const TOKEN_COOKIE = 'sparkify_ui_token';

export class UiAccessError extends Error {
  override name = 'UiAccessError';
}

export function isLoopbackAddress(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) === 6) return bare === '::1';
  return false;
}

/** A Host header's name without its port: `127.0.0.1:8240` → `127.0.0.1`, `[::1]:80` → `[::1]`. */
function hostName(header: string): string {
  return header.startsWith('[') ? header.slice(0, header.indexOf(']') + 1) : header.replace(/:\d+$/, '');
}

/** Refuses a binding that would expose the page without a token. */
export function checkBinding(host: string, token: string | undefined): void {
  if (!isLoopbackAddress(host) && token === undefined) {
    throw new UiAccessError(
      `the page would listen on ${host}, beyond this machine, without a token: set SPARKIFY_UI_TOKEN (16 characters or more), or keep the default host 127.0.0.1`,
    );
  }
}

function sameSecret(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  // Equal-length digests, so the comparison takes the same time whatever is given.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

export function guard(opts: { loopback: boolean; token?: string }): MiddlewareHandler {
  return async (c, next) => {
    const host = c.req.header('host') ?? '';
    if (opts.loopback && !isLoopbackAddress(hostName(host))) {
      return c.json({ error: `refused: Host ${JSON.stringify(host)} is not this machine's loopback` }, 403);
    }
    const api = c.req.path.startsWith('/api/');
    if (opts.token !== undefined) {
      const offered = c.req.query('token');
      if (offered !== undefined && c.req.method === 'GET' && !api) {
        if (!sameSecret(offered, opts.token)) return c.text('wrong token', 401);
        setCookie(c, TOKEN_COOKIE, opts.token, { httpOnly: true, sameSite: 'Strict', path: '/' });
        const url = new URL(c.req.url);
        url.searchParams.delete('token');
        return c.redirect(`${url.pathname}${url.search}`, 303);
      }
      const bearer = /^Bearer (.+)$/.exec(c.req.header('authorization') ?? '')?.[1];
      if (!sameSecret(bearer ?? getCookie(c, TOKEN_COOKIE), opts.token)) {
        const why =
          'a token is required: open the page with ?token=<SPARKIFY_UI_TOKEN>, or send Authorization: Bearer <token>';
        return api ? c.json({ error: why }, 401) : c.text(why, 401);
      }
    }
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      if (!(c.req.header('content-type') ?? '').startsWith('application/json')) {
        return c.json({ error: 'changes are JSON requests (Content-Type: application/json)' }, 415);
      }
      const origin = c.req.header('origin');
      const site = c.req.header('sec-fetch-site');
      // https too: behind a TLS-terminating proxy the browser's origin is https.
      const ours = [`http://${host}`, `https://${host}`];
      if (
        (origin !== undefined && !ours.includes(origin)) ||
        (site !== undefined && !['same-origin', 'none'].includes(site))
      ) {
        return c.json({ error: 'refused: a change must come from this page itself' }, 403);
      }
    }
    await next();
  };
}
