/**
 * `npm run bench -- serve [--model RUN --refs BANK] [--seconds S] [--mode M] [--threads N]`:
 * `cqseg serve` under load on loopback, bounded in time. The server runs as its own
 * process (`bin/cqseg serve --port 0`); 1, 4 and 16 clients each POST one 128x192 JPEG of
 * the synthetic benchmark (images=none) in a loop for S seconds (default 8): requests per
 * second, p50 and p99 latency, errors (target 0), and the server's RSS after the warm-up and
 * at the end (target: growth under 5%). Twice: with batching (--max-batch 8, the default)
 * and one request at a time (--max-batch 1), and the gain at 16 clients. Without --model,
 * a small run is made first under bench/out/serve (synthetic data, resnet18 at 128x192,
 * one short epoch, its bank). Ends with one JSON line.
 */
import { spawn, spawnSync, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { writeSynth } from '../src/data';
import { resolveConfig } from '../src/train/config';
import { train } from '../src/train/trainer';

const ROOT = path.resolve(__dirname, '..', '..');
const CQSEG = path.join(ROOT, 'bin', 'cqseg');
const args = process.argv.slice(2);
const opt = (name: string, dflt?: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const SECONDS = Number(opt('--seconds', '8'));
const MODE = opt('--mode', 'full')!;
const THREADS = opt('--threads', '2')!;
const CLIENTS = [1, 4, 16];

async function prepare(): Promise<{ model: string; refs: string; image: string }> {
  const out = path.join(ROOT, 'bench', 'out', 'serve');
  const data = path.join(out, 'data');
  const model = opt('--model') ?? path.join(out, 'run');
  const refs = opt('--refs') ?? path.join(out, 'bank.safetensors');
  if (!fs.existsSync(path.join(data, 'manifest.json'))) await writeSynth({ out: data, size: [128, 192], count: 24, seed: 3 });
  if (!opt('--model') && !fs.existsSync(path.join(model, 'model.safetensors'))) {
    process.stderr.write('bench serve: training a small run (resnet18, 128x192, one short epoch)\n');
    await train(resolveConfig({ data: path.join(data, 'hq', 'train'), out: model, encoder: 'resnet18', size: [128, 192], epochs: 1, maxStepsPerEpoch: 4, valFraction: 0, threads: 2, seed: 0 }), { progress: false });
  }
  if (!opt('--refs') && !fs.existsSync(refs)) {
    const r = spawnSync(process.execPath, [CQSEG, 'references', '--data', path.join(data, 'hq', 'train'), '--model', model, '--out', refs, '--quiet'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cqseg references failed: ${r.stderr}`);
  }
  const sp = path.join(data, 'sp', 'images');
  return { model, refs, image: path.join(sp, fs.readdirSync(sp).sort()[0]) };
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function startServer(model: string, refs: string, maxBatch: number): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [CQSEG, 'serve', '--model', model, '--refs', refs, '--port', '0', '--queue', '64', '--max-batch', String(maxBatch)],
    { env: { ...process.env, CQSEG_THREADS: THREADS }, stdio: ['ignore', 'ignore', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /cqseg serve: (http:\/\/\S+) /.exec(err);
      if (m) resolve(m[1]);
    });
    proc.on('exit', (code) => reject(new Error(`server exited (${code}): ${err}`)));
  });
  return { proc, url };
}

async function load(url: string, body: Buffer, clients: number): Promise<{ rps: number; p50: number; p99: number; errors: number; requests: number }> {
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + SECONDS * 1000;
  const client = async (): Promise<void> => {
    while (performance.now() < end) {
      const t = performance.now();
      try {
        const r = await fetch(`${url}/v1/segment?mode=${MODE}&images=none`, { method: 'POST', body, headers: { 'content-type': 'image/jpeg' } });
        await r.arrayBuffer();
        if (r.status === 200) latencies.push(performance.now() - t);
        else errors++;
      } catch {
        errors++;
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, client));
  const secs = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { rps: latencies.length / secs, p50: q(0.5), p99: q(0.99), errors, requests: latencies.length + errors };
}

async function main(): Promise<void> {
  const { model, refs, image } = await prepare();
  const body = fs.readFileSync(image);
  process.stdout.write(`serve bench: ${path.relative(ROOT, model) || model}, mode ${MODE}, ${SECONDS} s per point, server threads ${THREADS}, image ${path.basename(image)} (${body.length} bytes)\n`);
  const figures: Record<string, number> = {};
  for (const maxBatch of [8, 1]) {
    const { proc, url } = await startServer(model, refs, maxBatch);
    try {
      for (let i = 0; i < 3; i++) await load(url, body, 1).catch(() => undefined);
      const rss0 = rssMb(proc.pid!);
      for (const clients of CLIENTS) {
        const r = await load(url, body, clients);
        const tag = `batch${maxBatch}_c${clients}`;
        Object.assign(figures, { [`${tag}_rps`]: r.rps, [`${tag}_p50_ms`]: r.p50, [`${tag}_p99_ms`]: r.p99, [`${tag}_errors`]: r.errors, [`${tag}_requests`]: r.requests });
        process.stdout.write(`max-batch ${maxBatch}, ${String(clients).padStart(2)} clients: ${r.rps.toFixed(1)} req/s, p50 ${r.p50.toFixed(0)} ms, p99 ${r.p99.toFixed(0)} ms, ${r.errors} errors of ${r.requests}\n`);
      }
      const rss1 = rssMb(proc.pid!);
      figures[`batch${maxBatch}_rss_start_mb`] = rss0;
      figures[`batch${maxBatch}_rss_end_mb`] = rss1;
      figures[`batch${maxBatch}_rss_growth_pct`] = (100 * (rss1 - rss0)) / rss0;
      process.stdout.write(`max-batch ${maxBatch}: server RSS ${rss0.toFixed(0)} MB after warm-up -> ${rss1.toFixed(0)} MB (${figures[`batch${maxBatch}_rss_growth_pct`].toFixed(1)}%, target < 5%)\n`);
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
  }
  figures.batching_gain_16_clients = figures.batch8_c16_rps / figures.batch1_c16_rps;
  process.stdout.write(`batching gain at 16 clients: ${figures.batching_gain_16_clients.toFixed(2)}x requests per second\n`);
  process.stdout.write(JSON.stringify({ bench: 'serve', mode: MODE, seconds: SECONDS, server_threads: Number(THREADS), ...figures }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`bench serve: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
