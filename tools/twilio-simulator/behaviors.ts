// How calls go when a test does not script them one by one: numbers Twilio refuses at create, and
// outcomes drawn by weight.

import type { ApiError, FinalCallStatus, SimulatorOptions } from './types.ts';

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

/** A behavior picking each call's outcome by weight, e.g. `{ completed: 6, busy: 1, 'no-answer': 2 }`. */
export function weightedOutcomes(
  weights: Partial<Record<FinalCallStatus, number>>,
  random: () => number,
): NonNullable<SimulatorOptions['behavior']> {
  const entries = Object.entries(weights).filter(([, weight]) => (weight ?? 0) > 0) as [
    FinalCallStatus,
    number,
  ][];
  const total = entries.reduce((sum, [, weight]) => sum + weight, 0);
  if (total <= 0) throw new Error('weightedOutcomes needs a positive weight');
  return () => {
    let pick = random() * total;
    for (const [outcome, weight] of entries) {
      pick -= weight;
      if (pick < 0) return { outcome };
    }
    return { outcome: entries[entries.length - 1]![0] };
  };
}
