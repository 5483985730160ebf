// (core) Answering-machine detection: Twilio's modes and its verdicts (`AnsweredBy`), and what a
// verdict makes of a call. Detection is always asynchronous: the callee hears the run's content at
// once (a human is never held in silence while Twilio listens) and the verdict comes on a callback of
// its own, which may arrive before or after the call's final status callback.

/** Twilio's `MachineDetection` values: a verdict as soon as it knows, or after a machine's greeting. */
export const MACHINE_DETECTION_MODES = ['Enable', 'DetectMessageEnd'] as const;
export type MachineDetectionMode = (typeof MACHINE_DETECTION_MODES)[number];

/** Twilio's `AnsweredBy` values (`machine_start` with Enable; `machine_end_*` with DetectMessageEnd). */
export const ANSWERED_BY = [
  'human',
  'machine_start',
  'machine_end_beep',
  'machine_end_silence',
  'machine_end_other',
  'fax',
  'unknown',
] as const;

/**
 * What the webhook does with a live call a machine or a fax answered and the run leaves no voicemail
 * for: `hangup` ends it at once (no talk time billed, the slot freed, no cut-off message recorded), as
 * call centres do; `continue` lets the run's content play on into the machine until the call ends.
 */
export const ON_MACHINE_MODES = ['hangup', 'continue'] as const;
export type OnMachine = (typeof ON_MACHINE_MODES)[number];
/** A run with detection that does not say (stored with the run when it is created). */
export const ON_MACHINE_DEFAULT: OnMachine = 'hangup';

/** The outcome of an answered call that a machine or a fax took: retried when `retry.on` says so. */
export const MACHINE_OUTCOME = 'machine';

/** A verdict as Twilio may send it: its documented values, and any later one of the same shape. */
export function isAnsweredBy(value: string): boolean {
  return /^[a-z][a-z_]{0,39}$/.test(value);
}

/** A machine (at the start of its greeting or after it) or a fax: not a person. */
export function isMachine(answeredBy: string | undefined): boolean {
  return answeredBy !== undefined && (answeredBy.startsWith('machine_') || answeredBy === 'fax');
}

/**
 * The verdict after a machine's greeting (DetectMessageEnd), the moment to leave a message: the beep,
 * or the silence after the greeting, or its end by other means.
 */
export function isMessageEnd(answeredBy: string): boolean {
  return answeredBy.startsWith('machine_end_');
}

/**
 * A final Twilio status with the call's verdict: a completed call that a machine or fax answered ends
 * with outcome `machine` and the job fails (nobody heard it); anything else keeps Twilio's status.
 */
export function outcomeOf(status: string, answeredBy: string | undefined): string {
  return status === 'completed' && isMachine(answeredBy) ? MACHINE_OUTCOME : status;
}

/** What a run's options ask for a verdict: the fields of RunOptions that decide it. */
export interface VerdictPolicy {
  onMachine?: OnMachine | undefined;
  voicemailTwiml?: string | undefined;
  voicemailUrl?: string | undefined;
}

/** What happens to the live call on a verdict: left a voicemail, hung up, or left alone. */
export type VerdictAction = 'voicemail' | 'hangup' | 'none';

/**
 * What the first verdict recorded for an attempt does to its live call. A voicemail is left only after
 * a machine's greeting (`machine_end_*`, DetectMessageEnd) when the run has one; any other machine or
 * fax verdict hangs up when the run says `hangup`. A person, or a verdict Twilio could not reach
 * (`unknown`), is never hung up on. A run without `onMachine` (created before the option existed)
 * keeps going as it was created to.
 */
export function verdictAction(answeredBy: string, policy: VerdictPolicy): VerdictAction {
  if (!isMachine(answeredBy)) return 'none';
  const hasVoicemail = Boolean(policy.voicemailTwiml || policy.voicemailUrl);
  if (isMessageEnd(answeredBy) && hasVoicemail) return 'voicemail';
  return policy.onMachine === 'hangup' ? 'hangup' : 'none';
}
