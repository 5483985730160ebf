// (core) The queued jobs a refill offers its freed slot: the run's next due jobs, each refiller
// starting from a place of its own among them. Refills that end together (a release's hint, the
// dispatches of account slots handed to one run) read the same first jobs; a cap-500 run of 30-second
// calls ends ~17 calls a second, and refills that reach for the same job cancel each other's
// transactions, or all but one are refused on the job's condition.

import type { QueuedJob, QueueStore } from './ports.ts';
import { placeOf, rotate } from './rotate.ts';

/**
 * Jobs offered: the freed slot's one, and spares in case others take it first. Three, so that a cap-3
 * run whose three calls end at once (calls of one fixed length do) gives each of its three refills a
 * job of its own to start with.
 */
const OFFERED = 3;

/**
 * Queued jobs the offer is chosen from: each refiller takes its own place among the first 48. Refills
 * of calls that end together (a cap-500 run's first calls end some 40 a second) read the same first
 * jobs. Among 24, a cap-500 run (the scale bench, 25 ms conflict window) had 0.57 acquires a call
 * refused on a job already taken (8 write units each) and 274 of 635 refills taking the long way;
 * among 48, 0.04 and 4 of 845. The read is a few hundred bytes more (index entries are small).
 */
const CHOICE = 48;

/**
 * The run's next jobs due by `nowMs`, from the place of `refiller` (a job id's number, a message id's
 * hash) among the first of them. A run's slots tend to hold consecutive jobs, which makes the places
 * of refills that release them differ.
 */
export async function nextJobsFor(
  store: Pick<QueueStore, 'nextQueuedJobs'>,
  runId: string,
  nowMs: number,
  refiller: string,
): Promise<QueuedJob[]> {
  const jobs = await store.nextQueuedJobs(runId, CHOICE, nowMs);
  return rotate(jobs, placeOf(refiller)).slice(0, OFFERED);
}
