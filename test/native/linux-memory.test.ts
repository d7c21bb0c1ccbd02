import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PAGE_IS_WRITTEN, PM_SCAN_CHECK_WPASYNC, PM_SCAN_WP_MATCHING, SegvError } from '../../src/index.js';
import { LinuxWpMemory, LinuxError, concurrentCheck, probeLinuxWp } from '../../src/native/index.js';
import { requireSmallPages } from '../../src/native/linux-memory.js';
import { type Libc, SC_PAGESIZE } from '../../src/native/libc.js';

const W = PAGE_IS_WRITTEN;
const probe = await probeLinuxWp();
/** Skips (with the probe's one-line reason) where the kernel, architecture or permissions do not allow the backend. */
const realTest = (name: string, fn: () => Promise<void> | void) =>
  test(name, async (t) => {
    if (!probe.ok) {
      t.skip(`real-kernel backend unavailable: ${probe.reason}`);
      return;
    }
    await fn();
  });

realTest('real memfd tracked with async uffd-wp: JS stores are reported as merged regions and re-protected', async () => {
  const m = await LinuxWpMemory.open({ pages: 64, pmdOffset: 7 });
  try {
    assert.equal(m.pmdOffset, 7);
    assert.equal((m.base / 4096) % 512, 7);
    m.register(0, 64);
    m.collectWritten();
    m.bytes[3 * 4096] = 1;
    m.write(10 * 4096 + 4000, new Uint8Array(200));
    assert.deepEqual(m.collectWritten().map((r) => [r.start, r.end]), [[3, 4], [10, 12]]);
    assert.deepEqual(m.collectWritten(), []);
    m.bytes[7 * 4096 + 5] = 9;
    assert.deepEqual(m.scan({ start: 0, end: 64, vecLen: 8, categoryMask: W, returnMask: W }).regions, [{ start: 7, end: 8, categories: W }]);
    assert.equal(m.read(7 * 4096 + 5, 1)[0], 9);
  } finally {
    m.close();
  }
});

realTest('kernel errors surface with their errno; stores to unmapped pages are refused, not a crash', async () => {
  const m = await LinuxWpMemory.open({ pages: 16 });
  try {
    m.register(0, 8);
    assert.throws(() => m.scan({ start: 0, end: 16, vecLen: 4, flags: PM_SCAN_CHECK_WPASYNC, categoryMask: W, returnMask: W }), (e: unknown) => e instanceof LinuxError && e.code === 'EPERM');
    assert.throws(() => m.writeProtect(8, 4, true), (e: unknown) => e instanceof LinuxError && e.code === 'ENOENT');
    assert.throws(() => m.scan({ start: 0, end: 16, vecLen: 1, flags: 8 }), (e: unknown) => e instanceof LinuxError && e.code === 'EINVAL');
    m.unmap(4, 2);
    assert.throws(() => m.write(5 * 4096, new Uint8Array(1)), SegvError);
    assert.throws(() => m.remap(3, 2), (e: unknown) => e instanceof LinuxError && e.code === 'EEXIST');
    m.remap(4, 2);
    m.write(5 * 4096, new Uint8Array([1]));
    assert.deepEqual(m.scan({ start: 0, end: 16, vecLen: 4, flags: PM_SCAN_WP_MATCHING, categoryMask: W, returnMask: W }).regions.map((r) => [r.start, r.end]), [[0, 4], [6, 8]], 'the re-mapped pages are in an unregistered VMA, skipped by WP_MATCHING');
  } finally {
    m.close();
  }
});

realTest('UFFD_USER_MODE_ONLY userfaultfd tracks JS stores too', async () => {
  const m = await LinuxWpMemory.open({ pages: 8, userModeOnly: true });
  try {
    assert.equal(m.userModeOnly, true);
    m.register(0, 8);
    m.collectWritten();
    m.bytes[2 * 4096] = 1;
    assert.deepEqual(m.collectWritten().map((r) => [r.start, r.end]), [[2, 3]]);
  } finally {
    m.close();
  }
});

/**
 * The last page is the test's own (the writer threads stay below it). It is
 * stored to once, and then again each time a harvest has just copied it:
 * that store lands after the copy, so only the order decides whether a later
 * harvest sees it.
 */
const LAST = 1023;
const storeAfterCopy = () => {
  let first = true;
  return (bytes: Uint8Array, copied: ReadonlyArray<{ start: number; end: number }>) => {
    if (first || copied.some((r) => r.start <= LAST && LAST < r.end)) bytes[LAST * 4096 + 7]! += 1;
    first = false;
  };
};

realTest('concurrent writer threads vs scan-and-protect: the device copy equals memory at the end', async () => {
  const r = await concurrentCheck({ pages: 1024, writerPages: LAST, writers: 2, durationMs: 300, seed: 1, afterCopy: storeAfterCopy() });
  assert.ok(r.stores > 0 && r.scans > 0 && r.pagesCopied > 0, JSON.stringify(r));
  assert.deepEqual(r.mismatchedPages, []);
});

realTest('the same check catches the read-then-protect order (stores between copy and protect are lost)', async () => {
  const r = await concurrentCheck({ pages: 1024, writerPages: LAST, writers: 2, durationMs: 300, seed: 1, copyBeforeProtect: true, afterCopy: storeAfterCopy() });
  assert.ok(r.mismatchedPages.includes(LAST), `the wrong order lost no store (${r.mismatchedPages.length} pages differ)`);
});

test('a kernel with pages other than 4 KiB is refused with its page size, not mis-tracked', () => {
  const libcWithPages = (size: number) => ({ sysconf: (name: number) => (name === SC_PAGESIZE ? size : -1) }) as unknown as Libc;
  assert.equal(requireSmallPages('koffi missing'), 'koffi missing');
  const small = libcWithPages(4096);
  assert.equal(requireSmallPages(small), small);
  assert.equal(requireSmallPages(libcWithPages(65536)), "the kernel's page size is 65536 bytes; this backend handles 4096-byte pages only");
});
