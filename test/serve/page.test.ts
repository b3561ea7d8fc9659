/**
 * The page `cqseg serve` answers at `/`, in Debian's Chromium driven by playwright-core:
 * open it, upload an image, wait for the segmentation, and check that the per-class
 * pixels it shows equal the API's JSON for the same image and mode, that the reference
 * thumbnails and the overlay loaded, that the OOD warning shows exactly when the API flags
 * the image, that no console error occurred, and that at a phone's width nothing overflows.
 * Screenshots: test-output/serve-page.png and serve-page-phone.png (look at them).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { Browser } from 'playwright-core';
import sharp from 'sharp';
import { startServer, Server } from '../../src/serve/server';
import { resolveConfig } from '../../src/train/config';
import { train } from '../../src/train/trainer';
import { launchChromium } from '../helpers/browser';
import { cli } from '../helpers/cli';
import { ROOT } from '../helpers/models';
import { makeDiscDataset } from '../helpers/tiny_dataset';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-page-'));
const OUT = path.join(ROOT, 'test-output');
let data = '';
let server: Server;
let browser: Browser;
let png: Buffer;

before(async () => {
  data = await makeDiscDataset(4, [64, 64]);
  const run = path.join(root, 'run');
  await train(resolveConfig({ data, out: run, encoder: 'efficientnet-test', size: [64, 64], epochs: 1, maxStepsPerEpoch: 2, valFraction: 0, threads: 1, seed: 0 }), { progress: false });
  const bank = path.join(root, 'bank.safetensors');
  const r = await cli(['references', '--data', data, '--model', run, '--out', bank]);
  assert.equal(r.code, 0, r.err);
  const first = fs.readdirSync(path.join(data, 'images')).sort()[0];
  png = await sharp(path.join(data, 'images', first)).resize(96, 80).png().toBuffer();
  server = await startServer({ model: run, refs: bank, port: 0 });
  browser = await launchChromium();
  fs.mkdirSync(OUT, { recursive: true });
});

after(async () => {
  await browser?.close();
  await server?.close();
  fs.rmSync(root, { recursive: true, force: true });
  if (data) fs.rmSync(data, { recursive: true, force: true });
});

test('upload an image: the page shows the API\'s areas, the references, the overlay; no console errors; phone width fits', async () => {
  const errors: string[] = [];
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(server.url + '/');
  await page.waitForSelector('body[data-ready="1"]', { timeout: 20_000 });
  await page.selectOption('#mode', 'full');
  await page.setInputFiles('#files', { name: 'scene.png', mimeType: 'image/png', buffer: png });
  await page.waitForSelector('#status[data-state="done"]', { timeout: 60_000 });
  const shown = await page.$$eval('section[data-role="result"] tr[data-class]', (rows) => rows.map((r) => [r.getAttribute('data-class'), Number(r.getAttribute('data-pixels'))]));
  const api = await (await fetch(`${server.url}/v1/segment?mode=full&images=none`, { method: 'POST', body: png, headers: { 'content-type': 'image/png' } })).json() as
    { images: { classes: { name: string; pixels: number }[]; ood: { flagged: boolean | null } }[] };
  assert.deepEqual(shown, api.images[0].classes.map((c) => [c.name, c.pixels]), 'the areas shown are the API\'s');
  const thumbs = await page.$$eval('figure[data-role="reference"] img', (imgs) => imgs.map((i) => (i as unknown as { naturalWidth: number }).naturalWidth));
  assert.ok(thumbs.length >= 1 && thumbs.every((w) => w > 0), `reference thumbnails loaded: ${thumbs.join(',')}`);
  const layer = await page.$eval('canvas[data-role="mask-layer"]', (c) => { const k = c as unknown as { width: number; height: number; style: { opacity: string } }; return [k.width, k.height, k.style.opacity]; });
  assert.deepEqual(layer, [96, 80, '0.5']);
  await page.$eval('input[data-role="opacity"]', (s) => { (s as unknown as { value: string }).value = '80'; s.dispatchEvent(new Event('input')); });
  assert.equal(await page.$eval('canvas[data-role="mask-layer"]', (c) => (c as unknown as { style: { opacity: string } }).style.opacity), '0.8');
  assert.equal(await page.$('[data-role="ood-warning"]') !== null, api.images[0].ood.flagged === true, 'the OOD warning shows exactly when the API flags the image');
  const mask = await page.$eval('a[data-role="download-mask"]', (a) => (a as unknown as { href: string }).href);
  assert.match(mask, /^data:image\/png;base64,/);
  await page.screenshot({ path: path.join(OUT, 'serve-page.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
  assert.ok(overflow <= 1, `no horizontal overflow at a phone's width (${overflow} px)`);
  await page.screenshot({ path: path.join(OUT, 'serve-page-phone.png'), fullPage: true });
  assert.deepEqual(errors, [], 'no console errors');
  await page.close();
});
