import { createHash } from 'node:crypto';
import type { DataRange } from '../../protocol/index.js';
import { type Mm, VM_READ, VM_WRITE } from '../core/index.js';
import { SurfaceResource } from '../driver/surface.js';
import type { MainJobView, WorkloadTap } from '../workload/index.js';
import { compactData } from './data.js';
import { type Data, LIMITS, type TraceEvent } from './format.js';

/** Where recorded events go: a TraceFileWriter, or anything with the same method. */
export interface TraceSink {
  event(e: TraceEvent): void;
  /** Resolves once the sink has room again (a file's stream buffer drained); the recorder waits for it between frames. */
  drained?(): Promise<void>;
}

/** Payloads whose compact form is at least this long are stored once, as blobs, and referred to. */
const BLOB_MIN_BYTES = 64;
/** Gaps between frames shorter than this are not recorded as think time. */
const MIN_THINK_MICROS = 50;

/**
 * Records the main job as a trace: at `start` the BOs, their surfaces and
 * buffers and every process's mapping of them, as the driver has them; then
 * each CPU write and device-side write as it is made, every flush (the end
 * of a frame), every coherence verification, and the time between frames.
 *
 * Payloads are stored compactly: runs of equal pixels or bytes as runs, and
 * any payload seen before (a scrolled text row, a sprite row) as a reference
 * to a blob holding it — blob ids are reused round-robin, so the recorder's
 * memory stays bounded (a table of 65,536 content hashes).
 */
export class TraceRecorder implements WorkloadTap {
  private readonly processes = new Map<Mm, number>();
  private readonly blobIds = new Map<string, number>();
  private readonly blobKeys: Array<string | undefined> = [];
  private nextBlob = 0;
  private started = false;
  /** performance.now() of the last flush, until the next event records the gap. */
  private idleSince: number | null = null;

  constructor(private readonly sink: TraceSink, private readonly description = 'vgpu-dirty main job') {}

  start(job: MainJobView): void {
    const { driver, machine } = job;
    const ps = machine.pageSize;
    const bos = [...driver.space.all];
    const vmas = bos.flatMap((bo) => [...bo.mapping.vmasIntersecting(bo.offset, bo.pages)].map((vma) => ({ bo, vma })));
    for (const { vma } of vmas) if (!this.processes.has(vma.mm)) this.processes.set(vma.mm, this.processes.size);
    this.emit({ type: 'start', pageSize: ps, cpus: machine.cpus.length, processes: Math.max(1, this.processes.size), description: this.description });
    for (const bo of bos) {
      this.emit({ type: 'bo', bo: bo.id, size: bo.size });
      for (const res of bo.resources) {
        if (res instanceof SurfaceResource) {
          this.emit({ type: 'surface', bo: bo.id, offset: res.offset, width: res.width, height: res.height, bytesPerPixel: res.bytesPerPixel, rowPitch: res.rowPitch });
        } else {
          this.emit({ type: 'buffer', bo: bo.id, offset: res.offset, size: res.size });
        }
      }
    }
    vmas.forEach(({ bo, vma }, map) => {
      const first = Math.max(vma.pgoff, bo.offset);
      const end = Math.min(vma.pgoffEnd, bo.offset + bo.pages);
      const prot = vma.flags & VM_WRITE ? 'rw' : vma.flags & VM_READ ? 'r' : 'none';
      this.emit({ type: 'map', map, process: this.processes.get(vma.mm)!, bo: bo.id, firstPage: first - bo.offset, pages: end - first, address: vma.addressOf(first), prot });
    });
    this.started = true;
  }

  cpuWrite(cpu: number, mm: Mm, address: number, data: Uint8Array): void {
    const process = this.processes.get(mm);
    if (!this.started || process === undefined) throw new Error('the recorder saw a write before the run started, or to a process it was not shown');
    this.event({ type: 'write', cpu, process, address, data: this.payload(data) });
  }

  deviceWrite(bo: number, ranges: readonly DataRange[]): void {
    for (const [offset, data] of ranges) this.event({ type: 'deviceWrite', bo, offset, data: this.payload(data) });
  }

  /**
   * Between frames the run waits for the sink: a disk slower than the run
   * would otherwise let a long recording pile up in memory.
   */
  async frame(): Promise<void> {
    await this.sink.drained?.();
  }

  flush(): void {
    this.event({ type: 'flush' });
    this.idleSince = performance.now();
  }

  verified(): void {
    this.event({ type: 'verify' });
  }

  /** An event of the run; the time since the last flush goes first, as think time. */
  private event(e: TraceEvent): void {
    if (this.idleSince !== null) {
      const micros = Math.round((performance.now() - this.idleSince) * 1000);
      this.idleSince = null;
      if (micros >= MIN_THINK_MICROS) this.emit({ type: 'think', micros });
    }
    this.emit(e);
  }

  private emit(e: TraceEvent): void {
    this.sink.event(e);
  }

  private payload(bytes: Uint8Array): Data {
    const compact = compactData(bytes);
    const size = compact.kind === 'runs' ? compact.counts.length * (compact.unitSize + 2) : bytes.length;
    if (size < BLOB_MIN_BYTES) return compact;
    const key = createHash('sha1').update(bytes).digest('base64');
    let id = this.blobIds.get(key);
    if (id === undefined) {
      id = this.nextBlob;
      this.nextBlob = (this.nextBlob + 1) % LIMITS.blobIds;
      const old = this.blobKeys[id];
      if (old !== undefined) this.blobIds.delete(old);
      this.blobKeys[id] = key;
      this.blobIds.set(key, id);
      this.emit({ type: 'blob', id, data: compact.kind === 'literal' ? { kind: 'literal', bytes: bytes.slice() } : compact });
    }
    return { kind: 'blob', id };
  }
}
