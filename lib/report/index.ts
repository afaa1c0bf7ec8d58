/** lib/report: Presentation: plots, tables, visualisations, notebook execution and the report. */
export * from './chromium';
export * from './display';
export * from './figures-export';
export * from './html-table';
export * from './image-grid';
export * from './notebooks';
export * from './plots';
export * from './report';
export * from './submission';
export * from './tables';
export * from './visualize';
