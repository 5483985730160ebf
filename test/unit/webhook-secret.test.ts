// The webhook's re-read of the Twilio secret when a signature does not match (a rotated token): one
// read at a time, at most one per interval, and none for a signature Twilio could not have sent, so a
// flood of forged callbacks does not become a flood of Secrets Manager reads.

import { describe, expect, it } from 'vitest';
import { type CredentialSource, refreshGuard } from '../../lambdas/adapters/twilio-credentials.ts';
import { isSignedByTwilio } from '../../lambdas/adapters/twilio-signature.ts';
import { twilioSignature } from '../../tools/twilio-simulator/simulator.ts';

const URL_ = 'https://hooks.example/twilio/status?run=r1&job=000001&attempt=1';
const PARAMS = { CallSid: 'CA0123456789abcdef0123456789abcdef', CallStatus: 'completed' };

/** A secret store whose token can be rotated; counts the reads a refresh makes. */
function secrets(now: () => number) {
  const state = { stored: 'old-token', reads: 0 };
  let cached = state.stored;
  const refresh = refreshGuard(
    async () => {
      state.reads += 1;
      await new Promise((resolve) => setTimeout(resolve, 5)); // a read takes a while
      cached = state.stored;
      return { accountSid: 'AC1', authToken: cached };
    },
    { minIntervalMs: 30_000, now },
  );
  const source: CredentialSource = {
    refreshable: true,
    get: (options = {}) =>
      options.refresh ? refresh() : Promise.resolve({ accountSid: 'AC1', authToken: cached }),
  };
  return { state, source };
}

describe('the secret re-read on a bad signature', () => {
  it('is single-flight and rate-limited under a flood of forged callbacks', async () => {
    let clock = 0;
    const { state, source } = secrets(() => clock);
    const forged = twilioSignature('not-the-token', URL_, PARAMS);
    const answers = await Promise.all(
      Array.from({ length: 100 }, () => isSignedByTwilio(source, forged, URL_, PARAMS)),
    );
    expect(answers.every((ok) => ok === false)).toBe(true);
    expect(state.reads).toBe(1);
    clock += 10_000;
    await isSignedByTwilio(source, forged, URL_, PARAMS);
    expect(state.reads).toBe(1);
    clock += 30_000;
    await Promise.all(Array.from({ length: 20 }, () => isSignedByTwilio(source, forged, URL_, PARAMS)));
    expect(state.reads).toBe(2);
  });

  it('never reads for a signature Twilio could not have sent', async () => {
    const { state, source } = secrets(() => 0);
    for (const signature of ['x', 'A'.repeat(200), '', '!!!!!!!!!!!!!!!!!!!!!!!!!!!=']) {
      expect(await isSignedByTwilio(source, signature, URL_, PARAMS)).toBe(false);
    }
    expect(state.reads).toBe(0);
  });

  it('still accepts callbacks signed with a rotated token straight away', async () => {
    const { state, source } = secrets(() => 0);
    expect(await isSignedByTwilio(source, twilioSignature('old-token', URL_, PARAMS), URL_, PARAMS)).toBe(
      true,
    );
    state.stored = 'new-token';
    expect(await isSignedByTwilio(source, twilioSignature('new-token', URL_, PARAMS), URL_, PARAMS)).toBe(
      true,
    );
    expect(state.reads).toBe(1);
  });

  it('does not remember a failed read', async () => {
    let fail = true;
    let reads = 0;
    const refresh = refreshGuard(
      async () => {
        reads += 1;
        if (fail) throw new Error('Secrets Manager unavailable');
        return 'value';
      },
      { minIntervalMs: 30_000, now: () => 0 },
    );
    await expect(refresh()).rejects.toThrow('unavailable');
    fail = false;
    expect(await refresh()).toBe('value');
    expect(await refresh()).toBe('value');
    expect(reads).toBe(2);
  });
});
