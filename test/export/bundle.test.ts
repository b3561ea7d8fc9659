/**
 * The in-browser bundle (cqseg export --bundle) in Debian's Chromium, driven by
 * playwright-core: hosted by a plain static file server (test/helpers/static_server.ts),
 * the page segments an image with onnxruntime-web (WebAssembly) and DCIN, and its mask
 * equals `cqseg predict`'s on at least 99.5% of pixels in modes full and none (images
 * larger and smaller than the model's input). Offline: every request the page makes goes
 * to the static host and is a GET of a bundle file; nothing else is reached and nothing
 * is sent. `cqseg serve`'s /browser/ gives the same page. Screenshots:
 * test-output/bundle-page.png and bundle-page-phone.png (look at them).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { readImage } from '../../src/data';
import { disposeBank, disposePrediction, openBank, openEmbedder, openSession, predictImage, Session } from '../../src/dcin/session';
import { ReferenceBank } from '../../src/dcin/bank';
import { Embedder } from '../../src/dcin/embedders';
import { staticFiles } from '../../src/export/bundle';
import { startServer } from '../../src/serve/server';
import { resolveConfig } from '../../src/train/config';
import { train } from '../../src/train/trainer';
import { launchChromium } from '../helpers/browser';
import { cli } from '../helpers/cli';
import { ROOT } from '../helpers/models';
import { serveFolder, StaticServer } from '../helpers/static_server';
import { makeDiscDataset } from '../helpers/tiny_dataset';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-bundle-'));
const OUT = path.join(ROOT, 'test-output');
let data = '';
let run = '';
let bankFile = '';
let bundle = '';
let host: StaticServer;
let browser: Browser;
let session: Session;
let embedder: Embedder;
let bank: ReferenceBank;

before(async () => {
  data = await makeDiscDataset(6, [64, 64]);
  run = path.join(root, 'run');
  await train(resolveConfig({ data, out: run, encoder: 'efficientnet-test', size: [64, 64], epochs: 6, maxStepsPerEpoch: 3, lr: 0.01, valFraction: 0, threads: 1, seed: 0 }), { progress: false });
  bankFile = path.join(root, 'bank.safetensors');
  assert.equal((await cli(['references', '--data', data, '--model', run, '--out', bankFile, '--quiet'])).code, 0);
  bundle = path.join(root, 'site');
  const r = await cli(['export', '--model', run, '--bundle', bundle, '--refs', bankFile]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /in-browser bundle .*modes none, gris, lris, full/);
  assert.match(r.out, /onnxruntime vs cqseg .*within 1e-4/);
  host = await serveFolder(bundle);
  browser = await launchChromium();
  session = openSession(run);
  embedder = await openEmbedder('encoder', session);
  bank = openBank(bankFile, { embedder });
  fs.mkdirSync(OUT, { recursive: true });
});

after(async () => {
  await browser?.close();
  await host?.close();
  if (bank) disposeBank(bank);
  embedder?.dispose();
  session?.dispose();
  fs.rmSync(root, { recursive: true, force: true });
  if (data) fs.rmSync(data, { recursive: true, force: true });
});

interface PageResult { labelsArray: number[]; width: number; height: number; modelMs: number; runs: number; backend: string; gris?: number; lris?: number }

/** Opens the page, picks the image in a mode, and returns what the page computed; records every request and console error. */
async function segmentInPage(page: Page, url: string, name: string, png: Buffer, mode: string): Promise<PageResult> {
  await page.goto(url);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
  await page.selectOption('#mode', mode);
  await page.setInputFiles('#files', { name, mimeType: 'image/png', buffer: png });
  await page.waitForFunction(([n, m]) => {
    const w = globalThis as unknown as { cqsegLast?: { name: string; mode: string } };
    return w.cqsegLast?.name === n && w.cqsegLast.mode === m;
  }, [name, mode], { timeout: 60_000 });
  return page.evaluate(() => {
    const r = (globalThis as unknown as { cqsegLast: PageResult }).cqsegLast;
    return { labelsArray: r.labelsArray, width: r.width, height: r.height, modelMs: r.modelMs, runs: r.runs, backend: r.backend, gris: r.gris, lris: r.lris };
  });
}

async function cqsegLabels(png: Buffer, mode: string): Promise<{ labels: Uint8Array; gris?: number; lris?: number }> {
  const file = path.join(root, 'probe.png');
  fs.writeFileSync(file, png);
  const img = await readImage(file);
  const p = await predictImage(session, img, { mode, bank, embedder });
  try {
    return { labels: Uint8Array.from(p.labels.dataSync() as Uint8Array), gris: p.summary.references.gris?.index, lris: p.summary.references.lris?.index };
  } finally {
    disposePrediction(p);
    img.dispose();
  }
}

function agreement(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

test('the bundle\'s files: page, scripts, onnxruntime-web, model, model.json, DCIN data, README', () => {
  const files = fs.readdirSync(bundle).sort();
  assert.deepEqual(files, ['README.txt', 'app.js', 'dcin.js', 'dcin.json', 'index.html', 'lab8.js', 'model.json', 'model.onnx', 'ort'].sort());
  const info = JSON.parse(fs.readFileSync(path.join(bundle, 'model.json'), 'utf8')) as { size: number[]; classes: { name: string }[]; modes: string[]; dcin: string };
  assert.deepEqual([info.size, info.classes.map((c) => c.name), info.modes, info.dcin], [[64, 64], ['background', 'disc'], ['none', 'gris', 'lris', 'full'], 'dcin.json']);
  assert.match(fs.readFileSync(path.join(bundle, 'README.txt'), 'utf8'), /application\/wasm/);
});

test('in Chromium, offline: the page\'s masks equal cqseg\'s on >= 99.5% of pixels (DCIN full and none), every request a GET of a bundle file', async () => {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const errors: string[] = [];
  const foreign: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.route('**/*', (route) => {
    if (route.request().url().startsWith(host.url + '/')) return route.continue();
    foreign.push(route.request().url());
    return route.abort();
  });
  const first = fs.readdirSync(path.join(data, 'images')).sort()[1];
  const times: string[] = [];
  for (const [h, w] of [[80, 96], [48, 40]]) {
    const png = await sharp(path.join(data, 'images', first)).resize(w, h).png().toBuffer();
    for (const mode of ['full', 'none']) {
      const r = await segmentInPage(page, host.url + '/', `disc-${h}x${w}.png`, png, mode);
      const ours = await cqsegLabels(png, mode);
      const share = agreement(r.labelsArray, ours.labels);
      times.push(`${h}x${w} ${mode}: ${(r.modelMs / r.runs).toFixed(1)} ms a model run (${r.backend}), ${(100 * share).toFixed(2)}% agree`);
      assert.deepEqual([r.height, r.width], [h, w]);
      assert.ok(share >= 0.995, `${h}x${w} ${mode}: ${(100 * share).toFixed(2)}% of pixels agree with cqseg`);
      assert.deepEqual([r.gris, r.lris], [ours.gris, ours.lris], `${mode}: the same references`);
      assert.ok(r.labelsArray.some((l) => l === 1) && r.labelsArray.some((l) => l === 0), 'both classes appear: a real test of the boundary');
    }
  }
  if (process.env.CQSEG_SHOW_ERRORS) process.stderr.write(times.join('\n') + '\n');
  // a file the browser cannot decode: the page says so by name and keeps working
  await page.setInputFiles('#files', { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not an image') });
  await page.waitForSelector('#status[data-state="error"]', { timeout: 30_000 });
  assert.equal(await page.textContent('#status'), 'notes.png: not an image this browser can decode');
  assert.match(await page.textContent('.meta') ?? '', /nothing was uploaded/);
  await page.screenshot({ path: path.join(OUT, 'bundle-page.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => { const d = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document.documentElement; return d.scrollWidth - d.clientWidth; });
  assert.ok(overflow <= 0, `at a phone's width the page overflows by ${overflow} px`);
  await page.screenshot({ path: path.join(OUT, 'bundle-page-phone.png'), fullPage: true });
  await page.close();
  assert.deepEqual(foreign, [], 'no request leaves the static host');
  const bad = host.requests.filter((q) => q.method !== 'GET' || !fs.existsSync(path.join(bundle, q.url.split('?')[0])));
  assert.deepEqual(bad, [], 'only GETs of the bundle\'s files');
  assert.deepEqual(errors, []);
});

test('cqseg serve offers the same page at /browser/: it segments in the browser and posts nothing', async () => {
  const server = await startServer({ model: run, refs: bankFile, port: 0 });
  const page = await browser.newPage();
  const sent: string[] = [];
  page.on('request', (q) => { if (q.method() !== 'GET') sent.push(`${q.method()} ${q.url()}`); });
  try {
    const model = await (await fetch(`${server.url}/v1/model`)).json() as { browser: boolean };
    assert.equal(model.browser, true);
    await page.goto(server.url + '/');
    await page.waitForSelector('body[data-ready="1"]', { timeout: 20_000 });
    await page.click('#browserLink');
    await page.waitForURL('**/browser/');
    const png = await sharp(path.join(data, 'images', fs.readdirSync(path.join(data, 'images')).sort()[2])).png().toBuffer();
    const r = await segmentInPage(page, server.url + '/browser/', 'disc.png', png, 'full');
    const ours = await cqsegLabels(png, 'full');
    assert.ok(agreement(r.labelsArray, ours.labels) >= 0.995);
    assert.deepEqual(sent, [], 'nothing is posted to the server');
    assert.equal(await page.evaluate(() => (globalThis as unknown as { crossOriginIsolated: boolean }).crossOriginIsolated), true, 'cross-origin isolated: WebAssembly may use several threads');
    const wasm = await fetch(`${server.url}/browser/ort/ort-wasm-simd-threaded.jsep.wasm`, { method: 'HEAD' });
    assert.equal(wasm.headers.get('content-type'), 'application/wasm');
    assert.equal((await fetch(`${server.url}/browser/nothing.js`)).status, 404);
  } finally {
    await page.close();
    await server.close();
  }
  const guarded = await startServer({ model: run, port: 0, token: 'secret' });
  try {
    const r = await fetch(`${guarded.url}/browser/model.onnx`);
    assert.equal(r.status, 404);
    assert.match(((await r.json()) as { error: string }).error, /off on a server with a token/);
  } finally {
    await guarded.close();
  }
});

test('cqseg export --bundle refuses a folder that is not a bundle, and replaces an earlier bundle whole', async () => {
  const other = path.join(root, 'other');
  fs.mkdirSync(other);
  fs.writeFileSync(path.join(other, 'notes.txt'), 'mine');
  const r = await cli(['export', '--model', run, '--bundle', other, '--no-verify']);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /exists and is not a cqseg bundle/);
  assert.equal(fs.readFileSync(path.join(other, 'notes.txt'), 'utf8'), 'mine');
  const again = path.join(root, 'again');
  assert.equal((await cli(['export', '--model', run, '--bundle', again, '--refs', bankFile, '--no-verify'])).code, 0);
  assert.equal((await cli(['export', '--model', run, '--bundle', again, '--no-verify'])).code, 0);
  assert.ok(!fs.existsSync(path.join(again, 'dcin.json')), 'the earlier bundle\'s files are gone');
  assert.deepEqual((JSON.parse(fs.readFileSync(path.join(again, 'model.json'), 'utf8')) as { modes: string[] }).modes, ['none']);
  assert.deepEqual(fs.readdirSync(root).filter((f) => f.endsWith('.tmp')), []);
  const lone = await cli(['export', '--model', run, '--bundle', again, '--dcin', path.join(root, 'd.json')]);
  assert.equal(lone.code, 2);
  assert.match(lone.err, /--refs BANK and --dcin FILE\.json go together/);
  const pb = await cli(['export', '--model', run, '--bundle', again, '--out', path.join(root, 'm.pb')]);
  assert.equal(pb.code, 2);
  assert.match(pb.err, /--out FILE\.onnx, got '.*m\.pb'/);
  const empty = fs.mkdtempSync(path.join(root, 'nobuild-'));
  assert.throws(() => staticFiles(empty), /dist\/web\/app\.js is missing: build the page with npm run build/);
});
