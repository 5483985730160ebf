// (core) Answering-machine detection's verdict, already authenticated: recorded on the live job (the
// final status then ends the call `machine` for a machine or fax), and, for a machine or a fax, the
// live call is either redirected to the run's voicemail (a machine's greeting has ended and the run
// has one) or hung up (the run's `on_machine: hangup`, the default). The verdict and the final status
// arrive in either order and more than once: the verdict is written only on this attempt while it is
// live and has none, so a duplicate, a late one or one of another attempt changes nothing and leaves
// no second voicemail and sends no second hang-up.

import { contentForLead } from './call-content.ts';
import type { CallbackIds } from './callback-url.ts';
import { isMachine, isMessageEnd, verdictAction } from './machine-detection.ts';
import type { CallContent, CallControl, Log, RunReader, SlotStore } from './ports.ts';

export interface AmdCallback extends Omit<CallbackIds, 'requeueOn'> {
  callSid: string;
  /** Twilio's AnsweredBy: `human`, `machine_start`, `machine_end_beep`, `fax`, `unknown`, … */
  answeredBy: string;
}

export type AmdEffect =
  /** The verdict is on the job. */
  | 'recorded'
  /** The verdict is on the job and the call was redirected to the run's voicemail. */
  | 'voicemail'
  /** The verdict is on the job and the call was hung up (a machine or fax, `on_machine: hangup`). */
  | 'hung-up'
  /** Nothing to change: a duplicate, another attempt's verdict, a call already settled. */
  | 'unchanged';

export interface AmdDeps {
  store: RunReader & Pick<SlotStore, 'recordAnsweredBy'>;
  /** Redirects (the voicemail) or hangs up the live call; without it the call is left as it is. */
  callControl?: Pick<CallControl, 'redirectCall' | 'hangUpCall'>;
  log: Log;
}

export async function applyAmdCallback(deps: AmdDeps, callback: AmdCallback): Promise<AmdEffect> {
  const { runId, jobId, attempt, answeredBy } = callback;
  const recorded = await deps.store.recordAnsweredBy(runId, jobId, attempt, answeredBy);
  if (recorded !== 'applied') return 'unchanged';
  deps.log.info('answering machine detection told', { runId, jobId, attempt, answeredBy });
  // A person (or no verdict) is left alone without a read: the common case stays one write.
  if (!isMachine(answeredBy) || !deps.callControl) return 'recorded';

  const [run, job] = await Promise.all([
    deps.store.getRunRecord(runId),
    // The lead's fields fill a voicemail's template: read alongside when a voicemail may be left.
    isMessageEnd(answeredBy) ? deps.store.getJob(runId, jobId) : undefined,
  ]);
  const action = run ? verdictAction(answeredBy, run.options) : 'none';
  const context = { runId, jobId, attempt, answeredBy };
  if (action === 'hangup') return hangUp(deps.callControl, deps.log, callback.callSid, context);
  if (action === 'none' || !run) return 'recorded';

  const { voicemailTwiml, voicemailUrl } = run.options;
  const voicemail: CallContent | undefined = voicemailUrl
    ? { twimlUrl: voicemailUrl }
    : voicemailTwiml
      ? { twiml: voicemailTwiml }
      : undefined;
  if (!voicemail || !job) return 'recorded';
  const content = contentForLead(voicemail, {
    runId,
    jobId,
    attempt,
    phone: job.phone,
    attributes: job.attributes,
  });
  try {
    // Once: only the first verdict for this attempt gets here. Twilio redirects only a call in
    // progress; one that ended meanwhile is `invalid-state`, and nothing is left to do.
    const update = await deps.callControl.redirectCall(callback.callSid, content);
    if (update.kind !== 'updated') {
      deps.log.warn('voicemail not left: the call is not in progress', {
        runId,
        jobId,
        attempt,
        update: update.kind,
      });
      return 'recorded';
    }
  } catch (error) {
    // Twilio does not retry this callback on an error answer, so a failed redirect is logged, not thrown.
    deps.log.error('voicemail not left: redirecting the call failed', { runId, jobId, attempt, error });
    return 'recorded';
  }
  deps.log.info('voicemail left', { runId, jobId, attempt });
  return 'voicemail';
}

/**
 * Ends a call a machine or fax answered (Status=completed). Once: only the first verdict recorded for
 * the attempt gets here. Its final status callback comes as for any call, and ends the lead `machine`.
 */
async function hangUp(
  control: Pick<CallControl, 'hangUpCall'>,
  log: Log,
  callSid: string,
  context: { runId: string; jobId: string; attempt: number; answeredBy: string },
): Promise<AmdEffect> {
  try {
    const update = await control.hangUpCall(callSid);
    if (update.kind !== 'updated') {
      // Ended meanwhile (the machine hung up, or the call reached its TimeLimit): nothing left to end.
      log.warn('machine not hung up: the call is not live', { ...context, update: update.kind });
      return 'recorded';
    }
  } catch (error) {
    // Twilio does not retry this callback on an error answer, so a failed hang-up is logged, not
    // thrown: the call then ends as it would have without the option (and is still `machine`).
    log.error('machine not hung up: ending the call failed', { ...context, error });
    return 'recorded';
  }
  log.info('machine hung up', context);
  return 'hung-up';
}
