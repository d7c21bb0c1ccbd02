// Child-process entry of the benchmark: runs one job given as JSON in argv[2] and prints
// `ready <info>` once set up. Stepped jobs (scenario 3) then measure one run per `run` line on
// stdin and print `result <json>` for each; the others run until SIGTERM.
// Jobs run in their own process so that driver and device (or the raw
// baseline's two ends) sit in separate processes, and so that each process's
// peak RSS belongs to one scenario only.
import { createInterface } from 'node:readline';
import { startDevice } from '../device/index.js';
import { BoDriver } from './lib/bo-driver.js';
import { RawClient, startRawServer } from './lib/raw-ws.js';
import { peakRss, resetPeakRss } from './lib/rss.js';
import { workerProtocol } from './lib/worker-process.js';

/** Scenario 3 (and 6): flush a fully dirty BO; no url means a device in this process. */
export interface WritebackJob {
  kind: 'writeback';
  url?: string;
  bytes: number;
  warmup: number;
  zeroMask: boolean;
  /** The device process, whose peak RSS is read per run (scenario 6). */
  devicePid?: number;
}
/** One measured run of a writeback job. */
export interface WritebackResult {
  gbps: number;
  driverPeakRss: number;
  /** Peak RSS of devicePid during the run, when given. */
  devicePeakRss?: number;
}

/** Raw ws baseline of scenario 3; no url means a raw server in this process. */
export interface RawStreamJob {
  kind: 'raw-stream';
  url?: string;
  bytes: number;
  messageBytes: number;
  window: number;
  warmup: number;
  zeroMask: boolean;
}
/** One measured run of a raw stream. */
export interface RawStreamResult {
  gbps: number;
}

/** Background load of scenario 4: flush a fully dirty BO again and again. */
export interface BulkWritebackJob {
  kind: 'bulk-writeback';
  url: string;
  bytes: number;
  zeroMask: boolean;
}

/** Background load of scenario 4's baseline: stream raw messages without end. */
export interface BulkRawJob {
  kind: 'bulk-raw';
  url: string;
  messageBytes: number;
  window: number;
  zeroMask: boolean;
}

/** A raw baseline server in its own process; ready carries its URL. */
export interface RawServerJob {
  kind: 'raw-server';
}

export type Job = WritebackJob | RawStreamJob | BulkWritebackJob | BulkRawJob | RawServerJob;
/** Jobs measured run by run on the runner's command (startSteppedWorker). */
export type SteppedJob = WritebackJob | RawStreamJob;
export type StepResult<J extends SteppedJob> = J extends WritebackJob ? WritebackResult : RawStreamResult;

/** Set by SIGTERM: endless jobs finish their current step and exit cleanly. */
let stopping = false;
const stopped = new Promise<void>((resolve) => {
  process.once('SIGTERM', () => {
    stopping = true;
    resolve();
  });
});

const out = (line: string): void => void process.stdout.write(`${line}\n`);

/**
 * Runs the job's warm-ups, reports ready, then one measured run per `run` line on stdin (its
 * result on stdout), until `end`: the runner decides when each run happens, so runs of
 * different jobs can alternate and load that comes and goes lands on all of them.
 */
async function serveSteps(warmup: number, once: () => Promise<unknown>, finish: () => Promise<void>): Promise<void> {
  for (let i = 0; i < warmup; i++) await once();
  out(workerProtocol.ready());
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === workerProtocol.RUN) out(workerProtocol.result(await once()));
    else if (line === workerProtocol.END) break;
  }
  await finish();
  out(workerProtocol.result(null));
}

async function writeback(job: WritebackJob): Promise<void> {
  const device = job.url === undefined
    ? await startDevice({ port: 0, limits: { maxBoSize: job.bytes, maxTotalBytes: Math.max(job.bytes, 1 << 30) } })
    : null;
  const d = await BoDriver.open(job.url ?? device!.url, job.bytes, { zeroMask: job.zeroMask });
  let value = 2;
  try {
    await serveSteps(job.warmup, async (): Promise<WritebackResult> => {
      resetPeakRss();
      if (job.devicePid !== undefined) resetPeakRss(job.devicePid);
      d.dirtyAll(value++); // a value no earlier run wrote, so every page really changes
      const t0 = performance.now();
      const r = await d.drv.flush();
      const seconds = (performance.now() - t0) / 1000;
      return {
        gbps: r.payloadBytes / seconds / 1e9,
        driverPeakRss: peakRss(),
        ...(job.devicePid === undefined ? {} : { devicePeakRss: peakRss(job.devicePid) }),
      };
    }, () => d.verify());
  } finally {
    await d.close();
    await device?.close();
  }
}

async function rawStream(job: RawStreamJob): Promise<void> {
  const server = job.url === undefined ? await startRawServer() : null;
  const client = await RawClient.connect(job.url ?? server!.url, job.zeroMask);
  try {
    await serveSteps(job.warmup, async (): Promise<RawStreamResult> => ({
      gbps: job.bytes / (await client.stream(job.bytes, job.messageBytes, job.window)) / 1e9,
    }), async () => {});
  } finally {
    await client.close();
    await server?.close();
  }
}

async function bulkWriteback(job: BulkWritebackJob): Promise<void> {
  const d = await BoDriver.open(job.url, job.bytes, { zeroMask: job.zeroMask });
  try {
    out(workerProtocol.ready());
    // markAllDirty: the load is the transfer, not this process's page faults.
    while (!stopping) {
      d.res.markAllDirty();
      await d.drv.flush();
    }
  } finally {
    await d.close();
  }
}

async function bulkRaw(job: BulkRawJob): Promise<void> {
  const client = await RawClient.connect(job.url, job.zeroMask);
  try {
    out(workerProtocol.ready());
    await client.stream(Infinity, job.messageBytes, job.window, () => stopping);
  } finally {
    await client.close();
  }
}

async function rawServer(): Promise<void> {
  const server = await startRawServer();
  out(workerProtocol.ready(server.url));
  await stopped;
  await server.close();
}

async function main(job: Job): Promise<void> {
  switch (job.kind) {
    case 'writeback':
      return writeback(job);
    case 'raw-stream':
      return rawStream(job);
    case 'bulk-writeback':
      return bulkWriteback(job);
    case 'bulk-raw':
      return bulkRaw(job);
    case 'raw-server':
      return rawServer();
  }
}

main(JSON.parse(process.argv[2] ?? '{}') as Job).then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
