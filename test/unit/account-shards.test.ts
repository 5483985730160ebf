// How the account cap is split over shard counters, and how a layout's caps leave room for the calls
// still live on a fenced one (lambdas/core/account-shards.ts). The account cap holds through a deploy
// only if the caps never sum past the room left, and never grow with the calls still draining: a
// container may act on a count it read some time ago, and that count only falls.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ACCOUNT_SHARD_SIZE,
  accountShardCaps,
  LAYOUT_SPAN,
  layoutRange,
  shardsToRead,
  UNRECORDED_LAYOUT,
} from '../../lambdas/core/account-shards.ts';

const sum = (caps: number[]) => caps.reduce((total, cap) => total + cap, 0);
const accountCap = fc.integer({ min: 1, max: 10_000 });

describe('the shard caps of an account cap', () => {
  it('add up to the cap, ten a shard, the last one the rest', () => {
    expect(accountShardCaps(30)).toEqual([10, 10, 10]);
    expect(accountShardCaps(105)).toEqual([...Array(10).fill(10), 5]);
    expect(accountShardCaps(4)).toEqual([4]);
    fc.assert(
      fc.property(accountCap, (max) => {
        const caps = accountShardCaps(max);
        expect(sum(caps)).toBe(max);
        expect(caps.every((cap) => cap >= 0 && cap <= ACCOUNT_SHARD_SIZE)).toBe(true);
        expect(caps).toHaveLength(layoutRange(1, max).count);
      }),
    );
  });

  it('with calls still draining on a fenced layout: sum to the room beside them, taken off the last shards first', () => {
    expect(accountShardCaps(30, 25)).toEqual([5, 0, 0]);
    expect(accountShardCaps(30, 8)).toEqual([10, 10, 2]);
    expect(accountShardCaps(30, 45)).toEqual([0, 0, 0]);
    fc.assert(
      fc.property(accountCap, fc.nat({ max: 20_000 }), (max, draining) => {
        expect(sum(accountShardCaps(max, draining))).toBe(Math.max(0, max - draining));
      }),
    );
  });

  it('never grow as the draining count grows: a count read some time ago is too high, its caps too low', () => {
    fc.assert(
      fc.property(accountCap, fc.nat({ max: 20_000 }), fc.nat({ max: 20_000 }), (max, a, b) => {
        const [fewer, more] = a <= b ? [a, b] : [b, a];
        const now = accountShardCaps(max, fewer);
        const stale = accountShardCaps(max, more);
        expect(stale.every((cap, shard) => cap <= now[shard]!)).toBe(true);
      }),
    );
  });
});

describe('layouts', () => {
  it("number their shards apart: no layout's shards are another's, nor the unrecorded layout's", () => {
    expect(UNRECORDED_LAYOUT).toEqual({ base: 0, count: 200 });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), accountCap, accountCap, (gen, max, other) => {
        const range = layoutRange(gen, max);
        const next = layoutRange(gen + 1, other);
        expect(range.count).toBeLessThanOrEqual(LAYOUT_SPAN);
        expect(range.base).toBeGreaterThanOrEqual(UNRECORDED_LAYOUT.base + UNRECORDED_LAYOUT.count);
        expect(range.base + range.count).toBeLessThanOrEqual(next.base);
      }),
    );
  });
});

describe('the shards a fill reads for their room', () => {
  it('all of them up to the sample; else the sample, from the reader’s place, only shards with a cap', () => {
    expect(shardsToRead([10, 10, 10], 20, 2)).toEqual([0, 1, 2]);
    expect(shardsToRead([10, 10, 0, 0], 20, 0)).toEqual([0, 1]);
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 10 }), { minLength: 1, maxLength: 1000 }),
        fc.integer({ min: 1, max: 50 }),
        fc.nat(),
        (caps, sample, start) => {
          const read = shardsToRead(caps, sample, start);
          const open = caps.filter((cap) => cap > 0).length;
          expect(read).toHaveLength(Math.min(open, sample));
          expect(new Set(read).size).toBe(read.length);
          expect(read.every((shard) => caps[shard]! > 0)).toBe(true);
        },
      ),
    );
  });
});
