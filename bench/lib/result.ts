import { summarize, type Summary } from './stats.js';

/** A target from the issue: how it reads in the table and whether a row meets it. */
export interface Target {
  text: string;
  met: (row: Row) => boolean;
}

/** One line of the table and of the JSON file. */
export interface Row extends Summary {
  scenario: string;
  name: string;
  unit: string;
  /** Median of the baseline measured in the same run, when there is one. */
  baseline?: number;
  baselineName?: string;
  /** median / baseline. */
  ratio?: number;
  target?: string;
  targetMet?: boolean;
  /** Free text (sizes, settings) shown under the table. */
  note?: string;
}

export interface RowSpec {
  unit: string;
  samples: readonly number[];
  baseline?: { name: string; samples: readonly number[] };
  target?: Target;
  note?: string;
}

/** Summarise samples (and the baseline's) into a row and evaluate its target. */
export function makeRow(scenario: string, name: string, spec: RowSpec): Row {
  const row: Row = { scenario, name, unit: spec.unit, ...summarize(spec.samples) };
  if (spec.baseline) {
    row.baseline = summarize(spec.baseline.samples).median;
    row.baselineName = spec.baseline.name;
    row.ratio = row.median / row.baseline;
  }
  if (spec.note !== undefined) row.note = spec.note;
  if (spec.target) {
    row.target = spec.target.text;
    row.targetMet = spec.target.met(row);
  }
  return row;
}

/** Targets of the issue, as predicates on a finished row. */
export const targets = {
  ratioAtLeast: (k: number, of: string): Target => ({ text: `≥ ${k}× ${of}`, met: (r) => (r.ratio ?? NaN) >= k }),
  ratioAtMost: (k: number, of: string): Target => ({ text: `≤ ${k}× ${of}`, met: (r) => (r.ratio ?? NaN) <= k }),
  atMost: (v: number, unit: string): Target => ({ text: `≤ ${v} ${unit}`, met: (r) => r.median <= v }),
};

/** True when every number a row must carry is finite. */
export function hasNumbers(row: Row): boolean {
  const nums = [row.median, row.min, row.max, ...(row.baseline !== undefined ? [row.baseline, row.ratio!] : [])];
  return row.runs > 0 && nums.every(Number.isFinite);
}
