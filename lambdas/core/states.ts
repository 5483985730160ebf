// (core) Job states, the Twilio status mapping, and the only moves a job may make.
// Callbacks arrive out of order and more than once, so a state only ever moves forward and a final
// state is sticky: every caller asks `advance` instead of assigning a state.

export const LIVE_STATES = ['dialing', 'calling'] as const;
export const FINAL_STATES = ['completed', 'failed', 'canceled'] as const;
export const JOB_STATES = ['queued', ...LIVE_STATES, ...FINAL_STATES] as const;

export type LiveState = (typeof LIVE_STATES)[number];
export type FinalState = (typeof FINAL_STATES)[number];
export type JobState = (typeof JOB_STATES)[number];

/** Every status Twilio reports for a call, on the REST resource or in a status callback. */
export const TWILIO_CALL_STATUSES = [
  'queued',
  'initiated',
  'ringing',
  'in-progress',
  'completed',
  'busy',
  'no-answer',
  'failed',
  'canceled',
] as const;
export type TwilioCallStatus = (typeof TWILIO_CALL_STATUSES)[number];

export function isTwilioCallStatus(value: string): value is TwilioCallStatus {
  return (TWILIO_CALL_STATUSES as readonly string[]).includes(value);
}

export function isFinal(state: JobState): state is FinalState {
  return state === 'completed' || state === 'failed' || state === 'canceled';
}

/**
 * Twilio status → job state. Twilio's own `queued` (including its CPS backlog) is `dialing` for us:
 * the call exists and will ring, so it holds a slot (counting only answered calls lets a run dial
 * past its cap).
 */
export function jobStateFor(status: TwilioCallStatus): JobState {
  switch (status) {
    case 'queued':
    case 'initiated':
    case 'ringing':
      return 'dialing';
    case 'in-progress':
      return 'calling';
    case 'completed':
      return 'completed';
    case 'busy':
    case 'no-answer':
    case 'failed':
      return 'failed';
    case 'canceled':
      return 'canceled';
  }
}

const RANK: Record<JobState, number> = {
  queued: 0,
  dialing: 1,
  calling: 2,
  completed: 3,
  failed: 3,
  canceled: 3,
};

/**
 * The state a job moves to when `proposed` is reported while it is in `current`, or `undefined` when
 * the report changes nothing (a duplicate, a late report from an earlier step, anything after final).
 */
export function advance(current: JobState, proposed: JobState): JobState | undefined {
  if (isFinal(current)) return undefined;
  return RANK[proposed] > RANK[current] ? proposed : undefined;
}
