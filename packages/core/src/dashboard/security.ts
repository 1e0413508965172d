/**
 * The dashboard's guards: which binds count as loopback, and CSRF protection by
 * a signed double-submit cookie (the page carries HMAC(secret, cookie); an action
 * must send it back in `X-CSRF-Token` with the cookie) plus an Origin check.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** The cookie holding the CSRF nonce. */
export const CSRF_COOKIE = 'celeriac_dashboard_csrf';
/** The header an action sends the token in. */
export const CSRF_HEADER = 'x-csrf-token';

/** Is this address or host name a loopback one (127.0.0.0/8, ::1, localhost)? */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(h);
}

/** The cookies of a request, by name. */
export function cookiesOf(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq).trim(), decodeURIComponent(part.slice(eq + 1).trim()));
  }
  return out;
}

/** Issues and checks CSRF tokens for one dashboard. */
export class CsrfGuard {
  private readonly secret: Buffer;

  constructor(secret?: string | Buffer) {
    this.secret = secret === undefined ? randomBytes(32) : Buffer.from(secret);
  }

  private sign(nonce: string): string {
    return createHmac('sha256', this.secret).update(nonce).digest('base64url');
  }

  /**
   * The token for this request's page, and the cookie to set when the request has
   * no valid nonce yet (`Set-Cookie` value, or undefined).
   */
  issue(req: IncomingMessage, cookiePath: string, secure: boolean): { token: string; setCookie?: string } {
    const nonce = cookiesOf(req).get(CSRF_COOKIE);
    if (nonce && /^[A-Za-z0-9_-]{22,}$/.test(nonce)) return { token: this.sign(nonce) };
    const fresh = randomBytes(18).toString('base64url');
    const cookie = `${CSRF_COOKIE}=${fresh}; Path=${cookiePath || '/'}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
    return { token: this.sign(fresh), setCookie: cookie };
  }

  /** Does the request carry the cookie and the matching token (header, or `token` given from a parsed body)? */
  verify(req: IncomingMessage, bodyToken?: string): boolean {
    const nonce = cookiesOf(req).get(CSRF_COOKIE);
    const header = req.headers[CSRF_HEADER];
    const sent = (Array.isArray(header) ? header[0] : header) ?? bodyToken;
    if (!nonce || !sent) return false;
    const expected = Buffer.from(this.sign(nonce));
    const given = Buffer.from(sent);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }
}

/**
 * Did a browser send this from another site? True when `Sec-Fetch-Site` says
 * cross-site / same-site, or `Origin` names another host than `Host`.
 */
export function crossSite(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return true;
  const origin = req.headers.origin;
  if (!origin || origin === 'null') return origin === 'null';
  try {
    return new URL(origin).host !== (req.headers['x-forwarded-host'] ?? req.headers.host);
  } catch {
    return true;
  }
}

/** Did the request come from a browser (it sends Origin or Sec-Fetch-Site on a POST), not a script? */
export function fromBrowser(req: IncomingMessage): boolean {
  return req.headers.origin !== undefined || req.headers['sec-fetch-site'] !== undefined;
}
