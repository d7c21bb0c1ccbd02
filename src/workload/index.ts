export * from './main-job.js';
export * from './scene.js';
