// (core) The ports: what the core needs from storage, the queue and the telephony provider.
// Adapters in lambdas/adapters implement them against DynamoDB, SQS and Twilio; tests may wire
// emulator-backed or in-memory ones. Nothing here knows about AWS or Twilio.

import type { Job, NewJob, Run } from './model.ts';
import type { FinalState, LiveState, TwilioCallStatus } from './states.ts';

export interface NewRun {
  runId: string;
  createdAt: string;
  concurrency: number;
  totalLeads: number;
}

export interface QueuedJob {
  jobId: string;
  phone: string;
  /** Attempts made before this one. */
  attempt: number;
}

export type AcquireResult =
  /** The slot is held by this job and attempt; the job is `dialing`. */
  | 'acquired'
  /** No free slot, or the run is not dialing (paused, canceled): stop filling. */
  | 'no-slot'
  /** Another dispatcher took this job first (or the index was stale): try the next one. */
  | 'job-taken';

export interface Release {
  runId: string;
  jobId: string;
  attempt: number;
  /** The state the holder is known to be in; the write is conditional on it. */
  from: LiveState;
  /** A final state, or `queued` when the call was never placed (Twilio 429) and will be retried. */
  to: FinalState | 'queued';
  outcome?: string;
  errorCode?: number;
  callSid?: string;
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

export interface RunStore {
  /** Creates the run; with a claim, atomically with it, so that one key can only ever make one run. */
  createRun(run: NewRun, idempotency?: IdempotencyClaim): Promise<CreateRunResult>;
  getRun(runId: string): Promise<Run | undefined>;
  /** Writes a chunk's jobs and counts them, once: a redelivered chunk changes nothing. */
  ingestChunk(runId: string, chunk: number, jobs: NewJob[], at: string): Promise<'ingested' | 'duplicate'>;
  /** The next queued jobs in dialing order; may be stale, which `acquireSlot` detects. */
  nextQueuedJobs(runId: string, limit: number): Promise<QueuedJob[]>;
  /** One transaction: `active < concurrency` increment, holder recorded, job queued → dialing. */
  acquireSlot(runId: string, job: QueuedJob, at: string): Promise<AcquireResult>;
  recordCallSid(runId: string, jobId: string, attempt: number, callSid: string): Promise<void>;
  /** dialing → calling, on the holder and the job, conditional on both being where we think. */
  markCalling(runId: string, jobId: string, attempt: number, at: string): Promise<'applied' | 'stale'>;
  /** One transaction: holder removed and `active` decremented only if the holder is there; job moved. */
  releaseSlot(release: Release): Promise<ReleaseResult>;
  getJob(runId: string, jobId: string): Promise<Job | undefined>;
  /** Runs that are not completed yet: the only ones that can hold a slot or have a lead to dial. */
  listOpenRuns(): Promise<string[]>;
  /** Marks a run closed, only if every lead is ingested and none is queued or live. */
  closeRun(runId: string): Promise<'closed' | 'still-open'>;
}

export interface WorkQueue {
  /** Puts lead chunks on the queue for ingestion. */
  sendLeadChunks(runId: string, chunks: LeadChunk[]): Promise<void>;
  /** Asks a dispatcher to fill the run's free slots, now or after `delaySeconds`. */
  requestDispatch(runId: string, delaySeconds?: number): Promise<void>;
}

export interface LeadChunk {
  chunk: number;
  jobs: NewJob[];
}

/** The messages on the work queue. */
export type WorkMessage =
  | { type: 'ingest'; runId: string; chunk: number; jobs: NewJob[] }
  | { type: 'dispatch'; runId: string };

export interface CallRequest {
  to: string;
  from: string;
  statusCallbackUrl: string;
  /** Seconds to let it ring before Twilio gives up (`no-answer`). */
  ringTimeoutSeconds: number;
  /** Longest the call may last once answered. */
  timeLimitSeconds: number;
  content: { twimlUrl: string } | { twiml: string };
}

export type CallResult =
  | { kind: 'created'; callSid: string; status: TwilioCallStatus }
  /** Twilio refused the call for good (invalid or unreachable number, permissions): fail the job. */
  | { kind: 'rejected'; code: number | undefined; message: string }
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
  fetchCall(callSid: string): Promise<{ sid: string; status: TwilioCallStatus } | undefined>;
  /** Calls to `to` created since `startedAfter` (for a call whose Sid was never saved). */
  findCalls(query: { to: string; startedAfter: Date }): Promise<{ sid: string; status: TwilioCallStatus }[]>;
}

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
