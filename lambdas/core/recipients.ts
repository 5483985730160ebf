// (core) The per-recipient rules the acquire's checks share, read by the core and by both stores
// (DynamoDB, in memory) alike: which frequency window a time falls in, and whether a suppression is in
// force. Types are all it imports, so that the functions take these without the API's validation.

import type { Suppression } from './ports.ts';

/**
 * The frequency window `nowMs` falls in: windows are fixed, `windowMs` long, counted from the epoch,
 * so that every dispatcher names the same counter without reading anything first. At most `maxCalls`
 * calls fall in one window (and so at most twice that in any `windowMs` that straddles two).
 */
export function frequencyWindow(nowMs: number, windowMs: number): { index: number; endsAt: number } {
  const index = Math.floor(nowMs / windowMs);
  return { index, endsAt: (index + 1) * windowMs };
}

/** In force at `nowMs`: no expiry, or one still ahead. */
export function isInForce(suppression: Pick<Suppression, 'expiresAt'>, nowMs: number): boolean {
  return suppression.expiresAt === undefined || suppression.expiresAt > new Date(nowMs).toISOString();
}
