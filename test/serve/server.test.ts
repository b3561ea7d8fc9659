/**
 * `cqseg serve` over real HTTP on loopback (a tiny run trained here, and its bank): every
 * endpoint; the answers for a zero-byte, truncated, non-image, oversized and
 * decompression-bomb upload, a bad mode, a full queue and a missing token; and after each
 * refusal the server still segments correctly. Areas in the JSON add up to the image and
 * equal the mask PNG's own counts.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { startServer, Server } from '../../src/serve/server';
import { resolveConfig } from '../../src/train/config';
import { train } from '../../src/train/trainer';
import * as T from '../../src/tensor';
import { readImage } from '../../src/data';
import { disposeBank, disposePrediction, openBank, openEmbedder, openSession, predictImage, predictImages } from '../../src/dcin/session';
import { cli } from '../helpers/cli';
import { makeDiscDataset } from '../helpers/tiny_dataset';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-serve-'));
let data = '';
let run = '';
let bank = '';
let server: Server;
let png: Buffer;

before(async () => {
  data = await makeDiscDataset(4, [64, 64]);
  run = path.join(root, 'run');
  await train(resolveConfig({ data, out: run, encoder: 'efficientnet-test', size: [64, 64], epochs: 1, maxStepsPerEpoch: 2, valFraction: 0, threads: 1, seed: 0 }), { progress: false });
  bank = path.join(root, 'bank.safetensors');
  const r = await cli(['references', '--data', data, '--model', run, '--out', bank]);
  assert.equal(r.code, 0, r.err);
  png = await sharp({ create: { width: 71, height: 45, channels: 3, background: { r: 200, g: 60, b: 40 } } }).png().toBuffer();
  server = await startServer({ model: run, refs: bank, port: 0, maxBodyBytes: 2 ** 20, maxPixels: 4_000_000, queue: 0 });
});

after(async () => {
  await server?.close();
  fs.rmSync(root, { recursive: true, force: true });
  if (data) fs.rmSync(data, { recursive: true, force: true });
});

const post = (body: Buffer | Uint8Array | string, type: string, query = '', headers: Record<string, string> = {}): Promise<Response> =>
  fetch(`${server.url}/v1/segment${query}`, { method: 'POST', body, headers: { 'content-type': type, ...headers } });

/** A PNG whose header claims width x height, with no pixel data worth decoding. */
function bomb(width: number, height: number): Buffer {
  const chunk = (type: string, body: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(Buffer.concat([Buffer.from(type), body])));
    return Buffer.concat([len, Buffer.from(type), body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(Buffer.alloc(64))), chunk('IEND', Buffer.alloc(0))]);
}

async function segmentsCorrectly(): Promise<void> {
  const r = await post(png, 'image/png', '?mode=auto');
  assert.equal(r.status, 200, await r.clone().text());
  const j = await r.json() as { mode: string; images: { height: number; width: number; classes: { index: number; pixels: number; fraction: number; color: number[] }[]; mask_png: string; overlay_png: string; ood: unknown; references: unknown; timings_ms: Record<string, number> }[] };
  assert.equal(j.mode, 'auto');
  const im = j.images[0];
  assert.deepEqual([im.height, im.width], [45, 71]);
  assert.equal(im.classes.reduce((s, c) => s + c.pixels, 0), 45 * 71);
  const maskPng = Buffer.from(im.mask_png, 'base64');
  const meta = await sharp(maskPng).metadata();
  assert.deepEqual([meta.height, meta.width, meta.channels], [45, 71, 1], 'an 8-bit gray PNG of class indices');
  const mask = await sharp(maskPng).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  for (const c of im.classes) assert.equal(mask.data.filter((v) => v === c.index).length, c.pixels, `class ${c.index}`);
  const ov = await sharp(Buffer.from(im.overlay_png, 'base64')).metadata();
  assert.deepEqual([ov.height, ov.width], [45, 71]);
  assert.ok(im.ood !== undefined && im.references !== undefined && im.timings_ms.predict > 0);
}

test('healthz, model and openapi; segment a PNG body: areas add up and equal the mask PNG', async () => {
  assert.deepEqual(await (await fetch(`${server.url}/healthz`)).json(), { ok: true, active: 0, queued: 0 });
  const m = await (await fetch(`${server.url}/v1/model`)).json() as { encoder: string; size: number[]; classes: { name: string; color: number[] }[]; bank: { images: number } };
  assert.equal(m.encoder, 'efficientnet-test');
  assert.deepEqual(m.size, [64, 64]);
  assert.equal(m.bank.images, 4);
  assert.ok(m.classes.length >= 2 && m.classes.every((c) => c.color.length === 3));
  const api = await (await fetch(`${server.url}/openapi.json`)).json() as { openapi: string; paths: Record<string, unknown> };
  assert.equal(api.openapi, '3.0.3');
  assert.deepEqual(Object.keys(api.paths).sort(), ['/healthz', '/v1/model', '/v1/references/{index}/thumbnail', '/v1/segment']);
  await segmentsCorrectly();
  const lean = await (await post(png, 'application/octet-stream', '?mode=none&images=none')).json() as { images: Record<string, unknown>[] };
  assert.equal(lean.images[0].mask_png, undefined);
});

test('multipart with two images gives two results in order', async () => {
  const form = new FormData();
  form.append('image', new Blob([png], { type: 'image/png' }), 'a.png');
  const jpg = await sharp(png).jpeg().toBuffer();
  form.append('image', new Blob([jpg], { type: 'image/jpeg' }), 'b.jpg');
  const r = await fetch(`${server.url}/v1/segment?mode=gris`, { method: 'POST', body: form });
  assert.equal(r.status, 200, await r.clone().text());
  const j = await r.json() as { images: { name: string; references: { gris?: { path: string } } }[] };
  assert.deepEqual(j.images.map((i) => i.name), ['a.png', 'b.jpg']);
  assert.ok(j.images.every((i) => typeof i.references.gris?.path === 'string'));
});

test('zero-byte, truncated, non-image, oversized and bomb uploads and bad modes are refused by name; the server still answers', async () => {
  const cases: [string, () => Promise<Response>, number, RegExp][] = [
    ['zero bytes', () => post(Buffer.alloc(0), 'image/png'), 400, /empty \(0 bytes\)|body/i],
    ['truncated header', () => post(png.subarray(0, 20), 'image/png'), 400, /a damaged or truncated PNG/],
    ['truncated data', () => post(png.subarray(0, png.length - 30), 'image/png'), 400, /cannot decode|damaged or truncated/],
    ['text', () => post(Buffer.from('hello, not an image'), 'image/png'), 415, /not an image cqseg can read/],
    ['json', () => post(Buffer.from('{}'), 'application/json'), 415, /send an image as the body/],
    ['oversized body', () => post(Buffer.alloc(2 ** 20 + 10, 1), 'application/octet-stream'), 413, /body|large/i],
    ['bomb', () => post(bomb(50_000, 50_000), 'image/png'), 413, /50000x50000 = 2500000000 pixels, more than the limit of 4000000/],
    ['bad mode', () => post(png, 'image/png', '?mode=magic'), 400, /column 'magic'/],
    ['exri', () => post(png, 'image/png', '?mode=exri'), 400, /expert's reference image/],
    ['adabn', () => post(png, 'image/png', '?mode=adabn'), 400, /re-estimates statistics over a whole target domain/],
    ['ensemble', () => post(png, 'image/png', '?ensemble=median'), 400, /ensemble must be softmax or logits, got 'median'/],
    ['images', () => post(png, 'image/png', '?images=url'), 400, /images must be inline or none, got 'url'/],
    ['thumbnail index', () => fetch(`${server.url}/v1/references/99/thumbnail`), 404, /no reference 99: the bank holds 4 images/],
  ];
  for (const [what, send, status, re] of cases) {
    const r = await send();
    const body = await r.text();
    assert.equal(r.status, status, `${what}: ${body}`);
    assert.match(body, re, what);
    await segmentsCorrectly();
  }
});

test('a full queue answers 503 with Retry-After; the requests it took succeed', async () => {
  const answers = await Promise.all(Array.from({ length: 12 }, () => post(png, 'image/png', '?mode=full')));
  const codes = answers.map((r) => r.status);
  assert.ok(codes.includes(200), codes.join(','));
  assert.ok(codes.includes(503), `queue 0: concurrent requests beyond the running one are refused (${codes.join(',')})`);
  for (const r of answers.filter((a) => a.status === 503)) {
    assert.equal(r.headers.get('retry-after'), '1');
    assert.match(await r.text(), /busy: .* \(limit 0\); retry shortly/);
  }
  await segmentsCorrectly();
});

test('a token is required when set (healthz excepted), and binding beyond loopback needs one', async () => {
  const s = await startServer({ model: run, port: 0, token: 'secret' });
  try {
    assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
    const no = await fetch(`${s.url}/v1/model`);
    assert.equal(no.status, 401);
    assert.match(await no.text(), /bearer token/);
    assert.equal((await fetch(`${s.url}/v1/model`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await fetch(`${s.url}/v1/model`, { headers: { authorization: 'Bearer secret' } })).status, 200);
    const r = await fetch(`${s.url}/v1/segment?mode=gris`, { method: 'POST', body: png, headers: { 'content-type': 'image/png', authorization: 'Bearer secret' } });
    assert.equal(r.status, 400, 'no bank on this server');
    assert.match(await r.text(), /needs a reference bank/);
  } finally {
    await s.close();
  }
  await assert.rejects(startServer({ model: run, host: '0.0.0.0', port: 0 }), /needs --token TOKEN/);
  assert.equal(T.memory().liveTensors >= 0, true);
});

test('concurrent requests with the same settings share a forward pass, with the answers of one at a time', async () => {
  const s = await startServer({ model: run, refs: bank, port: 0, queue: 16, maxBatch: 8 });
  try {
    const one = async (): Promise<{ classes: { pixels: number }[]; timings_ms: { batch: number } }> => {
      const r = await fetch(`${s.url}/v1/segment?mode=full&images=none`, { method: 'POST', body: png, headers: { 'content-type': 'image/png' } });
      assert.equal(r.status, 200);
      return ((await r.json()) as { images: { classes: { pixels: number }[]; timings_ms: { batch: number } }[] }).images[0];
    };
    const alone = await one();
    assert.equal(alone.timings_ms.batch, 1);
    const together = await Promise.all(Array.from({ length: 8 }, one));
    assert.ok(together.some((a) => a.timings_ms.batch > 1), `batches: ${together.map((a) => a.timings_ms.batch).join(',')}`);
    // a batch may take other conv kernels than one image: float rounding may flip a near-tied
    // pixel, so areas agree within 0.5% of the image (here they are equal)
    for (const a of together) a.classes.forEach((c, i) => assert.ok(Math.abs(c.pixels - alone.classes[i].pixels) <= 0.005 * 45 * 71, `class ${i}`));
  } finally {
    await s.close();
  }
});

test('predictImages over a batch of images of different sizes equals predictImage one at a time', async () => {
  const s = openSession(run);
  const b = openBank(bank, { verify: 'none' });
  const emb = await openEmbedder('encoder', s);
  const images = [await readImage(png), T.tidy(() => T.rand([50, 90, 3]).mul(255).to('uint8')), T.tidy(() => T.rand([64, 64, 3]).mul(255).to('uint8'))];
  try {
    for (const mode of ['none', 'full', 'auto', 'adabn-image+flip']) {
      const batch = await predictImages(s, images, { mode, bank: b, embedder: emb });
      try {
        for (let i = 0; i < images.length; i++) {
          const single = await predictImage(s, images[i], { mode, bank: b, embedder: emb });
          try {
            // batch and single may take other conv kernels: near-tied pixels may flip (here none do)
            const differ = T.tidy(() => single.labels.ne(batch[i].labels).sum().item());
            assert.ok(differ <= 0.005 * single.labels.shape[0] * single.labels.shape[1], `${mode} image ${i}: ${differ} labels differ`);
            assert.deepEqual(batch[i].summary.references, single.summary.references, `${mode} image ${i}: references`);
            assert.ok(Math.abs(batch[i].summary.confidence - single.summary.confidence) < 1e-4, `${mode} image ${i}: confidence`);
          } finally {
            disposePrediction(single);
          }
        }
      } finally {
        batch.forEach(disposePrediction);
      }
    }
  } finally {
    T.dispose(images);
    emb.dispose();
    disposeBank(b);
    s.dispose();
  }
});

test('a client that stops sending is cut off by the request timeout; SIGTERM finishes the accepted request, then exits 0', async () => {
  const s = await startServer({ model: run, port: 0, timeoutMs: 800 });
  try {
    const { port } = new URL(s.url);
    const net = await import('node:net');
    const closedAfter = await new Promise<number>((resolve) => {
      const t0 = Date.now();
      const sock = net.connect(Number(port), '127.0.0.1', () => sock.write('POST /v1/segment HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n'));
      sock.on('data', () => undefined);
      sock.on('close', () => resolve(Date.now() - t0));
      sock.on('error', () => undefined);
    });
    assert.ok(closedAfter >= 700 && closedAfter < 10_000, `closed after ${closedAfter} ms`);
    assert.equal((await fetch(`${s.url}/healthz`)).status, 200, 'still answers');
  } finally {
    await s.close();
  }
  const { spawn } = await import('node:child_process');
  const proc = spawn(process.execPath, [path.join(__dirname, '..', '..', '..', 'bin', 'cqseg'), 'serve', '--model', run, '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /cqseg serve: (http:\/\/\S+) /.exec(err);
      if (m) resolve(m[1]);
    });
    proc.on('exit', (code) => reject(new Error(`exited ${code}: ${err}`)));
  });
  // a large image keeps the request busy (decode, forward, upsampling, PNGs) while SIGTERM arrives
  const big = await sharp({ create: { width: 1600, height: 1200, channels: 3, background: { r: 90, g: 140, b: 60 } } }).png().toBuffer();
  const pending = fetch(`${url}/v1/segment?mode=none`, { method: 'POST', body: big, headers: { 'content-type': 'image/png' } });
  await new Promise((r) => setTimeout(r, 100));
  proc.kill('SIGTERM');
  const r = await pending;
  assert.equal(r.status, 200, 'the accepted request is answered');
  const answered = Date.now();
  const code = proc.exitCode ?? await new Promise<number | null>((resolve) => proc.once('exit', resolve));
  assert.equal(code, 0, err);
  assert.ok(Date.now() - answered < 10_000, 'exits once the answer is out (keep-alive connections do not hold it)');
  assert.match(err, /stopping after the accepted requests/);
});
