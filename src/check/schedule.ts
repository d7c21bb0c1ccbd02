/**
 * Schedules: the decisions of one execution written as text, so a failing
 * interleaving can be replayed exactly (`vgpu-dirty check ... --schedule S`).
 *
 * One token per decision point, comma separated: an actor's token ('0', '1'
 * for CPUs, 'k0', 'k1' for kernel actors) when that actor's next op runs
 * there, '-' when the suspended op continues; a run of n continues is written
 * '-n'. Replay past the end of a schedule takes the default choice (continue,
 * or the lowest actor at top level), as the explorer's first descent does.
 */
import { CONTINUE, type DecisionSource, Execution, type ExecutionTracer, type Outcome } from './execution.js';
import type { Violation } from './invariants.js';
import type { Scenario } from './scenario.js';

/** A schedule that does not fit its scenario. */
export class ScheduleError extends Error {
  override readonly name = 'ScheduleError';
}

export function formatSchedule(scenario: Scenario, decisions: ArrayLike<number>, length = decisions.length): string {
  const out: string[] = [];
  let run = 0;
  const flush = (): void => {
    if (run > 0) out.push(run === 1 ? '-' : `-${run}`);
    run = 0;
  };
  for (let i = 0; i < length; i++) {
    const d = decisions[i]!;
    if (d === CONTINUE) {
      run++;
      continue;
    }
    flush();
    out.push(scenario.actors[d]!.token);
  }
  flush();
  return out.join(',');
}

export function parseSchedule(scenario: Scenario, text: string): number[] {
  const out: number[] = [];
  if (text.trim() === '') return out;
  for (const raw of text.split(',')) {
    const t = raw.trim();
    const run = /^-(\d*)$/.exec(t);
    if (run) {
      const n = run[1] === '' ? 1 : Number(run[1]);
      if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new ScheduleError(`bad continue run '${t}'`);
      for (let i = 0; i < n; i++) out.push(CONTINUE);
      continue;
    }
    const actor = scenario.actors.find((a) => a.token === t);
    if (actor === undefined) throw new ScheduleError(`unknown schedule token '${t}' (actors: ${scenario.actors.map((a) => a.token).join(', ')}, '-' continue)`);
    out.push(actor.index);
  }
  return out;
}

/** Follows a parsed schedule, then the default choice. */
class ScheduleSource implements DecisionSource {
  private pos = 0;

  constructor(private readonly scenario: Scenario, private readonly wanted: readonly number[]) {}

  decide(exec: Execution): number {
    const i = this.pos++;
    if (i >= this.wanted.length) return 0;
    const want = this.wanted[i]!;
    for (let c = 0; c < exec.enabledCount; c++) if (exec.enabled[c] === want) return c;
    const names = Array.from(exec.enabled.subarray(0, exec.enabledCount), (a) => (a === CONTINUE ? '-' : this.scenario.actors[a]!.token));
    const token = want === CONTINUE ? '-' : this.scenario.actors[want]!.token;
    throw new ScheduleError(`decision ${i + 1}: '${token}' cannot run here (enabled: ${names.join(' ')})`);
  }
}

export interface ReplayResult {
  outcome: Outcome;
  violation: Violation | null;
  execution: Execution;
}

/** Run exactly one interleaving. No preemption bound applies: the schedule decides. */
export function replaySchedule(scenario: Scenario, schedule: string, tracer: ExecutionTracer | null = null): ReplayResult {
  const source = new ScheduleSource(scenario, parseSchedule(scenario, schedule));
  const execution = new Execution(scenario);
  const outcome = execution.run(Infinity, source, tracer);
  return { outcome, violation: execution.violation, execution };
}
