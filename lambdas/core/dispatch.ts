// (core) The dispatcher: ingest lead chunks, then fill a run's free slots.
// A slot is taken before the call is placed (acquire → calls.create → save CallSid), so the cap
// holds whatever Twilio does next; see DESIGN.md, invariants 1–3.

import { buildCallbackUrl } from './callback-url.ts';
import { maskPhone } from './leads.ts';
import type {
  CallRequest,
  Clock,
  Log,
  QueuedJob,
  RunStore,
  Telephony,
  WorkMessage,
  WorkQueue,
} from './ports.ts';

export interface CallSettings {
  from: string;
  webhookUrl: string;
  ringTimeoutSeconds: number;
  timeLimitSeconds: number;
  content: CallRequest['content'];
}

export interface DispatchDeps {
  store: RunStore;
  queue: WorkQueue;
  telephony: Telephony;
  clock: Clock;
  log: Log;
  calls: CallSettings;
  /** Random in [0, 1): jitter for retry delays; injectable so tests are replayable. */
  random?: () => number;
}

/** Rounds of "look for queued jobs, take slots" in one invocation; each round is bounded by the cap. */
const MAX_ROUNDS = 10;
/** Extra candidates per round, so that a few jobs taken by a racing dispatcher do not end the round. */
const SPARE_CANDIDATES = 2;

export async function handleWorkMessage(deps: DispatchDeps, message: WorkMessage): Promise<FillResult> {
  if (message.type === 'ingest') {
    const at = deps.clock.now().toISOString();
    const result = await deps.store.ingestChunk(message.runId, message.chunk, message.jobs, at);
    deps.log.info('lead chunk ingested', {
      runId: message.runId,
      chunk: message.chunk,
      leads: message.jobs.length,
      result,
    });
    // The chunk is safe now. Filling slots is best-effort here: failing the record for it would only
    // put the chunk through ingestion again and, after repeated failures, park its leads in the DLQ.
    try {
      return await fillSlots(deps, message.runId);
    } catch (error) {
      deps.log.warn('filling slots after ingest failed; dispatch requested instead', {
        runId: message.runId,
        error,
      });
      // If even this fails the reconciler re-arms the run on its next pass.
      await deps.queue.requestDispatch(message.runId).catch(() => undefined);
      return { placed: 0 };
    }
  }
  return fillSlots(deps, message.runId);
}

export interface FillResult {
  /** Calls Twilio accepted. */
  placed: number;
}

export async function fillSlots(deps: DispatchDeps, runId: string): Promise<FillResult> {
  const calls: Promise<boolean>[] = [];
  let stoppedBy: { error: unknown } | undefined;
  try {
    rounds: for (let round = 0; round < MAX_ROUNDS; round++) {
      const run = await deps.store.getRun(runId);
      if (!run || run.control !== 'running') break;
      const free = run.concurrency - run.active;
      if (free <= 0) break;
      const candidates = await deps.store.nextQueuedJobs(runId, free + SPARE_CANDIDATES);
      if (candidates.length === 0) break;

      let acquired = 0;
      for (const job of candidates) {
        const result = await deps.store.acquireSlot(runId, job, deps.clock.now().toISOString());
        if (result === 'no-slot') break rounds;
        if (result === 'acquired') {
          acquired += 1;
          // Placed without waiting, so that the next slot is taken while this call is being created.
          const placing = placeCall(deps, runId, job, job.attempt + 1);
          placing.catch(() => undefined); // observed below; this only keeps it from counting as unhandled
          calls.push(placing);
        }
      }
      // Every candidate was taken by someone else and there are no more: nothing left to dial.
      if (acquired === 0 && candidates.length < free + SPARE_CANDIDATES) break;
    }
  } catch (error) {
    stoppedBy = { error };
  }
  // Even when this invocation fails half-way, the calls it started are seen through (or fail)
  // before it returns: none is left running unobserved.
  const settled = await Promise.allSettled(calls);
  if (stoppedBy) throw stoppedBy.error;
  const failure = settled.find((result) => result.status === 'rejected');
  if (failure) throw failure.reason;
  return { placed: settled.filter((result) => result.status === 'fulfilled' && result.value).length };
}

/** Places one call for a job whose slot is held; true when Twilio accepted it. */
async function placeCall(
  deps: DispatchDeps,
  runId: string,
  job: QueuedJob,
  attempt: number,
): Promise<boolean> {
  const { calls } = deps;
  const context = { runId, jobId: job.jobId, attempt, to: maskPhone(job.phone) };
  const result = await deps.telephony.createCall({
    to: job.phone,
    from: calls.from,
    statusCallbackUrl: buildCallbackUrl(calls.webhookUrl, { runId, jobId: job.jobId, attempt }),
    ringTimeoutSeconds: calls.ringTimeoutSeconds,
    timeLimitSeconds: calls.timeLimitSeconds,
    content: calls.content,
  });
  const at = deps.clock.now().toISOString();

  switch (result.kind) {
    case 'created':
      deps.log.info('call placed', { ...context, callSid: result.callSid });
      await deps.store.recordCallSid(runId, job.jobId, attempt, result.callSid);
      return true;
    case 'rejected':
      // Permanent: the number cannot be called. Fail the job and free its slot in one transaction.
      deps.log.warn('call rejected by telephony', { ...context, code: result.code, reason: result.message });
      await deps.store.releaseSlot({
        runId,
        jobId: job.jobId,
        attempt,
        from: 'dialing',
        to: 'failed',
        outcome: 'rejected',
        ...(result.code === undefined ? {} : { errorCode: result.code }),
        at,
      });
      await deps.queue.requestDispatch(runId);
      return false;
    case 'throttled': {
      // Twilio never processed it: the job goes back to the queue, its slot is freed, and the
      // run is looked at again after a jittered pause rather than hammering the provider.
      const delaySeconds = 1 + Math.floor((deps.random ?? Math.random)() * 5);
      deps.log.warn('call throttled by telephony', { ...context, retryInSeconds: delaySeconds });
      await deps.store.releaseSlot({ runId, jobId: job.jobId, attempt, from: 'dialing', to: 'queued', at });
      await deps.queue.requestDispatch(runId, delaySeconds);
      return false;
    }
    case 'unknown':
      // The call may exist: keep the slot. Its callback or the reconciler settles it; re-sending
      // could call the lead twice.
      deps.log.error('call outcome unknown; slot kept until settled', { ...context, reason: result.reason });
      return false;
  }
}
