/**
 * npm run export -- --run NAME [--which best|last] --out FILE.safetensors
 * Writes a run's checkpoint as a model state file: the PyTorch-named state only, no optimizer
 * moments, loadable by `npm run predict` and by the PyTorch reference module.
 */
import { parseArgs } from 'util';
import { CHECKPOINT_KINDS, type CheckpointKind, exportModelState, RunDir } from '../lib/train';
import { commandLinePath, parseChoice, PATHS } from '../lib/config';

const USAGE = `usage: npm run export -- --run NAME [--which best|last] --out FILE.safetensors [--runs-dir DIR]

  --run NAME          the run under results/runs
  --which best|last   which checkpoint (default best)
  --out FILE          where to write the model state (.safetensors)
  --runs-dir DIR      folder of runs (default results/runs)`;

function main(): number {
  let run: string, out: string, which: CheckpointKind, runsDir: string;
  try {
    const { values: v } = parseArgs({
      args: process.argv.slice(2),
      strict: true,
      allowPositionals: false,
      options: {
        run: { type: 'string' },
        which: { type: 'string' },
        out: { type: 'string' },
        'runs-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (v.help) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (!v.run) throw new Error('--run NAME is required');
    if (!v.out) throw new Error('--out FILE.safetensors is required');
    run = v.run;
    out = commandLinePath(v.out);
    which = parseChoice('--which', v.which ?? 'best', CHECKPOINT_KINDS);
    runsDir = v['runs-dir'] === undefined ? PATHS.runs : commandLinePath(v['runs-dir']);
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  try {
    const file = new RunDir(runsDir, run).checkpoint(which);
    // Never onto a checkpoint: of this run, of any run in --runs-dir, or in results/runs.
    const meta = exportModelState(file, out, { runsDirs: [runsDir, PATHS.runs] });
    process.stdout.write(
      `wrote ${out}: ${meta.variant} net of run ${run}, ${which} checkpoint (epoch ${meta.epoch}, ` +
        `${meta.config.selectBy ?? 'test'} accuracy ${(meta.accuracy * 100).toFixed(2)}%, norm ${meta.config.norm})\n`,
    );
    return 0;
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    return 1;
  }
}

process.exit(main());
