import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** How long close() waits for a child to exit after SIGTERM before SIGKILL. */
const EXIT_GRACE_MS = 3000;
/** Last bytes of a child's stderr kept for error messages. */
const STDERR_TAIL = 4096;

/** Node options for every child (run.ts --profile adds --cpu-prof here). */
export const childNodeArgs: string[] = [];

/**
 * A Node.js child process of the benchmark (a device, a worker) that speaks
 * line by line on stdout. Every child is registered until it exits, so the
 * runner can close all of them on error and at the end.
 */
export class Child {
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  private readonly lines: string[] = [];
  private readonly readers: Array<(line: string | null) => void> = [];
  private stderr = '';
  private ended = false;

  constructor(readonly name: string, script: string, args: readonly string[]) {
    this.proc = spawn(process.execPath, [...childNodeArgs, script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    // A child that exits before reading what it was sent must not fail the runner (EPIPE).
    this.proc.stdin!.on('error', () => {});
    live.add(this);
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
    void this.exited.then(() => live.delete(this));
    createInterface({ input: this.proc.stdout! })
      .on('line', (line) => this.push(line))
      .on('close', () => {
        this.ended = true;
        for (const r of this.readers.splice(0)) r(null);
      });
    this.proc.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-STDERR_TAIL);
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** The next stdout line; rejects (with the child's stderr) when stdout ends first. */
  async nextLine(): Promise<string> {
    const line = this.lines.shift() ?? (this.ended ? null : await new Promise<string | null>((r) => this.readers.push(r)));
    if (line === null) {
      const code = await this.exited;
      throw new Error(`${this.name} exited (${code}) without the expected output:\n${this.stderr.trim()}`);
    }
    return line;
  }

  /** One line on the child's stdin (stepped workers take commands there). */
  send(line: string): void {
    this.proc.stdin!.write(`${line}\n`);
  }

  /** Skip lines until one starts with `prefix`; returns the rest of it. */
  async waitFor(prefix: string): Promise<string> {
    for (;;) {
      const line = await this.nextLine();
      if (line.startsWith(prefix)) return line.slice(prefix.length);
    }
  }

  /** SIGTERM, then SIGKILL if it has not exited in time. Resolves once it has exited. */
  async close(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), EXIT_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }

  private push(line: string): void {
    const r = this.readers.shift();
    if (r) r(line);
    else this.lines.push(line);
  }
}

const live = new Set<Child>();

/** Close every child still running (end of the run, or an error). */
export async function closeAllChildren(): Promise<void> {
  await Promise.all([...live].map((c) => c.close()));
}
