// docs/protocol.md and the suite agree: §14 lists exactly the cases, and every case is cited by
// the section it checks (and nothing cites a case that does not exist).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ALL_CASES } from '../../src/conformance/index.js';

const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
const s14 = doc.slice(doc.indexOf('## 14. Conformance'));
const body = doc.slice(0, doc.indexOf('## 14. Conformance'));

/** The section a position in the document belongs to: the last heading number before it. */
function sectionAt(at: number): string {
  const headings = [...body.slice(0, at).matchAll(/^#{2,3} (\d+(?:\.\d+)?)\.? /gm)];
  return headings.at(-1)?.[1] ?? '';
}

describe('docs/protocol.md §14 and the conformance cases', () => {
  it('lists every case with its id, section and title, in order', () => {
    const rows = [...s14.matchAll(/^\| `([^`]+)` \| ([\d.]+) \| (.*) \|$/gm)].map(([, id, section, title]) => [id, section, title!.replace(/\\\|/g, '|')]);
    assert.deepEqual(rows, ALL_CASES.map((c) => [c.id, c.section, c.title]));
  });

  it('has stable, unique ids of the form group.name', () => {
    const ids = ALL_CASES.map((c) => c.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids) assert.match(id, /^[a-z]+\.[a-z0-9-]+$/);
  });

  it('cites every case in a "Conformance:" line of its own section, and only cases that exist', () => {
    const cited = new Map<string, Set<string>>();
    for (const m of body.matchAll(/^Conformance: ([\s\S]*?)\.$/gm)) {
      const section = sectionAt(m.index!);
      for (const [, id] of m[1]!.matchAll(/`([^`]+)`/g)) {
        if (!cited.has(id!)) cited.set(id!, new Set());
        cited.get(id!)!.add(section);
      }
    }
    const known = new Set(ALL_CASES.map((c) => c.id));
    assert.deepEqual([...cited.keys()].filter((id) => !known.has(id)), [], 'cited ids that are no case');
    const uncited = ALL_CASES.filter((c) => !cited.get(c.id)?.has(c.section)).map((c) => `${c.id} (§${c.section}; cited in ${[...(cited.get(c.id) ?? [])].join(', ') || 'none'})`);
    assert.deepEqual(uncited, [], 'cases not cited by their own section');
  });
});
