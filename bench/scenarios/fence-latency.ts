import { BoDriver } from '../lib/bo-driver.js';
import type { Child } from '../lib/children.js';
import { startDeviceProcess } from '../lib/device-process.js';
import { RawClient } from '../lib/raw-ws.js';
import { makeRow, targets, type Row } from '../lib/result.js';
import { type Context, MiB, PAGE, type Scenario } from '../lib/scenario.js';
import { percentile, repeat } from '../lib/stats.js';
import { startWorker } from '../lib/worker-process.js';

/** A small BO (PAGETABLE tracking): each sync dirties one of its pages. */
const SYNC_BO_PAGES = 16;

type Latencies = { p50: number; p99: number; max: number };

/**
 * Scenario 4: latency of a 1-page sync (CPU write, flush, fence signalled)
 * at idle and while another driver process writes back a large BO to the same
 * device, against a raw ws round trip of the same bytes, idle and while a raw
 * stream loads the raw server. Device, raw server and loads are separate
 * processes; the measuring ends run here.
 */
export const fenceLatency: Scenario = {
  id: '4',
  title: 'Fence latency',
  async run(ctx: Context): Promise<Row[]> {
    const syncs = ctx.quick ? 200 : 1000;
    const bulkBytes = (ctx.quick ? 8 : 64) * MiB;
    const device = await startDeviceProcess();
    const rawServer = await startWorker({ kind: 'raw-server' });
    const drv = await BoDriver.open(device.url, SYNC_BO_PAGES * PAGE, { zeroMask: false });
    const raw = await RawClient.connect(rawServer.info, false);
    try {
      let n = 0;
      const sync = async () => {
        drv.dirtyPages(n % SYNC_BO_PAGES, 1, n++);
        const t0 = performance.now();
        await drv.drv.flush();
        return performance.now() - t0;
      };
      // The raw message carries what one sync puts on the wire (one write frame with its fence).
      const before = drv.drv.conn.bytesSent;
      await sync();
      const syncBytes = drv.drv.conn.bytesSent - before;
      const rtt = () => raw.roundTrip(syncBytes);
      const series = (one: () => Promise<number>) => repeat(ctx.warmup, ctx.runs, () => latencies(syncs, one));

      ctx.log('  4: idle');
      // Each run times the syncs and then the raw round trips, so both see the machine as it is
      // during that run: on a shared machine, load that comes and goes would otherwise land on
      // one side of the ratio only.
      const pairs = await repeat(ctx.warmup, ctx.runs, async () => [await latencies(syncs, sync), await latencies(syncs, rtt)] as const);
      const idle = pairs.map(([mine]) => mine);
      const rawIdle = pairs.map(([, base]) => base);
      ctx.log('  4: under bulk writeback');
      const busy = await underLoad(startWorker({ kind: 'bulk-writeback', url: device.url, bytes: bulkBytes, zeroMask: false }), () => series(sync));
      const rawBusy = await underLoad(
        startWorker({ kind: 'bulk-raw', url: rawServer.info, messageBytes: MiB, window: 4, zeroMask: false }),
        () => series(rtt),
      );
      const rows: Row[] = [];
      for (const [label, mine, base] of [['idle', idle, rawIdle], ['under bulk', busy, rawBusy]] as const) {
        for (const p of ['p50', 'p99', 'max'] as const) {
          rows.push(makeRow('4', `1-page sync ${label}, ${p}`, {
            unit: 'ms', samples: mine.map((l) => l[p]),
            baseline: { name: `raw ws RTT ${label}`, samples: base.map((l) => l[p]) },
            ...(label === 'idle' && p === 'p50' ? { target: targets.ratioAtMost(1.2, 'raw RTT') } : {}),
            ...(p === 'p50' ? { note: `${syncs} syncs per run, ${syncBytes} bytes each way out${label === 'under bulk' ? `; load: ${bulkBytes / MiB} MiB BO flushed in a loop by another driver process (raw: endless 1 MiB stream)` : '; each run times its syncs, then as many raw round trips'}` } : {}),
          }));
        }
      }
      return rows;
    } finally {
      await raw.close();
      await drv.close();
      await rawServer.child.close();
      await device.child.close();
    }
  },
};

async function latencies(n: number, one: () => Promise<number>): Promise<Latencies> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) ms.push(await one());
  ms.sort((a, b) => a - b);
  return { p50: percentile(ms, 50), p99: percentile(ms, 99), max: ms[ms.length - 1]! };
}

/** Measure while a background worker runs; the worker is stopped afterwards, also on error. */
async function underLoad<T>(load: Promise<{ child: Child }>, measure: () => Promise<T>): Promise<T> {
  const { child } = await load;
  try {
    return await measure();
  } finally {
    await child.close();
  }
}
