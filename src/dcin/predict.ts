/**
 * DCIN at test time for one batch, independent of files and models: the caller gives
 * a `model` that maps uint8 RGB (N, 3, H, W) to logits (N, C, H', W') (resizing and
 * normalising inside), a reference bank and an embedder; this picks references,
 * transfers colors (Lab, labTransferToStats with the bank's statistics) and combines
 * the predictions. `cqseg predict` wraps it with decoding, resizing back and writing.
 *
 * modes: none | exri (expert's reference statistics) | gris | lris | full (GRIS+LRIS,
 * ensemble of the two) | auto (lowest mean entropy among none, gris, lris, full).
 */
import * as T from '../tensor';
import { ArgumentError } from '../tensor';
import { labTransferToStats, LabTransferOptions } from '../color';
import { ReferenceBank } from './bank';
import { Embedder } from './embedders';
import { ensemble, EnsembleMode, selectByEntropy } from './ensemble';
import { lrisSelect } from './lris';

export type DcinMode = 'none' | 'exri' | 'gris' | 'lris' | 'full' | 'auto';
export const DCIN_MODES: readonly DcinMode[] = ['none', 'exri', 'gris', 'lris', 'full', 'auto'];

export interface DcinOptions {
  mode: DcinMode;
  model: (images: T.Tensor) => T.Tensor;
  bank?: ReferenceBank;
  embedder?: Embedder;
  /** (3, 2) Lab statistics of the expert's reference image (labStats), for 'exri' */
  exriStats?: T.Tensor;
  /** 'softmax' (default) or 'logits' (the reference's mean of logits) */
  ensemble?: EnsembleMode;
  transfer?: LabTransferOptions;
}

export interface DcinResult {
  /** probabilities (N, C, H', W') */
  probs: T.Tensor;
  /** per image, the bank indices used */
  gris?: number;
  lris?: number[];
  /** auto: per image, the chosen candidate ('none' | 'gris' | 'lris' | 'full') and entropies */
  auto?: { choice: string[]; entropies: number[][] };
}

function need<V>(v: V | undefined, what: string, mode: string): V {
  if (v === undefined) throw new ArgumentError(`DCIN mode '${mode}' needs ${what}`);
  return v;
}

/**
 * Predicts a batch under a DCIN mode.
 *   const { probs } = await dcinPredict(images, { mode: 'full', model, bank, embedder })
 */
export async function dcinPredict(images: T.Tensor, opts: DcinOptions): Promise<DcinResult> {
  if (!DCIN_MODES.includes(opts.mode)) throw new ArgumentError(`Argument 'mode' passed to 'dcinPredict' must be one of ${DCIN_MODES.join(', ')}, got ${String(opts.mode)}`);
  const mode = opts.mode;
  const ens = opts.ensemble ?? 'softmax';
  const tr = opts.transfer ?? {};
  const run = (stats: T.Tensor): T.Tensor => T.tidy(() => opts.model(labTransferToStats(images, stats, tr)));
  if (mode === 'none') return { probs: T.tidy(() => T.softmax(opts.model(images), 1)) };
  if (mode === 'exri') {
    const s = need(opts.exriStats, "'exriStats' (the expert reference's labStats)", mode);
    return { probs: T.tidy(() => T.softmax(run(s), 1)) };
  }
  const bank = need(opts.bank, 'a reference bank', mode);
  const n = images.shape[0];
  let gLogits: T.Tensor | undefined;
  let lLogits: T.Tensor | undefined;
  let lris: number[] | undefined;
  const out: DcinResult = { probs: undefined as unknown as T.Tensor };
  try {
    if (mode === 'gris' || mode === 'full' || mode === 'auto') {
      out.gris = bank.gris.index;
      gLogits = T.keep(T.tidy(() => run(bank.labStats.narrow(0, bank.gris.index, 1))));
    }
    if (mode === 'lris' || mode === 'full' || mode === 'auto') {
      const emb = need(opts.embedder, 'an embedder', mode);
      const q = await emb.embed(images);
      try {
        lris = lrisSelect(q, bank.embeddings).indices;
      } finally {
        q.dispose();
      }
      out.lris = lris;
      const idx = T.tensor(new BigInt64Array(lris.map(BigInt)), [n]);
      try {
        lLogits = T.keep(T.tidy(() => run(T.indexSelect(bank.labStats, 0, idx))));
      } finally {
        idx.dispose();
      }
    }
    if (mode === 'gris') out.probs = T.softmax(gLogits!, 1);
    else if (mode === 'lris') out.probs = T.softmax(lLogits!, 1);
    else if (mode === 'full') out.probs = ensemble([gLogits!, lLogits!], ens);
    else {
      const names = ['none', 'gris', 'lris', 'full'];
      const r = T.tidy(() => {
        const cands = [T.softmax(opts.model(images), 1), T.softmax(gLogits!, 1), T.softmax(lLogits!, 1), ensemble([gLogits!, lLogits!], ens)];
        return selectByEntropy(cands);
      });
      out.probs = r.probs;
      out.auto = { choice: r.choice.map((k) => names[k]), entropies: r.entropies };
    }
    return out;
  } finally {
    T.dispose([gLogits, lLogits]);
  }
}

/** A DCIN column of an evaluation grid: a mode, optionally with robust statistics. */
export type DcinColumnSpec = DcinMode | 'full-robust';

/**
 * Every requested column for one batch, sharing the work between them: each distinct
 * model input (the image itself, ExRI-, GRIS- and LRIS-transferred, and their robust
 * variants) runs through the model once, and the embedding is computed once; the columns
 * are then assembled exactly as dcinPredict would (full = ensemble of GRIS and LRIS,
 * auto = lowest mean entropy among none, gris, lris, full).
 *   const byColumn = await dcinPredictMany(images, ['none', 'gris', 'full'], { model, bank, embedder })
 */
export async function dcinPredictMany(images: T.Tensor, columns: readonly DcinColumnSpec[], opts: Omit<DcinOptions, 'mode'>): Promise<Map<DcinColumnSpec, DcinResult>> {
  const ens = opts.ensemble ?? 'softmax';
  const tr = opts.transfer ?? {};
  const robust: LabTransferOptions = { ...tr, excludeSpecular: true };
  const logits = new Map<string, T.Tensor>();
  const out = new Map<DcinColumnSpec, DcinResult>();
  const wants = (...cs: DcinColumnSpec[]): boolean => cs.some((c) => columns.includes(c));
  try {
    const forward = (key: string, fn: () => T.Tensor): T.Tensor => {
      let l = logits.get(key);
      if (!l) {
        l = T.keep(T.tidy(fn));
        logits.set(key, l);
      }
      return l;
    };
    let lris: number[] | undefined;
    let lrisIdx: T.Tensor | undefined;
    const bank = wants('gris', 'lris', 'full', 'full-robust', 'auto') ? need(opts.bank, 'a reference bank', 'gris/lris/full/auto') : undefined;
    if (wants('lris', 'full', 'full-robust', 'auto')) {
      const q = await need(opts.embedder, 'an embedder', 'lris/full/auto').embed(images);
      try {
        lris = lrisSelect(q, bank!.embeddings).indices;
      } finally {
        q.dispose();
      }
      lrisIdx = T.keep(T.tensor(new BigInt64Array(lris.map(BigInt)), [lris.length]));
    }
    try {
      const gStats = (): T.Tensor => bank!.labStats.narrow(0, bank!.gris.index, 1);
      const lStats = (): T.Tensor => T.indexSelect(bank!.labStats, 0, lrisIdx!);
      const none = (): T.Tensor => forward('none', () => opts.model(images));
      const gris = (o: LabTransferOptions, k: string): T.Tensor => forward(k, () => opts.model(labTransferToStats(images, gStats(), o)));
      const lrisL = (o: LabTransferOptions, k: string): T.Tensor => forward(k, () => opts.model(labTransferToStats(images, lStats(), o)));
      for (const c of columns) {
        let r: DcinResult;
        if (c === 'none') r = { probs: T.softmax(none(), 1) };
        else if (c === 'exri') {
          const s = need(opts.exriStats, "'exriStats' (the expert reference's labStats)", c);
          r = { probs: T.softmax(forward('exri', () => opts.model(labTransferToStats(images, s, tr))), 1) };
        } else if (c === 'gris') r = { probs: T.softmax(gris(tr, 'gris'), 1), gris: bank!.gris.index };
        else if (c === 'lris') r = { probs: T.softmax(lrisL(tr, 'lris'), 1), lris };
        else if (c === 'full') r = { probs: ensemble([gris(tr, 'gris'), lrisL(tr, 'lris')], ens), gris: bank!.gris.index, lris };
        else if (c === 'full-robust') r = { probs: ensemble([gris(robust, 'gris-r'), lrisL(robust, 'lris-r')], ens), gris: bank!.gris.index, lris };
        else {
          const names = ['none', 'gris', 'lris', 'full'];
          const sel = T.tidy(() => selectByEntropy([T.softmax(none(), 1), T.softmax(gris(tr, 'gris'), 1), T.softmax(lrisL(tr, 'lris'), 1), ensemble([gris(tr, 'gris'), lrisL(tr, 'lris')], ens)]));
          r = { probs: sel.probs, gris: bank!.gris.index, lris, auto: { choice: sel.choice.map((k) => names[k]), entropies: sel.entropies } };
        }
        out.set(c, r);
      }
    } finally {
      lrisIdx?.dispose();
    }
    return out;
  } catch (err) {
    for (const r of out.values()) r.probs.dispose();
    throw err;
  } finally {
    T.dispose([...logits.values()]);
  }
}
