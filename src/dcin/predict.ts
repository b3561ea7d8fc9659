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
