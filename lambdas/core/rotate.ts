// (core) A list turned to start at another place: concurrent workers each starting at a place of
// their own in the same list (queued jobs, slot counters) do not all reach for its first items.

/** `items` starting at index `by` (modulo its length), the ones before it moved to the end. */
export function rotate<T>(items: readonly T[], by: number): T[] {
  if (items.length === 0) return [];
  const start = by % items.length;
  return [...items.slice(start), ...items.slice(0, start)];
}
