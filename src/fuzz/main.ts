// npm run fuzz -- [--seconds N] [--frames N] [--seed S] [--workers N] [--device URL] [--out DIR]
//
// Fuzzes the device over the wire (docs/reliability.md, "Device fuzzing"): by default
// `vgpu-dirty device` in a child process with small limits, so limits are hit often and its
// memory can be watched. Prints the seed first; a failure is saved as a recording that
// `vgpu-dirty replay` re-sends. Exit codes: 0 no finding, 1 a finding, 2 bad arguments.
import { randomInt } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeLog } from '../../device/index.js';
import { WireClient } from '../conformance/client.js';
import { runCampaign, type CampaignStats } from './campaign.js';
import { DeviceProcess } from './device-process.js';
import { pingFlood } from './ping-flood.js';

const USAGE = `usage: npm run fuzz -- [options]

Fuzzes a device over the wire: every op with mutated fields, byte-level damage,
seq tricks, raw-TCP and WebSocket-level abuse, connection churn and crowds,
slow readers. Checks: no crash, no 1011, every message valid, replies in order,
documented close codes, barrier fences answered, raw connections closed.

  --seconds N     run this long (default 10)
  --frames N      stop after this many frames (default: no limit)
  --seed S        seed (default: random; printed first, replays the run's frames)
  --workers N     connections at once (default 4)
  --device URL    fuzz this device instead of starting one (no RSS figures)
  --token T, --control-token T   its tokens (with --device)
  --hello-timeout MS             its hello timeout (with --device; default 10000)
  --out DIR       where a failing case is saved (default fuzz-failures)
  --max-rss MIB   fail if the device's peak RSS exceeds this (default 1024)
  --ping-flood S  instead: one client sends pings for S seconds and never reads;
                  print the device's RSS (its own device process, default options)
  -h, --help      this text
`;

/** The device under fuzzing: small limits so that they are hit often; both tokens. */
const TOKEN = 'fuzz-token';
const CONTROL_TOKEN = 'fuzz-control-token';
const HELLO_TIMEOUT_MS = 1000;
export const FUZZ_DEVICE_FLAGS = [
  '--token', TOKEN, '--control-token', CONTROL_TOKEN, '--max-bo-size', '64k', '--max-total-bytes', '8m', '--max-bos', '512',
  '--max-surfaces', '128', '--max-message-size', '256k', '--max-ranges', '256', '--max-sessions', '48',
  '--hello-timeout', String(HELLO_TIMEOUT_MS), '--idle-timeout', '5000', '--high-water-mark', '256k', '--quiet',
];

const MiB = 1024 * 1024;
const mib = (n: number): string => (Number.isNaN(n) ? 'n/a' : `${(n / MiB).toFixed(1)} MiB`);

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        seconds: { type: 'string' }, frames: { type: 'string' }, seed: { type: 'string' }, workers: { type: 'string' },
        device: { type: 'string' }, token: { type: 'string' }, 'control-token': { type: 'string' }, 'hello-timeout': { type: 'string' },
        out: { type: 'string' }, 'max-rss': { type: 'string' }, 'ping-flood': { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    process.stderr.write(`fuzz: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  const num = (name: string, text: string | undefined, dflt: number, min: number): number => {
    if (text === undefined) return dflt;
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < min) throw new RangeError(`--${name} must be an integer ≥ ${min}, got '${text}'`);
    return n;
  };
  let seconds: number, frames: number, seed: number, workers: number, helloTimeout: number, maxRss: number, flood: number;
  try {
    flood = num('ping-flood', values['ping-flood'], 0, 1);
    seconds = num('seconds', values.seconds, 10, 1);
    frames = num('frames', values.frames, Number.MAX_SAFE_INTEGER, 1);
    seed = num('seed', values.seed, randomInt(2 ** 47), 0);
    workers = num('workers', values.workers, 4, 1);
    helloTimeout = num('hello-timeout', values['hello-timeout'], values.device === undefined ? HELLO_TIMEOUT_MS : 10_000, 1);
    maxRss = num('max-rss', values['max-rss'], 1024, 1) * MiB;
    if (values.device !== undefined && !/^wss?:\/\/./.test(values.device)) throw new RangeError(`--device must be a ws:// URL, got '${values.device}'`);
  } catch (e) {
    process.stderr.write(`fuzz: ${(e as Error).message}\n`);
    return 2;
  }
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  if (flood > 0) {
    const device = await DeviceProcess.start(['--quiet']);
    try {
      const r = await pingFlood(device, undefined, flood);
      out(`ping flood: ${r.pings} pings sent in ${flood} s by a client that never reads; device RSS before ${mib(r.rssBefore)}, peak ${mib(r.rssPeak)}, at the end ${mib(r.rssEnd)}, 3 s after the client left ${mib(r.rssAfter)}`);
      return r.rssPeak > maxRss ? 1 : 0;
    } finally {
      await device.stop();
    }
  }
  out(`fuzz: seed ${seed} (the same frames again: npm run fuzz -- --seed ${seed} --seconds ${seconds}${values.frames ? ` --frames ${frames}` : ''})`);

  const device = values.device === undefined ? await DeviceProcess.start(FUZZ_DEVICE_FLAGS) : undefined;
  const url = values.device ?? device!.url;
  const token = values.device === undefined ? TOKEN : values.token;
  const controlToken = values.device === undefined ? CONTROL_TOKEN : values['control-token'];
  let peak = NaN;
  const before = device?.rss() ?? NaN;
  const sampler = setInterval(() => {
    const r = device?.rss() ?? NaN;
    if (!(r <= peak)) peak = Number.isNaN(peak) ? r : Math.max(peak, r);
  }, 100);
  out(`device: ${url}${device ? ` (vgpu-dirty device ${FUZZ_DEVICE_FLAGS.join(' ')}; pid ${device.pid}, RSS ${mib(before)})` : ''}`);

  let stats: CampaignStats;
  let after = NaN;
  try {
    stats = await runCampaign({
      seed, url, token, controlToken, durationMs: seconds * 1000, maxFrames: frames, workers, helloTimeoutMs: helloTimeout,
      deviceDied: () => device?.exit,
      onProgress: (s) => out(`  ${(s.elapsedMs / 1000).toFixed(0)} s: ${s.frames} frames (${Math.round(s.frames / (s.elapsedMs / 1000))}/s), ${s.connections} connections, device RSS ${mib(device?.rss() ?? NaN)}`),
    });
    if (device !== undefined && device.exit === undefined) after = await settledRss(device, url, token);
  } finally {
    clearInterval(sampler);
    await device?.stop();
  }

  const { failure } = stats;
  out(`frames ${stats.frames} in ${(stats.elapsedMs / 1000).toFixed(1)} s (${Math.round(stats.frames / (stats.elapsedMs / 1000))}/s), connections ${stats.connections} (${list(stats.kinds)})`);
  out(`errors by code: ${list(stats.errors) || 'none'}`);
  out(`device closes by code: ${list(stats.closes) || 'none'} (and ${stats.ownCloses} closed by the fuzzer)`);
  out(`crashes ${stats.crashes}, 1011 ${stats.internalErrors}`);
  const rssLine = `device RSS: before ${mib(before)}, peak ${mib(peak)}, after ${mib(after)}`;
  out(rssLine);
  if (failure === undefined && peak > maxRss) {
    out(`FAILURE: device peak RSS ${mib(peak)} exceeds --max-rss ${mib(maxRss)}`);
    return 1;
  }
  if (failure === undefined) {
    out('result: no finding');
    return 0;
  }
  out(`FAILURE (${failure.kind}) on connection ${failure.connection}: ${failure.detail}`);
  if (device?.exit !== undefined) out(`device stderr (tail):\n${device.log().trim()}`);
  if (failure.recording.length > 0) {
    const dir = values.out ?? 'fuzz-failures';
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `seed-${seed}-conn-${failure.connection}.vgpulog`);
    writeFileSync(file, writeLog(failure.recording));
    out(`recording: ${file} (${failure.recording.length} frames of connection(s) ${[...new Set(failure.recording.map((e) => e.session))].join(', ')})`);
    failure.notes.forEach((note, i) => out(`  ${String(i).padStart(4)} ${note}`));
    out(`replay it against a device like the fuzzed one:`);
    out(`  vgpu-dirty device ${FUZZ_DEVICE_FLAGS.join(' ')} --port 8765 &`);
    out(`  vgpu-dirty replay ${file} --device ws://127.0.0.1:8765`);
  }
  return 1;
}

/** RSS once every fuzz session is gone (polled via stats, bounded) and a moment has passed. */
async function settledRss(device: DeviceProcess, url: string, token: string | undefined): Promise<number> {
  try {
    const probe = await WireClient.session(url, { token, name: 'fuzz settle probe' });
    for (let i = 0; i < 100; i++) {
      const seq = probe.cmd({ op: 'stats' });
      if ((await probe.expect('statsData', seq)).sessions <= 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await probe.close();
  } catch {
    // a device without stats or refusing the probe: fall back to waiting
  }
  await new Promise((r) => setTimeout(r, 1000));
  return device.rss();
}

function list(counts: Record<string, number>): string {
  return Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    process.stderr.write(`fuzz: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  },
);
