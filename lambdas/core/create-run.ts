// (core) POST /runs: validate, create the run, put its leads on the queue in chunks.

import { createHash } from 'node:crypto';
import { asciiJson } from './ascii-json.ts';
import { templateProblems } from './call-content.ts';
import {
  type ErrorDetail,
  IdempotencyKeyReusedError,
  LeadsNotQueuedError,
  QueueingIncompleteError,
  ValidationError,
} from './errors.ts';
import { leadsFromRun } from './from-run.ts';
import {
  type Lead,
  type LeadLocator,
  type RunLimits,
  type ValidRunRequest,
  validateRunRequest,
} from './leads.ts';
import { jobIdFor, type NewJob, type RunView, toRunView } from './model.ts';
import type { Clock, LeadChunk, RunIntakeStore, RunQueries, RunReader, WorkQueue } from './ports.ts';
import { type CallPolicy, phoneRulesFor, type RunOptions, validateRunOptions } from './run-options.ts';

/**
 * Leads per queue message. Ingesting a chunk is one DynamoDB transaction (≤ 100 items): the chunk's
 * jobs, a marker for the chunk and the run's counters, so 90 leads leave room to spare.
 */
export const LEADS_PER_CHUNK = 90;

export interface CreateRunDeps {
  /** RunQueries: for `from_run`, the leads of another run. */
  store: RunIntakeStore & RunReader & RunQueries;
  queue: WorkQueue;
  clock: Clock;
  limits: RunLimits;
  /** Bounds on per-run caller id and call content. */
  policy: CallPolicy;
  newRunId: () => string;
}

export interface CreateRunOptions {
  /** The client's Idempotency-Key: a retried POST with the same key and body returns the same run. */
  idempotencyKey?: string | undefined;
  /** How to name a bad lead: JSON paths by default, CSV lines for an upload. */
  locate?: LeadLocator;
}

/** Printable ASCII, as the IETF Idempotency-Key draft and Stripe take it. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

export async function createRun(
  deps: CreateRunDeps,
  requestBody: unknown,
  options: CreateRunOptions = {},
): Promise<RunView> {
  const body = await withLeadsFromRun(deps, requestBody);
  const runOptions = validRunOptions(body, deps.policy, deps.clock.now().getTime());
  const request = validateRunRequest(body, deps.limits, {
    ...(options.locate ? { locate: options.locate } : {}),
    checkTimeZone: runOptions.window !== undefined,
    phoneRules: phoneRulesFor(deps.policy, runOptions),
  });
  const { leads, concurrency } = request;
  checkTemplates(leads, runOptions, options.locate);
  const chunks = chunk(
    leads.map((lead, index) => ({ jobId: jobIdFor(index), ...lead })),
    LEADS_PER_CHUNK,
  );
  let runId = deps.newRunId();
  const createdAt = deps.clock.now().toISOString();
  const claim =
    options.idempotencyKey === undefined
      ? undefined
      : idempotencyClaim(options.idempotencyKey, { ...request, options: runOptions });
  const created = await deps.store.createRun(
    {
      runId,
      createdAt,
      concurrency,
      totalLeads: leads.length,
      options: runOptions,
      chunkCount: chunks.length,
    },
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

  await sendChunks(deps.queue, runId, chunks, options.idempotencyKey !== undefined);

  const run = await deps.store.getRun(runId);
  if (!run) throw new Error('run vanished right after it was created');
  return toRunView(run);
}

/** Every lead has what the run's templates name (or they give a default); throws naming each that does not. */
export function checkTemplates(leads: readonly Lead[], runOptions: RunOptions, locate?: LeadLocator): void {
  const { details, count } = templateProblems(leads, runOptions, locate);
  if (count === 0) return;
  const more = count > details.length ? ` (the first ${details.length} are listed)` : '';
  throw new ValidationError(
    `${count} lead(s) do not fit the run's TwiML template${more}; nothing was created.`,
    details,
  );
}

/** A body with `from_run` becomes one with those leads; any other body is left as it is. */
async function withLeadsFromRun(deps: CreateRunDeps, body: unknown): Promise<unknown> {
  if (typeof body !== 'object' || body === null || !('from_run' in body)) return body;
  const { from_run: fromRun, ...rest } = body as Record<string, unknown>;
  if ('leads' in rest) {
    throw new ValidationError('Give "leads" or "from_run", not both; nothing was created.', [
      { field: 'from_run', message: 'not allowed together with leads' },
    ]);
  }
  return { ...rest, leads: await leadsFromRun(deps.store, fromRun, deps.limits.maxLeads) };
}

/**
 * Bytes of jobs per queue message (their ASCII-escaped JSON, as the queue writes it): well under SQS's
 * 256 KiB per message, whatever the leads hold (a lead's fields take at most 2 KB of UTF-8, which
 * escaping can triple).
 */
export const CHUNK_BYTES = 200 * 1024;

/**
 * Splits jobs into queue messages of at most `size` jobs and CHUNK_BYTES bytes, numbered from `first`
 * (an append continues the run's numbering).
 */
export function chunk(jobs: NewJob[], size: number, first = 0): LeadChunk[] {
  const chunks: LeadChunk[] = [];
  let current: NewJob[] = [];
  let bytes = 0;
  for (const job of jobs) {
    const jobBytes = asciiJson(job).length + 1; // the comma between jobs
    if (current.length > 0 && (current.length >= size || bytes + jobBytes > CHUNK_BYTES)) {
      chunks.push({ chunk: first + chunks.length, jobs: current });
      current = [];
      bytes = 0;
    }
    current.push(job);
    bytes += jobBytes;
  }
  if (current.length > 0) chunks.push({ chunk: first + chunks.length, jobs: current });
  return chunks;
}

/**
 * Puts the chunks on the queue; when some do not get there, says so truthfully (which run, how many
 * leads are known queued, whether a retry with the same key finishes it) instead of a bare failure.
 */
export async function sendChunks(
  queue: WorkQueue,
  runId: string,
  chunks: LeadChunk[],
  retryable: boolean,
): Promise<void> {
  try {
    await queue.sendLeadChunks(runId, chunks);
  } catch (error) {
    const leads = chunks.reduce((n, c) => n + c.jobs.length, 0);
    const queued = error instanceof LeadsNotQueuedError ? error.queuedLeads : 0;
    throw new QueueingIncompleteError(runId, queued, leads, retryable, { cause: error });
  }
}

/** Every field a run request may carry; anything else is refused (a misspelt option must not pass). */
const RUN_REQUEST_FIELDS = [
  'leads',
  'concurrency',
  'retry',
  'window',
  'from',
  'twiml_url',
  'twiml',
  'phone_types',
  'start_at',
  'expires_at',
  'pause_when',
  'frequency_cap',
  'opt_out',
  'machine_detection',
  'voicemail_twiml',
  'voicemail_url',
  'on_machine',
];

/** The run options of a request body; throws naming every bad field. */
function validRunOptions(body: unknown, policy: CallPolicy, nowMs: number): RunOptions {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return {};
  const details: ErrorDetail[] = Object.keys(body)
    .filter((key) => !RUN_REQUEST_FIELDS.includes(key))
    .map((field) => ({ field, message: `unknown field; expected ${RUN_REQUEST_FIELDS.join(', ')}` }));
  const runOptions = validateRunOptions(body as Record<string, unknown>, policy, details, nowMs);
  if (details.length > 0) {
    throw new ValidationError(`${details.length} run option(s) are invalid; nothing was created.`, details);
  }
  return runOptions;
}

function idempotencyClaim(key: string, request: ValidRunRequest & { options: RunOptions }) {
  return claimFor(key, request);
}

/** An Idempotency-Key with the fingerprint of the request it came with; throws on a malformed key. */
export function claimFor(key: string, request: unknown) {
  if (!IDEMPOTENCY_KEY.test(key)) {
    throw new ValidationError('The Idempotency-Key header must be 1–255 printable ASCII characters.', [
      { field: 'Idempotency-Key', message: 'expected 1–255 printable ASCII characters' },
    ]);
  }
  const fingerprint = createHash('sha256').update(JSON.stringify(request)).digest('base64url');
  return { key, fingerprint };
}
