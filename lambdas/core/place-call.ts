// (core) One call placed for a job whose slot is already held, and what its outcome does to the slot:
// created → the Sid is saved; rejected → the job fails and frees its slot in one transaction;
// misconfigured → the run is paused and the lead goes back to the queue; throttled → the lead waits
// a backoff holding no slot; unknown → the slot is kept until the callback or the reconciler settles
// it (docs/DESIGN.md, invariant 3: never re-sent blindly).

import { countEndedAttempt } from './breaker.ts';
import { contentForLead, needsLead } from './call-content.ts';
import { buildAmdCallbackUrl, buildCallbackUrl } from './callback-url.ts';
import { endCall } from './cancel-run.ts';
import { maskPhone } from './leads.ts';
import { optOutUrl, withOptOut } from './opt-out.ts';
import type {
  AccountLimits,
  BreakerStore,
  CallContent,
  CallControl,
  CallRequest,
  Clock,
  Log,
  QueuedJob,
  RunControlStore,
  RunReader,
  SlotStore,
  Telephony,
  WakeStore,
  WorkQueue,
} from './ports.ts';
import type { RunOptions } from './run-options.ts';
import type { TwilioCallStatus } from './states.ts';
import { armWake, refillAfterRelease } from './wake.ts';

export interface CallSettings {
  from: string;
  webhookUrl: string;
  ringTimeoutSeconds: number;
  timeLimitSeconds: number;
  content: CallRequest['content'];
}

export interface PlaceCallDeps {
  store: RunReader & SlotStore & RunControlStore & WakeStore & BreakerStore;
  queue: WorkQueue;
  telephony: Telephony;
  clock: Clock;
  log: Log;
  calls: CallSettings;
  /** Random in [0, 1): jitter for retry delays; injectable so tests are replayable. */
  random?: () => number;
  /** Account-wide limits across runs (ACCOUNT_MAX_CONCURRENT_CALLS, ACCOUNT_CALLS_PER_SECOND). */
  account?: Omit<AccountLimits, 'nowMs'>;
  /** Ends calls at the provider: a call created while its run was being canceled is ended. */
  callControl?: CallControl;
}

/** Twilio 429 backoff: exponential in the job's attempts, capped at a minute, with full jitter. */
export function throttleBackoffMs(attempt: number, random: () => number): number {
  const ceiling = Math.min(60_000, 1000 * 2 ** Math.max(0, attempt - 1));
  return Math.max(250, Math.floor(random() * ceiling));
}

/** The final statuses after which this attempt's lead is called again (see `retryTime`). */
function requeueOutcomes(options: RunOptions, attempt: number): TwilioCallStatus[] {
  const retry = options.retry;
  return retry && attempt < retry.maxAttempts ? (retry.on as TwilioCallStatus[]) : [];
}

/**
 * What this lead's callee hears: the run's content (else the deployment's), made the lead's own when it
 * is a URL (called with the lead's fields) or a template of its fields. Only then is the job read (the
 * queued index carries no fields): other calls are placed without a read.
 */
async function personalContent(
  deps: PlaceCallDeps,
  runId: string,
  options: RunOptions,
  job: QueuedJob,
  attempt: number,
): Promise<CallContent> {
  const run: CallContent | undefined = options.twimlUrl
    ? { twimlUrl: options.twimlUrl }
    : options.twiml
      ? { twiml: options.twiml }
      : undefined;
  // The deployment's inline TwiML is not a template (no lead was checked against it).
  const content = run ?? deps.calls.content;
  if (run === undefined ? !('twimlUrl' in content) : !needsLead(content)) return content;
  const stored = await deps.store.getJob(runId, job.jobId);
  return contentForLead(content, {
    runId,
    jobId: job.jobId,
    attempt,
    phone: job.phone,
    attributes: stored?.attributes ?? {},
  });
}

/** Places one call for a job whose slot is held; true when Twilio accepted it. */
export async function placeCall(
  deps: PlaceCallDeps,
  runId: string,
  options: RunOptions,
  job: QueuedJob,
  attempt: number,
): Promise<boolean> {
  const { calls } = deps;
  const context = { runId, jobId: job.jobId, attempt, to: maskPhone(job.phone) };
  // Which of the run's slot counters holds the slot, when the store said: the release (here, or the
  // callback's through the URL) frees that one.
  const slot = job.slotShard === undefined ? {} : { slotShard: job.slotShard };
  const ids = { runId, jobId: job.jobId, attempt, ...slot };
  const content = await personalContent(deps, runId, options, job, attempt).catch((error: unknown) => {
    deps.log.warn('reading the lead for its call content failed; the lead waits', { ...context, error });
    return undefined;
  });
  if (content === undefined) {
    // Nothing was sent: the lead goes back to the queue for a moment, holding no slot.
    const nowMs = deps.clock.now().getTime();
    const retryAt = nowMs + throttleBackoffMs(attempt, deps.random ?? Math.random);
    await deps.store.releaseSlot({
      ...ids,
      from: 'dialing',
      to: 'queued',
      notBefore: retryAt,
      at: deps.clock.now().toISOString(),
    });
    await refillAfterRelease(deps, runId, { dispatchRun: false, accountSlot: deps.account !== undefined });
    await armWake(deps, runId, retryAt, nowMs);
    return false;
  }
  const result = await deps.telephony.createCall({
    to: job.phone,
    from: options.from ?? calls.from,
    statusCallbackUrl: buildCallbackUrl(calls.webhookUrl, {
      ...ids,
      // A slot that also holds an account slot names its shard, released with it; one whose account
      // slot is not known is released the long way, and so is one of a run with a failure breaker or
      // an expiry (the release reads the run for them), and one whose outcome waits on
      // answering-machine detection's verdict.
      ...(job.accountShard === undefined ? {} : { accountShard: job.accountShard }),
      ...((deps.account === undefined || job.accountShard !== undefined) &&
      !options.pauseWhen &&
      !options.expiresAt &&
      options.machineDetection === undefined
        ? { requeueOn: requeueOutcomes(options, attempt) }
        : {}),
    }),
    ringTimeoutSeconds: calls.ringTimeoutSeconds,
    timeLimitSeconds: calls.timeLimitSeconds,
    // An opt-out wraps the content in a Gather whose keypress comes to the webhook's opt-out route.
    content: options.optOut ? withOptOut(content, options.optOut, optOutUrl(calls.webhookUrl, ids)) : content,
    ...(options.machineDetection === undefined
      ? {}
      : {
          machineDetection: {
            mode: options.machineDetection,
            callbackUrl: buildAmdCallbackUrl(calls.webhookUrl, ids),
          },
        }),
  });
  const at = deps.clock.now().toISOString();

  switch (result.kind) {
    case 'created':
      deps.log.info('call placed', { ...context, callSid: result.callSid });
      await deps.store.recordCallSid(runId, job.jobId, attempt, result.callSid);
      // A cancel that came while this call was being created could not see its Sid: end it here.
      if ((await deps.store.getRunControl(runId)) === 'canceled') {
        await endCall(deps, true, result.callSid, 'dialing', { runId, jobId: job.jobId });
      }
      return true;
    case 'misconfigured':
      // Not this lead's fault: the run's caller id or call content is wrong, and every lead would
      // fail the same way. The lead goes back to the queue and the run is paused for a person.
      deps.log.error('run paused: telephony refused its configuration', {
        ...context,
        code: result.code,
        reason: result.message,
      });
      // Paused first, so that the slot freed next is not handed to another lead that would fail alike.
      await deps.store.setControl(runId, {
        to: 'paused',
        from: ['running'],
        at,
        reason: `Twilio refused the run's caller id or call content (error ${result.code})`,
      });
      await deps.store.releaseSlot({ ...ids, from: 'dialing', to: 'queued', at });
      await refillAfterRelease(deps, runId, {
        dispatchRun: false,
        accountSlot: deps.account !== undefined,
      });
      return false;
    case 'rejected': {
      // Permanent: the number cannot be called. Fail the job and free its slot in one transaction.
      deps.log.warn('call rejected by telephony', { ...context, code: result.code, reason: result.message });
      const released = await deps.store.releaseSlot({
        ...ids,
        from: 'dialing',
        to: 'failed',
        outcome: 'rejected',
        ...(result.code === undefined ? {} : { errorCode: result.code }),
        at,
      });
      // Counted before the refill, as a callback's release is (callbacks.ts).
      if (options.pauseWhen && released === 'released') {
        const run = await deps.store.getRunRecord(runId);
        if (run) await countEndedAttempt(deps, run, 'rejected');
      }
      await refillAfterRelease(deps, runId, {
        dispatchRun: true,
        accountSlot: deps.account !== undefined,
        releasedAt: at,
      });
      return false;
    }
    case 'throttled': {
      // Twilio never processed it: the job goes back to the queue, not due before an exponential,
      // fully jittered backoff (1 s, 2 s, 4 s … up to a minute, by the job's attempts), and its slot
      // is freed for leads that are due. Waiting holds no slot.
      const nowMs = deps.clock.now().getTime();
      const backoffMs = throttleBackoffMs(attempt, deps.random ?? Math.random);
      deps.log.warn('call throttled by telephony', { ...context, retryInMs: backoffMs });
      await deps.store.releaseSlot({
        ...ids,
        from: 'dialing',
        to: 'queued',
        notBefore: nowMs + backoffMs,
        at,
      });
      // A 429 says "slow down": the run is not re-dispatched now, only woken when the job is due
      // (or by the next call that ends). Runs waiting for an account slot may go.
      await refillAfterRelease(deps, runId, { dispatchRun: false, accountSlot: deps.account !== undefined });
      await armWake(deps, runId, nowMs + backoffMs, nowMs);
      return false;
    }
    case 'unknown':
      // The call may exist: keep the slot. Its callback or the reconciler settles it; re-sending
      // could call the lead twice.
      deps.log.error('call outcome unknown; slot kept until settled', { ...context, reason: result.reason });
      return false;
  }
}
