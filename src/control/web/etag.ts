// Conditional GETs for the web view: a weak ETag per body (a hash, computed once per body)
// and If-None-Match matching, so a page that revalidates gets 304 while nothing changed.
import { createHash } from 'node:crypto';
import type http from 'node:http';

/** A weak validator for a body: the same for its gzipped and plain forms. */
export function etagOf(body: string): string {
  return `W/"${createHash('sha1').update(body).digest('base64url').slice(0, 22)}"`;
}

/** Whether the request's If-None-Match names `etag` or `*` (weak comparison, as for GET). */
export function notModified(req: http.IncomingMessage, etag: string): boolean {
  const inm = req.headers['if-none-match'];
  if (!inm) return false;
  const bare = (t: string) => t.trim().replace(/^W\//, '');
  return inm.split(',').some((t) => t.trim() === '*' || bare(t) === bare(etag));
}
