// How a run's cap is split over slot counters, and how a run is read back with them: the sum of the
// counters' caps is the run's cap (so no interleaving of acquires on them can pass it), and the view
// adds the counters' live calls to `active` and their final leads to the final counts, and takes
// both off `queued`.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  RUN_SLOT_SHARD_SIZE,
  RUN_SLOT_SPLIT_ABOVE,
  runSlotCaps,
  slotShardFromItem,
  withSlotShards,
} from '../../lambdas/adapters/dynamo/run-slots.ts';
import type { RunRecord } from '../../lambdas/core/model.ts';

describe('runSlotCaps', () => {
  it('keeps a small cap on the run item, and splits a larger one into counters of 10', () => {
    expect(runSlotCaps(3)).toEqual([]);
    expect(runSlotCaps(RUN_SLOT_SHARD_SIZE)).toEqual([]);
    expect(runSlotCaps(RUN_SLOT_SPLIT_ABOVE)).toEqual([]);
    expect(runSlotCaps(26)).toEqual([9, 9, 8]);
    expect(runSlotCaps(100)).toEqual(Array.from({ length: 10 }, () => 10));
    // MAX_CONCURRENCY's ceiling: 50 counters, created with the run in one transaction (≤ 100 items).
    expect(runSlotCaps(500)).toEqual(Array.from({ length: 50 }, () => 10));
  });

  it('splits any cap into counters of at most the size, none empty, adding up to the cap', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 60 }), (cap, size) => {
        const caps = runSlotCaps(cap, size, size);
        if (cap <= size) {
          expect(caps).toEqual([]);
          return;
        }
        expect(caps.reduce((sum, c) => sum + c, 0)).toBe(cap);
        expect(caps.length).toBe(Math.ceil(cap / size));
        for (const c of caps) {
          expect(c).toBeGreaterThan(0);
          expect(c).toBeLessThanOrEqual(size);
        }
        // As even as whole slots allow: no counter has two more than another.
        expect(Math.max(...caps) - Math.min(...caps)).toBeLessThanOrEqual(1);
      }),
    );
  });
});

describe('withSlotShards', () => {
  const run = {
    active: 0,
    queued: 40,
    completed: 2,
    failed: 1,
    canceled: 0,
    outcomes: { completed: 2, busy: 1 },
  } as unknown as RunRecord;

  it('adds the counters live calls and final leads to the run, and takes them off queued', () => {
    const shards = [
      // A counter made before final leads were counted on it: no counts, no outcomes.
      slotShardFromItem({ shard: 0, cap: 25, active: 25 }),
      slotShardFromItem({
        shard: 1,
        cap: 25,
        active: 3,
        completed: 4,
        failed: 2,
        canceled: 0,
        'outcome:completed': 4,
        'outcome:no-answer': 1,
        'outcome:busy': 1,
      }),
    ];
    expect(withSlotShards(run, shards)).toMatchObject({
      active: 28,
      queued: 40 - 28 - 6,
      completed: 6,
      failed: 3,
      canceled: 0,
      outcomes: { completed: 6, busy: 2, 'no-answer': 1 },
    });
  });

  it('leaves a run without counters as it is', () => {
    expect(withSlotShards(run, [])).toBe(run);
  });
});
