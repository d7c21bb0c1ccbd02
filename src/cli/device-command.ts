// `vgpu-dirty device`: runs the fake device until SIGINT/SIGTERM.
// stdout carries exactly one line, "listening on ws://HOST:PORT", once the device listens;
// everything else goes to stderr. Exit codes: 0 clean shutdown, 1 cannot start (listen, log file), 2 bad args.
import { parseArgs } from 'node:util';
import { parseSize, resolveOptions, startDevice, type DeviceOptions } from '../../device/index.js';
import type { Feature } from '../../protocol/index.js';

const USAGE = `usage: vgpu-dirty device [options]

Runs the fake vmwgfx-style device (WebSocket, MessagePack; see docs/protocol.md).

  --host H                 interface to listen on (default 127.0.0.1)
  --port P                 TCP port, 0 = ephemeral (default 0)
  --token T                require this token in a driver's hello
  --control-token T        accept role 'control' connections (cross-session gpuWrite)
                           whose hello carries this token (must differ from --token)
  --features LIST          comma-separated features to offer (default: all of
                           surfaces,gpuWrite,digest,stats,seen,fencedWrite); ops of the
                           others are answered unknown_op
  --page-size N            digest page size in bytes (default 4096)
  --max-bos N              BOs alive at once, whole device (default 4096)
  --max-bo-size N          bytes of one BO (default 256m)
  --max-total-bytes N      bytes of all BOs, whole device (default 1g)
  --max-surfaces N         surfaces alive at once, whole device (default 4096)
  --max-message-size N     bytes of one WebSocket message (default 16m)
  --max-ranges N           ranges, boxes or digest pages per message (default 16384)
  --max-sessions N         connections open at once; more get 'busy', close 1013 (default 64)
  --max-session-bos N      BOs of one session (default a quarter of --max-bos)
  --max-session-bytes N    bytes of one session's BOs (default a quarter of
                           --max-total-bytes, at least --max-bo-size)
  --max-session-surfaces N surfaces of one session (default a quarter of --max-surfaces)
  --bandwidth N            emulated DMA bytes per second, 0 = unlimited (default 0)
  --fence-latency MS       extra delay before a fence is signalled (default 0)
  --high-water-mark N      backlog bytes before reading pauses (default 8m)
  --hello-timeout MS       close connections silent for this long before hello (default 10000)
  --idle-timeout MS        close sessions that send nothing for this long, 0 = never
                           (default 60000; announced in welcome)
  --log FILE               record every received frame to FILE (VGPULOG1 format)
  --fail-nth N             fault: the Nth command fails with code 'injected'
  --drop-after N           fault: cut the connection that receives the Nth message
  --fence-delay MS         fault: every fence is signalled MS later
  --quiet                  no log lines on stderr
  -h, --help               show this help

Sizes take an optional k, m or g suffix (binary multiples).
`;

const SPEC = {
  host: { type: 'string' },
  port: { type: 'string' },
  token: { type: 'string' },
  'control-token': { type: 'string' },
  features: { type: 'string' },
  'page-size': { type: 'string' },
  'max-bos': { type: 'string' },
  'max-bo-size': { type: 'string' },
  'max-total-bytes': { type: 'string' },
  'max-surfaces': { type: 'string' },
  'max-message-size': { type: 'string' },
  'max-ranges': { type: 'string' },
  'max-sessions': { type: 'string' },
  'max-session-bos': { type: 'string' },
  'max-session-bytes': { type: 'string' },
  'max-session-surfaces': { type: 'string' },
  bandwidth: { type: 'string' },
  'fence-latency': { type: 'string' },
  'high-water-mark': { type: 'string' },
  'hello-timeout': { type: 'string' },
  'idle-timeout': { type: 'string' },
  log: { type: 'string' },
  'fail-nth': { type: 'string' },
  'drop-after': { type: 'string' },
  'fence-delay': { type: 'string' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof SPEC }>>['values'];

export async function deviceCommand(argv: string[]): Promise<number> {
  let options: DeviceOptions;
  let faults: Faults;
  try {
    const { values } = parseArgs({ args: argv, options: SPEC, strict: true, allowPositionals: false });
    if (values.help === true) {
      process.stdout.write(USAGE);
      return 0;
    }
    ({ options, faults } = fromArgs(values));
    resolveOptions(options); // reports bad values as usage errors before anything starts
  } catch (e) {
    process.stderr.write(`vgpu-dirty device: ${e instanceof Error ? e.message : String(e)}\n`);
    process.stderr.write('run "vgpu-dirty device --help" for usage\n');
    return 2;
  }

  let device;
  try {
    device = await startDevice(options);
  } catch (e) {
    process.stderr.write(`vgpu-dirty device: cannot start: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  if (faults.failNth !== undefined) device.faults.failNth(faults.failNth);
  if (faults.dropAfter !== undefined) device.faults.dropAfter(faults.dropAfter);
  if (faults.fenceDelay !== undefined) device.faults.delayFences(faults.fenceDelay);

  // Handlers go in before the line is printed: whoever reads the line may signal at once.
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    const stop = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(sig);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  process.stdout.write(`listening on ${device.url}\n`);
  const signal = await stopped;
  options.log?.(`${signal}: shutting down`);
  await device.close();
  return 0;
}

interface Faults {
  failNth?: number;
  dropAfter?: number;
  fenceDelay?: number;
}

function fromArgs(v: Values): { options: DeviceOptions; faults: Faults } {
  const opt = (name: keyof Values & string): number | undefined => {
    const text = v[name];
    return typeof text === 'string' ? number(name, text) : undefined;
  };
  const limits = {
    maxBos: opt('max-bos'),
    maxBoSize: opt('max-bo-size'),
    maxTotalBytes: opt('max-total-bytes'),
    maxSurfaces: opt('max-surfaces'),
    maxMessageSize: opt('max-message-size'),
    maxRanges: opt('max-ranges'),
    maxSessions: opt('max-sessions'),
    maxSessionBos: opt('max-session-bos'),
    maxSessionBytes: opt('max-session-bytes'),
    maxSessionSurfaces: opt('max-session-surfaces'),
  };
  const faults = { failNth: opt('fail-nth'), dropAfter: opt('drop-after'), fenceDelay: opt('fence-delay') };
  for (const [flag, n] of [['--fail-nth', faults.failNth], ['--drop-after', faults.dropAfter]] as const) {
    if (n === 0) throw new RangeError(`${flag} counts from 1`);
  }
  const options: DeviceOptions = {
    host: v.host,
    port: opt('port'),
    token: v.token,
    controlToken: v['control-token'],
    features: v.features === undefined ? undefined : (v.features.split(',').map((f) => f.trim()).filter((f) => f !== '') as Feature[]),
    pageSize: opt('page-size'),
    bandwidth: opt('bandwidth'),
    fenceLatency: opt('fence-latency'),
    highWaterMark: opt('high-water-mark'),
    helloTimeout: opt('hello-timeout'),
    idleTimeout: opt('idle-timeout'),
    logFile: v.log,
    limits: Object.fromEntries(Object.entries(limits).filter(([, n]) => n !== undefined)),
    log: v.quiet === true ? undefined : (line) => process.stderr.write(`[device] ${line}\n`),
  };
  return { options, faults };
}

function number(name: string, text: string): number {
  const n = parseSize(text);
  if (Number.isNaN(n)) throw new RangeError(`--${name}: expected a number (optionally with k, m or g), got '${text}'`);
  return n;
}
