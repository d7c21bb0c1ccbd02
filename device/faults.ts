// Scripted faults of the mock device. Each fault may be scoped to one session; counters count
// only matching events from the moment the fault is armed. Faults never reorder anything: a
// delayed fence also holds back every reply queued after it (see Session's ordered outbox).

export interface Scope {
  /** Only this session's events count (default: every session). */
  session?: number;
}

interface Countdown extends Scope {
  left: number;
}

export class Faults {
  private fails: (Countdown & { message: string })[] = [];
  private drops: Countdown[] = [];
  private fenceDelays: (Countdown & { ms: number })[] = [];
  private stalls: Scope[] = [];
  private waiters: (() => void)[] = [];

  /**
   * The nth command (1-based, from now) fails with code 'injected' and this message instead of
   * being applied. Counts well-formed commands other than fence and ping.
   */
  failNth(n: number, opts: Scope & { message?: string } = {}): void {
    this.fails.push({ left: positive('n', n), session: opts.session, message: opts.message ?? `injected failure of command ${n}` });
  }

  /** When the nth received message (from now) arrives, its connection is cut without a close frame. */
  dropAfter(n: number, opts: Scope = {}): void {
    this.drops.push({ left: positive('n', n), session: opts.session });
  }

  /** The next `count` fences (default: all) signal `ms` later than they otherwise would. */
  delayFences(ms: number, opts: Scope & { count?: number } = {}): void {
    this.fenceDelays.push({ ms: Math.max(0, ms), left: opts.count ?? Infinity, session: opts.session });
  }

  /** Stop applying commands (receiving continues until the backlog bound) until release(). */
  stall(opts: Scope = {}): void {
    this.stalls.push({ session: opts.session });
  }

  release(): void {
    this.stalls = [];
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Disarms every fault and releases stalled sessions. */
  clear(): void {
    this.fails = [];
    this.drops = [];
    this.fenceDelays = [];
    this.release();
  }

  // ---- hooks for sessions ----

  /** A message arrived; true when the connection must be dropped now. */
  onReceive(session: number): boolean {
    return tick(this.drops, session) !== undefined;
  }

  /** A non-fence command is about to be applied; the injected error message, if any. */
  onCommand(session: number): string | undefined {
    return tick(this.fails, session)?.message;
  }

  /** Extra delay for a fence being signalled now. */
  fenceDelay(session: number): number {
    let ms = 0;
    for (const d of this.fenceDelays) {
      if (matches(d, session) && d.left > 0) {
        d.left--;
        ms += d.ms;
      }
    }
    this.fenceDelays = this.fenceDelays.filter((d) => d.left > 0);
    return ms;
  }

  stalled(session: number): boolean {
    return this.stalls.some((s) => matches(s, session));
  }

  /** Resolves at the next release() or clear(). */
  released(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

function matches(scope: Scope, session: number): boolean {
  return scope.session === undefined || scope.session === session;
}

/** Counts one event against every matching countdown; removes and returns one that hit zero. */
function tick<T extends Countdown>(list: T[], session: number): T | undefined {
  let hit: T | undefined;
  for (let i = list.length - 1; i >= 0; i--) {
    const c = list[i]!;
    if (!matches(c, session)) continue;
    if (--c.left === 0) {
      hit ??= c;
      list.splice(i, 1);
    }
  }
  return hit;
}

function positive(name: string, n: number): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`${name} must be an integer ≥ 1, got ${n}`);
  return n;
}
