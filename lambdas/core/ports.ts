// (core) The ports: what the core needs from storage, the queue and the telephony provider.
// Adapters in lambdas/adapters implement them against DynamoDB, SQS and Twilio; tests may wire
// emulator-backed or in-memory ones. Nothing here knows about AWS or Twilio.

import type { MachineDetectionMode } from './machine-detection.ts';
import type { Job, NewJob, Run, RunControl, RunRecord, SlotCounts } from './model.ts';
import type { RunOptions } from './run-options.ts';
import type { FinalState, LiveState, TwilioCallStatus } from './states.ts';

export interface NewRun {
  runId: string;
  createdAt: string;
  concurrency: number;
  totalLeads: number;
  options?: RunOptions;
  /** Lead chunks the run starts with (appended chunks are numbered after them). */
  chunkCount?: number;
}

export interface QueuedJob {
  jobId: string;
  phone: string;
  /** Attempts made before this one. */
  attempt: number;
  /** Not to be dialed before (ms since the epoch); 0 for a fresh lead. Part of its place in the queue. */
  notBefore?: number;
  /** The lead's own time zone for the calling window, when it has one. */
  timeZone?: string;
  /**
   * Which of the run's slot counters holds (or, in a refill's hint, has just freed) a slot for it,
   * when the store splits the run's cap over several; null: the run's own counter. The store sets it
   * on the job when it takes the slot; whoever releases the slot passes it back.
   */
  slotShard?: number | null;
  /**
   * With an account cap: in a refill's hint, the account shard the release just freed a slot on, which
   * the acquire tries first (near a full account, the other shards are likely full); once the slot is
   * taken, the shard it holds (the store sets it, as it does `slotShard`).
   */
  accountShard?: number;
  /**
   * In a refill's (or a handed dispatch's) hint: the account slot the release carried, which the
   * acquire takes off the released job instead of taking one on a shard.
   */
  carried?: CarriedSlot;
}

/**
 * A slot a released job still holds for the next acquire: the run's (on the counter it was taken on)
 * and, with an account cap, the account's (on its shard). A final release from a callback writes only
 * the job: it leaves the counters as they are and marks the job (`carriedSlot`, and `carriedShard`
 * with an account slot), which stays in the live index. The acquire that takes the slot removes the
 * mark in its transaction, conditioned on it, and on the run's counter only counts the released lead
 * as final instead of moving `active` down and up again; it never writes the shard. A release followed
 * by its refill would otherwise write both counters twice for no net change, and a burst of calls
 * ending together meets on them. An acquire of another run (a waiting run handed the account slot)
 * frees the run's part on its counter in its own transaction. A carry nobody takes is dropped: its
 * counters freed and the mark removed, in one transaction on the same condition.
 */
export interface CarriedSlot {
  runId: string;
  jobId: string;
  /** The released attempt: the mark is this attempt's. */
  attempt: number;
  /** With an account cap: the account shard the slot is counted on. */
  shard?: number;
  /**
   * The run's slot (absent in a carry of the account slot alone, as releases made before the run's
   * slot was carried): the counter it is on, and what the released lead counts as there once freed.
   */
  runSlot?: CarriedRunSlot;
}

export interface CarriedRunSlot {
  /** The run's counter (QueuedJob.slotShard): a number, or null for the run item's own. */
  counter: number | null;
  /** The lead's final state and outcome, counted on the counter by whoever takes or drops the slot. */
  to: 'completed' | 'failed' | 'canceled';
  outcome: string;
}

/** Account-wide limits, enforced in the same transaction as the run's own slot. */
export interface AccountLimits {
  /** Live calls across all runs (the Twilio account's concurrency); unset = no account cap. */
  maxConcurrentCalls?: number;
  /** calls.create per second across all runs (Twilio's CPS); unset = no pacing. */
  callsPerSecond?: number;
  /** Now, ms since the epoch: pacing compares it with the account's next free create time. */
  nowMs: number;
}

/**
 * Per-recipient checks made inside the acquire transaction itself, so that no write between a check
 * and the dial can slip past it: the suppression list, and the number's calls in its frequency window.
 */
export interface RecipientChecks {
  /** A number on the suppression list is not dialed (its lead ends `suppressed`). */
  suppression: boolean;
  /** At most `maxCalls` dials of one number per window (see `frequencyWindow`); unset = no cap. */
  frequency?: FrequencyCap;
  /** Now, ms since the epoch: which frequency window, and whether a suppression has expired. */
  nowMs: number;
}

export interface FrequencyCap {
  maxCalls: number;
  windowMs: number;
}

export type AcquireResult =
  /** The slot is held by this job and attempt; the job is `dialing`. */
  | 'acquired'
  /**
   * No free slot, or the run is not dialing (paused, canceled): stop filling. (A store that knows the
   * run is full may say so without trying the job: a taken job in a full run can be either answer.)
   */
  | 'no-slot'
  /** Another dispatcher took this job first (or the index was stale): try the next one. */
  | 'job-taken'
  /** The account's cap on live calls across all runs is reached: wait for any run's call to end. */
  | 'account-full'
  /** The account's calls-per-second pace allows no create yet: try again in 1/cps seconds. */
  | 'paced'
  /** The number is on the suppression list: the job is still queued, to be ended `suppressed`. */
  | 'suppressed'
  /** The number has had its calls in this frequency window: the job is still queued. */
  | 'frequency-capped';

/** What a wave of acquires on one run did (SlotStore.acquireSlots). */
export interface WaveResult {
  /** Jobs that took a slot: each is now `dialing` at its next attempt. */
  acquired: QueuedJob[];
  /** Jobs another dispatcher took first (or a stale index listed): not this wave's to dial. */
  taken: QueuedJob[];
  /** Jobs still queued, not tried to the end: the run had no slot left for them, or their account shard was full. */
  left: QueuedJob[];
  /** Why jobs were left: the run is full (or not running), or an account shard is full. */
  stop?: 'no-slot' | 'account-full';
  /** Jobs whose number is suppressed (RecipientChecks): still queued, to be ended `suppressed`. */
  suppressed: QueuedJob[];
  /** Jobs whose number is over its frequency cap: still queued, to be ended or deferred. */
  capped: QueuedJob[];
  /**
   * A store that takes a wave in several transactions at once (a run whose cap is split over
   * counters) may see one fail while others took their slots: the error, to be thrown once the
   * acquired jobs' calls are placed (their slots are held; nobody else would place them).
   */
  failure?: unknown;
}

export interface Release {
  runId: string;
  jobId: string;
  attempt: number;
  /** The state the holder is known to be in; the write is conditional on it. */
  from: LiveState;
  /**
   * A final state, or `queued`: the call was never placed (Twilio 429), or a retry is due later. In
   * a canceled run `queued` becomes `canceled` (atomically), so that no lead waits in a canceled run.
   */
  to: FinalState | 'queued';
  /** With `to: 'queued'`: not to be dialed before this time (ms since the epoch). */
  notBefore?: number;
  /** The account shard the holder holds a slot on (Holder.accountShard), null for none; read from the job when omitted. */
  accountShard?: number | null;
  /**
   * The run's slot counter the holder holds its slot on (Holder.slotShard), null for the run's own;
   * read from the job when omitted. The job's condition checks it: a wrong one is refused, never applied.
   */
  slotShard?: number | null;
  outcome?: string;
  errorCode?: number;
  callSid?: string;
  /**
   * The call was found by its number (its Sid was never saved): the release also claims the Sid, on
   * the condition that nothing claimed it before, so one Twilio call is credited to one attempt only.
   */
  claimCall?: boolean;
  /** Twilio's AnsweredBy for the call, when detection told it (kept unless the job has one already). */
  answeredBy?: string;
  /**
   * With a final `to`: keep the slot on the job (CarriedSlot), the run's and the account's, instead
   * of freeing them on their counters. The caller hands it to the next acquire or drops it.
   */
  carry?: boolean;
  at: string;
}

export type ReleaseResult = 'released' | 'stale';

/** A client's Idempotency-Key and the fingerprint of the request it first came with. */
export interface IdempotencyClaim {
  key: string;
  fingerprint: string;
}

export type CreateRunResult =
  | { kind: 'created' }
  /** The key was claimed before: by this run id, for a request with this fingerprint. */
  | { kind: 'existing'; runId: string; fingerprint: string };

// The store, by role. Each use case depends only on the roles it uses (e.g. the status callback on
// RunReader, SlotStore, QueueStore and WakeStore); the DynamoDB adapter implements every role, and
// test/support/memory-store.ts does the same in memory for the core's unit tests.

/** One run or one job, by key. */
export interface RunReader {
  /** The run with its holders: for views, cancels and the reconciler. */
  getRun(runId: string): Promise<Run | undefined>;
  /** The run's own record without its holders: one read, whatever the number of live calls. */
  getRunRecord(runId: string): Promise<RunRecord | undefined>;
  /** The run's control alone, read now: one small read, even for a run whose cap is split over counters. */
  getRunControl(runId: string): Promise<RunControl | undefined>;
  getJob(runId: string, jobId: string): Promise<Job | undefined>;
  /**
   * What a high-cap run's slot counters hold between them, read now (none for a run of one counter):
   * what its own item leaves out (model.ts `withSlotCounts`).
   */
  slotCounts(runId: string): Promise<SlotCounts>;
}

/** Runs coming into being and growing: POST /runs and appended leads. */
export interface RunIntakeStore {
  /** Creates the run; with a claim, atomically with it, so that one key can only ever make one run. */
  createRun(run: NewRun, idempotency?: IdempotencyClaim): Promise<CreateRunResult>;
  /** Reserves places for appended leads: `totalLeads` and `chunkCount` grow together, on an open run only. */
  reserveLeads(runId: string, request: LeadReservation): Promise<ReservationResult>;
}

/** Lead chunks from the queue turned into jobs. */
export interface IngestStore {
  /**
   * Writes a chunk's jobs and counts them, once: a redelivered chunk changes nothing. A delivery
   * that meets another one still writing the chunk throws; its message is retried later.
   */
  ingestChunk(runId: string, chunk: number, jobs: NewJob[], at: string): Promise<'ingested' | 'duplicate'>;
}

/** A run's queued jobs, in dialing order (not-before time, then lead order). */
export interface QueueStore {
  /**
   * The next queued jobs in dialing order, only those due by `dueBy` (ms) when it is given; may be
   * stale, which `acquireSlot` detects.
   */
  nextQueuedJobs(runId: string, limit: number, dueBy?: number): Promise<QueuedJob[]>;
  /** The earliest `notBefore` of the run's queued jobs; undefined when none is queued. */
  earliestQueued(runId: string): Promise<number | undefined>;
  /** Moves a queued job back to `notBefore` (a closed calling window), if it is still where it was. */
  deferJob(runId: string, job: QueuedJob, notBefore: number): Promise<void>;
  /**
   * Ends a queued job without a call (`failed` with this outcome: `suppressed`, `frequency_capped`),
   * counted in the run in the same transaction, if it is still queued at the attempt seen.
   */
  endQueuedJob(runId: string, job: QueuedJob, outcome: string, at: string): Promise<'ended' | 'stale'>;
}

/** The semaphore: a run's slots taken and freed (docs/DESIGN.md, invariant 2). */
export interface SlotStore {
  /**
   * One transaction: `active < concurrency` increment, holder recorded, job queued → dialing; with
   * account limits, the account's own slot (and pace) in the same transaction.
   */
  acquireSlot(
    runId: string,
    job: QueuedJob,
    at: string,
    account?: AccountLimits,
    checks?: RecipientChecks,
  ): Promise<AcquireResult>;
  /**
   * Many slots of a run of cap `concurrency` in one transaction (never with a calls-per-second pace,
   * which spaces creates one by one): what `acquireSlot` does for each job, all or none, tried again
   * without the jobs that were taken and with as many as are free.
   */
  acquireSlots(
    runId: string,
    concurrency: number,
    jobs: QueuedJob[],
    at: string,
    account?: Pick<AccountLimits, 'maxConcurrentCalls'>,
    checks?: RecipientChecks,
  ): Promise<WaveResult>;
  recordCallSid(runId: string, jobId: string, attempt: number, callSid: string): Promise<void>;
  /**
   * dialing → calling, on the holder (the job), conditional on it being where we think; the call's
   * Sid is saved too when it was not yet.
   */
  markCalling(
    runId: string,
    jobId: string,
    attempt: number,
    at: string,
    callSid?: string,
  ): Promise<'applied' | 'stale'>;
  /**
   * One transaction: holder removed and `active` decremented only if the holder is there; job moved.
   * With `carry`, one write of the job alone on the same condition: the slot stays counted, on the job.
   */
  releaseSlot(release: Release): Promise<ReleaseResult>;
  /**
   * Frees a carried slot on its counters (and counts its lead as final there), only if the job still
   * carries it: `gone` when an acquire took it or it was dropped already.
   */
  dropCarry(carry: CarriedSlot): Promise<'dropped' | 'gone'>;
  /**
   * Records answering-machine detection's verdict on the holder (the job), only while this attempt is
   * live and has none yet: `stale` for a duplicate, another attempt, or a call already settled.
   */
  recordAnsweredBy(
    runId: string,
    jobId: string,
    attempt: number,
    answeredBy: string,
  ): Promise<'applied' | 'stale'>;
}

/** What wakes a run up later: a delayed dispatch per time, and the runs waiting for an account slot. */
export interface WakeStore {
  /** True when no wake-up is armed for the run at or before `atMs`; records this one (one per time). */
  claimWake(runId: string, atMs: number, nowMs: number): Promise<boolean>;
  /** Records a run as waiting for an account slot; `takeWaitingRun` hands it out once. */
  addWaitingRun(runId: string): Promise<void>;
  /** One waiting run other than `except`, taken off the waiting set; undefined when there is none. */
  takeWaitingRun(except: string): Promise<string | undefined>;
  /** Whether a run other than `except` waits for an account slot (read, not taken). */
  hasWaitingRun(except: string): Promise<boolean>;
  /** SlotStore's: a carried slot that nobody will take is freed. */
  dropCarry(carry: CarriedSlot): Promise<'dropped' | 'gone'>;
}

/** Run controls (pause, resume, cancel) and what a cancel does to the queued leads. */
export interface RunControlStore {
  /** Sets `control` if it is one of `from` and the run is not completed; else returns the run as it is. */
  setControl(runId: string, change: ControlChange): Promise<ControlResult>;
  /** Marks up to `limit` of a canceled run's queued jobs canceled (≤ 99 a transaction); how many. */
  cancelQueuedJobs(runId: string, limit: number, at: string): Promise<number>;
  /**
   * Starts a scheduled run: removes its `scheduledFor` if that time has come by `nowMs` (the
   * condition of the write). False when it was not due, or already started.
   */
  startScheduledRun(runId: string, nowMs: number): Promise<boolean>;
  /**
   * Ends up to `limit` of a run's queued jobs with outcome `expired` (failed), only if the run's
   * `expires_at` has passed by `nowMs` and it is not canceled (≤ 99 a transaction); how many.
   */
  expireQueuedJobs(runId: string, limit: number, at: string, nowMs: number): Promise<number>;
}

/** The failure breaker's count of a run's ended attempts (docs/DESIGN.md, slot state: not on the run item). */
export interface BreakerStore {
  /**
   * Counts one ended attempt in the run's window for `epoch` (the run's last control change, or its
   * creation): the last `size` attempts are kept, whatever the number of concurrent writers. Returns
   * the window as this write left it; undefined when a newer attempt had already taken its place.
   */
  countEndedAttempt(
    runId: string,
    epoch: string,
    failed: boolean,
    size: number,
  ): Promise<BreakerWindow | undefined>;
}

export interface BreakerWindow {
  /** Attempts counted in this epoch so far. */
  ended: number;
  /** Of the last `size` of them, how many failed (as written so far). */
  failed: number;
}

/** Pages of runs and of a run's jobs, for clients. */
export interface RunQueries {
  /** Runs, newest first. */
  listRuns(page: PageRequest): Promise<Page<Run>>;
  /** A run's jobs in lead order, optionally only those in `statuses` and with one of `outcomes`. */
  listJobs(runId: string, page: JobPageRequest): Promise<Page<Job>>;
}

/** The runs the reconciler looks after. */
export interface OpenRunStore {
  /** Runs that are not completed yet: the only ones that can hold a slot or have a lead to dial. */
  listOpenRuns(): Promise<string[]>;
  /** Marks a run closed, only if every lead is ingested and none is queued or live. */
  closeRun(runId: string): Promise<'closed' | 'still-open'>;
  /**
   * The slots the run's released jobs carry (and when each was released). `everyJob`: read
   * all of its jobs consistently, not the live index, which on AWS may lag: before a run is closed,
   * after which the reconciler no longer looks at it.
   */
  carriedSlots(runId: string, everyJob: boolean): Promise<(CarriedSlot & { endedAt: string })[]>;
}

/** A suppressed number (E.164), as stored. */
export interface Suppression {
  phone: string;
  /** Why: `opt-out` (the callee asked), or the client's own word (`dnc-registry`, `complaint`, …). */
  reason: string;
  /** The run whose call the callee opted out of, for an opt-out. */
  runId?: string;
  createdAt: string;
  /** No longer suppressed from this time (ISO 8601); unset = for good. */
  expiresAt?: string;
}

/** The do-not-call list: numbers the acquire transaction refuses to dial. */
export interface SuppressionStore {
  /** Adds or replaces a number's suppression. */
  putSuppression(suppression: Suppression): Promise<void>;
  /** Adds many (a CSV import), each as `putSuppression` does. */
  putSuppressions(suppressions: Suppression[]): Promise<void>;
  /** The number's suppression, unless absent or expired at `nowMs`. */
  getSuppression(phone: string, nowMs: number): Promise<Suppression | undefined>;
  /** Removes it; `absent` when there was none (an expired one counts as absent). */
  deleteSuppression(phone: string, nowMs: number): Promise<'deleted' | 'absent'>;
  /** Which of `phones` are suppressed at `nowMs` (one batched read; for early notice at ingest). */
  suppressedAmong(phones: readonly string[], nowMs: number): Promise<Set<string>>;
  /** The list in E.164 order, expired ones left out; `prefix` narrows it to numbers starting so. */
  listSuppressions(
    page: PageRequest & { prefix?: string | undefined; nowMs: number },
  ): Promise<Page<Suppression>>;
}

/** Every role: what a complete store (DynamoDB, or the tests' in-memory one) provides. */
export interface RunStore
  extends RunReader,
    SuppressionStore,
    RunIntakeStore,
    IngestStore,
    QueueStore,
    SlotStore,
    WakeStore,
    RunControlStore,
    BreakerStore,
    RunQueries,
    OpenRunStore,
    CallClaimStore {}

export interface ControlChange {
  to: RunControl;
  /** The controls the change may start from. */
  from: readonly RunControl[];
  at: string;
  /** Cancel: hang up calls in progress too (never unset once set). */
  hangup?: boolean;
  /** Why the run pauses itself; a change without one clears the last (a person's pause has none). */
  reason?: string;
  /**
   * Only if the run's last control change is still this one (null: none since it was created): a
   * decision made on what the run was then is not applied to a run changed since.
   */
  ifControlAt?: string | null;
}

export type ControlResult =
  | { kind: 'changed'; run: Run }
  /** The condition failed: `run` is the run as it is (completed, or in a control not in `from`). */
  | { kind: 'refused'; run: Run }
  | { kind: 'not-found' };

export interface LeadReservation {
  leads: number;
  chunks: number;
  /** The run may not grow past this many leads. */
  maxLeads: number;
  /** The client's Idempotency-Key for this append: recorded with the reservation, atomically. */
  idempotency?: IdempotencyClaim;
}

export type ReservationResult =
  /** Job ids from `firstIndex` and chunk numbers from `firstChunk` are this append's. */
  | { kind: 'reserved'; firstIndex: number; firstChunk: number }
  /** The key was claimed before, on this run: by the append of this fingerprint, with these places. */
  | { kind: 'existing'; firstIndex: number; firstChunk: number; fingerprint: string }
  | { kind: 'refused'; run: Run }
  | { kind: 'not-found' };

export type JobPageRequest = PageRequest & { statuses?: readonly string[]; outcomes?: readonly string[] };

export interface PageRequest {
  limit: number;
  /** An opaque cursor from a previous page. */
  cursor?: string | undefined;
}

export interface Page<T> {
  items: T[];
  /** Undefined on the last page. */
  nextCursor?: string;
}

/**
 * One filler per run at a time (fill-slots.ts `fillUnderLease`). `filler` names the dispatch holding
 * or asking; a lease past its time is anyone's.
 */
export interface FillLease {
  /** `taken`: this filler holds the lease now. `asked`: another holds it and will fill once more. */
  take(runId: string, filler: string, nowMs: number): Promise<'taken' | 'asked'>;
  /** `given`: the lease is free. `asked`: a fill was asked for meanwhile; still held, fill again. */
  give(runId: string, filler: string, nowMs: number): Promise<'given' | 'asked'>;
  /** Frees the lease whatever was asked (a new dispatch goes on). */
  drop(runId: string, filler: string): Promise<void>;
}

export interface WorkQueue {
  /** Puts lead chunks on the queue for ingestion. */
  sendLeadChunks(runId: string, chunks: LeadChunk[]): Promise<void>;
  /** Asks a dispatcher to fill the run's free slots, now or after `delaySeconds`. */
  requestDispatch(runId: string, request?: DispatchRequest): Promise<void>;
}

export interface DispatchRequest {
  /** Not before this many seconds (SQS DelaySeconds, ≤ 900). */
  delaySeconds?: number;
  /** When the slot that prompted it was freed, for the refill-latency metric. */
  releasedAt?: string;
  /** The run's next queued jobs as the releaser saw them: a hint that spares the dispatcher its reads. */
  next?: QueuedJob[];
  /**
   * An account slot handed to this run, which was waiting for one (wake.ts): the shard it was freed
   * on (tried first), or null when the releaser did not know it. The dispatch passes the slot on to
   * the next waiting run when it cannot use it.
   */
  handedShard?: number | null;
  /** The slot the release carried (CarriedSlot): the dispatch takes it, passes it on or drops it. */
  carried?: CarriedSlot;
}

export interface LeadChunk {
  chunk: number;
  jobs: NewJob[];
}

/** The messages on the work queue. */
export type WorkMessage =
  | { type: 'ingest'; runId: string; chunk: number; jobs: NewJob[] }
  | ({ type: 'dispatch'; runId: string } & Pick<
      DispatchRequest,
      'releasedAt' | 'next' | 'handedShard' | 'carried'
    >);

export interface CallRequest {
  to: string;
  from: string;
  statusCallbackUrl: string;
  /** Seconds to let it ring before Twilio gives up (`no-answer`). */
  ringTimeoutSeconds: number;
  /** Longest the call may last once answered. */
  timeLimitSeconds: number;
  content: CallContent;
  /** Asynchronous answering-machine detection, its verdict posted to `callbackUrl`. */
  machineDetection?: { mode: MachineDetectionMode; callbackUrl: string };
}

/** What the callee hears: TwiML Twilio fetches from a URL, or TwiML given inline. */
export type CallContent = { twimlUrl: string } | { twiml: string };

export type CallResult =
  | { kind: 'created'; callSid: string; status: TwilioCallStatus }
  /** Twilio refused the call for good (invalid or unreachable number, permissions): fail the job. */
  | { kind: 'rejected'; code: number | undefined; message: string }
  /**
   * The provider refused the run's own setup (its caller id, its call content), not the lead: every
   * lead would fail alike, so the lead waits and the run is paused for a person.
   */
  | { kind: 'misconfigured'; code: number; message: string }
  /** Twilio 429 / 20429: never processed, safe to try again later. */
  | { kind: 'throttled' }
  /** Timeout, network error, 5xx: the call may exist. Never re-sent blindly. */
  | { kind: 'unknown'; reason: string };

export interface Telephony {
  createCall(request: CallRequest): Promise<CallResult>;
}

/** What the reconciler asks the telephony provider about calls whose callbacks never came. */
export interface CallLookup {
  /** The call's current status, or undefined if the provider has no such call. */
  fetchCall(callSid: string): Promise<LookedUpCall | undefined>;
  /**
   * Calls to `to` created since `startedAfter` (for a call whose Sid was never saved), with when Twilio
   * created each (absent when it does not say).
   */
  findCalls(query: { to: string; startedAfter: Date }): Promise<FoundCall[]>;
  /**
   * Calls that ended at or after `endedAfter`, with their final status: one list request (a few
   * pages at most) that settles every held slot whose final callback was lost, whatever the call's length.
   */
  listEndedCalls(endedAfter: Date): Promise<EndedCall[]>;
}

/** A call as the provider reports it: its status, and who answered when detection told (AnsweredBy). */
export interface LookedUpCall {
  sid: string;
  status: TwilioCallStatus;
  answeredBy?: string;
}

/** An ended call, with when it ended when the provider says (Twilio's EndTime). */
export interface EndedCall extends LookedUpCall {
  endTime?: Date;
}

export interface FoundCall extends LookedUpCall {
  createdAt?: Date;
}

/** Twilio calls already credited to an attempt that had lost their Sid (see `Release.claimCall`). */
export interface CallClaimStore {
  /** Which of `callSids` a release has claimed. */
  claimedCalls(callSids: readonly string[]): Promise<Set<string>>;
}

/** Ends calls at the provider: what cancel needs (Twilio: POST Calls/{Sid} with Status). */
export interface CallControl {
  /** Ends a queued or ringing call (Status=canceled); an answered one is `invalid-state`. */
  cancelCall(callSid: string): Promise<CallUpdate>;
  /** Ends any live call (Status=completed). */
  hangUpCall(callSid: string): Promise<CallUpdate>;
  /** Replaces what a call in progress hears (Twilio: POST Calls/{Sid} with Twiml or Url): a voicemail. */
  redirectCall(callSid: string, content: CallContent): Promise<CallUpdate>;
}

export type CallUpdate =
  | { kind: 'updated'; status: TwilioCallStatus }
  | { kind: 'not-found' }
  | { kind: 'invalid-state'; message: string };

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** Structured logging; the Powertools logger fits it. Data goes in `context`, never in the message. */
export interface Log {
  debug(message: string, ...context: LogContext[]): void;
  info(message: string, ...context: LogContext[]): void;
  warn(message: string, ...context: LogContext[]): void;
  error(message: string, ...context: LogContext[]): void;
}

// biome-ignore lint/suspicious/noExplicitAny: log context is free-form data, serialised as JSON.
export type LogContext = Record<string, any>;
