/**
 * Throat-like scenes: the paper's classes (0 other, 1 tonsil, 2 uvula, 3 tongue,
 * 4 back_wall) as smooth organic shapes with varied size, position and pose, a
 * mucosa-like texture, specular highlights and lighting falloff.
 *
 * Shape parameters come from the JS PRNG (Rng), so a seed fixes the geometry; texture
 * noise comes from torch's generator seeded per image. Each shape is a star-shaped blob:
 * an ellipse whose radius varies with angle by a few low harmonics
 *   r(theta) = 1 + sum_k a_k cos(k theta + phi_k),
 * the mask takes pixels whose centre is inside, the image composites soft (1 px) edges.
 * Painting order (later on top): other, back_wall, tonsils, uvula, tongue.
 */
import { atan2, cos, sigmoid, Tensor, tidy, where, zeros, full, tensor } from '../../tensor';
import { Rng } from '../../util/random';
import { grids, smoothNoise } from './filters';

export interface Blob {
  cx: number;
  cy: number;
  rx: number;
  ry: number;
  angle: number;
  /** [amplitude, phase] for harmonics k = 2, 3, 4, ... */
  harmonics: [number, number][];
  /** >0 narrows the top: rx scales from (1 - taper) at the top to 1 at the bottom */
  taper?: number;
}

export type Rgb = [number, number, number];

export interface Highlight { x: number; y: number; sx: number; sy: number; strength: number }

export interface SceneParams {
  /** the opening of the throat: back_wall pixels */
  opening: Blob;
  /** the mouth opening; outside it, dark lips and shadow */
  mouth: Blob;
  tonsils: Blob[];
  uvula: Blob | null;
  tongue: Blob;
  colors: { other: Rgb; backWall: Rgb; tonsil: Rgb; uvula: Rgb; tongue: Rgb; lips: Rgb };
  light: { x: number; y: number; sigma: number; floor: number };
  highlights: Highlight[];
  /** seed of torch's generator for this scene's texture noise */
  noiseSeed: number;
}

const harmonics = (rng: Rng, n: number, amp: number): [number, number][] =>
  Array.from({ length: n }, (_, i) => [rng.uniform(0, amp / (i + 1)), rng.uniform(0, 2 * Math.PI)]);

const jitter = (rng: Rng, c: Rgb, s: number): Rgb => c.map((v) => Math.min(1, Math.max(0, v + rng.uniform(-s, s)))) as Rgb;

/** Draws one scene's parameters for an image of h x w pixels. */
export function drawScene(rng: Rng, h: number, w: number): SceneParams {
  const scale = rng.uniform(0.85, 1.15) * h;
  const rot = rng.uniform(-0.2, 0.2);
  const ox = w / 2 + rng.uniform(-0.08, 0.08) * w;
  const oy = h / 2 + rng.uniform(-0.07, 0.07) * h;
  // camera pose: positions given relative to the view centre (units of `scale`), rotated
  const at = (u: number, v: number): [number, number] =>
    [ox + scale * (u * Math.cos(rot) - v * Math.sin(rot)), oy + scale * (u * Math.sin(rot) + v * Math.cos(rot))];
  const [mx, my] = at(0, 0.02);
  const mouth: Blob = { cx: mx, cy: my, rx: scale * rng.uniform(0.85, 1.0), ry: scale * rng.uniform(0.5, 0.6), angle: rot, harmonics: harmonics(rng, 3, 0.06) };
  const [bx, by] = at(rng.uniform(-0.05, 0.05), rng.uniform(-0.08, 0.0));
  const opening: Blob = { cx: bx, cy: by, rx: scale * rng.uniform(0.28, 0.4), ry: scale * rng.uniform(0.3, 0.4), angle: rot + rng.uniform(-0.15, 0.15), harmonics: harmonics(rng, 3, 0.1) };
  const tonsils: Blob[] = [];
  for (const side of [-1, 1]) {
    if (rng.next() < 0.08) continue; // sometimes hidden
    const [tx, ty] = at(side * rng.uniform(0.26, 0.36), rng.uniform(-0.02, 0.1));
    tonsils.push({ cx: tx, cy: ty, rx: scale * rng.uniform(0.07, 0.14), ry: scale * rng.uniform(0.12, 0.2), angle: rot + side * rng.uniform(0, 0.4), harmonics: harmonics(rng, 3, 0.15) });
  }
  let uvula: Blob | null = null;
  if (rng.next() > 0.05) {
    const ry = scale * rng.uniform(0.13, 0.22);
    const [ux] = at(rng.uniform(-0.04, 0.04), 0);
    uvula = { cx: ux, cy: opening.cy - opening.ry * 0.9 + ry * rng.uniform(0.7, 1.0), rx: scale * rng.uniform(0.045, 0.075), ry, angle: rot + rng.uniform(-0.25, 0.25), harmonics: harmonics(rng, 2, 0.06), taper: rng.uniform(0.35, 0.55) };
  }
  const [gx, gy] = at(rng.uniform(-0.05, 0.05), rng.uniform(0.42, 0.56));
  const tongue: Blob = { cx: gx, cy: gy, rx: scale * rng.uniform(0.55, 0.75), ry: scale * rng.uniform(0.28, 0.4), angle: rot + rng.uniform(-0.12, 0.12), harmonics: harmonics(rng, 3, 0.08) };
  const colors = {
    other: jitter(rng, [0.82, 0.48, 0.47], 0.03),
    backWall: jitter(rng, [0.72, 0.3, 0.27], 0.03),
    tonsil: jitter(rng, [0.86, 0.5, 0.46], 0.03),
    uvula: jitter(rng, [0.92, 0.6, 0.57], 0.03),
    tongue: jitter(rng, [0.86, 0.52, 0.56], 0.03),
    lips: jitter(rng, [0.3, 0.12, 0.12], 0.03),
  };
  const light = { x: ox + rng.uniform(-0.1, 0.1) * w, y: oy + rng.uniform(-0.1, 0.1) * h, sigma: rng.uniform(0.5, 0.7) * w, floor: rng.uniform(0.45, 0.6) };
  const highlights: Highlight[] = [];
  const spotOn = (b: Blob, n: number, size: number): void => {
    for (let i = 0; i < n; i++) {
      const a = rng.uniform(0, 2 * Math.PI);
      const d = Math.sqrt(rng.next()) * 0.6;
      highlights.push({ x: b.cx + Math.cos(a) * d * b.rx, y: b.cy + Math.sin(a) * d * b.ry - 0.2 * b.ry, sx: size * rng.uniform(0.6, 1.6) * h / 128, sy: size * rng.uniform(0.6, 1.6) * h / 128, strength: rng.uniform(0.5, 0.9) });
    }
  };
  spotOn(tongue, rng.int(2, 5), 1.8);
  if (uvula) spotOn(uvula, rng.int(1, 2), 1.2);
  for (const t of tonsils) spotOn(t, rng.int(0, 2), 1.2);
  spotOn(opening, rng.int(0, 2), 1.0);
  return { opening, mouth, tonsils, uvula, tongue, colors, light, highlights, noiseSeed: Math.floor(rng.next() * 2 ** 31) };
}

interface Field {
  /** soft coverage 0..1 (1 px edge) */
  alpha: Tensor;
  /** pixel centre inside the shape */
  inside: Tensor;
  /** 0 at the rim .. 1 at the centre: for shading */
  depth: Tensor;
}

/** Coverage, inside test and depth of a blob over (1, 1, H, W) grids. */
function blobField(b: Blob, ys: Tensor, xs: Tensor): Field {
  const c = Math.cos(b.angle);
  const s = Math.sin(b.angle);
  const dx = xs.sub(b.cx);
  const dy = ys.sub(b.cy);
  const xr = dx.mul(c).add(dy.mul(s));
  const yr = dx.mul(-s).add(dy.mul(c));
  let rx: Tensor | number = b.rx;
  if (b.taper) rx = yr.div(b.ry).add(1).div(2).clamp(0, 1).mul(b.taper).add(1 - b.taper).mul(b.rx);
  const nx = xr.div(rx);
  const ny = yr.div(b.ry);
  const rho = nx.square().add(ny.square()).sqrt();
  const theta = atan2(ny, nx);
  let r = full([1], 1);
  b.harmonics.forEach(([a, ph], i) => {
    r = r.add(cos(theta.mul(i + 2).add(ph)).mul(a));
  });
  const signed = r.sub(rho).mul(Math.min(b.rx, b.ry)); // about pixels from the rim
  return { alpha: sigmoid(signed.div(0.6)), inside: signed.gt(0), depth: r.sub(rho).div(r).clamp(0, 1) };
}

/** Renders a scene: image (1, 3, H, W) float 0..1 and mask (H, W) uint8. */
export function renderScene(p: SceneParams, h: number, w: number): { image: Tensor; mask: Tensor } {
  return tidy(() => {
    const { ys, xs } = grids(h, w);
    const col = (c: Rgb): Tensor => tensor(c, [1, 3, 1, 1]);
    const lo = smoothNoise(1, 1, h, w, 4);
    const mid = smoothNoise(1, 1, h, w, 12);
    const hi = smoothNoise(1, 1, h, w, Math.max(16, h / 3));
    const fine = smoothNoise(1, 1, h, w, Math.max(24, h / 2));
    // mucosa texture: multiplicative, per layer a different mix
    const tex = (a: number, b: number, c: number): Tensor => lo.mul(a).add(mid.mul(b)).add(hi.mul(c)).add(1);
    const shade = (f: Field, k: number): Tensor => f.depth.sqrt().mul(k).add(1 - k);

    const mouth = blobField(p.mouth, ys, xs);
    let img = col(p.colors.lips).mul(tex(0.1, 0.05, 0.02));
    img = img.mul(mouth.alpha.neg().add(1)).add(col(p.colors.other).mul(tex(0.08, 0.05, 0.03)).mul(shade(mouth, 0.35)).mul(mouth.alpha));
    let mask = zeros([1, 1, h, w], { dtype: 'uint8' });
    const paint = (f: Field, color: Tensor, cls: number): void => {
      img = img.mul(f.alpha.neg().add(1)).add(color.mul(f.alpha));
      mask = where(f.inside, cls, mask).to('uint8');
    };
    const opening = blobField(p.opening, ys, xs);
    // back wall: deeper, darker towards the top, with vessel-like streaks
    const streaks = smoothNoise(1, 1, h, w, Math.max(8, h / 6)).abs().neg().add(1).clamp(0, 1).pow(6).mul(-0.25).add(1);
    const deep = ys.sub(p.opening.cy).div(p.opening.ry).clamp(-1, 1).mul(0.15).add(0.85);
    paint(opening, col(p.colors.backWall).mul(tex(0.1, 0.08, 0.04)).mul(streaks).mul(deep).mul(shade(opening, 0.3)), 4);
    for (const t of p.tonsils) {
      const f = blobField(t, ys, xs);
      const crypts = fine.gt(1.1).to('float32').mul(-0.3).add(1);
      paint(f, col(p.colors.tonsil).mul(tex(0.06, 0.1, 0.06)).mul(crypts).mul(shade(f, 0.45)), 1);
    }
    if (p.uvula) {
      const f = blobField(p.uvula, ys, xs);
      paint(f, col(p.colors.uvula).mul(tex(0.04, 0.04, 0.03)).mul(shade(f, 0.5)), 2);
    }
    const tongue = blobField(p.tongue, ys, xs);
    // papillae (fine speckle) and a median groove
    const groove = xs.sub(p.tongue.cx).div(p.tongue.rx * 0.08).square().neg().exp().mul(-0.18).add(1);
    paint(tongue, col(p.colors.tongue).mul(tex(0.05, 0.05, 0.05).add(fine.mul(0.05))).mul(groove).mul(shade(tongue, 0.4)), 3);
    // lighting falloff from the light's centre, then wet specular highlights
    const d2 = xs.sub(p.light.x).square().add(ys.sub(p.light.y).square()).div(2 * p.light.sigma ** 2);
    img = img.mul(d2.neg().exp().mul(1 - p.light.floor).add(p.light.floor));
    if (p.highlights.length > 0) {
      const spots = p.highlights.map((s) => xs.sub(s.x).div(s.sx).square().add(ys.sub(s.y).div(s.sy).square()).mul(-0.5).exp().mul(s.strength));
      let spec = spots[0];
      for (const s of spots.slice(1)) spec = spec.add(s);
      img = img.add(spec.clamp(0, 1).mul(img.neg().add(1)).mul(0.95));
    }
    return { image: img.clamp(0, 1).contiguous(), mask: mask.reshape([h, w]).contiguous() };
  });
}
