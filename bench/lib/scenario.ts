import type { Row } from './result.js';

/** What every scenario gets from the runner. */
export interface Context {
  /** Small sizes, so the whole run stays under a minute (the CI smoke check). */
  quick: boolean;
  /** Recorded runs per measurement (≥ 5). */
  runs: number;
  /** Unrecorded runs before them. */
  warmup: number;
  /** Progress lines (stderr). */
  log(line: string): void;
}

export interface Scenario {
  /** "1" … "7", as numbered in issue 6; every row of the scenario carries it. */
  id: string;
  title: string;
  run(ctx: Context): Promise<Row[]>;
}

export const MiB = 1 << 20;
export const PAGE = 4096;
