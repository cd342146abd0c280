import type { Database } from '../../platform/db/database.js';
import { findProducer, upsertProducer, type ProducerKey, type ProducerKind, type ProducerRef } from './producers-storage.js';

export type { ProducerKey, ProducerKind, ProducerRef };

/** The client producer: every value a training script recorded. */
export const CLIENT_PRODUCER: ProducerKey = { kind: 'CLIENT', backend: '', version: '' };

/**
 * The producer row for (kind, backend, version), created on first use in its own statement (read
 * first: a request that writes values under an existing producer writes no producer row). Call it
 * before opening the transaction that writes the values, never inside one: on PGlite a statement
 * outside an open transaction waits for it forever, and a rolled-back batch must not leave an id
 * that does not exist.
 */
export async function producerRef(db: Database, producer: ProducerKey): Promise<ProducerRef> {
  const id = (await findProducer(db, producer)) ?? (await upsertProducer(db, producer));
  return { id, kind: producer.kind };
}

/**
 * Producer ids of one database, cached for the life of the process that holds this object (the
 * compute runtime's ComputeService): producers are never deleted, so an id once read stays valid.
 * Each id is read outside any caller's transaction (see producerRef).
 */
export class ProducerIds {
  private readonly ids = new Map<string, number>();

  constructor(private readonly db: Database) {}

  async ref(producer: ProducerKey): Promise<ProducerRef> {
    const key = `${producer.kind}/${producer.backend}/${producer.version}`;
    let id = this.ids.get(key);
    if (id === undefined) {
      id = await upsertProducer(this.db, producer);
      this.ids.set(key, id);
    }
    return { id, kind: producer.kind };
  }
}
