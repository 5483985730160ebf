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
