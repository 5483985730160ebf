// (adapter) RunStore on DynamoDB: one table (lambdas/definitions/table-schema.ts), one class that
// implements every role of the port by handing each to the part that owns it (lambdas/adapters/dynamo):
// runs.ts (run items), ingest.ts (lead chunks), queue.ts (queued jobs, wake-ups), slots.ts (the
// semaphore), account.ts (account-wide limits), controls.ts (pause, resume, cancel, start, expiry),
// breaker.ts (the failure breaker's window), listings.ts (pages for clients), suppressions.ts (the
// do-not-call list); table.ts holds the conditional-write plumbing and items.ts the item mapping.

import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Job, NewJob, Run, RunControl, RunRecord, SlotCounts } from '../core/model.ts';
import type {
  AccountLimits,
  AcquireResult,
  BreakerWindow,
  CarriedSlot,
  ControlChange,
  ControlResult,
  CreateRunResult,
  IdempotencyClaim,
  JobPageRequest,
  LeadReservation,
  NewRun,
  Page,
  PageRequest,
  QueuedJob,
  RecipientChecks,
  Release,
  ReleaseResult,
  ReservationResult,
  RunStore,
  Suppression,
  WaveResult,
} from '../core/ports.ts';
import { DynamoAccount } from './dynamo/account.ts';
import { DynamoBreaker } from './dynamo/breaker.ts';
import { DynamoControls } from './dynamo/controls.ts';
import { DynamoIngest, type IngestTiming } from './dynamo/ingest.ts';
import { DynamoListings } from './dynamo/listings.ts';
import { DynamoQueue } from './dynamo/queue.ts';
import { DynamoRuns } from './dynamo/runs.ts';
import { DynamoSlots } from './dynamo/slots.ts';
import { DynamoSuppressions } from './dynamo/suppressions.ts';
import { DynamoTable } from './dynamo/table.ts';

export interface DynamoRunStoreOptions {
  tableName: string;
  /** Backoff between retries of a transaction cancelled by a conflict; injectable for tests. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** The account item's sort key: one per deployment; tests use their own. */
  accountName?: string;
  /**
   * The client ingest sends its BatchWriteItem through (default: the store's own client). Either
   * way each batch is sent once: the SDK's retries are refused for it (`sendOnce`), as an unknown
   * outcome must never be resent blindly.
   */
  batchWriter?: DynamoDBClient;
  /** Wall clock, ms since the epoch: a chunk claim's time and age. Tests move it. */
  now?: () => number;
  /** Ingest's ages and windows (defaults in dynamo/ingest.ts). Tests shorten them. */
  ingestTiming?: Partial<IngestTiming>;
  /**
   * Slots per counter of a run whose cap is split over several (default RUN_SLOT_SHARD_SIZE, in
   * dynamo/run-slots.ts). Tests make it small, so that small caps are split too.
   */
  runSlotShardSize?: number;
}

export class DynamoRunStore implements RunStore {
  private readonly runs: DynamoRuns;
  private readonly ingest: DynamoIngest;
  private readonly queue: DynamoQueue;
  private readonly slots: DynamoSlots;
  private readonly account: DynamoAccount;
  private readonly controls: DynamoControls;
  private readonly listings: DynamoListings;
  private readonly breaker: DynamoBreaker;
  private readonly suppressions: DynamoSuppressions;

  constructor(client: DynamoDBClient, options: DynamoRunStoreOptions) {
    const table = new DynamoTable(client, options);
    this.runs = new DynamoRuns(table, options.runSlotShardSize);
    this.ingest = new DynamoIngest(table, this.runs, options.ingestTiming);
    this.queue = new DynamoQueue(table);
    this.account = new DynamoAccount(table, options.accountName);
    this.slots = new DynamoSlots(table, this.runs, this.account);
    this.controls = new DynamoControls(table, this.runs, this.queue);
    this.listings = new DynamoListings(table, this.runs);
    this.breaker = new DynamoBreaker(table);
    this.suppressions = new DynamoSuppressions(table);
  }

  // RunReader, RunIntakeStore, OpenRunStore
  createRun(run: NewRun, idempotency?: IdempotencyClaim): Promise<CreateRunResult> {
    return this.runs.createRun(run, idempotency);
  }
  getRun(runId: string): Promise<Run | undefined> {
    return this.runs.getRun(runId);
  }
  getRunRecord(runId: string): Promise<RunRecord | undefined> {
    return this.runs.getRunRecord(runId);
  }
  getRunControl(runId: string): Promise<RunControl | undefined> {
    return this.runs.getRunControl(runId);
  }
  claimedCalls(callSids: readonly string[]): Promise<Set<string>> {
    return this.runs.claimedCalls(callSids);
  }
  getJob(runId: string, jobId: string): Promise<Job | undefined> {
    return this.runs.getJob(runId, jobId);
  }
  slotCounts(runId: string): Promise<SlotCounts> {
    return this.runs.slotCounts(runId);
  }
  reserveLeads(runId: string, request: LeadReservation): Promise<ReservationResult> {
    return this.runs.reserveLeads(runId, request);
  }
  listOpenRuns(): Promise<string[]> {
    return this.runs.listOpenRuns();
  }
  closeRun(runId: string): Promise<'closed' | 'still-open'> {
    return this.runs.closeRun(runId);
  }
  carriedSlots(runId: string, everyJob: boolean): Promise<(CarriedSlot & { endedAt: string })[]> {
    return this.runs.carriedSlots(runId, everyJob);
  }

  // IngestStore
  ingestChunk(runId: string, chunk: number, jobs: NewJob[], at: string): Promise<'ingested' | 'duplicate'> {
    return this.ingest.ingestChunk(runId, chunk, jobs, at);
  }

  // QueueStore, WakeStore
  nextQueuedJobs(runId: string, limit: number, dueBy?: number): Promise<QueuedJob[]> {
    return this.queue.nextQueuedJobs(runId, limit, dueBy);
  }
  earliestQueued(runId: string): Promise<number | undefined> {
    return this.queue.earliestQueued(runId);
  }
  deferJob(runId: string, job: QueuedJob, notBefore: number): Promise<void> {
    return this.queue.deferJob(runId, job, notBefore);
  }
  endQueuedJob(runId: string, job: QueuedJob, outcome: string, at: string): Promise<'ended' | 'stale'> {
    return this.queue.endQueuedJob(runId, job, outcome, at);
  }
  claimWake(runId: string, atMs: number, nowMs: number): Promise<boolean> {
    return this.queue.claimWake(runId, atMs, nowMs);
  }
  addWaitingRun(runId: string): Promise<void> {
    return this.account.addWaitingRun(runId);
  }
  takeWaitingRun(except: string): Promise<string | undefined> {
    return this.account.takeWaitingRun(except);
  }
  hasWaitingRun(except: string): Promise<boolean> {
    return this.account.hasWaitingRun(except);
  }

  // SlotStore
  acquireSlot(
    runId: string,
    job: QueuedJob,
    at: string,
    account?: AccountLimits,
    checks?: RecipientChecks,
  ): Promise<AcquireResult> {
    return this.slots.acquireSlot(runId, job, at, account, checks);
  }
  acquireSlots(
    runId: string,
    concurrency: number,
    jobs: QueuedJob[],
    at: string,
    account?: Pick<AccountLimits, 'maxConcurrentCalls'>,
    checks?: RecipientChecks,
  ): Promise<WaveResult> {
    return this.slots.acquireSlots(runId, concurrency, jobs, at, account, checks);
  }
  recordCallSid(runId: string, jobId: string, attempt: number, callSid: string): Promise<void> {
    return this.slots.recordCallSid(runId, jobId, attempt, callSid);
  }
  markCalling(
    runId: string,
    jobId: string,
    attempt: number,
    at: string,
    callSid?: string,
  ): Promise<'applied' | 'stale'> {
    return this.slots.markCalling(runId, jobId, attempt, at, callSid);
  }
  releaseSlot(release: Release): Promise<ReleaseResult> {
    return this.slots.releaseSlot(release);
  }
  dropCarry(carry: CarriedSlot): Promise<'dropped' | 'gone'> {
    return this.slots.dropCarry(carry);
  }
  recordAnsweredBy(runId: string, jobId: string, attempt: number, answeredBy: string) {
    return this.slots.recordAnsweredBy(runId, jobId, attempt, answeredBy);
  }

  // RunControlStore
  setControl(runId: string, change: ControlChange): Promise<ControlResult> {
    return this.controls.setControl(runId, change);
  }
  cancelQueuedJobs(runId: string, limit: number, at: string): Promise<number> {
    return this.controls.cancelQueuedJobs(runId, limit, at);
  }
  startScheduledRun(runId: string, nowMs: number): Promise<boolean> {
    return this.controls.startScheduledRun(runId, nowMs);
  }
  expireQueuedJobs(runId: string, limit: number, at: string, nowMs: number): Promise<number> {
    return this.controls.expireQueuedJobs(runId, limit, at, nowMs);
  }

  // BreakerStore
  countEndedAttempt(
    runId: string,
    epoch: string,
    failed: boolean,
    size: number,
  ): Promise<BreakerWindow | undefined> {
    return this.breaker.countEndedAttempt(runId, epoch, failed, size);
  }

  // SuppressionStore
  putSuppression(suppression: Suppression): Promise<void> {
    return this.suppressions.putSuppression(suppression);
  }
  putSuppressions(suppressions: Suppression[]): Promise<void> {
    return this.suppressions.putSuppressions(suppressions);
  }
  getSuppression(phone: string, nowMs: number): Promise<Suppression | undefined> {
    return this.suppressions.getSuppression(phone, nowMs);
  }
  suppressedAmong(phones: readonly string[], nowMs: number): Promise<Set<string>> {
    return this.suppressions.suppressedAmong(phones, nowMs);
  }
  deleteSuppression(phone: string, nowMs: number): Promise<'deleted' | 'absent'> {
    return this.suppressions.deleteSuppression(phone, nowMs);
  }
  listSuppressions(
    page: PageRequest & { prefix?: string | undefined; nowMs: number },
  ): Promise<Page<Suppression>> {
    return this.suppressions.listSuppressions(page);
  }

  // RunQueries
  listRuns(page: PageRequest): Promise<Page<Run>> {
    return this.listings.listRuns(page);
  }
  listJobs(runId: string, page: JobPageRequest): Promise<Page<Job>> {
    return this.listings.listJobs(runId, page);
  }
}
