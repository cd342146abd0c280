/**
 * The benchmarks' command-line flags: `--name` alone (`flag`) or `--name value` (`opt`). Each
 * benchmark documents its own flags at the top of its file.
 */
const args = process.argv.slice(2);

/** Whether `--name` was given. */
export const flag = (name: string): boolean => args.includes(`--${name}`);

/** The value after `--name`, or `dflt` when the flag is absent or last. */
export const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? (args[i + 1] as string) : dflt;
};
