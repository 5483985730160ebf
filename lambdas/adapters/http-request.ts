// (adapter) One HTTP(S) request through node:http, its answer read whole. Not Node's fetch: a request
// through it costs about five times the CPU (1.25 ms against 0.26 ms, client and server together,
// `docs/benchmarks.md`), which a dispatcher placing hundreds of calls a second pays on every one.
// Redirects are answers like any other (not followed).

import type { Agent as HttpAgent } from 'node:http';
import { request as plainRequest } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { request as tlsRequest } from 'node:https';

export interface HttpAgents {
  http: HttpAgent;
  https: HttpsAgent;
}

/**
 * Sends one request and reads the whole answer. Rejects with an error named `TimeoutError` once
 * `timeoutMs` pass without the whole answer (the body too: an answer that stops halfway is a
 * timeout), with the signal's reason when `signal` aborts, and with the socket's error (refused,
 * reset) otherwise.
 */
export function sendHttpRequest(
  url: string,
  options: {
    method: string;
    headers: Record<string, string>;
    body?: string | undefined;
    timeoutMs: number;
    agents: HttpAgents;
    signal?: AbortSignal;
  },
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const secure = target.protocol === 'https:';
    const payload = options.body === undefined ? undefined : Buffer.from(options.body);
    const req = (secure ? tlsRequest : plainRequest)(target, {
      method: options.method,
      headers: payload ? { ...options.headers, 'content-length': String(payload.length) } : options.headers,
      agent: secure ? options.agents.https : options.agents.http,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const timer = setTimeout(() => {
      req.destroy(
        Object.assign(new Error(`no answer within ${options.timeoutMs} ms`), { name: 'TimeoutError' }),
      );
    }, options.timeoutMs);
    const fail = (error: Error) => {
      clearTimeout(timer);
      reject(error);
    };
    req.on('error', fail);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', fail);
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.end(payload);
  });
}
