// The Twilio double and the Twilio adapter, over real HTTP on loopback. The simulator is the ground
// truth of the e2e and chaos suites, so its callbacks must pass the official twilio.validateRequest,
// its lifecycle must follow Twilio's, and its observer must count live calls correctly. The adapter
// must classify every create outcome so that a lead is never called twice and never failed for an
// account problem.

import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient.js';
import { afterEach, describe, expect, it } from 'vitest';
import { TwilioApiError } from '../../lambdas/adapters/twilio-errors.ts';
import { CREATES_IN_FLIGHT, TwilioTelephony } from '../../lambdas/adapters/twilio-telephony.ts';
import type { CallRequest, Log } from '../../lambdas/core/ports.ts';
import { freePort } from '../../tools/local/emulators.ts';
import {
  type CallScript,
  mulberry32,
  parseOutcomeMix,
  REALISTIC_OUTCOMES,
  type SimulatorOptions,
  startTwilioSimulator,
  type TwilioSimulator,
  weightedOutcomes,
} from '../../tools/twilio-simulator/simulator.ts';

const FROM = '+15005550006';

/** The official client's HTTP layer pointed at the simulator (the adapter has its own fetch client). */
class BaseUrlRequestClient extends twilio.RequestClient {
  readonly #baseUrl: string;

  constructor(baseUrl: string, options: RequestClient.RequestClientOptions = {}) {
    super(options);
    this.#baseUrl = baseUrl.replace(/\/+$/, '');
  }

  override request<TData>(opts: RequestClient.RequestOptions<TData>) {
    const url = new URL(opts.uri);
    return super.request({ ...opts, uri: `${this.#baseUrl}${url.pathname}${url.search}` });
  }
}
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

async function simulator(options: SimulatorOptions = {}): Promise<TwilioSimulator> {
  const sim = await startTwilioSimulator({ ringMs: 20, talkMs: 30, queuedMs: 5, ...options });
  cleanups.push(() => sim.stop());
  return sim;
}

interface Received {
  url: string;
  method: string;
  signature: string;
  params: Record<string, string>;
}

interface Receiver {
  url: string;
  received: Received[];
}

/** A webhook endpoint; `respond` picks the status code for the n-th request (0-based). */
async function receiver(
  respond: (n: number, received: Received) => number | Promise<number> = () => 200,
): Promise<Receiver> {
  const received: Received[] = [];
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = `http://${req.headers.host}${req.url}`;
    const params = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf-8')));
    const entry = {
      url,
      method: req.method ?? '',
      signature: String(req.headers['x-twilio-signature']),
      params,
    };
    const status = await respond(received.length, entry);
    received.push(entry);
    res.writeHead(status).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  cleanups.push(async () => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${port}/twilio/status`, received };
}

function adapter(
  sim: TwilioSimulator,
  overrides: Partial<ConstructorParameters<typeof TwilioTelephony>[0]> = {},
) {
  return new TwilioTelephony({
    credentials: { accountSid: sim.accountSid, authToken: sim.authToken },
    apiBaseUrl: sim.url,
    timeoutMs: 2000,
    ...overrides,
  });
}

function request(to: string, statusCallbackUrl: string, overrides: Partial<CallRequest> = {}): CallRequest {
  return {
    to,
    from: FROM,
    statusCallbackUrl,
    ringTimeoutSeconds: 30,
    timeLimitSeconds: 600,
    content: { twiml: '<Response><Say>Hi</Say></Response>' },
    ...overrides,
  };
}

function callbackUrl(base: string, run: string, job: string, attempt = 1): string {
  return `${base}?run=${run}&job=${job}&attempt=${attempt}`;
}

/** Scripts by To number, the default for others. */
function byNumber(scripts: Record<string, CallScript>) {
  return ({ to }: { to: string }): CallScript => scripts[to] ?? { outcome: 'completed' };
}

function memoryLog(): Log & { lines: { level: string; message: string; context?: object }[] } {
  const lines: { level: string; message: string; context?: object }[] = [];
  const at = (level: string) => (message: string, context?: object) => {
    lines.push({ level, message, ...(context ? { context } : {}) });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

async function rawCreate(sim: TwilioSimulator, form: [string, string][], token = sim.authToken) {
  const response = await fetch(`${sim.url}/2010-04-01/Accounts/${sim.accountSid}/Calls.json`, {
    method: 'POST',
    headers: {
      Authorization: `Basic ${Buffer.from(`${sim.accountSid}:${token}`).toString('base64')}`,
      'Content-Type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams(form).toString(),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('the adapter against the simulator', () => {
  it('creates a call with the callback URL, events, ring timeout and time limit it was given', async () => {
    const sim = await simulator();
    const hook = await receiver();
    const cb = callbackUrl(hook.url, 'R1', 'J1', 2);

    const result = await adapter(sim).createCall(request('+14155230001', cb));

    expect(result).toMatchObject({ kind: 'created', status: 'queued' });
    const sid = result.kind === 'created' ? result.callSid : '';
    expect(sid).toMatch(/^CA[0-9a-f]{32}$/);
    expect(sim.call(sid)).toMatchObject({
      to: '+14155230001',
      from: FROM,
      twiml: '<Response><Say>Hi</Say></Response>',
      statusCallback: cb,
      statusCallbackMethod: 'POST',
      statusCallbackEvents: ['answered', 'completed'],
      timeoutSeconds: 30,
      timeLimitSeconds: 600,
      run: 'R1',
      job: 'J1',
      attempt: '2',
    });
  });

  it("rejects Twilio's invalid magic number with its code, without the number in the message", async () => {
    const sim = await simulator();
    const result = await adapter(sim).createCall(request('+15005550001', 'http://127.0.0.1:9/cb'));

    expect(result).toMatchObject({ kind: 'rejected', code: 21211 });
    expect(result.kind === 'rejected' && result.message).not.toMatch(/5005550001/);
    expect(sim.stats()).toMatchObject({ created: 0, rejected: 1 });
  });

  it('reports a 429 as throttled, and nothing was created', async () => {
    const sim = await simulator({ faults: { createThrottled: 1 } });
    const result = await adapter(sim).createCall(request('+14155230002', 'http://127.0.0.1:9/cb'));

    expect(result).toEqual({ kind: 'throttled' });
    expect(sim.stats()).toMatchObject({ createRequests: 1, created: 0, throttled: 1 });
  });

  it('reports a 500 as unknown, whether or not the call was really created, and never re-sends it', async () => {
    const created = await simulator({ faults: { createServerErrorAfterCreating: 1 } });
    const notCreated = await simulator({ faults: { createServerErrorWithoutCreating: 1 } });

    const a = await adapter(created).createCall(request('+14155230003', 'http://127.0.0.1:9/cb'));
    const b = await adapter(notCreated).createCall(request('+14155230003', 'http://127.0.0.1:9/cb'));

    expect(a).toMatchObject({ kind: 'unknown', reason: expect.stringContaining('500') });
    expect(b).toMatchObject({ kind: 'unknown', reason: expect.stringContaining('500') });
    expect(created.stats()).toMatchObject({ createRequests: 1, created: 1, live: 1 });
    expect(notCreated.stats()).toMatchObject({ createRequests: 1, created: 0, live: 0 });
    // The call behind the lost answer goes on and ends like any other.
    await created.waitForFinal(1, 10_000);
    expect(created.calls()[0]?.status).toBe('completed');
  });

  it('reports a timeout as unknown while the call exists at Twilio', async () => {
    // Twilio answers after 4 s; the adapter gives up after 150 ms (with seconds of room for a loaded machine).
    const sim = await simulator({ createDelayMs: 4_000 });
    const started = Date.now();
    const result = await adapter(sim, { timeoutMs: 150 }).createCall(
      request('+14155230004', 'http://127.0.0.1:9/cb'),
    );

    expect(result).toEqual({ kind: 'unknown', reason: 'timeout' });
    expect(Date.now() - started).toBeLessThan(3_500);
    expect(sim.stats()).toMatchObject({ createRequests: 1, created: 1 });
  });

  it('reports a refused connection as unknown', async () => {
    const port = await freePort();
    const telephony = new TwilioTelephony({
      credentials: { accountSid: 'AC00000000000000000000000000000000', authToken: 'x' },
      apiBaseUrl: `http://127.0.0.1:${port}`,
      timeoutMs: 1000,
    });
    const result = await telephony.createCall(request('+14155230005', 'http://127.0.0.1:9/cb'));
    expect(result).toEqual({ kind: 'unknown', reason: 'network error (ECONNREFUSED)' });
  });

  it('treats refused credentials as throttled (not the lead’s fault), logs it without secrets, and recovers after a rotation', async () => {
    const sim = await simulator();
    const log = memoryLog();
    const stale = adapter(sim, {
      credentials: { accountSid: sim.accountSid, authToken: 'stale-token' },
      log,
    });

    expect(await stale.createCall(request('+14155230006', 'http://127.0.0.1:9/cb'))).toEqual({
      kind: 'throttled',
    });
    expect(sim.stats().created).toBe(0);
    expect(log.lines).toMatchObject([{ level: 'error', context: { status: 401, code: 20003 } }]);
    expect(JSON.stringify(log.lines)).not.toMatch(/stale-token|5551230006/);

    // A rotated secret: the cached value is stale, a refresh returns the new one, once.
    let refreshes = 0;
    const rotating = adapter(sim, {
      credentials: {
        refreshable: true,
        async get(options) {
          if (options?.refresh) refreshes += 1;
          return { accountSid: sim.accountSid, authToken: options?.refresh ? sim.authToken : 'stale-token' };
        },
      },
    });
    expect(await rotating.createCall(request('+14155230006', 'http://127.0.0.1:9/cb'))).toMatchObject({
      kind: 'created',
    });
    expect(refreshes).toBe(1);
    // Only authenticated requests count: the one sent with the stale token was refused at the door.
    expect(sim.stats()).toMatchObject({ createRequests: 1, created: 1 });
  });

  it('fetches, cancels and hangs up calls, with Twilio’s rules on what can be canceled', async () => {
    const sim = await simulator({
      behavior: byNumber({
        '+14155230010': { outcome: 'completed', queuedMs: 5000 },
        '+14155230011': { outcome: 'completed', ringMs: 5, talkMs: 5000 },
      }),
    });
    const hook = await receiver();
    const telephony = adapter(sim);
    const queued = await telephony.createCall(request('+14155230010', callbackUrl(hook.url, 'R', 'J1')));
    const answered = await telephony.createCall(request('+14155230011', callbackUrl(hook.url, 'R', 'J2')));
    if (queued.kind !== 'created' || answered.kind !== 'created') throw new Error('not created');

    expect(await telephony.fetchCall(queued.callSid)).toMatchObject({
      sid: queued.callSid,
      status: 'queued',
    });
    expect(await telephony.cancelCall(queued.callSid)).toEqual({ kind: 'updated', status: 'canceled' });
    expect(await telephony.fetchCall(queued.callSid)).toMatchObject({ status: 'canceled' });
    expect(await telephony.cancelCall(queued.callSid)).toMatchObject({ kind: 'invalid-state' });

    await sim.waitFor((s) => s.call(answered.callSid)?.status === 'in-progress', 10_000, 'answer');
    expect(await telephony.cancelCall(answered.callSid)).toMatchObject({ kind: 'invalid-state' });
    expect(await telephony.hangUpCall(answered.callSid)).toEqual({ kind: 'updated', status: 'completed' });
    expect(await telephony.hangUpCall(answered.callSid)).toMatchObject({ kind: 'invalid-state' });
    // Every request to end a call is kept, the refused ones with Twilio's code: how often it was asked.
    const asked = (sid: string) =>
      sim.call(sid)?.statusUpdates.map(({ status, refusedWith }) => ({ status, refusedWith }));
    expect(asked(queued.callSid)).toEqual([
      { status: 'canceled', refusedWith: undefined },
      { status: 'canceled', refusedWith: 21220 },
    ]);
    expect(asked(answered.callSid)).toEqual([
      { status: 'canceled', refusedWith: 21220 },
      { status: 'completed', refusedWith: undefined },
      { status: 'completed', refusedWith: 21220 },
    ]);

    expect(await telephony.fetchCall(`CA${'0'.repeat(32)}`)).toBeUndefined();
    expect(await telephony.cancelCall(`CA${'0'.repeat(32)}`)).toEqual({ kind: 'not-found' });

    await sim.settled(2000);
    const finals = hook.received.filter((r) => r.params.CallDuration !== undefined);
    expect(finals.map((r) => [r.params.CallSid, r.params.CallStatus])).toEqual(
      expect.arrayContaining([
        [queued.callSid, 'canceled'],
        [answered.callSid, 'completed'],
      ]),
    );
  });

  it('lists the calls that ended since a time, final ones only, in one request', async () => {
    const sim = await simulator({
      behavior: ({ index }) =>
        index === 2
          ? { outcome: 'completed', ringMs: 60_000 }
          : { outcome: index === 0 ? 'completed' : 'busy' },
    });
    const telephony = adapter(sim);
    const before = new Date(Date.now() - 1000);
    const created = await Promise.all(
      ['+14155230030', '+14155230031', '+14155230032'].map((to, i) =>
        telephony.createCall(request(to, `http://127.0.0.1:9/e${i}`)),
      ),
    );
    const sids = created.map((c) => (c.kind === 'created' ? c.callSid : ''));
    await sim.waitFor(
      (s) => s.call(sids[0]!)?.endedAt !== undefined && s.call(sids[1]!)?.endedAt !== undefined,
      5000,
      'ended',
    );
    const ended = await telephony.listEndedCalls(before);
    expect(ended.map((c) => [c.sid, c.status]).sort()).toEqual(
      [
        [sids[0], 'completed'],
        [sids[1], 'busy'],
      ].sort(),
    );
    expect(await telephony.listEndedCalls(new Date(Date.now() + 60_000))).toEqual([]);
  });

  it('finds calls to a number by start time, including one still in Twilio’s queue (no start time yet)', async () => {
    const sim = await simulator({
      behavior: ({ index }) =>
        index === 1 ? { outcome: 'completed', queuedMs: 5000 } : { outcome: 'completed' },
    });
    const telephony = adapter(sim);
    const before = new Date(Date.now() - 1000);
    const dialed = await telephony.createCall(request('+14155230020', 'http://127.0.0.1:9/a'));
    const stuck = await telephony.createCall(request('+14155230020', 'http://127.0.0.1:9/b'));
    await telephony.createCall(request('+14155230021', 'http://127.0.0.1:9/c'));
    if (dialed.kind !== 'created' || stuck.kind !== 'created') throw new Error('not created');
    await sim.waitFor((s) => s.call(dialed.callSid)?.startedAt !== undefined, 10_000, 'dialing');

    const found = await telephony.findCalls({ to: '+14155230020', startedAfter: before });
    expect(found.map((c) => c.sid).sort()).toEqual([dialed.callSid, stuck.callSid].sort());
    const stuckSummary = found.find((c) => c.sid === stuck.callSid);
    expect(stuckSummary?.status).toBe('queued');
    expect(stuckSummary?.startTime).toBeUndefined();
    expect(found.find((c) => c.sid === dialed.callSid)?.startTime).toBeInstanceOf(Date);

    expect(
      await telephony.findCalls({ to: '+14155230020', startedAfter: new Date(Date.now() + 60_000) }),
    ).toEqual([]);

    // The raw list pages like Twilio's, and the official client follows next_page_uri.
    const client = twilio(sim.accountSid, sim.authToken, { httpClient: new BaseUrlRequestClient(sim.url) });
    const all = await client.calls.list({ pageSize: 1 });
    expect(all).toHaveLength(3);
    const byStart = await client.calls.list({ to: '+14155230020', startTimeAfter: before });
    expect(byStart.map((c) => c.sid)).toEqual([dialed.callSid]);
  });
});

describe('the adapter’s own HTTP client, against a scripted Twilio', () => {
  const ACCOUNT = `AC${'1'.repeat(32)}`;
  const SID = (n: number) => `CA${n.toString(16).padStart(32, '0')}`;
  const CALLS_PATH = `/2010-04-01/Accounts/${ACCOUNT}/Calls.json`;

  interface Seen {
    method: string;
    path: string;
    query: URLSearchParams;
    headers: IncomingHttpHeaders;
    form: URLSearchParams;
  }
  interface Answer {
    status: number;
    body?: string | object;
    headers?: Record<string, string>;
    /** Sends the head and the first half of the body, then the rest after this delay. */
    stallMs?: number;
  }

  /** An HTTP server answering each request with `answer(request, n)`; records requests and connections. */
  async function scripted(answer: (seen: Seen, n: number) => Answer) {
    const seen: Seen[] = [];
    let connections = 0;
    const timers: NodeJS.Timeout[] = [];
    const server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const target = new URL(req.url ?? '/', 'http://scripted');
      const entry: Seen = {
        method: req.method ?? '',
        path: target.pathname,
        query: target.searchParams,
        headers: req.headers,
        form: new URLSearchParams(Buffer.concat(chunks).toString('utf-8')),
      };
      const { status, body = '', headers = {}, stallMs } = answer(entry, seen.length);
      seen.push(entry);
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      if (stallMs === undefined) return void res.end(text);
      res.write(text.slice(0, text.length >> 1));
      timers.push(setTimeout(() => res.end(text.slice(text.length >> 1)), stallMs));
    });
    server.on('connection', () => {
      connections += 1;
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(async () => {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      server.close();
    });
    const { port } = server.address() as { port: number };
    return { url: `http://127.0.0.1:${port}`, seen, connections: () => connections };
  }

  function against(url: string, overrides: Partial<ConstructorParameters<typeof TwilioTelephony>[0]> = {}) {
    return new TwilioTelephony({
      credentials: { accountSid: ACCOUNT, authToken: 'token-1' },
      apiBaseUrl: url,
      timeoutMs: 1000,
      ...overrides,
    });
  }

  const resource = (n: number, extra: Record<string, unknown> = {}) => ({
    sid: SID(n),
    status: 'completed',
    to: '+14155239000',
    date_created: 'Sat, 28 Nov 2026 10:00:00 +0000',
    start_time: 'Sat, 28 Nov 2026 10:00:01 +0000',
    end_time: null,
    ...extra,
  });

  it('sends a create form-encoded with Basic auth, the StatusCallbackEvents it acts on, and a fresh connection each time', async () => {
    const twilioApi = await scripted(() => ({ status: 201, body: { sid: SID(1), status: 'queued' } }));
    const telephony = against(twilioApi.url);
    const cb = 'https://hooks.example/twilio/status?run=R&job=J&attempt=1';

    expect(await telephony.createCall(request('+14155239001', cb))).toEqual({
      kind: 'created',
      callSid: SID(1),
      status: 'queued',
    });
    await telephony.createCall(request('+14155239002', cb, { content: { twimlUrl: 'https://t.example/x' } }));

    const [first, second] = twilioApi.seen;
    expect(first).toMatchObject({ method: 'POST', path: CALLS_PATH });
    expect(first!.headers).toMatchObject({
      authorization: `Basic ${Buffer.from(`${ACCOUNT}:token-1`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
      connection: 'close',
    });
    expect([...first!.form]).toEqual([
      ['To', '+14155239001'],
      ['From', FROM],
      ['Twiml', '<Response><Say>Hi</Say></Response>'],
      ['StatusCallback', cb],
      ['StatusCallbackMethod', 'POST'],
      ['StatusCallbackEvent', 'answered'],
      ['StatusCallbackEvent', 'completed'],
      ['Timeout', '30'],
      ['TimeLimit', '600'],
    ]);
    expect(second!.form.get('Url')).toBe('https://t.example/x');
    expect(second!.form.has('Twiml')).toBe(false);
    expect(twilioApi.connections()).toBe(2);

    // With keepAlive a connection is reused.
    const reusing = await scripted(() => ({ status: 201, body: { sid: SID(2), status: 'queued' } }));
    const keepAlive = against(reusing.url, { keepAlive: true });
    for (const n of [3, 4, 5]) {
      await keepAlive.createCall(request(`+1415523900${n}`, cb));
      await sleep(20);
    }
    expect(reusing.seen[0]!.headers.connection).not.toBe('close');
    expect(reusing.connections()).toBeLessThan(3);
  });

  it('speaks https, as Twilio is reached in AWS: the create, its form and its answer over TLS', async () => {
    // A self-signed certificate for 127.0.0.1, made for this test; the client is told to accept it
    // for this test only (Twilio's own certificate is checked against the system's CAs).
    const dir = mkdtempSync(join(tmpdir(), 'dialgate-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const seen: { path: string; form: URLSearchParams; authorization: string | undefined }[] = [];
    const server = createTlsServer(
      { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
      async (req, res) => {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        seen.push({
          path: req.url ?? '',
          form: new URLSearchParams(Buffer.concat(chunks).toString('utf-8')),
          authorization: req.headers.authorization,
        });
        res
          .writeHead(201, { 'content-type': 'application/json' })
          .end(JSON.stringify({ sid: SID(7), status: 'queued' }));
      },
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const previous = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    cleanups.push(async () => {
      if (previous === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = previous;
      server.closeAllConnections();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const { port } = server.address() as { port: number };

    const result = await against(`https://127.0.0.1:${port}`).createCall(
      request('+14155239007', 'https://hooks.example/cb'),
    );
    expect(result).toEqual({ kind: 'created', callSid: SID(7), status: 'queued' });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.path).toBe(CALLS_PATH);
    expect(seen[0]!.form.get('To')).toBe('+14155239007');
    expect(seen[0]!.authorization).toBe(`Basic ${Buffer.from(`${ACCOUNT}:token-1`).toString('base64')}`);
  });

  it('sends at most 50 creates at once; the others wait unsent, and their timeout starts when they are sent', async () => {
    // Each create answered after 1 s; 150 of them with a 2 s timeout take three turns (~3 s): timed from
    // when they were queued, the third turn's would time out. The 1 s between the answer and the timeout
    // is room for a loaded machine.
    let inFlight = 0;
    let most = 0;
    let created = 0;
    const server = createServer(async (req, res) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      for await (const _ of req);
      setTimeout(() => {
        inFlight -= 1;
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ sid: SID(++created), status: 'queued' }));
      }, 1_000);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(async () => {
      server.closeAllConnections();
      server.close();
    });
    const { port } = server.address() as { port: number };
    const telephony = against(`http://127.0.0.1:${port}`, { timeoutMs: 2_000 });
    const started = Date.now();
    const results = await Promise.all(
      Array.from({ length: 150 }, (_, i) =>
        telephony.createCall(request(`+1415523${String(9100 + i)}`, 'https://hooks.example/cb')),
      ),
    );
    expect(results.filter((result) => result.kind === 'created')).toHaveLength(150);
    expect(most).toBe(CREATES_IN_FLIGHT);
    expect(created).toBe(150);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_900); // three turns
  });

  it('classifies every kind of answer to a create from the response alone, sending it once', async () => {
    const cases: [Answer, unknown][] = [
      [
        { status: 400, body: { message: 'To +1 415 523 4567 is not valid', status: 400 } },
        { kind: 'rejected', code: undefined, message: 'To [number] is not valid' },
      ],
      [
        { status: 400, body: '<html>Bad Request</html>' },
        { kind: 'rejected', code: undefined, message: '[HTTP 400] Failed to execute request' },
      ],
      [
        { status: 400, body: { code: 21217, status: 400, more_info: 'x' } },
        { kind: 'rejected', code: 21217, message: 'HTTP 400' },
      ],
      // The run's own setup (an unverified From, missing content), not the lead: the core pauses the run.
      [
        {
          status: 400,
          body: { code: 21210, message: 'The source phone number +15005550006 is not verified' },
        },
        { kind: 'misconfigured', code: 21210, message: 'The source phone number [number] is not verified' },
      ],
      [
        { status: 400, body: { code: 21205, message: 'Url is not a valid URL' } },
        { kind: 'misconfigured', code: 21205, message: 'Url is not a valid URL' },
      ],
      [{ status: 429 }, { kind: 'throttled' }],
      [{ status: 400, body: { code: 20429, message: 'Too Many Requests' } }, { kind: 'throttled' }],
      [{ status: 503, body: { code: 22005, message: 'Call Queue Full' } }, { kind: 'throttled' }],
      [{ status: 403, body: { code: 20005, message: 'Account not active' } }, { kind: 'throttled' }],
      [{ status: 404, body: { code: 20404, message: 'Not found' } }, { kind: 'throttled' }],
      [
        { status: 500, body: { code: 20500, message: 'Internal' } },
        { kind: 'unknown', reason: 'HTTP 500 (code 20500)' },
      ],
      [
        { status: 502, body: '<html>Bad Gateway</html>' },
        { kind: 'unknown', reason: 'HTTP 502' },
      ],
      [
        { status: 302, headers: { location: '/elsewhere' } },
        { kind: 'unknown', reason: 'HTTP 302' },
      ],
      [
        { status: 201, body: 'created, honest' },
        { kind: 'unknown', reason: expect.stringMatching(/^unexpected error \(/) },
      ],
      [
        { status: 201, body: '' },
        { kind: 'unknown', reason: expect.stringMatching(/^unexpected error \(/) },
      ],
      [
        { status: 201, body: { status: 'queued' } },
        { kind: 'unknown', reason: 'create answered without a CallSid' },
      ],
      [
        { status: 201, body: 'null' },
        { kind: 'unknown', reason: 'create answered without a CallSid' },
      ],
      [
        { status: 200, body: { sid: SID(3), status: 'in-a-new-state' } },
        { kind: 'created', callSid: SID(3), status: 'queued' },
      ],
    ];
    for (const [answer, expected] of cases) {
      const twilioApi = await scripted(() => answer);
      const log = memoryLog();
      const result = await against(twilioApi.url, { log }).createCall(
        request('+14155239010', 'http://127.0.0.1:9/cb'),
      );
      expect(result, JSON.stringify(answer)).toEqual(expected);
      expect(twilioApi.seen, JSON.stringify(answer)).toHaveLength(1);
      const credentialRefusal = [401, 403, 404].includes(answer.status);
      expect(log.lines.length, JSON.stringify(answer)).toBe(credentialRefusal ? 1 : 0);
    }
  });

  it('times out a create whose answer stalls halfway as unknown, and a read as a TwilioApiError', async () => {
    const twilioApi = await scripted(() => ({
      status: 201,
      body: { sid: SID(4), status: 'queued' },
      stallMs: 5_000,
    }));
    const telephony = against(twilioApi.url, { timeoutMs: 150 });
    const started = Date.now();

    expect(await telephony.createCall(request('+14155239020', 'http://127.0.0.1:9/cb'))).toEqual({
      kind: 'unknown',
      reason: 'timeout',
    });
    // Not the stalled answer's 5 s: the 150 ms timeout (with seconds of room for a loaded machine).
    expect(Date.now() - started).toBeLessThan(4_000);
    const read = telephony.fetchCall(SID(4));
    await expect(read).rejects.toBeInstanceOf(TwilioApiError);
    await expect(read).rejects.toMatchObject({ message: 'timeout', status: undefined });
    expect(twilioApi.seen).toHaveLength(2);
  });

  it('reports read and update errors with the status and code from the body, redacted, or none', async () => {
    const twilioApi = await scripted(({ method }, n) =>
      n === 0
        ? { status: 500, body: { message: 'Trouble with +14155239030', status: 500 } }
        : method === 'GET'
          ? { status: 503, body: 'unavailable' }
          : {
              status: 400,
              body: { code: 21220, message: 'Call +14155239030 is not in progress', status: 400 },
            },
    );
    const telephony = against(twilioApi.url);

    await expect(telephony.fetchCall(SID(5))).rejects.toMatchObject({
      name: 'TwilioApiError',
      status: 500,
      code: undefined,
      message: 'Trouble with [number]',
    });
    await expect(telephony.fetchCall(SID(5))).rejects.toMatchObject({
      status: 503,
      message: '[HTTP 503] Failed to execute request',
    });
    expect(await telephony.hangUpCall(SID(5))).toEqual({
      kind: 'invalid-state',
      message: 'Call [number] is not in progress',
    });
    expect(twilioApi.seen.map((r) => [r.method, r.path, r.form.get('Status')])).toEqual([
      ['GET', `/2010-04-01/Accounts/${ACCOUNT}/Calls/${SID(5)}.json`, null],
      ['GET', `/2010-04-01/Accounts/${ACCOUNT}/Calls/${SID(5)}.json`, null],
      ['POST', `/2010-04-01/Accounts/${ACCOUNT}/Calls/${SID(5)}.json`, 'completed'],
    ]);
  });

  it('lists with To and StartTime> (whole seconds) and Status=queued, following next_page_uri to the end', async () => {
    const next = `${CALLS_PATH}?To=%2B14155239000&PageSize=100&Page=1&PageToken=PA${SID(2)}`;
    const twilioApi = await scripted(({ query }) => {
      if (query.get('Status') === 'queued') {
        return {
          status: 200,
          body: { calls: [resource(9, { status: 'queued', start_time: null })], next_page_uri: null },
        };
      }
      if (query.get('Page') === '1')
        return { status: 200, body: { calls: [resource(3)], next_page_uri: null } };
      return {
        status: 200,
        body: {
          calls: [resource(1), resource(2, { start_time: 'Sat, 28 Nov 2026 09:59:58 +0000' })],
          next_page_uri: next,
        },
      };
    });
    const startedAfter = new Date('2026-11-28T09:59:59.500Z');

    const found = await against(twilioApi.url).findCalls({ to: '+14155239000', startedAfter });

    // SID(2) started before the bound (Twilio filters by day only): filtered out here.
    expect(found.map((c) => c.sid).sort()).toEqual([SID(1), SID(3), SID(9)]);
    expect(found.find((c) => c.sid === SID(1))).toEqual({
      sid: SID(1),
      status: 'completed',
      startTime: new Date('2026-11-28T10:00:01Z'),
      dateCreated: new Date('2026-11-28T10:00:00Z'),
      // When the create reached Twilio: what the reconciler matches against the attempt's slot.
      createdAt: new Date('2026-11-28T10:00:00Z'),
    });
    expect(found.find((c) => c.sid === SID(9))).toEqual({
      sid: SID(9),
      status: 'queued',
      dateCreated: new Date('2026-11-28T10:00:00Z'),
      createdAt: new Date('2026-11-28T10:00:00Z'),
    });
    const started = twilioApi.seen.filter((r) => !r.query.has('Status'));
    expect(started.map((r) => `${r.path}?${r.query}`)).toEqual([
      `${CALLS_PATH}?To=%2B14155239000&StartTime%3E=2026-11-28T09%3A59%3A59Z&PageSize=100`,
      next,
    ]);
    const queued = twilioApi.seen.filter((r) => r.query.has('Status'));
    expect(Object.fromEntries(queued[0]!.query)).toEqual({
      To: '+14155239000',
      Status: 'queued',
      PageSize: '100',
    });
  });

  it('stops a list at 1,000 calls, and will not send the credentials to a next page on another host', async () => {
    let page = 0;
    const endless = await scripted(({ query }) => {
      if (query.get('Status') === 'queued') return { status: 200, body: { calls: [], next_page_uri: null } };
      page += 1;
      const calls = Array.from({ length: 100 }, (_, i) => resource(page * 100 + i));
      return { status: 200, body: { calls, next_page_uri: `${CALLS_PATH}?Page=${page}` } };
    });
    const all = await against(endless.url).findCalls({ to: '+14155239000', startedAfter: new Date(0) });
    expect(all).toHaveLength(1000);
    expect(page).toBe(10);

    const elsewhere = await scripted(() => ({
      status: 200,
      body: {
        calls: [resource(1)],
        next_page_uri: 'https://evil.example/2010-04-01/Accounts/x/Calls.json?Page=1',
      },
    }));
    await expect(
      against(elsewhere.url).findCalls({ to: '+14155239000', startedAfter: new Date(0) }),
    ).rejects.toMatchObject({ name: 'TwilioApiError', message: expect.stringContaining('evil.example') });

    const malformed = await scripted(() => ({ status: 200, body: { nothing: [] } }));
    await expect(
      against(malformed.url).findCalls({ to: '+14155239000', startedAfter: new Date(0) }),
    ).rejects.toBeInstanceOf(TwilioApiError);
  });

  it('refreshes rotated credentials once for reads too, and sends nothing without usable credentials', async () => {
    const good = `Basic ${Buffer.from(`${ACCOUNT}:token-2`).toString('base64')}`;
    const twilioApi = await scripted(({ headers }) =>
      headers.authorization === good
        ? { status: 200, body: resource(7) }
        : { status: 401, body: { code: 20003, message: 'Authenticate', status: 401 } },
    );
    let refreshes = 0;
    const rotating = against(twilioApi.url, {
      credentials: {
        refreshable: true,
        async get(options) {
          if (options?.refresh) refreshes += 1;
          return { accountSid: ACCOUNT, authToken: options?.refresh ? 'token-2' : 'token-1' };
        },
      },
    });
    expect(await rotating.fetchCall(SID(7))).toMatchObject({ sid: SID(7) });
    expect(refreshes).toBe(1);
    expect(twilioApi.seen).toHaveLength(2);

    // A refresh that returns the same token: the 401 stands, not sent a third time.
    const stuck = against(twilioApi.url, {
      credentials: { refreshable: true, get: async () => ({ accountSid: ACCOUNT, authToken: 'token-1' }) },
    });
    await expect(stuck.fetchCall(SID(7))).rejects.toMatchObject({ status: 401, code: 20003 });
    expect(twilioApi.seen).toHaveLength(3);

    const log = memoryLog();
    const unreadable = against(twilioApi.url, {
      log,
      credentials: {
        refreshable: true,
        get: async () => {
          throw new Error('secret unavailable');
        },
      },
    });
    expect(await unreadable.createCall(request('+14155239040', 'http://127.0.0.1:9/cb'))).toEqual({
      kind: 'throttled',
    });
    expect(log.lines).toMatchObject([{ level: 'error', context: { error: 'secret unavailable' } }]);
    const apiKey = against(twilioApi.url, {
      credentials: { accountSid: `SK${'1'.repeat(32)}`, authToken: 'x' },
    });
    expect(await apiKey.createCall(request('+14155239040', 'http://127.0.0.1:9/cb'))).toEqual({
      kind: 'throttled',
    });
    expect(twilioApi.seen).toHaveLength(3);
  });
});

describe('the adapter’s paging against the simulator', () => {
  it('finds every call to a number when they span several pages', async () => {
    const sim = await simulator({ ringMs: 1, talkMs: 1 });
    const telephony = adapter(sim);
    const before = new Date(Date.now() - 1000);
    const sids: string[] = [];
    for (let i = 0; i < 105; i++) {
      const result = await telephony.createCall(request('+14155239100', 'http://127.0.0.1:9/cb'));
      if (result.kind !== 'created') throw new Error(`not created: ${JSON.stringify(result)}`);
      sids.push(result.callSid);
    }
    await sim.waitForFinal(105, 5000);

    const found = await telephony.findCalls({ to: '+14155239100', startedAfter: before });
    expect(found.map((c) => c.sid).sort()).toEqual([...sids].sort());
    expect(found.every((c) => c.status === 'completed' && c.startTime instanceof Date)).toBe(true);
  });
});

describe('status callbacks', () => {
  it('are signed like Twilio’s and come in lifecycle order with sequence numbers', async () => {
    const sim = await simulator();
    const hook = await receiver();
    const cb = callbackUrl(hook.url, 'R', 'J');
    // Every event asked for (the adapter asks for answered and completed only).
    const created = await rawCreate(sim, [
      ['To', '+14155230030'],
      ['From', FROM],
      ['Twiml', '<Response><Say>Hi</Say></Response>'],
      ['StatusCallback', cb],
      ['StatusCallbackEvent', 'initiated'],
      ['StatusCallbackEvent', 'ringing'],
      ['StatusCallbackEvent', 'answered'],
      ['StatusCallbackEvent', 'completed'],
    ]);
    await sim.settled(2000);

    expect(hook.received.map((r) => r.params.CallStatus)).toEqual([
      'initiated',
      'ringing',
      'in-progress',
      'completed',
    ]);
    expect(hook.received.map((r) => r.params.SequenceNumber)).toEqual(['0', '1', '2', '3']);
    for (const r of hook.received) {
      expect(r.url).toBe(cb);
      expect(r.method).toBe('POST');
      expect(twilio.validateRequest(sim.authToken, r.signature, cb, r.params)).toBe(true);
      expect(twilio.validateRequest('another-token', r.signature, cb, r.params)).toBe(false);
      expect(
        twilio.validateRequest(sim.authToken, r.signature, cb, { ...r.params, CallStatus: 'busy' }),
      ).toBe(false);
      expect(twilio.validateRequest(sim.authToken, r.signature, `${cb}x`, r.params)).toBe(false);
    }
    const final = hook.received[3]!.params;
    expect(final).toMatchObject({
      CallSid: created.body.sid,
      AccountSid: sim.accountSid,
      From: FROM,
      To: '+14155230030',
      Direction: 'outbound-api',
      ApiVersion: '2010-04-01',
      CallbackSource: 'call-progress-events',
      SipResponseCode: '200',
    });
    expect(final.CallDuration).toMatch(/^\d+$/);
    expect(final.Duration).toBe(final.CallDuration);
    expect(final.Timestamp).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
    expect(hook.received[0]!.params.CallDuration).toBeUndefined();
  });

  it('are sent only on `completed` when no event is requested, carrying every final status', async () => {
    const sim = await simulator({
      behavior: byNumber({
        '+14155230040': { outcome: 'busy' },
        '+14155230041': { outcome: 'failed' },
        '+14155230042': { outcome: 'no-answer' },
      }),
    });
    const hook = await receiver();
    for (const to of ['+14155230040', '+14155230041', '+14155230042']) {
      const { status } = await rawCreate(sim, [
        ['To', to],
        ['From', FROM],
        ['Url', 'http://127.0.0.1:9/twiml'],
        ['StatusCallback', `${hook.url}?to=${to.slice(-2)}`],
      ]);
      expect(status).toBe(201);
    }
    await sim.settled(2000);

    expect(
      hook.received.map((r) => [r.params.To, r.params.CallStatus, r.params.SequenceNumber]).sort(),
    ).toEqual([
      ['+14155230040', 'busy', '0'],
      ['+14155230041', 'failed', '0'],
      ['+14155230042', 'no-answer', '0'],
    ]);
    expect(sim.stats().outcomes).toMatchObject({ busy: 1, failed: 1, 'no-answer': 1 });
  });

  it('of a call the adapter placed: its answer and its end only, a busy line its end alone', async () => {
    const sim = await simulator({ behavior: byNumber({ '+14155230047': { outcome: 'busy' } }) });
    const hook = await receiver();
    await adapter(sim).createCall(request('+14155230046', `${hook.url}?to=46`));
    await adapter(sim).createCall(request('+14155230047', `${hook.url}?to=47`));
    await sim.settled(2000);
    const seen = (to: string) =>
      hook.received.filter((r) => r.url.endsWith(`to=${to}`)).map((r) => r.params.CallStatus);
    expect(seen('46')).toEqual(['in-progress', 'completed']);
    expect(seen('47')).toEqual(['busy']);
  });

  it('follow the requested events only', async () => {
    const sim = await simulator();
    const hook = await receiver();
    await rawCreate(sim, [
      ['To', '+14155230045'],
      ['From', FROM],
      ['Twiml', '<Response/>'],
      ['StatusCallback', hook.url],
      ['StatusCallbackEvent', 'ringing'],
      ['StatusCallbackEvent', 'completed'],
    ]);
    await sim.settled(2000);
    expect(hook.received.map((r) => [r.params.CallStatus, r.params.SequenceNumber])).toEqual([
      ['ringing', '0'],
      ['completed', '1'],
    ]);
  });

  it('end a call as no-answer when the ring Timeout is shorter than the ring, and cap the talk at TimeLimit', async () => {
    const sim = await simulator({
      secondMs: 10,
      behavior: byNumber({
        '+14155230050': { outcome: 'completed', ringMs: 500 },
        '+14155230051': { outcome: 'completed', ringMs: 5, talkMs: 5000 },
      }),
    });
    const hook = await receiver();
    const telephony = adapter(sim);
    await telephony.createCall(request('+14155230050', hook.url, { ringTimeoutSeconds: 2 }));
    await telephony.createCall(request('+14155230051', hook.url, { timeLimitSeconds: 3 }));
    await sim.settled();

    const finals = Object.fromEntries(
      hook.received.filter((r) => r.params.CallDuration !== undefined).map((r) => [r.params.To, r.params]),
    );
    expect(finals['+14155230050']).toMatchObject({ CallStatus: 'no-answer', CallDuration: '0' });
    expect(finals['+14155230051']).toMatchObject({ CallStatus: 'completed' });
    expect(Number(finals['+14155230051']!.CallDuration)).toBeLessThanOrEqual(4);
  });

  it('are retried once when delivery fails, then given up', async () => {
    const sim = await simulator({ callbackRetryDelayMs: 5 });
    const flaky = await receiver((n) => (n === 0 ? 503 : 200));
    const down = await receiver(() => 500);
    await rawCreate(sim, [
      ['To', '+14155230060'],
      ['From', FROM],
      ['Twiml', '<Response/>'],
      ['StatusCallback', flaky.url],
    ]);
    await rawCreate(sim, [
      ['To', '+14155230061'],
      ['From', FROM],
      ['Twiml', '<Response/>'],
      ['StatusCallback', down.url],
    ]);
    await sim.settled(2000);

    expect(flaky.received).toHaveLength(2);
    expect(flaky.received[1]!.params).toEqual(flaky.received[0]!.params);
    expect(down.received).toHaveLength(2);
    expect(sim.stats().callbacks).toMatchObject({
      generated: 2,
      attempts: 4,
      retried: 2,
      delivered: 1,
      failed: 1,
    });
  });

  it('sign a GET callback over the URL with its query string', async () => {
    const sim = await simulator();
    const hook = await receiver();
    await rawCreate(sim, [
      ['To', '+14155230065'],
      ['From', FROM],
      ['Twiml', '<Response/>'],
      ['StatusCallback', `${hook.url}?run=G`],
      ['StatusCallbackMethod', 'GET'],
    ]);
    await sim.settled(2000);
    const [only] = hook.received;
    expect(only?.method).toBe('GET');
    expect(new URL(only!.url).searchParams.get('CallStatus')).toBe('completed');
    expect(twilio.validateRequest(sim.authToken, only!.signature, only!.url, {})).toBe(true);
  });
});

describe('injected faults, from a seeded PRNG', () => {
  async function oneCall(options: SimulatorOptions) {
    const sim = await simulator(options);
    const hook = await receiver();
    // All four events, so that each fault has a lifecycle's worth of callbacks to act on.
    await rawCreate(sim, [
      ['To', '+14155230070'],
      ['From', FROM],
      ['Twiml', '<Response/>'],
      ['StatusCallback', callbackUrl(hook.url, 'F', 'J')],
      ...(['initiated', 'ringing', 'answered', 'completed'].map((event) => [
        'StatusCallbackEvent',
        event,
      ]) as [string, string][]),
    ]);
    await sim.settled(2000);
    return { sim, hook };
  }

  it('duplicates callbacks: same sequence number, same valid signature', async () => {
    const { sim, hook } = await oneCall({ faults: { duplicateCallback: 1 } });
    expect(hook.received.map((r) => r.params.SequenceNumber)).toEqual([
      '0',
      '0',
      '1',
      '1',
      '2',
      '2',
      '3',
      '3',
    ]);
    expect(hook.received[0]!.signature).toBe(hook.received[1]!.signature);
    expect(
      hook.received.every((r) => twilio.validateRequest(sim.authToken, r.signature, r.url, r.params)),
    ).toBe(true);
    expect(sim.stats().callbacks).toMatchObject({ generated: 4, duplicated: 4 });
  });

  it('reorders callbacks: one is delivered after the next', async () => {
    const { hook } = await oneCall({ faults: { reorderCallback: 1 } });
    expect(hook.received.map((r) => r.params.SequenceNumber)).toEqual(['1', '0', '3', '2']);
  });

  it('drops callbacks, while the observer still sees the call end', async () => {
    const { sim, hook } = await oneCall({ faults: { dropCallback: 1 } });
    expect(hook.received).toEqual([]);
    expect(sim.stats()).toMatchObject({
      final: 1,
      live: 0,
      callbacks: { generated: 4, dropped: 4, attempts: 0 },
    });
    expect(sim.calls()[0]?.finalCallbackAt).toBeUndefined();
  });

  it('replays the same faults for the same seed', async () => {
    async function dropped(seed: number) {
      const sim = await simulator({ random: mulberry32(seed), faults: { dropCallback: 0.5 } });
      const hook = await receiver();
      const telephony = adapter(sim);
      for (let i = 0; i < 6; i++) {
        await telephony.createCall(request(`+1415523008${i}`, callbackUrl(hook.url, 'S', `J${i}`)));
      }
      await sim.settled(3000);
      return sim
        .calls()
        .map((call) => call.callbacks.filter((c) => c.fate === 'dropped').map((c) => c.sequenceNumber));
    }
    const first = await dropped(7);
    expect(await dropped(7)).toEqual(first);
    const count = first.flat().length;
    expect(count).toBeGreaterThan(0);
    expect(count).toBeLessThan(24);
  });
});

describe('the observer', () => {
  it('tracks live calls overall and per run, and numbers called twice', async () => {
    const sim = await simulator({ ringMs: 40, talkMs: 40 });
    const hook = await receiver();
    const telephony = adapter(sim);
    await Promise.all([
      ...['1', '2', '3'].map((n) =>
        telephony.createCall(request(`+141552301${n}0`, callbackUrl(hook.url, 'A', n))),
      ),
      ...['4', '5'].map((n) =>
        telephony.createCall(request(`+141552301${n}0`, callbackUrl(hook.url, 'B', n))),
      ),
    ]);
    expect(sim.stats().live).toBe(5);
    await sim.waitForFinal(5, 10_000);

    // One at a time in run C, twice to the same number.
    for (const job of ['x', 'y']) {
      await telephony.createCall(request('+14155230190', callbackUrl(hook.url, 'C', job)));
      await sim.waitFor((s) => s.stats().runs.C?.live === 0, 10_000, 'run C idle');
    }
    const stats = sim.stats();
    expect(stats).toMatchObject({ created: 7, live: 0, maxLive: 5, final: 7 });
    expect(stats.runs).toEqual({
      A: { created: 3, live: 0, maxLive: 3, final: 3 },
      B: { created: 2, live: 0, maxLive: 2, final: 2 },
      C: { created: 2, live: 0, maxLive: 1, final: 2 },
    });
    expect(stats.outcomes.completed).toBe(7);
    expect(sim.repeatedTos()).toEqual(['+14155230190']);
  });

  it('measures refill latency: final callback sent → next create received', async () => {
    const sim = await simulator();
    let telephony: TwilioTelephony | undefined;
    const hook = await receiver(async (_n, r) => {
      if (r.params.CallStatus === 'completed' && r.params.To === '+14155230200') {
        await telephony!.createCall(request('+14155230201', callbackUrl(hookUrl(), 'L', '2')));
      }
      return 200;
    });
    const hookUrl = () => hook.url;
    telephony = adapter(sim);
    await telephony.createCall(request('+14155230200', callbackUrl(hook.url, 'L', '1')));
    await sim.waitForFinal(2, 10_000);
    // A call is final before its final callback is sent (the timeline records the send after it).
    await sim.waitFor(
      (s) => s.timeline().filter((e) => e.kind === 'final-callback').length === 2,
      5000,
      'the second final callback',
    );

    const latencies = sim.refillLatencies('L');
    expect(latencies).toHaveLength(1);
    expect(latencies[0]).toBeGreaterThanOrEqual(0);
    expect(latencies[0]).toBeLessThan(1000);
    expect(sim.timeline().map((e) => e.kind)).toEqual([
      'create',
      'final',
      'final-callback',
      'create',
      'final',
      'final-callback',
    ]);
  });

  it('says what it was waiting for when a wait times out', async () => {
    const sim = await simulator();
    await expect(sim.waitForFinal(1, 50)).rejects.toThrow(/timed out after 50 ms waiting for 1 final calls/);
  });
});

describe('the REST surface', () => {
  it('answers bad credentials with a Twilio 401 and a missing Url/Twiml with a 400', async () => {
    const sim = await simulator();
    const denied = await rawCreate(sim, [['To', '+14155230300']], 'wrong');
    expect(denied).toEqual({
      status: 401,
      body: {
        code: 20003,
        message: 'Authenticate',
        more_info: 'https://www.twilio.com/docs/errors/20003',
        status: 401,
      },
    });
    const incomplete = await rawCreate(sim, [
      ['To', '+14155230300'],
      ['From', FROM],
    ]);
    expect(incomplete).toMatchObject({ status: 400, body: { code: 21205, status: 400 } });
    expect(sim.stats()).toMatchObject({ createRequests: 1, created: 0, rejected: 1 });
  });

  it('plays an outcome mix by weight, refusing "invalid" numbers at create with 21211', async () => {
    expect(parseOutcomeMix('completed=2, busy=1,invalid=1')).toEqual({ completed: 2, busy: 1, invalid: 1 });
    expect(parseOutcomeMix('completed')).toEqual({ completed: 1 });
    expect(() => parseOutcomeMix('completed=1,answered=2')).toThrow('unknown outcome "answered"');
    expect(() => parseOutcomeMix('busy=0')).toThrow('needs a positive weight');

    const sim = await simulator({ behavior: weightedOutcomes({ invalid: 1 }, mulberry32(1)) });
    const refused = await rawCreate(sim, [
      ['To', '+14155230300'],
      ['From', FROM],
      ['Url', 'https://example.com/twiml'],
    ]);
    expect(refused).toMatchObject({ status: 400, body: { code: 21211, status: 400 } });
    expect(sim.stats()).toMatchObject({ createRequests: 1, created: 0, rejected: 1 });

    // The default mix, seeded (so the draws are always the same): each outcome within 4 points of its share.
    const random = mulberry32(58);
    const behavior = weightedOutcomes(REALISTIC_OUTCOMES, random);
    const seen: Record<string, number> = {};
    for (let index = 0; index < 1_000; index++) {
      const script = behavior({ to: '+14155230300', from: FROM, index });
      const outcome = script.invalidNumber ? 'invalid' : script.outcome;
      seen[outcome] = (seen[outcome] ?? 0) + 1;
    }
    for (const [outcome, percent] of Object.entries(REALISTIC_OUTCOMES))
      expect(Math.abs((seen[outcome] ?? 0) / 10 - percent), outcome).toBeLessThan(4);
  });
});
