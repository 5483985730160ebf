// (core) A lead chunk from the queue: its jobs written and counted once (the store sees to
// redeliveries), placed in the run's calling window, leads whose numbers are suppressed ended at once
// (so that the run shows them early; the dial-time check is what guarantees it), then the run's free
// slots filled.

import { isValidTimeZone, nextOpening } from './calling-window.ts';
import { type FillResult, type FillSlotsDeps, fillSlots, SUPPRESSED } from './fill-slots.ts';
import { LEAD_TIME_ZONE } from './leads.ts';
import type { NewJob } from './model.ts';
import type { IngestStore, SuppressionStore } from './ports.ts';
import { armWake } from './wake.ts';

export type IngestChunkDeps = FillSlotsDeps & { store: IngestStore & SuppressionStore };

interface LeadChunkMessage {
  runId: string;
  chunk: number;
  jobs: NewJob[];
}

export async function ingestChunk(
  deps: IngestChunkDeps,
  message: LeadChunkMessage,
  filler?: string,
): Promise<FillResult> {
  const now = deps.clock.now();
  const at = now.toISOString();
  const jobs = await placeInWindow(deps, message.runId, message.jobs, now.getTime());
  const result = await deps.store.ingestChunk(message.runId, message.chunk, jobs, at);
  deps.log.info('lead chunk ingested', {
    runId: message.runId,
    chunk: message.chunk,
    leads: message.jobs.length,
    result,
  });
  // The chunk is safe now. Ending its suppressed leads and filling slots is best-effort here: failing
  // the record for it would only put the chunk through ingestion again and, after repeated failures,
  // park its leads in the DLQ; a suppressed lead left queued is refused at its dial anyway.
  try {
    if (deps.recipients?.suppression) await endSuppressed(deps, message.runId, message.jobs, now);
    return await fillSlots(deps, message.runId, undefined, filler);
  } catch (error) {
    deps.log.warn('filling slots after ingest failed; dispatch requested instead', {
      runId: message.runId,
      error,
    });
    // If even this fails the reconciler re-arms the run on its next pass.
    await deps.queue.requestDispatch(message.runId).catch(() => undefined);
    return { placed: 0 };
  }
}

/** Ends uncalled the chunk's leads whose numbers are suppressed now (those still queued, never dialed). */
async function endSuppressed(deps: IngestChunkDeps, runId: string, jobs: NewJob[], now: Date): Promise<void> {
  const suppressed = await deps.store.suppressedAmong(
    jobs.map((job) => job.phone),
    now.getTime(),
  );
  let ended = 0;
  for (const job of jobs.filter((j) => suppressed.has(j.phone))) {
    const result = await deps.store.endQueuedJob(
      runId,
      { jobId: job.jobId, phone: job.phone, attempt: 0 },
      SUPPRESSED,
      now.toISOString(),
    );
    if (result === 'ended') ended += 1;
  }
  if (ended > 0) deps.log.info('suppressed leads ended at ingest', { runId, leads: ended });
}

/**
 * A fresh chunk of a run with a calling window: each lead gets its time zone (its own, else the
 * run's) and, when the window is closed for it now, its first dial waits for the opening.
 */
async function placeInWindow(
  deps: IngestChunkDeps,
  runId: string,
  jobs: NewJob[],
  now: number,
): Promise<NewJob[]> {
  const window = (await deps.store.getRunRecord(runId))?.options.window;
  if (!window) return jobs;
  let earliest = Number.POSITIVE_INFINITY;
  const placed = jobs.map((job) => {
    const own = job.attributes[LEAD_TIME_ZONE];
    const timeZone = typeof own === 'string' && isValidTimeZone(own) ? own : undefined;
    const opening = nextOpening(window, now, timeZone ?? window.timeZone);
    if (opening > now) earliest = Math.min(earliest, opening);
    return { ...job, ...(timeZone ? { timeZone } : {}), ...(opening > now ? { notBefore: opening } : {}) };
  });
  if (Number.isFinite(earliest)) await armWake(deps, runId, earliest, now);
  return placed;
}
