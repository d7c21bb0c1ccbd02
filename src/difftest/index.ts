export * from './program.js';
export * from './run.js';
