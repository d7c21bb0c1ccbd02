import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VgpuError } from '../core/errors.js';

/** Where the package keeps its example traces (bench/traces, made by bench/traces/generate.ts). */
export const SHIPPED_TRACES_DIR = fileURLToPath(new URL('../../../bench/traces/', import.meta.url));
const SUFFIX = '.vgtrace.gz';

/** Names of the shipped traces (the file names without .vgtrace.gz), sorted. */
export function shippedTraces(): string[] {
  if (!existsSync(SHIPPED_TRACES_DIR)) return [];
  return readdirSync(SHIPPED_TRACES_DIR).filter((f) => f.endsWith(SUFFIX)).map((f) => f.slice(0, -SUFFIX.length)).sort();
}

/** A trace argument: an existing file, or the name of a shipped trace. */
export function resolveTrace(fileOrName: string): string {
  if (existsSync(fileOrName)) return fileOrName;
  if (shippedTraces().includes(fileOrName)) return join(SHIPPED_TRACES_DIR, fileOrName + SUFFIX);
  throw new VgpuError('ENOENT', `no trace file '${fileOrName}' and no shipped trace of that name (shipped: ${shippedTraces().join(', ') || 'none'})`);
}
