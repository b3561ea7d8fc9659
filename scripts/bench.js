#!/usr/bin/env node
'use strict';
// `npm run bench -- NAME [args]`: runs bench/NAME.ts (compiled to dist/bench/NAME.js).
// A benchmark prints readable lines and ends with exactly one line of JSON.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const dir = path.join(root, 'dist', 'bench');
const names = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.js') && !f.startsWith('_')).map((f) => f.slice(0, -3)).sort() : [];
const [name, ...rest] = process.argv.slice(2);
if (!name || !names.includes(name)) {
  console.error(`usage: npm run bench -- NAME [args]\nbenchmarks: ${names.join(', ') || '(none built)'}`);
  process.exit(2);
}
const r = spawnSync(process.execPath, ['--expose-gc', path.join(dir, `${name}.js`), ...rest], { stdio: 'inherit', cwd: root, env: { ...process.env, CQSEG_TESTING_OPS: '1' } });
process.exit(r.status === null ? 1 : r.status);
