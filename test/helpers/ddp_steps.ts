/**
 * A few training steps of the trainer's own step (trainStep: CQG views, losses, backward,
 * optimizer), run as a script, for test/train/distributed.test.ts:
 *   node dist/test/helpers/ddp_steps.js DATA OUT BATCH STEPS
 * env: MODE (cqg, default; baseline; aug), DTYPE=float64 (the model in float64), LR (SGD's,
 * default 0.05), SIZE (default 64), THREADS (default 1), DDP_ONE=PORT (the data-parallel
 * path in a world of one process).
 * Without torchrun's variables: one process, the whole batch. With them (WORLD_SIZE > 1):
 * a data-parallel worker as the trainer makes one (rank 0's weights broadcast,
 * SyncBatchNorm, c10d's gradient reducer, this process's shard of each batch, global-sum
 * losses). SGD (plain, lr 0.05), so that the weights are a linear function of the
 * gradients: Adam's first steps are nearly sign(g) per element, which turns float rounding
 * of a gradient near zero into a 2 lr difference of its weight. Rank 0 (or the single
 * process) writes OUT.json (the loss of every step) and OUT.safetensors (the weights).
 */
import * as fs from 'node:fs';
import { CqgPair, AugmentAll } from '../../src/augment';
import { Loader, openDataset } from '../../src/data';
import { Unet } from '../../src/models';
import { convertSyncBatchNorm, saveStateDict, SGD } from '../../src/nn';
import * as T from '../../src/tensor';
import { resolveConfig } from '../../src/train/config';
import { workerFromEnv } from '../../src/train/distributed';
import { StepContext, trainStep } from '../../src/train/trainer';
import { stream } from '../../src/util/random';

const SIZE = Number(process.env.SIZE ?? 64);
const MODE = (process.env.MODE ?? 'cqg') as 'cqg' | 'baseline' | 'aug';

async function main(): Promise<void> {
  const [data, out, batch, steps] = process.argv.slice(2);
  // DDP_ONE=PORT: the data-parallel code path in a world of one (the test's control for float rounding)
  const one = process.env.DDP_ONE ? { rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1, masterAddr: '127.0.0.1', masterPort: Number(process.env.DDP_ONE) } : null;
  const worker = workerFromEnv() ?? one;
  T.setNumThreads(Number(process.env.THREADS ?? 1));
  if (worker) T.initProcessGroup({ rank: worker.rank, worldSize: worker.worldSize, masterAddr: worker.masterAddr, masterPort: worker.masterPort, timeoutMs: 60_000 });
  const cfg = resolveConfig({ data, out, encoder: 'resnet18', size: [SIZE, SIZE], mode: MODE, seed: 0 });
  T.manualSeed(0);
  const model = new Unet({ encoderName: 'resnet18', classes: 2, decoderChannels: [16, 16, 8, 8, 8] });
  if (process.env.DTYPE === 'float64') model.to('float64');
  model.train();
  let reducer: T.GradientReducer | undefined;
  if (worker) {
    T.broadcast([...model.stateDict().values()], 0);
    convertSyncBatchNorm(model);
    reducer = new T.GradientReducer(model.parameters(), { bucketMb: 1 }); // several buckets
  }
  const opt = new SGD(model.parameters(), { lr: Number(process.env.LR ?? 0.05) });
  const shard = worker ? { rank: worker.rank, world: worker.worldSize } : undefined;
  const loader = new Loader(openDataset(data, {}), { batchSize: Number(batch), size: [SIZE, SIZE], seed: 0, shard });
  const ctx: StepContext = {
    augAll: new AugmentAll(), pair: new CqgPair(), rng: stream(0, 'augment', 0, 0), diffScale: 1,
    dist: worker ? { sum: T.globalSum, reducer: reducer!, buffers: [] } : undefined,
  };
  const losses: number[] = [];
  for (let epoch = 0; losses.length < Number(steps); epoch++) {
    let k = 0;
    for await (const b of loader.epoch(epoch)) {
      if (losses.length < Number(steps)) losses.push(trainStep(model, opt, b, cfg, { ...ctx, rng: stream(0, 'augment', epoch, k) }).loss);
      T.dispose(b);
      k++;
    }
  }
  if (!worker || worker.rank === 0) {
    fs.writeFileSync(`${out}.json`, JSON.stringify({ losses }));
    saveStateDict(model, `${out}.safetensors`);
  }
  reducer?.dispose();
  T.dispose(model);
  if (worker) T.destroyProcessGroup();
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
