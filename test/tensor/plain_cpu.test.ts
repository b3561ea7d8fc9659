/**
 * The plain C++ paths of the hand kernels, as a CPU without AVX2 runs them: the kernel
 * tests (each hand kernel against its libtorch twin) run again in a child process with
 * CQSEG_CPU=plain, which makes HasAvx2() false. Loops built twice by the compiler
 * (CQSEG_VEC, target_clones) pick their clone at load and are not switched by it.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';

const node = (file: string, env: NodeJS.ProcessEnv): { status: number | null; out: string } => {
  const clean = { ...process.env, ...env };
  delete clean.NODE_TEST_CONTEXT; // a test runner of its own, not a child of this one
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', file], { env: clean, encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
};

test('CQSEG_CPU=plain switches the hand-vectorized paths off', () => {
  const probe = "const T = require('./dist/src/tensor'); process.stdout.write(String(T.cpuHasAvx2()))";
  const root = path.resolve(__dirname, '..', '..', '..');
  const plain = spawnSync(process.execPath, ['-e', probe], { cwd: root, env: { ...process.env, CQSEG_CPU: 'plain' }, encoding: 'utf8' });
  assert.equal(plain.stdout, 'false', plain.stderr);
});

for (const file of ['fused.test.js', '../color/histogram.test.js', '../dcin/lris.test.js']) {
  test(`hand kernels on the plain path agree with libtorch: ${path.basename(file)}`, () => {
    const r = node(path.join(__dirname, file), { CQSEG_CPU: 'plain' });
    assert.equal(r.status, 0, r.out.split('\n').filter((l) => /not ok|Error|expected|actual/.test(l)).slice(0, 20).join('\n'));
    assert.match(r.out, /# pass [1-9]/);
    assert.match(r.out, /# fail 0/);
  });
}
