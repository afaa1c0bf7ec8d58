/** lib/train: Training: the config record, the loop, Adam, checkpoints, metrics, the run folder, progress, prediction. */
export * from './adam';
export * from './checkpoint';
export * from './metrics';
export * from './predict';
export * from './progress';
export * from './run-dir';
export * from './train';
export * from './train-cli';
export * from './train-config';
