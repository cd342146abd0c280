import { Presets, SingleBar } from 'cli-progress';

/**
 * The progress bars of the CLI (compute, train, export), on stderr so that stdout carries only the
 * result. cli-progress estimates the time left from recent speed; before the first step, or with
 * nothing to do, that estimate is Infinity or NaN, which its own formatter prints as `NFs`/`NaNs`.
 */

/** Seconds left as `12s`, `1m12s` or `2h05m`; blank when there is no estimate yet. */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * A bar with `format` (cli-progress placeholders; `{eta_formatted}` goes through `formatEta`), or
 * null when none should be drawn. `show` undefined: on a terminal only; true: always (one line per
 * redraw where stderr is not a terminal); false: never.
 */
export function progressBar(format: string, show: boolean | undefined): SingleBar | null {
  const tty = Boolean(process.stderr.isTTY);
  if (show === false || (show === undefined && !tty)) return null;
  return new SingleBar(
    {
      stream: process.stderr,
      format,
      hideCursor: tty,
      noTTYOutput: !tty,
      notTTYSchedule: 1000,
      formatTime: (t: number) => formatEta(t),
    },
    Presets.shades_classic,
  );
}
