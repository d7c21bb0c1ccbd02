/**
 * The seeded fault simulator behind `vgpu-dirty soak` (docs/reliability.md):
 * a world and a program from each seed, faults from the device's facilities,
 * and an oracle that checks the driver's promises at every step.
 */
export * from './bounded.js';
export * from './injector.js';
export * from './oracle.js';
export * from './prng.js';
export * from './program.js';
export * from './report.js';
export * from './runner.js';
export * from './soak.js';
export * from './world.js';
