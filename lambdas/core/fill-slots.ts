// (core) The fill loop: take a run's free slots and place a call on each. A slot is taken before the
// call is placed (acquire → calls.create → save CallSid), so the cap holds whatever Twilio does next
// (docs/DESIGN.md, invariants 1–3).

import { isExpiredBy } from './callbacks.ts';
import { nextOpening } from './calling-window.ts';
import { type CancelRunDeps, carryOutCancel } from './cancel-run.ts';
import { nextJobsFor } from './next-jobs.ts';
import { type PlaceCallDeps, placeCall } from './place-call.ts';
import type {
  AcquireResult,
  CarriedSlot,
  FillLease,
  FrequencyCap,
  QueuedJob,
  QueueStore,
  RecipientChecks,
} from './ports.ts';
import type { RecentRunOptions } from './recent-run-options.ts';
import { frequencyWindow } from './recipients.ts';
import type { RunOptions } from './run-options.ts';
import { armWake, passOnAccountSlot } from './wake.ts';

export type FillSlotsDeps = PlaceCallDeps &
  CancelRunDeps & {
    store: QueueStore;
    /** In-process wait while the account's pace allows no create; injectable for tests. */
    sleep?: (ms: number) => Promise<void>;
    /** Options of runs read lately: with them a refill's hinted job is taken before the run is read. */
    recentOptions?: RecentRunOptions;
    /**
     * The deployment's per-recipient checks, made in every acquire transaction: the suppression list
     * (SUPPRESSION_CHECK) and the frequency cap (RECIPIENT_MAX_CALLS per RECIPIENT_WINDOW_HOURS).
     */
    recipients?: { suppression: boolean; frequency?: FrequencyCap | undefined };
    /** One filler per run at a time; without it every dispatch fills on its own. */
    fillLease?: FillLease;
  };

/** The outcomes of leads ended uncalled by a recipient check. */
export const SUPPRESSED = 'suppressed';
export const FREQUENCY_CAPPED = 'frequency_capped';

export interface FillResult {
  /** Calls Twilio accepted. */
  placed: number;
}

/** Longest one invocation waits in-process for the account's pace; then it re-arms itself via SQS. */
const MAX_PACING_WAIT_MS = 5_000;
/** Candidates read per round once a round found only leads outside their calling window. */
const DEFER_BATCH = 50;
/** Rounds of "look for queued jobs, take slots" in one invocation; each round is bounded by the cap. */
const MAX_ROUNDS = 10;
/** Candidates read before the run is known: a refill frees one slot, plus the spares. */
const REFILL_CANDIDATES = 3;
/** Extra candidates per round, so that a few jobs taken by a racing dispatcher do not end the round. */
const SPARE_CANDIDATES = 2;

/**
 * Fills the run's free slots. `hint`: the run's next queued jobs as the releaser of a slot saw them.
 * With the run's options already known, the refill takes the one slot its release freed with the
 * first of them that is still queued, reading nothing (a refill is then one transaction and the
 * create); a slot freed some other way has a dispatch of its own. Otherwise, or when the hint finds
 * no slot, the run and its queue are read first, together, and every free slot is filled.
 * `handedShard`: an account slot handed to this run, which was waiting for one (wake.ts); its next
 * jobs are offered the shard it was freed on, and a dispatch that can use it for none passes it on.
 * `carried`: the freed slot is still on its released job (CarriedSlot): the hinted jobs take it from
 * there; a fill that does not passes it on or drops it.
 */
export async function fillSlots(
  deps: FillSlotsDeps,
  runId: string,
  hint?: QueuedJob[],
  filler?: string,
  handedShard?: number | null,
  carried?: CarriedSlot,
): Promise<FillResult> {
  const calls: Promise<boolean>[] = [];
  let stoppedBy: { error: unknown } | undefined;
  const pacing: AccountWaits = { waitedMs: 0, waitingForAccount: false };
  const handed = handedShard !== undefined && !(hint && hint.length > 0);
  const known = (hint && hint.length > 0) || handed ? deps.recentOptions?.get(runId) : undefined;
  // A calling window needs each lead checked against it first: that run takes the usual path.
  const fast = known !== undefined && known.window === undefined;
  if (fast && handed) {
    // The run's own next jobs, offered the handed slot's shard, taken as a refill's hint is. A run is
    // handed slots by several releases at once: each dispatch (its message) starts from its own place.
    const next = await nextJobsFor(deps.store, runId, deps.clock.now().getTime(), filler ?? '');
    hint = next.map((job) => (handedShard === null ? job : { ...job, accountShard: handedShard }));
  }
  // Until an acquire takes it (or finds it gone, and takes a slot on a shard instead): this fill's.
  // A fill that reads first drops it below, before it takes its slots on the shards.
  let carry = carried;
  if (carry && fast) hint = hint!.map((job) => ({ ...job, carried: carry }));
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
        if (result === 'suppressed' || result === 'frequency-capped') {
          await refuseRecipient(deps, runId, known, job, result);
          continue; // the freed slot is still free: the next hinted job
        }
        if (result === 'acquired') {
          carry = undefined;
          calls.push(observed(placeCall(deps, runId, known, job, job.attempt + 1)));
          // The freed slot is filled; other free slots have dispatches of their own. So has the
          // account's room while other runs wait: each slot freed then is handed to one of them, and
          // a run that reached for more than its own would take slots from under those runs'
          // dispatches (a refused or cancelled transaction each). A run handed a slot that has more
          // to dial then waits again instead: the next slot freed anywhere comes to it in turn. With
          // no other run waiting, the account's room is nobody's: it fills in full (calls of another
          // run may have ended with nobody to hand their slots to, and nobody else would tell it).
          maxRounds = 0;
          if (handed && hint!.length > 1) {
            if (await deps.store.hasWaitingRun(runId)) await deps.store.addWaitingRun(runId);
            else maxRounds = MAX_ROUNDS;
          }
        }
        if (result === 'stop') maxRounds = 0; // paced out or the account is full: the run will be woken
        // Taken by another dispatcher: the next one. No slot (full, paused, canceled): the read says.
        if (result !== 'job-taken') break;
      }
    }
    if (maxRounds > 0) {
      // No hint taken (all taken, no slot, or none tried: a cold dispatcher): the fill below reads
      // and takes its slots on the shards, where the carried one goes back first.
      if (carry) await deps.store.dropCarry(carry);
      carry = undefined;
      let first = prefetched; // read for the first pass only: a pass asked for later reads anew
      // An empty hint: its releaser saw no lead due (a run's last calls ending). The fill that makes
      // sure only reads, and the lease would cost two writes for it; without the lease it is safe
      // all the same (the cap never depends on the lease).
      const leaseFiller = hint?.length === 0 ? undefined : filler;
      await fillUnderLease(deps, runId, leaseFiller, () => {
        const pass = fillRounds(deps, runId, maxRounds, calls, pacing, first);
        first = undefined;
        return pass;
      });
    }
  } catch (error) {
    stoppedBy = { error };
  }
  // A handed slot this run took no slot with, and is not waiting for: the next waiting run's. A
  // carried slot left over (a run that takes no slot, paced out, the account found full) goes the same
  // way when it holds an account slot, or back to its counters. A fill that failed leaves it: the
  // dispatch is delivered again, with it.
  if (handedShard !== undefined && !stoppedBy && calls.length === 0 && !pacing.waitingForAccount)
    await passOnAccountSlot(deps, runId, handedShard, carry);
  else if (carry?.shard !== undefined && !stoppedBy) await passOnAccountSlot(deps, runId, carry.shard, carry);
  else if (carry && !stoppedBy) await deps.store.dropCarry(carry);
  return settle(calls, stoppedBy);
}

/** What one dispatch waited in-process for the account's pace, and whether it waits for an account slot. */
interface AccountWaits {
  waitedMs: number;
  waitingForAccount: boolean;
}

/** Runs whose cap passes this are filled under the lease (those whose cap is split over slot counters). */
const LEASED_FROM_CAP = 25;

/** How long one filler keeps asking itself for more passes before it hands the run to a new dispatch. */
const MAX_LEASED_FILLING_MS = 10_000;

/**
 * Fills under the run's fill lease: one filler at a time. Dispatchers filling one run at once read the
 * same first queued jobs and reach for the same counters, and transactions that overlap on an item
 * cancel each other (a cap-500 run's initial fill is dozens of dispatches at once). A dispatch that
 * finds the lease held asks its holder for one more pass and is done; the holder, before it gives the
 * lease back, fills again for every ask. `filler` names the dispatch (its work message): the retry of
 * a dispatch that died holding the lease takes it over at once. The lease only spares transactions;
 * the cap and every lead's single call never depend on it (the slot transactions guard them), so a
 * lease that cannot be read or written is filled without.
 */
async function fillUnderLease(
  deps: FillSlotsDeps,
  runId: string,
  filler: string | undefined,
  fill: () => Promise<void>,
): Promise<void> {
  const lease = deps.fillLease;
  // A run known to have a small cap: its fills meet on few slots, and the lease would only add writes.
  const cap = deps.recentOptions?.concurrencyOf(runId);
  if (!lease || filler === undefined || (cap !== undefined && cap <= LEASED_FROM_CAP)) return fill();
  let taken: 'taken' | 'asked';
  try {
    taken = await lease.take(runId, filler, deps.clock.now().getTime());
  } catch (error) {
    deps.log.warn('the fill lease could not be taken; filling without it', { runId, error });
    return fill();
  }
  if (taken === 'asked') return;
  const started = deps.clock.now().getTime();
  for (;;) {
    await fill();
    const now = deps.clock.now().getTime();
    if (now - started >= MAX_LEASED_FILLING_MS) {
      // Long enough in one invocation: a new dispatch goes on, and takes the lease this one drops.
      await deps.queue.requestDispatch(runId);
      await lease.drop(runId, filler);
      return;
    }
    if ((await lease.give(runId, filler, now)) === 'given') return;
  }
}

/**
 * Rounds of "read the run and its next queued jobs, take every free slot": up to `maxRounds`, or until
 * no slot is free or no job is due. The calls it starts are pushed onto `calls`.
 */
async function fillRounds(
  deps: FillSlotsDeps,
  runId: string,
  maxRounds: number,
  calls: Promise<boolean>[],
  pacing: AccountWaits,
  prefetchedFirst: Promise<QueuedJob[]> | undefined,
): Promise<void> {
  let prefetched = prefetchedFirst;
  let want = 0;
  rounds: for (let round = 0; round < maxRounds; round++) {
    const run = await deps.store.getRunRecord(runId);
    if (!run) break;
    deps.recentOptions?.remember(run);
    if (run.control === 'canceled') {
      // Ending its calls needs its holders: read with them.
      const canceled = await deps.store.getRun(runId);
      if (canceled) await carryOutCancel(deps, canceled);
      break;
    }
    const now = deps.clock.now().getTime();
    if (isExpiredBy(run, now)) {
      // Past expires_at: no call starts (the acquire's condition says so too); the leads still
      // queued end `expired`, and calls still live finish.
      await expireQueued(deps, runId, now);
      break;
    }
    if (run.scheduledFor !== undefined && run.control === 'running') {
      // Not before start_at (the acquire's condition holds it too): wake the run then, SQS's
      // 15-minute delays chained (each wake-up that comes early arms the next).
      if (now < run.scheduledFor) {
        await armWake(deps, runId, run.scheduledFor, now);
        break;
      }
      await deps.store.startScheduledRun(runId, now);
      continue; // read again: started (by this write or another dispatcher's)
    }
    if (run.control !== 'running') break;
    const free = run.concurrency - run.active;
    if (free <= 0) break;
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
        // Or at expires_at, whichever comes first: the leads still waiting then are expired.
        const expiresAt = run.options.expiresAt ? Date.parse(run.options.expiresAt) : undefined;
        const wakeAt = Math.min(earliest ?? Number.POSITIVE_INFINITY, expiresAt ?? Number.POSITIVE_INFINITY);
        if (Number.isFinite(wakeAt)) await armWake(deps, runId, wakeAt, now);
      }
      break;
    }

    let acquired = 0;
    let deferred = 0;
    const due: QueuedJob[] = [];
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
      due.push(job);
    }
    // Placed without waiting, so that the next slots are taken while these calls are being created.
    const place = (job: QueuedJob) => {
      acquired += 1;
      calls.push(observed(placeCall(deps, runId, run.options, job, job.attempt + 1)));
    };
    // Free slots are taken in waves, many in one transaction, so that a newly free cap of hundreds
    // fills in a few round trips; with a calls-per-second pace each create waits its turn anyway,
    // and the one-by-one path below spaces them.
    let oneByOne = deps.account?.callsPerSecond === undefined ? [] : due;
    let rest = oneByOne.length === 0 ? due : [];
    while (rest.length > 0 && acquired < free) {
      const wave = rest.slice(0, free - acquired);
      rest = rest.slice(wave.length);
      const at = deps.clock.now().toISOString();
      const result = await deps.store.acquireSlots(
        runId,
        run.concurrency,
        wave,
        at,
        deps.account,
        recipientChecks(deps),
      );
      for (const job of result.acquired) place(job);
      if (result.failure !== undefined) throw result.failure; // after placing what it took
      for (const job of result.suppressed) await refuseRecipient(deps, runId, run.options, job, 'suppressed');
      for (const job of result.capped)
        await refuseRecipient(deps, runId, run.options, job, 'frequency-capped');
      if (result.stop === 'no-slot') break rounds;
      if (result.stop === 'account-full') {
        // A full shard: the one-by-one path probes the other shards and waits for the account.
        oneByOne = [...result.left, ...rest];
        break;
      }
      rest = [...result.left, ...rest];
    }
    for (const job of oneByOne) {
      if (acquired >= free) break;
      const result = await takeSlot(deps, runId, job, pacing);
      if (result === 'stop' || result === 'no-slot') break rounds;
      if (result === 'acquired') place(job);
      if (result === 'suppressed' || result === 'frequency-capped')
        await refuseRecipient(deps, runId, run.options, job, result);
    }
    // Every slot that was free is taken: another acquire could only be refused (and a refused
    // transaction is billed like a write). A slot freed meanwhile sends its own dispatch.
    if (acquired >= free) break;
    // A round of leads all outside their window: read more at once, the window is closed for many.
    if (deferred === candidates.length) want = DEFER_BATCH;
    else if (acquired === 0 && candidates.length < want) break; // taken by others, and no more
    if (round === maxRounds - 1 && deferred > 0) await deps.queue.requestDispatch(runId); // go on later
  }
}

/** An expired run's queued leads ended per invocation (as a cancel's); a long list goes on in the next. */
const EXPIRE_PER_INVOCATION = 990;

/** Ends a batch of the run's queued leads `expired`; more (or leads not listed yet) go on shortly. */
async function expireQueued(deps: FillSlotsDeps, runId: string, nowMs: number): Promise<void> {
  const at = new Date(nowMs).toISOString();
  const expired = await deps.store.expireQueuedJobs(runId, EXPIRE_PER_INVOCATION, at, nowMs);
  if (expired > 0) deps.log.info('queued leads expired', { runId, expired });
  const after = await deps.store.getRunRecord(runId);
  if (after && after.queued > 0 && after.control !== 'canceled')
    await deps.queue.requestDispatch(runId, { delaySeconds: expired > 0 ? 0 : 1 });
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
  deps: FillSlotsDeps,
  runId: string,
  job: QueuedJob,
  pacing: AccountWaits,
): Promise<Exclude<AcquireResult, 'paced' | 'account-full'> | 'stop'> {
  const acquire = () => {
    const now = deps.clock.now();
    return deps.store.acquireSlot(
      runId,
      job,
      now.toISOString(),
      deps.account ? { ...deps.account, nowMs: now.getTime() } : undefined,
      recipientChecks(deps),
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
      pacing.waitingForAccount = true;
      result = await acquire();
    } else {
      return result;
    }
  }
}

/** The checks an acquire makes now; undefined when the deployment makes none. */
function recipientChecks(deps: FillSlotsDeps): RecipientChecks | undefined {
  const recipients = deps.recipients;
  if (!recipients || (!recipients.suppression && !recipients.frequency)) return undefined;
  return {
    suppression: recipients.suppression,
    ...(recipients.frequency ? { frequency: recipients.frequency } : {}),
    nowMs: deps.clock.now().getTime(),
  };
}

/**
 * A lead whose number a check refused, still queued and holding no slot: a suppressed one ends
 * uncalled (`suppressed`); one over its frequency cap ends `frequency_capped`, or, when its run says
 * `frequency_cap: "wait"`, waits in the queue for the number's next window (and the run is woken then).
 */
async function refuseRecipient(
  deps: FillSlotsDeps,
  runId: string,
  options: RunOptions,
  job: QueuedJob,
  refused: 'suppressed' | 'frequency-capped',
): Promise<void> {
  const now = deps.clock.now();
  const frequency = deps.recipients?.frequency;
  if (refused === 'frequency-capped' && options.frequencyCap === 'wait' && frequency) {
    const opens = frequencyWindow(now.getTime(), frequency.windowMs).endsAt;
    await deps.store.deferJob(runId, job, opens);
    await armWake(deps, runId, opens, now.getTime());
    deps.log.info('lead waits for its frequency window', { runId, jobId: job.jobId, notBefore: opens });
    return;
  }
  const outcome = refused === 'suppressed' ? SUPPRESSED : FREQUENCY_CAPPED;
  const ended = await deps.store.endQueuedJob(runId, job, outcome, now.toISOString());
  if (ended === 'ended') deps.log.info('lead ended uncalled', { runId, jobId: job.jobId, outcome });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
