// (core) POST /runs: validate, create the run, put its leads on the queue in chunks.

import { type RunLimits, validateRunRequest } from './leads.ts';
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

export async function createRun(deps: CreateRunDeps, body: unknown): Promise<RunView> {
  const { leads, concurrency } = validateRunRequest(body, deps.limits);
  const runId = deps.newRunId();
  const createdAt = deps.clock.now().toISOString();
  await deps.store.createRun({ runId, createdAt, concurrency, totalLeads: leads.length });

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
