/** Throws when a state that cannot happen happens; narrows types for the compiler. */
export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`Invariant failed: ${message}`);
}
