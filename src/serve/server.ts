/**
 * `cqseg serve`: a trained run (and optionally its reference bank) loaded once and served
 * over HTTP with fastify:
 *   POST /v1/segment   an image as the body (image/png, image/jpeg, ... or
 *                      application/octet-stream), or multipart/form-data with one or more
 *                      image files; query: mode (a DCIN column, default auto with a bank,
 *                      else none), ensemble, robust, images=inline|none. Answers JSON per
 *                      image: classes with colors, areas and confidence, the references
 *                      chosen, the OOD distance and flag, timings, and the mask (8-bit PNG
 *                      of class indices) and overlay (PNG) inline as base64 unless images=none.
 *   GET  /v1/model     encoder, input size, classes and colors, the bank's summary
 *   GET  /healthz      { ok, queued, active }
 *   GET  /openapi.json the API as an OpenAPI 3.0 document
 *   GET  /v1/references/N/thumbnail   a reference image of the bank, at most 160 px
 *   GET  /             the web page (page.ts)
 *   GET  /browser/     the in-browser mode: the page of cqseg export --bundle (export/bundle.ts),
 *                      which runs the model and DCIN in the browser; its files are made on
 *                      the first request. Off on a server with a token (it hands out the model).
 * Safe to leave running: binds 127.0.0.1 unless told otherwise, and then needs a bearer
 * token; limits on body bytes and on pixels (read from the header before anything is
 * decoded, so a small file that claims 50,000 x 50,000 is refused); the content is sniffed
 * (what is not an image is a 415 naming the problem); a bounded queue (503 with
 * Retry-After when full); a request timeout; no parameter names a server path; SIGTERM
 * (close()) finishes what was accepted. One forward pass runs at a time (it already uses
 * every thread libtorch has); concurrent requests with the same settings share it, up to
 * `maxBatch` images (Batcher).
 */
import Fastify, { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import { encodePng, imageSize, readImage } from '../data';
import { DCIN_MODES } from '../dcin/predict';
import { parseColumn } from '../dcin/columns';
import { ReferenceBank } from '../dcin/bank';
import { Embedder } from '../dcin/embedders';
import { disposeBank, disposePrediction, ImagePrediction, openBank, openEmbedder, openSession, overlay, predictImages, Session } from '../dcin/session';
import * as T from '../tensor';
import { CqsegError } from '../util/errors';
import { pixelLimit } from '../util/memory';
import { OPENAPI } from './openapi';
import { PAGE_HTML } from './page';
import { BUNDLE_MIME, bundleFiles, BundleFile, exportRun } from '../export/bundle';
import { dcinData } from '../export/dcin_data';
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';

export interface ServeOptions {
  /** the run folder */
  model: string;
  /** a reference bank made for this run (cqseg references) */
  refs?: string;
  host?: string;
  /** 0: any free port */
  port?: number;
  /** required as `Authorization: Bearer TOKEN` when given; needed to bind beyond 127.0.0.1 */
  token?: string;
  /** largest request body (default 32 MiB) */
  maxBodyBytes?: number;
  /** largest image, in pixels (default: cqseg's decoding limit, util/memory.ts) */
  maxPixels?: number;
  /** requests that may wait while one runs (default 8); more get 503 */
  queue?: number;
  /** images one forward pass may take from concurrent requests of the same settings (default 8; 1: no batching) */
  maxBatch?: number;
  /** where the model computes (a resolved device; default the CPU) */
  device?: string;
  /** per request, queueing included (default 120 s) */
  timeoutMs?: number;
  /** log requests (fastify's logger) */
  log?: boolean;
}

/** An HTTP answer other than 200, with its status. */
class HttpError extends CqsegError {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message, `ERR_HTTP_${status}`);
  }
}

export interface Server {
  app: FastifyInstance;
  url: string;
  /** stops accepting, finishes what was accepted, frees the model */
  close(): Promise<void>;
}

/** A request's images waiting for the model, with the settings they share. */
interface Job {
  /** requests with the same key may share a forward pass */
  key: string;
  images: T.Tensor[];
  run: (images: T.Tensor[]) => Promise<ImagePrediction[]>;
  resolve: (p: ImagePrediction[]) => void;
  reject: (e: unknown) => void;
}

/**
 * One forward pass at a time over a bounded wait list; when the model frees up, the
 * waiting requests that share the first one's settings (mode, ensemble, robust) go through
 * it together, up to `maxBatch` images (predictImages: the values of one at a time).
 */
class Batcher {
  private waiting: Job[] = [];
  active = 0;
  private running = false;

  constructor(private readonly limit: number, private readonly maxBatch: number) {}

  get queued(): number {
    return this.waiting.length;
  }

  submit(key: string, images: T.Tensor[], run: Job['run']): Promise<ImagePrediction[]> {
    if (this.waiting.length + (this.running ? 1 : 0) > this.limit) {
      throw new HttpError(503, `busy: ${this.active} request${this.active === 1 ? '' : 's'} running and ${this.waiting.length} waiting (limit ${this.limit}); retry shortly`, { 'retry-after': '1' });
    }
    return new Promise<ImagePrediction[]>((resolve, reject) => {
      this.waiting.push({ key, images, run, resolve, reject });
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.running || this.waiting.length === 0) return;
    this.running = true;
    const first = this.waiting.shift()!;
    const batch = [first];
    let n = first.images.length;
    for (let i = 0; i < this.waiting.length && n < this.maxBatch;) {
      const j = this.waiting[i];
      if (j.key === first.key && n + j.images.length <= this.maxBatch) {
        batch.push(j);
        n += j.images.length;
        this.waiting.splice(i, 1);
      } else i++;
    }
    this.active = batch.length;
    try {
      const all = await first.run(batch.flatMap((j) => j.images));
      let k = 0;
      for (const j of batch) {
        j.resolve(all.slice(k, k + j.images.length));
        k += j.images.length;
      }
    } catch (err) {
      for (const j of batch) j.reject(err);
    } finally {
      this.active = 0;
      this.running = false;
      void this.pump();
    }
  }
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** The image format a file's first bytes announce (PNG, JPEG, GIF, WebP, TIFF), or null. */
function imageSignature(b: Buffer): string | null {
  const starts = (...bytes: number[]): boolean => bytes.every((v, i) => b[i] === v);
  if (starts(0x89, 0x50, 0x4e, 0x47)) return 'PNG';
  if (starts(0xff, 0xd8, 0xff)) return 'JPEG';
  if (starts(0x47, 0x49, 0x46, 0x38)) return 'GIF';
  if (starts(0x52, 0x49, 0x46, 0x46) && b.subarray(8, 12).toString('latin1') === 'WEBP') return 'WebP';
  if (starts(0x49, 0x49, 0x2a, 0x00) || starts(0x4d, 0x4d, 0x00, 0x2a)) return 'TIFF';
  return null;
}

export async function startServer(opts: ServeOptions): Promise<Server> {
  const host = opts.host ?? '127.0.0.1';
  if (!LOOPBACK.has(host) && !opts.token) {
    throw new CqsegError(`serving on ${host} (beyond this machine) needs --token TOKEN (clients send Authorization: Bearer TOKEN)`, 'ERR_USAGE');
  }
  const maxBody = opts.maxBodyBytes ?? 32 * 2 ** 20;
  const maxPixels = opts.maxPixels ?? pixelLimit().pixels;
  const session: Session = openSession(opts.model, { device: opts.device });
  let bank: ReferenceBank | undefined;
  let embedder: Embedder | undefined;
  try {
    if (opts.refs) {
      embedder = await openEmbedder('encoder', session);
      bank = openBank(opts.refs, { embedder, verify: 'exists', device: session.device });
    }
  } catch (err) {
    embedder?.dispose();
    session.dispose();
    throw err;
  }
  const queue = new Batcher(opts.queue ?? 8, opts.maxBatch ?? 8);
  // requestTimeout bounds a request's arrival; connectionTimeout closes a socket idle that long (a client that stops sending)
  const app = Fastify({ logger: opts.log ?? false, bodyLimit: maxBody, requestTimeout: opts.timeoutMs ?? 120_000, connectionTimeout: opts.timeoutMs ?? 120_000 });
  await app.register(multipart, { limits: { fileSize: maxBody, files: 16, fields: 16 } });
  app.addContentTypeParser(/^(application\/octet-stream|image\/[-+.\w]+)$/, { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    // /browser/ answers a server with a token itself (its mode is off there)
    if (!opts.token || req.url === '/healthz' || req.url === '/' || req.url.startsWith('/browser')) return;
    if (req.headers.authorization !== `Bearer ${opts.token}`) {
      await reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'missing or wrong bearer token (Authorization: Bearer TOKEN)' });
    }
  });
  // once closing, answers end their connection, so close() need not wait out keep-alive
  let closing = false;
  app.addHook('onSend', async (_req, reply, payload) => {
    if (closing) reply.header('connection', 'close');
    return payload;
  });
  app.setErrorHandler(async (err: Error & { statusCode?: number }, _req, reply) => {
    if (err instanceof HttpError) return reply.code(err.status).headers(err.headers).send({ error: err.message });
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return reply.code(err.statusCode).send({ error: err.message });
    if (err instanceof CqsegError) return reply.code(400).send({ error: err.message });
    return reply.code(500).send({ error: `internal error: ${err.message}` });
  });

  const classes = session.info.classNames.map((name, index) => ({ index, name, color: session.palette[index] }));
  app.get('/', async (_req, reply) => reply
    .type('text/html; charset=utf-8')
    // everything the page needs is in it: nothing may load from elsewhere
    .header('content-security-policy', "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'")
    .send(PAGE_HTML));
  app.get('/healthz', async () => ({ ok: true, active: queue.active, queued: queue.queued }));
  app.get('/v1/references/:index/thumbnail', async (req: FastifyRequest<{ Params: { index: string } }>, reply) => {
    const i = Number(req.params.index);
    if (!bank) throw new HttpError(404, 'this server has no reference bank');
    if (!Number.isInteger(i) || i < 0 || i >= bank.images.length) throw new HttpError(404, `no reference ${req.params.index}: the bank holds ${bank.images.length} images`);
    const png = await sharp(bank.images[i].path).resize(160, 160, { fit: 'inside' }).png().toBuffer();
    return reply.type('image/png').header('cache-control', 'max-age=3600').send(png);
  });
  app.get('/openapi.json', async () => OPENAPI);
  // the in-browser mode: the bundle of cqseg export --bundle, made on first request
  let browserFiles: Promise<Map<string, BundleFile>> | undefined;
  const browser = (): Promise<Map<string, BundleFile>> => (browserFiles ??= (async () => {
    const files = bundleFiles(session, exportRun(session), bank ? dcinData(bank) : undefined);
    return new Map(files.map((f) => [f.name, f]));
  })());
  app.get('/browser', async (_req, reply) => reply.redirect('/browser/'));
  app.get('/browser/*', async (req: FastifyRequest<{ Params: { '*': string } }>, reply) => {
    if (opts.token) throw new HttpError(404, 'the in-browser mode hands the model to whoever loads the page, so it is off on a server with a token; give users a bundle instead (cqseg export --bundle DIR)');
    const name = req.params['*'] || 'index.html';
    const f = (await browser()).get(name);
    if (!f) throw new HttpError(404, `no file '${name}' in the in-browser bundle`);
    return reply
      .type(BUNDLE_MIME[path.extname(name)] ?? 'application/octet-stream')
      // cross-origin isolation: onnxruntime-web may then use several WebAssembly threads
      .header('cross-origin-opener-policy', 'same-origin')
      .header('cross-origin-embedder-policy', 'require-corp')
      .send(f.from !== undefined ? fs.createReadStream(f.from) : f.data);
  });
  app.get('/v1/model', async () => ({
    encoder: session.info.model.encoder, size: session.info.size, classes,
    bank: bank ? { images: bank.images.length, gris: bank.gris.path, embedder: bank.embedder, ood: bank.ood !== undefined } : null,
    modes: bank ? [...DCIN_MODES] : ['none'],
    browser: !opts.token,
    device: session.device,
  }));

  app.post('/v1/segment', async (req: FastifyRequest<{ Querystring: Record<string, string | undefined> }>) => {
    const q = req.query;
    const mode = q.mode ?? (bank ? 'auto' : 'none');
    const col = (() => {
      try {
        return parseColumn(mode);
      } catch (err) {
        throw new HttpError(400, (err as Error).message);
      }
    })();
    if (!bank && col.dcin !== 'none') throw new HttpError(400, `mode '${mode}' needs a reference bank: start the server with --refs BANK`);
    if (col.dcin === 'exri') throw new HttpError(400, "mode 'exri' needs an expert's reference image, which the server does not take");
    if (col.adapt === 'adabn') throw new HttpError(400, "'+adabn' re-estimates statistics over a whole target domain, which a request is not; use '+adabn-image'");
    if (q.ensemble !== undefined && q.ensemble !== 'softmax' && q.ensemble !== 'logits') throw new HttpError(400, `ensemble must be softmax or logits, got '${q.ensemble}'`);
    if (q.images !== undefined && q.images !== 'inline' && q.images !== 'none') throw new HttpError(400, `images must be inline or none, got '${q.images}'`);
    const inputs: { name: string; data: Buffer }[] = [];
    if (req.isMultipart()) {
      for await (const part of req.files()) inputs.push({ name: part.filename || part.fieldname, data: await part.toBuffer() });
    } else if (Buffer.isBuffer(req.body)) {
      inputs.push({ name: 'body', data: req.body });
    } else {
      throw new HttpError(415, `send an image as the body (Content-Type image/png, image/jpeg, ... or application/octet-stream) or multipart/form-data; got ${req.headers['content-type'] ?? 'no Content-Type'}`);
    }
    if (inputs.length === 0) throw new HttpError(400, 'no image in the request');
    // sniff every image from its header before anything is decoded or queued
    for (const im of inputs) {
      if (im.data.length === 0) throw new HttpError(400, `${im.name}: empty (0 bytes)`);
      let size;
      try {
        size = await imageSize(im.data);
      } catch (err) {
        const why = (err as Error).message.replace(/^cannot read image buffer: /, '');
        const format = imageSignature(im.data);
        if (format) throw new HttpError(400, `${im.name}: a damaged or truncated ${format} (${why})`);
        throw new HttpError(415, `${im.name}: not an image cqseg can read (${why})`);
      }
      if (size.height * size.width > maxPixels) {
        throw new HttpError(413, `${im.name}: ${size.width}x${size.height} = ${size.width * size.height} pixels, more than the limit of ${maxPixels}`);
      }
    }
    const decoded: T.Tensor[] = [];
    const decodeMs: number[] = [];
    try {
      for (const im of inputs) {
        const t0 = performance.now();
        try {
          decoded.push(await readImage(im.data));
        } catch (err) {
          throw new HttpError(400, `${im.name}: ${(err as Error).message.replace(/^cannot read image buffer: /, 'cannot decode: ')}`);
        }
        decodeMs.push(performance.now() - t0);
      }
      const settings = { mode: col.name, ensemble: q.ensemble as 'softmax' | 'logits' | undefined, robust: q.robust === 'true' || q.robust === '1' };
      const queuedAt = performance.now();
      let batchSize = 0;
      let predictMs = 0;
      const preds = await queue.submit(JSON.stringify(settings), decoded, async (images) => {
        const t = performance.now();
        batchSize = images.length;
        const out = await predictImages(session, images, { ...settings, bank, embedder });
        predictMs = performance.now() - t;
        return out;
      });
      const waitMs = performance.now() - queuedAt - predictMs;
      const results = [];
      try {
        for (let i = 0; i < inputs.length; i++) {
          const t2 = performance.now();
          const p = preds[i];
          const image = decoded[i];
          const answer: Record<string, unknown> = {
            name: inputs[i].name, height: image.shape[0], width: image.shape[1],
            classes: p.summary.classes.map((c) => ({ ...c, color: session.palette[c.index] })),
            confidence: p.summary.confidence, references: p.summary.references, ood: p.summary.ood,
          };
          if (q.images !== 'none') {
            answer.mask_png = (await encodePng(p.labels)).toString('base64');
            const ov = overlay(image, p.labels, session.palette);
            try {
              answer.overlay_png = (await encodePng(ov)).toString('base64');
            } finally {
              ov.dispose();
            }
          }
          answer.timings_ms = { decode: decodeMs[i], wait: waitMs, predict: predictMs, encode: performance.now() - t2, batch: batchSize };
          results.push(answer);
        }
      } finally {
        preds.forEach(disposePrediction);
      }
      return { mode: col.name, images: results };
    } finally {
      T.dispose(decoded);
    }
  });

  const url = await app.listen({ host, port: opts.port ?? 8080 });
  let closed = false;
  return {
    app,
    url,
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      closing = true;
      app.server.closeIdleConnections();
      await app.close();
      if (bank) disposeBank(bank);
      embedder?.dispose();
      session.dispose();
    },
  };
}
