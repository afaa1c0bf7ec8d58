/**
 * A net's state as names and shapes, without tensors: what a state file or checkpoint of a
 * variant and architecture must hold (checkState), which part each tensor belongs to and whether
 * it trains (describeState: parameter counts for tables and reports). Names and layouts are
 * PyTorch's; the backbone's, the adapter's and the head's come from their modules.
 */
import { FEATURE_CHANNELS, type Freeze, type Variant } from '../config';
import { architectureOf, LAB_ARCHITECTURE, type Architecture } from './architecture';
import { Head } from './head';
import { backboneShapes } from './resnet';

export interface ParameterInfo {
  name: string;
  /** 'backbone.conv' | 'backbone.bn' | 'adapter' | 'head.embed' | 'head.gen' | 'head.dc' | 'head.score' */
  part: string;
  shape: number[];
  size: number;
  /** Parameter (learned) or buffer (running statistics, counters). */
  kind: 'parameter' | 'buffer';
  trainable: boolean;
}

/** The PyTorch shape of every key of a variant's state (without num_batches_tracked). */
export function expectedStateShapes(
  variant: Variant,
  architecture: Partial<Architecture> = LAB_ARCHITECTURE,
): Map<string, number[]> {
  const shapes = new Map([...backboneShapes()].map(([name, shape]) => [`backbone.${name}`, shape]));
  const arch = architectureOf(architecture);
  if (arch.adapter) {
    shapes.set('adapter.conv.weight', [FEATURE_CHANNELS, FEATURE_CHANNELS, 3, 3]);
    for (const s of ['weight', 'bias', 'running_mean', 'running_var']) {
      shapes.set(`adapter.bn.${s}`, [FEATURE_CHANNELS]);
    }
  }
  // The head's entries, declared without tensors.
  for (const e of new Head(variant, arch).entries()) shapes.set(e.name, e.param.torchShape);
  return shapes;
}

/** The BatchNorm counters: `backbone.<bn>.num_batches_tracked`, stored as int64 scalars. */
export function isCounter(name: string): boolean {
  return name.endsWith('.num_batches_tracked');
}

/** The part of the net a state key belongs to (ParameterInfo.part); the head's by module (`gen.0.bias`: head.gen). */
export function partOf(name: string): string {
  if (name.startsWith('backbone.')) return /\.conv\d?\.weight$/.test(name) ? 'backbone.conv' : 'backbone.bn';
  if (name.startsWith('adapter.')) return 'adapter';
  return `head.${name.split('.')[0]}`;
}

function isBuffer(name: string): boolean {
  return name.endsWith('.running_mean') || name.endsWith('.running_var');
}

/**
 * Whether the parameter `name` trains under `freeze` (lib/config Freeze): every backbone parameter
 * with 'none'; none with 'requires-grad' or 'all'; BatchNorm's γ/β with 'keep-bn'; all but the
 * stem's (conv1, bn1) with 'stem'. The adapter and the head always train.
 */
export function trainsUnder(name: string, freeze: Freeze): boolean {
  if (isBuffer(name) || isCounter(name)) return false;
  const part = partOf(name);
  if (part !== 'backbone.conv' && part !== 'backbone.bn') return true;
  switch (freeze) {
    case 'none':
      return true;
    case 'keep-bn':
      return part === 'backbone.bn';
    case 'stem':
      return !/^backbone\.(conv1|bn1)\./.test(name);
    case 'requires-grad':
    case 'all':
      return false;
  }
}

/**
 * What net.describe() returns for a net of this variant, architecture and freezing, computed
 * from the state's shapes alone (no tensors): for parameter counts in tables and reports.
 */
export function describeState(
  variant: Variant,
  architecture: Partial<Architecture> = LAB_ARCHITECTURE,
  freeze: Freeze = 'none',
): ParameterInfo[] {
  return [...expectedStateShapes(variant, architecture)].map(([name, shape]) => ({
    name,
    part: partOf(name),
    shape: shape.slice(),
    size: shape.reduce((a, b) => a * b, 1),
    kind: isBuffer(name) ? 'buffer' : 'parameter',
    trainable: trainsUnder(name, freeze),
  }));
}

/** Which variant a state's keys describe, or undefined when they show neither head. */
export function variantOfState(keys: Iterable<string>): Variant | undefined {
  const set = new Set(keys);
  const dynamic = set.has('embed.weight') || set.has('gen.0.weight');
  const isStatic = set.has('dc.weight');
  if (dynamic && !isStatic) return 'dynamic';
  if (isStatic && !dynamic) return 'static';
  return undefined;
}

/**
 * Every problem with a state for `variant`: wrong variant, missing keys, unexpected keys and
 * wrong shapes, each naming the key. Empty when the state fits. num_batches_tracked is optional.
 */
export function checkState(
  state: Record<string, { shape: number[] }>,
  variant: Variant,
  architecture: Partial<Architecture> = LAB_ARCHITECTURE,
): string[] {
  const expected = expectedStateShapes(variant, architecture);
  const problems: string[] = [];
  const other = variantOfState(Object.keys(state));
  if (other && other !== variant) {
    const has = other === 'dynamic' ? 'embed.weight/gen.*' : 'dc.weight';
    const fix = `use --variant ${other} or the right file`;
    problems.push(`it is a ${other}-variant state (it has ${has}), but the net is ${variant}: ${fix}`);
  }
  const hasAdapter = Object.keys(state).some((k) => k.startsWith('adapter.'));
  const wantsAdapter = architectureOf(architecture).adapter;
  if (hasAdapter !== wantsAdapter) {
    problems.push(
      hasAdapter
        ? 'the state has an adapter (adapter.*) but the net has none: ' +
            'build the net with the adapter (--adapter) or use the right file'
        : 'the net has an adapter (adapter.*) but the state has none: ' +
            'build the net without the adapter or use the right file',
    );
  }
  for (const [name, shape] of expected) {
    const t = state[name];
    if (!t && name.startsWith('adapter.') && !hasAdapter) continue; // said once above
    if (!t) problems.push(`missing key '${name}' (expected shape [${shape}])`);
    else if (!sameShape(t.shape, shape)) problems.push(`'${name}' has shape [${t.shape}], expected [${shape}]`);
  }
  for (const name of Object.keys(state)) {
    if (expected.has(name)) continue;
    if (name.startsWith('adapter.') && !wantsAdapter) continue; // said once above
    if (isCounter(name) && expected.has(name.replace(/num_batches_tracked$/, 'running_mean'))) {
      const scalar = state[name].shape.length === 0 || sameShape(state[name].shape, [1]);
      if (!scalar) problems.push(`'${name}' must be a scalar`);
      continue;
    }
    if (!(other && other !== variant)) problems.push(`unexpected key '${name}'`);
  }
  return problems;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
