/**
 * vgpu-dirty: the simulated memory-management core (no I/O), the driver layer
 * and their public types. See README.md and docs/architecture.md.
 */
export * from './core/index.js';
export * from './driver/index.js';
export * from './workload/index.js';
