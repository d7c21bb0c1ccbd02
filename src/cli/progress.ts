/**
 * Progress of a long command, on stderr. On a terminal: one line redrawn in place (label, a bar
 * sized to the terminal, count, rate, ETA, detail), never wider than the terminal minus its last
 * column, so no terminal wraps it and a redraw leaves no junk line; what does not fit is dropped,
 * least useful first; `end()` erases it. Elsewhere (a log file, a pipe, CI): one plain line every
 * `everyMs`, nothing redrawn.
 *
 * Written by hand rather than with cli-progress (the well-kept library that comes closest): its
 * bar has a fixed size and a line too wide is cut at the terminal's full width, so a narrow
 * terminal loses the rate and ETA first (and one that wraps at the last column gets a junk line);
 * it redraws from its own timer, which keeps the process alive until stop(); it has no form for
 * an unknown total (the checker's interleavings), and off a terminal it repeats the bar format.
 * This file is small, and the clock and the terminal are injected, so it is tested byte for byte
 * at any width.
 */
import type { CommandIo, Terminal } from './options.js';

export interface ProgressOptions {
  /** First word of the line: the command ('run', 'check', …). */
  label: string;
  /** What is counted, plural: 'frames', 'interleavings', 'runs'. */
  unit: string;
  /** The count at which the work is done; without it there is no bar, percentage or ETA. */
  total?: number;
  /** Without a terminal: one line per this many ms (default 5000). */
  everyMs?: number;
  /** On a terminal: at most one redraw per this many ms (default 100). */
  redrawMs?: number;
  /** Milliseconds; injected by tests. */
  now?: () => number;
}

export interface ProgressState {
  label: string;
  unit: string;
  done: number;
  total: number | undefined;
  elapsedMs: number;
  detail: string | undefined;
}

const BAR_MIN = 10;
const BAR_MAX = 40;
const CLEAR_LINE = '\r\x1b[K';

export class ProgressLine {
  private readonly now: () => number;
  private readonly start: number;
  private last = -Infinity;
  private state: ProgressState;
  private drawn = false;

  constructor(
    private readonly term: Terminal,
    private readonly o: ProgressOptions,
  ) {
    this.now = o.now ?? (() => performance.now());
    this.start = this.now();
    // Without a terminal the first line comes after one period: a short run prints none.
    if (!term.isTTY) this.last = this.start;
    this.state = { label: o.label, unit: o.unit, done: 0, total: o.total, elapsedMs: 0, detail: undefined };
  }

  /** `done` so far (of `total`), with an optional short detail ('seed 12', 'bound 2'). */
  update(done: number, detail?: string): void {
    const t = this.now();
    this.state = { ...this.state, done, detail, elapsedMs: t - this.start };
    const period = this.term.isTTY ? (this.o.redrawMs ?? 100) : (this.o.everyMs ?? 5000);
    if (t - this.last < period) return;
    this.last = t;
    this.draw();
  }

  /** A line of its own (a finding, a scenario's name) above the bar. */
  log(line: string): void {
    if (!this.term.isTTY) return this.term.write(`${line}\n`);
    this.term.write(`${CLEAR_LINE}${line}\n`);
    if (this.drawn) this.term.write(renderBar(this.state, this.term.columns ?? 80));
  }

  /** Erases the bar, e.g. before a line goes to stdout on the same terminal; the next update redraws. */
  clear(): void {
    if (this.term.isTTY && this.drawn) this.term.write(CLEAR_LINE);
    this.drawn = false;
    this.last = this.term.isTTY ? -Infinity : this.last;
  }

  /** The work is over: erases the bar (a log keeps its lines). */
  end(): void {
    this.clear();
  }

  private draw(): void {
    if (this.term.isTTY) {
      this.term.write(CLEAR_LINE + renderBar(this.state, this.term.columns ?? 80));
      this.drawn = true;
    } else {
      this.term.write(`${renderLine(this.state)}\n`);
    }
  }
}

/** '42s', '3m05s', '2h07m'. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

interface Fields {
  count: string;
  percent?: string;
  rate?: string;
  eta?: string;
  detail?: string;
}

function fields(s: ProgressState): Fields {
  const perSecond = s.elapsedMs > 0 ? (s.done * 1000) / s.elapsedMs : 0;
  const f: Fields = { count: s.total === undefined ? `${s.done} ${s.unit}` : `${s.done}/${s.total} ${s.unit}` };
  if (s.elapsedMs > 0) f.rate = `${perSecond >= 100 ? Math.round(perSecond) : perSecond.toFixed(1)}/s`;
  if (s.total !== undefined && s.total > 0) {
    f.percent = `${Math.floor((100 * Math.min(s.done, s.total)) / s.total)}%`;
    if (perSecond > 0 && s.done < s.total) f.eta = `ETA ${formatDuration(((s.total - s.done) / perSecond) * 1000)}`;
  }
  if (s.detail !== undefined && s.detail !== '') f.detail = s.detail;
  return f;
}

/** The plain line of a log: every field, no width limit. */
export function renderLine(s: ProgressState): string {
  const f = fields(s);
  return `${s.label}: ${[f.count + (f.percent ? ` (${f.percent})` : ''), f.rate, f.eta, f.detail].filter(Boolean).join(', ')}`;
}

/** Order in which fields give way when the terminal is narrow. */
const DROP_ORDER = ['detail', 'percent', 'rate', 'eta'] as const;

/** The terminal line: at most `columns - 1` characters, the bar as wide as the room allows. */
export function renderBar(s: ProgressState, columns: number): string {
  const max = Math.max(1, columns - 1);
  const f = fields(s);
  let bar = s.total !== undefined && s.total > 0;
  const text = (): string => [s.label, f.count, f.percent, f.rate, f.eta, f.detail].filter(Boolean).join(' ');
  const room = (): number => max - text().length - (bar ? 3 : 0); // ' [' + ']' around the bar
  for (const k of DROP_ORDER) {
    if (room() >= (bar ? BAR_MIN : 0)) break;
    delete f[k];
  }
  if (bar && room() < BAR_MIN) bar = false;
  if (!bar) return text().slice(0, max);
  const width = Math.min(BAR_MAX, room());
  const filled = Math.round((Math.min(s.done, s.total!) / s.total!) * width);
  const rest = [f.count, f.percent, f.rate, f.eta, f.detail].filter(Boolean).join(' ');
  return `${s.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${rest}`;
}

/** The process's stderr as a Terminal (columns read at each draw: a resize takes effect). */
export const stderrTerminal: Terminal = {
  write: (text) => void process.stderr.write(text),
  get isTTY() {
    return process.stderr.isTTY === true;
  },
  get columns() {
    return process.stderr.columns;
  },
};

/** A Terminal that is not one: each line goes to `line` (tests, callers that collect lines). */
export function lineTerminal(line: (text: string) => void): Terminal {
  return { write: (text) => text.split('\n').filter((l) => l !== '').forEach((l) => line(l)), isTTY: false, columns: undefined };
}

/** Results to `out`, diagnostics and progress as plain lines to `err` (default: stderr). */
export function lineIo(out: (line: string) => void, err: (line: string) => void = (l) => void process.stderr.write(`${l}\n`)): CommandIo {
  return { out, err: lineTerminal(err) };
}
