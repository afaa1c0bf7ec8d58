/**
 * npm run bench:precision -- --weights FILE.safetensors [--limit N] [--batch-size B]
 *
 * Does bf16 inference (lib/runtime/precision) predict what fp32 predicts? Evaluates a trained model
 * state or checkpoint on the official test set (the first N images; default all 10,000) in fp32 and
 * in bf16 and prints the share of images whose predicted class is the same, both accuracies and
 * losses, and each pass's time. Exit code 1 when fewer than 99% agree (issue #23's bar).
 */
import { parseArgs } from 'util';
import { initBackend, resolvePrecision } from '../lib/runtime';
import { evaluate, loadNetFromStateFile, predictClasses } from '../lib/train';
import { loadCifar10 } from '../lib/data';

const AGREEMENT_BAR = 0.99;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { weights: { type: 'string' }, limit: { type: 'string' }, 'batch-size': { type: 'string' } },
  });
  if (!values.weights) {
    console.error('usage: npm run bench:precision -- --weights FILE.safetensors [--limit N] [--batch-size B]');
    return 2;
  }
  initBackend();
  const { net, norm, variant } = loadNetFromStateFile(values.weights);
  const test = loadCifar10('test', { limit: values.limit ? Number(values.limit) : undefined });
  const batchSize = values['batch-size'] ? Number(values['batch-size']) : 500;
  try {
    const passes = (['fp32', 'bf16'] as const).map((precision) => {
      const t0 = performance.now();
      const classes = predictClasses(net, test, { norm, batchSize, precision });
      return { precision, classes, seconds: (performance.now() - t0) / 1000 };
    });
    const [a, b] = passes;
    let same = 0;
    for (let i = 0; i < test.count; i++) if (a.classes[i] === b.classes[i]) same++;
    const agreement = same / test.count;
    console.log(
      `${values.weights}: ${variant} head, ${test.count} test images; bf16 here: ${resolvePrecision('auto').why}`,
    );
    for (const p of passes) {
      const r = await evaluate(net, test, { norm, batchSize, precision: p.precision });
      console.log(
        `  ${p.precision}: accuracy ${(r.accuracy * 100).toFixed(2)}%, loss ${r.loss.toFixed(4)}, predictions in ${p.seconds.toFixed(1)} s`,
      );
    }
    const verdict = agreement >= AGREEMENT_BAR ? 'meets' : 'MISSES';
    console.log(
      `  same predicted class: ${same} of ${test.count} (${(agreement * 100).toFixed(2)}%; ${verdict} the ${AGREEMENT_BAR * 100}% bar)`,
    );
    return agreement >= AGREEMENT_BAR ? 0 : 1;
  } finally {
    net.dispose();
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`error: ${err.message}`);
    process.exit(1);
  },
);
