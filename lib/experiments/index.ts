/** lib/experiments: Experiments: the experiment table, runs and their summaries, paired statistics, recorded results. */
export * from './experiment-table';
export * from './experiments';
export * from './measurements';
export * from './recorded';
export * from './results';
export * from './stats';
export * from './summary';
