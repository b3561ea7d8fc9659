/**
 * Weight import: PyTorch checkpoints (torch.save files or safetensors; nn/weights_file.ts)
 * into cqseg's Unet through name maps.
 *
 * Maps (each takes a cqseg state-dict name to the checkpoint's name for it):
 *   smp                      a whole smp Unet (`model.state_dict()`): names as they are
 *   smp-encoder              an encoder alone: smp's `model.encoder.state_dict()`,
 *                            efficientnet_pytorch ImageNet weights (`_fc.*` unused),
 *                            torchvision/timm ResNet (`fc.*` unused)
 *   timm-efficientnet        timm `efficientnet_bN` / `tf_efficientnet_bN` (classifier unused)
 *   torchvision-efficientnet torchvision `efficientnet_bN` (classifier unused)
 * A leading `module.` (DataParallel) is dropped first. Encoder-only maps leave the
 * decoder and head at their initialisation. Weights trained with other padding or
 * BatchNorm eps (timm's efficientnet_bN, torchvision) load, but the network computes
 * as efficientnet_pytorch (TF "same" padding, eps 1e-3), as smp would with them.
 */
import { assertFinite, inspectWeightsFile, readWeightsFile, WeightsError, WeightsFormat } from '../nn';
import { Tensor, dispose } from '../tensor';
import { ArgumentError } from '../tensor/check';
import { EfficientNetEncoder, decodeBlock, roundRepeats } from './efficientnet';
import { efficientNetConfig, encoderInfo, encoderNames } from './registry';
import { Unet, UnetOptions } from './unet/model';

/** Where each flat `_blocks.k` sits: stage, index in the stage, and whether it has an expand conv. */
interface BlockPos { stage: number; rep: number; expand: boolean }

interface MapContext {
  blocks: BlockPos[];
  stages: number;
}

export interface WeightMap {
  id: string;
  description: string;
  /** false: only the encoder comes from the checkpoint */
  full: boolean;
  families: ('efficientnet' | 'resnet')[];
  /** the checkpoint's name for a cqseg name, or null when this map does not provide it */
  source(target: string, ctx: MapContext): string | null;
}

const ENC = /^encoder\.(.*)$/;
const BLOCK = /^_blocks\.(\d+)\.(_[a-z0-9_]+)\.(.+)$/;

/** Renames inside one efficientnet_pytorch block for timm ([DS block, IR block]). */
const TIMM_PARTS: Record<string, [string, string]> = {
  _expand_conv: ['', 'conv_pw'], _bn0: ['', 'bn1'], _depthwise_conv: ['conv_dw', 'conv_dw'], _bn1: ['bn1', 'bn2'],
  _se_reduce: ['se.conv_reduce', 'se.conv_reduce'], _se_expand: ['se.conv_expand', 'se.conv_expand'],
  _project_conv: ['conv_pw', 'conv_pwl'], _bn2: ['bn2', 'bn3'],
};
/** ... and for torchvision (index into `block`, [no expand, expand]). */
const TV_PARTS: Record<string, [string, string]> = {
  _expand_conv: ['', '0.0'], _bn0: ['', '0.1'], _depthwise_conv: ['0.0', '1.0'], _bn1: ['0.1', '1.1'],
  _se_reduce: ['1.fc1', '2.fc1'], _se_expand: ['1.fc2', '2.fc2'], _project_conv: ['2.0', '3.0'], _bn2: ['2.1', '3.1'],
};

function efficientNetSource(target: string, ctx: MapContext, stem: [string, string], head: [string, string],
  block: (pos: BlockPos, part: string, rest: string) => string | null): string | null {
  const m = ENC.exec(target);
  if (!m) return null;
  const name = m[1];
  const top = /^(_conv_stem|_bn0|_conv_head|_bn1)\.(.+)$/.exec(name);
  if (top) {
    const to = { _conv_stem: stem[0], _bn0: stem[1], _conv_head: head[0], _bn1: head[1] }[top[1]]!;
    return `${to}.${top[2]}`;
  }
  const b = BLOCK.exec(name);
  if (!b) return null;
  const pos = ctx.blocks[Number(b[1])];
  return pos ? block(pos, b[2], b[3]) : null;
}

export const WEIGHT_MAPS: WeightMap[] = [
  {
    id: 'smp', description: 'a whole smp Unet (model.state_dict())', full: true, families: ['efficientnet', 'resnet'],
    source: (t) => t,
  },
  {
    id: 'smp-encoder', description: "an encoder alone: smp's model.encoder.state_dict(), efficientnet_pytorch, torchvision/timm ResNet",
    full: false, families: ['efficientnet', 'resnet'],
    source: (t) => ENC.exec(t)?.[1] ?? null,
  },
  {
    id: 'timm-efficientnet', description: 'timm efficientnet_bN / tf_efficientnet_bN', full: false, families: ['efficientnet'],
    source: (t, ctx) => efficientNetSource(t, ctx, ['conv_stem', 'bn1'], ['conv_head', 'bn2'], (pos, part, rest) => {
      const to = TIMM_PARTS[part]?.[pos.expand ? 1 : 0];
      return to ? `blocks.${pos.stage}.${pos.rep}.${to}.${rest}` : null;
    }),
  },
  {
    id: 'torchvision-efficientnet', description: 'torchvision efficientnet_bN', full: false, families: ['efficientnet'],
    source: (t, ctx) => efficientNetSource(t, ctx, ['features.0.0', 'features.0.1'], [`features.${ctx.stages + 1}.0`, `features.${ctx.stages + 1}.1`],
      (pos, part, rest) => {
        const to = TV_PARTS[part]?.[pos.expand ? 1 : 0];
        return to ? `features.${pos.stage + 1}.${pos.rep}.block.${to}.${rest}` : null;
      }),
  },
];

export function weightMap(id: string): WeightMap {
  const m = WEIGHT_MAPS.find((w) => w.id === id);
  if (!m) throw new ArgumentError(`unknown weight map '${id}'; known: ${WEIGHT_MAPS.map((w) => w.id).join(', ')}`);
  return m;
}

/** @internal where the model's EfficientNet blocks sit in the stage layout of timm/torchvision. */
export function mapContext(model: Unet): MapContext {
  const enc = model.encoder;
  if (!(enc instanceof EfficientNetEncoder)) return { blocks: [], stages: 0 };
  const blocks: BlockPos[] = [];
  const specs = enc.config.blocks.map(decodeBlock);
  specs.forEach((spec, stage) => {
    for (let rep = 0; rep < roundRepeats(spec.repeats, enc.config.depth); rep++) blocks.push({ stage, rep, expand: spec.expand !== 1 });
  });
  return { blocks, stages: specs.length };
}

/** The checkpoint name a map asks for each cqseg name it covers (cqseg name -> checkpoint name). */
export function mapNames(model: Unet, mapId: string): Map<string, string> {
  const map = weightMap(mapId);
  const ctx = mapContext(model);
  const family = encoderInfo(model.encoderName).family;
  const out = new Map<string, string>();
  if (!map.families.includes(family)) return out;
  for (const name of model.stateDict().keys()) {
    const src = map.source(name, ctx);
    if (src !== null) out.set(name, src);
  }
  return out;
}

export interface ImportPlan {
  map: string;
  /** [cqseg name, checkpoint name] for every tensor that will be copied */
  pairs: [string, string][];
  /** cqseg names this map should provide but the checkpoint lacks */
  missing: string[];
  /** checkpoint names nothing takes */
  unused: string[];
  /** 'cqseg name <- checkpoint name: checkpoint [..], model [..]' */
  mismatched: string[];
  /** cqseg names this map does not cover (decoder and head for encoder-only maps) */
  notCovered: string[];
  /** the leading prefix dropped from every checkpoint name ('' or 'module.') */
  strippedPrefix: string;
  fits: boolean;
}

/** Matches checkpoint names and shapes against a model through one map, touching no data. */
export function planImport(source: Map<string, number[]>, model: Unet, mapId: string): ImportPlan {
  const map = weightMap(mapId);
  const names = [...source.keys()];
  const strippedPrefix = names.length > 0 && names.every((n) => n.startsWith('module.')) ? 'module.' : '';
  const shapes = new Map(names.map((n) => [n.slice(strippedPrefix.length), source.get(n)!]));
  const ctx = mapContext(model);
  const plan: ImportPlan = { map: map.id, pairs: [], missing: [], unused: [], mismatched: [], notCovered: [], strippedPrefix, fits: false };
  const family = encoderInfo(model.encoderName).family;
  const taken = new Set<string>();
  for (const [target, t] of model.stateDict()) {
    const src = map.families.includes(family) ? map.source(target, ctx) : null;
    if (src === null) {
      plan.notCovered.push(target);
      continue;
    }
    const shape = shapes.get(src);
    if (shape === undefined) {
      plan.missing.push(target);
      continue;
    }
    taken.add(src);
    if (shape.join(',') !== t.shape.join(',')) {
      plan.mismatched.push(`${target} <- ${src}: checkpoint [${shape.join(',')}], model [${t.shape.join(',')}]`);
      continue;
    }
    plan.pairs.push([target, strippedPrefix + src]);
  }
  plan.unused = [...shapes.keys()].filter((n) => !taken.has(n)).map((n) => strippedPrefix + n);
  plan.fits = plan.pairs.length > 0 && plan.missing.length === 0 && plan.mismatched.length === 0;
  return plan;
}

/** The best fitting map: full before encoder-only, then fewest unused; null when none fits. */
export function chooseMap(source: Map<string, number[]>, model: Unet): ImportPlan | null {
  const plans = WEIGHT_MAPS.map((m) => planImport(source, model, m.id)).filter((p) => p.fits);
  plans.sort((a, b) => (b.notCovered.length === 0 ? 1 : 0) - (a.notCovered.length === 0 ? 1 : 0) || a.unused.length - b.unused.length);
  return plans[0] ?? null;
}

const list = (xs: string[], n = 8): string => xs.slice(0, n).join(', ') + (xs.length > n ? `, ... (${xs.length} in all)` : '');

/**
 * Loads a checkpoint (safetensors, or a torch.save file: .pth, .pt, .bin) into a Unet
 * through a name map ('auto': the best one that fits). Throws a WeightsError naming the
 * file when the map does not fit (missing or mis-shaped tensors, each named) or a tensor
 * it takes holds NaN/Inf; unused checkpoint tensors (classifiers) are reported, not
 * errors. fp16 and bf16 tensors are cast to the model's float32.
 *   const plan = importWeights(model, 'unet.safetensors'); // plan.map === 'smp'
 */
export function importWeights(model: Unet, file: string, opts: { map?: string } = {}): ImportPlan {
  const { tensors } = readWeightsFile(file);
  try {
    const shapes = new Map([...tensors].map(([n, t]) => [n, t.shape] as [string, number[]]));
    let plan: ImportPlan | null;
    if (!opts.map || opts.map === 'auto') {
      plan = chooseMap(shapes, model);
      if (!plan) {
        const tried = WEIGHT_MAPS.map((m) => planImport(shapes, model, m.id)).sort((a, b) => b.pairs.length - a.pairs.length)[0];
        throw new WeightsError(file, `no name map fits Unet(${model.encoderName}, classes=${model.classes}); closest '${tried.map}': ` +
          `${tried.pairs.length} tensors match, missing ${tried.missing.length} (${list(tried.missing)}), shape mismatch ${tried.mismatched.length} (${list(tried.mismatched, 3)}). ` +
          'Run `cqseg weights inspect FILE` for details.');
      }
    } else {
      plan = planImport(shapes, model, opts.map);
      if (!plan.fits) {
        throw new WeightsError(file, `map '${plan.map}' does not fit Unet(${model.encoderName}, classes=${model.classes}): ` +
          `missing ${plan.missing.length} (${list(plan.missing)}), shape mismatch ${plan.mismatched.length} (${list(plan.mismatched, 3)})`);
      }
    }
    assertFinite(file, plan.pairs.map(([, from]): [string, Tensor] => [from, tensors.get(from)!])); // unused tensors may be anything
    const renamed = new Map<string, Tensor>(plan.pairs.map(([to, from]) => [to, tensors.get(from)!]));
    model.loadStateDict(renamed, { strict: false });
    return plan;
  } finally {
    dispose([...tensors.values()]);
  }
}

/** A Unet a checkpoint may be for, and how each map fits it. */
export interface Candidate {
  encoderName: string;
  classes: number;
  decoderChannels: number[];
  plans: ImportPlan[];
}

/** Block count of an EfficientNet checkpoint in any of the known layouts (0 if none). */
function efficientNetBlocks(names: string[]): number {
  const seen = new Set<string>();
  for (const n of names) {
    const m = /(?:^|\.)_blocks\.(\d+)\./.exec(n) ?? /^blocks\.(\d+\.\d+)\./.exec(n) ?? /^features\.([1-9]\.\d+)\.block\./.exec(n);
    if (m) seen.add(m[1]);
  }
  return seen.size;
}

function guessEncoders(names: string[]): string[] {
  const n = efficientNetBlocks(names);
  if (n > 0) {
    return encoderNames({ includeTest: true }).filter((e) => {
      if (encoderInfo(e).family !== 'efficientnet') return false;
      const c = efficientNetConfig(e);
      return c.blocks.map(decodeBlock).reduce((k, b) => k + roundRepeats(b.repeats, c.depth), 0) === n;
    });
  }
  if (names.some((x) => /(?:^|\.)layer1\.0\.conv1\.weight$/.test(x))) {
    const layer3 = new Set(names.map((x) => /(?:^|\.)layer3\.(\d+)\./.exec(x)?.[1]).filter((x) => x !== undefined));
    const bottleneck = names.some((x) => /(?:^|\.)layer1\.0\.conv3\.weight$/.test(x));
    if (bottleneck) return ['resnet50'];
    return layer3.size <= 2 ? ['resnet18'] : ['resnet34'];
  }
  return [];
}

/**
 * What a checkpoint is: its tensors (from the header only) and, for each Unet it may
 * belong to, how every map fits (mapped, missing, unused). `opts` pins the encoder or classes.
 */
export function inspectWeights(file: string, opts: { encoderName?: string; classes?: number } = {}): {
  format: WeightsFormat;
  /** the checkpoint dict's key that held the state dict (null: a bare state dict) */
  container: string | null;
  /** what else a torch.save file held */
  others: string[];
  tensors: { name: string; dtype: string; shape: number[] }[];
  candidates: Candidate[];
} {
  const { format, container, others, tensors } = inspectWeightsFile(file);
  return { format, container, others, tensors, candidates: weightCandidates(new Map(tensors.map((t) => [t.name, t.shape])), opts) };
}

/**
 * The Unets a checkpoint's tensors (name -> shape) may belong to, and how every map fits
 * each: the encoder from the layout, classes and decoder channels from the shapes.
 */
export function weightCandidates(source: Map<string, number[]>, opts: { encoderName?: string; classes?: number } = {}): Candidate[] {
  const names = [...source.keys()].map((n) => n.replace(/^module\./, ''));
  const shapeOf = (n: string): number[] | undefined => source.get(n) ?? source.get(`module.${n}`);
  const encoders = opts.encoderName ? [opts.encoderName] : guessEncoders(names);
  const classes = opts.classes ?? shapeOf('segmentation_head.0.weight')?.[0] ?? 1;
  const decoderChannels = [0, 1, 2, 3, 4].map((i) => shapeOf(`decoder.blocks.${i}.conv1.0.weight`)?.[0] ?? [256, 128, 64, 32, 16][i]);
  const candidates: Candidate[] = [];
  for (const encoderName of encoders) {
    const model = new Unet({ encoderName, classes, decoderChannels } satisfies UnetOptions);
    try {
      candidates.push({ encoderName, classes, decoderChannels, plans: WEIGHT_MAPS.map((m) => planImport(source, model, m.id)) });
    } finally {
      dispose(model);
    }
  }
  return candidates;
}

