/**
 * The network's architecture options: what the experiments change in the lab's net (the
 * questions' ablations and the frozen-backbone fixes). The defaults are the lab's net, so a run,
 * a checkpoint or a state saved before these options existed means LAB_ARCHITECTURE.
 *
 *   filterNorm     L2-normalise each generated filter (dynamic head; "for numerical stability")
 *   staticNorm     L2-normalise each of the static head's learned filters: the control that
 *                  differs from the dynamic net in the generator alone (the lab's static head
 *                  differs in two factors, no generator AND no normalisation)
 *   responseScale  divide the response maps by √64 (both heads)
 *   upsample       bilinear upsampling of the input by this factor before the backbone: 32×32 →
 *                  64×64 with 2 gives [batch, 16, 16, 64] features, average-pooled back to 8×8
 *                  for the head (lib/model explains why)
 *   adapter        a trainable residual block after the backbone: relu(x + BN(conv3×3(x))),
 *                  64→64, state `adapter.*` (lib/model/adapter)
 *
 * Pure: no tensors here, so configs, checkpoints and reports can reason about architectures.
 */

export interface Architecture {
  filterNorm: boolean;
  staticNorm: boolean;
  responseScale: boolean;
  /** Whole factor ≥ 1 (1: the lab's 32×32 input). */
  upsample: number;
  adapter: boolean;
}

/** The lab's net. */
export const LAB_ARCHITECTURE: Readonly<Architecture> = Object.freeze({ filterNorm: true, staticNorm: false, responseScale: true, upsample: 1, adapter: false });

/** Upsampling factors allowed (memory and time grow with the square of the factor). */
export const MAX_UPSAMPLE = 4;

export const ARCHITECTURE_KEYS: readonly (keyof Architecture)[] = ['filterNorm', 'staticNorm', 'responseScale', 'upsample', 'adapter'];

/**
 * The architecture a record (a TrainConfig, a checkpoint's config, partial options) describes:
 * its fields where present, the lab's net for the rest.
 */
export function architectureOf(record: Partial<Record<keyof Architecture, unknown>> | undefined): Architecture {
  const a = { ...LAB_ARCHITECTURE } as Record<string, unknown>;
  for (const k of ARCHITECTURE_KEYS) if (record && record[k] !== undefined) a[k] = record[k];
  return a as unknown as Architecture;
}

/** Every problem with an architecture for `variant` (empty when it is valid). */
export function architectureProblems(a: Architecture, variant?: string): string[] {
  const problems: string[] = [];
  if (typeof a.filterNorm !== 'boolean') problems.push(`filterNorm must be true or false; got ${JSON.stringify(a.filterNorm)}`);
  if (typeof a.staticNorm !== 'boolean') problems.push(`staticNorm must be true or false; got ${JSON.stringify(a.staticNorm)}`);
  if (typeof a.responseScale !== 'boolean') problems.push(`responseScale must be true or false; got ${JSON.stringify(a.responseScale)}`);
  if (typeof a.adapter !== 'boolean') problems.push(`adapter must be true or false; got ${JSON.stringify(a.adapter)}`);
  if (!(Number.isInteger(a.upsample) && a.upsample >= 1 && a.upsample <= MAX_UPSAMPLE)) {
    problems.push(`upsample must be a whole number from 1 to ${MAX_UPSAMPLE}; got ${JSON.stringify(a.upsample)}`);
  }
  if (variant === 'static' && a.filterNorm === false) {
    problems.push('filterNorm false applies to the dynamic head only (the static head\'s filters are never normalised); keep it true for static');
  }
  if (variant === 'dynamic' && a.staticNorm === true) problems.push('staticNorm applies to the static head only; the dynamic head\'s filters follow filterNorm');
  return problems;
}

/** True when both describe the same net. */
export function sameArchitecture(a: Architecture, b: Architecture): boolean {
  return ARCHITECTURE_KEYS.every((k) => a[k] === b[k]);
}

/**
 * The fields in which architecture `a` differs from `b`, as { field, a, b }. For whole training
 * configs (architecture fields included) use lib/train's configDifferences; this is the part the
 * model layer, which knows no configs, compares.
 */
export function architectureDifferences(a: Architecture, b: Architecture): { field: keyof Architecture; a: Architecture[keyof Architecture]; b: Architecture[keyof Architecture] }[] {
  return ARCHITECTURE_KEYS.filter((k) => a[k] !== b[k]).map((field) => ({ field, a: a[field], b: b[field] }));
}

/** An architecture field's value in words, as a change from the lab's net: 'no filter norm', 'upsample ×2'. */
export function describeArchitectureField(field: keyof Architecture, value: unknown): string {
  switch (field) {
    case 'filterNorm':
      return value ? 'filter norm' : 'no filter norm';
    case 'staticNorm':
      return value ? 'L2-normalised static filters' : 'unnormalised static filters';
    case 'responseScale':
      return value ? '/√64' : 'no /√64';
    case 'upsample':
      return `upsample ×${value}`;
    case 'adapter':
      return value ? 'adapter' : 'no adapter';
  }
}

/** How `a` differs from the lab's net, e.g. ['no filter norm', 'upsample ×2']; empty for the lab's net. */
export function describeArchitecture(a: Architecture): string[] {
  return architectureDifferences(a, LAB_ARCHITECTURE).map((d) => describeArchitectureField(d.field, d.a));
}
