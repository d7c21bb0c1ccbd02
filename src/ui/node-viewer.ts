import WebSocket from 'ws';
import type { RunInfo, RunStatus } from './frame-sampler.js';
import type { Columns } from './series.js';
import { decodeFrame } from './update-channel.js';

/**
 * A viewer of the update channel without a browser: it applies every update
 * as the page does (rows appended, image pages copied into the framebuffer's
 * bytes, the latest page states and heat kept). For tests, the benchmark, and
 * scripts that want the dashboard's data.
 */
export class NodeViewer {
  run: RunInfo | null = null;
  status: RunStatus | null = null;
  updates = 0;
  /** The last update's number (UpdateChannel Published.seq). */
  seq = 0;
  bytesReceived = 0;
  /** Every row received, by column name. */
  readonly rows: Record<string, Array<number | null>> = {};
  /** The framebuffer as the page would draw it (the device's bytes), and the refresh it is at. */
  image: Uint8Array | null = null;
  imageVersion = 0;
  states: Uint8Array[] = [];
  heat: Uint32Array[] = [];
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => this.apply(data));
    ws.on('error', () => ws.terminate());
  }

  /** Connect to a dashboard at `url` (http://127.0.0.1:PORT/), as its own page would. */
  static async connect(url: string, timeoutMs = 10_000): Promise<NodeViewer> {
    const origin = url.replace(/\/$/, '');
    const ws = new WebSocket(`${origin.replace(/^http/, 'ws')}/updates`, { origin, perMessageDeflate: false, handshakeTimeout: timeoutMs });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return new NodeViewer(ws);
  }

  /** Resolves when cond() holds after some update; rejects after ms. */
  until(cond: (v: NodeViewer) => boolean, what: string, ms = 10_000): Promise<void> {
    if (cond(this)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!cond(this)) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`viewer: timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      this.waiters.add(check);
    });
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.terminate();
    });
  }

  private apply(data: Buffer): void {
    this.bytesReceived += data.length;
    const { header, part } = decodeFrame(data);
    const words = (name: string) => {
      const b = part(name);
      return new Uint32Array(b.slice().buffer);
    };
    if (header['run'] !== undefined) {
      this.run = header['run'] as RunInfo;
      const fb = this.run.bos[0]!;
      this.image = new Uint8Array(fb.pages * fb.pageSize);
    }
    this.status = header['status'] as RunStatus;
    const cols = (header['rows'] as { columns: Columns }).columns;
    cols.names.forEach((name, i) => (this.rows[name] ??= []).push(...cols.values[i]!));
    const maps = header['maps'] as Array<{ states: string; heat: string }>;
    this.states = maps.map((m) => part(m.states).slice());
    this.heat = maps.map((m) => words(m.heat));
    const img = header['image'] as { version: number; pages: string; data: string } | undefined;
    if (img !== undefined && this.image !== null && this.run !== null) {
      const ps = this.run.bos[0]!.pageSize;
      const bytes = part(img.data);
      let at = 0;
      for (const p of words(img.pages)) {
        const n = Math.min(ps, this.image.length - p * ps);
        this.image.set(bytes.subarray(at, at + n), p * ps);
        at += n;
      }
      this.imageVersion = img.version;
    }
    this.updates++;
    this.seq = header['seq'] as number;
    for (const w of [...this.waiters]) w();
  }
}
