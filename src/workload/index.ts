export * from './main-job.js';
export * from './scene.js';
export * from './gpu-actor.js';
export * from './tap.js';
