/**
 * What a test started, stopped in reverse order whatever happens. node:test runs `after` hooks
 * first-in first-out and skips the rest of them once one throws; a test that starts a database,
 * then a server on it, then a child process needs the opposite: the child first, the database
 * last, and every one of them even when another fails to stop. So a test registers each thing
 * right after it has started it, and one hook runs them all:
 *
 *     const defer = cleanupStack(t);                      // or cleanupStack({ after }) for a file
 *     const testDb = defer(await createTestDatabase(), (d) => d.destroy());
 *     const api = defer(await startTestServer({ testDb }), (s) => s.stop());
 *
 * A setup that throws half-way leaves exactly what it had started registered, and that is stopped.
 */
export interface Hooks {
  after(fn: () => unknown): unknown;
}

export type Defer = <T>(thing: T, stop: (thing: T) => unknown) => T;

/** How long one stop may take before the rest go on without it (and the hook fails, naming it). */
const STOP_TIMEOUT_MS = 60_000;

export function cleanupStack(hooks: Hooks): Defer {
  const stack: { stop: () => unknown; what: string }[] = [];
  hooks.after(async () => {
    const errors: unknown[] = [];
    while (stack.length) {
      const { stop, what } = stack.pop()!;
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          Promise.resolve().then(stop),
          new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`cleanup did not finish within ${STOP_TIMEOUT_MS / 1000} s: ${what}`)), STOP_TIMEOUT_MS))),
        ]);
      } catch (error) {
        errors.push(error);
      } finally {
        clearTimeout(timer);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `${errors.length} cleanups failed`);
  });
  return (thing, stop) => {
    stack.push({ stop: () => stop(thing), what: stop.toString().slice(0, 120) });
    return thing;
  };
}
