/**
 * lib/train: Training: the config record, the loop and its parts (step, loss, evaluation, metrics recorder,
 * interrupt), Adam, checkpoints and their export, metrics, the run store and its lock, progress, prediction.
 */
export * from './adam';
export * from './checkpoint';
export * from './divergence';
export * from './evaluate';
export * from './events';
export * from './export';
export * from './interrupt';
export * from './loss';
export * from './metrics';
export * from './metrics-recorder';
export * from './predict';
export * from './progress';
export * from './run';
export * from './run-lock';
export * from './train';
export * from './train-cli';
export * from './train-config';
export * from './train-data';
export * from './train-step';
