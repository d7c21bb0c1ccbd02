// The device under fuzzing, in a process of its own: exactly `vgpu-dirty device`, so a crash is
// a crash of the real thing, and its memory (RSS) is its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const CLI_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const STDERR_TAIL = 8192;

export class DeviceProcess {
  url = '';
  /** Set when the process exited (code or signal). */
  exit: string | undefined;
  private stderr = '';

  private constructor(private readonly proc: ChildProcess) {
    proc.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-STDERR_TAIL)));
    proc.once('exit', (code, signal) => (this.exit = signal !== null ? `signal ${signal}` : `code ${code}`));
  }

  static async start(flags: readonly string[]): Promise<DeviceProcess> {
    const proc = spawn(process.execPath, [CLI_MAIN, 'device', '--host', '127.0.0.1', '--port', '0', ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
    const d = new DeviceProcess(proc);
    d.url = await new Promise<string>((resolve, reject) => {
      let out = '';
      proc.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const m = /listening on (\S+)\n/.exec(out);
        if (m) resolve(m[1]!);
      });
      proc.once('exit', () => reject(new Error(`device exited before listening: ${d.stderr.trim()}`)));
    });
    return d;
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** Resident set size in bytes (Linux /proc), NaN elsewhere or after exit. */
  rss(): number {
    try {
      const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : NaN;
    } catch {
      return NaN;
    }
  }

  /** The last lines it wrote to stderr (its log). */
  log(): string {
    return this.stderr;
  }

  /** SIGTERM, then SIGKILL after 3 s; resolves when it exited. */
  async stop(): Promise<void> {
    if (this.exit !== undefined) return;
    const exited = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  }
}
