// (adapter) A bounded worker pool: the adapters' fan-out of requests (ingest's batch writes and puts,
// the queue's message batches) with a fixed number in flight.

/**
 * `work` over `items`, `concurrency` at a time. On a failure no new item is started, every one in
 * flight is awaited, and then the first failure is thrown: nothing is left running unobserved.
 */
export async function inPool<T>(
  items: T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  if (failure) throw failure.error;
}
