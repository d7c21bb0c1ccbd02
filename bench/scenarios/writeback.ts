import { startDeviceProcess } from '../lib/device-process.js';
import { makeRow, targets, type Row } from '../lib/result.js';
import { type Context, MiB, type Scenario } from '../lib/scenario.js';
import { startSteppedWorker, startWorker } from '../lib/worker-process.js';
import type { WritebackResult } from '../worker.js';

/** The driver's default batch (maxBatchBytes) and window: raw messages get the same size and count in flight. */
const MESSAGE_BYTES = 1 * MiB;
const WINDOW = 4;

/**
 * Scenarios 3 and 6: write back a fully dirty BO (CPU writes to every page,
 * then one flush), driver and device in separate processes and both in one,
 * each against raw ws with the same message size and ws options measured in
 * the same run; and the peak RSS of both processes during it. Measured with
 * the RFC's random masking key (the default) and with the zero key
 * (ConnectionOptions.zeroMask), raw baseline likewise. The device runs its own
 * WebSocket endpoint (the default); the 2-process rows are repeated against a device on ws
 * (`--websocket ws`) in the same run, so the two can be compared. Each setup lives in a worker
 * of its own for the whole series, and their runs alternate.
 */
export const writeback: Scenario = {
  id: '3',
  title: 'End-to-end writeback (and 6: memory)',
  async run(ctx: Context): Promise<Row[]> {
    const bytes = (ctx.quick ? 16 : 256) * MiB;
    const common = { bytes, warmup: ctx.warmup };
    const raw = { ...common, messageBytes: MESSAGE_BYTES, window: WINDOW };
    const device = await startDeviceProcess(['--max-bo-size', String(bytes)]);
    const wsDevice = await startDeviceProcess(['--max-bo-size', String(bytes), '--websocket', 'ws']);
    const rawServer = await startWorker({ kind: 'raw-server' });
    const rows: Row[] = [];
    try {
      for (const zeroMask of [false, true]) {
        const mask = zeroMask ? 'zero mask' : 'RFC mask';
        ctx.log(`  3: ${mask}: warm-up`);
        // Every setup in its own worker, warmed up once; then the runs alternate, one of each
        // in turn, so that load that comes and goes on a shared machine lands on all of them
        // and on their baselines alike.
        const rawSep = await startSteppedWorker({ kind: 'raw-stream', url: rawServer.info, zeroMask, ...raw });
        const sep = await startSteppedWorker({ kind: 'writeback', url: device.url, devicePid: device.child.pid, zeroMask, ...common });
        const sepWs = await startSteppedWorker({ kind: 'writeback', url: wsDevice.url, devicePid: wsDevice.child.pid, zeroMask, ...common });
        const rawOne = await startSteppedWorker({ kind: 'raw-stream', zeroMask, ...raw });
        const one = await startSteppedWorker({ kind: 'writeback', zeroMask, ...common });
        const runs = { rawSep: [] as number[], sep: [] as WritebackResult[], sepWs: [] as WritebackResult[], rawOne: [] as number[], one: [] as WritebackResult[] };
        try {
          for (let i = 0; i < ctx.runs; i++) {
            ctx.log(`  3: ${mask}: run ${i + 1} of ${ctx.runs}`);
            runs.rawSep.push((await rawSep.step()).gbps);
            runs.sep.push(await sep.step());
            runs.sepWs.push(await sepWs.step());
            runs.rawOne.push((await rawOne.step()).gbps);
            runs.one.push(await one.step());
          }
        } finally {
          // end() verifies each writeback's device copy: a fast but wrong writeback is no result.
          for (const w of [rawSep, sep, sepWs, rawOne, one]) await w.end();
        }
        const gbps = (r: WritebackResult[]) => r.map((x) => x.gbps);
        const target = targets.ratioAtLeast(0.85, 'raw ws');
        rows.push(
          makeRow('3', `writeback 2 processes, ${mask}`, {
            unit: 'GB/s', samples: gbps(runs.sep), baseline: { name: 'raw ws', samples: runs.rawSep }, target,
            note: `${bytes / MiB} MiB BO, fully dirty; ${MESSAGE_BYTES / MiB} MiB messages, window ${WINDOW}; runs of all rows alternate`,
          }),
          makeRow('3', `writeback 2 processes, ${mask}, device on ws`, {
            unit: 'GB/s', samples: gbps(runs.sepWs), baseline: { name: 'raw ws', samples: runs.rawSep }, target,
          }),
          makeRow('3', `writeback 1 process, ${mask}`, {
            unit: 'GB/s', samples: gbps(runs.one), baseline: { name: 'raw ws', samples: runs.rawOne }, target,
          }),
        );
        const limitMiB = (1.1 * bytes + 64 * MiB) / MiB;
        const rss = (name: string, samples: number[]) => makeRow('6', `${name} peak RSS, ${mask}`, {
          unit: 'MiB', samples: samples.map((b) => b / MiB),
          baseline: { name: 'BO size', samples: [bytes / MiB] },
          target: { text: `≤ 1.1×BO + 64 MiB (${limitMiB.toFixed(0)})`, met: (r) => r.median <= limitMiB },
        });
        rows.push(
          rss('driver', runs.sep.map((r) => r.driverPeakRss)),
          rss('device', runs.sep.map((r) => r.devicePeakRss!)),
          rss('device on ws', runs.sepWs.map((r) => r.devicePeakRss!)),
        );
      }
    } finally {
      await rawServer.child.close();
      await wsDevice.child.close();
      await device.child.close();
    }
    return rows;
  },
};
