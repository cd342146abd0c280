import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/platform/config.js';
import { ENVIRONMENT } from '../../src/platform/environment.js';
import { tangent } from './helpers.js';

async function help(args: string[]): Promise<string> {
  const cli = tangent([...args, '--help']);
  assert.equal(await cli.exited, 0, cli.stderr());
  return cli.stdout();
}

test('serve, worker and migrate --help list the environment they read, and their flags', async (t) => {
  const serve = await help(['serve']);
  for (const name of ['PORT', 'HOST', 'DATABASE_URL', 'TANGENT_DATA_DIR', 'TANGENT_BACKEND', 'TANGENT_WORKER', 'LOG_LEVEL']) {
    assert.match(serve, new RegExp(`^  ${name} +\\S`, 'm'), `serve --help names ${name}`);
  }
  for (const flag of ['--port', '--host', '--database-url', '--data-dir', '--backend']) assert.match(serve, new RegExp(`^  ${flag} `, 'm'));

  const worker = await help(['worker']);
  assert.match(worker, /^ {2}TANGENT_WORKER_CONCURRENCY +\S/m);
  assert.match(worker, /^ {2}DATABASE_URL +\S/m);
  assert.doesNotMatch(worker, /^ {2}PORT /m, 'a worker listens on nothing');

  const migrate = await help(['migrate']);
  assert.match(migrate, /^ {2}DATABASE_URL +\S/m);
  assert.doesNotMatch(migrate, /TANGENT_BACKEND/);

  const compute = await help(['compute']);
  assert.match(compute, /--url <url>/);
  assert.match(compute, /--api-key <key>/);

  const keys = await help(['keys', 'create']);
  assert.match(keys, /--url <url>/);
  t.diagnostic('help printed for serve, worker, migrate, compute, keys create');
});

test('the defaults --help shows are the ones the configuration applies', () => {
  const none = loadConfig({});
  for (const [name, setting] of Object.entries(ENVIRONMENT)) {
    if (setting.default === undefined) continue;
    assert.deepEqual(loadConfig({ [name]: setting.default }), none, `${name}=${setting.default} is the default`);
  }
});

test('a flag wins over its environment variable', () => {
  assert.equal(loadConfig({ PORT: '4000' }, { PORT: '8123' }).port, 8123);
  assert.equal(loadConfig({ PORT: '4000' }, { PORT: undefined }).port, 4000);
  assert.throws(() => loadConfig({}, { TANGENT_BACKEND: 'gpu' }), /TANGENT_BACKEND/);
});
