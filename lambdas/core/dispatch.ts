// (core) The dispatcher: ingest lead chunks, then fill a run's free slots.
// A slot is taken before the call is placed (acquire → calls.create → save CallSid), so the cap
// holds whatever Twilio does next; see DESIGN.md, invariants 1–3.

import { buildCallbackUrl } from './callback-url.ts';
import { isValidTimeZone, nextOpening } from './calling-window.ts';
import { LEAD_TIME_ZONE, maskPhone } from './leads.ts';
import type { NewJob, Run } from './model.ts';
import type {
  AccountLimits,
  AcquireResult,
  CallControl,
  CallRequest,
  Clock,
  Log,
  QueuedJob,
  RunStore,
  Telephony,
  WorkMessage,
  WorkQueue,
} from './ports.ts';
import type { RunOptions } from './run-options.ts';
import type { TwilioCallStatus } from './states.ts';
import { armWake, refillAfterRelease } from './wake.ts';

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
  /** Account-wide limits across runs (ACCOUNT_MAX_CONCURRENT_CALLS, ACCOUNT_CALLS_PER_SECOND). */
  account?: Omit<AccountLimits, 'nowMs'>;
  /** Ends calls at the provider: cancel needs it. */
  callControl?: CallControl;
  /** In-process wait while the account's pace allows no create; injectable for tests. */
  sleep?: (ms: number) => Promise<void>;
  /** Options of runs read lately: with them a refill's hinted job is taken before the run is read. */
  recentOptions?: RecentRunOptions;
}

/**
 * The options of the runs a dispatcher has read lately. A run's options never change once it is
 * created, so a warm dispatcher may place a call with the options it read earlier; everything that
 * does change (control, free slots) is checked by the acquire transaction itself.
 */
export class RecentRunOptions {
  private readonly byRun = new Map<string, RunOptions>();
  constructor(private readonly capacity = 1_000) {}

  get(runId: string): RunOptions | undefined {
    return this.byRun.get(runId);
  }

  remember(run: Run): void {
    if (this.byRun.has(run.runId)) return;
    if (this.byRun.size >= this.capacity) this.byRun.delete(this.byRun.keys().next().value!);
    this.byRun.set(run.runId, run.options);
  }
}

/** Longest one invocation waits in-process for the account's pace; then it re-arms itself via SQS. */
const MAX_PACING_WAIT_MS = 5_000;
/** A canceled run's queued leads marked canceled per invocation; a long list goes on in the next. */
const CANCEL_PER_INVOCATION = 990;
/** Candidates read per round once a round found only leads outside their calling window. */
const DEFER_BATCH = 50;

/** Rounds of "look for queued jobs, take slots" in one invocation; each round is bounded by the cap. */
const MAX_ROUNDS = 10;
/** Candidates read before the run is known: a refill frees one slot, plus the spares. */
const REFILL_CANDIDATES = 3;
/** Extra candidates per round, so that a few jobs taken by a racing dispatcher do not end the round. */
const SPARE_CANDIDATES = 2;

export async function handleWorkMessage(deps: DispatchDeps, message: WorkMessage): Promise<FillResult> {
  if (message.type === 'ingest') {
    const now = deps.clock.now();
    const at = now.toISOString();
    const jobs = await placeInWindow(deps, message.runId, message.jobs, now.getTime());
    const result = await deps.store.ingestChunk(message.runId, message.chunk, jobs, at);
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
  return fillSlots(deps, message.runId, message.next);
}

export interface FillResult {
  /** Calls Twilio accepted. */
  placed: number;
}

/**
 * Fills the run's free slots. `hint`: the run's next queued jobs as the releaser of a slot saw them.
 * With the run's options already known, the refill takes the one slot its release freed with the
 * first of them that is still queued, reading nothing (a refill is then one transaction and the
 * create); a slot freed some other way has a dispatch of its own. Otherwise, or when the hint finds
 * no slot, the run and its queue are read first, together, and every free slot is filled.
 */
export async function fillSlots(deps: DispatchDeps, runId: string, hint?: QueuedJob[]): Promise<FillResult> {
  const calls: Promise<boolean>[] = [];
  let stoppedBy: { error: unknown } | undefined;
  const pacing = { waitedMs: 0 };
  const known = hint && hint.length > 0 ? deps.recentOptions?.get(runId) : undefined;
  // A calling window needs each lead checked against it first: that run takes the usual path.
  const fast = known !== undefined && known.window === undefined;
  // The usual refill (one slot just freed) is two reads and a transaction; the two reads go
  // together, the candidates read for a refill's one free slot plus spares.
  let prefetched: Promise<QueuedJob[]> | undefined;
  if (!fast) {
    prefetched = deps.store.nextQueuedJobs(runId, REFILL_CANDIDATES, deps.clock.now().getTime());
    prefetched.catch(() => undefined); // awaited below, or not needed
  }
  try {
    let maxRounds = MAX_ROUNDS;
    if (fast) {
      for (const job of hint!) {
        const result = await takeSlot(deps, runId, job, pacing);
        if (result === 'acquired') {
          calls.push(observed(placeCall(deps, runId, known, job, job.attempt + 1)));
          maxRounds = 0; // the freed slot is filled; other free slots have dispatches of their own
        }
        if (result === 'stop') maxRounds = 0; // paced out or the account is full: the run will be woken
        // Taken by another dispatcher: the next one. No slot (full, paused, canceled): the read says.
        if (result !== 'job-taken') break;
      }
    }
    let want = 0;
    rounds: for (let round = 0; round < maxRounds; round++) {
      const run = await deps.store.getRun(runId);
      if (!run) break;
      deps.recentOptions?.remember(run);
      if (run.control === 'canceled') {
        await carryOutCancel(deps, run);
        break;
      }
      if (run.control !== 'running') break;
      const free = run.concurrency - run.active;
      if (free <= 0) break;
      const now = deps.clock.now().getTime();
      want = Math.max(want, free + SPARE_CANDIDATES);
      const candidates =
        prefetched && want <= REFILL_CANDIDATES
          ? await prefetched
          : await deps.store.nextQueuedJobs(runId, want, now);
      prefetched = undefined;
      if (candidates.length === 0) {
        // Leads remain but none is due (retries waiting, windows closed): sleep until the first is.
        if (run.queued > 0) {
          const earliest = await deps.store.earliestQueued(runId);
          if (earliest !== undefined) await armWake(deps, runId, earliest, now);
        }
        break;
      }

      let acquired = 0;
      let deferred = 0;
      for (const job of candidates) {
        const window = run.options.window;
        if (window) {
          const opening = nextOpening(window, now, job.timeZone ?? window.timeZone);
          if (opening > now) {
            // Outside its calling window: back in the queue at the opening, holding no slot.
            await deps.store.deferJob(runId, job, opening);
            await armWake(deps, runId, opening, now);
            deferred += 1;
            continue;
          }
        }
        const result = await takeSlot(deps, runId, job, pacing);
        if (result === 'stop' || result === 'no-slot') break rounds;
        if (result === 'acquired') {
          acquired += 1;
          // Placed without waiting, so that the next slot is taken while this call is being created.
          calls.push(observed(placeCall(deps, runId, run.options, job, job.attempt + 1)));
          // Every slot that was free is taken: another acquire could only be refused (and a refused
          // transaction is billed like a write). A slot freed meanwhile sends its own dispatch.
          if (acquired >= free) break rounds;
        }
      }
      // A round of leads all outside their window: read more at once, the window is closed for many.
      if (deferred === candidates.length) want = DEFER_BATCH;
      else if (acquired === 0 && candidates.length < want) break; // taken by others, and no more
      if (round === maxRounds - 1 && deferred > 0) await deps.queue.requestDispatch(runId); // go on later
    }
  } catch (error) {
    stoppedBy = { error };
  }
  return settle(calls, stoppedBy);
}

/** A call being placed while the next slot is taken: awaited in `settle`, never an unhandled rejection. */
function observed(placing: Promise<boolean>): Promise<boolean> {
  placing.catch(() => undefined);
  return placing;
}

/**
 * Even when an invocation fails half-way, the calls it started are seen through (or fail) before it
 * returns: none is left running unobserved.
 */
async function settle(
  calls: Promise<boolean>[],
  stoppedBy: { error: unknown } | undefined,
): Promise<FillResult> {
  const settled = await Promise.allSettled(calls);
  if (stoppedBy) throw stoppedBy.error;
  const failure = settled.find((result) => result.status === 'rejected');
  if (failure) throw failure.reason;
  return { placed: settled.filter((result) => result.status === 'fulfilled' && result.value).length };
}

/**
 * One acquire, with the account's limits: a paced-out acquire waits 1/cps in-process (a few times at
 * most, then the run re-arms itself via SQS instead of spinning); a full account registers the run
 * to be woken when any account slot frees, then tries once more, so a slot freed in between is not
 * missed. `stop`: stop filling this run now (it will be woken).
 */
async function takeSlot(
  deps: DispatchDeps,
  runId: string,
  job: QueuedJob,
  pacing: { waitedMs: number },
): Promise<Exclude<AcquireResult, 'paced' | 'account-full'> | 'stop'> {
  const acquire = () => {
    const now = deps.clock.now();
    return deps.store.acquireSlot(
      runId,
      job,
      now.toISOString(),
      deps.account ? { ...deps.account, nowMs: now.getTime() } : undefined,
    );
  };
  let result = await acquire();
  let waitedForAccount = false;
  for (;;) {
    if (result === 'paced') {
      const waitMs = 1000 / (deps.account?.callsPerSecond ?? 1);
      if (pacing.waitedMs + waitMs > MAX_PACING_WAIT_MS) {
        await deps.queue.requestDispatch(runId, { delaySeconds: Math.ceil(waitMs / 1000) });
        return 'stop';
      }
      pacing.waitedMs += waitMs;
      await (deps.sleep ?? sleep)(waitMs);
      result = await acquire();
    } else if (result === 'account-full') {
      if (waitedForAccount) return 'stop';
      waitedForAccount = true;
      await deps.store.addWaitingRun(runId);
      result = await acquire();
    } else {
      return result;
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A fresh chunk of a run with a calling window: each lead gets its time zone (its own, else the
 * run's) and, when the window is closed for it now, its first dial waits for the opening.
 */
async function placeInWindow(
  deps: DispatchDeps,
  runId: string,
  jobs: NewJob[],
  now: number,
): Promise<NewJob[]> {
  const window = (await deps.store.getRun(runId))?.options.window;
  if (!window) return jobs;
  let earliest = Number.POSITIVE_INFINITY;
  const placed = jobs.map((job) => {
    const own = job.attributes[LEAD_TIME_ZONE];
    const timeZone = typeof own === 'string' && isValidTimeZone(own) ? own : undefined;
    const opening = nextOpening(window, now, timeZone ?? window.timeZone);
    if (opening > now) earliest = Math.min(earliest, opening);
    return { ...job, ...(timeZone ? { timeZone } : {}), ...(opening > now ? { notBefore: opening } : {}) };
  });
  if (Number.isFinite(earliest)) await armWake(deps, runId, earliest, now);
  return placed;
}

/**
 * A canceled run: its Twilio-queued and ringing calls are canceled (and, with hangup, calls in
 * progress hung up); their slots are freed by the final callbacks that follow, never here. Its queued
 * leads are marked canceled in batches; a long list goes on in the next invocation.
 */
async function carryOutCancel(deps: DispatchDeps, run: Run): Promise<void> {
  const { runId } = run;
  await Promise.all(
    Object.entries(run.holders).map(async ([jobId, holder]) => {
      if (holder.state === 'calling' && !run.hangup) return;
      const job = await deps.store.getJob(runId, jobId);
      // No Sid yet: the create is in flight, and placeCall cancels the call once it exists.
      if (!job?.callSid || job.attempt !== holder.attempt) return;
      await endCall(deps, run.hangup === true, job.callSid, holder.state, { runId, jobId });
    }),
  );
  const at = deps.clock.now().toISOString();
  const canceled = await deps.store.cancelQueuedJobs(runId, CANCEL_PER_INVOCATION, at);
  if (canceled > 0) deps.log.info('queued leads canceled', { runId, canceled });
  const after = await deps.store.getRun(runId);
  // More than one invocation's worth, or leads the index does not list yet: go on shortly.
  if (after && after.queued > 0)
    await deps.queue.requestDispatch(runId, { delaySeconds: canceled > 0 ? 0 : 1 });
}

/** Cancels a call not yet answered; hangs one up when the cancel asked for it. */
async function endCall(
  deps: DispatchDeps,
  hangup: boolean,
  callSid: string,
  state: 'dialing' | 'calling',
  context: { runId: string; jobId: string },
): Promise<void> {
  const control = deps.callControl;
  if (!control) {
    deps.log.warn('cannot end calls: no call control wired', context);
    return;
  }
  if (state === 'dialing') {
    const result = await control.cancelCall(callSid);
    deps.log.info('call canceled', { ...context, callSid, result: result.kind });
    // Answered meanwhile: Twilio refuses the cancel; hang up only if asked to.
    if (result.kind !== 'invalid-state' || !hangup) return;
  }
  const result = await control.hangUpCall(callSid);
  deps.log.info('call hung up', { ...context, callSid, result: result.kind });
}

/**
 * Twilio errors that say the run's own setup is wrong, not the lead: the From number is not the
 * account's or not verified (21210, 21212, 21606), or the call content (Url/Twiml) is missing or
 * invalid (21205, 21213).
 */
export const CONFIGURATION_ERRORS = new Set([21205, 21210, 21212, 21213, 21606]);

/** Twilio 429 backoff: exponential in the job's attempts, capped at a minute, with full jitter. */
export function throttleBackoffMs(attempt: number, random: () => number): number {
  const ceiling = Math.min(60_000, 1000 * 2 ** Math.max(0, attempt - 1));
  return Math.max(250, Math.floor(random() * ceiling));
}

/** The final statuses after which this attempt's lead is called again (see `retryTime`). */
function requeueOutcomes(options: RunOptions, attempt: number): TwilioCallStatus[] {
  const retry = options.retry;
  return retry && attempt < retry.maxAttempts ? (retry.on as TwilioCallStatus[]) : [];
}

/** Places one call for a job whose slot is held; true when Twilio accepted it. */
async function placeCall(
  deps: DispatchDeps,
  runId: string,
  options: RunOptions,
  job: QueuedJob,
  attempt: number,
): Promise<boolean> {
  const { calls } = deps;
  const context = { runId, jobId: job.jobId, attempt, to: maskPhone(job.phone) };
  const result = await deps.telephony.createCall({
    to: job.phone,
    from: options.from ?? calls.from,
    statusCallbackUrl: buildCallbackUrl(calls.webhookUrl, {
      runId,
      jobId: job.jobId,
      attempt,
      // A slot that also holds an account slot is released the long way (the account item with it).
      ...(deps.account === undefined ? { requeueOn: requeueOutcomes(options, attempt) } : {}),
    }),
    ringTimeoutSeconds: calls.ringTimeoutSeconds,
    timeLimitSeconds: calls.timeLimitSeconds,
    content: options.twimlUrl
      ? { twimlUrl: options.twimlUrl }
      : options.twiml
        ? { twiml: options.twiml }
        : calls.content,
  });
  const at = deps.clock.now().toISOString();

  switch (result.kind) {
    case 'created':
      deps.log.info('call placed', { ...context, callSid: result.callSid });
      await deps.store.recordCallSid(runId, job.jobId, attempt, result.callSid);
      // A cancel that came while this call was being created could not see its Sid: end it here.
      if ((await deps.store.getRun(runId))?.control === 'canceled') {
        await endCall(deps, true, result.callSid, 'dialing', { runId, jobId: job.jobId });
      }
      return true;
    case 'rejected':
      if (result.code !== undefined && CONFIGURATION_ERRORS.has(result.code)) {
        // Not this lead's fault: the run's caller id or call content is wrong, and every lead would
        // fail the same way. The lead goes back to the queue and the run is paused for a person.
        deps.log.error('run paused: telephony refused its configuration', {
          ...context,
          code: result.code,
          reason: result.message,
        });
        // Paused first, so that the slot freed next is not handed to another lead that would fail alike.
        await deps.store.setControl(runId, { to: 'paused', from: ['running'], at });
        await deps.store.releaseSlot({ runId, jobId: job.jobId, attempt, from: 'dialing', to: 'queued', at });
        await refillAfterRelease(deps, runId, {
          dispatchRun: false,
          accountSlot: deps.account !== undefined,
        });
        return false;
      }
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
      await refillAfterRelease(deps, runId, {
        dispatchRun: true,
        accountSlot: deps.account !== undefined,
        releasedAt: at,
      });
      return false;
    case 'throttled': {
      // Twilio never processed it: the job goes back to the queue, not due before an exponential,
      // fully jittered backoff (1 s, 2 s, 4 s … up to a minute, by the job's attempts), and its slot
      // is freed for leads that are due. Waiting holds no slot.
      const nowMs = deps.clock.now().getTime();
      const backoffMs = throttleBackoffMs(attempt, deps.random ?? Math.random);
      deps.log.warn('call throttled by telephony', { ...context, retryInMs: backoffMs });
      await deps.store.releaseSlot({
        runId,
        jobId: job.jobId,
        attempt,
        from: 'dialing',
        to: 'queued',
        notBefore: nowMs + backoffMs,
        at,
      });
      // A 429 says "slow down": the run is not re-dispatched now, only woken when the job is due
      // (or by the next call that ends). Runs waiting for an account slot may go.
      await refillAfterRelease(deps, runId, { dispatchRun: false, accountSlot: deps.account !== undefined });
      await armWake(deps, runId, nowMs + backoffMs, nowMs);
      return false;
    }
    case 'unknown':
      // The call may exist: keep the slot. Its callback or the reconciler settles it; re-sending
      // could call the lead twice.
      deps.log.error('call outcome unknown; slot kept until settled', { ...context, reason: result.reason });
      return false;
  }
}
