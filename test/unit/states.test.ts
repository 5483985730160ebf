import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  advance,
  isFinal,
  JOB_STATES,
  type JobState,
  jobStateFor,
  TWILIO_CALL_STATUSES,
} from '../../lambdas/core/states.ts';

describe('Twilio status mapping', () => {
  it.each([
    ['queued', 'dialing'],
    ['initiated', 'dialing'],
    ['ringing', 'dialing'],
    ['in-progress', 'calling'],
    ['completed', 'completed'],
    ['busy', 'failed'],
    ['no-answer', 'failed'],
    ['failed', 'failed'],
    ['canceled', 'canceled'],
  ] as const)('%s → %s', (status, state) => {
    expect(jobStateFor(status)).toBe(state);
  });

  it("counts Twilio's queued (its CPS backlog) as live: the original bug", () => {
    expect(jobStateFor('queued')).toBe('dialing');
  });
});

describe('advance', () => {
  it('moves forward only', () => {
    expect(advance('queued', 'dialing')).toBe('dialing');
    expect(advance('dialing', 'calling')).toBe('calling');
    expect(advance('dialing', 'completed')).toBe('completed');
    expect(advance('calling', 'dialing')).toBeUndefined();
    expect(advance('dialing', 'dialing')).toBeUndefined();
  });

  it('keeps a final state whatever comes after it', () => {
    expect(advance('completed', 'failed')).toBeUndefined();
    expect(advance('failed', 'calling')).toBeUndefined();
    expect(advance('canceled', 'completed')).toBeUndefined();
  });

  it('any sequence of reports, in any order and repeated, ends where the furthest report points', () => {
    const status = fc.constantFrom(...TWILIO_CALL_STATUSES);
    fc.assert(
      fc.property(fc.array(status, { maxLength: 12 }), (reports) => {
        let state: JobState = 'dialing';
        const seen: JobState[] = [];
        for (const report of reports) {
          const next = advance(state, jobStateFor(report));
          if (next !== undefined) {
            seen.push(next);
            state = next;
          }
        }
        // Monotonic: each applied move goes strictly further, and at most one final is applied.
        expect(seen.filter(isFinal).length).toBeLessThanOrEqual(1);
        const finals = reports.map(jobStateFor).filter(isFinal);
        if (finals.length > 0) expect(state).toBe(finals[0]);
        expect(JOB_STATES).toContain(state);
      }),
    );
  });
});

describe('Twilio 429 backoff', () => {
  it('grows exponentially with the attempts, is capped at a minute, and is jittered below its ceiling', async () => {
    const { throttleBackoffMs } = await import('../../lambdas/core/place-call.ts');
    expect(throttleBackoffMs(1, () => 0.999)).toBeLessThanOrEqual(1000);
    expect(throttleBackoffMs(4, () => 0.999)).toBeGreaterThan(7000);
    expect(throttleBackoffMs(4, () => 0.999)).toBeLessThanOrEqual(8000);
    expect(throttleBackoffMs(30, () => 0.999)).toBeLessThanOrEqual(60_000);
    expect(throttleBackoffMs(30, () => 0)).toBe(250);
  });
});
