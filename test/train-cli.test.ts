// npm run train's flags (lib/train/train-cli): numeric ranges named per flag (issue #14: `--epochs -1`
// was called "ambiguous"), the freeze choices, and --weights (issue #13).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { joinDashValues, parseWeightsFlag, PRETRAINED_FILES, PROJECT_ROOT, readEnv, setEnv } from '../lib/config';
import { parseTrainArgs, resolveTrainConfig, TRAIN_USAGE, UsageError } from '../lib/train/train-cli';
import { FREEZES, trainConfig, validateConfig } from '../lib/train/train-config';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-train-cli-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The flags given, for a command line that must parse. */
function given(...argv: string[]) {
  const args = parseTrainArgs(['--run', 'r', ...argv]);
  if (args.help) throw new Error('unexpected --help');
  return args.given;
}

/** The usage error a command line gives. */
function refusal(...argv: string[]): string {
  try {
    parseTrainArgs(['--run', 'r', ...argv]);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`${argv.join(' ')} was accepted`);
}

describe('numeric flags', () => {
  it('a negative or out-of-range value is refused with the flag and its range, not as "ambiguous"', () => {
    expect(refusal('--epochs', '-1')).toBe("--epochs must be a whole number ≥ 1; got '-1'");
    expect(refusal('--epochs', '0')).toBe("--epochs must be a whole number ≥ 1; got '0'");
    expect(refusal('--batch-size', '1')).toBe("--batch-size must be a whole number ≥ 2; got '1'");
    expect(refusal('--lr', '-0.001')).toBe("--lr must be a number > 0; got '-0.001'");
    expect(refusal('--lr', '0')).toBe("--lr must be a number > 0; got '0'");
    expect(refusal('--seed', '-3')).toBe("--seed must be a whole number in [0, 4294967295]; got '-3'");
    expect(refusal('--limit-train', '-5')).toBe("--limit-train must be a whole number ≥ 0; got '-5'");
    expect(refusal('--limit-test', '-1')).toBe("--limit-test must be a whole number ≥ 0; got '-1'");
    expect(refusal('--val', '-10')).toBe("--val must be a whole number ≥ 0; got '-10'");
    expect(refusal('--label-smoothing', '1')).toBe("--label-smoothing must be a number in [0, 1); got '1'");
    expect(refusal('--label-smoothing', '-.1')).toBe("--label-smoothing must be a number in [0, 1); got '-.1'");
    expect(refusal('--weight-decay', '-1e-4')).toBe("--weight-decay must be a number ≥ 0; got '-1e-4'");
    expect(refusal('--upsample', '9')).toMatch(/^--upsample must be a whole number in \[1, \d\]; got '9'$/);
    expect(refusal('--log-every', '0')).toBe("--log-every must be a whole number ≥ 1; got '0'");
    expect(refusal('--eval-batch-size', '-500')).toBe("--eval-batch-size must be a whole number ≥ 1; got '-500'");
    // The --flag=value form says the same.
    expect(refusal('--epochs=-1')).toBe("--epochs must be a whole number ≥ 1; got '-1'");
    // Not a number at all, or not whole.
    expect(refusal('--epochs', '2.5')).toBe("--epochs needs a whole number; got '2.5'");
    expect(refusal('--lr', 'fast')).toBe("--lr needs a number; got 'fast'");
  });

  it('values in range parse, negative-looking tokens only join numeric flags', () => {
    expect(
      given('--epochs', '3', '--lr', '2e-3', '--label-smoothing', '0.1', '--weight-decay', '0', '--seed', '0'),
    ).toEqual({
      epochs: 3,
      lr: 2e-3,
      labelSmoothing: 0.1,
      weightDecay: 0,
      seed: 0,
    });
    expect(joinDashValues(['--epochs', '-1', '--fresh', '--lr', '-.5', '--run', '-x'], ['epochs', 'lr'])).toEqual([
      '--epochs=-1',
      '--fresh',
      '--lr=-.5',
      '--run',
      '-x',
    ]);
    // A flag after a numeric flag with no value is still an error, not swallowed.
    expect(refusal('--epochs', '--fresh')).toMatch(/ambiguous|argument missing/);
  });
});

describe('--seed', () => {
  // The generators take 32 bits: 2³² trained seed 0.
  it('takes 0 … 2³² − 1 and refuses a larger seed', () => {
    expect(given('--seed', String(2 ** 32 - 1))).toEqual({ seed: 4294967295 });
    expect(refusal('--seed', '4294967296')).toBe("--seed must be a whole number in [0, 4294967295]; got '4294967296'");
    const message = /seed must be a whole number in \[0, 4294967295\]; got 4294967296$/;
    expect(() => trainConfig({ run: 'r', seed: 2 ** 32 })).toThrow(message);
  });
});

describe('--precision', () => {
  it('takes fp32, bf16 or auto (the default), as the help says', () => {
    expect(given('--precision', 'bf16')).toEqual({ precision: 'bf16' });
    expect(refusal('--precision', 'fp16')).toBe("--precision must be one of fp32, bf16, auto; got 'fp16'");
    expect(TRAIN_USAGE).toMatch(/--precision fp32\|bf16\|auto +fp32, bf16 mixed precision .*\(default auto\)/s);
    expect(trainConfig({ run: 'r' }).precision).toBe('auto');
  });

  it('reads a config saved before the setting existed as fp32, how it was trained', () => {
    const { precision, ...old } = trainConfig({ run: 'r', precision: 'bf16' });
    expect(precision).toBe('bf16');
    expect(validateConfig(old).precision).toBe('fp32');
  });
});

describe('--freeze', () => {
  it('the help lists every choice, and each one parses', () => {
    const line = TRAIN_USAGE.split('\n').find((l) => l.includes('--freeze'));
    expect(line).toContain(FREEZES.join('|'));
    for (const freeze of FREEZES) expect(given('--freeze', freeze)).toEqual({ freeze });
    expect(FREEZES).toEqual(expect.arrayContaining(['requires-grad', 'stem']));
    expect(refusal('--freeze', 'layer1')).toBe(`--freeze must be one of ${FREEZES.join(', ')}; got 'layer1'`);
  });
});

describe('--runs-dir', () => {
  it('a relative folder is read from where npm was started (INIT_CWD), not the project', () => {
    const before = readEnv().initCwd;
    try {
      setEnv({ initCwd: dir });
      const args = parseTrainArgs(['--run', 'r', '--runs-dir', 'elsewhere']);
      expect(args).toMatchObject({ runsDir: path.join(dir, 'elsewhere') });
    } finally {
      setEnv({ initCwd: before });
    }
  });
});

describe('--weights', () => {
  it('takes the names of the in-repo files, documented in the help', () => {
    expect(given('--weights', 'torchvision')).toEqual({ weights: 'torchvision' });
    expect(given('--weights', 'folded')).toEqual({ weights: 'folded' });
    expect(TRAIN_USAGE).toContain(`--weights ${Object.keys(PRETRAINED_FILES).join('|')}|FILE`);
    const config = resolveTrainConfig({ run: 'w', given: given('--weights', 'folded'), fresh: false, runsDir: dir });
    expect(config.weights).toBe('folded');
  });

  it('takes a .safetensors or .pth path from where npm was started, kept relative to the project when inside it', () => {
    const outside = path.join(dir, 'my-backbone.pth');
    fs.copyFileSync(path.join(PROJECT_ROOT, 'test', 'fixtures', 'resnet18-stem-layer1-unfolded.pth'), outside);
    expect(parseWeightsFlag('my-backbone.pth', dir)).toBe(outside);
    expect(
      parseWeightsFlag(path.join('fixtures', 'resnet18-stem-layer1-unfolded.pth'), path.join(PROJECT_ROOT, 'test')),
    ).toBe(path.join('test', 'fixtures', 'resnet18-stem-layer1-unfolded.pth'));
    expect(given('--weights', outside)).toEqual({ weights: outside });
  });

  it('refuses a missing file, another kind of file, and --no-pretrained with it', () => {
    expect(refusal('--weights', path.join(dir, 'nope.safetensors'))).toMatch(
      /^--weights .*nope\.safetensors: no such file/,
    );
    expect(refusal('--weights', 'imagenet')).toBe(
      "--weights must be torchvision, folded or a .safetensors / .pth file; got 'imagenet'",
    );
    expect(refusal('--weights', 'folded', '--no-pretrained')).toMatch(/cannot be combined with --no-pretrained/);
  });
});
