// One invocation's transactions on an item take turns (lambdas/adapters/dynamo/item-turns.ts): under
// every interleaving fast-check's scheduler picks, no two sends that share an item are in flight at
// once, sends on one item go in the order they were asked for, every send is made (no turn waits on
// another forever), a failed send ends its turn, and other invocations' sends wait for nothing.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inTurn, withItemTurns } from '../../lambdas/adapters/dynamo/item-turns.ts';

const ITEMS = ['RUN#a|RUN', 'ACCOUNT#LIMITS#0|SHARD', 'ACCOUNT#LIMITS#1|SHARD', 'RUN#b|JOB#000001'];

/** A transaction: the items it writes (1 to 3 of ITEMS), and whether DynamoDB refuses it. */
const transaction = fc.record({
  items: fc.uniqueArray(fc.constantFrom(...ITEMS), { minLength: 1, maxLength: 3 }),
  fails: fc.boolean(),
});

describe('item turns within one invocation', () => {
  it('never sends two transactions on one item at once, keeps their order, and makes every send', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(transaction, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 3 }),
        fc.scheduler(),
        async (invocations, scheduler) => {
          // The observer: which items each invocation has in flight, and the order each item was sent in.
          const inFlight = invocations.map(() => new Map<string, number>());
          const sentOrder = invocations.map(() => new Map<string, number[]>());
          const askedOrder = invocations.map(() => new Map<string, number[]>());
          let overlapped = false;
          const send = async (invocation: number, index: number, items: string[], fails: boolean) => {
            for (const item of items) {
              const n = inFlight[invocation]!.get(item) ?? 0;
              if (n > 0) overlapped = true;
              inFlight[invocation]!.set(item, n + 1);
              sentOrder[invocation]!.set(item, [...(sentOrder[invocation]!.get(item) ?? []), index]);
            }
            await scheduler.schedule(
              Promise.resolve(),
              `invocation ${invocation}: transaction ${index} answered`,
            );
            for (const item of items) inFlight[invocation]!.set(item, inFlight[invocation]!.get(item)! - 1);
            if (fails) throw new Error('TransactionCanceledException');
            return index;
          };
          // Each invocation's records side by side, each arriving when the scheduler says.
          const runs = invocations.map((transactions, invocation) =>
            withItemTurns(() =>
              Promise.allSettled(
                transactions.map(async ({ items, fails }, index) => {
                  await scheduler.schedule(
                    Promise.resolve(),
                    `invocation ${invocation}: record ${index} arrives`,
                  );
                  for (const item of items)
                    askedOrder[invocation]!.set(item, [...(askedOrder[invocation]!.get(item) ?? []), index]);
                  return inTurn(items, () => send(invocation, index, items, fails));
                }),
              ),
            ),
          );
          const settled = await scheduler.waitFor(Promise.all(runs));

          expect(overlapped, 'two transactions of one invocation on one item in flight at once').toBe(false);
          for (const [invocation, results] of settled.entries())
            for (const [index, result] of results.entries()) {
              const { fails } = invocations[invocation]![index]!;
              expect(result.status).toBe(fails ? 'rejected' : 'fulfilled');
              if (result.status === 'fulfilled') expect(result.value).toBe(index);
            }
          // Every transaction sent once, and on each item in the order they were asked for.
          for (const [invocation, transactions] of invocations.entries())
            for (const item of ITEMS) {
              const sent = sentOrder[invocation]!.get(item) ?? [];
              expect(sent).toHaveLength(transactions.filter((t) => t.items.includes(item)).length);
              expect(sent).toEqual(askedOrder[invocation]!.get(item) ?? []);
            }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('takes turns in the order transactions were asked for', async () => {
    const order: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    await withItemTurns(async () => {
      const first = inTurn(['shard 0'], async () => {
        order.push('first sent');
        await held;
        order.push('first answered');
      });
      const second = inTurn(['shard 0', 'run a'], async () => order.push('second sent'));
      const third = inTurn(['run a'], async () => order.push('third sent'));
      const other = inTurn(['shard 1'], async () => order.push('other item sent'));
      await other;
      expect(order).toEqual(['first sent', 'other item sent']);
      release();
      await Promise.all([first, second, third]);
    });
    expect(order).toEqual(['first sent', 'other item sent', 'first answered', 'second sent', 'third sent']);
  });

  it('outside an invocation, and between invocations, nothing waits', async () => {
    const never = new Promise<void>(() => {});
    // Held forever on `shard 0`: neither a send outside any invocation nor another invocation's waits for it.
    void withItemTurns(() => inTurn(['shard 0'], () => never));
    await expect(inTurn(['shard 0'], async () => 'outside')).resolves.toBe('outside');
    await expect(withItemTurns(() => inTurn(['shard 0'], async () => 'another invocation'))).resolves.toBe(
      'another invocation',
    );
  });
});
