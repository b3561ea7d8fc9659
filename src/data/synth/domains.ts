/**
 * The three camera domains of the synthetic benchmark. Each draws its parameters from
 * the JS PRNG (recorded in the manifest) and applies them as tensor ops on a (1, 3, H, W)
 * float image in 0..1. Masks are never touched.
 *
 * The target domains imitate devices, not cqseg's CQG training augmentations (Gaussian
 * blur kernel 3..11, sharpen alpha 0.3..0.9, Gaussian noise var 30..90, brightness and
 * contrast +-0.2, additive RGB shift +-20): they use other operations or clearly other
 * parameter ranges:
 * - hq (professional camera): clean; small white-balance jitter (gains 0.97..1.03), PNG.
 * - lq (old cameras): resolution loss (down/up-sampling by 2.5..4), linear motion blur
 *   (5..9 px, any angle), poor light (exposure x0.58..0.78 and gamma 1.25..1.5), a color
 *   cast by channel gains (yellow, green, cyan or magenta, gains 0.65..1.25), haze (blend
 *   toward a gray veil 0.4..0.6, transmission 0.68..0.85), JPEG quality 8..20.
 * - sp (smartphones): white balance by channel gains (warm or cool, R/B x0.75..1.3), an
 *   S-shaped tone curve with lifted shadows, saturation x1.4..1.8, signal-dependent shot
 *   noise plus coarse chroma noise, over-sharpening (unsharp mask sigma 1.5..2.5, amount
 *   1.2..2.0, with halos), vignetting (radial falloff 0.35..0.6), JPEG quality 70..85.
 */
import { randn, tensor, Tensor, tidy, interpolate } from '../../tensor';
import { Rng } from '../../util/random';
import { gaussianBlur, grids, lowResolution, motionBlur } from './filters';

export type Domain = 'hq' | 'lq' | 'sp';
export const DOMAINS: Domain[] = ['hq', 'lq', 'sp'];

export type DomainParams = Record<string, number | number[] | string>;

const round = (v: number): number => Math.round(v * 1e4) / 1e4;
const gains = (g: number[]): number[] => g.map(round);

const CASTS: Record<string, number[]> = {
  yellow: [1.12, 1.04, 0.68],
  green: [0.86, 1.14, 0.82],
  cyan: [0.78, 1.02, 1.2],
  magenta: [1.1, 0.8, 1.08],
};

/** Draws one image's degradation parameters for a domain. */
export function drawDomain(domain: Domain, rng: Rng): DomainParams {
  if (domain === 'hq') return { gains: gains([1, 1, 1].map(() => rng.uniform(0.97, 1.03))), format: 'png' };
  if (domain === 'lq') {
    const cast = rng.choice(Object.keys(CASTS));
    return {
      downscale: round(rng.uniform(2.5, 4)),
      motionLength: round(rng.uniform(5, 9)),
      motionAngle: round(rng.uniform(0, Math.PI)),
      hazeTransmission: round(rng.uniform(0.68, 0.85)),
      haze: gains([rng.uniform(0.45, 0.6), rng.uniform(0.43, 0.58), rng.uniform(0.4, 0.55)]),
      exposure: round(rng.uniform(0.58, 0.78)),
      gamma: round(rng.uniform(1.25, 1.5)),
      cast,
      gains: gains(CASTS[cast].map((g) => g * rng.uniform(0.95, 1.05))),
      jpegQuality: rng.int(8, 20),
      format: 'jpg',
    };
  }
  const warm = rng.next() < 0.5;
  return {
    whiteBalance: warm ? 'warm' : 'cool',
    gains: gains(warm ? [rng.uniform(1.12, 1.3), 1, rng.uniform(0.75, 0.86)] : [rng.uniform(0.75, 0.86), rng.uniform(0.97, 1.05), rng.uniform(1.12, 1.3)]),
    curve: round(rng.uniform(0.5, 0.9)),
    shadowLift: round(rng.uniform(0.7, 0.85)),
    saturation: round(rng.uniform(1.4, 1.8)),
    shotNoise: round(rng.uniform(0.0015, 0.003)),
    chromaNoise: round(rng.uniform(0.02, 0.04)),
    sharpenSigma: round(rng.uniform(1.5, 2.5)),
    sharpenAmount: round(rng.uniform(1.2, 2.0)),
    vignette: round(rng.uniform(0.35, 0.6)),
    jpegQuality: rng.int(70, 85),
    format: 'jpg',
  };
}

const gainT = (g: number[]): Tensor => tensor(g, [1, 3, 1, 1]);

/** Applies a domain's parameters; noise comes from torch's generator (seeded by the caller). */
export function applyDomain(domain: Domain, x: Tensor, p: DomainParams): Tensor {
  return tidy(() => {
    if (domain === 'hq') return x.mul(gainT(p.gains as number[])).clamp(0, 1);
    if (domain === 'lq') return degradeLq(x, p);
    return degradeSp(x, p);
  });
}

function degradeLq(x: Tensor, p: DomainParams): Tensor {
  let y = lowResolution(x, p.downscale as number);
  y = motionBlur(y, p.motionLength as number, p.motionAngle as number);
  y = y.mul(p.exposure as number).clamp(1e-6, 1).pow(p.gamma as number);
  y = y.mul(gainT(p.gains as number[]));
  const t = p.hazeTransmission as number;
  y = y.mul(t).add(gainT(p.haze as number[]).mul(1 - t));
  return y.clamp(0, 1);
}

function degradeSp(x: Tensor, p: DomainParams): Tensor {
  const [, , h, w] = x.shape;
  let y = x.mul(gainT(p.gains as number[])).clamp(0, 1);
  // tone curve: lift shadows (gamma < 1), then an S-curve blended in by `curve`
  y = y.clamp(1e-6, 1).pow(p.shadowLift as number);
  const s = y.sub(0.5).mul(6).sigmoid().sub(0.04743).div(0.90514); // sigmoid S-curve mapped to 0..1
  y = y.add(s.sub(y).mul(p.curve as number));
  // saturation around the per-pixel mean
  const mean = y.mean(1, { keepdim: true });
  y = y.sub(mean).mul(p.saturation as number).add(mean).clamp(0, 1);
  // sensor noise: signal-dependent shot noise and coarse chroma blotches
  y = y.add(randn([1, 3, h, w]).mul(y.mul(p.shotNoise as number).add(1e-5).sqrt()));
  const chroma = interpolate(randn([1, 3, Math.max(2, Math.round(h / 4)), Math.max(2, Math.round(w / 4))]), { size: [h, w], mode: 'bilinear', alignCorners: false });
  y = y.add(chroma.sub(chroma.mean(1, { keepdim: true })).mul(p.chromaNoise as number));
  // over-sharpening: unsharp mask with a wide radius (halos)
  const blur = gaussianBlur(y, p.sharpenSigma as number);
  y = y.add(y.sub(blur).mul(p.sharpenAmount as number));
  // vignetting: radial falloff towards the corners
  const { ys, xs } = grids(h, w);
  const r2 = xs.sub(w / 2).div(w / 2).square().add(ys.sub(h / 2).div(h / 2).square()).div(2);
  y = y.mul(r2.pow(1.25).mul(-(p.vignette as number)).add(1));
  return y.clamp(0, 1);
}
