// (core) A slot a released job still holds for the next acquire (CarriedSlot, ports.ts): made by a
// callback's final release, and read back from the job's marks (`carriedSlot`, `carriedShard`).

import type { Job } from './model.ts';
import type { CarriedRunSlot, CarriedSlot } from './ports.ts';
import { isFinal } from './states.ts';

/** The slot a final release keeps on its job: the run's, and the account's when it has one. */
export function carriedSlot(
  runId: string,
  jobId: string,
  attempt: number,
  accountShard: number | undefined,
  runSlot: CarriedRunSlot,
): CarriedSlot {
  return { runId, jobId, attempt, ...(accountShard === undefined ? {} : { shard: accountShard }), runSlot };
}

/**
 * The slot a job of run `runId` carries, as its release's dispatch named it; undefined when it
 * carries none. A job that carries the account's slot alone was released before the run's slot was
 * carried too.
 */
export function carriedSlotOf(runId: string, job: Job): CarriedSlot | undefined {
  const { carriedShard, carriedSlot: counter } = job;
  if (carriedShard === undefined && counter === undefined) return undefined;
  return {
    runId,
    jobId: job.jobId,
    attempt: job.attempt,
    ...(carriedShard === undefined ? {} : { shard: carriedShard }),
    ...(counter === undefined || !isFinal(job.status)
      ? {}
      : {
          runSlot: {
            counter,
            to: job.status as CarriedRunSlot['to'],
            outcome: job.outcome ?? job.status,
          },
        }),
  };
}
