import {
  InvalidArgumentError, type Machine, type MmapOptions, type Mm, type Vma,
} from '../core/index.js';
import { type DeviceWrite, type DigestData, type ReadbackData, type Span, DIGEST_BYTES, pageDigests } from '../../protocol/index.js';
import { DeviceError, DeviceLostError } from './errors.js';
import { Bo, BoSpace } from './bo.js';
import type { BoStore } from './bo-store.js';
import { DEFAULT_DIRTY_CONFIG, type DirtyConfig } from './config.js';
import { type ConnectOptions, DeviceConnection, type ConnectionOptions } from './connection.js';
import type { Definition } from './definition.js';
import { zapBoPages } from './dirty-tracker.js';
import type { DirtyStrategy, TrackerEnv } from './strategies/contract.js';
import { callStrategy, checkStrategy, checkTracker, StrategyError } from './strategies/loader.js';
import { adaptiveStrategy } from './strategies/vmwgfx.js';
import { RefusedDestroys } from './refused-destroys.js';
import { BufferResource, type Resource } from './resource.js';
import { SurfaceResource, type SurfaceLayout } from './surface.js';
import { boVmOps } from './vm-ops.js';
import { type FlushResult, WritebackEngine, type WritebackOptions } from './writeback.js';

export interface DriverOptions {
  machine: Machine;
  /** ws:// URL of the device. */
  url: string;
  token?: string;
  dirty?: Partial<DirtyConfig>;
  /**
   * How BOs are dirty-tracked (default: adaptive, the vmwgfx tracker). A
   * built-in or a user's strategy (resolveStrategy turns a name or module
   * path into one). It decides the BO memory's kind (PFN map or shmem).
   */
  strategy?: DirtyStrategy;
  writeback?: WritebackOptions;
  /** Pages of the device address space (default: all physical frames). */
  capacityPages?: number;
  /** Reconnect with backoff after an unexpected close (default true). */
  reconnect?: boolean;
  /** Bounds of Driver.connect: timeout (default 10 s), attempt limit, AbortSignal. */
  connect?: ConnectOptions;
  /**
   * Longest wait for a fence or a reply (default 30 s): a device silent for longer is
   * treated as lost (pending flushes reject with DeviceLostError, then reconnect and resync).
   */
  fenceTimeoutMs?: number;
  log?: (line: string) => void;
  connection?: Partial<ConnectionOptions>;
}

export interface CoherenceReport {
  ok: boolean;
  /** BO pages whose device copy differs from guest memory. */
  differing: number[];
  /** Pages the device changed that guest memory has not read back yet (not compared). */
  pendingReadback: number[];
  fence: number;
}

/**
 * The vmwgfx-style driver: BOs in one device address space, mapped into
 * simulated processes; per-BO dirty tracking; resources that turn dirty pages
 * into DMA; the writeback engine; read coherence when the device writes; and
 * reconnect with full resync (every BO and surface redefined, every resource
 * uploaded again) on a fresh device session.
 */
export class Driver {
  readonly space: BoSpace;
  readonly conn: DeviceConnection;
  readonly writeback: WritebackEngine;
  readonly config: DirtyConfig;
  readonly strategy: DirtyStrategy;
  /** Device sessions that needed a full resync (reconnects). */
  resyncs = 0;
  readbacks = 0;
  private readonly bosById = new Map<number, Bo>();
  private readonly refusedDestroys: RefusedDestroys;
  private readonly surfaces: SurfaceResource[] = [];
  private nextSid = 1;
  private readonly trackerEnv: TrackerEnv;

  private constructor(readonly machine: Machine, readonly options: DriverOptions) {
    this.config = { ...DEFAULT_DIRTY_CONFIG, ...options.dirty };
    this.strategy = checkStrategy(options.strategy ?? adaptiveStrategy, options.strategy?.name ?? 'adaptive');
    if (this.strategy.machine?.softDirty === true && !machine.config.softDirty) {
      throw new StrategyError('unsupported', this.strategy.name, `strategy '${this.strategy.name}' needs a machine with soft-dirty tracking (MachineOptions.softDirty; strategyMachineOptions gives it)`);
    }
    const shared = new Map<string, unknown>();
    this.trackerEnv = {
      config: this.config,
      shared: <T>(key: string, make: () => T): T => {
        if (!shared.has(key)) shared.set(key, make());
        return shared.get(key) as T;
      },
    };
    const ops = boVmOps(() => this.space, this.config, { readback: (bo) => this.readback(bo) });
    const mapping = machine.createMapping(options.capacityPages ?? machine.phys.nrFrames, { ops, name: 'device', populate: false, kind: this.strategy.backing ?? 'device' });
    this.space = new BoSpace(machine, mapping);
    this.conn = new DeviceConnection({
      url: options.url,
      token: options.token,
      reconnect: options.reconnect ?? true,
      replyTimeoutMs: options.fenceTimeoutMs,
      onSession: () => this.resync(),
      onDeviceWrite: (m) => this.onDeviceWrite(m),
      log: options.log,
      ...options.connection,
    });
    this.refusedDestroys = new RefusedDestroys(this.conn, options.log);
    this.writeback = new WritebackEngine(this.conn, () => this.space.all, {
      ...options.writeback,
      // Guest memory must hold the device's changes before any page of it is read for upload,
      // and the device must know an object before anything is uploaded to it.
      beforeRound: () => {
        // Nothing to read back (the common case): no await, the round goes on at once.
        if (this.space.all.some(awaitsReadback)) return this.readbackAll().then(() => this.defineDue());
        this.defineDue();
      },
    });
  }

  /**
   * Connect to the device. Rejects with ConnectTimeoutError when no session comes
   * within `options.connect.timeoutMs` (default 10 s) or its attempts, with
   * DeviceRefusedError at once when the device refuses for good (bad token,
   * unsupported version), or with the signal's reason on abort.
   */
  static async connect(options: DriverOptions): Promise<Driver> {
    const d = new Driver(options.machine, options);
    const welcome = await d.conn.connect(options.connect);
    if (welcome.pageSize !== options.machine.pageSize) {
      await d.close();
      throw new InvalidArgumentError(`device page size ${welcome.pageSize} differs from the machine's ${options.machine.pageSize}`);
    }
    return d;
  }

  /**
   * A BO of `size` bytes, defined on the device, dirty-tracked by the
   * driver's strategy unless `tracked` is false. `store` puts it in other
   * memory than the machine's frames (real memory: RealBoStore); the
   * strategy must be able to track that (DirtyStrategy.realMemory).
   */
  createBo(size: number, opts: { tracked?: boolean; store?: (pages: number) => BoStore } = {}): Bo {
    this.requireSession();
    const tracked = opts.tracked ?? true;
    if (opts.store !== undefined && tracked && this.strategy.realMemory !== true) {
      throw new StrategyError('unsupported', this.strategy.name, `strategy '${this.strategy.name}' cannot track BOs in real memory (uffd-wp and full can)`);
    }
    const bo = this.space.create(size, opts.store);
    try {
      if (tracked) bo.tracker = checkTracker(callStrategy(this.strategy, 'createTracker', () => this.strategy.createTracker(bo, this.trackerEnv)), this.strategy);
    } catch (e) {
      this.space.destroy(bo);
      throw e;
    }
    this.bosById.set(bo.id, bo);
    this.defineBo(bo);
    return bo;
  }

  /** A buffer resource over bytes [offset, offset + size) of bo (default: the whole BO). */
  createBufferResource(bo: Bo, offset = 0, size = bo.size - offset): BufferResource {
    const res = new BufferResource(bo, offset, size);
    bo.attach(res);
    return res;
  }

  /** A surface resource over bo at a page-aligned offset, defined on the device. */
  createSurface(bo: Bo, offset: number, layout: SurfaceLayout): SurfaceResource {
    this.requireSession();
    const res = new SurfaceResource(bo, offset, this.nextSid, layout);
    this.nextSid++;
    bo.attach(res);
    this.surfaces.push(res);
    // A device without surfaces gets the surface's bytes as plain writes at their BO offsets.
    if (this.conn.offers('surfaces')) this.defineSurface(res);
    return res;
  }

  /**
   * Map the whole BO (or opts.pages from opts.pgoff within it) into a process.
   * When the tracker refuses the mapping (mapped throws: uffd-wp in a process
   * whose userfaultfd is sync-mode), the pages are unmapped again before the
   * error is thrown: a refused mmap leaves the process as it was.
   */
  mmap(mm: Mm, bo: Bo, opts: Partial<MmapOptions> = {}): Vma {
    const pgoff = opts.pgoff ?? 0;
    const pages = opts.pages ?? bo.pages - pgoff;
    if (pgoff < 0 || pgoff + pages > bo.pages) throw new InvalidArgumentError(`pages [${pgoff}, ${pgoff + pages}) outside BO ${bo.id}`);
    if (bo.store.kind === 'real') throw new InvalidArgumentError(`BO ${bo.id} is in real memory: write it with cpuWrite, not through a simulated mapping`);
    const vma = mm.mmap(this.space.mapping, { ...opts, pgoff: bo.offset + pgoff, pages });
    const tracker = bo.tracker;
    if (tracker?.mapped === undefined) return vma;
    try {
      callStrategy(this.strategy, 'mapped', () => tracker.mapped!(vma));
    } catch (e) {
      // Only the pages mapped here: mm.mmap may have merged them into an older VMA.
      mm.munmap(vma.addressOf(bo.offset + pgoff), pages * mm.pageSize);
      throw e;
    }
    return vma;
  }

  /**
   * A CPU store into a BO in real memory (a JS store into its memfd, which
   * the running kernel tracks). Pages the device changed are read back
   * first, as the fault path makes a mapped BO's accesses wait.
   */
  async cpuWrite(bo: Bo, offset: number, data: Uint8Array): Promise<void> {
    if (bo.store.kind !== 'real') throw new InvalidArgumentError(`BO ${bo.id} is in simulated memory: write it through a mapping (Cpu.write)`);
    const [from, to] = bo.pageSpan(offset, data.length);
    while (bo.deviceNewer.findNextSet(from, to) < to) await this.readback(bo);
    bo.copyIn(offset, data);
  }

  /** Unmap the BO's pages from every process (not a neighbour's that a VMA may also map) and forget it on both sides. */
  destroyBo(bo: Bo): void {
    for (const v of [...bo.mapping.vmasIntersecting(bo.offset, bo.pages)]) {
      const s = v.addressOf(Math.max(bo.offset, v.pgoff));
      const e = v.addressOf(Math.min(bo.offset + bo.pages, v.pgoffEnd));
      v.mm.munmap(s, e - s);
    }
    for (const res of [...bo.resources]) {
      bo.detach(res);
      const i = this.surfaces.indexOf(res as SurfaceResource);
      if (i >= 0) {
        this.surfaces.splice(i, 1);
        const sid = (res as SurfaceResource).sid;
        if (this.conn.offers('surfaces')) this.refusedDestroys.send({ op: 'destroySurface', sid }, `destroySurface surface ${sid}`);
      }
    }
    this.refusedDestroys.send({ op: 'destroyBo', bo: bo.id }, `destroyBo BO ${bo.id}`);
    this.bosById.delete(bo.id);
    this.space.destroy(bo);
  }

  flush(): Promise<FlushResult> {
    return this.writeback.flush();
  }

  /**
   * Compare the device copy of bo with guest memory, page by page, at a fence.
   * Call it when no CPU writes to bo concurrently. Only bytes inside a
   * resource are ever uploaded: a page whose pitch padding or uncovered bytes
   * were written differs by design.
   */
  async verifyCoherent(bo: Bo): Promise<CoherenceReport> {
    const { fence } = await this.flush();
    const ps = this.machine.pageSize;
    const pendingReadback = bo.deviceNewer.toArray();
    const differing: number[] = [];
    // Pages per request: the device's digest count limit, or what one readback reply can carry.
    const w = this.conn.welcome;
    const byDigest = this.conn.offers('digest');
    const perRequest = byDigest
      ? Math.max(1, w?.maxRanges ?? 1024)
      : Math.max(1, Math.floor(((w?.maxMessageSize ?? 16 << 20) - READBACK_REPLY_OVERHEAD - READBACK_SPAN_OVERHEAD) / ps));
    const guest = new Uint8Array(Math.min(perRequest, bo.pages) * ps);
    for (let first = 0; first < bo.pages; first += perRequest) {
      const pages = Math.min(perRequest, bo.pages - first);
      const offset = first * ps;
      const length = Math.min(pages * ps, bo.size - offset);
      bo.copyOut(offset, guest, 0, length);
      const differs = byDigest ? await this.digestDiffers(bo, offset, guest.subarray(0, length)) : await this.bytesDiffer(bo, offset, guest.subarray(0, length));
      for (let i = 0; i < pages; i++) if (differs(i) && !bo.deviceNewer.test(first + i)) differing.push(first + i);
    }
    return { ok: differing.length === 0, differing, pendingReadback, fence };
  }

  /** Compare guest bytes at `offset` with the device's page digests (feature digest). */
  private async digestDiffers(bo: Bo, offset: number, guest: Uint8Array): Promise<(page: number) => boolean> {
    const ps = this.machine.pageSize;
    const reply = await this.conn.request<DigestData>({ op: 'digest', bo: bo.id, offset, length: guest.length });
    const local = pageDigests(guest, ps);
    return (i) => {
      const a = local.subarray(i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES);
      const b = reply.hashes.subarray(i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES);
      return !a.every((v, j) => v === b[j]);
    };
  }

  /** Compare guest bytes at `offset` with the device's own, read back (a device without digest). */
  private async bytesDiffer(bo: Bo, offset: number, guest: Uint8Array): Promise<(page: number) => boolean> {
    const ps = this.machine.pageSize;
    const reply = await this.conn.request<ReadbackData>({ op: 'readback', bo: bo.id, ranges: [[offset, guest.length]] });
    const device = reply.ranges[0]![1];
    return (i) => {
      const a = guest.subarray(i * ps, (i + 1) * ps);
      const b = device.subarray(i * ps, (i + 1) * ps);
      return a.length !== b.length || !a.every((v, j) => v === b[j]);
    };
  }

  bo(id: number): Bo | undefined {
    return this.bosById.get(id);
  }

  async close(): Promise<void> {
    this.writeback.close();
    await this.conn.close();
    // Real memory is mapped into this process: give it back (nothing reads it once writeback is closed).
    for (const bo of this.space.all) if (bo.store.kind === 'real') bo.store.release();
  }

  /** A fresh device session knows nothing: define everything again and upload it all (resync). */
  private resync(): void {
    this.refusedDestroys.clear();
    if (this.bosById.size === 0) return;
    this.resyncs++;
    for (const bo of this.bosById.values()) {
      this.defineBo(bo);
      bo.forgetDeviceWrites();
      for (const res of bo.resources) res.markAllDirty();
    }
    if (this.conn.offers('surfaces')) for (const s of this.surfaces) this.defineSurface(s);
  }

  /**
   * Define again every object whose define the device refused and whose backoff
   * ran out (BOs before the surfaces on them). The device's copy of it is empty:
   * everything in it is uploaded again.
   */
  private defineRefused(): void {
    if (!this.conn.isOpen) return;
    const now = performance.now();
    for (const bo of this.bosById.values()) {
      if (!bo.definition.dueForRetry(now)) continue;
      this.options.log?.(`defining BO ${bo.id} again after: ${bo.definition.refusal!.message}`);
      this.defineBo(bo);
      for (const res of bo.resources) res.markAllDirty();
    }
    for (const s of this.surfaces) {
      if (!this.conn.offers('surfaces')) break;
      if (!s.definition.dueForRetry(now) || s.bo.definition.refused) continue;
      this.options.log?.(`defining surface ${s.sid} again after: ${s.definition.refusal!.message}`);
      this.defineSurface(s);
      s.markAllDirty();
    }
  }

  private defineBo(bo: Bo): void {
    this.sendDefine(bo.definition, `defineBo BO ${bo.id}`, { op: 'defineBo', bo: bo.id, size: bo.size });
  }

  private defineSurface(s: SurfaceResource): void {
    this.sendDefine(s.definition, `defineSurface surface ${s.sid}`, {
      op: 'defineSurface', sid: s.sid, bo: s.bo.id, offset: s.offset, width: s.width, height: s.height, depth: s.depth,
      bytesPerPixel: s.bytesPerPixel, rowPitch: s.rowPitch, imagePitch: s.imagePitch,
    });
  }

  /** Send a define and follow its outcome: a refusal keeps the object from uploads until it is defined again. */
  private sendDefine(def: Definition, command: string, cmd: Parameters<DeviceConnection['send']>[0]): void {
    const seq = this.conn.send(cmd);
    def.sent();
    this.conn.watch(seq, {
      failed: (e) => {
        this.options.log?.(`device refused ${command}: ${e.detail}`);
        def.refuse(new DeviceError(e.code, e.detail, e.seq, command));
      },
      applied: () => def.applied(),
    });
  }

  /**
   * The device changed bytes of a BO: the tracker keeps what the PTEs of
   * those pages hold, and every CPU mapping of them is zapped, so the next
   * access faults and waits for the readback. Real memory has no simulated
   * mappings: cpuWrite waits instead.
   */
  private onDeviceWrite(msg: DeviceWrite): void {
    const bo = this.bosById.get(msg.bo);
    if (bo === undefined) return;
    for (const [offset, data] of msg.ranges) {
      const [from, to] = bo.pageSpan(offset, data.length);
      if (from >= to) continue;
      if (bo.store.kind === 'simulated') {
        bo.tracker?.beforeUnmap(from, to);
        zapBoPages(bo, from, to);
      }
      bo.noteDeviceWrite(offset, data.length);
    }
  }

  /** Read back every BO with device changes guest memory lacks. */
  private async readbackAll(): Promise<void> {
    for (const bo of this.space.all) if (awaitsReadback(bo)) await this.readback(bo);
  }

  /** Send again what the device refused to destroy or define, now that it may have room. */
  private defineDue(): void {
    this.refusedDestroys.resendDue(); // frees device memory the defines below may need
    this.defineRefused();
  }

  /**
   * Copy exactly the byte ranges the device changed into guest memory. Only
   * those bytes: the CPU's own not-yet-uploaded writes elsewhere on the same
   * pages stay, and go to the device with the next flush. The CPU could not
   * write the changed pages since the announcement (they were zapped), so
   * the device's bytes are the newest. Never rejects: when the session is
   * lost the device's changes are lost with it and guest memory stays
   * authoritative (resync).
   */
  private readback(bo: Bo): Promise<void> {
    if (bo.readback !== null) return bo.readback;
    const run = async (): Promise<void> => {
      try {
        while (bo.deviceRanges.length > 0) {
          bo.deviceRanges = mergeRanges(bo.deviceRanges);
          const batch = this.takeReadbackBatch(bo);
          try {
            const reply = await this.conn.request<ReadbackData>({ op: 'readback', bo: bo.id, ranges: batch });
            for (const [offset, data] of reply.ranges) bo.copyIn(offset, data);
            this.readbacks++;
          } catch (e) {
            // Not read: keep the ranges, in front of any that arrived meanwhile.
            if (this.conn.isOpen) bo.deviceRanges.unshift(...batch);
            throw e;
          }
        }
      } catch (e) {
        this.options.log?.(`readback of BO ${bo.id} failed: ${(e as Error).message}`);
        // A lost session loses the device's changes with it: guest memory is authoritative (resync).
        if (!this.conn.isOpen) bo.forgetDeviceWrites();
      }
      bo.settleDeviceWrites();
    };
    bo.readback = run().finally(() => {
      bo.readback = null;
    });
    return bo.readback;
  }

  /**
   * The leading ranges whose reply fits the device's limits: at most maxRanges
   * spans and maxMessageSize bytes (data plus per-range framing, docs/protocol.md).
   * A single range longer than that is split.
   */
  private takeReadbackBatch(bo: Bo): Span[] {
    const w = this.conn.welcome;
    const maxSpans = w?.maxRanges ?? 1024;
    const budget = (w?.maxMessageSize ?? 16 << 20) - READBACK_REPLY_OVERHEAD;
    const out: Span[] = [];
    let bytes = 0;
    while (bo.deviceRanges.length > 0 && out.length < maxSpans) {
      const [offset, length] = bo.deviceRanges[0]!;
      const room = budget - bytes - READBACK_SPAN_OVERHEAD;
      if (room <= 0) break;
      if (length <= room) {
        out.push([offset, length]);
        bo.deviceRanges.shift();
        bytes += length + READBACK_SPAN_OVERHEAD;
      } else {
        out.push([offset, room]);
        bo.deviceRanges[0] = [offset + room, length - room];
        break;
      }
    }
    return out;
  }

  /** Objects are defined on the device as they are created: refuse before changing anything. */
  private requireSession(): void {
    if (!this.conn.isOpen) throw new DeviceLostError('no device session: cannot define objects now');
  }

}

/** Whether guest memory lacks device changes of bo (a readback in flight has taken its ranges already: it counts too). */
function awaitsReadback(bo: Bo): boolean {
  return bo.deviceRanges.length > 0 || bo.readback !== null;
}

/** Bytes of a readbackData reply besides its data: the map and its fixed fields, and per range. */
const READBACK_REPLY_OVERHEAD = 64;
const READBACK_SPAN_OVERHEAD = 16;

/** Sort and coalesce overlapping or touching [offset, length] ranges. */
export function mergeRanges(ranges: ReadonlyArray<[number, number]>): Array<[number, number]> {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const [o, l] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && o <= last[0] + last[1]) last[1] = Math.max(last[1], o + l - last[0]);
    else out.push([o, l]);
  }
  return out;
}

export type { Resource };
