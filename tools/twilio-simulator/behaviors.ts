// How calls go when a test does not script them one by one: numbers Twilio refuses at create, and
// outcomes drawn by weight.

import type { Answerer, ApiError, CallScript, FinalCallStatus, SimulatorOptions } from './types.ts';

/** Twilio's magic test numbers that fail on create. */
export const DEFAULT_REJECT_NUMBERS: Record<string, ApiError> = {
  '+15005550001': {
    status: 400,
    code: 21211,
    message: "The 'To' number +15005550001 is not a valid phone number.",
  },
  '+15005550003': {
    status: 400,
    code: 21215,
    message:
      'Account not authorized to call +15005550003. Perhaps you need to enable some international permissions.',
  },
};

/** What a call can come to: a final status, or a number Twilio refuses at create (error 21211). */
export type MixOutcome = Exclude<FinalCallStatus, 'canceled'> | 'invalid';
export const MIX_OUTCOMES: readonly MixOutcome[] = ['completed', 'no-answer', 'busy', 'failed', 'invalid'];

/**
 * The mix `npm start` and the demo use unless told otherwise, in percent: roughly what an outbound
 * campaign to a bought list meets (most calls answered, one in five unanswered, some busy lines, a few
 * network failures and numbers that do not exist).
 */
export const REALISTIC_OUTCOMES: Readonly<Record<MixOutcome, number>> = {
  completed: 65,
  'no-answer': 18,
  busy: 8,
  failed: 5,
  invalid: 4,
};

/** `completed=65,no-answer=18,busy=8` (or `completed` alone, weight 1): a mix, or a reason it is not one. */
export function parseOutcomeMix(text: string): Partial<Record<MixOutcome, number>> {
  const mix: Partial<Record<MixOutcome, number>> = {};
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [name, raw = '1'] = part.split('=').map((p) => p.trim());
    if (!(MIX_OUTCOMES as readonly string[]).includes(name ?? ''))
      throw new Error(`unknown outcome "${name}" (one of ${MIX_OUTCOMES.join(', ')})`);
    const weight = Number(raw);
    if (!Number.isFinite(weight) || weight < 0) throw new Error(`the weight of ${name} must be a number ≥ 0`);
    mix[name as MixOutcome] = weight;
  }
  if (!Object.values(mix).some((weight) => weight > 0)) throw new Error('the mix needs a positive weight');
  return mix;
}

/**
 * A behavior picking each call's outcome by weight, e.g. `{ completed: 6, busy: 1, 'no-answer': 2 }`;
 * `invalid` refuses the number at create.
 */
export function weightedOutcomes(
  weights: Partial<Record<FinalCallStatus | 'invalid', number>>,
  random: () => number,
): NonNullable<SimulatorOptions['behavior']> {
  const entries = Object.entries(weights).filter(([, weight]) => (weight ?? 0) > 0) as [
    FinalCallStatus | 'invalid',
    number,
  ][];
  const total = entries.reduce((sum, [, weight]) => sum + weight, 0);
  if (total <= 0) throw new Error('weightedOutcomes needs a positive weight');
  const script = (outcome: FinalCallStatus | 'invalid'): CallScript =>
    outcome === 'invalid' ? { outcome: 'failed', invalidNumber: true } : { outcome };
  return () => {
    let pick = random() * total;
    for (const [outcome, weight] of entries) {
      pick -= weight;
      if (pick < 0) return script(outcome);
    }
    return script(entries[entries.length - 1]![0]);
  };
}

/**
 * Who answers a call to `to` when answering-machine detection is asked for and no script says: the
 * number's last digits decide, so that a test (or `npm start`) can choose by number. Ending in 7, 8 or 9:
 * an answering machine; in 00: a fax; anything else: a person.
 */
export function answererFor(to: string): Answerer {
  if (to.endsWith('00')) return 'fax';
  return /[789]$/.test(to) ? 'machine' : 'human';
}

/** Twilio's AnsweredBy for an answerer, by mode: a machine at its greeting's start, or at its beep. */
export function answeredByFor(answerer: Answerer, mode: 'Enable' | 'DetectMessageEnd'): string {
  if (answerer === 'machine') return mode === 'Enable' ? 'machine_start' : 'machine_end_beep';
  return answerer;
}
