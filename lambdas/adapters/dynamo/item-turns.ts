// (adapter) Transactions of one invocation that touch the same item take turns. DynamoDB cancels one
// of two transactions that overlap on an item (TransactionConflict: a refused write, billed, then a
// backoff). A dispatcher works on a batch's records side by side, and dispatches sent by releases
// moments apart arrive in one batch and reach for the same account shard: sent together, they would
// cancel each other; in turn, the second waits only the first's round trip, never its call's create.
//
// Scoped to one invocation (AsyncLocalStorage), not to the process: on AWS a container runs one
// invocation at a time, but the local stack runs many in one process, where a process-wide turn would
// keep apart transactions that on AWS would meet. Outside any invocation's scope nothing waits.

import { AsyncLocalStorage } from 'node:async_hooks';

class ItemTurns {
  /** Per item, the end of the last transaction that asked for it (a turn ends settled either way). */
  readonly #last = new Map<string, Promise<void>>();

  async take<T>(items: readonly string[], send: () => Promise<T>): Promise<T> {
    // Waiting for the transactions already queued on any of the items, and queued on all of them in the
    // same synchronous step: turns follow the order they were asked for, so no two wait on each other.
    const before = [...new Set(items)].flatMap((item) => this.#last.get(item) ?? []);
    let done!: () => void;
    const mine = new Promise<void>((resolve) => {
      done = resolve;
    });
    for (const item of items) this.#last.set(item, mine);
    try {
      if (before.length > 0) await Promise.all(before);
      return await send();
    } finally {
      done();
      for (const item of items) if (this.#last.get(item) === mine) this.#last.delete(item);
    }
  }
}

const invocation = new AsyncLocalStorage<ItemTurns>();

/** Runs one invocation's work with turns of its own on the items its transactions write. */
export function withItemTurns<T>(work: () => Promise<T>): Promise<T> {
  return invocation.run(new ItemTurns(), work);
}

/** Sends a transaction on `items` once this invocation's earlier transactions on them have settled. */
export function inTurn<T>(items: readonly string[], send: () => Promise<T>): Promise<T> {
  const turns = invocation.getStore();
  return turns ? turns.take(items, send) : send();
}
