// Queueing that cannot half-fail silently: when only some of a request's lead chunks reach the queue,
// the answer names the run and what was queued, and the same request again with the same
// Idempotency-Key (a create or an append) finishes the run without calling anyone twice.

import { describe, expect, it } from 'vitest';
import { appendLeads } from '../../lambdas/core/append-leads.ts';
import { createRun } from '../../lambdas/core/create-run.ts';
import { LeadsNotQueuedError, QueueingIncompleteError } from '../../lambdas/core/errors.ts';
import { runStatus } from '../../lambdas/core/model.ts';
import type { DispatchRequest, LeadChunk, WorkQueue } from '../../lambdas/core/ports.ts';
import { toErrorResponse } from '../../lambdas/handlers/http.ts';
import { quietLog } from '../support/fakes.ts';
import { drain, phoneFor, type World, world } from '../support/unit-world.ts';

/** A queue that, while `failing`, takes only the first chunk of a request and then fails. */
class HalfFailingQueue implements WorkQueue {
  failing = true;
  constructor(private readonly w: World) {}
  async sendLeadChunks(runId: string, chunks: LeadChunk[]): Promise<void> {
    if (!this.failing) return this.w.queue.sendLeadChunks(runId, chunks);
    const [first] = chunks;
    await this.w.queue.sendLeadChunks(runId, [first!]);
    throw new LeadsNotQueuedError(first!.jobs.length, { cause: new Error('SQS refused a batch') });
  }
  async requestDispatch(runId: string, request?: DispatchRequest): Promise<void> {
    return this.w.queue.requestDispatch(runId, request);
  }
}

const leads = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) => ({ phone: phoneFor(from + i), name: `Lead ${from + i}` }));

function callsPerNumber(w: World): number[] {
  const per = new Map<string, number>();
  for (const call of w.telephony.calls.values()) per.set(call.to, (per.get(call.to) ?? 0) + 1);
  return [...per.values()];
}

function deps(w: World, queue: WorkQueue) {
  let n = 0;
  return {
    store: w.store,
    queue,
    clock: w.clock,
    limits: { defaultConcurrency: 3, maxConcurrency: 10, maxLeads: 1000 },
    policy: { allowedFrom: [], twimlUrlPrefixes: [], maxTwimlBytes: 0 },
    newRunId: () => `run-${++n}`,
  };
}

describe('a create whose leads are queued only in part', () => {
  it('answers 503 naming the run and what was queued; the same request and key finish it, nobody called twice', async () => {
    const w = world();
    const queue = new HalfFailingQueue(w);
    const d = deps(w, queue);
    const body = { leads: leads(0, 200), concurrency: 3 };

    const error = await createRun(d, body, { idempotencyKey: 'create-1' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QueueingIncompleteError);
    expect(error).toMatchObject({ runId: 'run-1', queuedLeads: 90, leads: 200, retryable: true });
    const res = toErrorResponse(error, quietLog);
    expect(res.statusCode).toBe(503);
    expect(res.headers).toMatchObject({ 'retry-after': '1' });
    expect(JSON.parse(res.body).error).toMatchObject({
      code: 'queueing_incomplete',
      run_id: 'run-1',
      queued_leads: 90,
      leads: 200,
      retryable: true,
    });

    // What was queued is dialed; the run cannot complete without the rest.
    await drain(w);
    expect(runStatus((await w.store.getRun('run-1'))!)).toBe('running');
    expect(w.telephony.calls.size).toBe(90);

    queue.failing = false;
    const view = await createRun(d, body, { idempotencyKey: 'create-1' });
    expect(view.run_id).toBe('run-1');
    await drain(w);
    expect(runStatus((await w.store.getRun('run-1'))!)).toBe('completed');
    expect(w.telephony.calls.size).toBe(200);
    expect(callsPerNumber(w).every((n) => n === 1)).toBe(true);
  });

  it('without a key, says the run cannot be finished by a retry', async () => {
    const w = world();
    const error = await createRun(deps(w, new HalfFailingQueue(w)), { leads: leads(0, 100) }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ runId: 'run-1', queuedLeads: 90, leads: 100, retryable: false });
    expect(JSON.parse(toErrorResponse(error, quietLog).body).error.message).toMatch(/Idempotency-Key/);
  });
});

describe('appends with Idempotency-Key', () => {
  it('a half-queued append is finished by its retry, with the same job ids; a repeat changes nothing', async () => {
    const w = world();
    const queue = new HalfFailingQueue(w);
    queue.failing = false;
    const d = deps(w, queue);
    await createRun(d, { leads: leads(0, 5), concurrency: 2 });
    queue.failing = true;
    const more = { leads: leads(5, 150) };

    const error = await appendLeads(d, 'run-1', more, { idempotencyKey: 'append-1' }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ runId: 'run-1', queuedLeads: 90, leads: 150, retryable: true });
    await drain(w);
    expect(runStatus((await w.store.getRun('run-1'))!)).toBe('running');

    queue.failing = false;
    const retried = await appendLeads(d, 'run-1', more, { idempotencyKey: 'append-1' });
    expect(retried).toMatchObject({ appended: 150, first_job_id: '000005' });
    await drain(w);
    const run = (await w.store.getRun('run-1'))!;
    expect(runStatus(run)).toBe('completed');
    expect(run.totalLeads).toBe(155);
    expect(w.telephony.calls.size).toBe(155);
    expect(callsPerNumber(w).every((n) => n === 1)).toBe(true);

    // The same key again: the same answer, no new leads, no new calls.
    const again = await appendLeads(d, 'run-1', more, { idempotencyKey: 'append-1' });
    expect(again.first_job_id).toBe('000005');
    await drain(w);
    expect((await w.store.getRun('run-1'))!.totalLeads).toBe(155);
    expect(w.telephony.calls.size).toBe(155);
    // The same key with other leads is a client bug.
    await expect(
      appendLeads(d, 'run-1', { leads: leads(400, 1) }, { idempotencyKey: 'append-1' }),
    ).rejects.toMatchObject({ name: 'IdempotencyKeyReusedError' });
  });
});
