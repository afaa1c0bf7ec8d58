/** lib/report: Presentation: plots, tables, visualisations, notebook execution and the report. */
export * from './answers';
export * from './chromium';
export * from './display';
export * from './figures-export';
export * from './html-table';
export * from './image-grid';
export * from './lab-report';
export * from './notebooks';
export * from './plots';
export * from './receptive-field';
export * from './report';
export * from './submission';
export * from './svg';
export * from './tables';
export * from './visualize';
