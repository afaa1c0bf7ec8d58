/** lib/runtime: The TensorFlow backend, one-graph steps, fused kernels, seeded random numbers. */
export * from './backend';
export * from './binding';
export * from './cpu-share';
export * from './graph';
export * from './kernels';
export * from './node-compat';
export * from './op-profile';
export * from './precision';
export * from './random';
