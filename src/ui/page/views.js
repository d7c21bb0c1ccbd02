// @ts-check
// What the dashboard and the report draw: the framebuffer (the device's copy),
// the page maps, the charts and the run's tables. Shared by live.js (fed by the
// update channel) and report.js (fed by the data inlined in the report).
// A classic script: it defines the global createViews.

/** @typedef {import('../frame-sampler.js').RunInfo} RunInfo */
/** @typedef {import('../frame-sampler.js').RunStatus} RunStatus */
/** @typedef {import('../frame-sampler.js').BoInfo} BoInfo */
/** @typedef {import('../series.js').Columns} Columns */
/** @typedef {import('uplot')} UPlotChart */
/** @typedef {import('uplot').Options} UPlotOptions */
/** @typedef {{ clean: number, dirty: number, sending: number, deviceNewer: number }} PageCounts */

/** @type {typeof import('uplot')} */
const UPlot = /** @type {any} */ (globalThis).uPlot;

/** Page states on the wire (src/ui/page-map.ts PAGE_*), their names and colours (as in dashboard.css). */
const PAGE_STATES = [
  { key: 'clean', rgb: [0x2b, 0x36, 0x40] },
  { key: 'dirty', rgb: [0xff, 0xb3, 0x00] },
  { key: 'sending', rgb: [0x29, 0xb6, 0xf6] },
  { key: 'deviceNewer', rgb: [0xe0, 0x40, 0xfb] },
];

/** hsl (degrees, %, %) to [r, g, b]. */
function hslToRgb(/** @type {number} */ h, /** @type {number} */ s, /** @type {number} */ l) {
  const a = (s / 100) * Math.min(l / 100, 1 - l / 100);
  /** @param {number} n */
  const f = (n) => {
    const k = (n + h / 30) % 12;
    return Math.round(255 * (l / 100 - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}

/** The heat palette: 64 steps from hsl(240, 70 %, 12 %) to hsl(40, 90 %, 60 %) (the legend's gradient). */
const HEAT = Array.from({ length: 64 }, (_, i) => {
  const t = i / 63;
  return hslToRgb(240 - 200 * t, 70 + 20 * t, 12 + 48 * t);
});
const MAP_COLUMNS = 64;
const CELL = 4;

/**
 * @param {{ live: boolean, maxRows: number, chartIntervalMs: number }} opts live: the framebuffer
 *   panel is shown; maxRows: rows the charts keep (the oldest go first); chartIntervalMs: least
 *   time between two redraws of the charts
 */
function createViews(opts) {
  /** @param {string} id */
  const byId = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
  /** @type {RunInfo | null} */
  let run = null;
  /** @type {Record<string, Array<number | null>>} */
  let rows = {};
  /** @type {Array<{ plot: UPlotChart, data: () => import('uplot').AlignedData }>} */
  const charts = [];
  /** @type {Array<{ states: HTMLCanvasElement, heat: HTMLCanvasElement, counts: HTMLElement, last: PageCounts }>} */
  const maps = [];
  /** @type {ImageData | null} */
  let image = null;
  /** @type {{ written: Uint32Array, device: Uint32Array } | null} */
  let overlay = null;
  // Charts redraw at most every chartIntervalMs: the browser shares the machine with the run.
  let chartsStale = false;
  let lastChartDraw = -Infinity;
  /** @type {ReturnType<typeof setTimeout> | null} */
  let chartTimer = null;

  /** Build everything that depends on the run's BOs and settings. */
  function setRun(/** @type {RunInfo} */ info) {
    run = info;
    rows = {};
    overlay = null;
    settingsTable(info);
    buildMaps(info.bos);
    buildCharts(info.bos);
    const fb = info.bos[0]?.surface;
    if (opts.live && fb) {
      for (const id of ['fb', 'fb-overlay']) {
        const c = /** @type {HTMLCanvasElement} */ (byId(id));
        c.width = fb.width;
        c.height = fb.height;
      }
      image = new ImageData(fb.width, fb.height);
      for (let i = 3; i < image.data.length; i += 4) image.data[i] = 255;
      const ctx = /** @type {HTMLCanvasElement} */ (byId('fb')).getContext('2d');
      ctx?.putImageData(image, 0, 0);
    }
    for (const id of ['show-written', 'show-device']) byId(id).addEventListener('change', drawOverlay);
  }

  function settingsTable(/** @type {RunInfo} */ info) {
    const s = info.settings;
    const entries = [
      ['strategy', s.strategy],
      ['frames', s.frames === 0 ? 'until stopped' : String(s.frames)],
      ['pace', s.hz === 0 ? 'unpaced' : `${s.hz} Hz`],
      ['CPUs', String(s.cpus)],
      ['device', s.device],
      ['device writes', s.deviceWrites ? `every ${s.gpuEvery} frames` : 'none'],
      ['verification', s.verifyEvery === 0 ? 'at the end' : `every ${s.verifyEvery} frames and at the end`],
      ['writeback window', `${s.windowBatches} batches`],
      ['seed', String(s.seed)],
      ['started', new Date(info.startedAt).toLocaleString()],
      ...info.bos.map((b) => [`BO ${b.id}`, `${b.name}, ${b.pages} pages${b.surface ? `, ${b.surface.width}×${b.surface.height}` : ''}`]),
    ];
    fillTable(byId('settings'), entries);
  }

  function fillTable(/** @type {HTMLElement} */ table, /** @type {string[][]} */ entries) {
    table.replaceChildren(...entries.map(([k, v]) => {
      const tr = document.createElement('tr');
      for (const text of [k, v]) {
        const td = document.createElement('td');
        td.textContent = text ?? '';
        tr.append(td);
      }
      return tr;
    }));
  }

  function buildMaps(/** @type {BoInfo[]} */ bos) {
    const root = byId('maps');
    root.replaceChildren();
    maps.length = 0;
    for (const bo of bos) {
      const div = document.createElement('div');
      div.className = 'map';
      const h = document.createElement('h3');
      h.textContent = `${bo.name} (BO ${bo.id}, ${bo.pages} pages)`;
      const counts = document.createElement('div');
      counts.className = 'counts';
      const pair = document.createElement('div');
      pair.className = 'pair';
      const rowsN = Math.ceil(bo.pages / MAP_COLUMNS);
      /** @param {string} caption @param {string} title */
      const canvas = (caption, title) => {
        const fig = document.createElement('figure');
        const cap = document.createElement('figcaption');
        cap.textContent = caption;
        const c = document.createElement('canvas');
        c.width = MAP_COLUMNS * CELL;
        c.height = rowsN * CELL;
        c.title = title;
        fig.append(cap, c);
        pair.append(fig);
        return c;
      };
      const states = canvas('state', `${bo.name}: page states, ${MAP_COLUMNS} pages per row`);
      const heat = canvas('heat', `${bo.name}: frames that dirtied each page, ${MAP_COLUMNS} pages per row`);
      div.append(h, counts, pair);
      root.append(div);
      maps.push({ states, heat, counts, last: { clean: 0, dirty: 0, sending: 0, deviceNewer: 0 } });
    }
  }

  /** Draw every BO's page states and heat; counts are taken from the states drawn. */
  function setPageMaps(/** @type {Uint8Array[]} */ states, /** @type {Uint32Array[]} */ heat) {
    states.forEach((st, i) => {
      const m = maps[i];
      if (!m) return;
      const counts = { clean: 0, dirty: 0, sending: 0, deviceNewer: 0 };
      const h = heat[i] ?? new Uint32Array(st.length);
      let max = 0;
      for (let p = 0; p < h.length; p++) if ((h[p] ?? 0) > max) max = h[p] ?? 0;
      // One ImageData per map, cells drawn pixel by pixel: thousands of fillRect calls cost the browser far more.
      const sImg = new ImageData(m.states.width, m.states.height);
      const hImg = new ImageData(m.heat.width, m.heat.height);
      for (let p = 0; p < st.length; p++) {
        const s = PAGE_STATES[st[p] ?? 0] ?? PAGE_STATES[0];
        if (!s) continue;
        counts[/** @type {keyof PageCounts} */ (s.key)]++;
        const x = (p % MAP_COLUMNS) * CELL;
        const y = Math.floor(p / MAP_COLUMNS) * CELL;
        fillCell(sImg, x, y, s.rgb);
        fillCell(hImg, x, y, heatRgb(h[p] ?? 0, max));
      }
      m.states.getContext('2d')?.putImageData(sImg, 0, 0);
      m.heat.getContext('2d')?.putImageData(hImg, 0, 0);
      m.last = counts;
      m.counts.textContent = `clean ${counts.clean} · dirty ${counts.dirty} · being sent ${counts.sending} · newer on the device ${counts.deviceNewer} · hottest page dirtied in ${max} frames`;
    });
  }

  /** A cell of CELL - 1 pixels square (the last row and column stay clear: the grid). */
  function fillCell(/** @type {ImageData} */ img, /** @type {number} */ x, /** @type {number} */ y, /** @type {readonly number[]} */ rgb) {
    const d = img.data;
    for (let j = 0; j < CELL - 1; j++) {
      for (let k = 0; k < CELL - 1; k++) {
        const o = ((y + j) * img.width + x + k) * 4;
        d[o] = rgb[0] ?? 0;
        d[o + 1] = rgb[1] ?? 0;
        d[o + 2] = rgb[2] ?? 0;
        d[o + 3] = 255;
      }
    }
  }

  /** Dark blue (never) through green to yellow (the hottest page), on a log scale. */
  function heatRgb(/** @type {number} */ n, /** @type {number} */ max) {
    const t = n === 0 || max === 0 ? 0 : Math.log1p(n) / Math.log1p(max);
    return HEAT[Math.round(t * (HEAT.length - 1))] ?? [0, 0, 0];
  }

  /**
   * Chart definitions: title, y label, and the series (a column, a colour, and how
   * a value is shown). Per-BO method series are added from the run's BOs.
   */
  function buildCharts(/** @type {BoInfo[]} */ bos) {
    const root = byId('charts');
    root.replaceChildren();
    charts.length = 0;
    /** @param {string} name */
    const col = (name) => rows[name] ?? [];
    /** @param {string} name @param {number} k */
    const scaled = (name, k) => col(name).map((v) => (v === null ? null : v * k));
    const frames = () => /** @type {number[]} */ (col('frame'));
    /** @type {Array<{ title: string, y: string, series: Array<{ label: string, stroke: string, values: () => Array<number | null>, points?: boolean, stepped?: boolean, dash?: number[] }>, yValues?: (v: number) => string }>} */
    const defs = [
      { title: 'Pages per frame', y: 'pages', series: [
        { label: 'dirtied', stroke: '#ffb300', values: () => col('dirtied') },
        { label: 'sent', stroke: '#29b6f6', values: () => col('sent') },
      ] },
      { title: 'Bytes on the wire per frame', y: 'KiB', series: [
        { label: 'KiB', stroke: '#26a69a', values: () => scaled('bytes', 1 / 1024) },
      ] },
      { title: 'Fence latency (p50 / p99 of the last 60 flushes)', y: 'ms', series: [
        { label: 'flush', stroke: '#607d8b', values: () => col('latency') },
        { label: 'p50', stroke: '#66bb6a', values: () => col('p50') },
        { label: 'p99', stroke: '#ef5350', values: () => col('p99') },
      ] },
      { title: 'Faults, TLB flushes and IPIs per frame', y: 'count', series: [
        { label: 'faults', stroke: '#ab47bc', values: () => col('faults') },
        { label: 'TLB flushes', stroke: '#ffa726', values: () => col('tlbFlushes') },
        { label: 'IPIs', stroke: '#8d6e63', values: () => col('ipis') },
      ] },
    ];
    // Method of BO i drawn in its own band: 2i = PAGETABLE, 2i + 1 = MKWRITE; switches marked.
    const methodSeries = bos.flatMap((bo, i) => {
      const band = (/** @type {number | null} */ m) => (m === null ? null : 2 * i + m);
      const color = i === 0 ? '#29b6f6' : '#ffb300';
      return [
        { label: `${bo.name} method`, stroke: color, stepped: true, values: () => col(`method${i}`).map(band) },
        { label: `${bo.name} switch`, stroke: '#ffffff', points: true, values: () => col(`method${i}`).map((m, k) => ((col(`switches${i}`)[k] ?? 0) > 0 ? band(m) : null)) },
      ];
    });
    defs.push({
      title: 'Tracking method of each BO (switches marked)', y: '', series: methodSeries,
      yValues: (v) => {
        const bo = bos[Math.floor(v / 2)];
        return Number.isInteger(v) && bo ? `${bo.name.split(' ')[0]} ${v % 2 === 0 ? 'PAGETABLE' : 'MKWRITE'}` : '';
      },
    });
    for (const def of defs) {
      const div = document.createElement('div');
      div.className = 'chart';
      const h = document.createElement('h3');
      h.textContent = def.title;
      div.append(h);
      root.append(div);
      const yValues = def.yValues;
      /** @type {UPlotOptions} */
      const options = {
        width: chartWidth(div),
        height: 170,
        scales: { x: { time: false }, ...(yValues ? { y: { range: [-0.5, 2 * bos.length - 0.5] } } : {}) },
        axes: [
          { stroke: '#8b98a5', grid: { stroke: '#2a333d' }, label: 'frame' },
          {
            stroke: '#8b98a5', grid: { stroke: '#2a333d' }, label: def.y, size: yValues ? 130 : 50,
            ...(yValues ? { splits: () => bos.flatMap((_, i) => [2 * i, 2 * i + 1]), values: (_u, splits) => splits.map((v) => yValues(v)) } : {}),
          },
        ],
        series: [
          { label: 'frame' },
          ...def.series.map((s) => ({
            label: s.label,
            stroke: s.stroke,
            width: s.points ? 0 : 1.5,
            ...(s.points ? { points: { show: true, size: 7, fill: s.stroke, stroke: s.stroke }, paths: () => null } : { points: { show: false } }),
            ...(s.stepped ? { paths: UPlot.paths.stepped?.({ align: 1 }) } : {}),
          })),
        ],
        legend: { show: true },
        cursor: { drag: { x: true, y: false } },
      };
      const data = () => /** @type {import('uplot').AlignedData} */ ([frames(), ...def.series.map((s) => s.values())]);
      const plot = new UPlot(options, data(), div);
      charts.push({ plot, data });
    }
  }

  /** Append rows (columns by name) and redraw the charts (at most every chartIntervalMs); keeps the last maxRows. */
  function addRows(/** @type {Columns} */ cols) {
    cols.names.forEach((name, i) => {
      const have = rows[name] ?? (rows[name] = []);
      for (const v of cols.values[i] ?? []) have.push(v);
      if (have.length > opts.maxRows) have.splice(0, have.length - opts.maxRows);
    });
    chartsStale = true;
    const wait = lastChartDraw + opts.chartIntervalMs - performance.now();
    if (wait <= 0) drawCharts();
    else chartTimer ??= setTimeout(drawCharts, wait);
  }

  function drawCharts() {
    if (chartTimer !== null) clearTimeout(chartTimer);
    chartTimer = null;
    if (!chartsStale) return;
    chartsStale = false;
    lastChartDraw = performance.now();
    for (const c of charts) c.plot.setData(c.data());
  }

  function rowCount() {
    return rows['frame']?.length ?? 0;
  }

  function setStatus(/** @type {RunStatus} */ status, /** @type {number | null} */ fps) {
    const state = byId('run-state');
    state.textContent = status.running ? 'running' : status.summary ? 'ended' : 'waiting for the run…';
    state.className = `badge${status.running ? ' running' : ''}`;
    byId('frame').textContent = `frame ${status.frame}${run && run.settings.frames > 0 ? ` / ${run.settings.frames}` : ''} · ${(status.elapsedMs / 1000).toFixed(1)} s`;
    byId('fps').textContent = fps === null ? '' : `${fps.toFixed(0)} frames/s`;
    const v = status.lastVerification;
    const coh = byId('coherence');
    if (v === null) {
      coh.textContent = 'coherence not verified yet';
      coh.className = 'badge';
    } else {
      const at = new Date(v.at).toLocaleTimeString();
      coh.textContent = v.ok ? `coherent: verified after frame ${v.frames} at ${at}` : `INCOHERENT: ${v.differingPages} pages differ (after frame ${v.frames}, ${at})`;
      coh.className = `badge ${v.ok ? 'ok' : 'bad'}`;
    }
    byId('flush-errors').textContent = status.flushErrors > 0 ? `${status.flushErrors} flush errors` : '';
    const s = status.summary;
    if (s) {
      fillTable(byId('summary'), Object.entries(s).map(([k, val]) => [k, typeof val === 'object' && val !== null ? JSON.stringify(val) : String(val)]));
    }
  }

  /**
   * Apply pages of the device's framebuffer copy (page numbers, their bytes back to
   * back) to the canvas: B8G8R8X8 bytes become opaque RGB pixels.
   */
  function applyImage(/** @type {Uint32Array} */ pages, /** @type {Uint8Array} */ data) {
    const bo = run?.bos[0];
    const fb = bo?.surface;
    if (!bo || !fb || !image) return;
    const px = image.data;
    const size = bo.pages * bo.pageSize;
    let at = 0;
    let y0 = Infinity;
    let y1 = -1;
    for (const p of pages) {
      const start = p * bo.pageSize;
      const len = Math.min(bo.pageSize, size - start);
      for (let y = Math.floor(start / fb.pitch); y * fb.pitch < start + len && y < fb.height; y++) {
        const rowStart = y * fb.pitch;
        const from = Math.max(start, rowStart);
        const to = Math.min(start + len, rowStart + fb.width * fb.bytesPerPixel);
        // Whole pixels only: a page holds whole pixels when pitch and page size are multiples of bytesPerPixel.
        for (let b = from + ((fb.bytesPerPixel - ((from - rowStart) % fb.bytesPerPixel)) % fb.bytesPerPixel); b + fb.bytesPerPixel <= to; b += fb.bytesPerPixel) {
          const src = at + (b - start);
          const dst = (y * fb.width + (b - rowStart) / fb.bytesPerPixel) * 4;
          px[dst] = data[src + 2] ?? 0;
          px[dst + 1] = data[src + 1] ?? 0;
          px[dst + 2] = data[src] ?? 0;
        }
        if (to > from) {
          y0 = Math.min(y0, y);
          y1 = Math.max(y1, y);
        }
      }
      at += len;
    }
    if (y1 >= y0) /** @type {HTMLCanvasElement} */ (byId('fb')).getContext('2d')?.putImageData(image, 0, 0, 0, y0, fb.width, y1 - y0 + 1);
  }

  /** The overlays: bitmaps of framebuffer pages (written back, changed by the device). */
  function setOverlay(/** @type {Uint32Array} */ written, /** @type {Uint32Array} */ device) {
    overlay = { written, device };
    drawOverlay();
  }

  function drawOverlay() {
    const bo = run?.bos[0];
    const fb = bo?.surface;
    const canvas = /** @type {HTMLCanvasElement} */ (byId('fb-overlay'));
    const ctx = canvas.getContext('2d');
    if (!bo || !fb || !ctx) return;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!overlay) return;
    ctx.lineWidth = 4;
    /** @type {Array<[Uint32Array, string, string]>} */
    const layers = [[overlay.written, 'show-written', '#76ff03'], [overlay.device, 'show-device', '#e040fb']];
    for (const [bits, toggle, color] of layers) {
      if (!(/** @type {HTMLInputElement} */ (byId(toggle)).checked)) continue;
      ctx.strokeStyle = color;
      /** @type {Box[]} */
      const boxes = [];
      for (const [p0, p1] of runsOf(bits, bo.pages)) {
        const s = p0 * bo.pageSize;
        const e = Math.min(p1 * bo.pageSize, bo.pages * bo.pageSize);
        const ya = Math.floor(s / fb.pitch);
        const yb = Math.min(fb.height - 1, Math.floor((e - 1) / fb.pitch));
        if (ya >= fb.height) continue;
        if (ya === yb) {
          const xa = Math.floor((s - ya * fb.pitch) / fb.bytesPerPixel);
          const xb = Math.min(fb.width, Math.ceil((e - ya * fb.pitch) / fb.bytesPerPixel));
          if (xb > xa) boxes.push({ x: xa, y: ya, w: xb - xa, h: 1 });
        } else {
          boxes.push({ x: 0, y: ya, w: fb.width, h: yb - ya + 1 });
        }
      }
      for (const b of mergeBoxes(boxes)) ctx.strokeRect(b.x, b.y, b.w, b.h);
    }
  }

  /** @typedef {{ x: number, y: number, w: number, h: number }} Box */

  /**
   * Boxes that overlap or touch become their bounding box, as the driver merges
   * a surface's dirty boxes: one outline per region instead of one per page.
   */
  function mergeBoxes(/** @type {Box[]} */ boxes) {
    /** @type {Box[]} */
    let out = boxes.slice();
    for (let merged = true; merged; ) {
      merged = false;
      /** @type {Box[]} */
      const next = [];
      for (const b of out) {
        const o = next.find((a) => a.x <= b.x + b.w && b.x <= a.x + a.w && a.y <= b.y + b.h && b.y <= a.y + a.h);
        if (!o) {
          next.push({ ...b });
          continue;
        }
        const x = Math.min(o.x, b.x);
        const y = Math.min(o.y, b.y);
        o.w = Math.max(o.x + o.w, b.x + b.w) - x;
        o.h = Math.max(o.y + o.h, b.y + b.h) - y;
        o.x = x;
        o.y = y;
        merged = true;
      }
      out = next;
    }
    return out;
  }

  /** Runs [from, to) of set bits in a bitmap of n bits (Uint32 words). */
  function runsOf(/** @type {Uint32Array} */ words, /** @type {number} */ n) {
    /** @type {Array<[number, number]>} */
    const out = [];
    /** @param {number} i */
    const test = (i) => (((words[i >>> 5] ?? 0) >>> (i & 31)) & 1) === 1;
    for (let i = 0; i < n; i++) {
      if (!test(i)) continue;
      let j = i + 1;
      while (j < n && test(j)) j++;
      out.push([i, j]);
      i = j;
    }
    return out;
  }

  /** A chart fills its grid cell. */
  function chartWidth(/** @type {HTMLElement} */ cell) {
    return Math.max(300, cell.clientWidth);
  }

  function resize() {
    for (const c of charts) {
      const cell = c.plot.root.parentElement;
      if (cell) c.plot.setSize({ width: chartWidth(cell), height: 170 });
    }
  }
  window.addEventListener('resize', resize);

  return {
    setRun, addRows, rowCount, setStatus, setPageMaps, applyImage, setOverlay,
    /** Counts of page states as last drawn, for BO index i. */
    counts: (/** @type {number} */ i) => maps[i]?.last ?? null,
    /** Per chart: its title and how many non-empty values each of its series holds. */
    chartPoints: () => (drawCharts(), charts).map((c) => ({
      title: c.plot.root.parentElement?.querySelector('h3')?.textContent ?? '',
      series: c.plot.data.slice(1).map((ys) => Array.from(ys).filter((y) => y !== null && y !== undefined).length),
    })),
    get run() {
      return run;
    },
  };
}
