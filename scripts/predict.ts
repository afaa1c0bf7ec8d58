/**
 * npm run predict -- --weights FILE.safetensors [--variant dynamic|static] [--norm half|imagenet]
 *                    [--limit N] --out FILE.json [--batch-size B]
 *
 * Evaluation-mode logits of the first N official CIFAR-10 test images (default all 10,000)
 * from a model state (`npm run export`) or a training checkpoint. Writes
 * {"labels": [official labels], "logits": [[10 numbers], ...]} to a temporary name, then renames.
 * --variant and --norm may be omitted when the file records them; given, they must agree.
 */
import { parseArgs } from 'util';
import { initBackend } from '../lib/runtime';
import { writeFileAtomic } from '../lib/formats';
import { assertWritableOutput, predict } from '../lib/train';
import { commandLinePath, joinDashValues, NORMALIZATIONS, parseChoice, VARIANTS, type NormName } from '../lib/config';

const USAGE = `usage: npm run predict -- --weights FILE.safetensors --out FILE.json [options]
  --weights FILE     model state (npm run export) or training checkpoint (.safetensors)
  --variant V        dynamic | static (default: what the file records)
  --norm N           half | imagenet (default: what the file records)
  --limit N          the first N official test images (default 10000)
  --out FILE         where to write {"labels": [...], "logits": [[...], ...]}
  --batch-size B     images per forward pass (default 500)`;

function usageError(message: string): never {
  console.error(`npm run predict: ${message}\n${USAGE}`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: joinDashValues(process.argv.slice(2), ['limit', 'batch-size']),
      options: {
        weights: { type: 'string' },
        variant: { type: 'string' },
        norm: { type: 'string' },
        limit: { type: 'string' },
        out: { type: 'string' },
        'batch-size': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    usageError((err as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (!values.weights) usageError('--weights is required');
  if (!values.out) usageError('--out is required');
  // Relative paths from the folder npm was started in, not the project.
  const weights = commandLinePath(values.weights);
  const out = commandLinePath(values.out);
  const whole = (flag: string, text: string | undefined, min: number, max: number) => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max)
      usageError(`${flag} must be a whole number from ${min} to ${max}; got '${text}'`);
    return n;
  };
  let variant, norm;
  try {
    variant = values.variant === undefined ? undefined : parseChoice('--variant', values.variant, VARIANTS);
    norm =
      values.norm === undefined
        ? undefined
        : parseChoice('--norm', values.norm, Object.keys(NORMALIZATIONS) as NormName[]);
  } catch (err) {
    usageError((err as Error).message);
  }
  const limit = whole('--limit', values.limit, 1, 10_000);
  const batchSize = whole('--batch-size', values['batch-size'], 1, 10_000);
  // Before any work: --out must not overwrite the weights or any run's checkpoint.
  try {
    assertWritableOutput(out, { inputs: [weights] });
  } catch (err) {
    usageError((err as Error).message);
  }

  initBackend();
  const started = Date.now();
  const result = await predict({ weights, variant, norm, limit, batchSize });
  if (result.checksum === 'none') {
    console.warn(
      `note: ${weights} carries no checksum (written elsewhere, or exported before checksums), ` +
        'so damage would go unnoticed: re-export it with npm run export',
    );
  }
  writeFileAtomic(out, JSON.stringify({ labels: result.labels, logits: result.logits }) + '\n');
  const correct = result.logits.filter((row, i) => row.indexOf(Math.max(...row)) === result.labels[i]).length;
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    `${result.logits.length} test images, ${result.variant} variant, '${result.norm}' normalisation: ` +
      `accuracy ${((100 * correct) / result.logits.length).toFixed(2)}% → ${out} (${seconds} s)`,
  );
}

main().catch((err: Error) => {
  console.error(`npm run predict: ${err.message}`);
  process.exit(1);
});
