// Runs an async function over a list with at most `limit` calls in flight: start-up work over
// hundreds of volumes (re-exporting, mending targets) is mostly waiting on the kernel and the
// database, so running it one at a time leaves the agent unavailable for longer than it needs.

/**
 * Calls `fn(item, index)` for every item, at most `limit` at once, in list order of starting.
 * Resolves when all have settled; `fn` handles its own errors (a rejection stops nothing: the
 * first one is rethrown once every call has settled).
 */
export async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
  let next = 0;
  let firstError: { err: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      try {
        await fn(items[i]!, i);
      } catch (err) {
        firstError ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (firstError) throw (firstError as { err: unknown }).err;
}
