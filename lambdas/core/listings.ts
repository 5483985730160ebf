// (core) GET /runs and GET /runs/{run_id}/calls: pages of runs (newest first) and of a run's leads
// (in lead order), with an opaque cursor. Phone numbers are masked unless the caller asks for them.

import { type CallView, PAGE_DEFAULT, PAGE_MAX } from './api-schemas.ts';
import { type ErrorDetail, NotFoundError, ValidationError } from './errors.ts';
import { maskPhone } from './leads.ts';
import { type Job, type RunView, toRunView } from './model.ts';
import type { RunQueries, RunReader } from './ports.ts';
import { JOB_STATES } from './states.ts';

export type { CallView } from './api-schemas.ts';

type Query = Record<string, string | undefined> | null | undefined;

/** An outcome as dialgate writes them: Twilio's (`no-answer`) or its own (`frequency_capped`). */
const OUTCOME = /^[a-z][a-z_-]{0,39}$/;

export async function listRuns(
  store: RunQueries,
  query: Query,
): Promise<{ runs: RunView[]; next_cursor: string | null }> {
  const details: ErrorDetail[] = [];
  const limit = pageLimit(query?.limit, details);
  if (details.length > 0) throw new ValidationError('Invalid list parameters.', details);
  const page = await store.listRuns({ limit, cursor: query?.cursor });
  return { runs: page.items.map(toRunView), next_cursor: page.nextCursor ?? null };
}

export async function listCalls(
  store: RunReader & RunQueries,
  runId: string,
  query: Query,
): Promise<{ calls: CallView[]; next_cursor: string | null }> {
  const details: ErrorDetail[] = [];
  const limit = pageLimit(query?.limit, details);
  const statuses = (query?.status ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const unknown = statuses.filter((s) => !(JOB_STATES as readonly string[]).includes(s));
  if (unknown.length > 0) {
    details.push({
      field: 'status',
      message: `unknown status ${unknown.join(', ')}; expected ${JOB_STATES.join(', ')}`,
    });
  }
  const outcomes = (query?.outcome ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const badOutcomes = outcomes.filter((s) => !OUTCOME.test(s));
  if (badOutcomes.length > 0) {
    details.push({
      field: 'outcome',
      message: 'expected outcomes with commas, e.g. suppressed,frequency_capped or busy,no-answer',
    });
  }
  const reveal = query?.reveal_phone;
  if (reveal !== undefined && reveal !== 'true' && reveal !== 'false') {
    details.push({ field: 'reveal_phone', message: 'expected true or false' });
  }
  if (details.length > 0) throw new ValidationError('Invalid list parameters.', details);

  if (!(await store.getRunRecord(runId))) throw new NotFoundError(`No run with id "${runId}".`);
  const page = await store.listJobs(runId, {
    limit,
    cursor: query?.cursor,
    ...(statuses.length > 0 ? { statuses } : {}),
    ...(outcomes.length > 0 ? { outcomes } : {}),
  });
  return {
    calls: page.items.map((job) => toCallView(job, reveal === 'true')),
    next_cursor: page.nextCursor ?? null,
  };
}

export function toCallView(job: Job, revealPhone: boolean): CallView {
  return {
    job_id: job.jobId,
    phone: revealPhone ? job.phone : maskPhone(job.phone),
    status: job.status,
    attempts: job.attempt,
    outcome: job.outcome ?? null,
    error_code: job.errorCode ?? null,
    call_sid: job.callSid ?? null,
    answered_by: job.answeredBy ?? null,
    queued_at: job.queuedAt,
    dialed_at: job.dialedAt ?? null,
    answered_at: job.answeredAt ?? null,
    ended_at: job.endedAt ?? null,
    next_attempt_at: job.status === 'queued' && job.notBefore ? new Date(job.notBefore).toISOString() : null,
    attributes: job.attributes,
  };
}

function pageLimit(raw: string | undefined, details: ErrorDetail[]): number {
  if (raw === undefined) return PAGE_DEFAULT;
  const limit = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(limit >= 1 && limit <= PAGE_MAX)) {
    details.push({ field: 'limit', message: `expected a whole number from 1 to ${PAGE_MAX}` });
    return PAGE_DEFAULT;
  }
  return limit;
}
