/**
 * The encoder registry: an encoder by name, its channels per stage, and the tiny test
 * spec. Names are smp's ('efficientnet-b2', 'resnet34'); every encoder returns six
 * features (x, 1/2, 1/4, 1/8, 1/16, 1/32) as smp's encoders with depth 5.
 */
import { ArgumentError } from '../tensor/check';
import type { Encoder } from './encoder';
import { EFFICIENTNET_BLOCKS, EFFICIENTNET_SCALING, EfficientNetConfig, EfficientNetEncoder } from './efficientnet';
import { RESNET_SPECS, ResNetEncoder } from './resnet';

export type { Encoder } from './encoder';

export interface EncoderInfo {
  name: string;
  family: 'efficientnet' | 'resnet';
  /** smp's out_channels for depth 5 */
  outChannels: number[];
  /** the tiny spec for fast tests, not a published model */
  test: boolean;
  create(): Encoder;
}

/** smp 0.3.4 encoders/efficientnet.py: out_channels and stage_idxs (b0's 9 is smp's, mid-stage). */
const SMP_EFFICIENTNET: Record<string, { outChannels: number[]; stageIdxs: number[] }> = {
  'efficientnet-b0': { outChannels: [3, 32, 24, 40, 112, 320], stageIdxs: [3, 5, 9, 16] },
  'efficientnet-b1': { outChannels: [3, 32, 24, 40, 112, 320], stageIdxs: [5, 8, 16, 23] },
  'efficientnet-b2': { outChannels: [3, 32, 24, 48, 120, 352], stageIdxs: [5, 8, 16, 23] },
  'efficientnet-b3': { outChannels: [3, 40, 32, 48, 136, 384], stageIdxs: [5, 8, 18, 26] },
  'efficientnet-b4': { outChannels: [3, 48, 32, 56, 160, 448], stageIdxs: [6, 10, 22, 32] },
  'efficientnet-b5': { outChannels: [3, 48, 40, 64, 176, 512], stageIdxs: [8, 13, 27, 39] },
  'efficientnet-b6': { outChannels: [3, 56, 40, 72, 200, 576], stageIdxs: [9, 15, 31, 45] },
  'efficientnet-b7': { outChannels: [3, 64, 48, 80, 224, 640], stageIdxs: [11, 18, 38, 55] },
};

/** The tiny test EfficientNet (as timm's _gen_test_efficientnet): five stages, odd nominal sizes. */
export const TEST_EFFICIENTNET: EfficientNetConfig = {
  blocks: [
    'r1_k3_s11_e1_i8_o8_se0.25', 'r2_k3_s22_e2_i8_o16_se0.25', 'r1_k5_s22_e3_i16_o24_se0.25',
    'r2_k3_s22_e2_i24_o32_se0.25', 'r1_k5_s22_e2_i32_o40_se0.25',
  ],
  width: 1.0, depth: 1.0, imageSize: 72, dropConnectRate: 0.2, stemChannels: 8, headChannels: 48,
  stageIdxs: [3, 4, 6, 7], outChannels: [3, 8, 16, 24, 32, 40],
};

/** The config smp builds for 'efficientnet-bN'. */
export function efficientNetConfig(name: string): EfficientNetConfig {
  if (name === 'efficientnet-test') return TEST_EFFICIENTNET;
  const scaling = EFFICIENTNET_SCALING[name];
  const smp = SMP_EFFICIENTNET[name];
  if (!scaling || !smp) throw new ArgumentError(`unknown EfficientNet '${name}'; known: ${Object.keys(EFFICIENTNET_SCALING).join(', ')}`);
  const [width, depth, imageSize] = scaling;
  return {
    blocks: EFFICIENTNET_BLOCKS, width, depth, imageSize, dropConnectRate: 0.2, stemChannels: 32, headChannels: 1280,
    stageIdxs: smp.stageIdxs, outChannels: smp.outChannels,
  };
}

const REGISTRY = new Map<string, EncoderInfo>();
for (const name of [...Object.keys(SMP_EFFICIENTNET), 'efficientnet-test']) {
  const config = efficientNetConfig(name);
  REGISTRY.set(name, {
    name, family: 'efficientnet', outChannels: config.outChannels, test: name === 'efficientnet-test',
    create: () => new EfficientNetEncoder({ ...config, blocks: [...config.blocks], stageIdxs: [...config.stageIdxs], outChannels: [...config.outChannels] }),
  });
}
for (const [name, spec] of Object.entries(RESNET_SPECS)) {
  const e = spec.block === 'basic' ? 1 : 4;
  REGISTRY.set(name, {
    name, family: 'resnet', outChannels: [3, 64, 64 * e, 128 * e, 256 * e, 512 * e], test: false,
    create: () => new ResNetEncoder(spec),
  });
}

/** Registered encoder names; the test spec only when asked. */
export function encoderNames(opts: { includeTest?: boolean } = {}): string[] {
  return [...REGISTRY.values()].filter((e) => opts.includeTest || !e.test).map((e) => e.name);
}

export function encoderInfo(name: string): EncoderInfo {
  const info = REGISTRY.get(name);
  if (!info) throw new ArgumentError(`Argument 'encoderName' must be one of ${encoderNames({ includeTest: true }).map((n) => `'${n}'`).join(', ')}, got '${name}'`);
  return info;
}

/** A fresh, randomly initialised encoder. */
export function createEncoder(name: string): Encoder {
  return encoderInfo(name).create();
}

/** Channels of the six features (input first). */
export function encoderChannels(name: string): number[] {
  return [...encoderInfo(name).outChannels];
}
