/**
 * Train/val splits: by seed (a seeded shuffle, then the first part is val), or by list
 * files naming stems (or file names / paths; the stem is what counts), one per line.
 *   const { train, val } = splitBySeed(ds, { valFraction: 0.2, seed: 0 });
 */
import * as fs from 'fs';
import * as path from 'path';
import { SegDataset, subset } from './dataset';
import { DataError } from './image_io';
import { stream } from '../util/random';

export interface Split {
  train: SegDataset;
  val: SegDataset;
}

/** Indices for a seeded split: sorted within each part; the same seed gives the same split. */
export function splitIndices(n: number, valFraction: number, seed: number): { train: number[]; val: number[] } {
  if (!(valFraction >= 0 && valFraction < 1)) throw new DataError(`valFraction must be in [0, 1), got ${valFraction}`, 'argument');
  const order = stream(seed, 'split').shuffle(Array.from({ length: n }, (_, i) => i));
  const nVal = Math.round(n * valFraction);
  const val = order.slice(0, nVal).sort((a, b) => a - b);
  const train = order.slice(nVal).sort((a, b) => a - b);
  return { train, val };
}

export function splitBySeed(ds: SegDataset, opts: { valFraction?: number; seed?: number } = {}): Split {
  const { train, val } = splitIndices(ds.items.length, opts.valFraction ?? 0.2, opts.seed ?? 0);
  return { train: subset(ds, train), val: subset(ds, val) };
}

function readStems(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new DataError(`cannot read split list '${file}': ${(err as Error).message}`, 'missing', file);
  }
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map((l) => path.parse(l).name);
}

/**
 * A split from list files. Stems named but not in the dataset, or named in both lists,
 * are errors; dataset items in neither list are left out.
 */
export function splitByLists(ds: SegDataset, trainFile: string, valFile: string): Split {
  const index = new Map(ds.items.map((it, i) => [it.stem, i]));
  const pick = (file: string): number[] => readStems(file).map((s) => {
    const i = index.get(s);
    if (i === undefined) throw new DataError(`split list '${file}' names '${s}', which is not in dataset '${ds.source}'`, 'bad-list', file);
    return i;
  });
  const train = pick(trainFile);
  const val = pick(valFile);
  const both = train.filter((i) => val.includes(i));
  if (both.length > 0) {
    throw new DataError(`split lists '${trainFile}' and '${valFile}' both name ${both.map((i) => ds.items[i].stem).slice(0, 5).join(', ')}${both.length > 5 ? ', ...' : ''}`, 'bad-list', valFile);
  }
  return { train: subset(ds, train), val: subset(ds, val) };
}
