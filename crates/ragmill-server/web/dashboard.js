// The dashboard: GET /v1/stats read every second (the user's own figures, or the whole
// service's for an administrator) and the event stream, turned into live charts. The history
// is kept for the browser tab, so a reload does not blank the charts.

import { LineChart } from './chart.js';
import { el, number, seconds } from './util.js';

const KEEP = 300;            // samples kept (5 minutes at one a second)
const SPAN = 180;            // seconds shown
const STORE = 'ragmill.dashboard';

export class Dashboard {
  /** @param {import('./api.js').Api} api */
  constructor(api) {
    this.api = api;
    this.samples = restore();
    this.embeddedLive = this.samples.at(-1)?.live || 0;   // chunks embedded, from progress events
    this.lastDone = new Map();
    this.timer = null;
    this.visible = false;
    this.charts = {
      chunks: new LineChart('Chunks per second', { digits: 1 }),
      docs: new LineChart('Documents per minute', { digits: 0, integer: true }),
      queue: new LineChart('Queue depth', { digits: 0, integer: true }),
      workers: new LineChart('Workers busy', { digits: 0, integer: true }),
      time: new LineChart('Time per document', { unit: 's', digits: 2 }),
      latency: new LineChart('Embedding latency per endpoint', { unit: 'ms', digits: 0 }),
      endpointErrors: new LineChart('Endpoint errors per minute', { digits: 0, integer: true }),
      cache: new LineChart('Cache hit rate', { percent: true, digits: 0 }),
      errors: new LineChart('Error rate', { percent: true, digits: 1 }),
    };
    document.getElementById('charts').replaceChildren(...Object.values(this.charts).map((c) => c.node));
  }

  start() {
    if (this.timer) return;
    const tick = async () => {
      if (document.visibilityState === 'visible') await this.poll();
      this.timer = setTimeout(tick, 1000);
    };
    tick();
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  show(on) {
    this.visible = on;
    if (on) this.render();
  }

  /** Progress events give a smooth chunks/second for the user's own documents. */
  onMessage(m) {
    if (m.type === 'document.progress' && m.stage === 'embedding') {
      const before = this.lastDone.get(m.id) || 0;
      if (m.done > before) this.embeddedLive += m.done - before;
      this.lastDone.set(m.id, m.done);
    } else if (m.type === 'document.ready' || m.type === 'document.failed') {
      this.lastDone.delete(m.id);
    }
  }

  async poll() {
    let s;
    try {
      s = await this.api.get('/v1/stats');
    } catch {
      return;
    }
    const prev = this.samples.at(-1);
    if (prev && s.uptime_s < prev.uptime) this.samples = []; // the server restarted
    this.samples.push(compact(s, Date.now() / 1000, this.embeddedLive));
    if (this.samples.length > KEEP) this.samples.splice(0, this.samples.length - KEEP);
    this.latest = s;
    if (s.scope === 'service' && !this.seeded) await this.seed();
    try { sessionStorage.setItem(STORE, JSON.stringify(this.samples)); } catch { /* full */ }
    if (this.visible) this.render();
  }

  /**
   * An administrator's dashboard starts with the server's record of the last minutes: the
   * samples older than this tab's own go in front of them.
   */
  async seed() {
    this.seeded = true;
    let h;
    try {
      h = await this.api.get('/v1/stats/history');
    } catch {
      return;
    }
    const offset = Date.now() / 1000 - h.now_ms / 1000; // server clock -> this clock
    const first = this.samples[0]?.t ?? Infinity;
    const older = h.samples
      .map((x) => compact(x.stats, x.t_ms / 1000 + offset, 0))
      .filter((x) => x.t < first - 0.5);
    // Chunks per second for the service comes from the batcher, not from this tab's events.
    this.samples = [...older, ...this.samples].slice(-KEEP);
  }

  render() {
    const s = this.latest;
    if (!s) return;
    document.getElementById('dash-scope').textContent = s.scope === 'service'
      ? 'The whole service: every user\'s documents (you are an administrator).'
      : 'Your own documents. The embedding backend is shared by every user of this server.';
    this.renderTiles(s);
    this.renderCharts();
    this.renderEndpoints(s);
    this.renderProcesses(s);
  }

  /** Every worker process of the cluster (administrators): this server's and remote ones. */
  renderProcesses(s) {
    const card = document.getElementById('processes-card');
    card.hidden = s.scope !== 'service' || !s.processes?.length;
    if (card.hidden) return;
    const now = Date.now();
    const rows = s.processes.map((p) => el('tr', {},
      el('td', {}, p.name), el('td', {}, p.host),
      el('td', { class: 'num' }, `${p.busy} / ${p.slots}`),
      el('td', { class: 'num' }, number(p.jobs_done)),
      el('td', { class: 'num' }, seconds(Math.max(0, (now - p.started_ms) / 1000))),
      el('td', { class: 'num' }, `${Math.max(0, Math.round((now - p.last_seen_ms) / 1000))} s ago`)));
    document.getElementById('processes').replaceChildren(el('div', { class: 'table-wrap' }, el('table', {},
      el('thead', {}, el('tr', {}, ...['Process', 'Host'].map((h) => el('th', { scope: 'col' }, h)),
        ...['Busy', 'Jobs done', 'Up', 'Last seen'].map((h) => el('th', { scope: 'col', class: 'num' }, h)))),
      el('tbody', {}, rows))));
  }

  renderTiles(s) {
    const a = s.activity;
    const hits = a.cache_hits, lookups = a.cache_hits + a.chunks_embedded;
    const e = s.embedder || {};
    const backend = e.endpoints ? `${e.endpoints.length} endpoint${e.endpoints.length === 1 ? '' : 's'}`
      : [e.engine, e.precision].filter(Boolean).join(' · ');
    const tiles = [
      ['Ready', number(s.documents.ready)], ['Processing', number(s.documents.processing)],
      ['Waiting', number(s.documents.queued)], ['Failed', number(s.documents.failed)],
      ['Chunks stored', number(s.documents.chunks)],
      ['Workers busy', `${s.workers.busy} / ${s.workers.total}`],
      ['Cache hit rate', lookups ? `${Math.round((100 * hits) / lookups)}%` : '–'],
      ['Time per document', a.documents_processed ? seconds(a.processing_seconds / a.documents_processed) : '–'],
      ['Model', `${s.model.dimensions} dims${backend ? ' · ' + backend : ''}`, 'text'],
      ['Up', seconds(s.uptime_s)],
    ];
    document.getElementById('tiles').replaceChildren(...tiles.map(([k, v, kind]) =>
      el('div', { class: `tile ${kind || ''}` }, el('div', { class: 'v' }, v), el('div', { class: 'k' }, k))));
  }

  renderCharts() {
    const S = this.samples;
    const t = S.map((x) => x.t);
    const c = this.charts;
    const service = this.latest.scope === 'service';
    c.chunks.draw(t, [
      { name: service ? 'embedded (all users)' : 'embedded', values: rate(S, (x) => (service ? x.texts : x.live), 5) },
      { name: 'stored', values: rate(S, (x) => x.stored, 10) },
    ], SPAN);
    c.docs.draw(t, [{ name: 'finished', values: inLast(S, (x) => x.ready + x.failed, 60) }], SPAN);
    c.queue.draw(t, [{ name: 'waiting', values: S.map((x) => x.queued) }, { name: 'processing', values: S.map((x) => x.leased) }], SPAN);
    c.workers.options.min = this.latest.workers.total;
    c.workers.draw(t, [{ name: 'busy', values: S.map((x) => x.busy) }], SPAN);
    c.time.draw(t, [{ name: 'seconds', values: ratio(S, (x) => x.seconds, (x) => x.processed, 30) }], SPAN);
    c.cache.draw(t, [{ name: 'hits', values: ratio(S, (x) => x.hits, (x) => x.hits + x.embedded, 30) }], SPAN);
    c.errors.draw(t, [
      { name: 'documents failed', values: ratio(S, (x) => x.failed, (x) => x.ready + x.failed, 60, 0) },
      { name: 'embedding batches failed', values: ratio(S, (x) => x.batchFailures, (x) => x.batches, 60, 0) },
    ], SPAN);
    const names = [...new Set(S.flatMap((x) => x.endpoints.map((e) => e.name)))];
    c.latency.draw(t, names.map((name) => ({
      name,
      values: ratio(S, (x) => ep(x, name)?.ms, (x) => ep(x, name)?.count, 5),
    })), SPAN);
    c.endpointErrors.draw(t, names.map((name) => ({
      name, values: inLast(S, (x) => ep(x, name)?.errors, 60),
    })), SPAN);
  }

  renderEndpoints(s) {
    const e = s.embedder;
    const host = document.getElementById('endpoints');
    if (!e || !e.endpoints) {
      const b = s.batcher;
      host.replaceChildren(el('p', {}, `Local model ${s.model.id} (${[e?.engine, e?.precision, e?.kernels].filter(Boolean).join(', ')}), in this process. `,
        `${number(b.batches)} batches, ${number(b.texts)} texts, ${number(b.joined)} joined to one already queued, `,
        `${number(b.failures)} failed, ${b.batches ? seconds(b.seconds / b.batches) : '–'} per batch.`));
      return;
    }
    const rows = e.endpoints.map((p) => {
      const mean = p.latency.count ? p.latency.sum_ms / p.latency.count : NaN;
      return el('tr', {},
        el('td', {}, p.url), el('td', {}, p.kind),
        el('td', {}, el('span', { class: `state ${p.circuit === 'closed' ? 'ready' : p.circuit === 'open' ? 'failed' : 'queued'}` },
          p.circuit.replace('_', '-'))),
        el('td', { class: 'num' }, number(p.requests)), el('td', { class: 'num' }, number(p.errors)),
        el('td', { class: 'num' }, number(p.in_flight)),
        el('td', { class: 'num' }, Number.isFinite(mean) ? `${mean.toFixed(0)} ms` : '–'),
        el('td', {}, p.last_error || ''));
    });
    host.replaceChildren(el('div', { class: 'table-wrap' }, el('table', {},
      el('thead', {}, el('tr', {}, ...['Endpoint', 'Protocol', 'Circuit'].map((h) => el('th', { scope: 'col' }, h)),
        ...['Requests', 'Errors', 'In flight', 'Mean latency'].map((h) => el('th', { scope: 'col', class: 'num' }, h)),
        el('th', { scope: 'col' }, 'Last error'))),
      el('tbody', {}, rows))));
  }
}

/** The figures of one `GET /v1/stats` answer that the charts need. */
function compact(s, t, live) {
  const a = s.activity;
  const endpoints = s.embedder?.endpoints
    ? s.embedder.endpoints.map((e) => ({ name: e.url, ms: e.latency.sum_ms, count: e.latency.count, errors: e.errors }))
    : [{ name: 'local model', ms: s.batcher.seconds * 1000, count: s.batcher.batches, errors: s.batcher.failures }];
  return {
    t, uptime: s.uptime_s, live, texts: s.batcher.texts, batches: s.batcher.batches, batchFailures: s.batcher.failures,
    stored: a.chunks_stored, embedded: a.chunks_embedded, hits: a.cache_hits, ready: a.documents_ready,
    failed: a.documents_failed, processed: a.documents_processed, seconds: a.processing_seconds,
    queued: s.queue.queued, leased: s.queue.leased, busy: s.workers.busy, endpoints,
  };
}

function restore() {
  try {
    const v = JSON.parse(sessionStorage.getItem(STORE) || '[]');
    return Array.isArray(v) ? v : [];
  } catch {
    return [];
  }
}

const ep = (x, name) => x.endpoints.find((e) => e.name === name);

/** The sample `window` seconds before sample `i` (or the oldest one). */
function back(S, i, window) {
  let j = i;
  while (j > 0 && S[i].t - S[j - 1].t <= window) j--;
  return j;
}

/** Per-second rate of a counter over a trailing window. */
function rate(S, f, window) {
  return S.map((x, i) => {
    const j = back(S, i, window);
    const dt = x.t - S[j].t;
    const a = f(S[j]), b = f(x);
    if (j === i || dt <= 0 || !Number.isFinite(a) || !Number.isFinite(b)) return null;
    return Math.max(0, b - a) / dt;
  });
}

/** How much a counter grew in the trailing `window` seconds (a count per minute for 60). */
function inLast(S, f, window) {
  return S.map((x, i) => {
    const a = f(S[back(S, i, window)]), b = f(x);
    return Number.isFinite(a) && Number.isFinite(b) ? Math.max(0, b - a) : null;
  });
}

/** Δnum/Δden over a trailing window; when nothing happened, the last value (or `idle`). */
function ratio(S, num, den, window, idle = null) {
  let last = idle;
  return S.map((x, i) => {
    const j = back(S, i, window);
    const dn = num(x) - num(S[j]), dd = den(x) - den(S[j]);
    if (Number.isFinite(dn) && Number.isFinite(dd) && dd > 0) last = dn / dd;
    else if (idle !== null) last = idle;
    return last;
  });
}
