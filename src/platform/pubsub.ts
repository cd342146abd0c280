import { EventEmitter, on } from 'node:events';
import type { Database } from './db/database.js';
import { notify } from './db/notify.js';
import type { Logger } from './logger.js';

/** The events subscriptions follow. Payloads are small: subscribers reload what they show. */
export interface Events {
  runUpdated: { runId: number };
  /** An API key was revoked: every server closes the WebSocket connections that use it. */
  apiKeyRevoked: { keyId: number };
  /** A compute job moved: a chunk committed, or its status changed (src/jobs). Subscribers reload the job. */
  jobProgress: { jobId: number };
}

const CHANNEL = 'tangent_events';

/**
 * Publish/subscribe across every Tangent process on one database, over PostgreSQL's
 * LISTEN/NOTIFY (PGlite has it too), so a worker on another machine can wake a subscriber here.
 * One LISTEN per process; events fan out locally through an EventEmitter.
 */
export class PubSub {
  private readonly local = new EventEmitter({ captureRejections: false });
  private unlisten: (() => Promise<void>) | null = null;

  private constructor(
    private readonly db: Database,
    private readonly log: Logger,
  ) {
    this.local.setMaxListeners(0);
  }

  static async start(db: Database, log: Logger): Promise<PubSub> {
    const pubsub = new PubSub(db, log);
    pubsub.unlisten = await db.listen(CHANNEL, (payload) => pubsub.dispatch(payload));
    return pubsub;
  }

  async publish<T extends keyof Events>(topic: T, event: Events[T]): Promise<void> {
    await notify(this.db, CHANNEL, JSON.stringify({ topic, event }));
  }

  /**
   * Like `publish`, but this process's subscribers get the event at once, before the NOTIFY comes
   * back, and then once more from it. For events whose handling is idempotent and must not wait for
   * the round trip: a key revoked here is refused here by the next request (the revocation's own
   * response must not race it).
   */
  async publishNow<T extends keyof Events>(topic: T, event: Events[T]): Promise<void> {
    this.local.emit(topic, event);
    await this.publish(topic, event);
  }

  /** An async iterator of one topic's events, ended when the consumer returns (unsubscribes). */
  subscribe<T extends keyof Events>(topic: T, signal?: AbortSignal): AsyncIterableIterator<Events[T]> {
    const iterator = on(this.local, topic, signal ? { signal } : {});
    return (async function* () {
      for await (const [event] of iterator) yield event as Events[T];
    })();
  }

  async close(): Promise<void> {
    await this.unlisten?.();
    this.local.removeAllListeners();
  }

  private dispatch(payload: string): void {
    try {
      const { topic, event } = JSON.parse(payload) as { topic: string; event: unknown };
      this.local.emit(topic, event);
    } catch (error) {
      this.log.warn({ err: error, payload }, 'ignoring a malformed event');
    }
  }
}
