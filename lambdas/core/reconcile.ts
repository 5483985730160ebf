// (core) The reconciler: the safety net under the callbacks. A slot is only ever freed on Twilio's
// word: when a held call has outlived every timeout it was given, Twilio is asked, and the slot is
// released through the same named transaction as a callback would use — only if the call is final,
// or was never created (docs/DESIGN.md, invariant 5). It also re-arms runs whose "dispatch" message
// was lost.

import { type CallbackDeps, isExpiredBy, releaseFinal } from './callbacks.ts';
import { maskPhone } from './leads.ts';
import { countLive, type Holder, type Run } from './model.ts';
import type {
  CallClaimStore,
  CallLookup,
  CarriedSlot,
  Clock,
  EndedCall,
  FoundCall,
  Log,
  LookedUpCall,
  OpenRunStore,
  WorkQueue,
} from './ports.ts';
import { isFinal, jobStateFor } from './states.ts';
import { refillAfterRelease } from './wake.ts';

export interface ReconcileSettings {
  /** Twilio's ring Timeout given with each call. */
  ringTimeoutSeconds: number;
  /** Twilio's TimeLimit given with each call. */
  timeLimitSeconds: number;
  /** Slack on top of those (Twilio's own queue, callback delivery, clock skew). */
  graceSeconds: number;
  /**
   * How long one pass may take (the function's timeout less a margin): runs not yet started when it
   * is spent wait for the next pass, which starts elsewhere in the list.
   */
  passBudgetMs?: number;
}

export interface ReconcileDeps {
  store: CallbackDeps['store'] & OpenRunStore & CallClaimStore;
  queue: WorkQueue;
  calls: CallLookup;
  clock: Clock;
  log: Log;
  settings: ReconcileSettings;
}

export interface ReconcileReport {
  runsVisited: number;
  runsClosed: number;
  /** Slots held past their deadline, looked up at Twilio. */
  suspects: number;
  /** Slots released because Twilio said the call had ended (its final callback was lost). */
  reaped: number;
  /** Held calls Twilio lists as ended less than FINAL_CALLBACK_GRACE_MS ago: left to their callbacks. */
  awaitingCallback: number;
  /** Slots released because Twilio never had the call (a crash or lost answer around calls.create). */
  neverCreated: number;
  /** Past their deadline but still live at Twilio (e.g. Twilio's own CPS backlog): left alone. */
  stillLive: number;
  /** Runs with free slots and queued leads that were sent a new dispatch message. */
  redispatched: number;
  /** Runs whose `active` disagrees with their holders: should never happen; alarmed on. */
  mismatches: number;
  /** Calls Twilio gave us a Sid for and then said it did not know: never expected; alarmed on. */
  unknownCalls: number;
  lookupErrors: number;
  /** Calls dialing or in a call over the runs visited, as read, less the slots this pass released. */
  liveCalls: number;
  /** Open runs left for the next pass because this one's time budget was spent. */
  runsDeferred: number;
  /** Slots carried by released jobs and taken by no dispatch: freed on their counters. */
  carriesDropped: number;
}

export function emptyReport(): ReconcileReport {
  return {
    runsVisited: 0,
    runsClosed: 0,
    suspects: 0,
    reaped: 0,
    awaitingCallback: 0,
    neverCreated: 0,
    stillLive: 0,
    redispatched: 0,
    mismatches: 0,
    unknownCalls: 0,
    lookupErrors: 0,
    liveCalls: 0,
    runsDeferred: 0,
    carriesDropped: 0,
  };
}

/**
 * How long a slot may be held before Twilio is asked about it. From the moment the slot was taken a
 * call rings for at most the ring timeout and then talks for at most the time limit; anything older
 * than that (plus grace) has either ended without telling us, or never started.
 */
export function holdDeadlineMs(holder: Holder, settings: ReconcileSettings): number {
  const seconds =
    holder.state === 'dialing'
      ? settings.ringTimeoutSeconds + settings.graceSeconds
      : settings.ringTimeoutSeconds + settings.timeLimitSeconds + settings.graceSeconds;
  return Date.parse(holder.since) + seconds * 1000;
}

/**
 * How far back each pass lists ended calls: many reconciler intervals, so that a pass that failed or
 * ran late is made up by the next, and a lost final callback is settled within two intervals whatever
 * the call's length (instead of after ring timeout + time limit + grace).
 */
export const ENDED_LOOKBACK_MS = 15 * 60_000;
/** Runs reconciled at once: slow answers for one run do not hold up the others. */
export const RUNS_IN_PARALLEL = 4;

type EndedCalls = ReadonlyMap<string, EndedCall>;

/**
 * How long after a call ended its final callback may still be on its way: Twilio waits 15 s for the
 * webhook's answer and retries a failed connection once, and the webhook itself retries a release
 * that meets a busy counter. A call that ended more recently is left to its callback until the next
 * pass; settling it now would race the webhook on the same items and log a lost callback that is
 * only late.
 */
export const FINAL_CALLBACK_GRACE_MS = 30_000;

/**
 * A carried slot (CarriedSlot) is taken by its dispatch within milliseconds of its release.
 * One still on its job after this was lost: the webhook died before its message was sent, or the
 * dispatch failed (a retry of it then finds the slot gone, and takes one anew).
 */
export const CARRY_GRACE_MS = 30_000;

/**
 * A call found by number is ours only if Twilio created it between the slot being taken and the end
 * of the dispatcher's create: Twilio's times are whole seconds on its clock, hence the slack before.
 */
const CREATED_SLACK_MS = 5_000;
/** Twice the dispatcher's 30 s timeout: the create is sent within it. */
const CREATE_WINDOW_MS = 60_000;

export async function reconcile(deps: ReconcileDeps): Promise<ReconcileReport> {
  const report = emptyReport();
  const startedAt = deps.clock.now().getTime();
  const deadline = startedAt + (deps.settings.passBudgetMs ?? Number.POSITIVE_INFINITY);
  const ended = await endedCalls(deps, report);
  // Each pass starts at another place in the list (the store's order is oldest first), so that when
  // a pass runs out of time, the runs it could not reach come early in a later one.
  const open = await deps.store.listOpenRuns();
  const offset = open.length === 0 ? 0 : Math.floor(startedAt / 1000) % open.length;
  const runIds = [...open.slice(offset), ...open.slice(0, offset)];

  // First every run with its holders, then the settling: a call found by its number (its Sid lost)
  // must not be one that another live attempt, in any run, has recorded as its own.
  const missedBefore = report.runsDeferred + report.lookupErrors;
  const runs = (await inTurn(deps, runIds, deadline, report, (runId) => deps.store.getRun(runId))).filter(
    (run): run is Run => run !== undefined,
  );
  // Known only if every open run was read: else calls are not looked up by number in this pass.
  let recorded: Set<string> | undefined;
  if (report.runsDeferred + report.lookupErrors === missedBefore) {
    recorded = new Set<string>();
    for (const run of runs)
      for (const holder of Object.values(run.holders)) if (holder.callSid) recorded.add(holder.callSid);
  }
  await inTurn(deps, runs, deadline, report, (run) => reconcileRun(deps, run, report, ended, recorded));
  return report;
}

/**
 * `work` for each run, a few at a time (slow answers for one run do not hold up the others), each
 * once, none started past the pass's deadline: those are deferred to the next pass.
 */
async function inTurn<T extends string | Run, R>(
  deps: ReconcileDeps,
  items: readonly T[],
  deadline: number,
  report: ReconcileReport,
  work: (item: T) => Promise<R>,
): Promise<(R | undefined)[]> {
  const results: (R | undefined)[] = new Array(items.length).fill(undefined);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      const item = items[index]!;
      if (deps.clock.now().getTime() > deadline) {
        report.runsDeferred += 1;
        continue;
      }
      try {
        results[index] = await work(item);
      } catch (error) {
        // One bad run must not keep the others from being looked after.
        deps.log.error('reconcile of a run failed', {
          runId: typeof item === 'string' ? item : item.runId,
          error,
        });
        report.lookupErrors += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(RUNS_IN_PARALLEL, items.length) }, worker));
  return results;
}

/** The calls that ended lately, by Sid: one list request per pass. Empty when Twilio cannot answer. */
async function endedCalls(deps: ReconcileDeps, report: ReconcileReport): Promise<EndedCalls> {
  const since = new Date(deps.clock.now().getTime() - ENDED_LOOKBACK_MS);
  try {
    const calls = await deps.calls.listEndedCalls(since);
    return new Map(calls.map((call) => [call.sid, call]));
  } catch (error) {
    report.lookupErrors += 1;
    deps.log.warn('reconciler could not list ended calls', { error });
    return new Map();
  }
}

async function reconcileRun(
  deps: ReconcileDeps,
  firstRead: Run,
  report: ReconcileReport,
  ended: EndedCalls,
  recorded: ReadonlySet<string> | undefined,
): Promise<void> {
  const { runId } = firstRead;
  let run = firstRead;
  report.runsVisited += 1;

  // `active` and the holders are two reads (the run item, the live index), not one: on a busy run
  // they can disagree for a moment, and on AWS the index may lag. A disagreement counts only if it
  // holds still: `active` unchanged across the holders' read, on a second read as well. A run slot a
  // released job carries (CarriedSlot) is counted in `active` until it is taken or dropped.
  let disagrees = false;
  for (let read = 0; read < 2; read++) {
    if (read > 0) run = (await deps.store.getRun(runId)) ?? run;
    const held = Object.keys(run.holders).length;
    if (
      run.active === held ||
      (run.active > held && run.active === held + (await carriedRunSlots(deps, runId)))
    ) {
      disagrees = false;
      break;
    }
    disagrees = (await deps.store.getRunRecord(runId))?.active === run.active;
    if (!disagrees) break;
  }
  if (disagrees) {
    report.mismatches += 1;
    deps.log.error('slot count disagrees with holders', {
      runId,
      active: run.active,
      holders: Object.keys(run.holders),
    });
  }

  const now = deps.clock.now().getTime();
  let released = 0;
  for (const [jobId, holder] of Object.entries(run.holders)) {
    try {
      if (now < holdDeadlineMs(holder, deps.settings)) {
        if (ended.size > 0 && (await settleEnded(deps, run, jobId, holder, ended, report))) released += 1;
        continue;
      }
      report.suspects += 1;
      if (await settleSuspect(deps, run, jobId, holder, report, recorded)) released += 1;
    } catch (error) {
      // One holder's release lost to a busy run item (past its retries) must not keep the run's
      // other holders from being settled in this pass; it is tried again in the next.
      deps.log.warn('settling a held slot failed', { runId, jobId, error });
      report.lookupErrors += 1;
    }
  }

  const dropped = report.carriesDropped;
  const carriesLeft = await dropLostCarries(deps, await deps.store.carriedSlots(runId, false), now, report);
  // A carry dropped just now freed its run slot: the run as it is now says whether it can close.
  if (report.carriesDropped > dropped) run = (await deps.store.getRun(runId)) ?? run;

  const live = countLive(run);
  report.liveCalls += live.dialing + live.calling - released;
  const freeSlots = run.concurrency - (live.dialing + live.calling) + released;
  // A lost dispatch message must not stall a run, nor a cancel whose sweep of queued leads was cut
  // short, nor an expiry (its leads wait for a dispatcher to end them, however full or paused the run
  // is); a scheduled run is left to its wake-up until its start is due.
  const due = run.scheduledFor === undefined || now >= run.scheduledFor;
  if (
    (run.control === 'running' && run.queued > 0 && freeSlots > 0 && due) ||
    (run.control === 'canceled' && run.queued > 0) ||
    (run.queued > 0 && isExpiredBy(run, now))
  ) {
    await deps.queue.requestDispatch(runId);
    report.redispatched += 1;
  } else if (released === 0 && carriesLeft === 0 && (await closeRun(deps, run, report))) {
    report.runsClosed += 1;
  }
}

/** How many run slots the run's released jobs carry. */
async function carriedRunSlots(deps: ReconcileDeps, runId: string): Promise<number> {
  return (await deps.store.carriedSlots(runId, false)).filter((carry) => carry.runSlot !== undefined).length;
}

/** Drops the carried slots older than CARRY_GRACE_MS (each only if still carried); how many are left. */
async function dropLostCarries(
  deps: ReconcileDeps,
  carries: readonly (CarriedSlot & { endedAt: string })[],
  now: number,
  report: ReconcileReport,
): Promise<number> {
  let left = 0;
  for (const carry of carries) {
    if (now - Date.parse(carry.endedAt) < CARRY_GRACE_MS) left += 1;
    else if ((await deps.store.dropCarry(carry)) === 'dropped') {
      report.carriesDropped += 1;
      deps.log.warn('a carried slot was freed: the dispatch it went with was lost', {
        runId: carry.runId,
        jobId: carry.jobId,
      });
    }
  }
  return left;
}

/**
 * Closes a run whose every lead is final, after one last look for slots its jobs carry: the
 * reconciler never visits a closed run again, so a lost carry left on one would be a slot
 * lost for good (never a cap passed). The look reads every job consistently (the live index may lag
 * a release on AWS). A run read with no lead queued or live makes no new carry, so none follows the
 * look, unless a lead were appended, dialed and ended, its carry lost, between that read and the close
 * a few milliseconds later: a call takes seconds, and this is not guarded further.
 */
async function closeRun(deps: ReconcileDeps, run: Run, report: ReconcileReport): Promise<boolean> {
  if (run.active !== 0 || run.queued !== 0 || run.ingestedLeads !== run.totalLeads) return false;
  const carries = await deps.store.carriedSlots(run.runId, true);
  for (const carry of carries)
    if ((await deps.store.dropCarry(carry)) === 'dropped') report.carriesDropped += 1;
  return (await deps.store.closeRun(run.runId)) === 'closed';
}

/**
 * A held slot whose call is in the list of calls that ended lately: its final callback was lost (or
 * is late; the release is conditional on the holder, so whichever comes second changes nothing). Only
 * the Sid this attempt recorded is matched, so a call is never attributed to another attempt.
 */
async function settleEnded(
  deps: ReconcileDeps,
  run: Run,
  jobId: string,
  holder: Holder,
  ended: EndedCalls,
  report: ReconcileReport,
): Promise<boolean> {
  // Ended too lately for its callback to count as lost: the next pass settles it if it never comes.
  const tooRecent = (call: EndedCall) => {
    const endedAt = call.endTime?.getTime();
    if (endedAt === undefined || deps.clock.now().getTime() - endedAt >= FINAL_CALLBACK_GRACE_MS)
      return false;
    report.awaitingCallback += 1;
    return true;
  };
  // The holders' read names the call of each: only a holder whose call ended a while ago is read
  // again (a thousand live calls are not a thousand reads a pass). One read before its Sid was saved is.
  if (holder.callSid !== undefined) {
    const named = ended.get(holder.callSid);
    if (named === undefined || tooRecent(named)) return false;
  }
  const job = await deps.store.getJob(run.runId, jobId);
  if (!job?.callSid || job.attempt !== holder.attempt) return false;
  const call = ended.get(job.callSid);
  if (call === undefined || (job.callSid !== holder.callSid && tooRecent(call))) return false;
  const { status } = call;
  // Twilio's verdict, else the one the detection callback recorded: a machine's call ends `machine`.
  const answeredBy = call.answeredBy ?? job.answeredBy;
  const result = await releaseFinal(deps, run, jobId, holder, {
    status,
    callSid: job.callSid,
    ...(answeredBy === undefined ? {} : { answeredBy }),
  });
  if (result !== 'released') return false;
  report.reaped += 1;
  deps.log.warn('slot reaped: final callback never came', {
    runId: run.runId,
    jobId,
    attempt: holder.attempt,
    status,
  });
  return true;
}

/** Asks Twilio about one overdue slot and releases it if, and only if, the call is over or never was. */
async function settleSuspect(
  deps: ReconcileDeps,
  run: Run,
  jobId: string,
  holder: Holder,
  report: ReconcileReport,
  recorded: ReadonlySet<string> | undefined,
  claimsLeft = 2,
): Promise<boolean> {
  const { runId } = run;
  const job = await deps.store.getJob(runId, jobId);
  if (!job || job.attempt !== holder.attempt) return false;
  const context = { runId, jobId, attempt: holder.attempt, to: maskPhone(job.phone) };
  // Without every live attempt's Sid, a call found by number might be another's: next pass.
  if (!job.callSid && recorded === undefined) return false;

  let call: LookedUpCall | undefined;
  try {
    const lookup = job.callSid
      ? await deps.calls.fetchCall(job.callSid)
      : await findOwnCall(deps, job.phone, holder, recorded!);
    if (lookup === 'uncertain') {
      // Counted with the calls Twilio does not know (alarmed on): a person decides, nobody is called twice.
      report.unknownCalls += 1;
      deps.log.error("no call to this number can be told apart as this attempt's; slot kept", context);
      return false;
    }
    call = lookup;
  } catch (error) {
    report.lookupErrors += 1;
    deps.log.warn('reconciler could not ask the telephony provider', { ...context, error });
    return false;
  }

  const at = deps.clock.now().toISOString();
  if (call === undefined && job.callSid) {
    // Twilio created this call (it gave us the Sid) yet does not know it now: ask again next time
    // rather than guess; re-queueing could dial the lead twice.
    report.unknownCalls += 1;
    deps.log.error('provider does not know a call it created', { ...context, callSid: job.callSid });
    return false;
  }
  if (call === undefined) {
    // Twilio has no such call: the attempt never happened. The lead goes back to the queue (a new
    // attempt); nothing was dialed, so nothing is dialed twice.
    const result = await deps.store.releaseSlot({
      runId,
      jobId,
      attempt: holder.attempt,
      from: holder.state,
      to: 'queued',
      accountShard: holder.accountShard ?? null,
      slotShard: holder.slotShard ?? null,
      at,
    });
    if (result === 'released') {
      await refillAfterRelease(deps, runId, {
        dispatchRun: run.control === 'running',
        accountSlot: holder.accountShard !== undefined,
        accountShard: holder.accountShard,
      });
      report.neverCreated += 1;
      deps.log.warn('slot reaped: call was never created', context);
      return true;
    }
    return false;
  }

  const state = jobStateFor(call.status);
  if (!isFinal(state)) {
    report.stillLive += 1;
    deps.log.info('overdue slot still live at the provider', { ...context, status: call.status });
    return false;
  }
  // The same release a final callback makes: retry policy, account slot, refill all included. A call
  // found by number is claimed in that release, so that no other attempt can be credited with it.
  // Twilio's verdict, else the one the detection callback recorded: a machine's call ends `machine`.
  const answeredBy = call.answeredBy ?? job.answeredBy;
  const result = await releaseFinal(deps, run, jobId, holder, {
    status: call.status,
    callSid: call.sid,
    ...(job.callSid ? {} : { claimCall: true }),
    ...(answeredBy === undefined ? {} : { answeredBy }),
  });
  if (result === 'released') {
    report.reaped += 1;
    deps.log.warn('slot reaped: final callback never came', { ...context, status: call.status });
    return true;
  }
  // Another attempt's release claimed that call first (a run reconciled alongside this one): look
  // again, without it.
  if (!job.callSid && claimsLeft > 0 && (await deps.store.claimedCalls([call.sid])).has(call.sid))
    return settleSuspect(deps, run, jobId, holder, report, recorded, claimsLeft - 1);
  return false;
}

/**
 * The call of an attempt whose Sid was never saved, found by its number: created by Twilio between
 * the slot being taken and the end of the dispatcher's create, recorded by no other live attempt and
 * claimed by no earlier release. Several left: a live one keeps the slot; else the one created
 * closest after the slot was taken (the create follows the acquire at once).
 */
async function findOwnCall(
  deps: ReconcileDeps,
  phone: string,
  holder: Holder,
  recorded: ReadonlySet<string>,
): Promise<FoundCall | 'uncertain' | undefined> {
  const since = Date.parse(holder.since);
  const found = await deps.calls.findCalls({ to: phone, startedAfter: new Date(since - CREATED_SLACK_MS) });
  const inWindow = found.filter((call) => {
    const created = call.createdAt?.getTime();
    return (
      created === undefined || (created >= since - CREATED_SLACK_MS && created <= since + CREATE_WINDOW_MS)
    );
  });
  const unrecorded = inWindow.filter((call) => !recorded.has(call.sid));
  const claimed =
    unrecorded.length > 0 ? await deps.store.claimedCalls(unrecorded.map((c) => c.sid)) : new Set<string>();
  const candidates = unrecorded
    .filter((call) => !claimed.has(call.sid))
    .sort((a, b) => distance(a, since) - distance(b, since));
  // Only calls credited to attempts that had lost their Sid too are left: one of them may have been
  // ours, so "never created" (which puts the lead back) would risk calling it twice.
  if (candidates.length === 0 && claimed.size > 0) return 'uncertain';
  return candidates.find((c) => !isFinal(jobStateFor(c.status))) ?? candidates[0];
}

function distance(call: FoundCall, since: number): number {
  return call.createdAt === undefined ? Number.POSITIVE_INFINITY : Math.abs(call.createdAt.getTime() - since);
}
