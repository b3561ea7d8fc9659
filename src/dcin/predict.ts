/**
 * DCIN at test time for one batch, independent of files and models: the caller gives
 * a `model` that maps uint8 RGB (N, 3, H, W) to logits (N, C, H', W') (resizing and
 * normalising inside), a reference bank and an embedder; this picks references,
 * transfers colors (Lab, labTransferToStats with the bank's statistics) and combines
 * the predictions. `cqseg predict` wraps it with decoding, resizing back and writing.
 *
 * modes: none | exri (expert's reference statistics) | gris | lris | full (GRIS+LRIS,
 * ensemble of the two) | auto | auto-entropy.
 *
 * `auto` (beyond the paper): per image, the OOD gate first (ood.ts, with the bank's
 * calibration): an image inside the training distribution keeps `none`, since
 * normalising an image the model already knows can only move it away from its training
 * data. An image outside (or of unknown status: a bank without calibration) gets the
 * medoid of the candidates none, gris, lris, lris-2, lris-3 (the prediction without
 * transfer, and after transfer toward GRIS and toward each of the 3 nearest training
 * images by embedding): the candidate whose argmax labels agree most (mean Dice) with
 * the others' (selectSafe in ensemble.ts), unless none agrees with the others within
 * AUTO_KEEP_MARGIN (0.05 mean Dice) of that medoid: then none. A model that the camera
 * shift breaks disagrees with its own transferred predictions by far more (0.15-0.29 on
 * DRIVE -> CHASE_DB1 for the plain model, image by image); a model already robust to
 * color agrees with them within a few points, and there a transfer has no evidence for
 * it (without the margin, auto lost 0.8 and 2.3 Dice against none on such models). The
 * margin was chosen on the two benchmarks (synthetic seed 0 and a first DRIVE -> CHASE
 * run): 0.05 and 0.06 meet every safety target on both, 0.03 and 0.07 do not. A reference that does not suit the image, or
 * a model confidently wrong on the raw image, gives an outlier that the medoid leaves
 * out; the mean (full) would be pulled toward it, and confidence would pick it. Why
 * several LRIS references: among none, gris, lris and full, full is the mean of two of
 * the others and so (nearly) always their medoid; the rule would be `full`.
 * The extra references are run only for the images outside.
 * `auto-entropy` is the former rule: among none, gris, lris, full, the lowest mean
 * predictive entropy; it keeps a confidently wrong `none` on unfamiliar devices.
 *
 * With `ood: true` (and always for auto), every result carries each image's OOD
 * distance and flag (`oodScores`): from the bank's embeddings when an embedder is given,
 * and from the Lab statistics.
 */
import * as T from '../tensor';
import { ArgumentError } from '../tensor';
import { labStats, labTransferToStats, LabTransferOptions } from '../color';
import { ReferenceBank } from './bank';
import { Embedder } from './embedders';
import { ensemble, EnsembleMode, selectByEntropy, selectSafe } from './ensemble';
import { lrisSelect } from './lris';
import { oodScores, OodScore } from './ood';

/** The DCIN modes: the paper's four and none, full with robust statistics (specular highlights left out), and the two automatic choices. */
export const DCIN_MODES = ['none', 'exri', 'gris', 'lris', 'full', 'full-robust', 'auto', 'auto-entropy'] as const;
export type DcinMode = (typeof DCIN_MODES)[number];
/** auto's candidates (none first; fewer LRIS references when the bank holds fewer images). */
export const AUTO_CANDIDATES = ['none', 'gris', 'lris', 'lris-2', 'lris-3'] as const;
/** auto-entropy's candidates. */
export const ENTROPY_CANDIDATES = ['none', 'gris', 'lris', 'full'] as const;
export type AutoCandidate = (typeof AUTO_CANDIDATES)[number] | (typeof ENTROPY_CANDIDATES)[number];
/** auto keeps none unless the medoid agrees with the other candidates by more than this (mean Dice) more than none does. */
export const AUTO_KEEP_MARGIN = 0.05;
/** auto's tie order among candidates of equal agreement: the nearest reference first, none last. */
const AUTO_PREFERENCE: AutoCandidate[] = ['lris', 'gris', 'lris-2', 'lris-3', 'none'];

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
  /** also compute each image's OOD distance and flag (needs a bank; always on for auto) */
  ood?: boolean;
}

export interface AutoResult {
  /** 'ood-gate+agreement' (auto) or 'entropy' (auto-entropy) */
  rule: 'ood-gate+agreement' | 'entropy';
  /** per image, the chosen candidate */
  choice: AutoCandidate[];
  /** auto: per image, 'in distribution' (the gate kept none) or 'agreement' */
  reason?: ('in distribution' | 'agreement')[];
  /** auto: per image, each candidate's mean Dice agreement with the others (null: the gate decided) */
  agreement?: (Record<string, number> | null)[];
  /** auto: per image, the bank indices of lris, lris-2, lris-3 */
  neighbours?: number[][];
  /** auto-entropy: entropies[k][i], candidate k's (ENTROPY_CANDIDATES) mean predictive entropy */
  entropies?: number[][];
}

export interface DcinResult {
  /** probabilities (N, C, H', W') */
  probs: T.Tensor;
  /** per image, the bank indices used */
  gris?: number;
  lris?: number[];
  /** auto, auto-entropy: the choices and the figures they were made from */
  auto?: AutoResult;
  /** per image, the distance to the training distribution (with `ood: true` or auto) */
  ood?: OodScore[];
}

function need<V>(v: V | undefined, what: string, mode: string): V {
  if (v === undefined) throw new ArgumentError(`DCIN mode '${mode}' needs ${what}`);
  return v;
}

/**
 * Per image, the OOD scores against the bank: from the embeddings `q` when given, and
 * from the images' Lab statistics.
 */
function oodOf(images: T.Tensor, bank: ReferenceBank, q: T.Tensor | undefined): OodScore[] {
  const stats = T.tidy(() => labStats(images));
  try {
    return oodScores(bank, { embeddings: q, labStats: stats });
  } finally {
    stats.dispose();
  }
}

/**
 * The k nearest bank images by cosine per query: [i][0] is `first[i]` (LRIS's exact
 * choice), then the next k - 1 by float32 score. q (N, D) unit, bank (M, D) unit.
 */
export function lrisNeighbours(q: T.Tensor, bank: T.Tensor, first: number[], k: number): number[][] {
  const m = bank.shape[0];
  const kk = Math.min(k, m);
  if (kk <= 1) return first.map((f) => [f]);
  const rest = T.tidy(() => {
    const s = T.matmul(q.to('float32'), bank.to('float32').transpose(0, 1));
    const own = T.tensor(first, [first.length, 1], { dtype: 'int64' }).eq(T.arange(m, undefined, undefined, { dtype: 'int64' }).reshape([1, m]));
    return T.topk(T.where(own, -Infinity, s), kk - 1, 1, true)[1].toArray() as number[];
  });
  return first.map((f, i) => [f, ...rest.slice(i * (kk - 1), (i + 1) * (kk - 1))]);
}

const isAuto = (m: string): m is 'auto' | 'auto-entropy' => m === 'auto' || m === 'auto-entropy';

/**
 * Predicts a batch under a DCIN mode.
 *   const { probs } = await dcinPredict(images, { mode: 'full', model, bank, embedder })
 */
export async function dcinPredict(images: T.Tensor, opts: DcinOptions): Promise<DcinResult> {
  if (!DCIN_MODES.includes(opts.mode)) throw new ArgumentError(`Argument 'mode' passed to 'dcinPredict' must be one of ${DCIN_MODES.join(', ')}, got ${String(opts.mode)}`);
  const mode = opts.mode;
  // the auto modes are assembled from shared candidates: one implementation, dcinPredictMany's
  if (isAuto(mode) || mode === 'full-robust') return (await dcinPredictMany(images, [mode], opts)).get(mode)!;
  const ens = opts.ensemble ?? 'softmax';
  const tr = opts.transfer ?? {};
  const run = (stats: T.Tensor): T.Tensor => T.tidy(() => opts.model(labTransferToStats(images, stats, tr)));
  const out: DcinResult = { probs: undefined as unknown as T.Tensor };
  const needsBank = !(mode === 'none' || mode === 'exri');
  const bank = needsBank ? need(opts.bank, 'a reference bank', mode) : opts.bank;
  const needsLris = mode === 'lris' || mode === 'full';
  const wantOod = opts.ood === true && bank !== undefined;
  let q: T.Tensor | undefined;
  if (needsLris || (wantOod && opts.embedder)) q = await need(opts.embedder, 'an embedder', mode).embed(images);
  try {
    if (wantOod) out.ood = oodOf(images, bank!, q);
    if (mode === 'none') return { ...out, probs: T.tidy(() => T.softmax(opts.model(images), 1)) };
    if (mode === 'exri') {
      const s = need(opts.exriStats, "'exriStats' (the expert reference's labStats)", mode);
      return { ...out, probs: T.tidy(() => T.softmax(run(s), 1)) };
    }
    const n = images.shape[0];
    let gLogits: T.Tensor | undefined;
    let lLogits: T.Tensor | undefined;
    try {
      if (mode === 'gris' || mode === 'full') {
        out.gris = bank!.gris.index;
        gLogits = T.keep(T.tidy(() => run(bank!.labStats.narrow(0, bank!.gris.index, 1))));
      }
      if (needsLris) {
        const lris = lrisSelect(q!, bank!.embeddings).indices;
        out.lris = lris;
        const idx = T.tensor(new BigInt64Array(lris.map(BigInt)), [n]);
        try {
          lLogits = T.keep(T.tidy(() => run(T.indexSelect(bank!.labStats, 0, idx))));
        } finally {
          idx.dispose();
        }
      }
      if (mode === 'gris') out.probs = T.softmax(gLogits!, 1);
      else if (mode === 'lris') out.probs = T.softmax(lLogits!, 1);
      else out.probs = ensemble([gLogits!, lLogits!], ens);
      return out;
    } finally {
      T.dispose([gLogits, lLogits]);
    }
  } finally {
    q?.dispose();
  }
}

/** LRIS neighbours run by auto (lris, lris-2, lris-3). */
const AUTO_NEIGHBOURS = 3;

interface AutoInputs {
  images: T.Tensor;
  ood: OodScore[];
  neighbours: number[][];
  /** logits (N, C, H, W) of the image as it is, toward GRIS, toward LRIS (shared with the other columns) */
  none: () => T.Tensor;
  gris: () => T.Tensor;
  lris: () => T.Tensor;
  /** logits of the images `idx` (int64) transferred toward their `rank`-th neighbour (rank 1, 2) */
  toNeighbour: (idx: T.Tensor, rank: number) => T.Tensor;
}

/**
 * The `auto` rule for a batch (see the file header): none for the images inside, the
 * medoid of the candidates for the others, whose extra references alone are run.
 */
function autoSelect(a: AutoInputs): { probs: T.Tensor; auto: AutoResult } {
  const n = a.images.shape[0];
  const outside = a.ood.map((o, i) => (o.flagged === false ? -1 : i)).filter((i) => i >= 0);
  const choice: AutoCandidate[] = Array(n).fill('none');
  const reason: AutoResult['reason'] = Array(n).fill('in distribution');
  const agreement: AutoResult['agreement'] = Array(n).fill(null);
  return T.tidy(() => {
    const none = T.softmax(a.none(), 1);
    if (outside.length === 0) return { probs: none, auto: { rule: 'ood-gate+agreement', choice, reason, agreement, neighbours: a.neighbours } };
    const idx = T.tensor(outside, [outside.length], { dtype: 'int64' });
    const pick = (t: T.Tensor): T.Tensor => T.indexSelect(t, 0, idx);
    const ranks = a.neighbours[0].length;
    const names: AutoCandidate[] = ['none', 'gris', 'lris', ...(['lris-2', 'lris-3'] as const).slice(0, ranks - 1)];
    const cands = [pick(none), T.softmax(pick(a.gris()), 1), T.softmax(pick(a.lris()), 1)];
    for (let r = 1; r < ranks; r++) cands.push(T.softmax(a.toNeighbour(idx, r), 1));
    const sel = selectSafe(cands, outside.map(() => true), AUTO_PREFERENCE.filter((c) => names.includes(c)).map((c) => names.indexOf(c)), AUTO_KEEP_MARGIN);
    outside.forEach((i, j) => {
      choice[i] = names[sel.choice[j]];
      reason[i] = 'agreement';
      agreement[i] = Object.fromEntries(names.map((c, k) => [c, sel.agreement[k][j]]));
    });
    const rows = Array.from({ length: n }, (_, i) => {
      const j = outside.indexOf(i);
      return j < 0 ? none.narrow(0, i, 1) : sel.probs.narrow(0, j, 1);
    });
    return { probs: T.cat(rows, 0), auto: { rule: 'ood-gate+agreement' as const, choice, reason, agreement, neighbours: a.neighbours } };
  });
}

/**
 * Every requested column for one batch, sharing the work between them: each distinct
 * model input (the image itself, ExRI-, GRIS- and LRIS-transferred, and their robust
 * variants) runs through the model once, and the embedding is computed once; the columns
 * are then assembled exactly as dcinPredict would (full = ensemble of GRIS and LRIS;
 * auto = OOD gate, then the medoid of none, gris, lris, lris-2, lris-3; auto-entropy =
 * lowest mean entropy among none, gris, lris, full). With `ood: true` or an auto column,
 * every column's result carries the same per-image OOD scores.
 *   const byColumn = await dcinPredictMany(images, ['none', 'gris', 'full'], { model, bank, embedder })
 */
export async function dcinPredictMany(images: T.Tensor, columns: readonly DcinMode[], opts: Omit<DcinOptions, 'mode'>): Promise<Map<DcinMode, DcinResult>> {
  const ens = opts.ensemble ?? 'softmax';
  const tr = opts.transfer ?? {};
  const robust: LabTransferOptions = { ...tr, excludeSpecular: true };
  const logits = new Map<string, T.Tensor>();
  const out = new Map<DcinMode, DcinResult>();
  const wants = (...cs: DcinMode[]): boolean => cs.some((c) => columns.includes(c));
  let q: T.Tensor | undefined;
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
    const bank = wants('gris', 'lris', 'full', 'full-robust', 'auto', 'auto-entropy') ? need(opts.bank, 'a reference bank', 'gris/lris/full/auto') : opts.bank;
    const needsLris = wants('lris', 'full', 'full-robust', 'auto', 'auto-entropy');
    const wantOod = (opts.ood === true || wants('auto')) && bank !== undefined;
    if (needsLris || (wantOod && opts.embedder)) q = await need(opts.embedder, 'an embedder', 'lris/full/auto').embed(images);
    if (needsLris) {
      lris = lrisSelect(q!, bank!.embeddings).indices;
      lrisIdx = T.keep(T.tensor(new BigInt64Array(lris.map(BigInt)), [lris.length]));
    }
    const ood = wantOod ? oodOf(images, bank!, q) : undefined;
    const neighbours = wants('auto') ? lrisNeighbours(q!, bank!.embeddings, lris!, AUTO_NEIGHBOURS) : undefined;
    try {
      const gStats = (): T.Tensor => bank!.labStats.narrow(0, bank!.gris.index, 1);
      const lStats = (): T.Tensor => T.indexSelect(bank!.labStats, 0, lrisIdx!);
      const none = (): T.Tensor => forward('none', () => opts.model(images));
      const gris = (o: LabTransferOptions, k: string): T.Tensor => forward(k, () => opts.model(labTransferToStats(images, gStats(), o)));
      const lrisL = (o: LabTransferOptions, k: string): T.Tensor => forward(k, () => opts.model(labTransferToStats(images, lStats(), o)));
      const toNeighbour = (idx: T.Tensor, rank: number): T.Tensor => T.tidy(() => {
        const rows = idx.toArray() as number[];
        const refs = T.tensor(rows.map((i) => neighbours![i][rank]), [rows.length], { dtype: 'int64' });
        return opts.model(labTransferToStats(T.indexSelect(images, 0, idx), T.indexSelect(bank!.labStats, 0, refs), tr));
      });
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
        else if (c === 'auto') {
          const sel = autoSelect({ images, ood: ood!, neighbours: neighbours!, none, gris: () => gris(tr, 'gris'), lris: () => lrisL(tr, 'lris'), toNeighbour });
          r = { probs: sel.probs, gris: bank!.gris.index, lris, auto: sel.auto };
        } else {
          const sel = T.tidy(() => selectByEntropy([T.softmax(none(), 1), T.softmax(gris(tr, 'gris'), 1), T.softmax(lrisL(tr, 'lris'), 1), ensemble([gris(tr, 'gris'), lrisL(tr, 'lris')], ens)]));
          r = { probs: sel.probs, gris: bank!.gris.index, lris, auto: { rule: 'entropy', choice: sel.choice.map((k) => ENTROPY_CANDIDATES[k]), entropies: sel.entropies } };
        }
        if (ood) r.ood = ood;
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
    q?.dispose();
    T.dispose([...logits.values()]);
  }
}
