import { accessSync, constants } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type CommandIo, type CommandSpec, givenOptions, UsageError, type Values, WS_URL } from './options.js';
import { ProgressLine } from './progress.js';
import { asMainJobReport, replayTrace, resolveTrace, TraceFileWriter, TraceRecorder } from '../trace/index.js';
import { FrameSampler, startDashboard, writeReport } from '../ui/index.js';
import { ENCODINGS, type Encoding } from '../driver/encoding.js';
import type { DirtyStrategy } from '../driver/strategies/contract.js';
import { resolveStrategy, StrategyError } from '../driver/strategies/loader.js';
import { type MainJobReport, type MemoryKind, runMainJob, STRATEGIES } from '../workload/main-job.js';

export const RUN: CommandSpec = {
  name: 'run',
  summary: 'the main job: framebuffer + vertex buffer, scripted multi-CPU workload synced at 60 Hz to a device, coherence checked (default)',
  description: `The main job (what 'npm start' runs, and the default command: 'vgpu-dirty --frames 60' is 'vgpu-dirty run --frames 60'). Starts an embedded device in-process (or uses --device), creates a 1920x1080x4 framebuffer surface and a 4 MiB vertex buffer, maps them into two processes and runs a scripted workload from several CPUs (a scrolling text region, a moving sprite, sparse random vertex writes, idle phases that make the trackers switch methods), syncing at 60 Hz.

Every --gpu-every frames the device itself renders a box into the framebuffer, so read coherence is exercised: the embedded device directly, a --device only with --control (a 'control' connection, which needs the device's --control-token). Coherence (device copy == guest memory) is verified every --verify-every frames and at the end. Ctrl-C (or SIGTERM) ends a run after the current frame, with the final verification and the summary; a second one quits at once.

Progress goes to stderr (not with --json): a bar with rate and ETA on a terminal, a line every 5 s otherwise.`,
  options: [
    { name: 'frames', type: 'int', min: 0, max: 1_000_000, defaultText: '360 (6 s)', description: 'frames to run; 0 runs until Ctrl-C' },
    { name: 'seconds', type: 'int', min: 1, max: 3600, description: 'run for this many seconds of frames (60 a second) instead of --frames' },
    { name: 'device', type: 'string', value: 'URL', ...WS_URL, defaultText: 'an embedded device', description: 'use the device at this URL' },
    { name: 'token', type: 'string', value: 'T', description: "the device's driver token" },
    { name: 'connect-timeout', type: 'int', value: 'MS', min: 1, max: 3_600_000, default: 10_000, description: 'a --device that gives no session within this many ms ends the run' },
    { name: 'control', type: 'flag', description: "with --device: open a 'control' connection so the device renders too (needs --control-token)" },
    { name: 'control-token', type: 'string', value: 'T', description: "the device's control token" },
    { name: 'gpu-every', type: 'int', min: 0, max: 1_000_000, default: 20, description: 'frames between device-side renders; 0 = never' },
    { name: 'strategy', type: 'string', value: 'NAME|./module.js', defaultText: 'adaptive (uffd-wp with --memory real)', description: `how BOs are dirty-tracked (docs/strategies.md): one of ${STRATEGIES.join(', ')}, or a module path whose default export is a DirtyStrategy` },
    { name: 'memory', type: 'string', choices: ['simulated', 'real'], default: 'simulated', description: "where BOs live: simulated frames, or real memfd shared memory of this process tracked by the running kernel's userfaultfd write-protect and PAGEMAP_SCAN (Linux 6.7+ and the optional koffi package; strategy uffd-wp or full); when that is not possible the run ends at once with the one-line reason" },
    { name: 'cpus', type: 'int', min: 2, max: 64, default: 4, description: 'simulated CPUs' },
    { name: 'window', type: 'int', min: 1, max: 1024, description: 'writeback batches in flight at once' },
    { name: 'encoding', type: 'string', choices: ENCODINGS, defaultText: 'auto', description: 'how DMA frames are encoded (docs/protocol.md 6.15): auto sends only the bytes that changed since they were last sent, compressed when the link is slower than the compressor; raw whole dirty pieces; spans whole pieces in span frames; delta never compressed; deflate always' },
    { name: 'verify-every', type: 'int', min: 0, max: 1_000_000, default: 60, description: 'frames between coherence checks; 0 = at the end only' },
    { name: 'json', type: 'flag', description: 'print one JSON object instead of the table, and no progress' },
    { name: 'ui', type: 'flag', description: 'serve a live dashboard on http://127.0.0.1:P/ (the URL is printed on stderr): the device\'s copy of the framebuffer, a page map per BO, per-frame charts, coherence and settings, updated at most 5 times a second; when the run ends by itself the dashboard keeps its final state until Ctrl-C' },
    { name: 'ui-port', type: 'int', value: 'P', min: 0, max: 65535, defaultText: 'any free port', description: 'with --ui: the dashboard\'s port' },
    { name: 'report', type: 'string', value: 'FILE.html', accepts: 'a file name', description: 'write a self-contained HTML report at the end (charts, final page maps, settings, summary; opens offline)' },
    { name: 'record', type: 'string', value: 'FILE', accepts: 'a file name', description: 'write a trace of the run (docs/trace.md; gzip-compressed when FILE ends in .gz): the buffers and mappings, every CPU and device-side write, every flush and verification, the time between frames' },
    { name: 'trace', type: 'string', value: 'FILE|NAME', accepts: 'a trace file or the name of a shipped trace', description: "replay a trace instead of the built-in scene, against the embedded device, with --strategy, sleeping its think times (each at most 10 s); each flush is waited for, so the counts are the same on every replay. NAME is a shipped trace ('vgpu-dirty help compare'). Only --strategy, --window and --json apply; Ctrl-C ends the replay after the current record, with the final verification and the summary" },
  ],
  epilogue: `Prints a summary table, or with --json one JSON object with the keys frames, pagesDirtied, pagesSent, bytesOnWire, fences, fenceLatencyMs {p50, p99}, methodSwitches, faults, tlbFlushes, ipis, coherent, flushErrors, deviceWrites, readbacks (and a few more). Failed flushes (device faults) are counted apart from coherence.

Exit codes: 0 coherent, 1 coherence failed, the device cannot be reached or refuses the connection, or the strategy failed while running (one line on stderr), 2 bad arguments (also a --strategy that cannot be loaded).`,
  run: runCommand,
};

async function runCommand(a: Values, _positionals: readonly string[], io: CommandIo): Promise<number> {
  const out = io.out;
  if (a.trace !== undefined) return traceRun(a, io);
  if (a.frames !== undefined && a.seconds !== undefined) throw new UsageError('give --frames or --seconds, not both');
  const device = a.device as string | undefined;
  if (a.control && device === undefined) throw new UsageError('--control needs --device (the embedded device is always driven directly)');
  if (a.control && a['control-token'] === undefined) throw new UsageError('--control needs --control-token (control connections have their own credential)');
  if (a['ui-port'] !== undefined && !a.ui) throw new UsageError('--ui-port needs --ui');
  const reportFile = a.report as string | undefined;
  if (reportFile !== undefined) requireWritableDir(reportFile, '--report');
  if (a.record !== undefined) requireWritableDir(a.record as string, '--record');
  const frames = (a.frames as number | undefined) ?? ((a.seconds as number | undefined) ?? 6) * 60;
  const memory = (a.memory as MemoryKind | undefined) ?? 'simulated';
  if (a.record !== undefined && memory === 'real') throw new UsageError('--record records the simulated memory only (a trace names processes and virtual addresses; real memory has none)');
  const strategy = await strategyOption((a.strategy as string | undefined) ?? (memory === 'real' ? 'uffd-wp' : 'adaptive'));
  const recording = a.record !== undefined ? new TraceFileWriter(a.record as string) : null;
  const progress = a.json ? null : new ProgressLine(io.err, { label: 'run', unit: 'frames', total: frames > 0 ? frames : undefined });
  const log = (line: string) => (progress !== null ? progress.log(line) : io.err.write(`${line}\n`));
  let running = true;
  const stop = stopOnSignals(() => {
    if (running) log('stopping after this frame (again to quit at once)');
  });
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
      writeback: {
        ...(a.window !== undefined ? { windowBatches: a.window as number } : {}),
        ...(a.encoding !== undefined ? { encoding: a.encoding as Encoding } : {}),
      },
      onFrame: progress === null ? undefined : (f) => progress.update(f, frames === 0 ? 'Ctrl-C to stop' : undefined),
      observer: sampler,
      signal: stop.signal,
      log,
      tap: recording !== null ? new TraceRecorder(recording) : undefined,
    });
    running = false;
    progress?.end();
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
    progress?.end();
    stop.dispose();
    await dashboard?.close();
    await recording?.close();
    // A run that failed before it started recorded nothing: leave no unreadable file behind.
    if (recording !== null && recording.count === 0) await rm(recording.path, { force: true });
  }
}

/** Options that keep their meaning with --trace; any other given is refused. */
const TRACE_OPTIONS = new Set(['trace', 'strategy', 'window', 'json']);

/** run --trace: replay a trace with the embedded device (src/trace/replay.ts). */
async function traceRun(a: Values, io: CommandIo): Promise<number> {
  const given = [...givenOptions(a)].filter((name) => !TRACE_OPTIONS.has(name));
  if (given.length > 0) throw new UsageError(`--${given[0]!} does not apply to --trace (only --strategy, --window and --json do)`);
  const strategy = await strategyOption((a.strategy as string | undefined) ?? 'adaptive');
  const log = (line: string) => io.err.write(`${line}\n`);
  const stop = stopOnSignals(() => log('stopping after this record (again to quit at once)'));
  const report = await replayTrace(resolveTrace(a.trace as string), {
    strategy,
    writeback: a.window !== undefined ? { windowBatches: a.window as number } : undefined,
    realtime: true,
    signal: stop.signal,
    log,
  }).finally(() => stop.dispose());
  const r = asMainJobReport(report);
  if (a.json) io.out(JSON.stringify(r));
  else for (const line of table(r)) io.out(line);
  return r.coherent ? 0 : 1;
}

/**
 * Ctrl-C and SIGTERM while a command runs: the first aborts the returned
 * signal (the run ends cleanly, with its summary) and calls `first`, a second
 * quits at once (exit 130). dispose() removes the handlers.
 */
export function stopOnSignals(first: () => void): { signal: AbortSignal; dispose(): void } {
  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) process.exit(130);
    stop.abort();
    first();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: stop.signal,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** A --strategy value loaded before anything starts; what cannot be loaded is a usage error (exit 2). */
export function strategyOption(spec: string): Promise<DirtyStrategy> {
  return resolveStrategy(spec).catch((e: unknown) => {
    throw e instanceof StrategyError ? new UsageError(`--strategy: ${e.message}`) : e;
  });
}

/** Fail before the run, not after it, when the report cannot be written. */
export function requireWritableDir(file: string, option: string): void {
  try {
    accessSync(dirname(file), constants.W_OK);
  } catch {
    throw new UsageError(`${option}: cannot write into ${dirname(file)}`);
  }
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
