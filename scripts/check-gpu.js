#!/usr/bin/env node
'use strict';
// `npm run check:gpu`: the GPU check, for a machine with an NVIDIA GPU and a CUDA PyTorch.
//   1. builds the addon against PyTorch's libtorch (LIBTORCH, or the `torch` folder of
//      `python3 -c 'import torch'`), which brings CUDA and NCCL;
//   2. runs the test suite there (the CUDA tests run where libtorch sees a GPU:
//      test/train/device.test.ts; CQSEG_TEST_DEVICE=cuda is set for tests that read it);
//   3. runs the training benchmark on the GPU against PyTorch on the same GPU, in fp32 and
//      bf16 (Unet(efficientnet-b2), 512x768, batch 2, CQG);
// and ends with one JSON line: the test counts and each benchmark's time ratio.
// Afterwards `npm run build` (without LIBTORCH) goes back to the system's libtorch.
const { spawnSync } = require('child_process');
const path = require('path');

const root = path.resolve(__dirname, '..');
const python = process.env.CQSEG_PYTHON || 'python3';
const say = (m) => process.stderr.write(`[check:gpu] ${m}\n`);

function fail(m) {
  say(`ERROR: ${m}`);
  process.stdout.write(JSON.stringify({ check: 'gpu', ok: false, error: m }) + '\n');
  process.exit(1);
}

let libtorch = process.env.LIBTORCH;
if (!libtorch) {
  const r = spawnSync(python, ['-c', 'import torch, os; print(os.path.dirname(torch.__file__)); print(torch.cuda.is_available())'], { encoding: 'utf8' });
  if (r.status !== 0) fail(`${python} cannot import torch: install a CUDA PyTorch or set LIBTORCH to a CUDA libtorch`);
  const [dir, cuda] = r.stdout.trim().split('\n');
  if (cuda !== 'True') fail(`PyTorch at ${dir} sees no CUDA device`);
  libtorch = dir;
}
const env = { ...process.env, LIBTORCH: libtorch, CQSEG_PYTHON: python, CQSEG_TEST_DEVICE: 'cuda' };
say(`building against ${libtorch}`);
const build = spawnSync(process.execPath, [path.join(root, 'scripts', 'setup.js'), '--quiet', '--no-install'], { cwd: root, env, stdio: 'inherit' });
if (build.status !== 0) fail('the addon did not build against this libtorch');

say('test suite (CUDA tests included)');
const tests = spawnSync(process.execPath, [path.join(root, 'scripts', 'run-tests.js')], { cwd: root, env, encoding: 'utf8', maxBuffer: 1 << 28 });
process.stderr.write(tests.stdout.split('\n').filter((l) => /^(ℹ|✖)/.test(l)).join('\n') + '\n');
const count = (k) => Number((new RegExp(`^ℹ ${k} (\\d+)`, 'm').exec(tests.stdout) || [0, 0])[1]);
const result = { check: 'gpu', libtorch, tests: { total: count('tests'), pass: count('pass'), fail: count('fail'), skipped: count('skipped') } };

for (const precision of ['fp32', 'bf16']) {
  say(`training benchmark, ${precision}`);
  const b = spawnSync(process.execPath, [path.join(root, 'scripts', 'bench.js'), 'train', '--device', 'cuda', '--precision', precision, '--size', '512x768', '--mode', 'cqg', '--steps', '10', '--rounds', '2'],
    { cwd: root, env, encoding: 'utf8', maxBuffer: 1 << 26 });
  process.stderr.write(b.stdout);
  const last = b.stdout.trim().split('\n').pop() || '{}';
  try {
    const j = JSON.parse(last);
    result[`train_${precision}_time_ratio_cqseg_over_pytorch`] = j['cqg_512x768_time_ratio_cqseg_over_pytorch'] ?? null;
    result[`train_${precision}_cqseg_ms_per_step`] = j['cqg_512x768_cqseg_ms_per_step'] ?? null;
  } catch {
    result[`train_${precision}_error`] = (b.stderr || '').slice(-500);
  }
}
result.ok = result.tests.fail === 0 && tests.status === 0;
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(result.ok ? 0 : 1);
