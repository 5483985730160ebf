// Answering-machine detection end to end on the real parts: DynamoDB Local, the real Twilio adapter
// against the Twilio double (which picks who answers by the number's last digits: 7, 8 or 9 a machine,
// 00 a fax, else a person), the callback cores behind a webhook, and the real webhook handler for
// signatures. What the double saw (the create's parameters, its redirects and hang-ups, how long each
// call lasted) and GET /runs/{id}/calls are the evidence.

import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAmdCallbackUrl } from '../../lambdas/core/callback-url.ts';
import type { CallView } from '../../lambdas/core/listings.ts';
import { route } from '../../lambdas/handlers/api.ts';
import { handleStatusCallback } from '../../lambdas/handlers/webhook.ts';
import { mulberry32, type SimCall, twilioSignature } from '../../tools/twilio-simulator/simulator.ts';
import { listCalls } from '../support/api-reads.ts';
import { apiEvent } from '../support/events.ts';
import { type Harness, startHarness } from '../support/policy-harness.ts';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    start: new Date('2026-11-30T08:00:00Z'),
    // A slow webhook (a loaded machine) is waited for, not taken for a lost callback: this file's
    // harness has no reconciler to settle a callback the double gave up on.
    simulator: { queuedMs: 0, ringMs: 20, talkMs: 200, random: mulberry32(15), callbackTimeoutMs: 120_000 },
  });
  Object.assign(process.env, h.apiEnvironment());
});

afterAll(async () => {
  await h?.stop();
});

/** Israeli mobiles (valid under libphonenumber's full metadata) whose last digits pick the answerer. */
const PEOPLE = ['+972522000001', '+972522000012'];
const MACHINES = ['+972522000007', '+972522000029'];
const FAX = '+972522000100';
const LEADS = [...PEOPLE, ...MACHINES, FAX].map((phone, i) => ({ phone, name: `Lead ${i}` }));
const VOICEMAIL = '<Response><Say>Sorry we missed you. We will call again tomorrow.</Say></Response>';

const created = (runId: string) => h.twilio.calls().filter((call) => call.run === runId);
const byPhone = (calls: CallView[]) => Object.fromEntries(calls.map((c) => [c.phone, c]));

describe('answering-machine detection', () => {
  it('ends machine- and fax-answered leads machine with answered_by; people complete; the create carries the AMD parameters', async () => {
    const runId = await h.createRun({ leads: LEADS, concurrency: 2, machine_detection: 'Enable' });
    await h.idle(60_000);

    for (const call of created(runId)) {
      expect(call).toMatchObject({ machineDetection: 'Enable', asyncAmd: true });
      const amd = new URL(call.asyncAmdStatusCallback!);
      expect(Object.fromEntries(amd.searchParams)).toMatchObject({
        run: runId,
        job: call.job,
        attempt: '1',
        callback: 'amd',
      });
    }
    const calls = byPhone(await listCalls(runId));
    for (const phone of PEOPLE) {
      expect(calls[phone]).toMatchObject({ status: 'completed', outcome: 'completed', answered_by: 'human' });
    }
    for (const phone of MACHINES) {
      expect(calls[phone]).toMatchObject({
        status: 'failed',
        outcome: 'machine',
        answered_by: 'machine_start',
      });
    }
    expect(calls[FAX]).toMatchObject({ status: 'failed', outcome: 'machine', answered_by: 'fax' });
    expect(await h.store.getRun(runId)).toMatchObject({
      completed: 2,
      failed: 3,
      active: 0,
      outcomes: { completed: 2, machine: 3 },
    });
    expect(created(runId)).toHaveLength(LEADS.length); // no retry asked for
    expect(h.errors).toEqual([]);
  });

  it('calls machine-answered leads again when retry.on says machine, and people once', async () => {
    const runId = await h.createRun({
      leads: LEADS,
      concurrency: 3,
      machine_detection: 'Enable',
      retry: { on: ['machine'], delay_seconds: 60, max_attempts: 2 },
    });
    await h.idle(60_000);
    let calls = byPhone(await listCalls(runId));
    for (const phone of [...MACHINES, FAX]) {
      expect(calls[phone]).toMatchObject({ status: 'queued', attempts: 1, outcome: 'machine' });
    }
    h.clock.advance(61_000);
    await h.idle(60_000);
    calls = byPhone(await listCalls(runId));
    for (const phone of [...MACHINES, FAX]) {
      expect(calls[phone]).toMatchObject({ status: 'failed', attempts: 2, outcome: 'machine' });
      expect(created(runId).filter((c) => c.to === phone)).toHaveLength(2);
    }
    for (const phone of PEOPLE) {
      expect(calls[phone]).toMatchObject({ status: 'completed', attempts: 1, answered_by: 'human' });
      expect(created(runId).filter((c) => c.to === phone)).toHaveLength(1);
    }
    expect(h.errors).toEqual([]);
  });

  it('leaves the run’s voicemail on a machine once its greeting ends (DetectMessageEnd), and on nothing else', async () => {
    // Machines record for 5 s after their beep: time for the webhook to redirect the call, however slow.
    h.twilio.configure({ behavior: () => ({ outcome: 'completed', talkMs: 5_000 }) });
    const runId = await h.createRun({
      leads: LEADS,
      concurrency: 5,
      machine_detection: 'DetectMessageEnd',
      voicemail_twiml: VOICEMAIL,
    });
    await h.idle(60_000);
    for (const call of created(runId)) {
      expect(call.machineDetection).toBe('DetectMessageEnd');
      if (MACHINES.includes(call.to)) {
        expect(call.redirects.map((r) => r.twiml)).toEqual([VOICEMAIL]);
        expect(call.answeredBy).toBe('machine_end_beep');
      } else {
        expect(call.redirects).toEqual([]);
      }
    }
    const calls = byPhone(await listCalls(runId));
    for (const phone of MACHINES) {
      expect(calls[phone]).toMatchObject({ outcome: 'machine', answered_by: 'machine_end_beep' });
    }
    expect(h.errors).toEqual([]);
    h.twilio.configure({ behavior: () => ({ outcome: 'completed' }) });
  });

  it('gets every outcome right when callbacks are duplicated and reordered, every verdict after the final status', async () => {
    h.twilio.configure({ faults: { duplicateCallback: 0.5, reorderCallback: 0.5, amdAfterFinal: 1 } });
    try {
      const leads = Array.from({ length: 12 }, (_, i) => ({
        phone: `+9725230000${String(i).padStart(2, '0')}`,
      }));
      const runId = await h.createRun({
        leads,
        concurrency: 4,
        machine_detection: 'DetectMessageEnd',
        voicemail_twiml: VOICEMAIL,
      });
      await h.idle(60_000);
      expect(h.twilio.stats().callbacks.duplicated).toBeGreaterThan(0);
      // Each verdict was sent after its call's final status (a call's callbacks go one by one).
      for (const call of created(runId)) {
        const sent = (event: string) => call.callbacks.find((c) => c.event === event)?.firstSentAt;
        expect(sent('amd')).toBeGreaterThan(sent('completed')!);
      }

      const calls = await listCalls(runId);
      for (const call of calls) {
        const answerer = call.phone.endsWith('00') ? 'fax' : /[789]$/.test(call.phone) ? 'machine' : 'human';
        const expected =
          answerer === 'human'
            ? { status: 'completed', outcome: 'completed', answered_by: 'human' }
            : answerer === 'fax'
              ? { status: 'failed', outcome: 'machine', answered_by: 'fax' }
              : { status: 'failed', outcome: 'machine', answered_by: 'machine_end_beep' };
        expect(call).toMatchObject({ attempts: 1, ...expected });
      }
      // The calls had ended: no voicemail could be left, and none was.
      for (const call of created(runId)) expect(call.redirects).toEqual([]);
      const machines = calls.filter((c) => c.outcome === 'machine').length;
      expect(await h.store.getRun(runId)).toMatchObject({
        active: 0,
        completed: calls.length - machines,
        failed: machines,
      });
      expect(h.errors).toEqual([]);
    } finally {
      h.twilio.configure({ faults: {} });
    }
  });

  it('refuses detection parameters Twilio would refuse (the double), creating nothing', async () => {
    const createdBefore = h.twilio.stats().created;
    const post = async (extra: Record<string, string>) => {
      const body = new URLSearchParams({
        To: '+972522000001',
        From: '+15005550006',
        Twiml: '<Response/>',
        ...extra,
      });
      const res = await fetch(`${h.twilio.url}/2010-04-01/Accounts/${h.twilio.accountSid}/Calls.json`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${h.twilio.accountSid}:${h.twilio.authToken}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body,
      });
      return { status: res.status, code: ((await res.json()) as { code: number }).code };
    };
    expect(await post({ MachineDetection: 'Enabled' })).toEqual({ status: 400, code: 20001 });
    expect(await post({ MachineDetection: 'Enable', AsyncAmd: 'yes' })).toEqual({ status: 400, code: 20001 });
    expect(await post({ MachineDetection: 'Enable', AsyncAmdStatusCallback: 'hooks' })).toEqual({
      status: 400,
      code: 20001,
    });
    expect(await post({ MachineDetection: 'Enable', MachineDetectionTimeout: '60' })).toEqual({
      status: 400,
      code: 20001,
    });
    expect(h.twilio.stats().created).toBe(createdBefore);
  });
});

describe('hanging up on machines (on_machine)', () => {
  /** How long the double keeps a machine's call going when nobody hangs up: far beyond a verdict. */
  const MACHINE_TALK_MS = 8_000;
  const PERSON_TALK_MS = 1_500;
  const MACHINE = '+972522000307';
  const FAX_LINE = '+972522000400';
  const PERSON = '+972522000301';
  /** Who answers by the number's last digits (the double's rule); the verdict 150 ms after the answer. */
  const scripts = () =>
    h.twilio.configure({
      behavior: ({ to }) => ({
        outcome: 'completed',
        talkMs: to === PERSON ? PERSON_TALK_MS : MACHINE_TALK_MS,
        amdMs: 150,
      }),
    });
  const talked = (call: SimCall) => call.endedAt! - call.answeredAt!;
  const hangUps = (call: SimCall) => call.statusUpdates.filter((u) => u.status === 'completed');
  const runView = async (runId: string) => JSON.parse((await route(apiEvent('GET', `/runs/${runId}`))).body);

  it('hangs up a machine and a fax by default as soon as detection tells; the slot goes to the next lead; a person talks on', async () => {
    scripts();
    try {
      const runId = await h.createRun({
        leads: [{ phone: MACHINE }, { phone: FAX_LINE }, { phone: PERSON }],
        concurrency: 1,
        machine_detection: 'Enable',
      });
      await h.idle(60_000);
      expect(await runView(runId)).toMatchObject({ machine_detection: 'Enable', on_machine: 'hangup' });

      const [machine, fax, person] = created(runId).sort((a, b) => a.index - b.index);
      for (const call of [machine!, fax!]) {
        // The double was asked once to end the call (Status=completed) and did: it never ran its course.
        expect(call.statusUpdates).toEqual([{ at: expect.any(Number), status: 'completed' }]);
        expect(call.status).toBe('completed');
        expect(talked(call)).toBeLessThan(MACHINE_TALK_MS / 4);
        expect(call.durationSeconds).toBeLessThanOrEqual(2);
      }
      // Each next lead was dialed in the freed slot long before the machine's call would have ended.
      expect(fax!.createdAt).toBeLessThan(machine!.answeredAt! + MACHINE_TALK_MS / 4);
      expect(person!.createdAt).toBeLessThan(fax!.answeredAt! + MACHINE_TALK_MS / 4);
      expect(h.twilio.stats().runs[runId]?.maxLive).toBe(1);
      // A person is never hung up on: the call lasts its whole talk time.
      expect(person!.answeredBy).toBe('human');
      expect(person!.statusUpdates).toEqual([]);
      expect(talked(person!)).toBeGreaterThanOrEqual(PERSON_TALK_MS - 20);

      const calls = byPhone(await listCalls(runId));
      expect(calls[MACHINE]).toMatchObject({
        status: 'failed',
        outcome: 'machine',
        answered_by: 'machine_start',
      });
      expect(calls[FAX_LINE]).toMatchObject({ status: 'failed', outcome: 'machine', answered_by: 'fax' });
      expect(calls[PERSON]).toMatchObject({
        status: 'completed',
        outcome: 'completed',
        answered_by: 'human',
      });
      expect(await h.store.getRun(runId)).toMatchObject({
        active: 0,
        completed: 1,
        failed: 2,
        outcomes: { completed: 1, machine: 2 },
      });
      expect(h.errors).toEqual([]);
    } finally {
      h.twilio.configure({ behavior: () => ({ outcome: 'completed' }) });
    }
  });

  it('lets a machine’s call run its course with on_machine continue', async () => {
    h.twilio.configure({ behavior: () => ({ outcome: 'completed', talkMs: PERSON_TALK_MS, amdMs: 150 }) });
    try {
      const runId = await h.createRun({
        leads: [{ phone: MACHINE }],
        machine_detection: 'Enable',
        on_machine: 'continue',
      });
      await h.idle(60_000);
      expect(await runView(runId)).toMatchObject({ on_machine: 'continue' });
      const [call] = created(runId);
      expect(call!.answeredBy).toBe('machine_start');
      expect(call!.statusUpdates).toEqual([]);
      expect(talked(call!)).toBeGreaterThanOrEqual(PERSON_TALK_MS - 20);
      expect(byPhone(await listCalls(runId))[MACHINE]).toMatchObject({
        status: 'failed',
        outcome: 'machine',
      });
      expect(h.errors).toEqual([]);
    } finally {
      h.twilio.configure({ behavior: () => ({ outcome: 'completed' }) });
    }
  });

  it('hangs up once when every verdict (and every status callback) comes twice', async () => {
    scripts();
    h.twilio.configure({ faults: { duplicateCallback: 1 } });
    try {
      const runId = await h.createRun({
        leads: [{ phone: MACHINE }, { phone: FAX_LINE }],
        concurrency: 2,
        machine_detection: 'DetectMessageEnd', // without a voicemail: machines are hung up too
      });
      await h.idle(60_000);
      for (const call of created(runId)) {
        const amd = call.callbacks.find((c) => c.event === 'amd');
        expect(amd).toMatchObject({ duplicated: true, fate: 'delivered' });
        expect(amd!.attempts).toBeGreaterThanOrEqual(2);
        expect(hangUps(call)).toHaveLength(1);
        expect(call.statusUpdates).toHaveLength(1);
        expect(talked(call)).toBeLessThan(MACHINE_TALK_MS / 4);
      }
      const calls = byPhone(await listCalls(runId));
      expect(calls[MACHINE]).toMatchObject({
        outcome: 'machine',
        answered_by: 'machine_end_beep',
        attempts: 1,
      });
      expect(calls[FAX_LINE]).toMatchObject({ outcome: 'machine', answered_by: 'fax', attempts: 1 });
      expect(await h.store.getRun(runId)).toMatchObject({ active: 0, failed: 2, outcomes: { machine: 2 } });
      expect(h.errors).toEqual([]);
    } finally {
      h.twilio.configure({ behavior: () => ({ outcome: 'completed' }), faults: {} });
    }
  });
});

describe('the webhook’s detection callback', () => {
  /** The Function URL event of a signed (or forged) detection callback to the webhook. */
  function amdEvent(url: string, params: Record<string, string>, signature?: string): APIGatewayProxyEventV2 {
    const target = new URL(url);
    const body = new URLSearchParams(params).toString();
    return {
      version: '2.0',
      routeKey: '$default',
      rawPath: target.pathname,
      rawQueryString: target.search.slice(1),
      headers: {
        host: target.host,
        'x-forwarded-proto': 'https',
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': signature ?? twilioSignature(h.twilio.authToken, url, params),
      },
      requestContext: { http: { method: 'POST' }, domainName: target.host } as never,
      body: Buffer.from(body).toString('base64'),
      isBase64Encoded: true,
    } as APIGatewayProxyEventV2;
  }

  it('records the verdict only when signed by Twilio (a forged one is 403, writes nothing and hangs up nothing); a signed one hangs up once', async () => {
    // A call that stays in progress and whose verdict the double never sends (detection outlasts it).
    h.twilio.configure({
      behavior: () => ({ outcome: 'completed', talkMs: 60_000, answeredBy: 'human', amdMs: 120_000 }),
    });
    try {
      const runId = await h.createRun({ leads: [{ phone: '+972522000201' }], machine_detection: 'Enable' });
      await h.twilio.waitFor(() => created(runId)[0]?.status === 'in-progress', 5_000, 'the call answered');
      const call = created(runId)[0]!;
      const url = buildAmdCallbackUrl('https://hooks.example.lambda-url.us-east-1.on.aws/', {
        runId,
        jobId: call.job!,
        attempt: 1,
      });
      const params = {
        AccountSid: h.twilio.accountSid,
        AnsweredBy: 'machine_start',
        CallSid: call.sid,
        MachineDetectionDuration: '2300',
      };

      const forged = await handleStatusCallback(amdEvent(url, params, 'bm90IGEgc2lnbmF0dXJlIGF0IGFsbA=='));
      expect(forged.statusCode).toBe(403);
      expect((await h.store.getJob(runId, call.job!))?.answeredBy).toBeUndefined();
      expect(h.twilio.call(call.sid)?.statusUpdates).toEqual([]); // and nobody was hung up on
      // Signed for another URL (another job): refused too.
      const otherJob = buildAmdCallbackUrl('https://hooks.example.lambda-url.us-east-1.on.aws/', {
        runId,
        jobId: '000009',
        attempt: 1,
      });
      const moved = await handleStatusCallback(
        amdEvent(url, params, twilioSignature(h.twilio.authToken, otherJob, params)),
      );
      expect(moved.statusCode).toBe(403);
      expect((await h.store.getJob(runId, call.job!))?.answeredBy).toBeUndefined();

      expect(h.twilio.call(call.sid)?.statusUpdates).toEqual([]);

      // The same signed verdict three times at once (Twilio's retries racing): recorded once, and the
      // webhook's own Twilio client hangs the machine up once (the run's default on_machine).
      const signed = await Promise.all([1, 2, 3].map(() => handleStatusCallback(amdEvent(url, params))));
      expect(signed.map((res) => res.statusCode)).toEqual([200, 200, 200]);
      expect((await h.store.getJob(runId, call.job!))?.answeredBy).toBe('machine_start');
      expect(h.twilio.call(call.sid)?.statusUpdates).toEqual([
        { at: expect.any(Number), status: 'completed' },
      ]);
      expect(h.twilio.call(call.sid)?.status).toBe('completed');

      await h.idle(60_000);
      expect(await h.store.getJob(runId, call.job!)).toMatchObject({ status: 'failed', outcome: 'machine' });
    } finally {
      h.twilio.configure({ behavior: () => ({ outcome: 'completed' }) });
    }
  });
});
