import { fileURLToPath } from 'node:url';

/** Compiled entry points the benchmark starts as child processes (paths inside dist/). */
export const CLI_MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
export const WORKER_MAIN = fileURLToPath(new URL('../worker.js', import.meta.url));
/** Where result files go: bench/results in the source tree (dist/bench/lib → ../../../bench/results). */
export const RESULTS_DIR = fileURLToPath(new URL('../../../bench/results/', import.meta.url));
