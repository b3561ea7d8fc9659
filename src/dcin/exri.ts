/**
 * ExRI, the expert's reference image (Shah et al. 2025, Sec. III): an expert picks one
 * image typical of the training camera, and every test image's Lab statistics are moved
 * to that image's (Reinhard transfer, color/transfer.ts; the prediction runs in
 * dcin/predict.ts, mode 'exri'). Here: the reference's statistics, read as the model sees it.
 */
import * as T from '../tensor';
import { labStats } from '../color';
import { readAtModelSize, Session } from './session';

/** Lab mean and standard deviation (3, 2) of one uint8 (H, W, 3) image. */
export function exriStats(reference: T.Tensor): T.Tensor {
  return T.tidy(() => labStats(reference.permute([2, 0, 1]).unsqueeze(0).contiguous()).select(0, 0));
}

/** Lab statistics (3, 2) of the expert's reference image (ExRI), read at the run's input size, on the session's device. */
export async function exriStatsFor(file: string, s: Session): Promise<T.Tensor> {
  const img = await readAtModelSize(file, s);
  try {
    return T.tidy(() => exriStats(img).to(s.device));
  } finally {
    img.dispose();
  }
}

