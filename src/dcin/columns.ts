/**
 * Prediction columns: a DCIN mode, optionally with test-time adaptation, named as
 * `DCIN[+ADAPT][+flip]` and read by `evaluate`, `experiment` and `predict` alike.
 *
 *   DCIN   none (may be left out) | exri | gris | lris | full | full-robust | auto | auto-entropy
 *   ADAPT  adabn        BatchNorm statistics re-estimated on the whole target domain (the
 *                       images being evaluated or predicted, at the model's size, as they
 *                       come: before any color transfer; each image weighs the same), then
 *                       used for every forward of the column (tta.ts adaBnDomain)
 *          adabn-image  per image: (1 - alpha) * source + alpha * the image's own
 *                       statistics, alpha = 0.5 by default (tta.ts withAdaBnImage)
 *   flip   the mean of the probabilities over the identity, horizontal, vertical and
 *          both flips (tta.ts flipTta)
 *
 * e.g. `flip` (= none+flip), `adabn`, `auto+flip`, `auto+adabn+flip`. The adaptation
 * changes the model's forward only: DCIN's color transfer comes first, the references
 * (GRIS, LRIS, auto's neighbours) and the OOD distances are those of the unadapted
 * model's embedding, as the bank was built with it.
 */
import * as T from '../tensor';
import { ArgumentError } from '../tensor';
import { Module } from '../nn';
import { closestKey } from '../util/suggest';
import { DCIN_MODES, DcinMode, DcinOptions, dcinPredictMany, DcinResult } from './predict';
import { AdaBnBatch, adaBnDomainStats, ADABN_IMAGE_ALPHA, BnStats, Forward, withAdaBnImage, withBnStats, withFlipTta } from './tta';

/** The test-time adaptation parts. */
export const TTA_PARTS = ['adabn', 'adabn-image', 'flip'] as const;
/** DCIN modes that need a reference bank. */
export const BANK_MODES: readonly DcinMode[] = ['gris', 'lris', 'full', 'full-robust', 'auto', 'auto-entropy'];
/** The test-time adaptation columns an experiment adds by default: each alone, and with auto (the safe DCIN rule). */
export const TTA_COLUMNS = ['adabn', 'adabn-image', 'flip', 'auto+adabn', 'auto+flip'] as const;

export interface Column {
  /** as given, e.g. 'auto+flip' */
  name: string;
  dcin: DcinMode;
  adapt: 'adabn' | 'adabn-image' | null;
  flip: boolean;
}

/** What a column name may be, for messages. */
export const COLUMN_GRAMMAR = `DCIN[+adabn|+adabn-image][+flip], DCIN one of ${DCIN_MODES.join(', ')} (none may be left out: 'flip', 'adabn')`;

/** Parses a column name (see the file comment); an ArgumentError says what is wrong. */
export function parseColumn(name: string): Column {
  const bad = (why: string): never => {
    throw new ArgumentError(`column '${name}': ${why}; a column is ${COLUMN_GRAMMAR}`);
  };
  if (typeof name !== 'string' || name.trim() === '') return bad('empty');
  const parts = name.split('+').map((p) => p.trim());
  let dcin: DcinMode | null = null;
  let adapt: Column['adapt'] = null;
  let flip = false;
  parts.forEach((p, i) => {
    if ((DCIN_MODES as readonly string[]).includes(p)) {
      if (i !== 0) bad(`the DCIN mode '${p}' must come first`);
      dcin = p as DcinMode;
    } else if (p === 'adabn' || p === 'adabn-image') {
      if (adapt) bad(`'${adapt}' and '${p}' together`);
      if (flip) bad("'flip' must come last");
      adapt = p;
    } else if (p === 'flip') {
      if (flip) bad("'flip' twice");
      flip = true;
    } else {
      const near = closestKey(p, [...DCIN_MODES, ...TTA_PARTS]);
      bad(`unknown ${i === 0 ? 'DCIN mode' : 'part'} '${p}'${near ? ` (did you mean '${near}'?)` : ''}`);
    }
  });
  return { name, dcin: dcin ?? 'none', adapt, flip };
}

/** Parses a list of column names; duplicates are refused. */
export function parseColumns(names: readonly string[]): Column[] {
  const seen = new Set<string>();
  return names.map((n) => {
    const c = parseColumn(n);
    const key = columnKey(c);
    if (seen.has(key)) throw new ArgumentError(`column '${n}' is given twice`);
    seen.add(key);
    return c;
  });
}

const columnKey = (c: Column): string => `${c.dcin}+${c.adapt ?? ''}+${c.flip}`;

/** True when some column needs a reference bank. */
export const needsBank = (cols: readonly Column[]): boolean => cols.some((c) => BANK_MODES.includes(c.dcin));
/** True when some column needs the target domain's BatchNorm statistics (a pass over its images first). */
export const needsDomainStats = (cols: readonly Column[]): boolean => cols.some((c) => c.adapt === 'adabn');

const DCIN_TITLES: Record<string, string> = {
  none: 'none', exri: 'ExRI', gris: 'GRIS', lris: 'LRIS', full: 'GRIS+LRIS', 'full-robust': 'GRIS+LRIS robust', auto: 'auto', 'auto-entropy': 'auto (entropy)',
};

/** A column's title in reports: 'GRIS+LRIS', 'AdaBN', 'auto + flip TTA'. */
export function columnTitle(name: string): string {
  let c: Column;
  try {
    c = parseColumn(name);
  } catch {
    return name;
  }
  const parts = [c.dcin === 'none' && (c.adapt || c.flip) ? null : DCIN_TITLES[c.dcin], c.adapt === 'adabn' ? 'AdaBN' : c.adapt === 'adabn-image' ? 'AdaBN per image' : null, c.flip ? 'flip TTA' : null];
  return parts.filter((p): p is string => p !== null).join(' + ');
}

export interface ColumnContext extends Omit<DcinOptions, 'mode' | 'model'> {
  /** the network whose BatchNorm layers the adaptations change */
  net: Module;
  /** images uint8 (N, 3, H, W) -> logits (preprocessing + net) */
  forward: Forward;
  /** the domain's statistics, for 'adabn' columns (domainBnStats) */
  domainStats?: BnStats;
  /** adabn-image's weight of the image's statistics (default ADABN_IMAGE_ALPHA) */
  alpha?: number;
}

/**
 * The target domain's BatchNorm statistics for 'adabn' columns: one pass of the
 * context's forward over `batches` (uint8 images at the model's size, or loader batches);
 * each image weighs the same. The model is left with its source statistics.
 */
export function domainBnStats(net: Module, forward: Forward, batches: AsyncIterable<AdaBnBatch> | Iterable<AdaBnBatch>, opts: { disposeBatches?: boolean } = {}): Promise<BnStats> {
  return T.noGradAsync(() => adaBnDomainStats(net, batches, { forward, weighting: 'image', disposeBatches: opts.disposeBatches }));
}

/**
 * Every column's result for one batch. Columns that share an adaptation share one
 * dcinPredictMany call (each distinct model input runs once); every result carries the
 * same OOD scores when `ood` is asked (they do not depend on the adaptation). The images may
 * be on any device: they move to the network's once.
 *   const cols = parseColumns(['none', 'auto', 'auto+flip']);
 *   const byName = await predictColumns(images, cols, { net: s.model, forward: s.forward, bank, embedder, ood: true });
 */
export async function predictColumns(input: T.Tensor, columns: readonly Column[], ctx: ColumnContext): Promise<Map<string, DcinResult>> {
  const device = ctx.net.parameters()[0]?.device ?? input.device;
  const images = input.device === device ? input : input.to(device);
  const groups = new Map<string, Column[]>();
  for (const c of columns) {
    const k = `${c.adapt ?? ''}|${c.flip}`;
    groups.set(k, [...(groups.get(k) ?? []), c]);
  }
  const out = new Map<string, DcinResult>();
  let ood: DcinResult['ood'];
  try {
    for (const cols of groups.values()) {
      const { adapt, flip } = cols[0];
      let fwd: Forward = ctx.forward;
      if (adapt === 'adabn') {
        if (!ctx.domainStats) throw new ArgumentError(`column '${cols[0].name}' needs the domain's BatchNorm statistics (domainBnStats)`);
        fwd = withBnStats(ctx.net, ctx.domainStats, fwd);
      } else if (adapt === 'adabn-image') fwd = withAdaBnImage(ctx.net, { forward: fwd, alpha: ctx.alpha ?? ADABN_IMAGE_ALPHA });
      if (flip) fwd = withFlipTta(fwd, { output: 'logProbs' });
      const byDcin = await dcinPredictMany(images, [...new Set(cols.map((c) => c.dcin))], { ...ctx, model: fwd, ood: ctx.ood && ood === undefined });
      for (const c of cols) out.set(c.name, byDcin.get(c.dcin)!); // one column per DCIN mode in a group
      ood ??= byDcin.values().next().value?.ood;
    }
    if (ctx.ood && ood) for (const r of out.values()) r.ood = ood;
    return new Map(columns.map((c) => [c.name, out.get(c.name)!])); // in the order asked
  } catch (err) {
    for (const r of out.values()) r.probs.dispose();
    throw err;
  } finally {
    if (images !== input) images.dispose();
  }
}
