'use strict';
// Finds a libtorch to build the addon against, in this order:
//   1. env LIBTORCH: a prefix holding include/ and lib/ (for example the `torch`
//      folder of a pip-installed PyTorch, which brings CUDA);
//   2. the system's (Debian's libtorch-dev: /usr/include + /usr/lib/<multiarch>).
// Prints build settings for binding.gyp with `--gyp KEY`, or the whole answer as JSON.
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

function multiarchDirs() {
  const dirs = [];
  try {
    const ma = execFileSync('gcc', ['-print-multiarch'], { encoding: 'utf8' }).trim();
    if (ma) dirs.push(`/usr/lib/${ma}`);
  } catch { /* no gcc: fall back to common names */ }
  dirs.push('/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib');
  return [...new Set(dirs)];
}

function hasLib(dir, name) {
  return fs.existsSync(path.join(dir, `lib${name}.so`));
}

function abiFlag(prefix) {
  // A pip-installed PyTorch states its C++ ABI in TorchConfig.cmake.
  const cfg = path.join(prefix, 'share', 'cmake', 'Torch', 'TorchConfig.cmake');
  if (fs.existsSync(cfg)) {
    const m = /_GLIBCXX_USE_CXX11_ABI=(\d)/.exec(fs.readFileSync(cfg, 'utf8'));
    if (m) return `-D_GLIBCXX_USE_CXX11_ABI=${m[1]}`;
  }
  return null;
}

/** libtorch's version from torch/version.h, e.g. [1, 13] or [2, 14]. */
function version(includeDir) {
  const file = path.join(includeDir, 'torch', 'csrc', 'api', 'include', 'torch', 'version.h');
  if (!fs.existsSync(file)) return null;
  const text = fs.readFileSync(file, 'utf8');
  const major = /#define TORCH_VERSION_MAJOR (\d+)/.exec(text);
  const minor = /#define TORCH_VERSION_MINOR (\d+)/.exec(text);
  return major && minor ? [Number(major[1]), Number(minor[1])] : null;
}

/**
 * True when ATen parallelises with OpenMP (ATen/Config.h): at::parallel_for is a header
 * template whose '#pragma omp parallel' only takes effect when the addon is compiled with
 * -fopenmp (compile only: the GOMP symbols then bind to the OpenMP runtime libtorch itself
 * loads, so a wheel's bundled libgomp is never joined by a second one).
 */
function openmp(includeDir) {
  const file = path.join(includeDir, 'ATen', 'Config.h');
  return fs.existsSync(file) && /#define AT_PARALLEL_OPENMP 1/.test(fs.readFileSync(file, 'utf8'));
}

function describe(prefix, includeDir, libDir, source) {
  const cuda = hasLib(libDir, 'torch_cuda');
  const libs = ['-ltorch', '-ltorch_cpu', '-lc10'];
  if (cuda) libs.push('-ltorch_cuda', '-lc10_cuda');
  const defines = [];
  // c10d (native/src/ops/dist.cc): ProcessGroupGloo needs gloo's headers, in the prefix (a
  // wheel's) or, for the system's libtorch, Debian's libgloo-dev (the same gloo it links)
  const c10d = fs.existsSync(path.join(includeDir, 'torch', 'csrc', 'distributed', 'c10d', 'ProcessGroupGloo.hpp'));
  const extraInclude = [];
  const glooAt = [includeDir, ...(source === 'system' ? ['/usr/include'] : [])].find((d) => fs.existsSync(path.join(d, 'gloo', 'algorithm.h')));
  if (c10d && glooAt) {
    defines.push('CQSEG_WITH_GLOO', 'USE_C10D_GLOO'); // the second as libtorch's own build defines it (ProcessGroupGloo.hpp is empty without)
    // Debian's libtorch-dev lacks the distributed-autograd header c10d's reducer.hpp includes
    if (!fs.existsSync(path.join(includeDir, 'torch', 'csrc', 'distributed', 'autograd', 'context', 'context.h'))) {
      extraInclude.push(path.join(__dirname, '..', 'native', 'shim'));
    }
  }
  if (c10d && glooAt && cuda) {
    // NCCL's header: in the prefix, or in the nvidia-nccl wheel beside torch
    const ncclAt = [includeDir, path.join(prefix, '..', 'nvidia', 'nccl', 'include')].find((d) => fs.existsSync(path.join(d, 'nccl.h')));
    if (ncclAt) {
      defines.push('CQSEG_WITH_NCCL', 'USE_C10D_NCCL');
      if (ncclAt !== includeDir) extraInclude.push(ncclAt);
    }
  }
  const abi = abiFlag(prefix);
  const v = version(includeDir);
  // ATen headers need C++20 from PyTorch 2.12 on (pytorch/pytorch#178150); C++17 before
  const std = v && (v[0] > 2 || (v[0] === 2 && v[1] >= 12)) ? 'c++20' : 'c++17';
  return {
    source,
    prefix,
    version: v ? v.join('.') : 'unknown',
    std,
    include: [includeDir, path.join(includeDir, 'torch', 'csrc', 'api', 'include'), ...extraInclude],
    dist: defines.includes('CQSEG_WITH_GLOO') ? (defines.includes('CQSEG_WITH_NCCL') ? 'gloo+nccl' : 'gloo') : 'none',
    libDir,
    libs,
    cuda,
    cflags: [...(abi ? [abi] : []), ...(openmp(includeDir) ? ['-fopenmp'] : []), ...defines.map((d) => `-D${d}`)],
    defines,
  };
}

function find() {
  const env = process.env.LIBTORCH;
  if (env) {
    const inc = path.join(env, 'include');
    const lib = path.join(env, 'lib');
    if (!fs.existsSync(path.join(inc, 'ATen', 'ATen.h')) || !hasLib(lib, 'torch')) {
      return { error: `LIBTORCH=${env} is not a libtorch prefix: expected ${inc}/ATen/ATen.h and ${lib}/libtorch.so` };
    }
    return describe(env, inc, lib, 'env LIBTORCH');
  }
  if (fs.existsSync('/usr/include/ATen/ATen.h')) {
    for (const dir of multiarchDirs()) {
      if (hasLib(dir, 'torch') && hasLib(dir, 'c10')) return describe('/usr', '/usr/include', dir, 'system');
    }
  }
  return { error: 'no libtorch found (env LIBTORCH unset; no /usr/include/ATen/ATen.h with libtorch.so)' };
}

module.exports = { find };

if (require.main === module) {
  const res = find();
  const key = process.argv[3];
  if (process.argv[2] === '--gyp') {
    if (res.error) { console.error(res.error); process.exit(1); }
    const map = {
      include: res.include.join(' '),
      libdir: res.libDir,
      libs: res.libs.join(' '),
      cflags: res.cflags.join(' '),
      rpath: `-Wl,-rpath,${res.libDir}`,
      cuda: res.cuda ? '1' : '0',
      std: `-std=${res.std}`,
    };
    process.stdout.write(map[key] ?? '');
  } else {
    console.log(JSON.stringify(res, null, 2));
  }
}
