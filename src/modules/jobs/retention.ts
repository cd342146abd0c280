import type { Config } from '../../platform/config.js';
import type { Database } from '../../platform/db/database.js';
import type { Logger } from '../../platform/logger.js';
import { deleteFinishedJobsBefore } from './storage.js';

const DAY_MS = 24 * 3600 * 1000;

/**
 * Deletes finished compute jobs (COMPLETED, FAILED, CANCELLED) once they are older than
 * TANGENT_JOB_RETENTION_DAYS, with their chunk rows: at start and every TANGENT_JOB_SWEEP_SECONDS,
 * in each process that works jobs (several processes sweeping one database delete each row once).
 * The values a job computed stay: they belong to the checkpoint. `train_job` rows are not swept:
 * they are a trained run's record (its spec), not queue bookkeeping.
 */
export class JobSweep {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  private constructor(
    private readonly db: Database,
    private readonly config: Config,
    private readonly log: Logger,
  ) {}

  /** Starts sweeping; none when the retention is 0 (finished jobs are kept). */
  static start(db: Database, config: Config, log: Logger): JobSweep | null {
    if (config.compute.jobRetentionDays <= 0) return null;
    const sweep = new JobSweep(db, config, log);
    sweep.tick();
    sweep.timer = setInterval(() => sweep.tick(), config.compute.jobSweepSeconds * 1000);
    sweep.timer.unref();
    return sweep;
  }

  /** Deletes the finished jobs older than the retention now; how many. */
  async sweep(): Promise<number> {
    const cutoff = new Date(Date.now() - this.config.compute.jobRetentionDays * DAY_MS);
    const deleted = await deleteFinishedJobsBefore(this.db, cutoff);
    if (deleted > 0) this.log.info({ jobs: deleted, before: cutoff.toISOString() }, 'finished compute jobs past their retention deleted');
    return deleted;
  }

  private tick(): void {
    if (this.running) return; // the last sweep is still under way
    this.running = this.sweep()
      .then(() => undefined)
      .catch((error: unknown) => this.log.warn({ err: error }, 'sweeping finished compute jobs failed; the next sweep tries again'))
      .finally(() => {
        this.running = null;
      });
  }

  /** Stops sweeping, and waits for a sweep under way (it must not outlive the database). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
