// The local stack without API_KEY, as a web page in the developer's browser meets it: over real HTTP,
// with the headers browsers send. A cross-site POST /runs/<id>/cancel (no preflight, so the browser
// sends it) is refused and the run goes on; a page whose name was rebound to 127.0.0.1 (DNS rebinding)
// is refused on every request, reads of whole phone numbers included; the console's own requests
// (same origin) and the CLI (no Origin) go through; and the Twilio simulator's callbacks to the
// webhook, which name it as WEBHOOK_URL does, are all taken.

import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type CliIo, EXIT, main } from '../../clients/cli/main.ts';
import { type LocalStack, startLocalStack } from '../../tools/local/stack.ts';
import { mulberry32 } from '../../tools/twilio-simulator/simulator.ts';
import { enforceContract, isApiPath } from '../support/contract.ts';

let stack: LocalStack;
let port: number;
// What the API answers these tests, refusals included, must match docs/openapi.json.
const contract = enforceContract(() => stack?.apiUrl);

beforeAll(async () => {
  stack = await startLocalStack({
    port: 0,
    pollers: 2,
    // Calls that stay up until a test ends them, so that a run is still running when it is attacked.
    simulator: { ringMs: 30, talkMs: 60_000, random: mulberry32(21) },
    functionEnv: { POWERTOOLS_METRICS_DISABLED: 'true' },
    onError: (error, where) => console.error(`[local] ${where}:`, error),
  });
  port = Number(new URL(stack.apiUrl).port);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

interface Answer {
  status: number;
  text: string;
  json: { error?: { code?: string; message?: string } } & Record<string, unknown>;
}

/**
 * One request over HTTP with exactly the headers given, Host included (fetch cannot set Host; a
 * rebinding page's browser sends its own name). `host: undefined` sends no Host header at all.
 */
function send(
  url: string,
  options: { method?: string; host?: string | undefined; headers?: Record<string, string>; body?: string },
): Promise<Answer> {
  const target = new URL(url);
  const headers: Record<string, string> = { ...options.headers };
  if ('host' in options) {
    if (options.host !== undefined) headers.host = options.host;
  } else headers.host = target.host;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        hostname: target.hostname,
        port: target.port,
        path: `${target.pathname}${target.search}`,
        method: options.method ?? 'GET',
        headers,
        setHost: false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => {
          let json = {};
          try {
            json = JSON.parse(text);
          } catch {}
          const method = options.method ?? 'GET';
          // The API's documented operations (the guard's 403s included); not the console's files,
          // the webhook, or methods the API does not have.
          if (
            url.startsWith(stack.apiUrl) &&
            isApiPath(target.pathname) &&
            ['GET', 'POST'].includes(method) &&
            headers.host !== undefined
          )
            contract.check({
              method,
              path: target.pathname,
              status: res.statusCode ?? 0,
              headers: new Headers(res.headers as Record<string, string>),
              body: text,
            });
          resolve({ status: res.statusCode ?? 0, text, json });
        });
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** `dialgate …` in this process: the CLI sends no Origin and names the server as its URL does. */
async function cli(args: string[], apiUrl = stack.apiUrl) {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (chunk: string) => (stdout += chunk), isTTY: false, columns: 120 },
    stderr: { write: (chunk: string) => (stderr += chunk), isTTY: false, columns: 120 },
    env: { DIALGATE_API_URL: apiUrl },
  };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

async function status(runId: string): Promise<string> {
  const answer = await send(`${stack.apiUrl}/runs/${runId}`, {});
  expect(answer.status).toBe(200);
  return answer.json.status as string;
}

/** Valid Israeli mobiles (libphonenumber-js max), a fresh block per run. */
let next = 0;
function leads(count: number): { phone: string }[] {
  return Array.from({ length: count }, () => ({ phone: `+97252456${String(7000 + next++)}` }));
}

async function startRun(count: number): Promise<string> {
  const created = await send(`${stack.apiUrl}/runs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ concurrency: 1, leads: leads(count) }),
  });
  expect(created.status, created.text).toBe(202);
  const runId = created.json.run_id as string;
  // Its first call answered and up: there is something to cancel, or a number to read.
  await expect
    .poll(
      () => stack.simulator!.calls().some((call) => call.run === runId && call.status === 'in-progress'),
      {
        timeout: 30_000,
        interval: 50,
      },
    )
    .toBe(true);
  return runId;
}

/** Hangs up every live call, so that runs end and the simulator goes quiet. */
function hangUpAll() {
  for (const call of stack.simulator!.calls().filter((c) => c.endedAt === undefined))
    stack.simulator!.hangUp(call.sid);
}

describe('cross-site requests to the local API (no API key)', () => {
  /** What a page on evil.example makes Chromium send, by `fetch(url, {method: 'POST', mode: 'no-cors'})`. */
  const CROSS_SITE = {
    origin: 'http://evil.example',
    'sec-fetch-site': 'cross-site',
    'sec-fetch-mode': 'no-cors',
    'sec-fetch-dest': 'empty',
    'content-type': 'text/plain;charset=UTF-8',
  };

  test('a cross-site POST /runs/<id>/cancel is refused with 403, in every form a browser sends it; the run goes on', async () => {
    const runId = await startRun(2);
    const cancel = `${stack.apiUrl}/runs/${runId}/cancel?hangup=true`;
    const variants: Record<string, string>[] = [
      CROSS_SITE,
      // A browser without fetch metadata still sends Origin with a POST.
      { origin: 'http://evil.example' },
      // Fetch metadata alone.
      { 'sec-fetch-site': 'cross-site' },
      // A sandboxed frame, or a form posted under `Referrer-Policy: no-referrer`.
      { origin: 'null', 'sec-fetch-site': 'cross-site' },
      // Another server on this machine (a dev server on another port is the same site, not the same origin).
      { origin: 'http://localhost:5173', 'sec-fetch-site': 'same-site' },
      // A form posted from another site.
      {
        origin: 'https://evil.example',
        'sec-fetch-site': 'cross-site',
        'sec-fetch-mode': 'navigate',
        'content-type': 'application/x-www-form-urlencoded',
      },
    ];
    for (const headers of variants) {
      const answer = await send(cancel, { method: 'POST', headers, body: '' });
      expect(answer.status, JSON.stringify(headers)).toBe(403);
      expect(answer.json.error?.code).toBe('forbidden');
      expect(answer.json.error?.message).toMatch(/^POST from another site is refused/);
    }
    // Other state-changing methods too, whatever the path.
    for (const method of ['PUT', 'PATCH', 'DELETE'])
      expect((await send(`${stack.apiUrl}/runs/${runId}`, { method, headers: CROSS_SITE })).status).toBe(403);
    expect(
      (await send(`${stack.apiUrl}/runs`, { method: 'POST', headers: CROSS_SITE, body: '{}' })).status,
    ).toBe(403);

    expect(await status(runId)).toBe('running');
    expect(
      stack.simulator!.calls().filter((call) => call.run === runId && call.endedAt === undefined),
    ).toHaveLength(1);

    // The console's own requests, as Chromium sends them from the page (same origin), go through,
    // under either loopback name the page was opened with.
    const sameOrigin = (host: string) => ({
      origin: `http://${host}`,
      'sec-fetch-site': 'same-origin',
      'sec-fetch-mode': 'cors',
      'sec-fetch-dest': 'empty',
    });
    const paused = await send(`${stack.apiUrl}/runs/${runId}/pause`, {
      method: 'POST',
      headers: sameOrigin(`127.0.0.1:${port}`),
    });
    expect(paused.status, paused.text).toBe(200);
    expect(paused.json.status).toBe('paused');
    const resumed = await send(`${stack.apiUrl}/runs/${runId}/resume`, {
      method: 'POST',
      host: `localhost:${port}`,
      headers: sameOrigin(`localhost:${port}`),
    });
    expect(resumed.status, resumed.text).toBe(200);
    expect(resumed.json.status).toBe('running');
    // Typed into the address bar, or sent by a tool that is not a browser page: `none`.
    expect(
      (
        await send(`${stack.apiUrl}/runs/${runId}/pause`, {
          method: 'POST',
          headers: { 'sec-fetch-site': 'none' },
        })
      ).status,
    ).toBe(200);
    expect((await send(`${stack.apiUrl}/runs/${runId}/resume`, { method: 'POST' })).status).toBe(200);

    // The CLI sends no Origin: it cancels, by either loopback name.
    const canceled = await cli(['runs', 'cancel', runId, '--hangup'], `http://localhost:${port}`);
    expect(canceled.code, canceled.stderr).toBe(EXIT.ok);
    expect(canceled.stdout).toMatch(new RegExp(`^${runId} (canceling|canceled)\n$`));
    await expect.poll(() => status(runId), { timeout: 30_000, interval: 100 }).toBe('canceled');
  });
});

describe('DNS rebinding: a Host that is not the local stack', () => {
  test('is refused on every request, reads of whole phone numbers included; the right Host reads them', async () => {
    const runId = await startRun(1);
    const [lead] = stack.simulator!.calls().filter((call) => call.run === runId);
    const phone = lead!.to;
    const reveal = `${stack.apiUrl}/runs/${runId}/calls?reveal_phone=true`;

    for (const host of [
      `evil.example:${port}`,
      'evil.example',
      `127.0.0.1:${port + 1}`,
      `localhost.:${port}`,
    ]) {
      // What the rebinding page's own (same-origin) fetch sends: its own name as Host and as Origin.
      const read = await send(reveal, {
        host,
        headers: { origin: `http://${host}`, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors' },
      });
      expect(read.status, host).toBe(403);
      expect(read.json.error?.code).toBe('forbidden');
      expect(read.json.error?.message).toContain('The Host header does not name this server');
      expect(read.text).not.toContain(phone);
      expect(read.text).not.toContain(runId);
      const cancel = await send(`${stack.apiUrl}/runs/${runId}/cancel`, {
        method: 'POST',
        host,
        headers: { origin: `http://${host}`, 'sec-fetch-site': 'same-origin' },
      });
      expect(cancel.status, host).toBe(403);
      // The console's files too: the page is not served under a name that is not this server's.
      expect((await send(`${stack.apiUrl}/`, { host })).status).toBe(403);
    }
    // No Host at all is no request a browser makes: Node's HTTP server refuses it before any handler.
    const bare = await send(reveal, { host: undefined });
    expect(bare.status).toBe(400);
    expect(bare.text).not.toContain(phone);

    // Named as the server is, the same read answers with the whole number.
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`]) {
      const read = await send(reveal, { host });
      expect(read.status, host).toBe(200);
      expect(read.text).toContain(phone);
    }
    expect(await status(runId)).toBe('running');
    hangUpAll();
    await expect.poll(() => status(runId), { timeout: 30_000, interval: 100 }).toBe('completed');
  });

  test('the webhook refuses another Host; the simulator names it as WEBHOOK_URL does, and every callback is taken', async () => {
    const webhook = new URL(stack.webhookUrl);
    const refused = await send(`${stack.webhookUrl}?run=x&job=000001&attempt=1`, {
      method: 'POST',
      host: `evil.example:${webhook.port}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'CallSid=CA00000000000000000000000000000000&CallStatus=completed',
    });
    expect(refused.status).toBe(403);
    expect(refused.json.error?.message).toContain(`http://127.0.0.1:${webhook.port}`);

    hangUpAll();
    stack.simulator!.configure({ talkMs: 100 });
    try {
      const created = await send(`${stack.apiUrl}/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ concurrency: 2, leads: leads(4) }),
      });
      const runId = created.json.run_id as string;
      await expect.poll(() => status(runId), { timeout: 60_000, interval: 100 }).toBe('completed');
      await stack.simulator!.settled(30_000);
      const callbacks = stack
        .simulator!.calls()
        .filter((call) => call.run === runId)
        .flatMap((call) => call.callbacks);
      expect(callbacks.length).toBeGreaterThanOrEqual(4);
      for (const callback of callbacks) {
        expect(new URL(callback.url).host).toBe(webhook.host);
        expect(callback.fate).toBe('delivered');
        expect(callback.responseStatus).toBe(200);
      }
    } finally {
      stack.simulator!.configure({ talkMs: 60_000 });
    }
  });
});
