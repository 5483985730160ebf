// (core) A Twilio status callback, already authenticated: move the job forward and, on a final
// status, release its slot and ask for the next call. Duplicates and late or out-of-order callbacks
// find the holder gone or already further on, and change nothing.

import { countEndedAttempt } from './breaker.ts';
import type { CallbackIds } from './callback-url.ts';
import { carriedSlot, carriedSlotOf } from './carried-slot.ts';
import { isMachine, outcomeOf } from './machine-detection.ts';
import { type Holder, holderOf, type RunRecord } from './model.ts';
import { nextJobsFor } from './next-jobs.ts';
import type {
  BreakerStore,
  Clock,
  Log,
  QueuedJob,
  QueueStore,
  Release,
  ReleaseResult,
  RunControlStore,
  RunReader,
  SlotStore,
  WakeStore,
  WorkQueue,
} from './ports.ts';
import { advance, isFinal, jobStateFor, type TwilioCallStatus } from './states.ts';
import { armWake, refillAfterRelease } from './wake.ts';

export interface StatusCallback extends CallbackIds {
  callSid: string;
  callStatus: TwilioCallStatus;
  errorCode?: number;
  /** Twilio's AnsweredBy, which a final callback carries once answering-machine detection has told. */
  answeredBy?: string;
}

export type CallbackEffect =
  /** The slot was released and a dispatch requested. */
  | 'released'
  /** dialing → calling. */
  | 'answered'
  /** Nothing to change: a duplicate, a late or reordered report, an unknown or settled job. */
  | 'unchanged';

export interface CallbackDeps {
  /** RunControlStore and BreakerStore: the failure breaker counts ended attempts and pauses the run. */
  store: RunReader & SlotStore & QueueStore & WakeStore & RunControlStore & BreakerStore;
  queue: WorkQueue;
  clock: Clock;
  log: Log;
}

/** Re-reads after a lost race with another writer on the same holder (another callback, the reconciler). */
const MAX_TRIES = 5;

export async function applyStatusCallback(
  deps: CallbackDeps,
  callback: StatusCallback,
): Promise<CallbackEffect> {
  const { runId, jobId, attempt } = callback;
  const proposed = jobStateFor(callback.callStatus);
  // queued/initiated/ringing: the job has been `dialing` since its slot was taken, so these can
  // change nothing; answering them without a read keeps the webhook cheap. (A CallSid lost to a crash
  // after calls.create is not needed: the final callback carries the job id in its URL.)
  if (proposed === 'dialing') return 'unchanged';

  // in-progress: the conditional write on the holder is the whole check, no read first. A duplicate,
  // one that comes after the final, or one of another attempt finds the holder gone or calling.
  if (!isFinal(proposed)) {
    // The Sid comes along: a create whose answer was lost never saved it, and the reconciler
    // matches a lost final callback by it.
    const at = deps.clock.now().toISOString();
    const result = await deps.store.markCalling(runId, jobId, attempt, at, callback.callSid);
    return result === 'applied' ? 'answered' : 'unchanged';
  }

  // A final status frees a slot: the run's next queued jobs are read alongside the release (and the
  // run, when it is read) and handed to the dispatcher with its message, which can then take the slot
  // without reading anything first.
  const nextJobs = nextJobsHint(deps, runId, jobId);

  // A final status the URL says does not requeue the lead: the slot is freed without reading the run
  // (the transaction's conditions are the only check it needs). A guess at the holder's state that
  // turns out wrong (an "answered" not applied yet), or a duplicate, goes the long way below. Runs
  // with answering-machine detection have no `requeue_on`: the outcome depends on the job's verdict.
  if (
    callback.requeueOn &&
    !callback.requeueOn.includes(callback.callStatus) &&
    !isMachine(callback.answeredBy)
  ) {
    const at = deps.clock.now().toISOString();
    const result = await deps.store.releaseSlot({
      runId,
      jobId,
      attempt,
      // Only a call that was answered completes; busy, no-answer, failed and canceled never were.
      from: callback.callStatus === 'completed' ? 'calling' : 'dialing',
      to: proposed,
      outcome: callback.callStatus,
      callSid: callback.callSid,
      ...(callback.errorCode === undefined ? {} : { errorCode: callback.errorCode }),
      ...(callback.answeredBy === undefined ? {} : { answeredBy: callback.answeredBy }),
      accountShard: callback.accountShard ?? null,
      ...(callback.slotShard === undefined ? {} : { slotShard: callback.slotShard }),
      // The slot goes to the refill (or the waiting run) it is handed to, off its counters: when the
      // URL names the run's counter, which the carry must say.
      carry: callback.slotShard !== undefined,
      at,
    });
    if (result === 'released') {
      deps.log.info('slot released', { runId, jobId, attempt, outcome: callback.callStatus });
      // Paused or canceled runs too: their dispatcher finds no slot to take and reads why.
      await refillAfterRelease(deps, runId, {
        dispatchRun: true,
        accountSlot: callback.accountShard !== undefined,
        accountShard: callback.accountShard,
        releasedAt: at,
        next: offeredOn(await nextJobs, callback.slotShard, callback.accountShard),
        ...(callback.slotShard === undefined
          ? {}
          : {
              carried: carriedSlot(runId, jobId, attempt, callback.accountShard, {
                counter: callback.slotShard,
                to: proposed,
                outcome: callback.callStatus,
              }),
            }),
      });
      return 'released';
    }
  }

  for (let attemptNo = 0; attemptNo < MAX_TRIES; attemptNo++) {
    // The job is its own holder: read consistently, it says whether this attempt still holds the slot.
    const [run, job] = await Promise.all([deps.store.getRunRecord(runId), deps.store.getJob(runId, jobId)]);
    const holder = job ? holderOf(job) : undefined;
    if (!run || !holder || holder.attempt !== attempt) {
      const carried = run && job?.attempt === attempt ? carriedSlotOf(runId, job) : undefined;
      // This attempt's release carried its slot, and nobody has taken it yet: the dispatch it sent may
      // be lost (this callback is Twilio's retry of one whose answer failed after the release). Sent
      // again, with the slot; a dispatch that finds it taken already fills as any other.
      if (carried?.runSlot)
        await refillAfterRelease(deps, runId, {
          dispatchRun: run!.control === 'running',
          accountSlot: false,
          next: offeredOn(await nextJobs, carried.runSlot?.counter, carried.shard),
          carried,
        });
      return 'unchanged';
    }

    // Final beats dialing and calling; a holder is never final, so this only refuses nonsense.
    if (advance(holder.state, proposed) === undefined) return 'unchanged';

    // The verdict: the callback's own (Twilio adds it once detection has told), else the one the
    // detection callback recorded on the job; whichever of the two callbacks came first.
    const answeredBy = callback.answeredBy ?? job?.answeredBy;
    const result = await releaseFinal(
      deps,
      run,
      jobId,
      holder,
      {
        status: callback.callStatus,
        callSid: callback.callSid,
        ...(callback.errorCode === undefined ? {} : { errorCode: callback.errorCode }),
        ...(answeredBy === undefined ? {} : { answeredBy }),
      },
      nextJobs,
    );
    if (result === 'released') return 'released';
  }
  deps.log.warn('callback gave up after repeated races', { runId, jobId, attempt });
  throw new Error('status callback lost too many races; Twilio will retry it');
}

/**
 * Frees a held slot whose call Twilio reports final — from a callback, or from the reconciler when
 * the callback never came. A retry goes back to the queue in the same transaction, with a not-before
 * time (waiting holds no slot); the callback URL names the attempt, so a late callback of this attempt
 * can never free the next attempt's slot. Then the run, and any run waiting for an account slot, is
 * asked to dial again. A completed call that a machine or fax answered (`answeredBy`) fails with
 * outcome `machine`.
 */
export async function releaseFinal(
  deps: CallbackDeps,
  run: RunRecord,
  jobId: string,
  holder: Holder,
  call: {
    status: TwilioCallStatus;
    callSid?: string;
    errorCode?: number;
    claimCall?: boolean;
    answeredBy?: string;
  },
  nextJobs?: Promise<QueuedJob[]>,
): Promise<ReleaseResult> {
  const { runId } = run;
  const { attempt } = holder;
  const status = jobStateFor(call.status);
  if (!isFinal(status)) throw new Error(`releaseFinal needs a final status, got ${call.status}`);
  const outcome = outcomeOf(call.status, call.answeredBy);
  const final = outcome === call.status ? status : 'failed';
  const at = deps.clock.now().toISOString();
  let retryAt = retryTime(run, attempt, outcome, deps.clock.now().getTime());
  // A retry that could only come after the run's expires_at: the lead ends `expired` now.
  const expired = retryAt !== undefined && isExpiredBy(run, retryAt);
  if (expired) retryAt = undefined;
  const to = expired ? 'failed' : retryAt === undefined ? final : 'queued';
  // A callback's final release hands its slot on without freeing it on its counters (CarriedSlot);
  // the reconciler's (no hint, a run's slots settled in a sweep) frees it there.
  const carried =
    nextJobs !== undefined && to !== 'queued'
      ? carriedSlot(runId, jobId, attempt, holder.accountShard, {
          counter: holder.slotShard ?? null,
          to,
          outcome: expired ? EXPIRED : outcome,
        })
      : undefined;
  const release: Release = {
    runId,
    jobId,
    attempt,
    from: holder.state,
    to,
    ...(retryAt === undefined ? {} : { notBefore: retryAt }),
    outcome: expired ? EXPIRED : outcome,
    ...(call.errorCode === undefined ? {} : { errorCode: call.errorCode }),
    ...(call.callSid === undefined ? {} : { callSid: call.callSid }),
    ...(call.claimCall ? { claimCall: true } : {}),
    ...(call.answeredBy === undefined ? {} : { answeredBy: call.answeredBy }),
    accountShard: holder.accountShard ?? null,
    slotShard: holder.slotShard ?? null,
    ...(carried ? { carry: true } : {}),
    at,
  };
  const result = await deps.store.releaseSlot(release);
  if (result === 'released') {
    deps.log.info('slot released', { runId, jobId, attempt, outcome, retryAt });
    // Counted before the refill: a run its breaker pauses does not hand the freed slot to another lead.
    // By Twilio's status: a machine's call is no failure of the line or the setup.
    await countEndedAttempt(deps, run, call.status);
    // A paused or canceled run dials nothing: resume sends its own dispatch.
    await refillAfterRelease(deps, runId, {
      dispatchRun: run.control === 'running',
      accountSlot: holder.accountShard !== undefined,
      accountShard: holder.accountShard,
      releasedAt: at,
      ...(nextJobs ? { next: offeredOn(await nextJobs, release.slotShard, holder.accountShard) } : {}),
      ...(carried ? { carried } : {}),
    });
    if (retryAt !== undefined) await armWake(deps, runId, retryAt, deps.clock.now().getTime());
  }
  return result;
}

/**
 * The hinted jobs, each offered the slot counter (and the account shard) the release just freed a
 * slot on: the dispatcher tries those first instead of looking for a counter or a shard with room.
 */
function offeredOn(
  jobs: QueuedJob[],
  slotShard: number | null | undefined,
  accountShard?: number,
): QueuedJob[] {
  return jobs.map((job) => ({
    ...job,
    ...(slotShard === undefined ? {} : { slotShard }),
    ...(accountShard === undefined ? {} : { accountShard }),
  }));
}

/** The outcome of a lead that was not final when its run's `expires_at` came. */
export const EXPIRED = 'expired';

/** Whether the run's `expires_at` (if any) has come by `atMs`: no call may start then. */
export function isExpiredBy(run: Pick<RunRecord, 'options'>, atMs: number): boolean {
  const expiresAt = run.options.expiresAt;
  return expiresAt !== undefined && atMs >= Date.parse(expiresAt);
}

/**
 * The run's next due jobs (from the released job's place among them), or none if the read fails: the
 * hint is an optimisation, never needed.
 */
function nextJobsHint(deps: CallbackDeps, runId: string, releasedJobId: string): Promise<QueuedJob[]> {
  return nextJobsFor(deps.store, runId, deps.clock.now().getTime(), releasedJobId).catch((error: unknown) => {
    deps.log.warn('reading the next queued jobs failed; dispatch without a hint', { runId, error });
    return [];
  });
}

/** When the lead is to be called again after this attempt's `outcome`; undefined for no retry. */
export function retryTime(
  run: RunRecord,
  attempt: number,
  outcome: string,
  nowMs: number,
): number | undefined {
  const retry = run.options.retry;
  if (!retry || run.control === 'canceled') return undefined;
  if (!(retry.on as readonly string[]).includes(outcome) || attempt >= retry.maxAttempts) return undefined;
  // A closed calling window is the dispatcher's to apply when the retry comes due.
  return nowMs + retry.delaySeconds * 1000;
}
