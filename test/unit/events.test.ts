// The events derived from table changes: a job's life written the way the slot adapter writes it
// (acquire, answered, released final or back to the queue, a 429 requeue, a cancel while queued),
// each write seen as a stream record — some of them twice, as streams redeliver. Whatever the life,
// exactly one final `call.ended` per lead, one non-final per retry, none for anything else, and the
// same id for the same change.

import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { newJobItem, newRunItem } from '../../lambdas/adapters/dynamo/items.ts';
import { changeOf } from '../../lambdas/adapters/dynamo/stream-change.ts';
import {
  type CallEndedEvent,
  type DialgateEvent,
  eventsForChange,
  type RunStatusChangedEvent,
  webhookBody,
} from '../../lambdas/core/events.ts';
import type { Job, Run } from '../../lambdas/core/model.ts';

const RUN = 'r-7f3a';
const AT = '2026-11-30T04:00:00.000Z';

function job(overrides: Partial<Job> = {}): Job {
  return {
    runId: RUN,
    jobId: '000007',
    phone: '+972524118203',
    attributes: { name: 'Dana', crm_id: 'C-1042' },
    status: 'queued',
    attempt: 0,
    queuedAt: AT,
    ...overrides,
  };
}

function run(overrides: Partial<Run> = {}): Run {
  return {
    runId: RUN,
    createdAt: AT,
    concurrency: 3,
    control: 'running',
    totalLeads: 2,
    ingestedLeads: 2,
    active: 0,
    holders: {},
    queued: 2,
    completed: 0,
    failed: 0,
    canceled: 0,
    outcomes: {},
    options: {},
    chunkCount: 1,
    ...overrides,
  };
}

const jobEvents = (before: Job | undefined, after: Job | undefined) =>
  eventsForChange({ entity: 'job', before, after }, AT) as CallEndedEvent[];
const runEvents = (before: Run | undefined, after: Run | undefined, at = AT) =>
  eventsForChange({ entity: 'run', before, after }, at) as RunStatusChangedEvent[];

describe('call.ended', () => {
  it('a call that ends for good: one final event with the lead as posted, its Sid and its length', () => {
    const calling = job({
      status: 'calling',
      attempt: 1,
      dialedAt: '2026-11-30T04:00:01.000Z',
      answeredAt: '2026-11-30T04:00:05.000Z',
      callSid: 'CA0123456789abcdef0123456789abcdef',
    });
    const ended = {
      ...calling,
      status: 'completed' as const,
      outcome: 'completed',
      endedAt: '2026-11-30T04:00:47.400Z',
    };
    const [event, ...rest] = jobEvents(calling, ended);
    expect(rest).toEqual([]);
    expect(event).toEqual({
      id: `call.ended:${RUN}:000007:1:final`,
      type: 'call.ended',
      timestamp: '2026-11-30T04:00:47.400Z',
      data: {
        run_id: RUN,
        job_id: '000007',
        attempt: 1,
        outcome: 'completed',
        final: true,
        answered_by: null,
        call_sid: 'CA0123456789abcdef0123456789abcdef',
        duration_seconds: 42,
        ended_at: '2026-11-30T04:00:47.400Z',
        lead: { phone: '+972524118203', name: 'Dana', crm_id: 'C-1042' },
      },
    });
    expect(JSON.parse(webhookBody(event!))).toEqual({
      type: 'call.ended',
      timestamp: event!.timestamp,
      data: event!.data,
    });
  });

  it('an attempt that will be retried: final false, its own id; the retry-less 429 requeue: nothing', () => {
    const dialing = job({ status: 'dialing', attempt: 1, callSid: 'CAa1' });
    const retry = { ...dialing, status: 'queued' as const, outcome: 'no-answer', endedAt: AT, notBefore: 1 };
    const [event] = jobEvents(dialing, retry);
    expect(event?.data).toMatchObject({
      final: false,
      outcome: 'no-answer',
      attempt: 1,
      duration_seconds: 0,
    });
    expect(event?.id).toBe(`call.ended:${RUN}:000007:1:retry`);

    const throttled = { ...job({ status: 'dialing', attempt: 2 }), status: 'queued' as const, endedAt: AT };
    expect(jobEvents(job({ status: 'dialing', attempt: 2 }), throttled)).toEqual([]);
  });

  it('a lead canceled while queued after a retry: final, no Sid (the earlier call is not this one)', () => {
    const waiting = job({ status: 'queued', attempt: 1, outcome: 'busy', callSid: 'CAold', endedAt: AT });
    const canceled = {
      ...waiting,
      status: 'canceled' as const,
      outcome: 'canceled',
      endedAt: '2026-11-30T04:10:00.000Z',
    };
    const [event] = jobEvents(waiting, canceled);
    expect(event?.data).toMatchObject({
      final: true,
      outcome: 'canceled',
      attempt: 1,
      call_sid: null,
      duration_seconds: 0,
    });
    expect(event?.id).toBe(`call.ended:${RUN}:000007:1:final`);
  });

  it('a job created canceled (a canceled run’s chunk) ends the lead at attempt 0', () => {
    const created = job({ status: 'canceled', outcome: 'canceled', endedAt: AT });
    expect(jobEvents(undefined, created)[0]?.data).toMatchObject({ attempt: 0, final: true, call_sid: null });
  });

  it('a lead ended uncalled by a recipient check (suppressed, frequency_capped): final, no Sid', () => {
    for (const outcome of ['suppressed', 'frequency_capped']) {
      // As endQueuedJob writes it: queued → failed with the outcome, at the attempts already made.
      const queued = job({ attempt: 1, outcome: 'busy', callSid: 'CAearlier', endedAt: AT, notBefore: 1 });
      const ended = { ...queued, status: 'failed' as const, outcome, endedAt: '2026-11-30T04:09:00.000Z' };
      delete ended.notBefore;
      const [event, ...rest] = jobEvents(queued, ended);
      expect(rest).toEqual([]);
      expect(event?.id).toBe(`call.ended:${RUN}:000007:1:final`);
      expect(event?.data).toMatchObject({
        attempt: 1,
        outcome,
        final: true,
        call_sid: null,
        answered_by: null,
        duration_seconds: 0,
        ended_at: '2026-11-30T04:09:00.000Z',
      });
      // A redelivery of the change: the same event, nothing more.
      expect(jobEvents(queued, ended)).toEqual([event]);
    }
  });

  it('nothing for creation, dialing, answering, deletion or a write after final', () => {
    const queued = job();
    const dialing = job({ status: 'dialing', attempt: 1 });
    const calling = job({ status: 'calling', attempt: 1, answeredAt: AT });
    const done = job({ status: 'failed', attempt: 1, outcome: 'busy', endedAt: AT });
    expect(jobEvents(undefined, queued)).toEqual([]);
    expect(jobEvents(queued, dialing)).toEqual([]);
    expect(jobEvents(dialing, calling)).toEqual([]);
    expect(jobEvents(done, undefined)).toEqual([]);
    expect(jobEvents(done, { ...done, callSid: 'CAlate' })).toEqual([]);
  });
});

/** A job's life as the slot adapter writes it, as (before, after) pairs. */
type Step = 'answer' | 'final' | 'retry' | 'throttle' | 'cancelQueued';

function life(steps: Step[]): { writes: [Job | undefined, Job][]; retries: number } {
  let current = job();
  const writes: [Job | undefined, Job][] = [[undefined, current]];
  let retries = 0;
  const write = (next: Job) => {
    writes.push([current, next]);
    current = next;
  };
  for (const step of steps) {
    if (current.status === 'completed' || current.status === 'failed' || current.status === 'canceled') break;
    if (current.status === 'queued') {
      if (step === 'cancelQueued') {
        write({ ...current, status: 'canceled', outcome: 'canceled', endedAt: AT });
        continue;
      }
      // acquire: what described the last attempt goes
      const { callSid: _s, outcome: _o, answeredAt: _a, endedAt: _e, ...rest } = current;
      write({ ...rest, status: 'dialing', attempt: current.attempt + 1, dialedAt: AT });
      write({ ...current, callSid: `CA${current.attempt}` });
      continue;
    }
    if (step === 'answer' && current.status === 'dialing')
      write({ ...current, status: 'calling', answeredAt: AT });
    else if (step === 'final') write({ ...current, status: 'failed', outcome: 'busy', endedAt: AT });
    else if (step === 'retry') {
      retries += 1;
      write({ ...current, status: 'queued', outcome: 'no-answer', endedAt: AT });
    } else if (step === 'throttle' && current.status === 'dialing')
      write({ ...current, status: 'queued', endedAt: AT });
  }
  // Whatever the steps, a lead ends final (the run's end cancels what is still queued, calls end).
  if (current.status === 'queued')
    write({ ...current, status: 'canceled', outcome: 'canceled', endedAt: AT });
  else if (current.status === 'dialing' || current.status === 'calling')
    write({ ...current, status: 'completed', outcome: 'completed', endedAt: AT });
  return { writes, retries };
}

describe('call.ended over any life of a job, with redelivered records', () => {
  it('one final event per lead, one per retry, same id for the same change', () => {
    const step = fc.constantFrom<Step>('answer', 'final', 'retry', 'throttle', 'cancelQueued');
    fc.assert(
      fc.property(
        fc.array(step, { maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (steps, dupes) => {
          const { writes, retries } = life(steps);
          // A stream delivers each write at least once: some twice, in place.
          const delivered = writes.flatMap((w, i) => (dupes.includes(i) ? [w, w] : [w]));
          const events = delivered.flatMap(([before, after]) => jobEvents(before, after));
          const byId = new Map<string, CallEndedEvent>();
          for (const event of events) {
            const seen = byId.get(event.id);
            if (seen) expect(seen).toEqual(event); // a redelivered change: the very same event
            byId.set(event.id, event);
          }
          const distinct = [...byId.values()];
          expect(distinct.filter((e) => e.data.final)).toHaveLength(1);
          expect(distinct.filter((e) => !e.data.final)).toHaveLength(retries);
          // Every non-final event is an attempt of its own.
          const retryAttempts = distinct.filter((e) => !e.data.final).map((e) => e.data.attempt);
          expect(new Set(retryAttempts).size).toBe(retries);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('run.status_changed', () => {
  it('a new run is announced running; counting towards the end says nothing until completed', () => {
    const created = run();
    expect(runEvents(undefined, created)[0]).toMatchObject({
      id: `run.status_changed:${RUN}:running:${AT}`,
      data: { status: 'running', previous_status: null, reason: null },
    });
    const half = run({ queued: 1, completed: 1, outcomes: { completed: 1 } });
    expect(runEvents(created, half)).toEqual([]);
    const done = run({ queued: 0, completed: 2, outcomes: { completed: 2 } });
    const [event] = runEvents(half, done, '2026-11-30T04:05:00.000Z');
    expect(event).toMatchObject({
      type: 'run.status_changed',
      timestamp: '2026-11-30T04:05:00.000Z',
      data: {
        status: 'completed',
        previous_status: 'running',
        counts: { total_leads: 2, completed: 2, queued: 0, in_progress: 0, outcomes: { completed: 2 } },
      },
    });
  });

  it('pause, resume, pause again: three events, three ids; a redelivery: the same id', () => {
    const r0 = run();
    const p1 = run({ control: 'paused', controlAt: '2026-11-30T04:01:00.000Z' });
    const r1 = run({ control: 'running', controlAt: '2026-11-30T04:02:00.000Z' });
    const p2 = run({ control: 'paused', controlAt: '2026-11-30T04:03:00.000Z' });
    const events = [runEvents(r0, p1), runEvents(p1, r1), runEvents(r1, p2), runEvents(r1, p2)].flat();
    expect(events.map((e) => e.data.status)).toEqual(['paused', 'running', 'paused', 'paused']);
    expect(new Set(events.map((e) => e.id)).size).toBe(3);
    expect(events[0]?.timestamp).toBe('2026-11-30T04:01:00.000Z');
    // The reason a run paused itself, when it did.
    expect(runEvents(r0, { ...p1, pauseReason: 'failed_ratio' })[0]?.data.reason).toBe('failed_ratio');
  });

  it('cancel: canceling while calls end, then canceled', () => {
    const live = run({ active: 1, queued: 1 });
    const canceling = { ...live, control: 'canceled' as const, controlAt: '2026-11-30T04:01:00.000Z' };
    const canceled = { ...canceling, active: 0, queued: 0, canceled: 2 };
    expect(runEvents(live, canceling).map((e) => e.data.status)).toEqual(['canceling']);
    expect(runEvents(canceling, canceled).map((e) => [e.data.previous_status, e.data.status])).toEqual([
      ['canceling', 'canceled'],
    ]);
  });
});

describe('stream records through the item mapping', () => {
  const record = (before?: Record<string, unknown>, after?: Record<string, unknown>): DynamoDBRecord => ({
    eventName: before && after ? 'MODIFY' : after ? 'INSERT' : 'REMOVE',
    dynamodb: {
      ApproximateCreationDateTime: 1_795_000_000,
      SequenceNumber: '100',
      StreamViewType: 'NEW_AND_OLD_IMAGES',
      ...(before ? { OldImage: marshall(before, { removeUndefinedValues: true }) as never } : {}),
      ...(after ? { NewImage: marshall(after, { removeUndefinedValues: true }) as never } : {}),
    },
  });
  const derive = (r: DynamoDBRecord): DialgateEvent[] => {
    const change = changeOf(r);
    return change ? eventsForChange(change, AT) : [];
  };

  it('a job item released final yields call.ended with the lead’s fields, not its keys or index attributes', () => {
    const queued = newJobItem(
      RUN,
      { jobId: '000003', phone: '+14165550123', attributes: { crm_id: 77 } },
      AT,
      'queued',
    );
    const dialing: Record<string, unknown> = { ...queued, status: 'dialing', attempt: 1, callSid: 'CAx' };
    delete dialing.queuedRun;
    delete dialing.queuedKey;
    const ended = { ...dialing, status: 'failed', outcome: 'no-answer', endedAt: AT };
    const [event] = derive(record(dialing, ended)) as CallEndedEvent[];
    expect(event?.data.lead).toEqual({ phone: '+14165550123', crm_id: 77 });
    expect(event?.data.call_sid).toBe('CAx');
  });

  it('a run item created yields run.status_changed; other items (chunk markers, keys) yield nothing', () => {
    const item = newRunItem({ runId: RUN, createdAt: AT, concurrency: 3, totalLeads: 5 });
    expect(derive(record(undefined, item)).map((e) => e.type)).toEqual(['run.status_changed']);
    expect(derive(record(undefined, { pk: `RUN#${RUN}`, sk: 'CHUNK#0', entity: 'chunk' }))).toEqual([]);
    expect(
      derive(record(undefined, { pk: 'IDEMPOTENCY#k', sk: 'IDEMPOTENCY', entity: 'idempotency' })),
    ).toEqual([]);
  });
});
