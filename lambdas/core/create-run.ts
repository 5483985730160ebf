// (core) POST /runs: validate, create the run, put its leads on the queue in chunks.

import { createHash } from 'node:crypto';
import { IdempotencyKeyReusedError, ValidationError } from './errors.ts';
import { type RunLimits, type ValidRunRequest, validateRunRequest } from './leads.ts';
import { jobIdFor, type NewJob, type RunView, toRunView } from './model.ts';
import type { Clock, LeadChunk, RunStore, WorkQueue } from './ports.ts';

/**
 * Leads per queue message. Ingesting a chunk is one DynamoDB transaction (≤ 100 items): the chunk's
 * jobs, a marker for the chunk and the run's counters, so 90 leads leave room to spare.
 */
export const LEADS_PER_CHUNK = 90;

export interface CreateRunDeps {
  store: RunStore;
  queue: WorkQueue;
  clock: Clock;
  limits: RunLimits;
  newRunId: () => string;
}

export interface CreateRunOptions {
  /** The client's Idempotency-Key: a retried POST with the same key and body returns the same run. */
  idempotencyKey?: string | undefined;
}

/** Printable ASCII, as the IETF Idempotency-Key draft and Stripe take it. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

export async function createRun(
  deps: CreateRunDeps,
  body: unknown,
  options: CreateRunOptions = {},
): Promise<RunView> {
  const request = validateRunRequest(body, deps.limits);
  const { leads, concurrency } = request;
  let runId = deps.newRunId();
  const createdAt = deps.clock.now().toISOString();
  const claim =
    options.idempotencyKey === undefined ? undefined : idempotencyClaim(options.idempotencyKey, request);
  const created = await deps.store.createRun(
    { runId, createdAt, concurrency, totalLeads: leads.length },
    claim,
  );
  if (created.kind === 'existing') {
    if (created.fingerprint !== claim?.fingerprint) {
      throw new IdempotencyKeyReusedError('This Idempotency-Key was already used with a different request.');
    }
    // A retry: the first attempt may have failed half-way through queueing its leads, so queue them
    // all again. Ingestion is idempotent per chunk, so what already arrived is not counted twice.
    runId = created.runId;
  }

  const jobs: NewJob[] = leads.map((lead, index) => ({ jobId: jobIdFor(index), ...lead }));
  await deps.queue.sendLeadChunks(runId, chunk(jobs, LEADS_PER_CHUNK));

  const run = await deps.store.getRun(runId);
  if (!run) throw new Error('run vanished right after it was created');
  return toRunView(run);
}

export function chunk(jobs: NewJob[], size: number): LeadChunk[] {
  const chunks: LeadChunk[] = [];
  for (let start = 0; start < jobs.length; start += size) {
    chunks.push({ chunk: chunks.length, jobs: jobs.slice(start, start + size) });
  }
  return chunks;
}

function idempotencyClaim(key: string, request: ValidRunRequest) {
  if (!IDEMPOTENCY_KEY.test(key)) {
    throw new ValidationError('The Idempotency-Key header must be 1–255 printable ASCII characters.', [
      { field: 'Idempotency-Key', message: 'expected 1–255 printable ASCII characters' },
    ]);
  }
  const fingerprint = createHash('sha256').update(JSON.stringify(request)).digest('base64url');
  return { key, fingerprint };
}
