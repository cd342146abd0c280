import { mkdirSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * PGlite is an in-process PostgreSQL: two processes opening one data folder would corrupt it. This
 * lock is a pid file created with O_EXCL. Written by hand because lock libraries decide staleness
 * by mtime, which makes a restart after a crash wait; on one machine, "is that pid alive" is exact.
 */
export class DataDirLock {
  private constructor(private readonly path: string) {}

  static acquire(dataDir: string): DataDirLock {
    mkdirSync(dataDir, { recursive: true });
    const path = join(dataDir, 'tangent.pid');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx');
        writeSync(fd, String(process.pid));
        closeSync(fd);
        return new DataDirLock(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const owner = Number.parseInt(readFileSync(path, 'utf8'), 10);
        if (Number.isInteger(owner) && (owner === process.pid || isAlive(owner))) {
          throw new Error(
            `The data folder ${dataDir} is in use by process ${owner}; the embedded database allows one ` +
              'process at a time. Stop it, or set DATABASE_URL to share a real PostgreSQL.',
          );
        }
        rmSync(path, { force: true }); // left by a process that died: take it over
      }
    }
    throw new Error(`Could not lock the data folder ${dataDir}`);
  }

  release(): void {
    rmSync(this.path, { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
