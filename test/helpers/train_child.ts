/**
 * A training run in a process of its own, for the determinism test: trains with the
 * settings in argv[2] (JSON: a partial TrainConfig) and prints one JSON line with the
 * per-step loss terms. Run as `node dist/test/helpers/train_child.js '{...}'`.
 */
import { resolveConfig } from '../../src/train/config';
import { train } from '../../src/train/trainer';

async function run(): Promise<void> {
  const steps: Record<string, number>[] = [];
  await train(resolveConfig(JSON.parse(process.argv[2]) as Parameters<typeof resolveConfig>[0]), {
    progress: false,
    onStep: (_, terms) => steps.push(terms),
  });
  process.stdout.write(`${JSON.stringify({ steps })}\n`);
}

run().catch((err: unknown) => {
  process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
  process.exit(1);
});
