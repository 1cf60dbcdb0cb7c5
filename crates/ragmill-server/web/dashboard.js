// The dashboard: GET /v1/stats read every second (the user's own figures, or the whole
// service's for an administrator), turned into tiles, charts and the time per stage.
//
// Two sources, one owner per figure, each chart saying which in its caption:
// - what processing did (documents finished, chunks, cache hits, time per document and per
//   stage, failures) comes from the store's processing log, every process's work included
//   (`ragmill ingest`, remote workers): the server sends the last 15 minutes in 10 s buckets
//   with every answer, so these charts have a past however the page was opened;
// - what is true now in this server (queue depth, workers busy, embedding batches and
//   endpoints) is sampled every second; the samples are kept for the browser tab, and an
//   administrator's dashboard starts with the server's own samples of the last minutes.
//
// Every time is shown in seconds, and says per what: per batch (one request to the embedder)
// or per document (read to stored).

import { LineChart } from './chart.js';
import { el, number, seconds } from './util.js';

const KEEP = 300;            // samples kept (5 minutes at one a second)
const SPAN = 180;            // seconds shown of the sampled charts
const STORE = 'ragmill.dashboard';
const STAGE_NAMES = {
  extracting: 'Extracting', chunking: 'Chunking', embedding: 'Embedding', storing: 'Storing',
  total: 'Whole document',
};

/** Seconds with a unit, never milliseconds: "0.42 s", "2.77 s", "14.1 s". */
export function secs(v) {
  if (!Number.isFinite(v)) return '–';
  return `${v < 10 ? v.toFixed(2) : v.toFixed(1)} s`;
}

/** "15 min" for 900. */
function minutes(s) {
  return s % 60 === 0 ? `${s / 60} min` : `${s} s`;
}

export class Dashboard {
  /** @param {import('./api.js').Api} api */
  constructor(api) {
    this.api = api;
    this.samples = restore();
    this.timer = null;
    this.visible = false;
    const log = 'from the processing log, every process\'s work (server, workers, ragmill ingest)';
    this.charts = {
      chunks: new LineChart('Chunks per second', { digits: 1,
        caption: `Chunks stored, and chunk texts embedded (cache misses), per second in 10 s steps; ${log}.` }),
      live: new LineChart('Embedding now', { digits: 1,
        caption: 'Chunk texts this server\'s embedder embedded per second (every user\'s work; cache hits cost nothing and are not counted), over the last 5 s: it moves while a big document is still embedding, before the log counts it.' }),
      docs: new LineChart('Documents per minute', { digits: 0, integer: true,
        caption: `Documents stored, and processing attempts failed, in the trailing minute; ${log}.` }),
      time: new LineChart('Time per document', { unit: 's', digits: 2,
        caption: 'Read to stored for one document (extracting + chunking + embedding + storing), mean over the documents stored in the trailing minute; processing log.' }),
      cache: new LineChart('Cache hit rate', { percent: true, digits: 0,
        caption: 'Share of chunks whose vector came from the cache instead of the embedder, over the trailing minute; processing log.' }),
      errors: new LineChart('Error rate', { percent: true, digits: 1,
        caption: 'Share of processing attempts that failed (a retried document counts each attempt), over the trailing minute; processing log.' }),
      queue: new LineChart('Queue depth', { digits: 0, integer: true,
        caption: 'Documents waiting for a worker and being processed now, sampled every second.' }),
      workers: new LineChart('Workers busy', { digits: 0, integer: true,
        caption: 'This server\'s workers processing a document now, sampled every second (remote workers: see Worker processes).' }),
      latency: new LineChart('Embedding time per batch', { unit: 's', digits: 2,
        caption: 'How long one batch request to the embedder takes (per endpoint; the local model: one batch), mean over the last 5 s. A document\'s chunks go in many batches.' }),
      endpointErrors: new LineChart('Endpoint errors per minute', { digits: 0, integer: true,
        caption: 'Failed batch requests per endpoint in the trailing minute, counted by this server since it started.' }),
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

  async poll() {
    let s;
    try {
      s = await this.api.get('/v1/stats');
    } catch {
      return;
    }
    const now = Date.now() / 1000;
    const prev = this.samples.at(-1);
    if (prev && s.uptime_s < prev.uptime) this.samples = []; // the server restarted
    this.samples.push(compact(s, now));
    if (this.samples.length > KEEP) this.samples.splice(0, this.samples.length - KEEP);
    this.latest = s;
    this.fetchedAt = now;
    if (s.scope === 'service' && !this.seeded) await this.seed();
    try { sessionStorage.setItem(STORE, JSON.stringify(this.samples)); } catch { /* full */ }
    if (this.visible) this.render();
  }

  /**
   * An administrator's dashboard starts with the server's samples of the last minutes (queue,
   * workers, batches): those older than this tab's own go in front of them.
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
      .map((x) => compact(x.stats, x.t_ms / 1000 + offset))
      .filter((x) => x.t < first - 0.5);
    this.samples = [...older, ...this.samples].slice(-KEEP);
  }

  render() {
    const s = this.latest;
    if (!s) return;
    document.getElementById('dash-scope').textContent = s.scope === 'service'
      ? 'The whole service: every user\'s documents (you are an administrator).'
      : 'Your own documents. The embedding backend is shared by every user of this server.';
    this.renderOrigins(s);
    this.renderTiles(s);
    this.renderCharts();
    this.renderStages(s);
    this.renderEndpoints(s);
    this.renderProcesses(s);
  }

  /** Who did the work the log holds for the window. */
  renderOrigins(s) {
    const p = s.processing;
    const host = document.getElementById('dash-origins');
    if (!p) { host.textContent = ''; return; }
    const label = { cli: 'by ragmill ingest (cli)', server: 'by this server\'s workers', 'remote worker': 'by remote workers' };
    const parts = p.by.map((o) => `${number(o.attempts)} ${label[o.by] || `by ${o.by}`}`);
    host.textContent = parts.length
      ? `Processing log, last ${minutes(p.window_s)}: ${parts.join(', ')} (documents stored or failed).`
      : `Processing log, last ${minutes(p.window_s)}: no document finished.`;
  }

  renderTiles(s) {
    const a = s.activity;
    const hits = a.cache_hits, lookups = a.cache_hits + a.chunks_embedded;
    const e = s.embedder || {};
    const backend = e.endpoints ? `${e.endpoints.length} endpoint${e.endpoints.length === 1 ? '' : 's'}`
      : [e.engine, e.precision].filter(Boolean).join(' · ');
    const win = `last ${minutes(a.window_s)}, processing log`;
    const tiles = [
      ['Ready', number(s.documents.ready), 'documents now'],
      ['Processing', number(s.documents.processing), 'documents now'],
      ['Waiting', number(s.documents.queued), 'documents now'],
      ['Failed', number(s.documents.failed), 'documents now'],
      ['Chunks stored', number(s.documents.chunks), 'searchable now'],
      ['Workers busy', `${s.workers.busy} / ${s.workers.total}`, 'this server, now'],
      ['Documents done', number(a.documents_ready + a.documents_failed), `stored or failed, ${win}`],
      ['Cache hit rate', lookups ? `${Math.round((100 * hits) / lookups)}%` : '–', `of chunks, ${win}`],
      ['Time per document', a.documents_processed ? secs(a.processing_seconds / a.documents_processed) : '–', `mean, read to stored, ${win}`],
      ['Model', `${s.model.dimensions} dims${backend ? ' · ' + backend : ''}`, 'embedding model', 'text'],
      ['Up', seconds(s.uptime_s), 'this server process'],
    ];
    document.getElementById('tiles').replaceChildren(...tiles.map(([k, v, caption, kind]) =>
      el('div', { class: `tile ${kind || ''}`, 'data-tile': k },
        el('div', { class: 'v' }, v), el('div', { class: 'k' }, k), el('div', { class: 'c' }, caption))));
  }

  renderCharts() {
    const c = this.charts;
    const p = this.latest.processing;
    if (p) {
      // Bucket i ends (n-1-i) buckets before the server's now, which is this tab's fetch time.
      const n = p.buckets.length, B = p.buckets;
      const t = B.map((_, i) => this.fetchedAt - (n - 1 - i) * p.bucket_s);
      const span = p.window_s;
      const per = Math.max(1, Math.round(60 / p.bucket_s)); // buckets in a minute
      const field = (f) => B.map((b) => b[f]);
      c.chunks.draw(t, [
        { name: 'stored', values: field('chunks_stored').map((v) => v / p.bucket_s) },
        { name: 'embedded (cache misses)', values: field('chunks_embedded').map((v) => v / p.bucket_s) },
      ], span);
      c.docs.draw(t, [
        { name: 'stored', values: trailing(field('documents_ready'), per) },
        { name: 'failed', values: trailing(field('documents_failed'), per) },
      ], span);
      c.time.draw(t, [{ name: 'seconds per document', values: held(trailing(field('processing_seconds'), per), trailing(field('documents_ready'), per)) }], span);
      const hits = trailing(field('cache_hits'), per);
      const misses = trailing(field('chunks_embedded'), per);
      c.cache.draw(t, [{ name: 'hits', values: held(hits, hits.map((h, i) => h + misses[i])) }], span);
      const failed = trailing(field('documents_failed'), per);
      const ready = trailing(field('documents_ready'), per);
      c.errors.draw(t, [{ name: 'attempts failed', values: held(failed, failed.map((f, i) => f + ready[i]), 0) }], span);
    }
    const S = this.samples;
    const t = S.map((x) => x.t);
    c.queue.draw(t, [{ name: 'waiting', values: S.map((x) => x.queued) }, { name: 'processing', values: S.map((x) => x.leased) }], SPAN);
    c.workers.options.min = this.latest.workers.total;
    c.workers.draw(t, [{ name: 'busy', values: S.map((x) => x.busy) }], SPAN);
    c.live.draw(t, [{ name: 'texts per second', values: perSecond(S, (x) => x.texts, 5) }], SPAN);
    const names = [...new Set(S.flatMap((x) => x.endpoints.map((e) => e.name)))];
    c.latency.draw(t, names.map((name) => ({
      name,
      values: ratio(S, (x) => ep(x, name)?.ms / 1000, (x) => ep(x, name)?.count, 5),
    })), SPAN);
    c.endpointErrors.draw(t, names.map((name) => ({
      name, values: inLast(S, (x) => ep(x, name)?.errors, 60),
    })), SPAN);
  }

  /** Each stage's p50 and p95 per document, and what they rest on. */
  renderStages(s) {
    const st = s.processing?.stages;
    const note = document.getElementById('stages-note');
    const host = document.getElementById('stages');
    if (!st) return;
    const docs = `${number(st.documents)} document${st.documents === 1 ? '' : 's'}`;
    note.textContent = st.basis === 'window'
      ? `Per document, over the ${docs} stored in the last ${minutes(st.window_s)}; from the processing log, every process's work.`
      : st.documents
        ? `No document was stored in the last ${minutes(st.window_s)}: over the latest ${docs} stored (at most ${number(st.latest)}), finished ${ago(st.from_ms)} to ${ago(st.to_ms)}.`
        : 'No document has been stored yet.';
    host.dataset.basis = st.basis;
    host.dataset.documents = String(st.documents);
    if (!st.stages.length) { host.replaceChildren(); return; }
    const top = Math.max(...st.stages.map((x) => x.p95_s), 1e-9);
    const rows = st.stages.map((x) => {
      const bar = el('span', { class: 'stage-bar' });
      bar.style.width = `${Math.max(1, (100 * x.p50_s) / top).toFixed(1)}%`; // CSSOM: the CSP forbids style attributes
      const tail = el('span', { class: 'stage-bar p95' });
      tail.style.width = `${Math.max(1, (100 * (x.p95_s - x.p50_s)) / top).toFixed(1)}%`;
      return el('tr', { 'data-stage': x.stage },
        el('th', { scope: 'row' }, STAGE_NAMES[x.stage] || x.stage),
        el('td', { class: 'num' }, secs(x.p50_s)), el('td', { class: 'num' }, secs(x.p95_s)),
        el('td', { class: 'num' }, number(x.documents)),
        el('td', { class: 'bars', 'aria-hidden': 'true' }, bar, tail));
    });
    host.replaceChildren(el('div', { class: 'table-wrap' }, el('table', { class: 'stages' },
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Stage'),
        ...['p50', 'p95', 'Documents'].map((h) => el('th', { scope: 'col', class: 'num' }, h)),
        el('th', { scope: 'col' }, 'p50 ▮ to p95 ▯'))),
      el('tbody', {}, rows))));
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

  renderEndpoints(s) {
    const e = s.embedder;
    const host = document.getElementById('endpoints');
    if (!e || !e.endpoints) {
      const b = s.batcher;
      host.replaceChildren(el('p', {}, `Local model ${s.model.id} (${[e?.engine, e?.precision, e?.kernels].filter(Boolean).join(', ')}), in this process, since it started: `,
        `${number(b.batches)} batches, ${number(b.texts)} texts, ${number(b.joined)} joined to one already queued, `,
        `${number(b.failures)} failed, ${b.batches ? secs(b.seconds / b.batches) : '–'} per batch (mean).`));
      return;
    }
    const rows = e.endpoints.map((p) => {
      const mean = p.latency.count ? p.latency.sum_ms / p.latency.count / 1000 : NaN;
      return el('tr', {},
        el('td', {}, p.url), el('td', {}, p.kind),
        el('td', {}, el('span', { class: `state ${p.circuit === 'closed' ? 'ready' : p.circuit === 'open' ? 'failed' : 'queued'}` },
          p.circuit.replace('_', '-'))),
        el('td', { class: 'num' }, number(p.requests)), el('td', { class: 'num' }, number(p.errors)),
        el('td', { class: 'num' }, number(p.in_flight)),
        el('td', { class: 'num' }, secs(mean)),
        el('td', {}, p.last_error || ''));
    });
    host.replaceChildren(el('p', { class: 'caption' }, 'Batch requests to each endpoint since this server started; time per batch is one request\'s, mean.'),
      el('div', { class: 'table-wrap' }, el('table', {},
        el('thead', {}, el('tr', {}, ...['Endpoint', 'Protocol', 'Circuit'].map((h) => el('th', { scope: 'col' }, h)),
          ...['Requests', 'Errors', 'In flight', 'Time per batch'].map((h) => el('th', { scope: 'col', class: 'num' }, h)),
          el('th', { scope: 'col' }, 'Last error'))),
        el('tbody', {}, rows))));
  }
}

/** The figures of one `GET /v1/stats` answer that the sampled charts need. */
function compact(s, t) {
  const endpoints = s.embedder?.endpoints
    ? s.embedder.endpoints.map((e) => ({ name: e.url, ms: e.latency.sum_ms, count: e.latency.count, errors: e.errors }))
    : [{ name: 'local model', ms: s.batcher.seconds * 1000, count: s.batcher.batches, errors: s.batcher.failures }];
  return { t, uptime: s.uptime_s, queued: s.queue.queued, leased: s.queue.leased, busy: s.workers.busy,
    texts: s.batcher?.texts, endpoints };
}

function restore() {
  try {
    const v = JSON.parse(sessionStorage.getItem(STORE) || '[]');
    return Array.isArray(v) ? v.filter((x) => x && Array.isArray(x.endpoints)) : [];
  } catch {
    return [];
  }
}

/** "12 min ago" for a time in ms since the epoch (the server's clock). */
function ago(ms) {
  if (!Number.isFinite(ms)) return '–';
  return `${seconds(Math.max(0, (Date.now() - ms) / 1000))} ago`;
}

const ep = (x, name) => x.endpoints.find((e) => e.name === name);

/**
 * For each sample, how fast the counter `f` grew over the last `window` seconds (per second);
 * null where there is no earlier sample in the window, or the counter went back (a restart).
 */
export function perSecond(samples, f, window) {
  return samples.map((x, i) => {
    let j = i;
    while (j > 0 && samples[j - 1].t >= x.t - window) j--;
    const first = samples[j];
    const dt = x.t - first.t, d = f(x) - f(first);
    return j < i && dt > 0 && Number.isFinite(d) && d >= 0 ? d / dt : null;
  });
}

/** Sums of the trailing `n` buckets, for each bucket. */
export function trailing(values, n) {
  return values.map((_, i) => values.slice(Math.max(0, i - n + 1), i + 1).reduce((a, v) => a + (v || 0), 0));
}

/** num/den per bucket; where nothing happened, the last value (or `idle`). */
export function held(num, den, idle = null) {
  let last = idle;
  return num.map((v, i) => {
    if (den[i] > 0) last = v / den[i];
    else if (idle !== null) last = idle;
    return last;
  });
}

/** The sample `window` seconds before sample `i` (or the oldest one). */
function back(S, i, window) {
  let j = i;
  while (j > 0 && S[i].t - S[j - 1].t <= window) j--;
  return j;
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
