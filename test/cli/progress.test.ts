// The progress line: on a terminal never wider than it (widths 40 and 200), redrawn in place and
// erased at the end; off a terminal plain lines at a fixed period. Clock and terminal are fakes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressLine, type ProgressState, formatDuration, renderBar, renderLine } from '../../src/cli/progress.js';
import type { Terminal } from '../../src/cli/options.js';

const CLEAR = '\r\x1b[K';

function fakeTerminal(isTTY: boolean, columns?: number): Terminal & { text: string } {
  const t = { text: '', isTTY, columns, write: (s: string) => void (t.text += s) };
  return t;
}

function clock(): { now: () => number; advance(ms: number): void } {
  let t = 1000;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

const state = (over: Partial<ProgressState> = {}): ProgressState => ({
  label: 'run', unit: 'frames', done: 120, total: 360, elapsedMs: 2000, detail: 'seed 7, 0 violation(s)', ...over,
});

test('width 200: label, a 40-cell bar, count, percent, rate, ETA and detail', () => {
  const line = renderBar(state(), 200);
  assert.equal(line, `run [${'#'.repeat(13)}${'-'.repeat(27)}] 120/360 frames 33% 60.0/s ETA 4s seed 7, 0 violation(s)`);
  assert.ok(line.length <= 199);
});

test('width 40: the line fits in 39 columns, the bar keeps at least 10 cells, the detail and percentage go first', () => {
  const line = renderBar(state(), 40);
  assert.ok(line.length <= 39, `${line.length}: ${line}`);
  assert.equal(line, 'run [####-------] 120/360 frames ETA 4s');
  assert.equal(renderBar(state(), 60), 'run [#######-------------] 120/360 frames 33% 60.0/s ETA 4s');
  // Every width from 1 to 200, every stage of the work: never wider than columns - 1.
  for (let columns = 1; columns <= 200; columns++) {
    for (const done of [0, 1, 180, 360]) {
      for (const total of [360, undefined]) {
        const l = renderBar(state({ done, total, elapsedMs: done === 0 ? 0 : 3000 }), columns);
        assert.ok(l.length <= Math.max(1, columns - 1), `${columns} columns: ${JSON.stringify(l)}`);
        assert.doesNotMatch(l, /[\r\n]/);
      }
    }
  }
});

test('an unknown total has no bar, percentage or ETA: the count, the rate and the detail', () => {
  assert.equal(renderBar(state({ total: undefined, label: 'check', unit: 'interleavings', done: 5000, detail: 'bound 2, 812 states' }), 200), 'check 5000 interleavings 2500/s bound 2, 812 states');
  assert.equal(renderLine(state({ total: undefined, label: 'check', unit: 'interleavings', done: 5000, detail: 'bound 2, 812 states' })), 'check: 5000 interleavings, 2500/s, bound 2, 812 states');
});

test('on a terminal: each redraw returns to the start of the line and clears it, no newline; end() erases the line', () => {
  for (const columns of [40, 200]) {
    const term = fakeTerminal(true, columns);
    const c = clock();
    const p = new ProgressLine(term, { label: 'run', unit: 'frames', total: 360, now: c.now });
    for (let f = 1; f <= 360; f++) {
      c.advance(1000 / 60);
      p.update(f);
    }
    p.end();
    assert.doesNotMatch(term.text, /\n/, 'a redraw never starts a new line');
    const frames = term.text.split(CLEAR);
    assert.equal(frames[0], '');
    assert.equal(frames.at(-1), '', 'the last write erases the bar');
    const drawn = frames.slice(1, -1);
    assert.ok(drawn.length >= 50 && drawn.length <= 61, `${drawn.length} redraws in 6 s at most one per 100 ms`);
    for (const d of drawn) assert.ok(d.length <= columns - 1, `${columns}: ${d}`);
    assert.match(drawn.at(-1)!, /360\/360 frames|359\/360 frames|35\d\/360 frames/);
  }
});

test('on a terminal: a log line goes above the bar, which is redrawn under it', () => {
  const term = fakeTerminal(true, 80);
  const c = clock();
  const p = new ProgressLine(term, { label: 'bench', unit: 'scenarios', total: 8, now: c.now });
  c.advance(1000);
  p.update(1, 'scenario 2');
  const bar = term.text.slice(CLEAR.length);
  term.text = '';
  p.log('scenario 2: helper cost');
  assert.equal(term.text, `${CLEAR}scenario 2: helper cost\n${bar}`);
  term.text = '';
  p.clear();
  assert.equal(term.text, CLEAR);
  term.text = '';
  p.end();
  assert.equal(term.text, '', 'nothing to erase twice');
});

test('off a terminal: one plain line per period, the first after one period, no escape codes, nothing erased', () => {
  const term = fakeTerminal(false);
  const c = clock();
  const p = new ProgressLine(term, { label: 'soak', unit: 'runs', total: 100, now: c.now });
  for (let run = 1; run <= 100; run++) {
    c.advance(130);
    p.update(run, `seed ${run}`);
  }
  p.end();
  const lines = term.text.split('\n');
  assert.equal(lines.pop(), '');
  assert.deepEqual(lines, [
    'soak: 39/100 runs (39%), 7.7/s, ETA 8s, seed 39',
    'soak: 78/100 runs (78%), 7.7/s, ETA 3s, seed 78',
  ]);
  assert.doesNotMatch(term.text, /[\r\x1b]/);
  const log = fakeTerminal(false);
  new ProgressLine(log, { label: 'x', unit: 'y' }).log('a finding');
  assert.equal(log.text, 'a finding\n');
});

test('durations read as seconds, minutes or hours', () => {
  assert.deepEqual([0, 4_400, 59_000, 65_000, 3_599_000, 3_600_000, 7_380_000].map(formatDuration), ['0s', '4s', '59s', '1m05s', '59m59s', '1h00m', '2h03m']);
});
