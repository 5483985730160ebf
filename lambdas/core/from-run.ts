// (core) `from_run: {run_id, outcomes}` in POST /runs: a new run of another run's leads that ended
// so, read from the table, so that re-running the failures never needs the numbers exported (the
// calls listing masks them).

import { ID } from '../definitions/formats.ts';
import { FROM_RUN_OUTCOMES } from './api-schemas.ts';
import { type ErrorDetail, NotFoundError, ValidationError } from './errors.ts';
import type { Job } from './model.ts';
import type { RunQueries, RunReader } from './ports.ts';
import { FINAL_STATES } from './states.ts';

const PAGE = 100;

/**
 * The leads of run `value.run_id` whose final status or outcome is one of `value.outcomes` (`failed`
 * takes every failed lead: busy, no-answer, failed, rejected and machine ones), in lead order, as a request's
 * `leads` with each lead's own fields. Throws ValidationError naming the field, NotFoundError for an
 * unknown run.
 */
export async function leadsFromRun(
  store: RunReader & RunQueries,
  value: unknown,
  maxLeads: number,
): Promise<Record<string, unknown>[]> {
  const { runId, outcomes } = validFromRun(value);
  if (!(await store.getRunRecord(runId))) throw new NotFoundError(`No run with id "${runId}".`);
  const wanted = new Set(outcomes);
  const matches = (job: Job) =>
    wanted.has(job.status) || (job.outcome !== undefined && wanted.has(job.outcome));
  const leads: Record<string, unknown>[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.listJobs(runId, { limit: PAGE, cursor, statuses: FINAL_STATES });
    for (const job of page.items) if (matches(job)) leads.push({ ...job.attributes, phone: job.phone });
    cursor = page.nextCursor;
    // One past the limit is enough for the request's own size check to refuse it.
  } while (cursor !== undefined && leads.length <= maxLeads);
  if (leads.length === 0) {
    throw new ValidationError(
      `Run ${runId} has no lead that ended ${outcomes.join(' or ')}; nothing was created.`,
      [{ field: 'from_run.outcomes', message: `no lead of run ${runId} ended ${outcomes.join(' or ')}` }],
    );
  }
  return leads;
}

function validFromRun(value: unknown): { runId: string; outcomes: string[] } {
  const details: ErrorDetail[] = [];
  const object = (
    typeof value === 'object' && value !== null && !Array.isArray(value) ? value : {}
  ) as Record<string, unknown>;
  if (object !== value)
    details.push({ field: 'from_run', message: 'expected an object { run_id, outcomes }' });
  for (const key of Object.keys(object))
    if (key !== 'run_id' && key !== 'outcomes')
      details.push({ field: `from_run.${key}`, message: 'unknown field; expected run_id, outcomes' });
  const runId = object.run_id;
  if (object === value && (typeof runId !== 'string' || !ID.test(runId)))
    details.push({ field: 'from_run.run_id', message: 'expected a run id' });
  const outcomes = object.outcomes;
  if (
    object === value &&
    (!Array.isArray(outcomes) ||
      outcomes.length === 0 ||
      !outcomes.every((o) => (FROM_RUN_OUTCOMES as readonly unknown[]).includes(o)))
  ) {
    details.push({
      field: 'from_run.outcomes',
      message: `expected a non-empty list of ${FROM_RUN_OUTCOMES.join(', ')}`,
    });
  }
  if (details.length > 0) throw new ValidationError('"from_run" is invalid; nothing was created.', details);
  return { runId: runId as string, outcomes: outcomes as string[] };
}
