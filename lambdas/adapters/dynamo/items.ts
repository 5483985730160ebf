// (adapter) Items to and from the core's model: what a run, a job and a queued job look like in the
// table. Keys come from the table schema's `keys`; nothing else in the adapter builds an item.

import type { Job, NewJob, Run, RunRecord } from '../../core/model.ts';
import type { NewRun, QueuedJob } from '../../core/ports.ts';
import type { RunOptions } from '../../core/run-options.ts';
import { keys, OPEN_RUNS, RUN_LIST, TABLE_SCHEMA } from '../../definitions/table-schema.ts';
import { CARRIED_ON_RUN_ITEM } from './run-slots.ts';

export type JobItem = Record<string, unknown>;

/** How a chunk's jobs are written: queued, or (a chunk of a run canceled before it was claimed) canceled. */
export type IngestMode = 'queued' | 'canceled';

/** A new run: running, nothing counted yet, in the open-runs and runs indexes. */
export function newRunItem(run: NewRun): Record<string, unknown> {
  return {
    ...keys.run(run.runId),
    entity: 'run',
    runId: run.runId,
    createdAt: run.createdAt,
    concurrency: run.concurrency,
    control: 'running',
    totalLeads: run.totalLeads,
    ingestedLeads: 0,
    active: 0,
    queued: 0,
    completed: 0,
    failed: 0,
    canceled: 0,
    outcomes: {},
    options: run.options ?? {},
    chunkCount: run.chunkCount ?? 0,
    // The schedule as numbers the acquire transaction compares with its own time (ms since the epoch).
    ...(run.options?.startAt ? { scheduledFor: Date.parse(run.options.startAt) } : {}),
    ...(run.options?.expiresAt ? { expiresAtMs: Date.parse(run.options.expiresAt) } : {}),
    [TABLE_SCHEMA.openRunsIndex.partitionKey]: OPEN_RUNS,
    [TABLE_SCHEMA.runsIndex.partitionKey]: RUN_LIST,
  };
}

/** A new job: queued (in the queued index), or canceled for a chunk of a canceled run. */
export function newJobItem(runId: string, job: NewJob, at: string, mode: IngestMode): JobItem {
  return {
    ...keys.job(runId, job.jobId),
    entity: 'job',
    runId,
    jobId: job.jobId,
    phone: job.phone,
    attributes: job.attributes,
    attempt: 0,
    queuedAt: at,
    ...(job.timeZone ? { timeZone: job.timeZone } : {}),
    ...(mode === 'canceled'
      ? { status: 'canceled', outcome: 'canceled', endedAt: at }
      : {
          status: 'queued',
          ...(job.notBefore ? { notBefore: job.notBefore } : {}),
          [TABLE_SCHEMA.queuedIndex.partitionKey]: runId,
          [TABLE_SCHEMA.queuedIndex.sortKey]: keys.queuedKey(job.notBefore ?? 0, job.jobId),
        }),
  };
}

/** A run's own record from its item: its counters and settings, not its holders. */
export function runRecordFromItem(item: Record<string, unknown>): RunRecord {
  return {
    runId: String(item.runId),
    createdAt: String(item.createdAt),
    concurrency: Number(item.concurrency),
    control: item.control as Run['control'],
    totalLeads: Number(item.totalLeads),
    ingestedLeads: Number(item.ingestedLeads),
    active: Number(item.active),
    queued: Number(item.queued),
    completed: Number(item.completed),
    failed: Number(item.failed),
    canceled: Number(item.canceled),
    outcomes: (item.outcomes ?? {}) as Run['outcomes'],
    options: (item.options ?? {}) as RunOptions,
    chunkCount: Number(item.chunkCount ?? 0),
    ...(typeof item.controlAt === 'string' ? { controlAt: item.controlAt } : {}),
    ...(item.hangup === true ? { hangup: true } : {}),
    ...(typeof item.pauseReason === 'string' ? { pauseReason: item.pauseReason } : {}),
    ...(typeof item.scheduledFor === 'number' ? { scheduledFor: item.scheduledFor } : {}),
  };
}

export function jobFromItem(item: Record<string, unknown>): Job {
  const {
    pk: _pk,
    sk: _sk,
    entity: _entity,
    queuedRun: _qr,
    queuedKey: _qk,
    liveRun: _lr,
    liveKey: _lk,
    timeZone: _tz,
    carriedSlot,
    ...rest
  } = item;
  const job = rest as unknown as Job;
  // The run item's own counter is marked `run` (a number is one of the run's counters).
  if (carriedSlot !== undefined)
    job.carriedSlot = carriedSlot === CARRIED_ON_RUN_ITEM ? null : Number(carriedSlot);
  return job;
}

export function queuedJobFromItem(item: Record<string, unknown>): QueuedJob {
  const queuedKey = String(item[TABLE_SCHEMA.queuedIndex.sortKey]);
  return {
    jobId: String(item.sk).slice('JOB#'.length),
    phone: String(item.phone),
    attempt: Number(item.attempt),
    notBefore: Number(queuedKey.slice(0, queuedKey.indexOf('#'))),
    ...(typeof item.timeZone === 'string' ? { timeZone: item.timeZone } : {}),
  };
}
