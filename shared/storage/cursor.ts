/**
 * Opaque paging cursors (`nextCursor` of the listing routes): a position as base64url JSON plus a
 * check tag over the position and the scope it belongs to (a collection key, a job). The tag is a
 * plain hash, not a secret MAC: it turns a truncated, hand-edited or foreign cursor (another
 * collection, a re-created one) into a clean 400 instead of a silently wrong page. Forging a valid
 * cursor only moves the start of a listing the caller may read anyway.
 */
import { createHash } from 'node:crypto';

/** Longer cursors are refused before any decoding (ours are far shorter). */
export const MAX_CURSOR_LENGTH = 2048;

function tag(scope: string, body: string): string {
  return createHash('sha256').update(scope).update('\n').update(body).digest('base64url').slice(0, 16);
}

export function encodeCursor(scope: string, position: unknown): string {
  const body = Buffer.from(JSON.stringify(position), 'utf8').toString('base64url');
  return `${body}.${tag(scope, body)}`;
}

/** The position in `cursor`, or undefined when it is malformed or was not issued for `scope`. */
export function decodeCursor(scope: string, cursor: string): unknown {
  if (cursor.length === 0 || cursor.length > MAX_CURSOR_LENGTH) return undefined;
  const m = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{16})$/.exec(cursor);
  if (!m || tag(scope, m[1]) !== m[2]) return undefined;
  try {
    return JSON.parse(Buffer.from(m[1], 'base64url').toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}
