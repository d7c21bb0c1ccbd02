import { parseArgs, UsageError } from './args.js';
import { type MainJobReport, runMainJob, STRATEGIES, type Strategy } from '../workload/main-job.js';

export const RUN_HELP = `vgpu-dirty run [--frames N | --seconds N] [--device ws://HOST:PORT] [--token T]
               [--connect-timeout MS] [--control] [--control-token T] [--gpu-every N]
               [--strategy adaptive|pagetable|mkwrite|full] [--cpus N] [--window N]
               [--verify-every N] [--json]

The main job (what 'npm start' runs). Starts an embedded device in-process
(or uses --device), creates a 1920x1080x4 framebuffer surface and a 4 MiB
vertex buffer, maps them into two processes and runs a scripted workload from
several CPUs (a scrolling text region, a moving sprite, sparse random vertex
writes, idle phases that make the trackers switch methods), syncing at 60 Hz.
A --device that does not answer within --connect-timeout ms (default 10000)
ends the run. Every --gpu-every frames (default 20, 0 = never) the device itself renders
a box into the framebuffer, so read coherence is exercised: the embedded
device directly, a --device only with --control (a 'control' connection,
with --control-token or else --token). Coherence (device copy == guest
memory) is verified every --verify-every frames (default 60) and at the end.
Default: 360 frames (6 s).

Prints a summary table, or with --json one JSON object with the keys frames,
pagesDirtied, pagesSent, bytesOnWire, fences, fenceLatencyMs {p50, p99},
methodSwitches, faults, tlbFlushes, ipis, coherent, flushErrors,
deviceWrites, readbacks (and a few more). Failed flushes (device faults) are
counted apart from coherence. Exit code 1 if coherence fails or the device
cannot be reached or refuses the connection (one line on stderr).`;

export async function runCommand(argv: readonly string[], out: (line: string) => void): Promise<number> {
  const a = parseArgs(argv, {
    frames: { type: 'int', min: 1, max: 1_000_000 },
    seconds: { type: 'int', min: 1, max: 3600 },
    device: { type: 'string' },
    token: { type: 'string' },
    'connect-timeout': { type: 'int', min: 1, max: 3_600_000 },
    control: { type: 'flag' },
    'control-token': { type: 'string' },
    'gpu-every': { type: 'int', min: 0, max: 1_000_000 },
    strategy: { type: 'string', choices: STRATEGIES },
    cpus: { type: 'int', min: 2, max: 64 },
    window: { type: 'int', min: 1, max: 1024 },
    'verify-every': { type: 'int', min: 0 },
    json: { type: 'flag' },
    help: { type: 'flag' },
  });
  if (a.help) {
    out(RUN_HELP);
    return 0;
  }
  if (a.frames !== undefined && a.seconds !== undefined) throw new UsageError('give --frames or --seconds, not both');
  const device = a.device as string | undefined;
  if (device !== undefined && !/^wss?:\/\/./.test(device)) throw new UsageError(`--device must be a ws:// URL, got '${device}'`);
  if (a.control && device === undefined) throw new UsageError('--control needs --device (the embedded device is always driven directly)');
  const frames = (a.frames as number | undefined) ?? ((a.seconds as number | undefined) ?? 6) * 60;
  const tty = process.stderr.isTTY && !a.json;
  const report = await runMainJob({
    frames,
    deviceUrl: device,
    token: a.token as string | undefined,
    connectTimeoutMs: a['connect-timeout'] as number | undefined,
    control: a.control === true,
    controlToken: a['control-token'] as string | undefined,
    gpuEvery: a['gpu-every'] as number | undefined,
    strategy: a.strategy as Strategy | undefined,
    cpus: a.cpus as number | undefined,
    verifyEvery: a['verify-every'] as number | undefined,
    writeback: a.window !== undefined ? { windowBatches: a.window as number } : undefined,
    onFrame: tty ? (f, n) => progress(f, n) : undefined,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  if (tty) process.stderr.write('\r\x1b[K');
  if (a.json) out(JSON.stringify(report));
  else for (const line of table(report)) out(line);
  return report.coherent ? 0 : 1;
}

function progress(f: number, n: number): void {
  const width = 30;
  const done = Math.round((f / n) * width);
  process.stderr.write(`\r[${'#'.repeat(done)}${' '.repeat(width - done)}] frame ${f}/${n}`);
}

function table(r: MainJobReport): string[] {
  const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
  const rows: Array<[string, string]> = [
    ['frames', String(r.frames)],
    ['pages dirtied', String(r.pagesDirtied)],
    ['pages sent', `${r.pagesSent} (${r.pagesDirtied > 0 ? ((100 * r.pagesSent) / r.pagesDirtied).toFixed(1) : '0'} % of dirtied)`],
    ['bytes on the wire', `${r.bytesOnWire} (${mib(r.bytesOnWire)})`],
    ['fences', String(r.fences)],
    ['fence latency p50 / p99', `${r.fenceLatencyMs.p50.toFixed(2)} / ${r.fenceLatencyMs.p99.toFixed(2)} ms`],
    ['method switches', String(r.methodSwitches)],
    ['faults', String(r.faults)],
    ['TLB flushes / IPIs', `${r.tlbFlushes} / ${r.ipis}`],
    ['device writes / readbacks', `${r.deviceWrites} / ${r.readbacks}`],
    ['flush errors', String(r.flushErrors)],
    ['strategy', r.strategy],
    ['wall time', `${r.seconds.toFixed(1)} s`],
    ['coherency', r.coherent ? 'OK' : `FAILED (${r.differingPages} pages differ)`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`);
}
