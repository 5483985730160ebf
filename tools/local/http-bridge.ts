// What the local API and the local Function URL share: reading a request, deciding whether its body
// is text or must be base64-encoded the way AWS does, and writing a Lambda result back as HTTP.

import { once } from 'node:events';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

export class PayloadTooLargeError extends Error {
  override readonly name = 'PayloadTooLargeError';
}

export async function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    // Keep draining instead of destroying the socket, so that the client still gets our 413.
    if (size <= limitBytes) chunks.push(chunk as Buffer);
  }
  if (size > limitBytes) throw new PayloadTooLargeError(`request body over ${limitBytes} bytes`);
  return Buffer.concat(chunks);
}

/**
 * Text bodies reach the handler as strings, everything else base64-encoded. Note what is missing:
 * `application/x-www-form-urlencoded` is not text to a Function URL, so Twilio's callbacks arrive
 * base64-encoded in AWS, and must locally too.
 */
export function isTextContent(contentType: string | undefined): boolean {
  if (!contentType) return true;
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return (
    type.startsWith('text/') ||
    type === 'application/json' ||
    type.endsWith('+json') ||
    type === 'application/xml' ||
    type.endsWith('+xml') ||
    type === 'application/javascript'
  );
}

export function encodeBody(
  body: Buffer,
  contentType: string | undefined,
): { body: string; isBase64Encoded: boolean } {
  return isTextContent(contentType)
    ? { body: body.toString('utf8'), isBase64Encoded: false }
    : { body: body.toString('base64'), isBase64Encoded: true };
}

/** Header pairs in arrival order with their original case (Node's `headers` loses both). */
export function rawHeaderPairs(req: IncomingMessage): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2)
    pairs.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!]);
  return pairs;
}

export function sourceIp(req: IncomingMessage): string {
  return (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
}

export function splitUrl(rawUrl: string | undefined): { rawPath: string; rawQueryString: string } {
  const url = rawUrl ?? '/';
  const q = url.indexOf('?');
  return q === -1
    ? { rawPath: url, rawQueryString: '' }
    : { rawPath: url.slice(0, q), rawQueryString: url.slice(q + 1) };
}

export interface HttpResult {
  statusCode: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

export function sendResult(res: ServerResponse, result: HttpResult): void {
  for (const [name, value] of Object.entries(result.headers)) res.setHeader(name, value);
  res.setHeader('content-length', result.body.length);
  res.writeHead(result.statusCode);
  res.end(result.body);
}

export function jsonResult(
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): HttpResult {
  return {
    statusCode,
    headers: { 'content-type': 'application/json', ...headers },
    body: Buffer.from(JSON.stringify(body)),
  };
}

export async function listen(server: Server, port: number, host: string): Promise<string> {
  server.listen(port, host);
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([error]) => {
      throw error;
    }),
  ]);
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('server has no port');
  return `http://${host}:${address.port}`;
}

/** Stops accepting, and ends idle keep-alive connections so that close() does not wait for them. */
export async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  const closed = once(server, 'close');
  server.close();
  server.closeIdleConnections();
  // Requests still in flight get a moment to finish; then their sockets go too.
  const timer = setTimeout(() => server.closeAllConnections(), 2_000);
  await closed;
  clearTimeout(timer);
}
