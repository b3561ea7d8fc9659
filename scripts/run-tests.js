#!/usr/bin/env node
'use strict';
// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner.
// Extra arguments filter files by substring: `npm test -- safetensors`.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
function walk(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : e.name.endsWith('.test.js') ? [p] : [];
  });
}
const filters = process.argv.slice(2);
const files = walk(path.join(root, 'dist', 'test')).sort().filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('no test files found under dist/test');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], { stdio: 'inherit', cwd: root, env: { ...process.env, CQSEG_TESTING_OPS: '1' } });
process.exit(r.status === null ? 1 : r.status);
