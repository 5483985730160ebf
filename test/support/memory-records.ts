// The in-memory store's records and helpers: runs and jobs as it keeps them (with what the DynamoDB
// adapter keeps beside them: the open-runs flag, the wake-up time, the queue key), copies for reads,
// and pages with opaque cursors.

import { ValidationError } from '../../lambdas/core/errors.ts';
import type { Job, NewJob, Run } from '../../lambdas/core/model.ts';
import type { Page, PageRequest } from '../../lambdas/core/ports.ts';
import { keys } from '../../lambdas/definitions/table-schema.ts';

export interface StoredRun extends Run {
  open: boolean;
  wakeAt?: number;
}

export interface StoredJob extends Job {
  /** Set while queued: the job's place in the queue (the DynamoDB adapter's sparse index key). */
  queuedKey?: string;
  timeZone?: string;
}

export interface Account {
  /** Live calls per shard counter (lambdas/core/account-shards.ts). */
  shards: Map<number, number>;
  nextCreateAt: number;
  waiting: Set<string>;
}

export const copy = <T>(value: T): T => structuredClone(value);

/** A job as ingestion writes it: queued (with its place in the queue), or canceled in a canceled run. */
export function newJob(runId: string, job: NewJob, at: string, canceled: boolean): StoredJob {
  const base = {
    runId,
    jobId: job.jobId,
    phone: job.phone,
    attributes: copy(job.attributes),
    attempt: 0,
    queuedAt: at,
    ...(job.timeZone ? { timeZone: job.timeZone } : {}),
  };
  return canceled
    ? { ...base, status: 'canceled', outcome: 'canceled', endedAt: at }
    : {
        ...base,
        status: 'queued',
        ...(job.notBefore ? { notBefore: job.notBefore } : {}),
        queuedKey: keys.queuedKey(job.notBefore ?? 0, job.jobId),
      };
}

/** Not completed: something is still queued, live or on its way (the adapter's condition). */
export function notCompleted(run: Run): boolean {
  return run.queued > 0 || run.active > 0 || run.ingestedLeads < run.totalLeads;
}

export function runView(run: StoredRun): Run {
  const { open: _open, wakeAt: _wake, ...rest } = copy(run);
  return rest;
}

/** A page after the cursor's key; the cursor is opaque to the caller, and checked like the adapter's. */
export function pageOf<T>(entries: [string, T][], page: PageRequest): Page<T> {
  let start = 0;
  if (page.cursor !== undefined) {
    const after = decodeCursor(page.cursor);
    start = entries.findIndex(([key]) => key === after) + 1;
    if (start === 0) {
      throw new ValidationError('The cursor is not one this list gave out.', [
        { field: 'cursor', message: 'pass the next_cursor of the previous page unchanged' },
      ]);
    }
  }
  const items = entries.slice(start, start + page.limit);
  const last = entries[start + page.limit - 1];
  return {
    items: items.map(([, item]) => item),
    ...(start + page.limit < entries.length && last ? { nextCursor: encodeCursor(last[0]) } : {}),
  };
}

function encodeCursor(key: string): string {
  return Buffer.from(JSON.stringify({ after: key })).toString('base64url');
}

function decodeCursor(cursor: string): string | undefined {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { after?: unknown };
    return typeof value.after === 'string' ? value.after : undefined;
  } catch {
    return undefined;
  }
}
