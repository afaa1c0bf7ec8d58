/**
 * Weight files: the pretrained backbone in its three forms, and the whole model's state.
 *
 * Pretrained ResNet-18 stem + layer1 (torchvision names, PyTorch layouts), accepted as
 *  - the folded safetensors (data/pretrained/README.md): `conv*.weight` with
 *    BatchNorm folded in and a `conv*.bias`, no `bn*` tensors. Unfolded by the README's rule:
 *    conv weight ← weight; BatchNorm γ ← 1, β ← bias, running mean ← 0, running var ← 1 − ε,
 *    which computes exactly the pretrained function in evaluation mode;
 *  - an unfolded safetensors file with `conv*.weight` and `bn*.{weight,bias,running_mean,running_var}`;
 *  - torchvision's own `resnet18-f37072fd.pth` (torch.save zip, read by lib/formats/pth).
 * Keys beyond layer1 (layer2…, fc) are ignored; prefixes `module.` and `backbone.` are accepted.
 *
 * Model state files: safetensors with the state under PyTorch names (lib/model) and metadata
 * `format`, `variant`, `norm`, and the whole-file checksum `file_sha256` (lib/formats/safetensors).
 * Training checkpoints (same names plus `adam.*`) read as well. Reading verifies the checksum
 * a file's format promises: `dcf-model-state/2` and `dcf-checkpoint/2` the whole file,
 * `dcf-checkpoint/1` its tensors; `dcf-model-state/1` (exported before checksums) and files from
 * elsewhere carry none and are read as they are (ModelStateFile.checksum says which).
 */
import * as fs from 'fs';
import { BN_EPS, backboneShapes } from './resnet';
import {
  DamagedFileError,
  isZipFile,
  readSafetensors,
  readTorchStateDict,
  tensorDigest,
  type TensorRecord,
  tensorsToRecords,
  writeSafetensors,
} from '../formats/index';
import { NORMALIZATIONS, VARIANTS, type NormName, type Variant } from '../config';
import type * as tf from '@tensorflow/tfjs-core';

export type PretrainedForm = 'folded-safetensors' | 'unfolded-safetensors' | 'torchvision-pth';

export interface BackboneWeights {
  form: PretrainedForm;
  /** conv1.weight, bn1.*, layer1.{0,1}.{conv,bn}{1,2}.* — PyTorch layouts, F32, unfolded. */
  tensors: Record<string, TensorRecord>;
}

const CONVS = ['conv1', 'layer1.0.conv1', 'layer1.0.conv2', 'layer1.1.conv1', 'layer1.1.conv2'];
/** The BatchNorm after each conv, torchvision names. */
const BN_OF: Record<string, string> = {
  conv1: 'bn1',
  'layer1.0.conv1': 'layer1.0.bn1',
  'layer1.0.conv2': 'layer1.0.bn2',
  'layer1.1.conv1': 'layer1.1.bn1',
  'layer1.1.conv2': 'layer1.1.bn2',
};

function shapeText(s: number[]): string {
  return `[${s.join(', ')}]`;
}

/** Removes a `module.` or `backbone.` prefix when the plain torchvision names are absent. */
function stripPrefix(tensors: Record<string, TensorRecord>): Record<string, TensorRecord> {
  if ('conv1.weight' in tensors) return tensors;
  for (const prefix of ['module.', 'backbone.', 'module.backbone.']) {
    if (`${prefix}conv1.weight` in tensors) {
      const out: Record<string, TensorRecord> = {};
      for (const [k, v] of Object.entries(tensors)) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
      return out;
    }
  }
  return tensors;
}

function asF32(r: TensorRecord): Float32Array {
  if (r.dtype === 'F32') return r.data as Float32Array;
  return Float32Array.from(r.data as ArrayLike<number>);
}

/**
 * Reads a pretrained backbone file in any accepted form (detected from content, not the file
 * name) and returns unfolded torchvision tensors. Errors list every missing or mis-shaped key.
 */
export function readPretrainedBackbone(file: string): BackboneWeights {
  if (!fs.existsSync(file)) {
    throw new Error(
      `pretrained weights not found: ${file}\n` +
        'The repo carries data/pretrained/*.safetensors (see data/pretrained/README.md; restore them with git checkout -- data/pretrained); ' +
        "a config's weights field also takes torchvision's resnet18-f37072fd.pth or another file, and pretrained: false starts from random weights.",
    );
  }
  const zip = isZipFile(file);
  const raw = stripPrefix(zip ? readTorchStateDict(file) : readSafetensors(file).tensors);
  const folded = !('bn1.weight' in raw) && 'conv1.bias' in raw;
  const unfolded = 'bn1.weight' in raw || 'bn1.running_var' in raw;
  if (!folded && !unfolded) {
    const some = Object.keys(raw).slice(0, 5).join(', ');
    throw new Error(
      `${file} is not a ResNet-18 backbone: it has neither 'bn1.weight' (unfolded torchvision form) nor ` +
        `'conv1.bias' (BatchNorm folded); its keys start ${some || '(none)'}`,
    );
  }
  const expected = new Map<string, number[]>();
  for (const conv of CONVS) {
    const shape = backboneShapes().get(`${conv}.weight`)!;
    expected.set(`${conv}.weight`, shape);
    if (folded) expected.set(`${conv}.bias`, [shape[0]]);
    else
      for (const s of ['weight', 'bias', 'running_mean', 'running_var'])
        expected.set(`${BN_OF[conv]}.${s}`, [shape[0]]);
  }
  const problems: string[] = [];
  for (const [name, shape] of expected) {
    const r = raw[name];
    if (!r) problems.push(`missing key '${name}' (expected shape ${shapeText(shape)})`);
    else if (r.shape.join() !== shape.join())
      problems.push(`'${name}' has shape ${shapeText(r.shape)}, expected ${shapeText(shape)}`);
    else if (r.dtype !== 'F32') problems.push(`'${name}' has dtype ${r.dtype}, expected a float tensor`);
  }
  const formText = zip
    ? 'torchvision .pth, unfolded (conv + BatchNorm)'
    : folded
      ? 'folded (conv + bias)'
      : 'unfolded (conv + BatchNorm)';
  if (problems.length) {
    throw new Error(
      `${file} (${formText} ResNet-18 weights) cannot be used:\n  ${problems.join('\n  ')}\n` +
        "Use an intact file: the repo's data/pretrained/*.safetensors (git checkout -- data/pretrained), or torchvision's resnet18-f37072fd.pth.",
    );
  }

  const tensors: Record<string, TensorRecord> = {};
  for (const conv of CONVS) {
    const w = raw[`${conv}.weight`];
    tensors[`${conv}.weight`] = { dtype: 'F32', shape: w.shape.slice(), data: asF32(w) };
    const bn = BN_OF[conv];
    const c = w.shape[0];
    const vec = (data: Float32Array): TensorRecord => ({ dtype: 'F32', shape: [c], data });
    if (folded) {
      tensors[`${bn}.weight`] = vec(new Float32Array(c).fill(1));
      tensors[`${bn}.bias`] = vec(Float32Array.from(asF32(raw[`${conv}.bias`])));
      tensors[`${bn}.running_mean`] = vec(new Float32Array(c));
      tensors[`${bn}.running_var`] = vec(new Float32Array(c).fill(1 - BN_EPS));
    } else {
      for (const s of ['weight', 'bias', 'running_mean', 'running_var'])
        tensors[`${bn}.${s}`] = vec(asF32(raw[`${bn}.${s}`]));
    }
  }
  return { form: zip ? 'torchvision-pth' : folded ? 'folded-safetensors' : 'unfolded-safetensors', tensors };
}

// ---- model state files ----------------------------------------------------------------------

/** The `format` metadata of a model state written by this project (/1: before the whole-file checksum). */
export const MODEL_STATE_FORMAT = 'dcf-model-state/2';
/** Formats whose files must carry the whole-file checksum. */
const CHECKSUMMED_FORMATS = [MODEL_STATE_FORMAT, 'dcf-checkpoint/2'];

/** Stores the named state (PyTorch names/layouts) atomically, BatchNorm counters as int64. */
export function writeModelState(
  file: string,
  state: Record<string, tf.Tensor>,
  meta: { variant: Variant; norm: NormName; [key: string]: string },
): void {
  const records = tensorsToRecords(state, (name) => name.endsWith('.num_batches_tracked'));
  writeSafetensors(file, records, { format: MODEL_STATE_FORMAT, ...meta });
}

export interface ModelStateFile {
  /** The model's tensors (optimizer moments `adam.*` of a checkpoint left out). */
  tensors: Record<string, TensorRecord>;
  /** From the metadata, else from the keys (embed.* → dynamic, dc.weight → static). */
  variant: Variant | undefined;
  /** From the metadata (`norm`, or `config.norm` of a training checkpoint), if recorded. */
  norm: NormName | undefined;
  metadata: Record<string, string>;
  /** What was verified: the whole file, the tensors (a dcf-checkpoint/1), or nothing (no checksum). */
  checksum: 'file' | 'tensors' | 'none';
}

/**
 * Reads a model state or training checkpoint, verifying its checksum (see the module comment);
 * throws when the file is damaged or its metadata contradicts its keys.
 */
export function readModelState(file: string): ModelStateFile {
  const { tensors: all, metadata, checksummed } = readSafetensors(file);
  const checksum = verifiedChecksum(file, all, metadata, checksummed);
  const tensors: Record<string, TensorRecord> = {};
  for (const [k, v] of Object.entries(all)) if (!k.startsWith('adam.')) tensors[k] = v;
  const keys = Object.keys(tensors);
  const byKeys: Variant | undefined = keys.includes('embed.weight')
    ? 'dynamic'
    : keys.includes('dc.weight')
      ? 'static'
      : undefined;
  const declared = metadata.variant;
  if (declared !== undefined && !(VARIANTS as readonly string[]).includes(declared)) {
    throw new Error(`${file}: metadata variant '${declared}' is not one of ${VARIANTS.join(', ')}`);
  }
  if (declared && byKeys && declared !== byKeys) {
    throw new Error(`${file}: metadata says variant '${declared}' but its tensors are those of the ${byKeys} head`);
  }
  let norm: string | undefined = metadata.norm;
  if (norm === undefined && metadata.config) {
    try {
      norm = (JSON.parse(metadata.config) as { norm?: string }).norm;
    } catch {
      // a config that is not JSON just records no normalisation
    }
  }
  if (norm === '') norm = undefined; // a checkpoint saved without a recorded normalisation
  if (norm !== undefined && !(norm in NORMALIZATIONS))
    throw new Error(`${file}: metadata norm '${norm}' is not one of ${Object.keys(NORMALIZATIONS).join(', ')}`);
  return {
    tensors,
    variant: (declared as Variant | undefined) ?? byKeys,
    norm: norm as NormName | undefined,
    metadata,
    checksum,
  };
}

/** Which checksum a state file passed; throws when its format promises one it lacks or fails. */
function verifiedChecksum(
  file: string,
  tensors: Record<string, TensorRecord>,
  metadata: Record<string, string>,
  checksummed: boolean,
): ModelStateFile['checksum'] {
  if (checksummed) return 'file'; // readSafetensors verified it
  if (CHECKSUMMED_FORMATS.includes(metadata.format)) {
    throw new DamagedFileError(file, `it says format ${metadata.format} but has no file_sha256 checksum`);
  }
  if (metadata.format === 'dcf-checkpoint/1') {
    if (metadata.sha256 !== tensorDigest(tensors))
      throw new DamagedFileError(file, 'its tensors do not match the sha256 checksum it was saved with');
    return 'tensors';
  }
  return 'none';
}
