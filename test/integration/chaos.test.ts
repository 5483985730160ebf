// A smaller run of the fault-injection suite (`npm run chaos` is the full one): the same faults at
// the same rates, over fewer leads, so that every `npm test` checks the invariants under chaos.

import { expect, it } from 'vitest';
import { DEFAULT_CHAOS, runChaos } from '../../tools/chaos/chaos.ts';

it('keeps every invariant under duplicated, reordered and lost callbacks, 429s, 500s, crashes and throttles', async () => {
  const seed = Number(process.env.CHAOS_SEED ?? 11);
  const report = await runChaos({ ...DEFAULT_CHAOS, seed, runs: 3, leadsPerRun: 25, timeoutMs: 150_000 });
  // The faults really happened (a suite that injects nothing proves nothing)…
  expect(report.injected.duplicatedCallbacks).toBeGreaterThan(0);
  expect(report.injected.droppedCallbacks).toBeGreaterThan(0);
  expect(report.injected.throttledCreates).toBeGreaterThan(0);
  expect(report.injected.handlerErrors).toBeGreaterThan(0);
  // …and none of them broke an invariant. The seed is in the message to replay a failure.
  expect({ ...report, runs: undefined }).toMatchObject({
    capViolations: 0,
    leadsCalledTwice: 0,
    leadsLost: 0,
    runsNotCompleted: 0,
    countersNotZero: 0,
    deadLetteredLeadChunks: 0,
  });
  for (const run of report.runs) expect(run.maxLive).toBeLessThanOrEqual(run.cap);
}, 180_000);
