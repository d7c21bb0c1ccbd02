// The known-bug table (src/check/bugs.ts, docs/fidelity.md): every entry of
// the reference's bug list is there, and every entry with variants fails as
// planted and holds fixed, each established by the explorer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BUGS, buildScenario, explore, replaySchedule } from '../../src/check/index.js';

const REFERENCE_IDS = [
  'A1', 'A2', 'A3', 'A4', 'A5', 'A6', 'A7', 'B1', 'B2', 'B3', 'B4', 'B5', 'C1', 'C2', 'C3', 'C4', 'C5', 'C6', 'C7', 'C8', 'C9', 'C10',
];

test('every entry of the reference bug list has a row: variants, or not applicable with a reason', () => {
  for (const id of REFERENCE_IDS) {
    const b = BUGS.find((x) => x.id === id);
    assert.ok(b, `${id} is missing`);
    if (b.kind === 'variants') assert.ok(b.buggy && b.fixed, id);
    else assert.ok(b.why && b.why.length > 20, `${id} says why it does not apply`);
  }
});

test('every planted bug is found, with a replayable counterexample, and its fixed variant holds', () => {
  for (const b of BUGS.filter((x) => x.kind === 'variants')) {
    const bound = b.bound ?? 2;
    const buggy = explore(buildScenario(b.buggy), { bound });
    assert.equal(buggy.verdict, 'fails', `${b.id} buggy`);
    assert.deepEqual(replaySchedule(buildScenario(b.buggy), buggy.schedule!).violation, buggy.violation, `${b.id} replays`);
    const fixed = explore(buildScenario(b.fixed), { bound });
    assert.equal(fixed.verdict, 'holds', `${b.id} fixed: ${fixed.violation?.message}`);
  }
});

test('docs/fidelity.md has a row for every bug id', () => {
  const doc = readFileSync('docs/fidelity.md', 'utf8');
  for (const b of BUGS) assert.match(doc, new RegExp(`^\\| ${b.id} \\|`, 'm'), b.id);
});
