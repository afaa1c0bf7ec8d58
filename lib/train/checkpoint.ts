/**
 * A training checkpoint is ONE safetensors file, readable by Python's safetensors as it is:
 *
 *   <PyTorch state names>             the model's whole state (lib/model stateDict: parameters,
 *                                     BatchNorm statistics, num_batches_tracked as I64)
 *   adam.<param>.exp_avg              Adam's moments for every trainable parameter, in the
 *   adam.<param>.exp_avg_sq           parameter's PyTorch layout
 *   __metadata__                      format, kind (best | last), variant, norm, epoch, step,
 *                                     accuracy, bestAccuracy, bestEpoch, session, config (JSON),
 *                                     backend, savedAt, file_sha256
 *
 * Format `dcf-checkpoint/2`: `file_sha256` is the SHA-256 of the WHOLE file, header and metadata
 * included, computed with its own 64 digits written as '0's (lib/formats/safetensors says how,
 * with the Python one-liner). Editing any byte, the stored epoch as much as a weight, makes the
 * file refuse to load. The earlier `dcf-checkpoint/1` (a checksum over the tensors only) is no
 * longer read: the error says how to convert such a run or start it over.
 *
 * A run keeps two: results/runs/<run>/best.safetensors (highest selection accuracy so far) and
 * last.safetensors (the latest finished epoch, for crash recovery). Files are written to a
 * temporary name, fsynced and renamed, so a crash mid-write leaves the previous file intact.
 * Every read verifies the checksum (readCheckpointMeta too: the whole file is small), then the
 * format, variant, every key and shape, before it changes anything, and says what to do when it
 * refuses.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import type { Adam } from './adam';
import { architectureMismatch, architectureOf, checkState, isCounter } from '../model/index';
import type { NamedTensors, Net } from '../model/index';
import { VARIANTS, type Variant } from '../config';
import { DamagedFileError, readSafetensors, recordToTensor, tensorsToRecords } from '../formats/index';
import { writeSafetensors } from '../formats/index';
import type { TensorRecord } from '../formats/index';

/** The format written and read: a whole-file checksum. */
export const CHECKPOINT_FORMAT = 'dcf-checkpoint/2';
/** The last commit that reads `dcf-checkpoint/1` (and resumes such a run, writing /2 from then on). */
const V1_READER = '5af09a2';
export const ADAM_PREFIX = 'adam.';

export type CheckpointKind = 'best' | 'last';
export const CHECKPOINT_KINDS: readonly CheckpointKind[] = ['best', 'last'];

/** What a checkpoint says about itself (its safetensors metadata, parsed). */
export interface CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  kind: CheckpointKind;
  variant: Variant;
  /** Epochs finished when it was saved (1-based; the next epoch to train is epoch + 1). */
  epoch: number;
  /** Optimizer steps taken (Adam's step count). */
  step: number;
  /** Selection accuracy (test, or val when configured) of this epoch, in [0, 1]. */
  accuracy: number;
  /** Best selection accuracy up to and including this epoch, and the epoch it came from. */
  bestAccuracy: number;
  bestEpoch: number;
  /** The training session that saved it (lib/train/metrics). */
  session: number;
  /** The run's training configuration (lib/train's TrainConfig), as saved. */
  config: Record<string, unknown>;
  /** describeBackend() of the saving process. */
  backend: string;
  /** ISO time of saving. */
  savedAt: string;
}

export function checkpointPath(runDir: string, kind: CheckpointKind): string {
  return path.join(runDir, `${kind}.safetensors`);
}

/**
 * Saves model and optimizer state atomically to `file`. The moments are converted to PyTorch
 * layout (net.toTorchLayout), so the file means the same to torch.optim.Adam.
 */
export function saveCheckpoint(
  file: string,
  net: Net,
  adam: Adam,
  meta: Omit<CheckpointMeta, 'format' | 'variant' | 'step' | 'savedAt'>,
): void {
  const tensors: NamedTensors = net.stateDict();
  const state = adam.state();
  try {
    for (const [key, moment] of Object.entries(state.tensors)) {
      const param = key.replace(/\.exp_avg(_sq)?$/, '');
      tensors[`${ADAM_PREFIX}${key}`] = net.toTorchLayout(param, moment);
    }
    const records = tensorsToRecords(tensors, isCounter);
    const metadata: Record<string, string> = {
      format: CHECKPOINT_FORMAT,
      kind: meta.kind,
      variant: net.variant,
      norm: String(meta.config.norm ?? ''),
      epoch: String(meta.epoch),
      step: String(state.step),
      accuracy: String(meta.accuracy),
      bestAccuracy: String(meta.bestAccuracy),
      bestEpoch: String(meta.bestEpoch),
      session: String(meta.session),
      config: JSON.stringify(meta.config),
      backend: meta.backend,
      savedAt: new Date().toISOString(),
    };
    writeSafetensors(file, records, metadata); // adds the whole-file checksum
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

function parseMeta(file: string, metadata: Record<string, string>): CheckpointMeta {
  if (metadata.format === 'dcf-checkpoint/1') {
    throw new Error(
      `${file} is a dcf-checkpoint/1 file, a format of earlier versions that is no longer read. To convert the run, ` +
        `resume it once with commit ${V1_READER} (git worktree add ../dcf-v1 ${V1_READER}; there: ` +
        'npm run train -- --run NAME --runs-dir DIR --resume last), which writes dcf-checkpoint/2; ' +
        'or start it over with --fresh.',
    );
  }
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw new Error(
      `${file} is not a training checkpoint of this project (format '${metadata.format ?? 'none'}', expected '${CHECKPOINT_FORMAT}'). ` +
        'Model state files (npm run export) are for predict, not for resuming training.',
    );
  }
  const num = (key: string): number => {
    const v = Number(metadata[key]);
    if (metadata[key] === undefined || !Number.isFinite(v)) throw damaged(file, `metadata '${key}' is '${metadata[key]}'`);
    return v;
  };
  if (!(VARIANTS as readonly string[]).includes(metadata.variant)) throw damaged(file, `metadata variant '${metadata.variant}'`);
  if (!(CHECKPOINT_KINDS as readonly string[]).includes(metadata.kind)) throw damaged(file, `metadata kind '${metadata.kind}'`);
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(metadata.config);
  } catch {
    throw damaged(file, 'its config metadata is not JSON');
  }
  return {
    format: CHECKPOINT_FORMAT,
    kind: metadata.kind as CheckpointKind,
    variant: metadata.variant as Variant,
    epoch: num('epoch'),
    step: num('step'),
    accuracy: num('accuracy'),
    bestAccuracy: num('bestAccuracy'),
    bestEpoch: num('bestEpoch'),
    session: num('session'),
    config,
    backend: metadata.backend ?? 'unknown',
    savedAt: metadata.savedAt ?? '',
  };
}

/**
 * Only the metadata, verified like readCheckpoint (the checksum covers the metadata, and a
 * checkpoint is a few MB): an edited or damaged file is refused here too.
 */
export function readCheckpointMeta(file: string): CheckpointMeta {
  return readCheckpoint(file).meta;
}

export interface CheckpointContent {
  meta: CheckpointMeta;
  /** The model state, PyTorch names and layouts. */
  model: Record<string, TensorRecord>;
  /** Adam's moments keyed `<param>.exp_avg` / `<param>.exp_avg_sq`, PyTorch layouts. */
  adam: Record<string, TensorRecord>;
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
  const model: Record<string, TensorRecord> = {};
  const adam: Record<string, TensorRecord> = {};
  for (const [k, r] of Object.entries(content.tensors)) {
    if (k.startsWith(ADAM_PREFIX)) adam[k.slice(ADAM_PREFIX.length)] = r;
    else model[k] = r;
  }
  return { meta, model, adam };
}

/**
 * Writes checkpoint `from` again as `to`, of `kind` (its tensors and the rest of its metadata
 * unchanged): a run store's repair when a crash or a hand edit left one of the two behind.
 */
export function copyCheckpoint(from: string, to: string, kind: CheckpointKind): void {
  readCheckpoint(from); // verified
  const { tensors, metadata } = readSafetensors(from);
  writeSafetensors(to, tensors, { ...metadata, kind });
}

/**
 * Restores a checkpoint into a fresh `net` and `adam`. Refuses (clear error, nothing assigned)
 * another variant, another set of trainable parameters (e.g. another --freeze), any missing,
 * extra or misshapen tensor.
 */
export function restoreCheckpoint(content: CheckpointContent, file: string, net: Net, adam: Adam): void {
  const { meta } = content;
  if (meta.variant !== net.variant) {
    throw new Error(
      `checkpoint ${file} holds a ${meta.variant} net, but this run trains the ${net.variant} net. ` +
        `Use --variant ${meta.variant}, another --run name, or --fresh to start this run over.`,
    );
  }
  // The architecture options (filter norm, /√64, upsampling) leave the state's shapes alone:
  // the config saved with the checkpoint says which net it is (no fields: the lab's net).
  const otherNet = architectureMismatch(architectureOf(meta.config), net, `checkpoint ${file}`);
  if (otherNet) throw new Error(`${otherNet}. Use the run's own settings, another --run name, or --fresh. Nothing was changed.`);
  const problems = checkState(content.model, net.variant, net.architecture);
  if (problems.length) {
    throw new Error(`checkpoint ${file} does not fit the ${net.variant} net:\n  ${problems.join('\n  ')}\nNothing was changed.`);
  }
  const torchShapes = new Map(net.describe().map((p) => [p.name, p.shape]));
  const moments: Record<string, tf.Tensor> = {};
  const model: NamedTensors = {};
  try {
    for (const name of adam.names) {
      for (const suffix of ['exp_avg', 'exp_avg_sq']) {
        const key = `${name}.${suffix}`;
        const r = content.adam[key];
        if (!r) {
          throw new Error(
            `checkpoint ${file} has no optimizer state 'adam.${key}': it was saved with other trainable parameters ` +
              `(config freeze '${String(meta.config.freeze)}', this run '${net.freeze}'). Nothing was changed.`,
          );
        }
        const want = torchShapes.get(name)!;
        if (r.shape.join(',') !== want.join(',')) {
          throw new Error(`checkpoint ${file}: 'adam.${key}' has shape [${r.shape}], expected [${want}]. Nothing was changed.`);
        }
        moments[key] = tf.tidy(() => net.fromTorchLayout(name, recordToTensor(r, key)));
      }
    }
    const extra = Object.keys(content.adam).filter((k) => !(k in moments));
    if (extra.length) {
      throw new Error(
        `checkpoint ${file} has optimizer state for parameters this run does not train (adam.${extra[0]} …): ` +
          `it was saved with freeze '${String(meta.config.freeze)}', this run uses '${net.freeze}'. Nothing was changed.`,
      );
    }
    for (const [k, r] of Object.entries(content.model)) model[k] = recordToTensor(r, k);
    adam.loadState({ step: meta.step, tensors: moments });
    net.loadStateDict(model);
  } finally {
    tf.dispose([...Object.values(moments), ...Object.values(model)]);
  }
}
