import { type Device, startDevice } from '../../device/index.js';
import { ProtocolError } from '../../protocol/index.js';
import { AccessBlockedError, Machine, type Mm, type Vma } from '../core/index.js';
import type { Bo } from '../driver/bo.js';
import { Driver } from '../driver/driver.js';
import { DeviceLostError } from '../driver/errors.js';
import { BUILTIN_STRATEGIES } from '../driver/strategies/builtin.js';
import { strategyMachineOptions } from '../driver/strategies/loader.js';
import { HangError, until, within } from './bounded.js';
import { FaultInjector } from './injector.js';
import { type Difference, INVARIANTS, type Invariant, Oracle, type BoShadow } from './oracle.js';
import { type FaultKind, type Program, type ProgramOptions, type Step, formatStep, programFor } from './program.js';
import { Prng } from './prng.js';
import { type BoSpec, type MappingSpec, type World, worldFor } from './world.js';

export interface RunOptions extends ProgramOptions {
  /** Bound of every wait (invariant c), in ms (default 5000). */
  hangMs?: number;
  /** Time allowed to reach coherence once the faults stop, flushing every 16 ms (default 3000 ms). */
  convergeMs?: number;
  /** Receives one line per step and per flush outcome. */
  trace?: (line: string) => void;
}

export interface Violation {
  seed: number;
  /** Index of the program step during which it was seen (-1: set-up). */
  step: number;
  /** That step, as text. */
  op: string;
  invariant: Invariant;
  message: string;
  difference?: Difference;
  /** The command that replays the run. */
  replay: string;
}

export interface RunResult {
  seed: number;
  /** Steps executed, and those skipped because their object did not exist (its creation was refused). */
  steps: number;
  skipped: number;
  faults: Record<FaultKind, number>;
  flushesChecked: number;
  flushesRejected: number;
  /** Resolved flushes whose device session had already ended when they resolved (nothing left to compare). */
  flushesUnchecked: number;
  /** Pages found differing by invariants (a) and (b). */
  lostPages: number;
  hangs: number;
  deviceWrites: number;
  readbacks: number;
  resyncs: number;
  /** Synchronous writes refused with AccessBlockedError while the device was stalled (not retried). */
  blockedWrites: number;
  /** Flushes, and milliseconds, the driver needed to become coherent after the faults stopped. */
  convergedAfter: number | null;
  convergeMs: number | null;
  violation: Violation | null;
  ms: number;
}

interface BoHandle {
  bo: Bo;
  shadow: BoShadow;
}

interface VmaHandle {
  vma: Vma;
  bo: BoHandle;
}

const DEFAULTS = { hangMs: 5000, convergeMs: 3000 };
/** The calm phase flushes like a 60 Hz frame loop. */
const FRAME_MS = 16;

/** One seeded run: its world, its program, a device, a machine and a driver of its own. */
export class Run {
  readonly world: World;
  readonly program: Program;
  readonly result: RunResult;
  private readonly hangMs: number;
  private readonly convergeMs: number;
  private readonly trace: ((line: string) => void) | undefined;
  private readonly faults: boolean;
  private readonly oracle = new Oracle();
  private readonly bos: Array<BoHandle | null> = [];
  private readonly vmas: Array<VmaHandle | null> = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private device!: Device;
  private driver!: Driver;
  private machine!: Machine;
  private mms: Mm[] = [];
  private injector!: FaultInjector;
  private step = -1;
  /** Why the last flush was rejected (for a convergence failure). */
  private lastRejection = '';

  constructor(readonly seed: number, opts: RunOptions = {}) {
    this.world = worldFor(seed);
    this.program = programFor(this.world, opts);
    this.hangMs = opts.hangMs ?? DEFAULTS.hangMs;
    this.convergeMs = opts.convergeMs ?? DEFAULTS.convergeMs;
    this.trace = opts.trace;
    this.faults = opts.faults !== false;
    this.result = {
      seed, steps: 0, skipped: 0, faults: {} as Record<FaultKind, number>, flushesChecked: 0, flushesRejected: 0, flushesUnchecked: 0,
      lostPages: 0, hangs: 0, deviceWrites: 0, readbacks: 0, resyncs: 0, blockedWrites: 0, convergedAfter: null, convergeMs: null, violation: null, ms: 0,
    };
  }

  /** Set-up, every step (stopping at the first violation), tear-down. Never rejects. */
  async execute(): Promise<RunResult> {
    const t0 = performance.now();
    try {
      await this.setUp();
      for (let i = 0; i < this.program.steps.length && this.result.violation === null; i++) {
        this.step = i;
        const step = this.program.steps[i]!;
        this.trace?.(`step ${i}: ${formatStep(step)}`);
        await this.exec(step);
        this.result.steps++;
      }
    } catch (e) {
      this.fault(e);
    } finally {
      await this.tearDown();
      this.result.ms = performance.now() - t0;
    }
    return this.result;
  }

  /** An error nobody handled (the soak's process-level listener reports it here). */
  noteUnhandled(kind: string, err: unknown): void {
    this.violate(INVARIANTS.unhandled, `${kind}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  }

  private async setUp(): Promise<void> {
    const w = this.world;
    this.device = await within(startDevice({ port: 0, pageSize: w.machine.pageSize, limits: w.device.limits, fenceLatency: w.device.fenceLatency }), this.hangMs, 'device start');
    const strategy = BUILTIN_STRATEGIES[w.strategy];
    this.machine = new Machine({
      cpus: w.machine.cpus, arch: w.machine.arch, pageSize: w.machine.pageSize, tlbEntries: w.machine.tlbEntries, memoryBytes: w.machine.memoryBytes, ...strategyMachineOptions(strategy),
    });
    this.driver = await within(Driver.connect({
      machine: this.machine, url: this.device.url, strategy, dirty: w.dirty, writeback: w.writeback, connection: w.reconnect, fenceTimeoutMs: w.fenceTimeoutMs,
      // Room to place any BO first-fit however destroys fragmented the device address space.
      capacityPages: 4 * this.machine.phys.nrFrames,
      log: this.trace && ((line) => this.trace!(`  driver: ${line}`)),
    }), this.hangMs, 'connect');
    this.injector = new FaultInjector(this.device, this.driver, this.hangMs);
    for (let i = 0; i < w.processes; i++) this.mms.push(this.machine.createMm());
    let vma = 0;
    for (const spec of w.bos) {
      const handles = spec.mappings.map(() => vma++);
      this.createBo(this.bos.length, spec, handles);
    }
  }

  private async tearDown(): Promise<void> {
    const r = this.result;
    try {
      if (this.driver !== undefined) {
        r.readbacks = this.driver.readbacks;
        r.resyncs = this.driver.resyncs;
        await within(this.driver.close(), this.hangMs, 'driver close');
      }
      await Promise.allSettled(this.inFlight);
      if (this.injector !== undefined) await this.injector.unhog();
      if (this.device !== undefined) await within(this.device.close(), this.hangMs, 'device close');
    } catch (e) {
      this.fault(e);
    }
    if (this.injector !== undefined) r.faults = { ...this.injector.injected };
  }

  private async exec(step: Step): Promise<void> {
    switch (step.op) {
      case 'write':
        return this.write(step);
      case 'flush': {
        const done = this.flush();
        if (step.wait) await done;
        return;
      }
      case 'yield':
        for (let i = 0; i < step.ticks; i++) await Promise.resolve();
        return;
      case 'barrier':
        return this.barrier();
      case 'gpuWrite':
        await this.quiesce();
        return this.gpuWrite(step);
      case 'fault':
        await this.quiesce();
        return this.injector.arm(step.fault);
      case 'unhog':
        return this.injector.unhog();
      case 'createBo':
        this.createBo(step.bo, step.spec, step.vmas);
        return;
      case 'destroyBo': {
        const h = this.bos[step.bo];
        if (!h) return this.skip();
        this.driver.destroyBo(h.bo);
        this.oracle.destroyBo(h.shadow);
        this.bos[step.bo] = null;
        for (let i = 0; i < this.vmas.length; i++) if (this.vmas[i]?.bo === h) this.vmas[i] = null;
        return;
      }
      case 'munmap': {
        const h = this.vmas[step.vma];
        if (!h) return this.skip();
        const { vma } = h;
        const len = step.pages * this.world.machine.pageSize;
        vma.mm.munmap(step.part === 'tail' ? vma.end - len : vma.start, len);
        if (step.part === 'all') this.vmas[step.vma] = null;
        return;
      }
      case 'mmap': {
        const h = this.bos[step.bo];
        if (!h) return this.skip();
        this.map(step.vma, h, step.mapping);
        return;
      }
      case 'calm':
        return this.calm();
    }
  }

  /** A BO with its resources and mappings; refused (the handle stays empty) when there is no device session. */
  private createBo(handle: number, spec: BoSpec, vmaHandles: number[]): void {
    while (this.bos.length <= handle) this.bos.push(null);
    let bo: Bo;
    try {
      bo = this.driver.createBo(spec.size);
      for (const r of spec.resources) {
        if (r.kind === 'buffer') this.driver.createBufferResource(bo, r.offset, r.size);
        else this.driver.createSurface(bo, r.offset, r);
      }
    } catch (e) {
      if (e instanceof DeviceLostError) return this.skip();
      throw e;
    }
    const h: BoHandle = { bo, shadow: this.oracle.addBo(bo, handle, spec, this.world.machine.pageSize) };
    this.bos[handle] = h;
    spec.mappings.forEach((m, i) => this.map(vmaHandles[i]!, h, m));
  }

  private map(handle: number, bo: BoHandle, m: MappingSpec): void {
    this.vmas[handle] = { bo, vma: this.driver.mmap(this.mms[m.mm]!, bo.bo, { pgoff: m.pgoff, pages: m.pages, randRead: m.randRead }) };
  }

  /**
   * A CPU write, page by page so the oracle learns exactly what landed. A
   * page waiting for its readback refuses a synchronous write
   * (AccessBlockedError); the documented pattern is to await writeAsync,
   * which the run does, except while the device is stalled (the readback
   * could not land before the next barrier): then the write is given up.
   */
  private async write(step: Extract<Step, { op: 'write' }>): Promise<void> {
    const h = this.vmas[step.vma];
    if (!h) return this.skip();
    const { vma, bo } = h;
    const ps = this.world.machine.pageSize;
    const cpu = this.machine.cpus[step.cpu]!;
    const data = new Prng(step.data).fill(new Uint8Array(step.length));
    for (let done = 0; done < step.length; ) {
      const va = vma.start + step.offset + done;
      const n = Math.min(ps - (va % ps), step.length - done);
      const chunk = data.subarray(done, done + n);
      done += n;
      if (step.mode === 'async') {
        await within(cpu.writeAsync(vma.mm, va, chunk), this.hangMs, 'writeAsync');
      } else {
        try {
          cpu.write(vma.mm, va, chunk);
        } catch (e) {
          if (!(e instanceof AccessBlockedError)) throw e;
          if (this.injector.stalled) {
            this.result.blockedWrites++;
            continue;
          }
          await within(cpu.writeAsync(vma.mm, va, chunk), this.hangMs, 'writeAsync after AccessBlockedError');
        }
      }
      this.oracle.cpuWrite(bo.shadow, (vma.pgoffAt(va) - bo.bo.offset) * ps + (va % ps), chunk);
    }
  }

  /**
   * flush(), its outcome checked the moment it settles: a resolved flush must
   * satisfy invariant (a) against the device's copy as it is right then.
   * Resolves true when the flush resolved; never rejects.
   */
  private flush(): Promise<boolean> {
    const t0 = this.oracle.clock;
    const step = this.step;
    const done = within(this.driver.flush(), this.hangMs, 'flush').then(
      () => {
        this.checkFlush(t0, step);
        return true;
      },
      (e: unknown) => {
        if (e instanceof HangError) this.fault(e);
        this.result.flushesRejected++;
        this.lastRejection = e instanceof Error ? e.message : String(e);
        this.trace?.(`  flush (step ${step}) rejected: ${e instanceof Error ? e.message : String(e)}`);
        return false;
      },
    );
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
    return done;
  }

  private checkFlush(t0: number, step: number): void {
    const sid = this.driver.conn.welcome?.session;
    const view = sid === undefined ? undefined : this.device.session(sid);
    if (view === undefined) {
      this.result.flushesUnchecked++;
      return;
    }
    this.result.flushesChecked++;
    const diff = this.oracle.checkFlush(t0, (id) => view.bo(id));
    this.trace?.(`  flush (step ${step}) resolved${diff ? '' : ', device holds every write before it'}`);
    if (diff !== null) {
      this.result.lostPages += diff.pageCount;
      this.violate(INVARIANTS.flush, `a flush called at step ${step} resolved, but the device lacks data written before it`, diff);
    }
  }

  /**
   * Quiescence: the stall ends, everything in flight settles, and a flush
   * reaches the device (after a reconnect if one is under way). Then the fate
   * of device writes is known and guest memory is checked (d).
   */
  private async barrier(): Promise<void> {
    this.injector.release();
    await Promise.all(this.inFlight);
    for (let attempt = 0; attempt < 4 && this.result.violation === null; attempt++) {
      await within(this.driver.conn.ready(), this.hangMs, 'reconnect');
      if (await this.flush()) break;
    }
    this.checkGuest();
  }

  private checkGuest(): void {
    this.settleDeviceWrites();
    const diff = this.oracle.checkGuest();
    if (diff !== null) this.violate(INVARIANTS.guest, 'guest memory lost a write', diff);
  }

  /**
   * Wait until the driver has a session and the device has applied everything
   * sent on it (a define or destroy of a barrier action), so a fault armed or
   * a device write made next meets the state the program says, not whatever
   * the socket delivered so far. The fence may itself meet an armed drop: the
   * run then waits for the next session and tries again.
   */
  private async quiesce(): Promise<void> {
    const conn = this.driver.conn;
    for (let attempt = 0; attempt < 3; attempt++) {
      await within(conn.ready(), this.hangMs, 'reconnect');
      if (await within(conn.fence().then(() => true, () => conn.isOpen), this.hangMs, 'fence')) return;
    }
  }

  /** The device writes into a BO of the driver's session and announces it; the run waits for the announcement. */
  private async gpuWrite(step: Extract<Step, { op: 'gpuWrite' }>): Promise<void> {
    const h = this.bos[step.bo];
    const sid = this.openSession();
    const view = sid === null ? undefined : this.device.session(sid);
    if (!h || view === undefined) return this.skip();
    const conn = this.driver.conn;
    const data = new Prng(step.data).fill(new Uint8Array(step.length));
    const seen = conn.seenDeviceWrites;
    const sessions = conn.sessions;
    try {
      view.gpuWrite(h.bo.id, [[step.offset, data]]);
    } catch (e) {
      if (e instanceof ProtocolError) return this.skip(); // the device does not have the BO (its define was refused)
      throw e;
    }
    this.result.deviceWrites++;
    this.oracle.deviceWrite(h.shadow, step.offset, data, sid!);
    // No CPU access races the announcement: the interleaving stays the program's.
    await until(() => conn.sessions !== sessions || !conn.isOpen || conn.seenDeviceWrites > seen, this.hangMs, 'the deviceWrite announcement');
  }

  /**
   * Faults stop. The program then flushes like a 60 Hz frame loop, and the
   * driver must become coherent by itself within convergeMs: a define the
   * device refused is retried with a backoff, so the bound is in time, and
   * the number of flushes it took is recorded.
   */
  private async calm(): Promise<void> {
    await this.injector.calm();
    await Promise.all(this.inFlight);
    const deadline = performance.now() + this.convergeMs;
    let last: Difference | null = null;
    let flushes = 0;
    for (;;) {
      await within(this.driver.conn.ready(), this.hangMs, 'reconnect');
      const ok = await this.flush();
      flushes++;
      if (this.result.violation !== null) return;
      this.settleDeviceWrites();
      if (ok) {
        const sid = this.openSession();
        const view = sid === null ? undefined : this.device.session(sid);
        last = this.oracle.checkCoherent((id) => view?.bo(id));
        if (last === null) {
          this.result.convergedAfter = flushes;
          this.result.convergeMs = performance.now() - (deadline - this.convergeMs);
          return;
        }
      }
      if (performance.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, FRAME_MS));
    }
    if (last !== null) this.result.lostPages += last.pageCount;
    this.violate(INVARIANTS.converge, last === null
      ? `every one of ${flushes} flushes in the ${this.convergeMs} ms after the faults stopped was rejected; the last with: ${this.lastRejection}`
      : `not coherent after ${flushes} flushes in the ${this.convergeMs} ms after the faults stopped`, last ?? undefined);
  }

  /** Tell the oracle which device writes were read back or died with their session. */
  private settleDeviceWrites(): void {
    this.oracle.settleDeviceWrites(this.openSession(), (s, b) => s.bo.page(Math.floor(b / s.pageSize))[b % s.pageSize]!);
  }

  private openSession(): number | null {
    const c = this.driver.conn;
    return c.isOpen ? c.welcome!.session : null;
  }

  private skip(): void {
    this.result.skipped++;
  }

  /** An exception of the run: a hang is invariant (c); anything else unexpected is reported as is. */
  private fault(e: unknown): void {
    if (e instanceof HangError) {
      this.result.hangs++;
      this.violate(INVARIANTS.hang, e.message);
      return;
    }
    this.violate(INVARIANTS.unhandled, `the run threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }

  private violate(invariant: Invariant, message: string, difference?: Difference): void {
    if (this.result.violation !== null) return;
    const step = this.program.steps[this.step];
    this.result.violation = {
      seed: this.seed, step: this.step, op: step ? formatStep(step) : 'set-up', invariant, message, difference,
      replay: `vgpu-dirty soak --seed ${this.seed} --runs 1${this.faults ? '' : ' --no-faults'} --trace`,
    };
  }
}

/** Run one seed. */
export function runSeed(seed: number, opts: RunOptions = {}): Promise<RunResult> {
  return new Run(seed, opts).execute();
}
