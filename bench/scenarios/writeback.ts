import { startDeviceProcess } from '../lib/device-process.js';
import { makeRow, targets, type Row } from '../lib/result.js';
import { type Context, MiB, type Scenario } from '../lib/scenario.js';
import { runInWorker, startWorker } from '../lib/worker-process.js';

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
 * (`--websocket ws`) in the same run, so the two can be compared.
 */
export const writeback: Scenario = {
  id: '3',
  title: 'End-to-end writeback (and 6: memory)',
  async run(ctx: Context): Promise<Row[]> {
    const bytes = (ctx.quick ? 16 : 256) * MiB;
    const common = { bytes, runs: ctx.runs, warmup: ctx.warmup };
    const raw = { ...common, messageBytes: MESSAGE_BYTES, window: WINDOW };
    const device = await startDeviceProcess(['--max-bo-size', String(bytes)]);
    const wsDevice = await startDeviceProcess(['--max-bo-size', String(bytes), '--websocket', 'ws']);
    const rawServer = await startWorker({ kind: 'raw-server' });
    const rows: Row[] = [];
    try {
      for (const zeroMask of [false, true]) {
        const mask = zeroMask ? 'zero mask' : 'RFC mask';
        // The raw baseline runs right before and right after what it is compared with, and its
        // samples from both sides make the baseline: load that comes and goes on a shared
        // machine then lands on both sides of the ratio, not on one.
        const rawSepRuns = () => runInWorker({ kind: 'raw-stream', url: rawServer.info, zeroMask, ...raw });
        const rawOneRuns = () => runInWorker({ kind: 'raw-stream', zeroMask, ...raw });
        ctx.log(`  3: ${mask}, separate processes`);
        const rawSepBefore = await rawSepRuns();
        const sep = await runInWorker({ kind: 'writeback', url: device.url, devicePid: device.child.pid, zeroMask, ...common });
        ctx.log(`  3: ${mask}, separate processes, device on ws`);
        const sepWs = await runInWorker({ kind: 'writeback', url: wsDevice.url, devicePid: wsDevice.child.pid, zeroMask, ...common });
        const rawSep = { gbps: [...rawSepBefore.gbps, ...(await rawSepRuns()).gbps] };
        ctx.log(`  3: ${mask}, one process`);
        const rawOneBefore = await rawOneRuns();
        const one = await runInWorker({ kind: 'writeback', zeroMask, ...common });
        const rawOne = { gbps: [...rawOneBefore.gbps, ...(await rawOneRuns()).gbps] };
        const target = targets.ratioAtLeast(0.85, 'raw ws');
        rows.push(
          makeRow('3', `writeback 2 processes, ${mask}`, {
            unit: 'GB/s', samples: sep.gbps, baseline: { name: 'raw ws', samples: rawSep.gbps }, target,
            note: `${bytes / MiB} MiB BO, fully dirty; ${MESSAGE_BYTES / MiB} MiB messages, window ${WINDOW}`,
          }),
          makeRow('3', `writeback 2 processes, ${mask}, device on ws`, {
            unit: 'GB/s', samples: sepWs.gbps, baseline: { name: 'raw ws', samples: rawSep.gbps }, target,
          }),
          makeRow('3', `writeback 1 process, ${mask}`, {
            unit: 'GB/s', samples: one.gbps, baseline: { name: 'raw ws', samples: rawOne.gbps }, target,
          }),
        );
        const limitMiB = (1.1 * bytes + 64 * MiB) / MiB;
        const rss = (name: string, samples: number[]) => makeRow('6', `${name} peak RSS, ${mask}`, {
          unit: 'MiB', samples: samples.map((b) => b / MiB),
          baseline: { name: 'BO size', samples: [bytes / MiB] },
          target: { text: `≤ 1.1×BO + 64 MiB (${limitMiB.toFixed(0)})`, met: (r) => r.median <= limitMiB },
        });
        rows.push(rss('driver', sep.driverPeakRss), rss('device', sep.devicePeakRss), rss('device on ws', sepWs.devicePeakRss));
      }
    } finally {
      await rawServer.child.close();
      await wsDevice.child.close();
      await device.child.close();
    }
    return rows;
  },
};
