// Events out, end to end: `npm start` with EVENTS_WEBHOOK_URL and EVENTS_WEBHOOK_SECRET, an external
// Twilio double, and a webhook receiver that verifies every request with the `standardwebhooks`
// package and refuses some first deliveries (503, or a connection closed without an answer). A run
// with retries completes; the receiver then holds, deduplicated by webhook-id, exactly one final
// `call.ended` per lead (matching what the double saw: its Sid, its attempts, the lead as posted),
// one non-final per retried attempt, and `run.status_changed` to `completed`; nothing unsigned,
// every refused delivery delivered later. A scheduled run is woken through the SQS emulator's delayed
// messages at its start_at (no call before it, by the double's clock) and tells scheduled → running.

import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallEndedData, RunStatusChangedData } from '../../lambdas/core/events.ts';
import { freePort } from '../../tools/local/emulators.ts';
import {
  mulberry32,
  startTwilioSimulator,
  type TwilioSimulator,
  weightedOutcomes,
} from '../../tools/twilio-simulator/simulator.ts';
import { npmStart, type Started, stopNpmStart } from '../support/npm-start.ts';
import { getRun, postRun, waitForRunCompleted } from '../support/runs.ts';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const FROM = '+15005550006';
/** Twilio's magic number refused at create (21211): a lead made final without a call. */
const INVALID_NUMBER = '+15005550001';

type Payload =
  | { type: 'call.ended'; timestamp: string; data: CallEndedData }
  | { type: 'run.status_changed'; timestamp: string; data: RunStatusChangedData };

interface Receiver {
  url: string;
  server: Server;
  /** Requests per webhook-id, refused ones included. */
  tries: Map<string, number>;
  /** The first payload accepted per webhook-id. */
  accepted: Map<string, Payload>;
  refusedFirst: Set<string>;
  droppedFirst: Set<string>;
  /** Requests whose signature did not verify (or carried none). */
  unsigned: number;
}

async function startReceiver(): Promise<Receiver> {
  const verifier = new Webhook(SECRET);
  const receiver: Omit<Receiver, 'url' | 'server'> = {
    tries: new Map(),
    accepted: new Map(),
    refusedFirst: new Set(),
    droppedFirst: new Set(),
    unsigned: 0,
  };
  const read = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };
  const server = createServer((req, res) => {
    void read(req).then((body) => {
      let payload: Payload;
      try {
        payload = verifier.verify(body, req.headers as Record<string, string>) as Payload;
      } catch {
        receiver.unsigned += 1;
        res.writeHead(401).end();
        return;
      }
      const id = String(req.headers['webhook-id']);
      const tries = (receiver.tries.get(id) ?? 0) + 1;
      receiver.tries.set(id, tries);
      // By arrival: the first try of every third new id is refused, of every sixth (another) dropped.
      const nth = receiver.tries.size;
      if (tries === 1 && nth % 3 === 1) {
        receiver.refusedFirst.add(id);
        res.writeHead(503).end('not now');
        return;
      }
      if (tries === 1 && nth % 6 === 2) {
        // No answer at all: the sender sees the connection close.
        receiver.droppedFirst.add(id);
        req.socket.destroy();
        return;
      }
      if (!receiver.accepted.has(id)) receiver.accepted.set(id, payload);
      res.writeHead(204).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address() as { port: number };
  return { ...receiver, server, url: `http://127.0.0.1:${address.port}/hooks/dialgate` };
}

/** Israeli mobiles (libphonenumber-valid), with the fields a CRM would send along. */
function leads(count: number) {
  return Array.from({ length: count }, (_, i) => ({
    phone: `+97253${String(4_100_200 + i * 37).padStart(7, '0')}`,
    name: i % 3 === 0 ? `דנה ${i}` : `Lead ${i}`,
    crm_id: 5_000 + i,
  }));
}

describe('events out: signed webhooks from npm start', () => {
  let sim: TwilioSimulator;
  let receiver: Receiver;
  let started: Started | undefined;

  beforeAll(async () => {
    const random = mulberry32(15);
    sim = await startTwilioSimulator({
      ringMs: 80,
      talkMs: 300,
      jitter: 0.5,
      random,
      behavior: weightedOutcomes({ completed: 5, busy: 2, 'no-answer': 2, failed: 1 }, random),
    });
    receiver = await startReceiver();
    started = await npmStart(
      {
        PORT: String(await freePort()),
        TWILIO_API_BASE_URL: sim.url,
        TWILIO_ACCOUNT_SID: sim.accountSid,
        TWILIO_AUTH_TOKEN: sim.authToken,
        TWILIO_FROM_NUMBER: FROM,
        EVENTS_WEBHOOK_URL: receiver.url,
        EVENTS_WEBHOOK_SECRET: SECRET,
      },
      120_000,
    );
  }, 180_000);

  afterAll(async () => {
    await stopNpmStart(started);
    await sim?.stop();
    receiver?.server.closeAllConnections();
    receiver?.server.close();
  });

  it('one final call.ended per lead, a run.status_changed to completed, nothing unsigned, nothing lost', {
    timeout: 300_000,
  }, async () => {
    const posted = [...leads(24), { phone: INVALID_NUMBER, crm_id: 'no-such-line' }];
    const created = await postRun(started!.apiUrl, {
      concurrency: 3,
      retry: { on: ['busy', 'no-answer'], max_attempts: 2, delay_seconds: 1 },
      leads: posted,
    });
    expect(created.status).toBe(202);
    const runId = created.body.run_id;
    const view = await waitForRunCompleted(started!.apiUrl, runId, { timeoutMs: 240_000 });

    const ofRun = () => [...receiver.accepted.values()].filter((p) => p.data.run_id === runId);
    const finals = () =>
      ofRun().filter(
        (p): p is Extract<Payload, { type: 'call.ended' }> => p.type === 'call.ended' && p.data.final,
      );
    const completedEvent = () =>
      ofRun().find((p) => p.type === 'run.status_changed' && p.data.status === 'completed');
    // Delivered by now or soon: each refused first try comes back after the local schedule's 1–2 s.
    const deadline = Date.now() + 60_000;
    while (
      (finals().length < posted.length ||
        !completedEvent() ||
        [...receiver.tries.keys()].some((id) => !receiver.accepted.has(id))) &&
      Date.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }

    // Nothing unsigned: every request verified with the shared secret.
    expect(receiver.unsigned).toBe(0);
    // Nothing lost: every id the receiver refused or dropped was delivered again, and accepted.
    expect(receiver.refusedFirst.size).toBeGreaterThan(0);
    expect(receiver.droppedFirst.size).toBeGreaterThan(0);
    for (const id of [...receiver.refusedFirst, ...receiver.droppedFirst]) {
      expect(receiver.accepted.has(id), id).toBe(true);
      expect(receiver.tries.get(id)).toBeGreaterThanOrEqual(2);
    }

    // One final call.ended per lead, distinct by webhook-id (the map is keyed by it).
    const finalByJob = new Map<string, CallEndedData[]>();
    for (const event of finals()) {
      finalByJob.set(event.data.job_id, [...(finalByJob.get(event.data.job_id) ?? []), event.data]);
    }
    expect(finalByJob.size).toBe(posted.length);
    for (const list of finalByJob.values()) expect(list).toHaveLength(1);

    const retries = ofRun().filter(
      (p): p is Extract<Payload, { type: 'call.ended' }> => p.type === 'call.ended' && !p.data.final,
    );
    const calls = sim.calls().filter((call) => call.run === runId);
    for (const [jobId, [final]] of finalByJob) {
      const lead = posted.find((l) => l.phone === final!.lead.phone)!;
      // The lead as posted: its phone and its other fields, non-ASCII ones too.
      expect(final!.lead).toEqual(lead);
      const made = calls.filter((call) => call.job === jobId).sort((a, b) => a.index - b.index);
      const earlier = retries.filter((p) => p.data.job_id === jobId).map((p) => p.data);
      if (lead.phone === INVALID_NUMBER) {
        expect(final).toMatchObject({ outcome: 'rejected', call_sid: null, duration_seconds: 0 });
        continue;
      }
      // The double's calls for the lead: the last is the final event's, each earlier one a retry's.
      expect(made.length).toBeGreaterThan(0);
      expect(final!.attempt).toBe(made.length);
      expect(final!.call_sid).toBe(made.at(-1)!.sid);
      expect(final!.outcome).toBe(made.at(-1)!.status);
      expect(earlier.map((e) => e.call_sid).sort()).toEqual(
        made
          .slice(0, -1)
          .map((c) => c.sid)
          .sort(),
      );
      expect(earlier.every((e) => e.outcome === 'busy' || e.outcome === 'no-answer')).toBe(true);
      if (final!.outcome === 'completed') expect(final!.duration_seconds).toBeGreaterThanOrEqual(0);
      expect(final!.answered_by).toBeNull();
    }
    // Retries happened, and each retried attempt was told once.
    expect(retries.length).toBeGreaterThan(0);
    expect(retries.length).toBe(calls.length - (posted.length - 1));

    // The run's own end, with the counts the API shows.
    const statuses = ofRun().filter(
      (p): p is Extract<Payload, { type: 'run.status_changed' }> => p.type === 'run.status_changed',
    );
    // In any order: a refused first try arrives after later events.
    expect(statuses.map((p) => `${p.data.previous_status} → ${p.data.status}`).sort()).toEqual([
      'null → running',
      'running → completed',
    ]);
    const done = completedEvent()!.data as RunStatusChangedData;
    expect(done.counts).toMatchObject({
      total_leads: posted.length,
      queued: 0,
      in_progress: 0,
      completed: view.completed,
      failed: view.failed,
      outcomes: view.outcomes,
    });
    // The final events' outcomes add up to the run's.
    const outcomes: Record<string, number> = {};
    for (const event of finals()) outcomes[event.data.outcome] = (outcomes[event.data.outcome] ?? 0) + 1;
    expect(outcomes).toEqual((await getRun(started!.apiUrl, runId)).outcomes);
    const requests = [...receiver.tries.values()].reduce((sum, n) => sum + n, 0);
    console.info(
      `events: ${ofRun().length} distinct (${finals().length} final call.ended, ${retries.length} retries), ` +
        `${requests} requests, ${receiver.refusedFirst.size} first tries refused (503), ` +
        `${receiver.droppedFirst.size} dropped`,
    );
  });

  it('a scheduled run: nothing dialed before start_at, then scheduled → running → completed as events', {
    timeout: 120_000,
  }, async () => {
    const startAt = new Date(Date.now() + 5_000);
    const created = await postRun(started!.apiUrl, {
      concurrency: 2,
      leads: leads(3).map((lead, i) => ({
        ...lead,
        phone: `+97252${String(6_300_400 + i * 41).padStart(7, '0')}`,
      })),
      start_at: startAt.toISOString(),
    });
    expect(created.status).toBe(202);
    expect(created.body.status).toBe('scheduled');
    const runId = created.body.run_id;
    expect((await getRun(started!.apiUrl, runId)).status).toBe('scheduled');
    await waitForRunCompleted(started!.apiUrl, runId, { timeoutMs: 60_000 });
    // The Twilio double's own clock: every call of the run was created at or after start_at.
    const calls = sim.calls().filter((call) => call.run === runId);
    expect(calls).toHaveLength(3);
    for (const call of calls) expect(call.createdAt).toBeGreaterThanOrEqual(startAt.getTime());

    const statuses = () =>
      [...receiver.accepted.values()]
        .filter((p) => p.data.run_id === runId && p.type === 'run.status_changed')
        .map(
          (p) =>
            `${(p.data as RunStatusChangedData).previous_status} → ${(p.data as RunStatusChangedData).status}`,
        )
        .sort();
    const deadline = Date.now() + 60_000;
    while (statuses().length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(statuses()).toEqual(['null → scheduled', 'running → completed', 'scheduled → running']);
  });

  it('call.ended carries who answered when the run detects answering machines, and a machine’s call ends machine', {
    timeout: 240_000,
  }, async () => {
    // The double's rule: an answered call to a number ending in 7, 8 or 9 is a machine's, in 00 a fax's.
    // Every call is answered here, so that each lead's verdict is known.
    sim.configure({ behavior: () => ({ outcome: 'completed' }) });
    const posted = Array.from({ length: 10 }, (_, i) => ({ phone: `+97253410030${i}`, crm_id: 6_000 + i }));
    const created = await postRun(started!.apiUrl, {
      concurrency: 5,
      machine_detection: 'Enable',
      leads: posted,
    });
    expect(created.status).toBe(202);
    const runId = created.body.run_id;
    await waitForRunCompleted(started!.apiUrl, runId, { timeoutMs: 180_000 });
    const finals = () =>
      [...receiver.accepted.values()].filter(
        (p): p is Extract<Payload, { type: 'call.ended' }> =>
          p.type === 'call.ended' && p.data.run_id === runId && p.data.final,
      );
    const deadline = Date.now() + 60_000;
    while (finals().length < posted.length && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(finals()).toHaveLength(posted.length);
    const calls = sim.calls().filter((call) => call.run === runId);
    for (const { data } of finals()) {
      const call = calls.find((c) => c.sid === data.call_sid)!;
      expect(call.machineDetection).toBe('Enable');
      // Who answered, as the double decided it (null for a call nobody answered).
      expect(data.answered_by).toBe(call.answeredBy ?? null);
      const phone = String(data.lead.phone);
      const expected = phone.endsWith('00')
        ? 'fax'
        : '789'.includes(phone.at(-1)!)
          ? 'machine_start'
          : 'human';
      expect(data.answered_by).toBe(expected);
      expect(data.outcome).toBe(expected === 'human' ? 'completed' : 'machine');
    }
    // +972534100300 (a fax) and …307, …308, …309 (machines).
    expect(finals().filter((e) => e.data.outcome === 'machine')).toHaveLength(4);
  });
});
