// `vgpu-dirty device`: runs the fake device until SIGINT/SIGTERM.
// stdout carries exactly one line, "listening on ws://HOST:PORT", once the device listens;
// everything else goes to stderr. Exit codes: 0 clean shutdown, 1 cannot start (listen, log file), 2 bad args.
import { resolveOptions, startDevice, WEBSOCKET_IMPLS, type DeviceOptions, type WebSocketImpl } from '../../device/index.js';
import { type Feature, FEATURES, U32_MAX } from '../../protocol/index.js';
import { type CommandIo, type CommandSpec, UsageError, type Values } from './options.js';

const MS_HOUR = 3_600_000;
const FAULTS = 'faults';

export const DEVICE: CommandSpec = {
  name: 'device',
  summary: "run the fake GPU device server (WebSocket); prints 'listening on ws://HOST:PORT' once ready",
  description: `Runs the fake vmwgfx-style device (WebSocket, MessagePack; see docs/protocol.md) until SIGINT or SIGTERM. stdout carries exactly one line, 'listening on ws://HOST:PORT', once the device listens; everything else goes to stderr.`,
  options: [
    { name: 'host', type: 'string', value: 'H', default: '127.0.0.1', description: 'interface to listen on' },
    { name: 'port', type: 'int', value: 'P', min: 0, max: 65535, default: 0, description: 'TCP port, 0 = ephemeral' },
    { name: 'token', type: 'string', value: 'T', description: "require this token in a driver's hello" },
    { name: 'control-token', type: 'string', value: 'T', description: "accept role 'control' connections (cross-session gpuWrite) whose hello carries this token (must differ from --token)" },
    { name: 'features', type: 'string', value: 'LIST', defaultText: `all of ${FEATURES.join(',')}`, description: 'comma-separated features to offer; ops of the others are answered unknown_op' },
    { name: 'page-size', type: 'size', min: 1, max: U32_MAX, defaultText: '4096', description: 'digest page size in bytes' },
    { name: 'max-bos', type: 'int', min: 1, defaultText: '4096', description: 'BOs alive at once, whole device' },
    { name: 'max-bo-size', type: 'size', min: 1, max: U32_MAX, defaultText: '256m', description: 'bytes of one BO' },
    { name: 'max-total-bytes', type: 'size', min: 1, defaultText: '1g', description: 'bytes of all BOs, whole device' },
    { name: 'max-surfaces', type: 'int', min: 1, defaultText: '4096', description: 'surfaces alive at once, whole device' },
    { name: 'max-message-size', type: 'size', min: 1024, max: U32_MAX, defaultText: '16m', description: 'bytes of one WebSocket message' },
    { name: 'max-ranges', type: 'int', min: 1, defaultText: '16384', description: 'ranges, boxes or digest pages per message' },
    { name: 'max-sessions', type: 'int', min: 1, defaultText: '64', description: "connections open at once; more get 'busy', close 1013" },
    { name: 'max-session-bos', type: 'int', min: 1, defaultText: 'a quarter of --max-bos', description: 'BOs of one session' },
    { name: 'max-session-bytes', type: 'size', min: 1, defaultText: 'a quarter of --max-total-bytes, at least --max-bo-size', description: "bytes of one session's BOs" },
    { name: 'max-session-surfaces', type: 'int', min: 1, defaultText: 'a quarter of --max-surfaces', description: 'surfaces of one session' },
    { name: 'bandwidth', type: 'size', value: 'BYTES', defaultText: '0', description: 'emulated DMA bytes per second, 0 = unlimited' },
    { name: 'fence-latency', type: 'int', value: 'MS', max: MS_HOUR, defaultText: '0', description: 'extra delay before a fence is signalled' },
    { name: 'high-water-mark', type: 'size', min: 1, defaultText: '8m', description: 'backlog bytes before reading pauses' },
    { name: 'hello-timeout', type: 'int', value: 'MS', min: 1, max: MS_HOUR, defaultText: '10000', description: 'close connections silent for this long before hello' },
    { name: 'idle-timeout', type: 'int', value: 'MS', max: 24 * MS_HOUR, defaultText: '60000', description: 'close sessions that send nothing for this long, 0 = never (announced in welcome)' },
    { name: 'websocket', type: 'string', choices: WEBSOCKET_IMPLS, defaultText: 'own', description: "WebSocket implementation: own (the device's endpoint: unmasks each message while copying it into a reusable buffer) or ws (the ws library's server)" },
    { name: 'log', type: 'string', value: 'FILE', description: 'record every received frame to FILE (VGPULOG1 format)' },
    { name: 'quiet', type: 'flag', description: 'no log lines on stderr' },
    { name: 'fail-nth', type: 'int', min: 1, group: FAULTS, description: "the Nth command fails with code 'injected'" },
    { name: 'drop-after', type: 'int', min: 1, group: FAULTS, description: 'cut the connection that receives the Nth message' },
    { name: 'fence-delay', type: 'int', value: 'MS', max: MS_HOUR, group: FAULTS, description: 'every fence is signalled MS later' },
  ],
  epilogue: `Sizes (SIZE, BYTES) take an optional k, m or g suffix (binary multiples).

Exit codes: 0 clean shutdown, 1 cannot start (listen, log file), 2 bad arguments.`,
  run: (args, _positionals, io) => deviceCommand(args, io),
};

async function deviceCommand(args: Values, io: CommandIo): Promise<number> {
  const { options, faults } = fromArgs(args, io);
  try {
    resolveOptions(options); // cross-option rules (control token, page size) before anything starts
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  let device;
  try {
    device = await startDevice(options);
  } catch (e) {
    io.err.write(`vgpu-dirty device: cannot start: ${e instanceof Error ? e.message : String(e)}\n`);
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
  io.out(`listening on ${device.url}`);
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

function fromArgs(v: Values, io: CommandIo): { options: DeviceOptions; faults: Faults } {
  const n = (name: string): number | undefined => v[name] as number | undefined;
  const limits = {
    maxBos: n('max-bos'),
    maxBoSize: n('max-bo-size'),
    maxTotalBytes: n('max-total-bytes'),
    maxSurfaces: n('max-surfaces'),
    maxMessageSize: n('max-message-size'),
    maxRanges: n('max-ranges'),
    maxSessions: n('max-sessions'),
    maxSessionBos: n('max-session-bos'),
    maxSessionBytes: n('max-session-bytes'),
    maxSessionSurfaces: n('max-session-surfaces'),
  };
  const features = v.features as string | undefined;
  const options: DeviceOptions = {
    host: v.host as string,
    port: n('port'),
    token: v.token as string | undefined,
    controlToken: v['control-token'] as string | undefined,
    features: features === undefined ? undefined : (features.split(',').map((f) => f.trim()).filter((f) => f !== '') as Feature[]),
    pageSize: n('page-size'),
    bandwidth: n('bandwidth'),
    fenceLatency: n('fence-latency'),
    highWaterMark: n('high-water-mark'),
    helloTimeout: n('hello-timeout'),
    idleTimeout: n('idle-timeout'),
    logFile: v.log as string | undefined,
    websocket: v.websocket as WebSocketImpl | undefined,
    limits: Object.fromEntries(Object.entries(limits).filter(([, x]) => x !== undefined)),
    log: v.quiet === true ? undefined : (line) => io.err.write(`[device] ${line}\n`),
  };
  return { options, faults: { failNth: n('fail-nth'), dropAfter: n('drop-after'), fenceDelay: n('fence-delay') } };
}
