import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MachineInfo } from './machine-info.js';
import { RESULTS_DIR } from './paths.js';
import { hasNumbers, type Row } from './result.js';

export interface RunReport {
  date: string;
  command: string;
  quick: boolean;
  runs: number;
  warmup: number;
  seconds: number;
  machine: MachineInfo;
  results: Row[];
  /** Scenarios that failed, with the error. */
  errors: Array<{ scenario: string; error: string }>;
}

/** Write bench/results/<timestamp>.json; returns its path. */
export function writeReport(report: RunReport): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${report.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
  return path;
}

/** Scenario ids with no row, or a row without finite numbers: what the CI smoke check fails on. */
export function scenariosWithoutNumbers(ids: readonly string[], rows: readonly Row[]): string[] {
  return ids.filter((id) => {
    const mine = rows.filter((r) => r.scenario === id);
    return mine.length === 0 || !mine.every(hasNumbers);
  });
}
