// The Twilio double and the Twilio adapter, over real HTTP on loopback. The simulator is the ground
// truth of the e2e and chaos suites, so its callbacks must pass the official twilio.validateRequest,
// its lifecycle must follow Twilio's, and its observer must count live calls correctly. The adapter
// must classify every create outcome so that a lead is never called twice and never failed for an
// account problem.

import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import twilio from 'twilio';
import { afterEach, describe, expect, it } from 'vitest';
import { BaseUrlRequestClient, TwilioTelephony } from '../../lambdas/adapters/twilio-telephony.ts';
import type { CallRequest, Log } from '../../lambdas/core/ports.ts';
import { freePort } from '../../lib/local/emulators.ts';
import {
  type CallScript,
  mulberry32,
  type SimulatorOptions,
  startTwilioSimulator,
  type TwilioSimulator,
} from '../../lib/local/twilio-simulator.ts';

const FROM = '+15005550006';
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

    const result = await adapter(sim).createCall(request('+15551230001', cb));

    expect(result).toMatchObject({ kind: 'created', status: 'queued' });
    const sid = result.kind === 'created' ? result.callSid : '';
    expect(sid).toMatch(/^CA[0-9a-f]{32}$/);
    expect(sim.call(sid)).toMatchObject({
      to: '+15551230001',
      from: FROM,
      twiml: '<Response><Say>Hi</Say></Response>',
      statusCallback: cb,
      statusCallbackMethod: 'POST',
      statusCallbackEvents: ['initiated', 'ringing', 'answered', 'completed'],
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
    const result = await adapter(sim).createCall(request('+15551230002', 'http://127.0.0.1:9/cb'));

    expect(result).toEqual({ kind: 'throttled' });
    expect(sim.stats()).toMatchObject({ createRequests: 1, created: 0, throttled: 1 });
  });

  it('reports a 500 as unknown, whether or not the call was really created, and never re-sends it', async () => {
    const created = await simulator({ faults: { createServerErrorAfterCreating: 1 } });
    const notCreated = await simulator({ faults: { createServerErrorWithoutCreating: 1 } });

    const a = await adapter(created).createCall(request('+15551230003', 'http://127.0.0.1:9/cb'));
    const b = await adapter(notCreated).createCall(request('+15551230003', 'http://127.0.0.1:9/cb'));

    expect(a).toMatchObject({ kind: 'unknown', reason: expect.stringContaining('500') });
    expect(b).toMatchObject({ kind: 'unknown', reason: expect.stringContaining('500') });
    expect(created.stats()).toMatchObject({ createRequests: 1, created: 1, live: 1 });
    expect(notCreated.stats()).toMatchObject({ createRequests: 1, created: 0, live: 0 });
    // The call behind the lost answer goes on and ends like any other.
    await created.waitForFinal(1, 2000);
    expect(created.calls()[0]?.status).toBe('completed');
  });

  it('reports a timeout as unknown while the call exists at Twilio', async () => {
    const sim = await simulator({ createDelayMs: 1000 });
    const started = Date.now();
    const result = await adapter(sim, { timeoutMs: 150 }).createCall(
      request('+15551230004', 'http://127.0.0.1:9/cb'),
    );

    expect(result).toEqual({ kind: 'unknown', reason: 'timeout' });
    expect(Date.now() - started).toBeLessThan(900);
    expect(sim.stats()).toMatchObject({ createRequests: 1, created: 1 });
  });

  it('reports a refused connection as unknown', async () => {
    const port = await freePort();
    const telephony = new TwilioTelephony({
      credentials: { accountSid: 'AC00000000000000000000000000000000', authToken: 'x' },
      apiBaseUrl: `http://127.0.0.1:${port}`,
      timeoutMs: 1000,
    });
    const result = await telephony.createCall(request('+15551230005', 'http://127.0.0.1:9/cb'));
    expect(result).toEqual({ kind: 'unknown', reason: 'network error (ECONNREFUSED)' });
  });

  it('treats refused credentials as throttled (not the lead’s fault), logs it without secrets, and recovers after a rotation', async () => {
    const sim = await simulator();
    const log = memoryLog();
    const stale = adapter(sim, {
      credentials: { accountSid: sim.accountSid, authToken: 'stale-token' },
      log,
    });

    expect(await stale.createCall(request('+15551230006', 'http://127.0.0.1:9/cb'))).toEqual({
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
    expect(await rotating.createCall(request('+15551230006', 'http://127.0.0.1:9/cb'))).toMatchObject({
      kind: 'created',
    });
    expect(refreshes).toBe(1);
    // Only authenticated requests count: the one sent with the stale token was refused at the door.
    expect(sim.stats()).toMatchObject({ createRequests: 1, created: 1 });
  });

  it('fetches, cancels and hangs up calls, with Twilio’s rules on what can be canceled', async () => {
    const sim = await simulator({
      behavior: byNumber({
        '+15551230010': { outcome: 'completed', queuedMs: 5000 },
        '+15551230011': { outcome: 'completed', ringMs: 5, talkMs: 5000 },
      }),
    });
    const hook = await receiver();
    const telephony = adapter(sim);
    const queued = await telephony.createCall(request('+15551230010', callbackUrl(hook.url, 'R', 'J1')));
    const answered = await telephony.createCall(request('+15551230011', callbackUrl(hook.url, 'R', 'J2')));
    if (queued.kind !== 'created' || answered.kind !== 'created') throw new Error('not created');

    expect(await telephony.fetchCall(queued.callSid)).toMatchObject({
      sid: queued.callSid,
      status: 'queued',
    });
    expect(await telephony.cancelCall(queued.callSid)).toEqual({ kind: 'updated', status: 'canceled' });
    expect(await telephony.fetchCall(queued.callSid)).toMatchObject({ status: 'canceled' });
    expect(await telephony.cancelCall(queued.callSid)).toMatchObject({ kind: 'invalid-state' });

    await sim.waitFor((s) => s.call(answered.callSid)?.status === 'in-progress', 2000, 'answer');
    expect(await telephony.cancelCall(answered.callSid)).toMatchObject({ kind: 'invalid-state' });
    expect(await telephony.hangUpCall(answered.callSid)).toEqual({ kind: 'updated', status: 'completed' });
    expect(await telephony.hangUpCall(answered.callSid)).toMatchObject({ kind: 'invalid-state' });

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

  it('finds calls to a number by start time, including one still in Twilio’s queue (no start time yet)', async () => {
    const sim = await simulator({
      behavior: ({ index }) =>
        index === 1 ? { outcome: 'completed', queuedMs: 5000 } : { outcome: 'completed' },
    });
    const telephony = adapter(sim);
    const before = new Date(Date.now() - 1000);
    const dialed = await telephony.createCall(request('+15551230020', 'http://127.0.0.1:9/a'));
    const stuck = await telephony.createCall(request('+15551230020', 'http://127.0.0.1:9/b'));
    await telephony.createCall(request('+15551230021', 'http://127.0.0.1:9/c'));
    if (dialed.kind !== 'created' || stuck.kind !== 'created') throw new Error('not created');
    await sim.waitFor((s) => s.call(dialed.callSid)?.startedAt !== undefined, 2000, 'dialing');

    const found = await telephony.findCalls({ to: '+15551230020', startedAfter: before });
    expect(found.map((c) => c.sid).sort()).toEqual([dialed.callSid, stuck.callSid].sort());
    const stuckSummary = found.find((c) => c.sid === stuck.callSid);
    expect(stuckSummary?.status).toBe('queued');
    expect(stuckSummary?.startTime).toBeUndefined();
    expect(found.find((c) => c.sid === dialed.callSid)?.startTime).toBeInstanceOf(Date);

    expect(
      await telephony.findCalls({ to: '+15551230020', startedAfter: new Date(Date.now() + 60_000) }),
    ).toEqual([]);

    // The raw list pages like Twilio's, and the official client follows next_page_uri.
    const client = twilio(sim.accountSid, sim.authToken, { httpClient: new BaseUrlRequestClient(sim.url) });
    const all = await client.calls.list({ pageSize: 1 });
    expect(all).toHaveLength(3);
    const byStart = await client.calls.list({ to: '+15551230020', startTimeAfter: before });
    expect(byStart.map((c) => c.sid)).toEqual([dialed.callSid]);
  });
});

describe('status callbacks', () => {
  it('are signed like Twilio’s and come in lifecycle order with sequence numbers', async () => {
    const sim = await simulator();
    const hook = await receiver();
    const cb = callbackUrl(hook.url, 'R', 'J');
    const result = await adapter(sim).createCall(request('+15551230030', cb));
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
      CallSid: result.kind === 'created' ? result.callSid : '',
      AccountSid: sim.accountSid,
      From: FROM,
      To: '+15551230030',
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
        '+15551230040': { outcome: 'busy' },
        '+15551230041': { outcome: 'failed' },
        '+15551230042': { outcome: 'no-answer' },
      }),
    });
    const hook = await receiver();
    for (const to of ['+15551230040', '+15551230041', '+15551230042']) {
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
      ['+15551230040', 'busy', '0'],
      ['+15551230041', 'failed', '0'],
      ['+15551230042', 'no-answer', '0'],
    ]);
    expect(sim.stats().outcomes).toMatchObject({ busy: 1, failed: 1, 'no-answer': 1 });
  });

  it('follow the requested events only', async () => {
    const sim = await simulator();
    const hook = await receiver();
    await rawCreate(sim, [
      ['To', '+15551230045'],
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
        '+15551230050': { outcome: 'completed', ringMs: 500 },
        '+15551230051': { outcome: 'completed', ringMs: 5, talkMs: 5000 },
      }),
    });
    const hook = await receiver();
    const telephony = adapter(sim);
    await telephony.createCall(request('+15551230050', hook.url, { ringTimeoutSeconds: 2 }));
    await telephony.createCall(request('+15551230051', hook.url, { timeLimitSeconds: 3 }));
    await sim.settled(1000);

    const finals = Object.fromEntries(
      hook.received.filter((r) => r.params.CallDuration !== undefined).map((r) => [r.params.To, r.params]),
    );
    expect(finals['+15551230050']).toMatchObject({ CallStatus: 'no-answer', CallDuration: '0' });
    expect(finals['+15551230051']).toMatchObject({ CallStatus: 'completed' });
    expect(Number(finals['+15551230051']!.CallDuration)).toBeLessThanOrEqual(4);
  });

  it('are retried once when delivery fails, then given up', async () => {
    const sim = await simulator({ callbackRetryDelayMs: 5 });
    const flaky = await receiver((n) => (n === 0 ? 503 : 200));
    const down = await receiver(() => 500);
    await rawCreate(sim, [
      ['To', '+15551230060'],
      ['From', FROM],
      ['Twiml', '<Response/>'],
      ['StatusCallback', flaky.url],
    ]);
    await rawCreate(sim, [
      ['To', '+15551230061'],
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
      ['To', '+15551230065'],
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
    await adapter(sim).createCall(request('+15551230070', callbackUrl(hook.url, 'F', 'J')));
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
        await telephony.createCall(request(`+1555123008${i}`, callbackUrl(hook.url, 'S', `J${i}`)));
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
        telephony.createCall(request(`+155512301${n}0`, callbackUrl(hook.url, 'A', n))),
      ),
      ...['4', '5'].map((n) =>
        telephony.createCall(request(`+155512301${n}0`, callbackUrl(hook.url, 'B', n))),
      ),
    ]);
    expect(sim.stats().live).toBe(5);
    await sim.waitForFinal(5, 2000);

    // One at a time in run C, twice to the same number.
    for (const job of ['x', 'y']) {
      await telephony.createCall(request('+15551230190', callbackUrl(hook.url, 'C', job)));
      await sim.waitFor((s) => s.stats().runs.C?.live === 0, 2000, 'run C idle');
    }
    const stats = sim.stats();
    expect(stats).toMatchObject({ created: 7, live: 0, maxLive: 5, final: 7 });
    expect(stats.runs).toEqual({
      A: { created: 3, live: 0, maxLive: 3, final: 3 },
      B: { created: 2, live: 0, maxLive: 2, final: 2 },
      C: { created: 2, live: 0, maxLive: 1, final: 2 },
    });
    expect(stats.outcomes.completed).toBe(7);
    expect(sim.repeatedTos()).toEqual(['+15551230190']);
  });

  it('measures refill latency: final callback sent → next create received', async () => {
    const sim = await simulator();
    let telephony: TwilioTelephony | undefined;
    const hook = await receiver(async (_n, r) => {
      if (r.params.CallStatus === 'completed' && r.params.To === '+15551230200') {
        await telephony!.createCall(request('+15551230201', callbackUrl(hookUrl(), 'L', '2')));
      }
      return 200;
    });
    const hookUrl = () => hook.url;
    telephony = adapter(sim);
    await telephony.createCall(request('+15551230200', callbackUrl(hook.url, 'L', '1')));
    await sim.waitForFinal(2, 2000);

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
    const denied = await rawCreate(sim, [['To', '+15551230300']], 'wrong');
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
      ['To', '+15551230300'],
      ['From', FROM],
    ]);
    expect(incomplete).toMatchObject({ status: 400, body: { code: 21205, status: 400 } });
    expect(sim.stats()).toMatchObject({ createRequests: 1, created: 0, rejected: 1 });
  });
});
