// (core) POST /runs/{run_id}/leads: more leads for a run that is still going. The run's lead count
// grows by the whole batch in one conditional write before any of it is queued, so the run cannot be
// reported completed while appended leads are on their way, and an append to a canceled or
// completed run is refused whole.

import { checkTemplates, chunk, claimFor, LEADS_PER_CHUNK, sendChunks } from './create-run.ts';
import {
  ConflictError,
  IdempotencyKeyReusedError,
  NotFoundError,
  PayloadTooLargeError,
  ValidationError,
} from './errors.ts';
import { type LeadLocator, type RunLimits, validateLeads } from './leads.ts';
import { jobIdFor, type RunView, runStatus, toRunView } from './model.ts';
import type { Clock, RunIntakeStore, RunReader, WorkQueue } from './ports.ts';
import { type CallPolicy, phoneRulesFor } from './run-options.ts';

export interface AppendLeadsDeps {
  store: RunIntakeStore & RunReader;
  queue: WorkQueue;
  clock: Clock;
  limits: Pick<RunLimits, 'maxLeads'>;
  /** The deployment's bounds: its default country and allowed number types are read here. */
  policy: CallPolicy;
}

export interface AppendResult {
  run: RunView;
  appended: number;
  /** The job id of the first appended lead; the others follow in order. */
  first_job_id: string;
}

export async function appendLeads(
  deps: AppendLeadsDeps,
  runId: string,
  body: unknown,
  options: { locate?: LeadLocator; idempotencyKey?: string | undefined } = {},
): Promise<AppendResult> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ValidationError('The request body must be a JSON object.', [
      { field: 'body', message: 'expected a JSON object with "leads"' },
    ]);
  }
  const extra = Object.keys(body).filter((key) => key !== 'leads');
  if (extra.length > 0) {
    throw new ValidationError('Appended leads take the run’s own options; only "leads" may be given.', [
      ...extra.map((field) => ({ field, message: 'not accepted when appending leads' })),
    ]);
  }
  const before = await deps.store.getRunRecord(runId);
  if (!before) throw new NotFoundError(`No run with id "${runId}".`);
  const leads = validateLeads((body as { leads?: unknown }).leads, deps.limits, {
    ...(options.locate ? { locate: options.locate } : {}),
    checkTimeZone: before.options.window !== undefined,
    phoneRules: phoneRulesFor(deps.policy, before.options),
  });
  // Appended leads take the run's content: they must have what its templates name.
  checkTemplates(leads, before.options, options.locate);

  // Chunks are cut by count and by size, so they are cut before their numbers are reserved; the
  // reserved ids then replace the provisional ones, chunk for chunk (ids of one length: same sizes).
  const provisional = chunk(
    leads.map((lead, index) => ({ jobId: jobIdFor(before.totalLeads + index), ...lead })),
    LEADS_PER_CHUNK,
  );
  const claim =
    options.idempotencyKey === undefined ? undefined : claimFor(options.idempotencyKey, { runId, leads });
  const reserved = await deps.store.reserveLeads(runId, {
    leads: leads.length,
    chunks: provisional.length,
    maxLeads: deps.limits.maxLeads,
    ...(claim ? { idempotency: claim } : {}),
  });
  if (reserved.kind === 'existing' && reserved.fingerprint !== claim?.fingerprint) {
    throw new IdempotencyKeyReusedError('This Idempotency-Key was already used with a different request.');
  }
  if (reserved.kind === 'not-found') throw new NotFoundError(`No run with id "${runId}".`);
  if (reserved.kind === 'refused') {
    const status = runStatus(reserved.run);
    if (status === 'running' || status === 'paused' || status === 'scheduled') {
      throw new PayloadTooLargeError(`A run takes at most ${deps.limits.maxLeads} leads.`, [
        {
          field: 'leads',
          message: `the run has ${reserved.run.totalLeads}; ${leads.length} more would pass ${deps.limits.maxLeads}`,
        },
      ]);
    }
    throw new ConflictError(`Cannot add leads to a run that is ${status}.`);
  }

  let next = reserved.firstIndex;
  const chunks = provisional.map((part, index) => ({
    chunk: reserved.firstChunk + index,
    jobs: part.jobs.map((job) => ({ ...job, jobId: jobIdFor(next++) })),
  }));
  // A retry (kind 'existing') queues the same chunks again under the places first reserved: ingestion
  // counts each chunk once, so an append that failed half-way is finished and nothing is doubled.
  await sendChunks(deps.queue, runId, chunks, claim !== undefined);
  const run = await deps.store.getRun(runId);
  if (!run) throw new Error('run vanished during an append');
  return { run: toRunView(run), appended: leads.length, first_job_id: jobIdFor(reserved.firstIndex) };
}
