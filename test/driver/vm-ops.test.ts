// The BO vm_ops' mapping rules: TTM's copy-on-write check (§6.C9).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../src/index.js';
import { offlineSpace, PS } from './fixtures.js';

test('a BO may be mapped private read-only, never private writable (§6.C9)', () => {
  const { space, mm } = offlineSpace();
  const bo = space.create(4 * PS);
  assert.throws(() => mm.mmap(space.mapping, { pgoff: bo.offset, pages: 4, shared: false, prot: 'rw' }), (e: unknown) =>
    e instanceof InvalidArgumentError && /private \(copy-on-write\) mapping of a BO cannot be writable/.test(e.message));
  assert.equal(mm.vmas.length, 0, 'nothing was mapped');
  const ro = mm.mmap(space.mapping, { pgoff: bo.offset, pages: 4, shared: false, prot: 'r' });
  const none = mm.mmap(space.mapping, { pgoff: bo.offset, pages: 4, shared: false, prot: 'none' });
  const shared = mm.mmap(space.mapping, { pgoff: bo.offset, pages: 4, prot: 'rw' });
  assert.deepEqual([ro, none, shared].map((v) => mm.vmas.includes(v)), [true, true, true]);
});

test('mprotect cannot make a private mapping of a BO writable; shared ones change freely (§6.C9)', () => {
  const { space, mm } = offlineSpace();
  const bo = space.create(4 * PS);
  const priv = mm.mmap(space.mapping, { pgoff: bo.offset, pages: 4, shared: false, prot: 'r' });
  assert.throws(() => mm.mprotect(priv.start, 4 * PS, 'rw'), /mprotect refused by .*cannot become writable/);
  mm.mprotect(priv.start, 4 * PS, 'none'); // removing permissions is fine
  const shared = mm.mmap(space.mapping, { pgoff: bo.offset, pages: 4, prot: 'r' });
  mm.mprotect(shared.start, 4 * PS, 'rw');
  assert.equal(mm.findVma(shared.start)!.flags & 2, 2, 'the shared mapping became writable');
});

test('a private mapping of a file not opened for writing is not copy-on-write and stays allowed', () => {
  const { space, mm } = offlineSpace();
  const bo = space.create(2 * PS);
  const v = mm.mmap(space.mapping, { pgoff: bo.offset, pages: 2, shared: false, prot: 'r', mayWrite: false });
  assert.ok(mm.vmas.includes(v));
});
