import type { Cpu, Mm, Vma } from '../core/index.js';

/**
 * Where the scene draws: a framebuffer mapping and a vertex-buffer mapping,
 * in any processes; or, with `write`, wherever that stores (real memory:
 * the mappings are then not needed).
 */
export interface SceneTargets {
  fb: { mm?: Mm; vma?: Vma; width: number; height: number; pitch: number };
  vb: { mm?: Mm; vma?: Vma; bytes: number };
  /** Store `data` at byte `offset` of the target BO instead of a CPU write through its mapping. */
  write?: (target: 'fb' | 'vb', offset: number, data: Uint8Array) => Promise<void>;
  /** At least one CPU; work is spread over them. */
  cpus: readonly Cpu[];
  pageSize: number;
  /** Shown every CPU write through a mapping before it is made (recording a trace). */
  onWrite?: (cpu: number, mm: Mm, address: number, data: Uint8Array) => void;
}

export type Phase = 'busy' | 'idle' | 'sparse';

/** Phase of frame f: a 180-frame cycle of busy, idle, sparse, idle. */
export function phaseOf(f: number): Phase {
  const t = f % 180;
  if (t < 60) return 'busy';
  if (t < 90 || t >= 150) return 'idle';
  return 'sparse';
}

/**
 * The scripted workload of the main job, deterministic for a seed:
 *  - busy: a text region scrolls one line per frame (every row of the region
 *    rewritten), a 64×64 sprite moves, and 300 random 64-byte vertex writes
 *    land anywhere in the vertex buffer (well over 10 % of its pages, so its
 *    tracker votes for PAGETABLE);
 *  - sparse: only the sprite and 8 vertex writes;
 *  - idle: nothing (three quiet scans switch PAGETABLE trackers back to MKWRITE).
 * Returns the distinct pages of each BO written this frame.
 *
 * Every access goes through the CPUs' waiting path (writeAsync): a page the
 * device changed is unmapped until its readback lands, and an access to it
 * waits for that instead of failing, as a user of the driver must do.
 */
export class Scene {
  private rng: number;
  private readonly text: { x: number; y: number; w: number; h: number; line: number };
  private sprite = { x: 0, y: 600, dx: 7, dy: 3 };
  private readonly row: Uint8Array;
  private readonly spriteRow = new Uint8Array(64 * 4);
  private readonly vertex = new Uint8Array(64);

  constructor(private readonly t: SceneTargets, seed = 1) {
    this.rng = seed >>> 0 || 1;
    // 1024×320 at (64, 96); narrower and shorter on a framebuffer too small for that.
    this.text = { x: 64, y: 96, w: Math.min(1024, t.fb.width - 128), h: Math.min(320, t.fb.height - 192), line: 16 };
    this.sprite.y = Math.min(this.sprite.y, t.fb.height - 100);
    this.row = new Uint8Array(this.text.w * 4);
  }

  async frame(f: number): Promise<{ fbPages: number; vbPages: number }> {
    const fbPages = new Set<number>();
    const vbPages = new Set<number>();
    const phase = phaseOf(f);
    if (phase === 'busy') await this.scrollText(f, fbPages);
    if (phase !== 'idle') await this.moveSprite(f, fbPages);
    if (phase !== 'idle') await this.vertexWrites(phase === 'busy' ? 300 : 8, vbPages);
    return { fbPages: fbPages.size, vbPages: vbPages.size };
  }

  /** Rewrite every row of the text region as if scrolled up by one line of glyphs. */
  private async scrollText(f: number, pages: Set<number>): Promise<void> {
    const { fb } = this.t;
    const cpu = this.t.cpus[0]!;
    const { x, y, w, h, line } = this.text;
    for (let r = 0; r < h; r++) {
      const textRow = r + f * line;
      const glyphLine = Math.floor(textRow / line);
      for (let c = 0; c < w; c++) {
        const on = ((glyphLine * 131 + (c >> 3) * 17 + (textRow % line)) * 2654435761) >>> 29 === 0;
        const v = on ? 0xff : 0x20;
        this.row[c * 4] = v;
        this.row[c * 4 + 1] = v;
        this.row[c * 4 + 2] = v;
        this.row[c * 4 + 3] = 0xff;
      }
      const off = (y + r) * fb.pitch + x * 4;
      await this.store(cpu, 'fb', off, this.row);
      this.touch(pages, off, this.row.length);
    }
  }

  /** Erase the sprite's old square, move it, draw the new one. */
  private async moveSprite(f: number, pages: Set<number>): Promise<void> {
    const { fb } = this.t;
    const cpu = this.t.cpus[1 % this.t.cpus.length]!;
    const s = this.sprite;
    await this.drawSquare(cpu, s.x, s.y, 0, pages);
    s.x += s.dx;
    s.y += s.dy;
    if (s.x < 0 || s.x + 64 > fb.width) (s.dx = -s.dx), (s.x += 2 * s.dx);
    if (s.y < 0 || s.y + 64 > fb.height) (s.dy = -s.dy), (s.y += 2 * s.dy);
    await this.drawSquare(cpu, s.x, s.y, 0x40 + (f & 0x3f), pages);
  }

  private async drawSquare(cpu: Cpu, x: number, y: number, shade: number, pages: Set<number>): Promise<void> {
    const { fb } = this.t;
    this.spriteRow.fill(shade);
    for (let r = 0; r < 64; r++) {
      const off = (y + r) * fb.pitch + x * 4;
      await this.store(cpu, 'fb', off, this.spriteRow);
      this.touch(pages, off, this.spriteRow.length);
    }
  }

  /** Random 64-byte vertex updates from the remaining CPUs. */
  private async vertexWrites(n: number, pages: Set<number>): Promise<void> {
    const { vb, cpus } = this.t;
    for (let i = 0; i < n; i++) {
      const off = (this.next() % (vb.bytes / 64)) * 64;
      this.vertex.fill(this.next() & 0xff);
      const cpu = cpus[cpus.length > 2 ? 2 + (i % (cpus.length - 2)) : i % cpus.length]!;
      await this.store(cpu, 'vb', off, this.vertex);
      this.touch(pages, off, 64);
    }
  }

  /** One CPU write of `data` at byte `off` of a target: through its mapping, or the `write` hook. */
  private store(cpu: Cpu, target: 'fb' | 'vb', off: number, data: Uint8Array): Promise<void> {
    if (this.t.write !== undefined) return this.t.write(target, off, data);
    const { mm, vma } = this.t[target];
    if (mm === undefined || vma === undefined) throw new TypeError(`scene target ${target} has neither a mapping nor a write hook`);
    this.t.onWrite?.(cpu.id, mm, vma.start + off, data);
    return cpu.writeAsync(mm, vma.start + off, data);
  }

  private touch(pages: Set<number>, off: number, len: number): void {
    const ps = this.t.pageSize;
    for (let p = Math.floor(off / ps); p < Math.ceil((off + len) / ps); p++) pages.add(p);
  }

  /** xorshift32. */
  private next(): number {
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    return this.rng;
  }
}
