/**
 * The in-browser bundle: a folder any static host can serve, in which the page segments
 * images with the exported model and DCIN entirely in the browser (onnxruntime-web:
 * WebGPU where offered, else WebAssembly). `cqseg export --bundle DIR` writes it and
 * `cqseg serve` answers the same files under /browser/.
 *
 *   index.html    the page (src/web/page.ts)
 *   app.js, dcin.js, lab8.js   its script, ES modules (src/web/, compiled by tsconfig.web.json)
 *   model.onnx    the run's Unet (export/onnx.ts)
 *   model.json    BundleInfo: title, encoder, input size, classes and colors, modes, file names
 *   dcin.json     the DCIN data (export/dcin_data.ts), when a bank is given
 *   ort/          onnxruntime-web's loader and its WebAssembly binary
 *   README.txt    how to host it
 *
 * A static host must serve .mjs and .js as text/javascript and .wasm as application/wasm.
 * WebAssembly uses several threads only on a cross-origin isolated page (headers
 * Cross-Origin-Opener-Policy: same-origin, Cross-Origin-Embedder-Policy: require-corp);
 * without them it runs on one.
 */
import * as fs from 'fs';
import * as path from 'path';
import { z } from 'zod';
import { Session } from '../dcin/session';
import { CqsegError } from '../util/errors';
import { commitTemp, discardTemp, tempPath } from '../util/atomic';
import { readJsonFile } from '../util/schema';
import { BUNDLE_HTML } from '../web/page';
import { DcinData } from './dcin_data';
import { exportUnet } from './onnx';

/** package.json's root from this compiled file (dist/src/export/). */
const ROOT = path.join(__dirname, '..', '..', '..');

/** onnxruntime-web's files the page loads (ort.min.js: WebGPU and WebAssembly in one loader). */
const ORT_FILES = ['ort.min.js', 'ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.wasm'];
/** The page's compiled modules (dist/web/). */
const WEB_FILES = ['app.js', 'dcin.js', 'lab8.js'];

/** Content types of the bundle's files, by extension. */
export const BUNDLE_MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm',
  '.json': 'application/json', '.onnx': 'application/octet-stream', '.txt': 'text/plain; charset=utf-8',
};

/** One file of the bundle: bytes, or a file to copy. */
export interface BundleFile {
  name: string;
  data?: Buffer | string;
  from?: string;
}

/** cqseg's version, from package.json. */
export function cqsegVersion(): string {
  return readJsonFile(path.join(ROOT, 'package.json'), z.object({ version: z.string() }).passthrough(), 'package.json').version;
}

/** The session's run as ONNX with its metadata (classes, colors, size, normalisation, version, the run's config). */
export function exportRun(s: Session, opts: { fp16?: boolean } = {}): Uint8Array {
  return exportUnet(s.model, {
    classNames: s.info.classNames, colors: s.palette, size: s.info.size, mean: s.info.preprocessing.mean, std: s.info.preprocessing.std,
    version: cqsegVersion(), metadata: { run_config: fs.readFileSync(path.join(s.runDir, 'config.json'), 'utf8') }, fp16: opts.fp16 === true,
  });
}

function need(file: string, fix: string): string {
  if (!fs.existsSync(file)) throw new CqsegError(`${file} is missing: ${fix}`, 'ERR_BUNDLE');
  return file;
}

/** The static files (page, scripts, onnxruntime-web), resolved where this install (`root`) keeps them. */
export function staticFiles(root = ROOT): BundleFile[] {
  const ortDist = path.dirname(require.resolve('onnxruntime-web')); // its dist/ (the package exports no package.json)
  return [
    { name: 'index.html', data: BUNDLE_HTML },
    ...WEB_FILES.map((f) => ({ name: f, from: need(path.join(root, 'dist', 'web', f), 'build the page with npm run build (tsc -p tsconfig.web.json)') })),
    ...ORT_FILES.map((f) => ({ name: `ort/${f}`, from: need(path.join(ortDist, f), 'reinstall onnxruntime-web (npm ci)') })),
  ];
}

/** model.json of a bundle: what the page needs to know of the model (web/app.ts BundleInfo). */
export function bundleInfo(s: Session, dcin: boolean): Record<string, unknown> {
  return {
    title: path.basename(path.resolve(s.runDir)), encoder: s.info.model.encoder, version: cqsegVersion(), size: s.info.size,
    classes: s.info.classNames.map((name, index) => ({ index, name, color: s.palette[index] })),
    model: 'model.onnx', dcin: dcin ? 'dcin.json' : null, modes: dcin ? ['none', 'gris', 'lris', 'full'] : ['none'],
  };
}

const README = `cqseg in the browser: a static bundle
======================================
Open index.html through any static web server (not file://), for example
  python3 -m http.server 8080     (then http://localhost:8080/)
The page segments the images you pick with model.onnx and the DCIN data in dcin.json,
in the browser (onnxruntime-web: WebGPU where offered, else WebAssembly). Images are
never sent anywhere.
The server must send .js and .mjs as text/javascript and .wasm as application/wasm.
For several WebAssembly threads, also send
  Cross-Origin-Opener-Policy: same-origin
  Cross-Origin-Embedder-Policy: require-corp
(without them it runs on one thread).
`;

/** Every file of a bundle for a session: the model bytes, and the DCIN data when a bank is given. */
export function bundleFiles(s: Session, model: Uint8Array, dcin?: DcinData): BundleFile[] {
  return [
    ...staticFiles(),
    { name: 'model.onnx', data: Buffer.from(model.buffer, model.byteOffset, model.byteLength) },
    { name: 'model.json', data: JSON.stringify(bundleInfo(s, dcin !== undefined), null, 2) + '\n' },
    ...(dcin ? [{ name: 'dcin.json', data: JSON.stringify(dcin) + '\n' }] : []),
    { name: 'README.txt', data: README },
  ];
}

/**
 * Writes a bundle into `dir` as a whole: the files go to a temp folder beside it, which
 * then replaces `dir` (an earlier bundle there is replaced; any other non-empty folder is refused).
 */
export function writeBundle(dir: string, files: BundleFile[]): void {
  const abs = path.resolve(dir);
  if (fs.existsSync(abs)) {
    const entries = fs.readdirSync(abs);
    if (entries.length > 0 && !entries.includes('model.json')) throw new CqsegError(`${dir} exists and is not a cqseg bundle: choose a new or empty folder`, 'ERR_BUNDLE');
  }
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  const tmp = tempPath(abs);
  try {
    for (const f of files) {
      const to = path.join(tmp, f.name);
      fs.mkdirSync(path.dirname(to), { recursive: true });
      if (f.from !== undefined) fs.copyFileSync(f.from, to);
      else fs.writeFileSync(to, f.data ?? '');
    }
  } catch (err) {
    discardTemp(tmp);
    throw err;
  }
  const old = fs.existsSync(abs) ? tempPath(abs) : undefined;
  if (old) fs.renameSync(abs, old);
  try {
    commitTemp(tmp, abs);
  } catch (err) {
    if (old) fs.renameSync(old, abs); // the earlier bundle back in place
    throw err;
  }
  if (old) discardTemp(old);
}
