import { accessSync, constants } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs, UsageError } from './args.js';
import { FrameSampler, startDashboard, writeReport } from '../ui/index.js';
import { resolveStrategy, StrategyError } from '../driver/strategies/loader.js';
import { type MainJobReport, type MemoryKind, runMainJob, STRATEGIES } from '../workload/main-job.js';

export const RUN_HELP = `vgpu-dirty run [--frames N | --seconds N] [--device ws://HOST:PORT] [--token T]
               [--connect-timeout MS] [--control] [--control-token T] [--gpu-every N]
               [--strategy NAME|./module.js] [--memory simulated|real] [--cpus N]
               [--window N] [--verify-every N] [--json] [--ui [--ui-port P]]
               [--report FILE.html]

The main job (what 'npm start' runs). Starts an embedded device in-process
(or uses --device), creates a 1920x1080x4 framebuffer surface and a 4 MiB
vertex buffer, maps them into two processes and runs a scripted workload from
several CPUs (a scrolling text region, a moving sprite, sparse random vertex
writes, idle phases that make the trackers switch methods), syncing at 60 Hz.
A --device that does not answer within --connect-timeout ms (default 10000)
ends the run. Every --gpu-every frames (default 20, 0 = never) the device itself renders
a box into the framebuffer, so read coherence is exercised: the embedded
device directly, a --device only with --control (a 'control' connection,
which needs the device's --control-token). Coherence (device copy == guest
memory) is verified every --verify-every frames (default 60) and at the end.
Default: 360 frames (6 s); --frames 0 runs until Ctrl-C. Ctrl-C (or SIGTERM)
ends a run after the current frame, with the final verification and the
summary; a second one quits at once.

--strategy picks how BOs are dirty-tracked (docs/strategies.md): one of
${STRATEGIES.join(', ')} (default adaptive), or a module
path (./my-tracker.js) whose default export is a DirtyStrategy. --memory real puts the BOs in real memfd
shared memory of this process, tracked by the running kernel's userfaultfd
write-protect and PAGEMAP_SCAN (Linux 6.7+ and the optional koffi package;
strategy uffd-wp, the default there, or full); when that is not possible the
run ends at once with the one-line reason.

--ui serves a live dashboard on http://127.0.0.1:P/ (--ui-port, default any
free port; the URL is printed on stderr): the device's copy of the
framebuffer, a page map per BO, per-frame charts, coherence and settings.
It updates over its own WebSocket, at most 5 times a second. When the run
ends by itself, the dashboard keeps its final state until Ctrl-C.
--report FILE.html writes a single self-contained HTML file at the end of
the run (the charts, final page maps, settings and summary; opens offline).

Prints a summary table, or with --json one JSON object with the keys frames,
pagesDirtied, pagesSent, bytesOnWire, fences, fenceLatencyMs {p50, p99},
methodSwitches, faults, tlbFlushes, ipis, coherent, flushErrors,
deviceWrites, readbacks (and a few more). Failed flushes (device faults) are
counted apart from coherence. Exit code 1 if coherence fails or the device
cannot be reached or refuses the connection (one line on stderr).`;

export async function runCommand(argv: readonly string[], out: (line: string) => void): Promise<number> {
  const a = parseArgs(argv, {
    frames: { type: 'int', min: 0, max: 1_000_000 },
    seconds: { type: 'int', min: 1, max: 3600 },
    device: { type: 'string' },
    token: { type: 'string' },
    'connect-timeout': { type: 'int', min: 1, max: 3_600_000 },
    control: { type: 'flag' },
    'control-token': { type: 'string' },
    'gpu-every': { type: 'int', min: 0, max: 1_000_000 },
    strategy: { type: 'string' },
    memory: { type: 'string', choices: ['simulated', 'real'] },
    cpus: { type: 'int', min: 2, max: 64 },
    window: { type: 'int', min: 1, max: 1024 },
    'verify-every': { type: 'int', min: 0 },
    json: { type: 'flag' },
    ui: { type: 'flag' },
    'ui-port': { type: 'int', min: 0, max: 65535 },
    report: { type: 'string' },
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
  if (a.control && a['control-token'] === undefined) throw new UsageError('--control needs --control-token (control connections have their own credential)');
  if (a['ui-port'] !== undefined && !a.ui) throw new UsageError('--ui-port needs --ui');
  const reportFile = a.report as string | undefined;
  if (reportFile !== undefined) requireWritableDir(reportFile);
  const frames = (a.frames as number | undefined) ?? ((a.seconds as number | undefined) ?? 6) * 60;
  const memory = (a.memory as MemoryKind | undefined) ?? 'simulated';
  const strategy = await resolveStrategy((a.strategy as string | undefined) ?? (memory === 'real' ? 'uffd-wp' : 'adaptive')).catch((e: unknown) => {
    throw e instanceof StrategyError ? new UsageError(`--strategy: ${e.message}`) : e;
  });
  const tty = process.stderr.isTTY && !a.json;
  const stop = new AbortController();
  let running = true;
  const onSignal = () => {
    if (stop.signal.aborted) process.exit(130);
    stop.abort();
    if (running) process.stderr.write(`${tty ? '\n' : ''}stopping after this frame (again to quit at once)\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const log = (line: string) => void process.stderr.write(`${line}\n`);
  const dashboard = a.ui ? await startDashboard({ port: a['ui-port'] as number | undefined, log }) : null;
  try {
    if (dashboard !== null) log(`dashboard: ${dashboard.url}`);
    const sampler = dashboard?.sampler ?? (reportFile !== undefined ? new FrameSampler() : undefined);
    const report = await runMainJob({
      frames,
      deviceUrl: device,
      token: a.token as string | undefined,
      connectTimeoutMs: a['connect-timeout'] as number | undefined,
      control: a.control === true,
      controlToken: a['control-token'] as string | undefined,
      gpuEvery: a['gpu-every'] as number | undefined,
      strategy,
      memory,
      cpus: a.cpus as number | undefined,
      verifyEvery: a['verify-every'] as number | undefined,
      writeback: a.window !== undefined ? { windowBatches: a.window as number } : undefined,
      onFrame: tty ? (f, n) => progress(f, n) : undefined,
      observer: sampler,
      signal: stop.signal,
      log,
    });
    running = false;
    if (tty) process.stderr.write('\r\x1b[K');
    if (a.json) out(JSON.stringify(report));
    else for (const line of table(report)) out(line);
    if (reportFile !== undefined) {
      writeReport(reportFile, sampler!);
      log(`report: ${reportFile}`);
    }
    if (dashboard !== null && !stop.signal.aborted) {
      log(`the run ended; the dashboard keeps its final state at ${dashboard.url} until Ctrl-C`);
      await new Promise((resolve) => stop.signal.addEventListener('abort', resolve, { once: true }));
    }
    return report.coherent ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await dashboard?.close();
  }
}

/** Fail before the run, not after it, when the report cannot be written. */
function requireWritableDir(file: string): void {
  try {
    accessSync(dirname(file), constants.W_OK);
  } catch {
    throw new UsageError(`--report: cannot write into ${dirname(file)}`);
  }
}

function progress(f: number, n: number): void {
  if (n === 0) return void process.stderr.write(`\rframe ${f} (Ctrl-C to stop)`);
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
    ['strategy', r.memory === 'real' ? `${r.strategy} (real memory)` : r.strategy],
    ['wall time', `${r.seconds.toFixed(1)} s`],
    ['coherency', r.coherent ? 'OK' : `FAILED (${r.differingPages} pages differ)`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`);
}
