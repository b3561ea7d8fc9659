/**
 * The in-browser page's script (bundle index.html, `cqseg serve`'s /browser/): loads the
 * exported model with onnxruntime-web (WebGPU where the browser offers it, else
 * WebAssembly) and the DCIN data, and segments the images the user picks entirely in
 * the browser: nothing is sent anywhere. Files it reads, beside index.html: model.json
 * (BundleInfo), the model, the DCIN file, ort/ (onnxruntime-web). The last result is
 * kept in `window.cqsegLast` and the page's elements carry data-* attributes for tests.
 */
import { decodeEmbeddings, DcinFile, ModelInfo, segment, SegmentResult, WEB_MODES, WebMode, WebModel } from './dcin.js';

declare const ort: typeof import('onnxruntime-web');

/** model.json, written by cqseg export --bundle. */
export interface BundleInfo extends ModelInfo {
  title: string;
  encoder: string;
  version: string;
  /** the model file, relative to the page */
  model: string;
  /** the DCIN data file, or null (then only mode none) */
  dcin: string | null;
  modes: WebMode[];
}

declare global {
  interface Window { cqsegLast?: SegmentResult & { name: string; mode: WebMode; backend: string; labelsArray: number[] } }
}

const el = <E extends HTMLElement>(id: string): E => document.getElementById(id) as E;

async function loadJson<V>(url: string): Promise<V> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status} (is the bundle complete?)`);
  return (await r.json()) as V;
}

function status(text: string, state: 'busy' | 'done' | 'error'): void {
  const s = el('status');
  s.textContent = text;
  s.dataset.state = state;
  s.className = state === 'error' ? 'status error' : 'status';
}

interface Loaded { info: BundleInfo; dcin?: DcinFile; embeddings?: Float32Array; model: WebModel; backend: string }

async function load(): Promise<Loaded> {
  const info = await loadJson<BundleInfo>('model.json');
  const dcin = info.dcin ? await loadJson<DcinFile>(info.dcin) : undefined;
  ort.env.wasm.wasmPaths = new URL('ort/', location.href).href;
  const eps = 'gpu' in navigator ? ['webgpu', 'wasm'] : ['wasm'];
  let session: import('onnxruntime-web').InferenceSession | undefined;
  let backend = '';
  const failures: string[] = [];
  for (const ep of eps) {
    try {
      session = await ort.InferenceSession.create(info.model, { executionProviders: [ep], graphOptimizationLevel: 'all' });
      backend = ep === 'wasm' ? `WebAssembly, ${ort.env.wasm.numThreads ?? 1} thread(s)` : 'WebGPU';
      break;
    } catch (e) {
      failures.push(`${ep}: ${(e as Error).message}`);
    }
  }
  if (!session) throw new Error(`onnxruntime-web could not load ${info.model}: ${failures.join('; ')}`);
  const s = session;
  const model: WebModel = {
    run: async (x, n, h, w) => {
      const out = await s.run({ image: new ort.Tensor('float32', x, [n, 3, h, w]) });
      return { logits: out.logits.data as Float32Array, embedding: out.embedding.data as Float32Array };
    },
  };
  return { info, dcin, embeddings: dcin ? decodeEmbeddings(dcin) : undefined, model, backend };
}

async function decode(file: File): Promise<{ data: Uint8ClampedArray; width: number; height: number; bitmap: ImageBitmap }> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch {
    throw new Error(`${file.name}: not an image this browser can decode`);
  }
  const c = document.createElement('canvas');
  [c.width, c.height] = [bitmap.width, bitmap.height];
  const g = c.getContext('2d', { willReadFrequently: true })!;
  g.drawImage(bitmap, 0, 0);
  return { data: g.getImageData(0, 0, c.width, c.height).data, width: c.width, height: c.height, bitmap };
}

function maskCanvas(r: SegmentResult, info: ModelInfo): HTMLCanvasElement {
  const c = document.createElement('canvas');
  [c.width, c.height] = [r.width, r.height];
  const g = c.getContext('2d')!;
  const img = g.createImageData(r.width, r.height);
  for (let i = 0; i < r.labels.length; i++) {
    const l = r.labels[i];
    const [red, green, blue] = info.classes[l].color;
    img.data.set([red, green, blue, l === 0 ? 0 : 255], i * 4);
  }
  g.putImageData(img, 0, 0);
  return c;
}

function show(name: string, mode: WebMode, r: SegmentResult, l: Loaded, bitmap: ImageBitmap): void {
  const out = el('results');
  out.replaceChildren();
  const card = document.createElement('section');
  card.className = 'card';
  card.dataset.role = 'result';
  const h = document.createElement('h2');
  h.textContent = `${name} (${r.width} x ${r.height}), DCIN ${mode}`;
  const stack = document.createElement('div');
  stack.className = 'stack';
  const base = document.createElement('canvas');
  [base.width, base.height] = [r.width, r.height];
  base.getContext('2d')!.drawImage(bitmap, 0, 0);
  const layer = maskCanvas(r, l.info);
  layer.dataset.role = 'mask-layer';
  layer.style.opacity = '0.5';
  stack.append(base, layer);
  const slider = document.createElement('label');
  slider.className = 'slider';
  slider.innerHTML = 'mask opacity <input type="range" min="0" max="100" value="50" data-role="opacity">';
  slider.querySelector('input')!.addEventListener('input', (e) => { layer.style.opacity = String(Number((e.target as HTMLInputElement).value) / 100); });
  const table = document.createElement('table');
  table.innerHTML = '<tr><th>class</th><th class="num">pixels</th><th class="num">share</th></tr>';
  const total = r.width * r.height;
  l.info.classes.forEach((c, i) => {
    const tr = document.createElement('tr');
    tr.dataset.class = c.name;
    tr.dataset.pixels = String(r.pixels[i]);
    tr.innerHTML = `<td><span class="swatch" style="background: rgb(${c.color.join(',')})"></span></td><td class="num">${r.pixels[i]}</td><td class="num">${((100 * r.pixels[i]) / total).toFixed(1)}%</td>`;
    tr.firstElementChild!.append(c.name);
    table.append(tr);
  });
  const meta = document.createElement('p');
  meta.className = 'meta';
  const refs = [r.gris !== undefined ? `GRIS ${l.dcin!.references[r.gris].name}` : '', r.lris !== undefined ? `LRIS ${l.dcin!.references[r.lris].name}` : ''].filter(Boolean);
  meta.textContent = `${r.runs} model run(s), ${r.modelMs.toFixed(0)} ms on ${l.backend}${refs.length ? `; references: ${refs.join(', ')}` : ''}. Computed in this browser; nothing was uploaded.`;
  const dl = document.createElement('a');
  dl.textContent = 'download the mask (PNG)';
  dl.download = name.replace(/\.[^.]*$/, '') + '_mask.png';
  dl.href = maskCanvas(r, l.info).toDataURL('image/png');
  card.append(h, stack, slider, table, meta, dl);
  out.append(card);
}

async function main(): Promise<void> {
  status('loading the model...', 'busy');
  let l: Loaded;
  try {
    l = await load();
  } catch (e) {
    status((e as Error).message, 'error');
    return;
  }
  el('model').textContent = `${l.info.title}: Unet(${l.info.encoder}), ${l.info.classes.length} classes, input ${l.info.size.join(' x ')}, on ${l.backend}`;
  const select = el<HTMLSelectElement>('mode');
  for (const m of WEB_MODES) {
    if (!l.info.modes.includes(m)) continue;
    const o = document.createElement('option');
    [o.value, o.textContent] = [m, m];
    select.append(o);
  }
  select.value = l.info.modes.includes('full') ? 'full' : 'none';
  const files = el<HTMLInputElement>('files');
  const run = async (file: File): Promise<void> => {
    const mode = select.value as WebMode;
    status(`segmenting ${file.name} (${mode})...`, 'busy');
    try {
      const img = await decode(file);
      const r = await segment({ data: img.data, width: img.width, height: img.height, channels: 4 }, { mode, model: l.model, info: l.info, dcin: l.dcin, embeddings: l.embeddings });
      show(file.name, mode, r, l, img.bitmap);
      window.cqsegLast = { ...r, name: file.name, mode, backend: l.backend, labelsArray: Array.from(r.labels) };
      status(`${file.name}: done in ${r.modelMs.toFixed(0)} ms of model time`, 'done');
    } catch (e) {
      status((e as Error).message, 'error');
    }
  };
  files.addEventListener('change', () => { if (files.files?.[0]) void run(files.files[0]); });
  const drop = el('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer?.files?.[0];
    if (f) void run(f);
  });
  status('ready: choose an image', 'done');
  document.body.dataset.ready = '1';
}

void main();
