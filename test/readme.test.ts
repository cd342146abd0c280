import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * The README's first query and tour, run in order against a live server on a fresh database, as a
 * newcomer would paste them: every ```sh block through bash (with the README's address replaced by
 * the test server's), every ```graphql block as one POST. A step that fails, or whose output carries
 * GraphQL errors, fails the test with the step and what it printed, so the README cannot drift from
 * what Tangent does.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
/** The address the README's commands use; the test server's replaces it. */
const README_ADDRESS = 'http://127.0.0.1:4000';

interface Step {
  lang: 'sh' | 'graphql';
  code: string;
  /** 1-based line of the block's opening fence, for messages. */
  line: number;
}

/** The fenced sh and graphql blocks from the first query to the end of the tour, in order. */
function tourSteps(markdown: string): Step[] {
  const start = markdown.indexOf('\n## A first query');
  const end = markdown.indexOf('\n## ', markdown.indexOf('\n## A tour') + 1);
  assert.ok(start >= 0 && end > start, 'the README has "## A first query" and "## A tour" sections');
  const steps: Step[] = [];
  const fence = /^```(\w+)\n([\s\S]*?)^```$/gm;
  for (const match of markdown.slice(start, end).matchAll(fence)) {
    const lang = match[1];
    if (lang !== 'sh' && lang !== 'graphql') continue;
    const line = markdown.slice(0, start + match.index).split('\n').length;
    steps.push({ lang, code: match[2]!, line });
  }
  return steps;
}

function runShell(script: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    // -e without pipefail: `curl … | head` may end curl early, as it would in a terminal.
    const child = spawn('bash', ['-e', '-c', script], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    // A hung step is killed, never waited on forever.
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

const steps = tourSteps(README);
let t: TestServer;
let base: string;

before(async () => {
  t = await startTestServer();
  base = new URL(t.url).origin;
});
after(() => t?.close());

describe('README', { timeout: 600_000 }, () => {
  test('has a tour of sh commands and GraphQL queries', () => {
    assert.ok(steps.filter((s) => s.lang === 'sh').length >= 3, 'sh steps');
    assert.ok(steps.filter((s) => s.lang === 'graphql').length >= 2, 'graphql steps');
    // A clone has nothing beside it: no link or path may climb out of the repository.
    assert.doesNotMatch(README, /(^|[\s("'`=])\.\.\//m, 'the README refers to nothing outside the repository');
  });

  test('every step of the first query and the tour runs, in order, without errors', async () => {
    // Variables a block sets (U=…) stay set for the later blocks, as in one terminal.
    const assignments: string[] = [];
    for (const step of steps) {
      const where = `README.md:${step.line} (${step.lang})`;
      if (step.lang === 'graphql') {
        const response = await fetch(`${base}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: step.code }),
        });
        const body = (await response.json()) as { data?: unknown; errors?: unknown[] };
        assert.equal(body.errors, undefined, `${where}: ${JSON.stringify(body.errors)}`);
        assert.ok(body.data && Object.values(body.data).every((v) => v !== null), `${where}: empty answer ${JSON.stringify(body.data)}`);
        continue;
      }
      const text = step.code.replaceAll(README_ADDRESS, base);
      const script = [...assignments, text].join('\n');
      assignments.push(...text.split('\n').filter((l) => /^[A-Za-z_]\w*=\S+$/.test(l)));
      // The CLI runs from the sources under test, not from a build that may be older.
      const { code, output } = await runShell(script, { TANGENT_FROM_SOURCE: '1', NO_COLOR: '1' });
      assert.equal(code, 0, `${where} exited ${code}:\n${output}`);
      assert.doesNotMatch(output, /"errors"\s*:/, `${where} printed GraphQL errors:\n${output}`);
    }
  });
});
