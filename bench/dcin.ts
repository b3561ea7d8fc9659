/**
 * `npm run bench -- dcin [--threads N (default 1)] [--reps N] [--quick] [--no-cube] [--no-ref]`
 *
 * DCIN's color and selection costs on the CPU, beside the paper's OpenCV + NumPy
 * (+ scipy) recipes run by bench/dcin_ref.py (Debian's python3-opencv) in the same run:
 * - Lab transfer (8-bit, cqseg mode) in images/s at 512x768 and 1080x1920, batched
 *   (N images toward N references, references' Lab included) vs lab_transfer per image;
 * - GRIS for 1,600 and 16,000 images: histogram time per image (measured on 512x768
 *   images) x M + selection on synthesised histograms (the images are not decoded:
 *   the decode cost is the same for both sides and belongs to src/data);
 * - LRIS query latency over 16,000 references of dimension 1,536 (exact search: int8
 *   first pass + float64 re-scoring, see src/dcin/lris.ts), at 1 and 2 threads each side;
 * - agreement with cv2's 8-bit RGB->Lab and Lab->RGB over all 2^24 inputs.
 * Ratios are cqseg time / OpenCV+NumPy time (target <= 0.5 for transfer and selection).
 * Ends with one JSON line holding every figure.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { labTransfer, labToRgb, rgbHistogram, rgbToLab } from '../src/color';
import { grisSelect, LrisIndex, normalizeEmbeddings } from '../src/dcin';
import * as T from '../src/tensor';

const args = process.argv.slice(2);
const flag = (n: string): boolean => args.includes(`--${n}`);
function arg(name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
}
const now = (): number => Number(process.hrtime.bigint()) / 1e6;
interface Timing { median: number; best: number }
function timeSync(reps: number, fn: () => void): Timing {
  fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = now();
    fn();
    ts.push(now() - t0);
  }
  ts.sort((a, b) => a - b);
  return { median: ts[Math.floor(ts.length / 2)], best: ts[0] };
}
const r3 = (v: number): number => Math.round(v * 1000) / 1000;

// 1 intra-op thread by default: on a shared 2-core machine libtorch's OpenMP team of 2
// spins against the other load and runs these small-op pipelines 1.5-4x slower (measured);
// --threads 2 to compare. OpenCV and OpenBLAS use their own thread pools either way.
const threads = arg('threads', 1);
const reps = arg('reps', 5);
const quick = flag('quick');
T.setNumThreads(threads);

// The histogram takes about 0.2-1 ms an image on either side: best of at least 30 calls,
// as best of 5 missed by up to 1.8x here (a page fault or a scheduler tick is a whole call).
const HIST_REPS = Math.max(30, reps);
const TRANSFER: [number, number, number][] = [[512, 768, 4], [1080, 1920, 2]]; // h, w, batch
const GRIS_M = quick ? [1600] : [1600, 16000];
const LRIS: [number, number] = [16000, 1536];

function randomImages(n: number, h: number, w: number): T.Tensor {
  return T.tidy(() => T.rand([n, 3, h, w]).mul(256).floor().clamp(0, 255).to('uint8'));
}

const cubeDir = flag('no-cube') || flag('no-ref') ? null : fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-dcin-'));
let ref: Record<string, unknown> | null = null;
if (!flag('no-ref')) {
  console.log('running bench/dcin_ref.py (OpenCV + NumPy) ...');
  const cfg = { transfer: TRANSFER.map(([h, w]) => [h, w, reps]), hist: [512, 768, HIST_REPS], gris: GRIS_M, lris: [...LRIS, 2], cube: cubeDir };
  const p = spawnSync('/usr/bin/python3', [path.join(__dirname, '..', '..', 'bench', 'dcin_ref.py'), JSON.stringify(cfg)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (p.status !== 0) console.log(`reference side failed: ${p.stderr || p.error}`);
  else ref = JSON.parse(p.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}
const refT = (ref?.transfer ?? {}) as Record<string, Timing>;
const out: Record<string, unknown> = {
  bench: 'dcin',
  device: 'cpu',
  threads,
  sides: { cqseg: `cqseg (libtorch ${T.torchVersion()}, ${threads} threads)`, ref: ref ? `OpenCV ${String(ref.opencv)} + NumPy ${String(ref.numpy)}${ref.scipy ? ` + scipy ${String(ref.scipy)}` : ' (no scipy: NumPy matmul distances)'}` : null },
};

// ---------------------------------------------------------------- transfer
for (const [h, w, n] of TRANSFER) {
  const x = randomImages(n, h, w);
  const rf = randomImages(n, h, w);
  const t = timeSync(reps, () => labTransfer(x, rf).dispose());
  const per = t.best / n;
  const rt = refT[`${h}x${w}`];
  const row = { cqseg_ms_per_image: r3(per), cqseg_images_per_s: r3(1000 / per), ref_ms_per_image: rt ? r3(rt.best) : null, ref_images_per_s: rt ? r3(1000 / rt.best) : null, ratio: rt ? r3(per / rt.best) : null, batch: n };
  out[`transfer_${h}x${w}`] = row;
  console.log(`lab transfer ${h}x${w} (batch ${n}): cqseg ${row.cqseg_ms_per_image} ms/image (${row.cqseg_images_per_s}/s), OpenCV+NumPy ${row.ref_ms_per_image} ms/image, ratio ${row.ratio}`);
  T.dispose([x, rf]);
}

// ---------------------------------------------------------------- GRIS
const hx = randomImages(4, 512, 768);
const th = timeSync(HIST_REPS, () => rgbHistogram(hx).dispose());
const histPer = th.best / 4;
hx.dispose();
const refHist = (ref?.hist as Timing | undefined)?.best;
out.histogram_512x768 = { cqseg_ms_per_image: r3(histPer), ref_ms_per_image: refHist ? r3(refHist) : null, ratio: refHist ? r3(histPer / refHist) : null };
console.log(`histogram 512x768: cqseg ${r3(histPer)} ms/image, cv2.calcHist+normalize ${refHist ? r3(refHist) : '-'} ms/image`);
const refGris = (ref?.gris ?? {}) as Record<string, number>;
for (const m of GRIS_M) {
  const hs = T.tidy(() => {
    const r = T.rand([m, 512]).pow(4);
    return r.div(r.square().sum(1, { keepdim: true }).sqrt());
  });
  const t0 = now();
  grisSelect(hs);
  const sel = now() - t0;
  hs.dispose();
  const total = sel + m * histPer;
  const refSel = refGris[String(m)];
  const refTotal = refSel !== undefined && refHist ? refSel + m * refHist : undefined;
  out[`gris_${m}`] = {
    cqseg_selection_ms: r3(sel), cqseg_total_ms: r3(total), ref_selection_ms: refSel !== undefined ? r3(refSel) : null, ref_total_ms: refTotal ? r3(refTotal) : null,
    ratio_selection: refSel ? r3(sel / refSel) : null, ratio_total: refTotal ? r3(total / refTotal) : null,
    note: 'total = selection + M x histogram time per 512x768 image (extrapolated; decoding excluded)',
  };
  console.log(`GRIS ${m}: cqseg selection ${r3(sel)} ms, total ${r3(total)} ms; reference selection ${refSel !== undefined ? r3(refSel) : '-'} ms, total ${refTotal ? r3(refTotal) : '-'} ms`);
}

// ---------------------------------------------------------------- LRIS
// One query, at 1 and 2 threads on both sides (NumPy's product runs on OpenBLAS's
// threads, set per run by OPENBLAS_NUM_THREADS; cqseg's scan on libtorch's).
{
  const [m, d] = LRIS;
  const bank = T.tidy(() => normalizeEmbeddings(T.randn([m, d])));
  const q = T.tidy(() => normalizeEmbeddings(T.randn([1, d])));
  const tb = now();
  const index = new LrisIndex(bank); // built once, as the reference's bank array
  const build = now() - tb;
  for (const th of [1, 2]) {
    T.setNumThreads(th);
    const t = timeSync(20, () => { index.search(q); });
    let rl: number | undefined;
    if (!flag('no-ref')) {
      const p = spawnSync('/usr/bin/python3', [path.join(__dirname, '..', '..', 'bench', 'dcin_ref.py'), JSON.stringify({ lris: [m, d, 20] })], { encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: String(th) } });
      if (p.status === 0) rl = (JSON.parse(p.stdout.trim().split('\n').pop()!) as { lris: Timing }).lris.best;
      else console.log(`reference LRIS side failed: ${p.stderr || String(p.error)}`);
    }
    out[`lris_${m}x${d}_threads${th}`] = { cqseg_ms: r3(t.best), cqseg_median_ms: r3(t.median), ref_ms: rl ? r3(rl) : null, ratio: rl ? r3(t.best / rl) : null, index_build_ms: r3(build) };
    console.log(`LRIS query over ${m} x ${d}, ${th} thread(s): cqseg ${r3(t.best)} ms (index built once in ${r3(build)} ms), NumPy ${rl ? r3(rl) : '-'} ms, ratio ${rl ? r3(t.best / rl) : '-'}`);
  }
  T.setNumThreads(threads);
  index.dispose();
  T.dispose([bank, q]);
}

// ---------------------------------------------------------------- agreement
if (cubeDir && ref) {
  const n = 1 << 24;
  const a = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    a[3 * i] = i >>> 16;
    a[3 * i + 1] = (i >>> 8) & 255;
    a[3 * i + 2] = i & 255;
  }
  const x = T.tensor(a, [1, 4096, 4096, 3], { dtype: 'uint8' });
  const agreement: Record<string, number> = {};
  for (const [name, fn] of [['rgb2lab', rgbToLab], ['lab2rgb', labToRgb]] as const) {
    const y = fn(x, { layout: 'NHWC' });
    const got = y.dataSync() as Uint8Array;
    y.dispose();
    const want = fs.readFileSync(path.join(cubeDir, `${name}.bin`));
    let exact = 0;
    let within1 = 0;
    for (let i = 0; i < n; i++) {
      let md = 0;
      for (let c = 0; c < 3; c++) md = Math.max(md, Math.abs(got[3 * i + c] - want[3 * i + c]));
      if (md === 0) exact++;
      if (md <= 1) within1++;
    }
    agreement[`${name}_exact`] = exact / n;
    agreement[`${name}_within1`] = within1 / n;
    console.log(`OpenCV agreement ${name} over all 2^24 inputs: exact ${(100 * exact / n).toFixed(4)}%, within +-1 ${(100 * within1 / n).toFixed(4)}%`);
  }
  x.dispose();
  out.opencv_agreement = agreement;
  fs.rmSync(cubeDir, { recursive: true });
}

console.log(JSON.stringify(out));
