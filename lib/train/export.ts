/**
 * Model state files out of checkpoints (`npm run export`), and the rule every command that writes
 * a file follows: its --out is never one of its inputs, nor any run's checkpoint (real paths
 * compared, links followed).
 */
import * as fs from 'fs';
import * as path from 'path';
import { architectureOf, MODEL_STATE_FORMAT } from '../model/index';
import { PATHS } from '../config';
import { writeSafetensors } from '../formats/index';
import { CHECKPOINT_KINDS, readCheckpoint, type CheckpointMeta } from './checkpoint';

/** The real path of `file`; for one that does not exist yet, its nearest existing folder's real path + the rest. */
function realPathOf(file: string): string {
  const abs = path.resolve(file);
  try {
    return fs.realpathSync(abs);
  } catch {
    const parent = path.dirname(abs);
    return parent === abs ? abs : path.join(realPathOf(parent), path.basename(abs));
  }
}

/** True when both exist and are the same file (a hard link counts). */
function sameInode(a: string, b: string): boolean {
  try {
    const [x, y] = [fs.statSync(a), fs.statSync(b)];
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

/**
 * Why writing to `out` would destroy something, or undefined when it is safe: `out` is (through
 * links too) one of `inputs`, or any run's best/last checkpoint under one of `runsDirs`
 * (default results/runs). A command's --out must never cost a checkpoint.
 */
export function protectedOutputProblem(
  out: string,
  opts: { inputs?: string[]; runsDirs?: string[] } = {},
): string | undefined {
  const real = realPathOf(out);
  for (const input of opts.inputs ?? []) {
    if (real === realPathOf(input) || sameInode(out, input)) return `it is the input file ${input}`;
  }
  for (const runsDir of opts.runsDirs ?? [PATHS.runs]) {
    const parts = path.relative(realPathOf(runsDir), real).split(path.sep);
    const kind = CHECKPOINT_KINDS.find((k) => parts[1] === `${k}.safetensors`);
    if (parts.length === 2 && parts[0] !== '..' && kind)
      return `the ${kind} checkpoint of run '${parts[0]}' in ${runsDir}`;
  }
  return undefined;
}

/** Throws, saying what and what to do, when `out` may not be written (protectedOutputProblem). */
export function assertWritableOutput(out: string, opts: { inputs?: string[]; runsDirs?: string[] } = {}): void {
  const problem = protectedOutputProblem(out, opts);
  if (problem)
    throw new Error(
      `refusing to write ${out}: ${problem}, which would be overwritten. Choose another --out; nothing was written.`,
    );
}

/**
 * Writes the model state of a checkpoint (no optimizer moments) as a model state file
 * (lib/model/weights' format: PyTorch names, metadata variant and norm), for predict and PyTorch.
 * Refuses an `outFile` that is the checkpoint itself or any run's checkpoint (assertWritableOutput).
 */
export function exportModelState(
  checkpointFile: string,
  outFile: string,
  opts: { runsDirs?: string[] } = {},
): CheckpointMeta {
  if (!outFile.endsWith('.safetensors')) throw new Error(`the exported file must end in .safetensors; got ${outFile}`);
  assertWritableOutput(outFile, { inputs: [checkpointFile], runsDirs: opts.runsDirs });
  const { meta, model } = readCheckpoint(checkpointFile);
  writeSafetensors(outFile, model, {
    format: MODEL_STATE_FORMAT,
    variant: meta.variant,
    norm: String(meta.config.norm),
    run: String(meta.config.run),
    epoch: String(meta.epoch),
    accuracy: String(meta.accuracy),
    selectBy: String(meta.config.selectBy ?? 'test'),
    architecture: JSON.stringify(architectureOf(meta.config)),
    source: path.basename(checkpointFile),
    backend: meta.backend,
  });
  return meta;
}
