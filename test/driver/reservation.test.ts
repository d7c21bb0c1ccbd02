// The BO reservation and the mkwrite window (docs/fidelity.md): CPU writes
// staged at every step point of a method switch, and a scan staged between
// page_mkwrite and the PTE becoming writable. Each case runs the driver as
// shipped and with the handlers ignoring the reservation / finishing the
// mkwrite fault after releasing it, and counts the writes the device never gets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AccessBlockedError, BoDirtyTracker, BufferResource, type DirtyConfig, KERNEL_ACTOR, Step,
} from '../../src/index.js';
import { offlineSpace, PS } from './fixtures.js';

const PAGES = 4;

/**
 * A tracked BO with one buffer resource over all of it, mapped by two
 * processes (CPU c writes through process c's mapping, so a walker holding one
 * process's PTE lock does not block the other's faults), and a device copy
 * fed by validate().
 */
function rig(dirty: Partial<DirtyConfig>) {
  const { machine, space, config, mm } = offlineSpace({ cpus: 2, memoryBytes: 1 << 20 }, { changeTriggers: 0, ...dirty });
  const bo = space.create(PAGES * PS);
  const res = new BufferResource(bo, 0, bo.size);
  bo.attach(res);
  const vmas = [mm, machine.createMm()].map((m) => m.mmap(space.mapping, { pgoff: bo.offset, pages: PAGES }));
  const tracker = BoDirtyTracker.add(bo, config);
  const device = new Uint8Array(bo.size);
  const memory = new Uint8Array(bo.size);
  /** What command validation does: scan, move the bits into the resource, upload its ranges. */
  const validate = () => {
    const scan = tracker.scan();
    tracker.transferToResource(res);
    for (const u of res.takeUploads()) if (u.kind === 'range') bo.copyOut(u.offset, device, u.offset, u.length);
    return scan;
  };
  /** CPU c writes byte c of the page, through process c's mapping. */
  const write = (cpu: number, page: number, value: number) => machine.cpus[cpu]!.write8(vmas[cpu]!.mm, vmas[cpu]!.start + page * PS + cpu, value);
  const read = (cpu: number, page: number) => machine.cpus[cpu]!.read8(vmas[cpu]!.mm, vmas[cpu]!.start + page * PS);
  /** Pages whose device copy differs from guest memory. */
  const differing = () => {
    bo.copyOut(0, memory, 0, bo.size);
    return Array.from({ length: PAGES }, (_, p) => p).filter((p) => memory[p * PS] !== device[p * PS] || memory[p * PS + 1] !== device[p * PS + 1]);
  };
  return { machine, bo, tracker, validate, write, read, differing };
}

type Rig = ReturnType<typeof rig>;

/**
 * Stage a CPU write to `page` at the `point`-th kernel step point of the
 * validate that switches method; with `later`, write another byte of the page
 * after it; then validate twice (quiescent). Returns whether the device lost a
 * write. (Into PAGETABLE, a later write would re-dirty the page and upload it
 * whole, hiding a lost staged write; into MKWRITE, what is lost is the later
 * write to a page left writable without its bit.)
 */
function switchWithWriteAt(dirty: Partial<DirtyConfig>, prepare: (r: Rig) => void, later: boolean, point: number, page: number): { lost: boolean; switched: boolean } {
  const r = rig(dirty);
  prepare(r);
  let n = 0;
  let pending = false;
  r.machine.stepHook = (_kind, actor) => {
    if (actor !== KERNEL_ACTOR || n++ !== point) return;
    try {
      r.write(1, page, 0x40 + point);
    } catch (e) {
      if (!(e instanceof AccessBlockedError)) throw e;
      pending = true; // a handler found the reservation held: the access retries once it is released
    }
  };
  const scan = r.validate();
  r.machine.stepHook = null;
  if (pending) r.write(1, page, 0x40 + point);
  if (later) r.write(0, page, 0x80 + point);
  r.validate();
  r.validate();
  return { lost: r.differing().length > 0, switched: scan.switchedTo !== null };
}

/** Every (step point, page) of the switching validate; counts the staged writes the device lost. */
function lossesDuringSwitch(dirty: Partial<DirtyConfig>, prepare: (r: Rig) => void, later: boolean): { staged: number; lost: number } {
  const probe = rig(dirty);
  prepare(probe);
  let points = 0;
  probe.machine.stepHook = (_k, actor) => void (actor === KERNEL_ACTOR && points++);
  assert.ok(probe.validate().switchedTo !== null, 'the staged validate switches method');
  let lost = 0;
  let staged = 0;
  for (let point = 0; point < points; point++) {
    for (let page = 0; page < PAGES; page++) {
      staged++;
      if (switchWithWriteAt(dirty, prepare, later, point, page).lost) lost++;
    }
  }
  return { staged, lost };
}

/** PAGETABLE, every page faulted in and clean, so the next validate finds nothing and switches to MKWRITE. */
const toMkwrite = (r: Rig) => {
  assert.equal(r.tracker.method, 'pagetable');
  for (let p = 0; p < PAGES; p++) r.write(0, p, 1);
  assert.equal(r.validate().switchedTo, null);
};

/** MKWRITE (threshold 1 page), two pages written through mkwrite, so the next validate votes and switches to PAGETABLE. */
const toPagetable = (r: Rig) => {
  assert.equal(r.tracker.method, 'mkwrite');
  r.write(0, 0, 1);
  r.write(0, 2, 1);
};

test('PAGETABLE → MKWRITE: a write at any step point of the switch waits for the reservation and reaches the device; ignoring it loses writes', (t) => {
  const shipped = lossesDuringSwitch({}, toMkwrite, true);
  const ignoring = lossesDuringSwitch({ handlersTakeReservation: false }, toMkwrite, true);
  assert.equal(shipped.lost, 0, `lost ${shipped.lost} of ${shipped.staged}`);
  t.diagnostic(`staged ${shipped.staged}: lost ${shipped.lost} with the reservation, ${ignoring.lost} without`);
  assert.equal(ignoring.staged, shipped.staged);
  assert.ok(ignoring.lost > 0, 'without the reservation some staged write is lost');
});

test('MKWRITE → PAGETABLE: a write at any step point of the switch waits for the reservation and reaches the device; ignoring it loses writes', (t) => {
  const shipped = lossesDuringSwitch({ mkwriteThresholdPages: 1 }, toPagetable, false);
  const ignoring = lossesDuringSwitch({ mkwriteThresholdPages: 1, handlersTakeReservation: false }, toPagetable, false);
  assert.equal(shipped.lost, 0, `lost ${shipped.lost} of ${shipped.staged}`);
  t.diagnostic(`staged ${shipped.staged}: lost ${shipped.lost} with the reservation, ${ignoring.lost} without`);
  assert.ok(ignoring.lost > 0, 'without the reservation some staged write is lost');
});

test('a fault and an mkwrite that find the reservation held ask for a retry with the promise of its release', async () => {
  const r = rig({ mkwriteThresholdPages: 1, prefault: 1, changeTriggers: 2 });
  r.write(0, 0, 1); // page 0 writable and recorded (MKWRITE)
  r.read(1, 3); // page 3 mapped read-only in process 1; page 1 not mapped there
  let blocked: AccessBlockedError[] = [];
  r.machine.stepHook = (kind, actor) => {
    // No PTE lock is held here: what blocks is the reservation the scan holds.
    if (actor !== KERNEL_ACTOR || kind !== Step.BeforeVmaFlush || blocked.length > 0) return;
    for (const page of [1, 3]) {
      try {
        r.write(1, page, 9);
      } catch (e) {
        if (e instanceof AccessBlockedError) blocked.push(e);
        else throw e;
      }
    }
  };
  r.validate();
  r.machine.stepHook = null;
  assert.deepEqual(blocked.map((e) => e.reason), ['fault', 'mkwrite']);
  assert.equal(r.bo.reservation.held, false);
  await Promise.all(blocked.map((e) => e.until)); // released when the scan returned
  blocked = [];
  r.write(1, 1, 9);
  r.write(1, 3, 9);
  assert.deepEqual(r.tracker.bitmap.toArray(), [1, 3]);
});

/**
 * The mkwrite window: a validate staged between page_mkwrite returning and
 * the PTE becoming writable (Step.MkwriteReturned), then more writes to the page.
 */
function scanInMkwriteWindow(dirty: Partial<DirtyConfig>) {
  const r = rig({ mkwriteThresholdPages: 1, changeTriggers: 2, ...dirty });
  r.write(0, 0, 1); // fault the BO in: read-only PTEs (MKWRITE), page 0 recorded
  r.validate();
  let windows = 0;
  r.machine.stepHook = (kind) => {
    if (kind !== Step.MkwriteReturned) return;
    windows++;
    r.validate(); // wp finds the PTE read-only already, the bit moves to the resource
  };
  r.write(1, 1, 2);
  r.machine.stepHook = null;
  r.write(1, 1, 3);
  r.validate();
  r.validate();
  return { windows, differing: r.differing(), bits: r.tracker.bitmap.toArray() };
}

test('the mkwrite window: a scan after page_mkwrite released the reservation and before the PTE is writable loses the page (vmwgfx order); finishing under the reservation closes it', () => {
  const kernel = scanInMkwriteWindow({ mkwriteFinishesUnderReservation: false });
  assert.equal(kernel.windows, 1);
  assert.deepEqual(kernel.differing, [1], 'the faulting write and the later one never reach the device');
  const fixed = scanInMkwriteWindow({});
  assert.equal(fixed.windows, 0, 'the handler made the PTE writable itself: no window');
  assert.deepEqual(fixed.differing, []);
});
