// Twilio's wire formats as the simulator speaks them: the error shape, the signature, dates, form
// bodies and query parameters.

import { createHmac } from 'node:crypto';
import { Agent as HttpAgent, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { HttpAgents } from '../../lambdas/adapters/http-request.ts';
import type { ApiError } from './types.ts';

export const API_VERSION = '2010-04-01';
const MAX_BODY_BYTES = 1 << 20;

export class HttpError extends Error {
  constructor(readonly apiError: ApiError) {
    super(apiError.message);
  }
}

export function apiError(status: number, code: number, message: string): HttpError {
  return new HttpError({ status, code, message });
}

/** Twilio's X-Twilio-Signature: base64(HMAC-SHA1(token, url + sorted name+value pairs)). */
export function twilioSignature(
  authToken: string,
  url: string,
  params: Record<string, string | string[]>,
): string {
  const data = Object.keys(params)
    .sort()
    .reduce((acc, key) => {
      const value = params[key]!;
      // Repeated parameters: twilio-node signs each distinct value, sorted.
      const values = Array.isArray(value) ? [...new Set(value)].sort() : [value];
      return acc + values.map((v) => key + v).join('');
    }, url);
  return createHmac('sha1', authToken).update(Buffer.from(data, 'utf-8')).digest('base64');
}

/** RFC 2822 in UTC as Twilio writes it: `Tue, 31 Aug 2010 20:36:28 +0000`. */
export function rfc2822(ms: number): string {
  return new Date(ms).toUTCString().replace('GMT', '+0000');
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendError(res: ServerResponse, error: ApiError): void {
  sendJson(res, error.status, {
    code: error.code,
    message: error.message,
    more_info: `https://www.twilio.com/docs/errors/${error.code}`,
    status: error.status,
  });
}

export function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

export function boundedInt(
  value: string | null,
  fallback: number,
  min: number,
  max: number,
  name: string,
): number {
  if (value === null || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
    throw apiError(400, 20001, `Invalid ${name}: ${value}`);
  }
  return parsed;
}

export function boundedIntOr(value: string | null, fallback: number, min: number, max: number): number {
  const parsed = Number(value);
  return value === null || !Number.isInteger(parsed) ? fallback : Math.min(max, Math.max(min, parsed));
}

export async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw apiError(413, 20001, 'Request body too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf-8'));
}

/**
 * The agents of the simulator's own requests (status callbacks): a connection each, as Twilio's
 * callbacks come (a reused socket the webhook's server has just closed would fail a callback that
 * Twilio would have delivered). The requests go through node:http, not Node's fetch: the simulator
 * shares its process with the stack it drives, and at hundreds of calls a second fetch's CPU was a
 * large part of that process's work.
 */
export const CALLBACK_AGENTS: HttpAgents = {
  http: new HttpAgent({ keepAlive: false }),
  https: new HttpsAgent({ keepAlive: false }),
};
