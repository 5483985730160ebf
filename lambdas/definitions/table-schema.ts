// (definitions) The one definition of dialgate's table: the CDK stateful stack, the local stack's
// CreateTable and the DynamoDB adapter all read it, so the three cannot drift apart.
// Free of CDK and SDK imports on purpose. Every key attribute is a string.

export interface IndexSchema {
  name: string;
  partitionKey: string;
  sortKey: string;
  /** Attributes copied into the index besides the keys; `ALL` for the whole item. */
  projection: readonly string[] | 'ALL';
}

/** Sparse: only queued jobs carry `queuedRun`, so finding the next lead stays O(1) as a run grows. */
const queuedIndex = {
  name: 'queued',
  partitionKey: 'queuedRun',
  /** `<not-before ms, zero-padded>#<jobId>`: due jobs first, in lead order. */
  sortKey: 'queuedKey',
  /** What the dispatcher needs to place a call, so that it never reads the job item itself. */
  projection: ['phone', 'attempt', 'timeZone'],
} as const satisfies IndexSchema;

/**
 * Sparse: a job carries `liveRun` only while it holds a slot (dialing or calling), so a run's holders
 * are one query, oldest first, however many jobs the run has. The counters stay small scalars on the
 * run item; the holder is the job item itself, written in the transaction that takes the slot.
 */
const liveIndex = {
  name: 'live',
  partitionKey: 'liveRun',
  /** `<slot taken, ISO time>#<jobId>`: oldest holder first. */
  sortKey: 'liveKey',
  /**
   * Keys only: the index is written when a job takes its slot and when it frees it, and never in
   * between. A projected `status` would cost an index write on every answered call; whoever needs a
   * holder's state (the run's view, the reconciler, a cancel) reads the jobs the query names.
   */
  projection: [],
} as const satisfies IndexSchema;

/**
 * Every run, newest first, for GET /runs. Keys only: a run item's counters change on every call,
 * and a keys-only index is written only when a run is created.
 */
const runsIndex = {
  name: 'runs',
  partitionKey: 'runList',
  sortKey: 'createdAt',
  projection: [],
} as const satisfies IndexSchema;

/**
 * Sparse: a run carries `openRuns` until it is completed, so the reconciler visits only runs that
 * can still hold a slot or have leads to dial, however many finished runs the table keeps.
 */
const openRunsIndex = {
  name: 'open-runs',
  partitionKey: 'openRuns',
  sortKey: 'createdAt',
  projection: [],
} as const satisfies IndexSchema;

export const TABLE_SCHEMA = {
  partitionKey: 'pk',
  sortKey: 'sk',
  queuedIndex,
  openRunsIndex,
  runsIndex,
  liveIndex,
  /** The table's stream: each item before and after a write, from which the events are derived. */
  streamViewType: 'NEW_AND_OLD_IMAGES',
  /** Epoch seconds after which DynamoDB deletes the item (idempotency keys expire). */
  timeToLiveAttribute: 'expiresAt',
  /** Every global secondary index, for whoever creates the table. */
  indexes: [queuedIndex, openRunsIndex, runsIndex, liveIndex] as readonly IndexSchema[],
} as const;

/** Key layout, in one place (items know nothing else about how they are keyed). */
export const keys = {
  run: (runId: string) => ({ pk: `RUN#${runId}`, sk: 'RUN' }),
  job: (runId: string, jobId: string) => ({ pk: `RUN#${runId}`, sk: `JOB#${jobId}` }),
  chunk: (runId: string, chunk: number) => ({ pk: `RUN#${runId}`, sk: `CHUNK#${chunk}` }),
  /**
   * One of a high-cap run's slot counters (its cap split over several, so that no item takes every
   * acquire and release of the run). They sort right after the run item, so that the run and its
   * counters are one query (`runAndSlots`).
   */
  runSlots: (runId: string, shard: number) => ({ pk: `RUN#${runId}`, sk: `SLOTS#${shard}` }),
  /** The sort-key range of a run's item and its slot counters, nothing else of the run's partition. */
  runAndSlots: { from: 'RUN', to: 'SLOTS$' },
  /** The failure breaker's window of a run since `epoch` (its last control change, or its creation). */
  breaker: (runId: string, epoch: string) => ({ pk: `RUN#${runId}`, sk: `BREAKER#${epoch}` }),
  idempotency: (key: string) => ({ pk: `IDEMPOTENCY#${key}`, sk: 'IDEMPOTENCY' }),
  /** The runs waiting for an account slot (one per deployment; tests may name others). */
  account: (name = 'LIMITS') => ({ pk: 'ACCOUNT', sk: name }),
  /** One counter of the account-wide cap: each shard its own partition, so none of them is hot. */
  accountShard: (name = 'LIMITS', shard: number) => ({ pk: `ACCOUNT#${name}#${shard}`, sk: 'SHARD' }),
  /**
   * Written when a version that records the account's layouts creates the table (the local stack's and
   * the tests' tables): no layout from before layouts were recorded can be in it, and none is fenced.
   */
  tableOrigin: () => ({ pk: 'TABLE', sk: 'ORIGIN' }),
  /**
   * Which shards the account cap is on (its generation, cap and shard size) and the fenced layouts
   * still holding live calls (lambdas/core/account-shards.ts).
   */
  accountLayout: (name = 'LIMITS') => ({ pk: `ACCOUNT#${name}#LAYOUT`, sk: 'LAYOUT' }),
  /** The account's calls-per-second pace: the next free calls.create time. */
  accountPace: (name = 'LIMITS') => ({ pk: `ACCOUNT#${name}#PACE`, sk: 'PACE' }),
  /**
   * The run's fill lease: which dispatch fills its free slots now (fill-slots.ts). A partition of its
   * own, off the run's busy one.
   */
  fillLease: (runId: string) => ({ pk: `FILL#${runId}`, sk: 'FILL' }),
  /** A Twilio call credited to an attempt found by number (its Sid was lost): one attempt per call. */
  callClaim: (callSid: string) => ({ pk: `CALL#${callSid}`, sk: 'CLAIM' }),
  /**
   * A number's own item (E.164; a partition per number, so that no partition takes every dial's
   * check): its suppression, when it has one, and its calls in the current frequency-cap window
   * (`calls<window index>`). The acquire transaction checks and counts both on this one item. Its key
   * is the one the suppression item had before the counts joined it, so that a deployed table's
   * suppressions stay in force as they are.
   */
  recipient: (phone: string) => ({ pk: `SUPPRESSION#${phone}`, sk: 'SUPPRESSION' }),
  /** The suppression list's entry of a number, for GET /suppressions: one partition, in E.164 order. */
  suppressionEntry: (phone: string) => ({ pk: SUPPRESSION_LIST, sk: phone }),
  /** A live job's place in the live index: oldest holder first. */
  liveKey: (since: string, jobId: string) => `${since}#${jobId}`,
  /** A queued job's place: due time first (zero-padded ms, so strings sort as numbers), then lead order. */
  queuedKey: (notBefore: number, jobId: string) => `${String(notBefore).padStart(15, '0')}#${jobId}`,
} as const;

/** The partition of the suppression list's entries (keys.suppressionEntry). */
export const SUPPRESSION_LIST = 'SUPPRESSIONS';

/** The value of `runList` on every run: GET /runs reads one partition, newest first. */
export const RUN_LIST = 'RUNS';

/** The value of `openRuns` on every open run: one partition, read by one reconciler at a time. */
export const OPEN_RUNS = 'OPEN';
