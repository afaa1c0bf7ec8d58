/**
 * A training checkpoint: ONE safetensors file that Python's safetensors reads as it is, holding the model's
 * state (lib/model stateDict), Adam's moments as adam.<param>.exp_avg / .exp_avg_sq, both in PyTorch names
 * and layouts, and CheckpointMeta as string metadata. Format dcf-checkpoint/2: `file_sha256` is the SHA-256
 * of the whole file (lib/formats/safetensors says how), so editing any byte, the epoch as much as a weight,
 * makes it refuse to load. Every read verifies it, then the format, variant, keys and shapes, before
 * anything changes.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import type { Adam } from './adam';
import { architectureMismatch, architectureOf, checkState, isCounter } from '../model/index';
import type { NamedTensors, Net } from '../model/index';
import { VARIANTS, type Variant } from '../config';
import { DamagedFileError, readSafetensors, recordToTensor, type TensorRecord } from '../formats/index';
import { tensorsToRecords, writeSafetensors } from '../formats/index';

export const CHECKPOINT_FORMAT = 'dcf-checkpoint/2';
/** The last commit that reads dcf-checkpoint/1 (a checksum over the tensors only). */
const V1_READER = '5af09a2';
const ADAM = 'adam.';
const paramOf = (moment: string) => moment.replace(/\.exp_avg(_sq)?$/, '');

export type CheckpointKind = 'best' | 'last';
export const CHECKPOINT_KINDS: readonly CheckpointKind[] = ['best', 'last'];
/**
 * The numeric metadata, in the order written: epochs finished, Adam's step count, the selection accuracy
 * (test, or val when configured) of this epoch, the best up to it and its epoch, the session that saved it.
 */
const NUMBERS = ['epoch', 'step', 'accuracy', 'bestAccuracy', 'bestEpoch', 'session'] as const;

export interface CheckpointMeta extends Record<(typeof NUMBERS)[number], number> {
  format: typeof CHECKPOINT_FORMAT;
  kind: CheckpointKind;
  variant: Variant;
  /** The run's TrainConfig, as saved. */
  config: Record<string, unknown>;
  /** describeBackend() of the saving process. */
  backend: string;
  savedAt: string;
}

/** Tensors under PyTorch names and layouts; adam's keyed `<param>.exp_avg` / `<param>.exp_avg_sq`. */
export type CheckpointContent = { meta: CheckpointMeta; model: Tensors; adam: Tensors };
type Tensors = Record<string, TensorRecord>;

export const checkpointPath = (dir: string, kind: CheckpointKind): string => path.join(dir, `${kind}.safetensors`);

/** What saveCheckpoint's caller says; the rest comes from the net, Adam and the clock. */
type SaveMeta = Omit<CheckpointMeta, 'format' | 'variant' | 'step' | 'savedAt'>;

/** Saves model and optimizer state atomically; the moments in PyTorch layout, as torch.optim.Adam keeps them. */
export function saveCheckpoint(file: string, net: Net, adam: Adam, meta: SaveMeta): void {
  const tensors: NamedTensors = net.stateDict();
  const state = adam.state();
  try {
    for (const [key, moment] of Object.entries(state.tensors)) {
      tensors[ADAM + key] = net.toTorchLayout(paramOf(key), moment);
    }
    const numbers = { ...meta, step: state.step };
    writeSafetensors(file, tensorsToRecords(tensors, isCounter), {
      format: CHECKPOINT_FORMAT,
      kind: meta.kind,
      variant: net.variant,
      norm: String(meta.config.norm ?? ''),
      ...Object.fromEntries(NUMBERS.map((k) => [k, String(numbers[k])])),
      config: JSON.stringify(meta.config),
      backend: meta.backend,
      savedAt: new Date().toISOString(),
    }); // adds the whole-file checksum
  } finally {
    tf.dispose([...Object.values(tensors), ...Object.values(state.tensors)]);
  }
}

function damaged(file: string, why: string): Error {
  return new Error(
    `checkpoint ${file} is damaged: ${why}. Nothing was changed. ` +
      'Resume from the other checkpoint (--resume best|last) or start the run over with --fresh; ' +
      'to export, pick the other one (--which best|last).',
  );
}

function parseMeta(file: string, m: Record<string, string>): CheckpointMeta {
  if (m.format === 'dcf-checkpoint/1') {
    throw new Error(
      `${file} is a dcf-checkpoint/1 file, a format of earlier versions that is no longer read. To convert the run, ` +
        `resume it once with commit ${V1_READER} (git worktree add ../dcf-v1 ${V1_READER}; there: ` +
        'npm run train -- --run NAME --runs-dir DIR --resume last), which writes dcf-checkpoint/2; ' +
        'or start it over with --fresh.',
    );
  }
  if (m.format !== CHECKPOINT_FORMAT) {
    throw new Error(
      `${file} is not a training checkpoint of this project (format ${m.format ?? 'none'}, ` +
        `not ${CHECKPOINT_FORMAT}): model state files (npm run export) are for predict, not for resuming training.`,
    );
  }
  if (!(VARIANTS as readonly string[]).includes(m.variant)) throw damaged(file, `metadata variant '${m.variant}'`);
  if (!(CHECKPOINT_KINDS as readonly string[]).includes(m.kind)) throw damaged(file, `metadata kind '${m.kind}'`);
  const { kind, variant, backend = 'unknown', savedAt = '' } = m;
  const parsed = { format: CHECKPOINT_FORMAT, kind, variant, backend, savedAt } as CheckpointMeta;
  for (const k of NUMBERS) {
    parsed[k] = Number(m[k]);
    if (m[k] === undefined || !Number.isFinite(parsed[k])) throw damaged(file, `metadata '${k}' is '${m[k]}'`);
  }
  try {
    parsed.config = JSON.parse(m.config);
  } catch {
    throw damaged(file, 'its config metadata is not JSON');
  }
  return parsed;
}

/** Reads and verifies a checkpoint (checksum, format, metadata); no tensors are created. */
export function readCheckpoint(file: string): CheckpointContent {
  if (!fs.existsSync(file)) throw new Error(`no checkpoint at ${file}`);
  let content: ReturnType<typeof readSafetensors>;
  try {
    content = readSafetensors(file); // verifies file_sha256 when the file has one
  } catch (err) {
    throw damaged(file, err instanceof DamagedFileError ? err.problem : (err as Error).message);
  }
  const meta = parseMeta(file, content.metadata);
  if (!content.checksummed) throw damaged(file, `it says format ${meta.format} but has no file_sha256 checksum`);
  const [model, adam]: Tensors[] = [{}, {}];
  for (const [k, r] of Object.entries(content.tensors)) {
    if (k.startsWith(ADAM)) adam[k.slice(ADAM.length)] = r;
    else model[k] = r;
  }
  return { meta, model, adam };
}

/** Verified like readCheckpoint: the checksum covers the metadata, and a checkpoint is a few MB. */
export const readCheckpointMeta = (file: string): CheckpointMeta => readCheckpoint(file).meta;

/** Writes verified checkpoint `from` again as `to`, of `kind`: the run store's repair of a lagging one. */
export function copyCheckpoint(from: string, to: string, kind: CheckpointKind): void {
  readCheckpoint(from);
  const { tensors, metadata } = readSafetensors(from);
  writeSafetensors(to, tensors, { ...metadata, kind });
}

/**
 * Restores a checkpoint into a fresh `net` and `adam`, or refuses with nothing assigned: another
 * variant or architecture, other trainable parameters (another --freeze), a missing, extra or
 * misshapen tensor.
 */
export function restoreCheckpoint(content: CheckpointContent, file: string, net: Net, adam: Adam): void {
  const { meta } = content;
  const refuse = (why: string) => new Error(`checkpoint ${file} ${why}Nothing was changed.`);
  const use = `use --variant ${meta.variant}, another --run name, or --fresh to start this run over`;
  if (meta.variant !== net.variant)
    throw refuse(`holds a ${meta.variant} net, but this run trains the ${net.variant} net: ${use}. `);
  // The architecture options leave the state's shapes alone: the saved config says which net it is.
  const otherNet = architectureMismatch(architectureOf(meta.config), net, `checkpoint ${file}`);
  if (otherNet)
    throw new Error(`${otherNet}. Use the run's own settings, another --run name, or --fresh. Nothing was changed.`);
  const problems = checkState(content.model, net.variant, net.architecture);
  if (problems.length) throw refuse(`does not fit the ${net.variant} net:\n  ${problems.join('\n  ')}\n`);
  const keys = adam.names.flatMap((n) => [`${n}.exp_avg`, `${n}.exp_avg_sq`]);
  const lacks = keys.find((k) => !content.adam[k]);
  const extra = Object.keys(content.adam).find((k) => !keys.includes(k));
  if (lacks || extra) {
    const has = lacks
      ? `no optimizer state 'adam.${lacks}'`
      : `optimizer state for parameters this run does not train (adam.${extra} …)`;
    throw refuse(`has ${has}: it was saved with freeze '${meta.config.freeze}', this run uses '${net.freeze}'. `);
  }
  const shapes = new Map(net.describe().map((p) => [p.name, p.shape]));
  const [moments, model]: NamedTensors[] = [{}, {}];
  try {
    for (const key of keys) {
      const [r, want] = [content.adam[key], shapes.get(paramOf(key))!];
      if (r.shape.join() !== want.join())
        throw refuse(`holds 'adam.${key}' of shape [${r.shape}], expected [${want}]. `);
      moments[key] = tf.tidy(() => net.fromTorchLayout(paramOf(key), recordToTensor(r, key)));
    }
    for (const [k, r] of Object.entries(content.model)) model[k] = recordToTensor(r, k);
    adam.loadState({ step: meta.step, tensors: moments });
    net.loadStateDict(model);
  } finally {
    tf.dispose([...Object.values(moments), ...Object.values(model)]);
  }
}
