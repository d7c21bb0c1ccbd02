import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';

/** What the channel uses of a viewer's socket (a ws WebSocket). */
export type ViewerSocket = Pick<WebSocket, 'send' | 'on' | 'close' | 'terminate' | 'bufferedAmount' | 'readyState'>;
import type { FrameSampler } from './frame-sampler.js';

export interface UpdateChannelOptions {
  /** Least time between two updates (default 200 ms). */
  intervalMs?: number;
  /** Least time between two reads of the device's framebuffer (default 1000 ms): the costly part. */
  imageIntervalMs?: number;
  /** A viewer with more than this many bytes not yet written to its socket is skipped (default 4 MiB). */
  highWaterBytes?: number;
  /** Viewers at once (default 8); more are closed with 1013. */
  maxViewers?: number;
  /** Longest wait for a viewer to take an update before publish() resolves anyway (default 5000 ms). */
  sendTimeoutMs?: number;
  log?: (line: string) => void;
}

interface Viewer {
  ws: ViewerSocket;
  /** Next series row it needs, and the image refresh it has. */
  rows: number;
  image: number;
  hasRun: boolean;
  /** An update is being written; none other is sent until it is. */
  sending: boolean;
  /** It has the final state of an ended run: nothing more to send. */
  final: boolean;
}

/** What publish() made visible: the update's number, the image refresh and series rows it carried, the viewers it went to. */
export interface Published {
  /** Updates are numbered 1, 2, … per channel (header `seq`): a viewer that has seq n has everything published up to it. */
  seq: number;
  image: number;
  rows: number;
  viewers: number;
}


/**
 * The dashboard's own WebSocket (not the device protocol): the server pushes,
 * the page only listens. Each viewer gets, at most every intervalMs and only
 * once it has taken the previous update, what it lacks: the series rows after
 * its cursor, the image pages changed after the refresh it has, and the
 * current page maps, overlays and status. A slow viewer therefore skips
 * updates instead of queueing them, and the run never waits for a viewer.
 *
 * Binary frame: u32 LE header length, the header as UTF-8 JSON, then the
 * header's `parts` ({name: [offset, length]}, offsets from the frame's start,
 * 4-byte aligned so the page can view them as Uint32Array). A frame goes out
 * as WebSocket fragments of one message, the framebuffer's pages straight
 * from the image's bytes: nothing is copied to build it.
 */
export class UpdateChannel {
  private readonly wss: WebSocketServer;
  private readonly viewers = new Set<Viewer>();
  private readonly timer: NodeJS.Timeout;
  private chain: Promise<Published> = Promise.resolve({ seq: 0, image: 0, rows: 0, viewers: 0 });
  private seq = 0;
  private busy = false;
  private closed = false;
  private readonly highWater: number;
  private readonly maxViewers: number;
  private lastError = '';
  private lastImageRead = -Infinity;

  constructor(private readonly sampler: FrameSampler, private readonly opts: UpdateChannelOptions = {}) {
    this.highWater = opts.highWaterBytes ?? 4 << 20;
    this.maxViewers = opts.maxViewers ?? 8;
    // The page sends nothing; anything larger than a ping is refused by ws itself.
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 1024 });
    this.timer = setInterval(() => {
      if (this.busy || this.viewers.size === 0) return;
      this.chain = this.chain.then(() => this.publishOnce(false));
    }, opts.intervalMs ?? 200);
    this.timer.unref();
  }

  get viewerCount(): number {
    return this.viewers.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.addViewer(ws));
  }

  /** A viewer connected (its socket is open). */
  addViewer(ws: ViewerSocket): void {
    if (this.closed || this.viewers.size >= this.maxViewers) return ws.close(1013, 'too many viewers');
    const v: Viewer = { ws, rows: 0, image: 0, hasRun: false, sending: false, final: false };
    this.viewers.add(v);
    ws.on('error', () => ws.terminate());
    ws.on('close', () => this.viewers.delete(v));
    ws.on('message', () => {}); // nothing is expected from the page
  }

  /**
   * Read the device image afresh and send every ready viewer its update now.
   * Calls run one after another; resolves when the viewers took it (or after 5 s).
   */
  publish(): Promise<Published> {
    this.chain = this.chain.then(() => this.publishOnce(true));
    return this.chain;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    for (const v of this.viewers) v.ws.terminate();
    this.viewers.clear();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private async publishOnce(readImage: boolean): Promise<Published> {
    const s = this.sampler;
    const image = s.image;
    if (this.closed || s.info === null || this.viewers.size === 0) return { seq: this.seq, image: image?.current ?? 0, rows: s.series?.appended ?? 0, viewers: 0 };
    this.busy = true;
    try {
      const now = performance.now();
      if (image !== null && s.status.running && (readImage || now - this.lastImageRead >= (this.opts.imageIntervalMs ?? 1000))) {
        this.lastImageRead = now;
        await image.refresh().then(
          () => void (this.lastError = ''),
          (e: Error) => {
            // Once per distinct failure: a device that is away says so once, not five times a second.
            if (e.message !== this.lastError) this.opts.log?.(`dashboard: cannot read the device's framebuffer: ${e.message}`);
            this.lastError = e.message;
          },
        );
      }
      const seq = ++this.seq;
      const states = s.pageStates();
      const overlays = s.takeOverlays();
      const sends: Array<Promise<void>> = [];
      let served = 0;
      for (const v of this.viewers) {
        if (v.sending || v.final || v.ws.bufferedAmount > this.highWater || v.ws.readyState !== OPEN) continue;
        const parts: Part[] = [];
        states.forEach((st, i) => parts.push([`states${i}`, st], [`heat${i}`, bytesOf(s.maps[i]!.heat)]));
        parts.push(['writtenBack', bytesOf(overlays.writtenBack)], ['deviceChanged', bytesOf(overlays.deviceChanged)]);
        let imageHeader: { version: number; pages: string; data: string } | undefined;
        if (image !== null && image.current > v.image) {
          const pages = image.changedSince(v.image);
          parts.push(['imagePages', bytesOf(Uint32Array.from(pages))], ['imageData', pageRuns(image.bytes, pages, image.pageSize)]);
          imageHeader = { version: image.current, pages: 'imagePages', data: 'imageData' };
        }
        const rows = s.series!.since(v.rows);
        const header = {
          type: 'update',
          seq,
          ...(v.hasRun ? {} : { run: s.info }),
          status: s.status,
          rows,
          maps: states.map((_, i) => ({ states: `states${i}`, heat: `heat${i}` })),
          overlay: { writtenBack: 'writtenBack', deviceChanged: 'deviceChanged' },
          ...(imageHeader ? { image: imageHeader } : {}),
        };
        const chunks = encodeFrame(header, parts);
        v.sending = true;
        v.hasRun = true;
        v.rows = rows.to;
        if (imageHeader) v.image = imageHeader.version;
        if (!s.status.running) v.final = true;
        served++;
        sends.push(new Promise<void>((resolve) => {
          const timeout = setTimeout(resolve, this.opts.sendTimeoutMs ?? 5000);
          const last = chunks.length - 1;
          chunks.forEach((c, i) => v.ws.send(c, { binary: true, fin: i === last }, i < last ? undefined : () => {
            v.sending = false;
            clearTimeout(timeout);
            resolve();
          }));
        }));
      }
      await Promise.all(sends);
      return { seq, image: image?.current ?? 0, rows: s.series!.appended, viewers: served };
    } finally {
      this.busy = false;
    }
  }
}

function bytesOf(a: Uint32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The bytes of the given pages (ascending), as views of each run of consecutive pages (the last page of a BO may be short). */
function pageRuns(bytes: Uint8Array, pages: readonly number[], pageSize: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < pages.length; ) {
    let j = i + 1;
    while (j < pages.length && pages[j] === pages[j - 1]! + 1) j++;
    out.push(bytes.subarray(pages[i]! * pageSize, Math.min(bytes.length, pages[j - 1]! * pageSize + pageSize)));
    i = j;
  }
  return out;
}

/** A named part of a frame: its bytes, in one piece or several sent back to back. */
export type Part = [name: string, data: Uint8Array | readonly Uint8Array[]];

const align4 = (n: number) => (n + 3) & ~3;
/** WebSocket readyState of an open socket. */
const OPEN = 1;
const PADDING = new Uint8Array(3);

/**
 * One binary frame as the chunks to send in order (u32 LE header length, JSON header
 * with `parts`, then the parts, each 4-byte aligned); concatenated, they are the frame.
 */
export function encodeFrame(header: object, parts: readonly Part[]): Uint8Array[] {
  const pieces = parts.map(([name, data]): [string, readonly Uint8Array[], number] => {
    const list = data instanceof Uint8Array ? [data] : data;
    return [name, list, list.reduce((n, c) => n + c.length, 0)];
  });
  const layout: Record<string, [number, number]> = {};
  // The header's own length depends on the offsets it lists: lay the parts out
  // after a header measured with placeholder offsets, widening until it fits.
  let reserve = 256;
  for (;;) {
    let at = align4(4 + reserve);
    for (const [name, , length] of pieces) {
      layout[name] = [at, length];
      at = align4(at + length);
    }
    const json = Buffer.from(JSON.stringify({ ...header, parts: layout }));
    if (json.length > reserve) {
      reserve = json.length + 64;
      continue;
    }
    const head = Buffer.alloc(align4(4 + reserve));
    head.writeUInt32LE(json.length, 0);
    json.copy(head, 4);
    const out: Uint8Array[] = [head];
    for (const [, list, length] of pieces) {
      for (const c of list) if (c.length > 0) out.push(c);
      if (align4(length) > length) out.push(PADDING.subarray(0, align4(length) - length));
    }
    return out;
  }
}

/** The reverse of encodeFrame (live.js does the same in the page): the header, and its parts by name. */
export function decodeFrame(frame: Uint8Array): { header: Record<string, unknown>; part(name: string): Uint8Array } {
  const buf = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  if (buf.length < 4) throw new RangeError('frame shorter than its header length');
  const len = buf.readUInt32LE(0);
  if (4 + len > buf.length) throw new RangeError('frame shorter than its header');
  const header = JSON.parse(buf.subarray(4, 4 + len).toString('utf8')) as Record<string, unknown>;
  const parts = (header['parts'] ?? {}) as Record<string, [number, number]>;
  return {
    header,
    part(name) {
      const p = parts[name];
      if (p === undefined || p[0] + p[1] > buf.length) throw new RangeError(`frame has no part ${name}`);
      return new Uint8Array(buf.buffer, buf.byteOffset + p[0], p[1]);
    },
  };
}
