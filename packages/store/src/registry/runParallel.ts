/**
 * Runs `task` over `items`, at most `concurrency` at a time. After the first failure no
 * new task starts; the running ones finish, and the first error is thrown.
 */
export async function runParallel<T>(items: readonly T[], concurrency: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: {error: unknown} | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++]!;
      try {
        await task(item);
      } catch (error) {
        failure ??= {error};
      }
    }
  };
  await Promise.all(Array.from({length: Math.min(concurrency, items.length)}, worker));
  if (failure) throw failure.error;
}
