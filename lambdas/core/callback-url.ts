// (core) The status callback URL carries the run, the job and the attempt, so that a callback can be
// matched to its slot even when the CallSid was never saved (a crash right after calls.create).
// Ids are URL-safe by construction: the URL Twilio signs is byte-for-byte the one we build.
// It may also say which final statuses put the lead back in the queue (`requeue_on`): for any other,
// the webhook can free the slot without reading the run first. Twilio signs the URL, so it is ours.

import { ID } from '../definitions/formats.ts';
import { isFinal, isTwilioCallStatus, jobStateFor, type TwilioCallStatus } from './states.ts';

export interface CallbackIds {
  runId: string;
  jobId: string;
  attempt: number;
  /**
   * The final statuses after which this attempt's lead is queued again (its run's retry policy), so
   * that any other final status releases the slot as it is. Absent: read the run to decide.
   */
  requeueOn?: TwilioCallStatus[];
  /**
   * With an account cap, the account shard the slot also holds (QueuedJob.accountShard), released
   * with it. Absent: no account slot, or one the release reads from the job.
   */
  accountShard?: number;
  /**
   * The run's slot counter the attempt's slot is on (QueuedJob.slotShard): a number, or null for the
   * run's own. Absent (a URL built before it was carried): the release reads it from the job.
   */
  slotShard?: number | null;
}

/** `slot=run`: the run's own counter. */
const RUN_SLOT = 'run';

export function buildCallbackUrl(webhookUrl: string, ids: CallbackIds): string {
  const url = new URL(webhookUrl);
  url.searchParams.set('run', ids.runId);
  url.searchParams.set('job', ids.jobId);
  url.searchParams.set('attempt', String(ids.attempt));
  if (ids.requeueOn) url.searchParams.set('requeue_on', ids.requeueOn.join(','));
  if (ids.slotShard !== undefined)
    url.searchParams.set('slot', ids.slotShard === null ? RUN_SLOT : String(ids.slotShard));
  if (ids.accountShard !== undefined) url.searchParams.set('account_slot', String(ids.accountShard));
  return url.toString();
}

/** The query parameter value that marks an answering-machine detection callback (`callback=amd`). */
const AMD_CALLBACK = 'amd';

/**
 * The answering-machine detection callback (`AsyncAmdStatusCallback`): the same webhook and ids, marked
 * `callback=amd`, so that the webhook knows the verdict from a status (Twilio signs the URL as given).
 */
export function buildAmdCallbackUrl(webhookUrl: string, ids: Omit<CallbackIds, 'requeueOn'>): string {
  const url = new URL(buildCallbackUrl(webhookUrl, ids));
  url.searchParams.set('callback', AMD_CALLBACK);
  return url.toString();
}

/** Whether a callback URL's query is that of an answering-machine detection callback. */
export function isAmdCallback(query: URLSearchParams): boolean {
  return query.get('callback') === AMD_CALLBACK;
}

export function parseCallbackIds(query: URLSearchParams): CallbackIds | undefined {
  const runId = query.get('run') ?? '';
  const jobId = query.get('job') ?? '';
  const attempt = Number(query.get('attempt'));
  if (!ID.test(runId) || !ID.test(jobId) || !Number.isInteger(attempt) || attempt < 1) {
    return undefined;
  }
  const requeueOn = query
    .get('requeue_on')
    ?.split(',')
    .filter((status) => status !== '');
  const valid = requeueOn?.every((status) => isTwilioCallStatus(status) && isFinal(jobStateFor(status)));
  const slot = query.get('slot');
  const slotShard =
    slot === RUN_SLOT ? null : slot !== null && /^\d{1,3}$/.test(slot) ? Number(slot) : undefined;
  const accountSlot = query.get('account_slot');
  const accountShard =
    accountSlot !== null && /^\d{1,9}$/.test(accountSlot) ? Number(accountSlot) : undefined;
  return {
    runId,
    jobId,
    attempt,
    ...(requeueOn && valid ? { requeueOn: requeueOn as TwilioCallStatus[] } : {}),
    ...(slotShard === undefined ? {} : { slotShard }),
    ...(accountShard === undefined ? {} : { accountShard }),
  };
}
