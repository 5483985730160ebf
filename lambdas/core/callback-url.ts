// (core) The status callback URL carries the run, the job and the attempt, so that a callback can be
// matched to its slot even when the CallSid was never saved (a crash right after calls.create).
// Ids are URL-safe by construction: the URL Twilio signs is byte-for-byte the one we build.

export interface CallbackIds {
  runId: string;
  jobId: string;
  attempt: number;
}

const SAFE_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function buildCallbackUrl(webhookUrl: string, ids: CallbackIds): string {
  const url = new URL(webhookUrl);
  url.searchParams.set('run', ids.runId);
  url.searchParams.set('job', ids.jobId);
  url.searchParams.set('attempt', String(ids.attempt));
  return url.toString();
}

export function parseCallbackIds(query: URLSearchParams): CallbackIds | undefined {
  const runId = query.get('run') ?? '';
  const jobId = query.get('job') ?? '';
  const attempt = Number(query.get('attempt'));
  if (!SAFE_ID.test(runId) || !SAFE_ID.test(jobId) || !Number.isInteger(attempt) || attempt < 1) {
    return undefined;
  }
  return { runId, jobId, attempt };
}
