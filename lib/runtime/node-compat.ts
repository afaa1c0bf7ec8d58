/**
 * @tensorflow/tfjs-node 4.22.0 calls `util.isNullOrUndefined` and `util.isArray` (its
 * dist/nodejs_kernel_backend.js, on every op), which Node 23 removed: on Node 24 and 26 the first op
 * fails with "(0 , util_1.isNullOrUndefined) is not a function". The upstream fix
 * (tensorflow/tfjs#8425) is not in a release. tfjs-node reads them from the shared `util` module
 * object at each call, so putting them back there before the first op is enough. Node 22 still has
 * them but warns (DEP0044, DEP0051) at their first call: they are replaced there too, by the same
 * functions without the warning.
 */

/** Node's own `util` module object (an `import * as` namespace would be a copy). */
const nodeUtil = require('util') as object;

/** The two functions as Node ≤ 22 defined them (without Node 22's deprecation warning). */
export const REMOVED_UTIL_FUNCTIONS = {
  isNullOrUndefined: (value: unknown): value is null | undefined => value === null || value === undefined,
  isArray: (value: unknown): value is unknown[] => Array.isArray(value),
} as const;

/** Puts the `util` functions tfjs-node needs (ours) on `target`; returns the names it set (none the second time). */
export function restoreRemovedUtilFunctions(target: object = nodeUtil): string[] {
  const set: string[] = [];
  const mutable = target as Record<string, unknown>;
  for (const [name, fn] of Object.entries(REMOVED_UTIL_FUNCTIONS)) {
    if (mutable[name] === fn) continue;
    mutable[name] = fn;
    set.push(name);
  }
  return set;
}
