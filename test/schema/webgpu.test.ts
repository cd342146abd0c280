import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { computeTerms, initBackend, loadModel } from '../../src/compute/index.js';
import { probeAdapter } from '../../src/compute/webgpu.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { importUcr, storeCnn } from '../jobs/helpers.js';

/**
 * A server on TANGENT_BACKEND=webgpu (CI: Mesa's lavapipe): serverInfo names the adapter, and the
 * terms it computes over the API are the engine's on wasm. Skipped where Dawn finds no adapter.
 */
const probe = await probeAdapter();
const skip = 'reason' in probe ? `webgpu: ${probe.reason}` : false;

describe('a server on webgpu', { skip }, () => {
  let t: TestServer;
  let samples: Awaited<ReturnType<typeof importUcr>>['samples'];
  let cnn: Awaited<ReturnType<typeof storeCnn>>;

  before(async () => {
    t = await startTestServer({ env: { TANGENT_BACKEND: 'webgpu' } });
    const imported = await importUcr(t, 'GunPoint');
    samples = imported.samples;
    cnn = await storeCnn(t, imported.dataset);
  });
  after(() => t?.close());

  test('serverInfo.backend reports webgpu on one thread and the adapter', async () => {
    const { backend } = (await t.gql(`{ serverInfo { backend { name gpu version threads adapter { vendor architecture device description software } } } }`)).serverInfo;
    assert.ok('adapter' in probe);
    assert.equal(backend.name, 'webgpu');
    assert.equal(backend.threads, 1);
    assert.equal(backend.gpu, !probe.adapter.software);
    const { vendor, architecture, device, description, software } = probe.adapter;
    assert.deepEqual(backend.adapter, { vendor, architecture, device, description, software });
    assert.match(backend.version, /webgpu 4\.22\.0 on Dawn/);
  });

  test('logits, π, loss, G and the kernel terms over the API equal the engine on wasm', async () => {
    const ids = samples.slice(0, 6).map((s) => s.id);
    const res = await t.gql(
      `query($id: ID!, $ids: [ID!]!) { checkpoint(id: $id) { sampleTerms(sampleIds: $ids, terms: [K_NORM, K_TRACE, LOSS, G_NORM]) { kNorm kTrace loss gNorm logits provenance { term producer { backend } } } } }`,
      { id: cnn.checkpoints[0]!.id, ids },
    );
    await initBackend('wasm', () => undefined);
    const c = cnn.checkpoints[0]!;
    const m = await loadModel({ architecture: 'cnn1d', config: cnn.config, weightSpecs: c.weightSpecs, weightData: c.weightData });
    const rows = ids.map((id) => samples.find((s) => s.id === id)!);
    const want = await computeTerms(m, new Float32Array(rows.flatMap((r) => r.series)), rows.map((r) => r.label));
    m.dispose();
    const V = m.classes;
    const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
    (res.checkpoint.sampleTerms as Array<{ kNorm: number; kTrace: number; loss: number; gNorm: number; logits: number[]; provenance: Array<{ term: string; producer: { backend: string } }> }>).forEach((r, i) => {
      close(r.kNorm, want.kNorm[i]!, `kNorm ${i}`);
      close(r.kTrace, want.kTrace[i]!, `kTrace ${i}`);
      close(r.loss, want.loss![i]!, `loss ${i}`);
      close(r.gNorm, want.gNorm![i]!, `gNorm ${i}`);
      r.logits.forEach((z, j) => close(z, want.logits[i * V + j]!, `logit ${i},${j}`));
      assert.equal(r.provenance.find((p) => p.term === 'K_NORM')?.producer.backend, 'webgpu');
    });
  });
});
