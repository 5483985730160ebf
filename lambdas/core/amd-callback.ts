// (core) Answering-machine detection's verdict, already authenticated: recorded on the live job (the
// final status then ends the call `machine` for a machine or fax), and, when a machine's greeting has
// ended and the run has a voicemail, the live call is redirected to it. The verdict and the final
// status arrive in either order and more than once: the verdict is written only on this attempt while
// it is live and has none, so a duplicate, a late one or one of another attempt changes nothing and
// leaves no second voicemail.

import { contentForLead } from './call-content.ts';
import type { CallbackIds } from './callback-url.ts';
import { isMessageEnd } from './machine-detection.ts';
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
  /** Nothing to change: a duplicate, another attempt's verdict, a call already settled. */
  | 'unchanged';

export interface AmdDeps {
  store: RunReader & Pick<SlotStore, 'recordAnsweredBy'>;
  /** Redirects the live call (the voicemail); without it no voicemail is left. */
  callControl?: Pick<CallControl, 'redirectCall'>;
  log: Log;
}

export async function applyAmdCallback(deps: AmdDeps, callback: AmdCallback): Promise<AmdEffect> {
  const { runId, jobId, attempt, answeredBy } = callback;
  const recorded = await deps.store.recordAnsweredBy(runId, jobId, attempt, answeredBy);
  if (recorded !== 'applied') return 'unchanged';
  deps.log.info('answering machine detection told', { runId, jobId, attempt, answeredBy });
  if (!isMessageEnd(answeredBy) || !deps.callControl) return 'recorded';

  const [run, job] = await Promise.all([deps.store.getRunRecord(runId), deps.store.getJob(runId, jobId)]);
  const { voicemailTwiml, voicemailUrl } = run?.options ?? {};
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
