#!/usr/bin/env node
'use strict';
// One-step set-up used by `npm test`, `npm run demo` and `npm run bench`:
//   1. find libtorch (env LIBTORCH, then the system's); install Debian's libtorch-dev
//      when none is found and we are root with apt; otherwise say how to get one;
//   2. `npm ci` when node_modules is missing or older than package-lock.json;
//   3. build the addon when its sources, libtorch or Node changed;
//   4. compile the TypeScript (incremental).
// Flags: --quiet (print only what is done), --no-install (never run apt-get),
//        --allow-ts-errors (report TypeScript errors but go on; for work in progress),
//        --with-browser (also install Debian's chromium, which the report test renders with).
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const quiet = process.argv.includes('--quiet');
const noInstall = process.argv.includes('--no-install');
const allowTsErrors = process.argv.includes('--allow-ts-errors');
const withBrowser = process.argv.includes('--with-browser');

function say(msg) {
  process.stderr.write(`[setup] ${msg}\n`);
}
function fail(msg) {
  process.stderr.write(`[setup] ERROR: ${msg}\n`);
  process.exit(1);
}
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: opts.capture ? 'pipe' : 'inherit', cwd: root, env: { ...process.env, ...(opts.env || {}) }, encoding: 'utf8' });
  if (r.error) fail(`${cmd} could not start: ${r.error.message}`);
  if (r.status !== 0) {
    if (opts.capture) process.stderr.write((r.stdout || '') + (r.stderr || ''));
    fail(`\`${cmd} ${args.join(' ')}\` failed with exit status ${r.status}`);
  }
  return r;
}
function hashFiles(files, extra) {
  const h = crypto.createHash('sha256');
  for (const f of files) {
    h.update(f);
    h.update(fs.readFileSync(path.join(root, f)));
  }
  h.update(extra);
  return h.digest('hex');
}
function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
}

const OPENBLAS = 'libopenblas0-openmp';
const major = Number(process.versions.node.split('.')[0]);
if (major < 20) fail(`Node.js 20 or newer is needed, this is ${process.version}`);

// 1. libtorch
const { find } = require('./libtorch');
let torch = find();
if (torch.error) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!process.env.LIBTORCH && !noInstall && isRoot && which('apt-get')) {
    say(`${torch.error}; installing Debian's libtorch-dev with apt-get (a few minutes, once)`);
    run('apt-get', ['update', '-q'], { capture: true });
    run('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'libtorch-dev', 'libgloo-dev', OPENBLAS], { capture: true, env: { DEBIAN_FRONTEND: 'noninteractive' } });
    torch = find();
  }
  if (torch.error) {
    fail(`${torch.error}.\nPossible solutions:\n` +
      '  - on Debian/Ubuntu: sudo apt-get install libtorch-dev\n' +
      '  - or set LIBTORCH to a libtorch prefix with include/ and lib/, e.g.\n' +
      '    LIBTORCH=$(python3 -c "import torch, os; print(os.path.dirname(torch.__file__))")\n' +
      '  - then run this command again');
  }
}
if (!quiet) say(`libtorch: ${torch.source} (${torch.libDir})${torch.cuda ? ' with CUDA' : ''}, c10d: ${torch.dist}`);

// 1a. the BLAS behind Debian's libtorch. libtorch sends some convolutions (a batch of one
// small image: the last batch of an epoch, prediction) to im2col + BLAS, so the BLAS library
// changes results like another CPU would; Debian's netlib reference BLAS (what
// --no-install-recommends leaves) is also 5-20x slower than OpenBLAS. Its OpenMP build
// shares libtorch's thread pool. Run folders record the BLAS in use (config.json 'blas').
const systemBlas = '/usr/lib/x86_64-linux-gnu/libblas.so.3';
if (!process.env.LIBTORCH && fs.existsSync(systemBlas) && !fs.realpathSync(systemBlas).includes('openblas')) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!noInstall && isRoot && which('apt-get')) {
    say(`${systemBlas} is the reference BLAS; installing Debian's ${OPENBLAS} (apt-get, once)`);
    const env = { DEBIAN_FRONTEND: 'noninteractive' };
    const args = ['install', '-y', '-q', '--no-install-recommends', OPENBLAS];
    if (spawnSync('apt-get', args, { stdio: 'ignore', env: { ...process.env, ...env } }).status !== 0) {
      run('apt-get', ['update', '-q'], { capture: true });
      run('apt-get', args, { capture: true, env });
    }
  } else if (!quiet) {
    say(`note: ${systemBlas} is the reference BLAS (slow); install ${OPENBLAS} for speed (sudo apt-get install ${OPENBLAS})`);
  }
}

// 1a'. gloo's headers, which c10d's ProcessGroupGloo includes (data-parallel training on the
// CPU: cqseg train --nproc); Debian's libtorch links libgloo but its -dev package is apart
if (!process.env.LIBTORCH && torch.dist === 'none' && fs.existsSync('/usr/include/torch/csrc/distributed/c10d/ProcessGroupGloo.hpp')) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!noInstall && isRoot && which('apt-get')) {
    say("installing Debian's libgloo-dev for data-parallel training (apt-get, once)");
    const env = { DEBIAN_FRONTEND: 'noninteractive' };
    const args = ['install', '-y', '-q', '--no-install-recommends', 'libgloo-dev'];
    if (spawnSync('apt-get', args, { stdio: 'ignore', env: { ...process.env, ...env } }).status !== 0) {
      run('apt-get', ['update', '-q'], { capture: true });
      run('apt-get', args, { capture: true, env });
    }
    torch = find();
  } else if (!quiet) {
    say('note: no gloo headers; cqseg train --nproc will be unavailable (sudo apt-get install libgloo-dev, then npm run build)');
  }
}

// 1b. a headless browser for the report test
if (withBrowser && !['chromium', 'chromium-browser', 'google-chrome'].some(which)) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!noInstall && isRoot && which('apt-get')) {
    say("installing Debian's chromium for the report test (apt-get, once)");
    run('apt-get', ['update', '-q'], { capture: true });
    run('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'chromium'], { capture: true, env: { DEBIAN_FRONTEND: 'noninteractive' } });
  } else {
    say('WARNING: no chromium found; the report test will fail. Install it: sudo apt-get install chromium');
  }
}

// 2. npm ci
const lock = path.join(root, 'package-lock.json');
const stampNpm = path.join(root, 'node_modules', '.cqseg-lock-hash');
const lockHash = hashFiles(['package-lock.json', 'package.json'], '');
if (!fs.existsSync(stampNpm) || fs.readFileSync(stampNpm, 'utf8') !== lockHash) {
  if (!fs.existsSync(lock)) fail('package-lock.json is missing');
  say('installing npm dependencies (npm ci)');
  // onnxruntime-node's install script would download CUDA binaries: cqseg uses its CPU build
  run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { env: { ONNXRUNTIME_NODE_INSTALL: 'skip' } });
  fs.writeFileSync(stampNpm, lockHash);
}

// 3. the addon
const nativeFiles = ['binding.gyp', 'scripts/libtorch.js', ...['src', 'shim'].flatMap((d) => fs.readdirSync(path.join(root, 'native', d), { recursive: true }).map(String).sort()
  .filter((f) => fs.statSync(path.join(root, 'native', d, f)).isFile()).map((f) => `native/${d}/${f}`))];
const buildHash = hashFiles(nativeFiles, JSON.stringify({ torch, node: process.version, LIBTORCH: process.env.LIBTORCH || '' }));
const addon = path.join(root, 'build', 'Release', 'cqseg_native.node');
const stampBuild = path.join(root, 'build', '.cqseg-build-hash');
if (!fs.existsSync(addon) || !fs.existsSync(stampBuild) || fs.readFileSync(stampBuild, 'utf8') !== buildHash) {
  say('building the libtorch addon (node-gyp; about a minute)');
  // configure + build (not rebuild): the old addon stays loadable until the new one replaces it
  const gyp = path.join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const extra = [];
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) extra.push(`--nodedir=${prefix}`);
  run(process.execPath, [gyp, 'configure', ...extra], { capture: true });
  run(process.execPath, [gyp, 'build', '-j', 'max', ...extra], { capture: true });
  fs.writeFileSync(stampBuild, buildHash);
}

// 4. TypeScript: the Node code, then the in-browser page's modules (tsconfig.web.json)
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
for (const project of [root, path.join(root, 'tsconfig.web.json')]) {
  const r = spawnSync(process.execPath, [tsc, '-p', project], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(r.stdout + r.stderr);
    if (!allowTsErrors) fail(`TypeScript compilation failed (${path.relative(root, project) || 'tsconfig.json'})`);
    say('TypeScript errors above (ignored: --allow-ts-errors)');
  }
}
if (!quiet) say('ready');
