/** lib/experiments: Experiments: the experiment table, runs and their summaries, paired statistics, recorded results. */
export * from './costs';
export * from './evidence';
export * from './experiment-table';
export * from './experiments';
export * from './findings';
export * from './measurements';
export * from './recipe';
export * from './recorded';
export * from './results-doc';
export * from './results';
export * from './stats';
export * from './summary';
export * from './table';
