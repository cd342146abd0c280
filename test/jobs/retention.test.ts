import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanupStack } from '../helpers/cleanup.js';
import { startTestServer } from '../helpers/server.js';
import { importUcr, JOB_FIELDS, pollJob, storeCnn } from './helpers.js';

/**
 * Finished compute jobs older than TANGENT_JOB_RETENTION_DAYS are deleted, with their chunk rows, by
 * the job system's periodic sweep; recent ones stay, and so do the values a deleted job computed.
 */
const postgres = Boolean(process.env.DATABASE_URL);

test(`a finished job older than the retention disappears after the sweep, a recent one stays (${postgres ? 'PostgreSQL' : 'PGlite'})`, { timeout: 240_000 }, async (t) => {
  const defer = cleanupStack(t);
  const server = defer(
    await startTestServer({
      env: { TANGENT_CHUNK_SIZE: '8', TANGENT_COMPUTE_THREADS: '1', TANGENT_QUEUE_POLL_SECONDS: '0.5', TANGENT_JOB_RETENTION_DAYS: '7', TANGENT_JOB_SWEEP_SECONDS: '0.5' },
    }),
    (s) => s.close(),
  );
  const { dataset, samples } = await importUcr(server, 'GunPoint');
  const cnn = await storeCnn(server, dataset, { checkpoints: 2 });
  const ids = samples.slice(0, 20).map((s) => s.id);
  const start = async (checkpointId: string) =>
    (await server.gql(`mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { ${JOB_FIELDS} } }`, { input: { checkpointId, terms: ['K_NORM'], sampleIds: ids } }))
      .computeTerms.id as string;
  const old = await start(cnn.checkpoints[0]!.id);
  const recent = await start(cnn.checkpoints[1]!.id);
  assert.equal((await pollJob(server, old)).status, 'COMPLETED');
  assert.equal((await pollJob(server, recent)).status, 'COMPLETED');

  const chunks = async (jobId: string) =>
    Number(((await server.db.sql.query('SELECT count(*)::int AS n FROM compute_job_chunk WHERE job_id = $1', [Number(jobId)])) as { n: number }[])[0]!.n);
  assert.ok((await chunks(old)) > 0);
  // Finished eight days ago (the retention is seven), and one six days ago: kept.
  await server.db.sql.query(`UPDATE compute_job SET finished_at = now() - interval '8 days' WHERE id = $1`, [Number(old)]);
  await server.db.sql.query(`UPDATE compute_job SET finished_at = now() - interval '6 days' WHERE id = $1`, [Number(recent)]);

  const job = async (id: string) => (await server.gql(`query($id: ID!) { job(id: $id) { id status } }`, { id })).job as { id: string; status: string } | null;
  const deadline = Date.now() + 30_000;
  while ((await job(old)) !== null) {
    assert.ok(Date.now() < deadline, 'the old job is still there 30 s after it passed its retention');
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(await chunks(old), 0, 'its chunk rows went with it');
  // Another sweep or two, then the recent job is still there.
  await new Promise((r) => setTimeout(r, 1500));
  assert.deepEqual(await job(recent), { id: recent, status: 'COMPLETED' });
  assert.ok((await chunks(recent)) > 0);

  // The values the deleted job computed stay: they belong to the checkpoint.
  const read = await server.gql(`query($id: ID!, $ids: [ID!]!) { checkpoint(id: $id) { sampleTerms(sampleIds: $ids, terms: [K_NORM]) { kNorm } } }`, {
    id: cnn.checkpoints[0]!.id,
    ids,
  });
  assert.ok(read.checkpoint.sampleTerms.every((r: { kNorm: unknown }) => typeof r.kNorm === 'number'));
});

test(`TANGENT_JOB_RETENTION_DAYS=0 keeps finished jobs however old (${postgres ? 'PostgreSQL' : 'PGlite'})`, { timeout: 240_000 }, async (t) => {
  const defer = cleanupStack(t);
  const server = defer(
    await startTestServer({
      env: { TANGENT_CHUNK_SIZE: '8', TANGENT_COMPUTE_THREADS: '1', TANGENT_QUEUE_POLL_SECONDS: '0.5', TANGENT_JOB_RETENTION_DAYS: '0', TANGENT_JOB_SWEEP_SECONDS: '0.5' },
    }),
    (s) => s.close(),
  );
  const { dataset, samples } = await importUcr(server, 'GunPoint');
  const cnn = await storeCnn(server, dataset);
  const { computeTerms: started } = await server.gql(`mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { id } }`, {
    input: { checkpointId: cnn.checkpoints[0]!.id, terms: ['K_NORM'], sampleIds: samples.slice(0, 10).map((s) => s.id) },
  });
  assert.equal((await pollJob(server, started.id)).status, 'COMPLETED');
  await server.db.sql.query(`UPDATE compute_job SET finished_at = now() - interval '3650 days' WHERE id = $1`, [Number(started.id)]);
  await new Promise((r) => setTimeout(r, 2000));
  const { job } = await server.gql(`query($id: ID!) { job(id: $id) { id status } }`, { id: started.id });
  assert.deepEqual(job, { id: started.id, status: 'COMPLETED' });
});
