/**
 * A tiny folder dataset made at test time: N images of a bright disc (class 1) on a
 * dark textured background (class 0), PNG masks of class indices, binary classes.json.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeImage } from '../../src/data';
import * as T from '../../src/tensor';

export async function makeDiscDataset(n: number, size: [number, number], seed = 1): Promise<string> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cqseg-discs-'));
  fs.mkdirSync(path.join(root, 'images'));
  fs.mkdirSync(path.join(root, 'masks'));
  fs.writeFileSync(path.join(root, 'classes.json'), JSON.stringify({ classes: [{ name: 'background' }, { name: 'disc' }] }));
  T.manualSeed(seed);
  const [h, w] = size;
  for (let i = 0; i < n; i++) {
    const { img, mask } = T.tidy(() => {
      const ys = T.arange(h).reshape([h, 1]);
      const xs = T.arange(w).reshape([1, w]);
      const cy = h * (0.35 + 0.3 * ((i * 37) % 10) / 10);
      const cx = w * (0.35 + 0.3 * ((i * 53) % 10) / 10);
      const r = Math.min(h, w) * (0.18 + 0.04 * (i % 3));
      const inside = ys.sub(cy).square().add(xs.sub(cx).square()).lt(r * r);
      const noise = T.rand([h, w, 3]).mul(40);
      const fg = T.tensor([200, 60, 50], [1, 1, 3]);
      const bg = T.tensor([40, 30, 35], [1, 1, 3]);
      const img = T.where(inside.unsqueeze(2), fg, bg).add(noise).clamp(0, 255).to('uint8');
      return { img, mask: inside.to('uint8') };
    });
    const stem = `s${String(i).padStart(3, '0')}`;
    await writeImage(path.join(root, 'images', `${stem}.png`), img);
    const m3 = T.tidy(() => mask.unsqueeze(2).expand([h, w, 3]).contiguous());
    await writeImage(path.join(root, 'masks', `${stem}.png`), m3);
    T.dispose([img, mask, m3]);
  }
  return root;
}
