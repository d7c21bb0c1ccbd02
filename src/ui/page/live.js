// @ts-check
// The live dashboard: draws what the update channel (src/ui/update-channel.ts)
// sends. Each binary frame is: u32 LE header length, the header as JSON, then
// the parts the header lists by name as [offset, length] (4-byte aligned).

/**
 * @typedef {{
 *   type: 'update',
 *   seq: number,
 *   run?: import('../frame-sampler.js').RunInfo,
 *   status: import('../frame-sampler.js').RunStatus,
 *   rows: { from: number, to: number, columns: import('../series.js').Columns },
 *   maps: Array<{ states: string, heat: string }>,
 *   overlay: { writtenBack: string, deviceChanged: string },
 *   image?: { version: number, pages: string, data: string },
 *   parts: Record<string, [number, number]>,
 * }} Update
 */

(() => {
  const views = createViews({ live: true, maxRows: 3600, chartIntervalMs: 500 });
  /** What a test (or a curious person in the console) can read. */
  const state = { connected: false, updates: 0, seq: 0, rows: 0, imageVersion: 0, ended: false, errors: /** @type {string[]} */ ([]) };
  /** @type {any} */ (window).vgpuDashboard = { views, state };
  /** @type {{ frame: number, elapsedMs: number } | null} */
  let previous = null;
  /** @type {number | null} */
  let fps = null;

  function connect() {
    const ws = new WebSocket(`ws://${location.host}/updates`);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      state.connected = true;
    };
    ws.onmessage = (ev) => {
      if (!(ev.data instanceof ArrayBuffer)) return;
      try {
        apply(ev.data);
      } catch (e) {
        state.errors.push(String(e));
        throw e;
      }
    };
    ws.onclose = () => {
      state.connected = false;
      const badge = /** @type {HTMLElement} */ (document.getElementById('run-state'));
      if (state.ended) {
        badge.textContent = 'ended (the run has exited; this is its final state)';
        return;
      }
      badge.textContent = 'not connected: retrying…';
      setTimeout(connect, 2000);
    };
  }

  function apply(/** @type {ArrayBuffer} */ buf) {
    const len = new DataView(buf).getUint32(0, true);
    /** @type {Update} */
    const h = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, len)));
    /** @param {string} name */
    const span = (name) => {
      const p = h.parts[name];
      if (!p) throw new Error(`update without part ${name}`);
      return p;
    };
    /** @param {string} name */
    const bytes = (name) => new Uint8Array(buf, ...span(name));
    /** @param {string} name */
    const words = (name) => {
      const [offset, length] = span(name);
      return new Uint32Array(buf, offset, length / 4);
    };
    if (h.run) {
      views.setRun(h.run);
      previous = null;
    }
    views.addRows(h.rows.columns);
    views.setPageMaps(h.maps.map((m) => bytes(m.states)), h.maps.map((m) => words(m.heat)));
    views.setOverlay(words(h.overlay.writtenBack), words(h.overlay.deviceChanged));
    if (h.image) {
      views.applyImage(words(h.image.pages), bytes(h.image.data));
      state.imageVersion = h.image.version;
    }
    const s = h.status;
    if (previous && s.elapsedMs > previous.elapsedMs && s.running) fps = ((s.frame - previous.frame) * 1000) / (s.elapsedMs - previous.elapsedMs);
    previous = { frame: s.frame, elapsedMs: s.elapsedMs };
    views.setStatus(s, s.running ? fps : null);
    state.updates++;
    state.seq = h.seq;
    state.rows = views.rowCount();
    state.ended = !s.running && s.summary !== null;
  }

  connect();
})();
