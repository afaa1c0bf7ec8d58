/**
 * @tensorflow/tfjs-node 4.22.0 calls `util.isNullOrUndefined` and `util.isArray` (its
 * dist/nodejs_kernel_backend.js, on every op), which Node 23 removed: on Node 24 and 26 the first op
 * fails with "(0 , util_1.isNullOrUndefined) is not a function". The upstream fix
 * (tensorflow/tfjs#8425) is not in a release. tfjs-node reads them from the shared `util` module
 * object at each call, so putting them back there before the first op is enough. Where Node still
 * has them (Node 22), nothing changes.
 */

/** Node's own `util` module object (an `import * as` namespace would be a copy). */
const nodeUtil = require('util') as object;

/** The two functions as Node ≤ 22 defined them. */
export const REMOVED_UTIL_FUNCTIONS = {
  isNullOrUndefined: (value: unknown): value is null | undefined => value === null || value === undefined,
  isArray: (value: unknown): value is unknown[] => Array.isArray(value),
} as const;

/** Puts back the removed `util` functions tfjs-node needs; returns the names it added (none on Node ≤ 22). */
export function restoreRemovedUtilFunctions(target: object = nodeUtil): string[] {
  const added: string[] = [];
  const mutable = target as Record<string, unknown>;
  for (const [name, fn] of Object.entries(REMOVED_UTIL_FUNCTIONS)) {
    if (typeof mutable[name] === 'function') continue;
    mutable[name] = fn;
    added.push(name);
  }
  return added;
}
