// (core) A list turned to start at another place: concurrent workers each starting at a place of
// their own in the same list (queued jobs, slot counters) do not all reach for its first items.

/** `items` starting at index `by` (modulo its length), the ones before it moved to the end. */
export function rotate<T>(items: readonly T[], by: number): T[] {
  if (items.length === 0) return [];
  const start = by % items.length;
  return [...items.slice(start), ...items.slice(0, start)];
}

/**
 * A place in a list for a worker named `id` (a job id, a message id): a job id's number (they are
 * zero-padded lead indexes), or a hash of any other id. Workers with different ids start at places
 * that differ, with no shared state and no randomness to inject.
 */
export function placeOf(id: string): number {
  const index = Number(id);
  if (Number.isSafeInteger(index)) return index;
  let hash = 0;
  for (const char of id) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return hash;
}
