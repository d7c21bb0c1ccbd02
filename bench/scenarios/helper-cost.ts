import {
  Bitmap, cleanRecordSharedMappingRange, Machine, type Mapping, type Mm, PAGE_IS_WRITTEN, PM_SCAN_WP_MATCHING, SimWpMemory,
  type Vma, type WpMemory, wpSharedMappingRange,
} from '../../src/index.js';
import { LinuxWpMemory, probeLinuxWp } from '../../src/native/index.js';
import { makeRow, targets, type Row } from '../lib/result.js';
import { type Context, MiB, PAGE, type Scenario } from '../lib/scenario.js';
import { repeat, timeNs } from '../lib/stats.js';

/** PTE slots per page table: the walker visits every slot of a populated table. */
const PTES_PER_TABLE = 512;
/**
 * Unrecorded calls of each helper before anything is measured: a walk reaches
 * V8's optimizing tier only after a dozen or more calls (measured: ~20 ns/PTE
 * on the first call, ~2 ns/PTE from about the fifteenth).
 */
const JIT_WARMUP_CALLS = 25;

type Helper = 'cleanRecord' | 'wp';

/**
 * Scenario 2: cost of the two dirty helpers over a whole BO, per PTE the walk
 * visits and per page of the range, at 0, 1 and 100 % dirty on a fully mapped
 * BO and with only 1 % of it mapped — cost follows populated page tables.
 * Then the userspace cousin, async uffd-wp scan-and-protect (PAGEMAP_SCAN
 * with PM_SCAN_WP_MATCHING), on the same size: simulated, and on the running
 * Linux kernel when the optional backend is available, with the real
 * write-fault cost.
 */
export const helperCost: Scenario = {
  id: '2',
  title: 'Helper cost',
  async run(ctx: Context): Promise<Row[]> {
    const pages = (ctx.quick ? 64 * MiB : 1024 * MiB) / PAGE;
    const machine = new Machine({ cpus: 2, memoryBytes: pages * PAGE + 64 * MiB });
    const bo = machine.createMapping(pages, { name: 'bo' });
    const cpu = machine.cpus[0]!;
    const bitmap = new Bitmap(pages);
    const clean = () => cleanRecordSharedMappingRange(bo, 0, pages, 0, bitmap, { start: 0, end: 0 });
    const wp = () => wpSharedMappingRange(bo, 0, pages);
    const helpers: Record<Helper, () => number> = { cleanRecord: clean, wp };
    /** Make every `stride`-th page dirty (D bit) or writable again, through CPU writes. */
    const touch = (mm: Mm, vma: Vma, stride: number) => {
      for (let p = 0; p < pages; p += stride) cpu.write8(mm, vma.start + p * PAGE, p & 0xff);
    };
    const measure = async (helper: Helper, before: () => void) =>
      repeat(ctx.warmup, ctx.runs, () => {
        before();
        bitmap.clearAll();
        return timeNs(helpers[helper]);
      });
    const rows: Row[] = [];
    const size = `${(pages * PAGE) / MiB} MiB BO (${pages} pages)`;

    // Fully mapped: every page faulted in, so the walk visits `pages` PTEs.
    ctx.log('  2: fully mapped (faulting in)');
    const full = mapAndFault(machine, bo, pages);
    const dirtyCases = [['0 %', 0], ['1 %', 100], ['100 %', 1]] as const;
    for (let i = 0; i < JIT_WARMUP_CALLS; i++) (clean(), wp());
    for (const h of ['cleanRecord', 'wp'] as const) {
      for (const [label, stride] of dirtyCases) {
        ctx.log(`  2: ${h} ${label} dirty`);
        helpers[h]();
        const ns = await measure(h, () => stride > 0 && touch(full.mm, full.vma, stride));
        rows.push(makeRow('2', `${h}, fully mapped, ${label} dirty`, {
          unit: 'ns/PTE visited', samples: ns.map((t) => t / pages),
          // The target is for cleanRecord; wp is reported alongside.
          ...(h === 'cleanRecord' ? { target: targets.atMost(2, 'ns/PTE') } : {}),
          note: `${size}; PTEs visited = pages of range, so ns/PTE = ns/page`,
        }));
      }
    }
    full.mm.munmap(full.vma.start, full.vma.end - full.vma.start);

    // 1 % of the pages mapped (one contiguous run), helpers over the whole BO.
    ctx.log('  2: 1 % mapped');
    const sparse = mapAndFault(machine, bo, Math.ceil(pages / 100));
    const visitedSparse = visitedSlots(sparse.vma, sparse.faulted);
    for (const h of ['cleanRecord', 'wp'] as const) {
      clean();
      const ns = await measure(h, () => {});
      rows.push(
        makeRow('2', `${h}, 1 % mapped, 0 % dirty`, { unit: 'ns/PTE visited', samples: ns.map((t) => t / visitedSparse), note: `${size}; ${visitedSparse} PTE slots in populated tables` }),
        makeRow('2', `${h}, 1 % mapped, 0 % dirty`, { unit: 'ns/page of range', samples: ns.map((t) => t / pages) }),
      );
    }

    rows.push(...(await uffdWpRows(ctx, pages, size)));
    return rows;
  },
};

/** PAGEMAP_SCAN + write-protect over a fully populated region: simulated, then the real kernel. */
async function uffdWpRows(ctx: Context, pages: number, size: string): Promise<Row[]> {
  const rows: Row[] = [];
  const sim = new SimWpMemory({ pages });
  ctx.log('  2: uffd-wp, simulated');
  rows.push(...(await scanRows(ctx, sim, 'simulated', size)));
  sim.close();
  const probe = await probeLinuxWp();
  if (!probe.ok) {
    ctx.log(`  2: real kernel unavailable: ${probe.reason}`);
    rows.push(makeRow('2', 'uffd-wp scan+protect, Linux', { unit: 'ns/PTE visited', samples: [], note: `real kernel unavailable: ${probe.reason}` }));
    return rows;
  }
  ctx.log('  2: uffd-wp, Linux');
  const real = await LinuxWpMemory.open({ pages });
  try {
    rows.push(...(await scanRows(ctx, real, 'Linux', size)));
    // Write-fault cost: the first store to each protected page takes a real
    // fault; the baseline is the same stores once the pages are writable.
    const touchAll = () => timeNs(() => {
      const b = real.bytes;
      for (let p = 0; p < pages; p++) b[p * PAGE] = p & 0xff;
    }) / pages;
    const faulting = await repeat(ctx.warmup, ctx.runs, () => {
      real.collectWritten(PAGES_PER_VECTOR);
      return touchAll();
    });
    const plain = await repeat(ctx.warmup, ctx.runs, touchAll);
    rows.push(makeRow('2', 'uffd-wp first store to a protected page, Linux', {
      unit: 'ns/page', samples: faulting, baseline: { name: 'store to a writable page', samples: plain },
      note: `one byte per page from JS, ${pages} pages; the fault is resolved by the kernel (async mode)`,
    }));
  } finally {
    real.close();
  }
  return rows;
}

/** Output vector for a whole-range scan: the kernel copies out 512 regions per pass. */
const PAGES_PER_VECTOR = 1 << 16;

async function scanRows(ctx: Context, m: WpMemory, label: string, size: string): Promise<Row[]> {
  const pages = m.pages;
  const scanProtect = () => {
    // Loop from walk_end while the vector fills, as a caller must.
    for (let start = 0; start < pages; ) {
      const r = m.scan({ start, end: pages, flags: PM_SCAN_WP_MATCHING, vecLen: PAGES_PER_VECTOR, categoryMask: PAGE_IS_WRITTEN, returnMask: PAGE_IS_WRITTEN });
      if (r.regions.length < PAGES_PER_VECTOR) break;
      start = r.walkEnd;
    }
  };
  const touch = (stride: number) => {
    const one = new Uint8Array(1);
    for (let p = 0; p < pages; p += stride) {
      one[0] = p & 0xff;
      m.write(p * PAGE, one);
    }
  };
  m.register(0, pages);
  touch(1); // fully populated: every PTE present
  // Warm up the paths that find written pages too, not only the all-clean loop.
  for (let i = 0; i < JIT_WARMUP_CALLS; i++) {
    if (i % 3 === 1) touch(100);
    scanProtect();
  }
  const rows: Row[] = [];
  for (const [pct, stride] of [['0 %', 0], ['1 %', 100], ['100 %', 1]] as const) {
    ctx.log(`  2: uffd-wp ${label} ${pct} written`);
    const ns = await repeat(ctx.warmup, ctx.runs, () => {
      if (stride > 0) touch(stride);
      return timeNs(scanProtect);
    });
    rows.push(makeRow('2', `uffd-wp scan+protect, ${label}, ${pct} written`, {
      unit: 'ns/PTE visited', samples: ns.map((t) => t / pages),
      ...(stride === 0 ? { note: `${size}, memfd-like shmem region fully populated; PAGEMAP_SCAN(WP_MATCHING, WRITTEN) over all of it` } : {}),
    }));
  }
  return rows;
}

/** Map the whole BO into a fresh process and fault in its first `faulted` pages (fault-around maps 16 at a time). */
function mapAndFault(machine: Machine, bo: Mapping, faulted: number): { mm: Mm; vma: Vma; faulted: number } {
  const mm = machine.createMm();
  const vma = mm.mmap(bo, { pages: bo.nrPages });
  const cpu = machine.cpus[1]!;
  for (let p = 0; p < faulted; p++) cpu.write8(mm, vma.start + p * PAGE, 1);
  return { mm, vma, faulted };
}

/** PTE slots of the tables that cover the first `faulted` pages of vma, clipped to the VMA. */
function visitedSlots(vma: Vma, faulted: number): number {
  const first = vma.start / PAGE;
  const end = vma.end / PAGE;
  const lo = Math.floor(first / PTES_PER_TABLE) * PTES_PER_TABLE;
  const hi = Math.ceil((first + faulted) / PTES_PER_TABLE) * PTES_PER_TABLE;
  return Math.min(hi, end) - Math.max(lo, first);
}
