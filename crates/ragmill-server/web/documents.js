// The documents page: drag-and-drop upload with a bar per file (upload, then processing as
// the event stream reports it), states and errors in plain words, delete and re-process.
// The page's list is also what the header and the chat's RAG status count (`status()`).

import { el, bytes, seconds } from './util.js';

const KIND = { text: 'Text', markdown: 'Markdown', html: 'HTML', pdf: 'PDF', docx: 'DOCX' };
const UPLOADS_AT_ONCE = 3;
const STATE_WORD = { uploading: 'Uploading', queued: 'Waiting', processing: 'Processing', ready: 'Ready', failed: 'Failed' };

export class Documents {
  /**
   * @param {import('./api.js').Api} api
   * @param {{ onChange: (status: RagCounts) => void, onError: (message: string) => void }} hooks
   *   `onChange` after every change of the list
   */
  constructor(api, hooks) {
    this.api = api;
    this.hooks = hooks;
    this.docs = new Map();      // key (document id, or "u<n>" while uploading) -> doc
    this.rows = new Map();      // key -> <li>
    this.early = new Map();     // events for ids no upload has claimed yet
    this.uploads = 0;
    this.waiting = [];          // files not sent yet
    this.sending = 0;           // uploads in flight
    this.loaded = false;        // the whole list was read once
    this.list = document.getElementById('documents');
    this.empty = document.getElementById('documents-empty');
    this.wire();
  }

  wire() {
    const zone = document.getElementById('dropzone');
    const input = document.getElementById('file-input');
    input.addEventListener('change', () => { this.addFiles([...input.files]); input.value = ''; });
    const over = (on) => (e) => { e.preventDefault(); zone.classList.toggle('over', on); };
    zone.addEventListener('dragenter', over(true));
    zone.addEventListener('dragover', over(true));
    zone.addEventListener('dragleave', over(false));
    zone.addEventListener('drop', (e) => {
      over(false)(e);
      this.addFiles([...(e.dataTransfer?.files || [])]);
    });
    // Dropping a file anywhere else must not navigate away from the page.
    window.addEventListener('dragover', (e) => e.preventDefault());
    window.addEventListener('drop', (e) => e.preventDefault());
  }

  /** Loads the whole list (on sign-in and after every reconnection). */
  async load() {
    const { documents } = await this.api.get('/v1/documents');
    const seen = new Set();
    for (const d of documents) {
      seen.add(d.id);
      this.upsert(d.id, { ...d, state: d.state });
    }
    for (const [key, doc] of this.docs) {
      if (typeof key === 'number' && !seen.has(key) && doc.state !== 'uploading') this.remove(key);
    }
    this.loaded = true;
    this.render();
  }

  /** Starts uploading `files`, each with its own bar. */
  addFiles(files) {
    for (const file of files) {
      const key = `u${++this.uploads}`;
      const dropped = performance.now();
      this.upsert(key, { name: file.name, size: file.size, state: 'uploading', sent: 0, sendTotal: 0, dropped });
      this.waiting.push({ key, file });
    }
    this.render();
    this.pump();
  }

  /**
   * Sends queued uploads, a few at a time: a browser opens six connections to a server, and
   * the page needs some for its own requests while a hundred files go up.
   */
  pump() {
    while (this.sending < UPLOADS_AT_ONCE && this.waiting.length) {
      const { key, file } = this.waiting.shift();
      if (!this.docs.has(key)) continue; // dismissed while waiting
      this.sending++;
      this.api.upload(file, (loaded, total) => {
        if (this.docs.get(key)?.state !== 'uploading') return; // answered or dismissed already
        // `total` is the whole request's (the form around the file): the row keeps the file's size.
        this.upsert(key, { sent: loaded, sendTotal: total });
        this.renderRow(key);
      }).then((accepted) => this.claim(key, accepted), (err) => {
        if (!this.docs.has(key)) return;
        this.upsert(key, { state: 'failed', error: { code: err.code, message: err.message } });
        this.renderRow(key);
      }).finally(() => {
        this.sending--;
        this.pump();
      });
    }
  }

  /** An upload was accepted as document `accepted.id`: its row now follows that document. */
  claim(key, accepted) {
    const doc = this.docs.get(key);
    this.remove(key);
    const unchanged = accepted.state === 'ready';
    // A name uploaded again keeps the row it had, and its chunks stay searchable meanwhile.
    const before = this.docs.get(accepted.id);
    this.upsert(accepted.id, {
      ...doc, id: accepted.id, name: accepted.name, state: accepted.state, error: null,
      stage: null, progress: { done: 0, total: 0 }, unchanged, sent: undefined, sendTotal: undefined,
      chunks: before?.chunks, kind: before?.kind, created_at: before?.created_at,
    });
    const early = this.early.get(accepted.id);
    this.early.delete(accepted.id);
    if (early) early.forEach((m) => this.apply(m));
    // Its type (detected by the server) and date, now rather than at the next reload.
    if (unchanged) this.refresh(accepted.id); else this.refreshMeta(accepted.id);
    this.render();
    this.flash(accepted.id);
  }

  /** A snapshot or an event from the live stream. */
  onMessage(m) {
    if (m.type === 'snapshot') {
      for (const d of m.documents) this.upsert(d.id, d);
      this.render();
      this.load().catch(() => {});
      return;
    }
    if (!m.type.startsWith('document.')) return;
    if (!this.docs.has(m.id)) {
      // Its upload's answer may still be on its way; otherwise it came from elsewhere.
      const list = this.early.get(m.id) || [];
      list.push(m);
      this.early.set(m.id, list);
      setTimeout(() => { if (this.early.has(m.id)) { this.early.delete(m.id); this.refresh(m.id); } }, 1500);
      return;
    }
    this.apply(m);
  }

  apply(m) {
    const doc = this.docs.get(m.id);
    if (!doc) return;
    const now = performance.now();
    if (doc.dropped !== undefined && doc.firstEventMs === undefined) {
      doc.firstEventMs = Math.round(now - doc.dropped);
    }
    if (m.type === 'document.progress') {
      const stage = m.stage;
      if (stage !== 'embedding') doc.meter = null;
      else if (!doc.meter || m.done < doc.meter.done) doc.meter = new RateMeter(now, m.done);
      else doc.meter.update(now, m.done);
      this.upsert(m.id, {
        state: stage === 'queued' ? 'queued' : 'processing', stage,
        progress: { done: m.done, total: m.total }, error: null,
      });
    } else if (m.type === 'document.ready') {
      this.upsert(m.id, { state: 'ready', stage: null, chunks: m.chunks, progress: { done: m.chunks, total: m.chunks }, error: null });
      this.refresh(m.id);
    } else if (m.type === 'document.failed') {
      this.upsert(m.id, { state: 'failed', stage: null, error: m.error });
    }
    this.renderRow(m.id);
    this.changed();
  }

  /** Re-reads what the upload's answer does not say of a document: its kind, size and date. */
  async refreshMeta(id) {
    try {
      const { kind, size, created_at, updated_at } = await this.api.get(`/v1/documents/${id}`);
      if (!this.docs.has(id)) return;
      this.upsert(id, { kind, size, created_at, updated_at });
      this.render();
    } catch (e) {
      if (e.status === 404) { this.remove(id); this.render(); }
    }
  }

  /** Re-reads one document (its timings, kind and chunk count). */
  async refresh(id) {
    try {
      const d = await this.api.get(`/v1/documents/${id}`);
      this.upsert(id, d);
      this.render();
    } catch (e) {
      if (e.status === 404) { this.remove(id); this.render(); }
    }
  }

  upsert(key, fields) {
    const doc = this.docs.get(key) || { key };
    Object.assign(doc, fields);
    this.docs.set(key, doc);
    return doc;
  }

  remove(key) {
    this.docs.delete(key);
    this.rows.get(key)?.remove();
    this.rows.delete(key);
  }

  flash(key) {
    const row = this.rows.get(key);
    if (!row) return;
    row.classList.remove('flash');
    void row.offsetWidth; // restart the animation
    row.classList.add('flash');
  }

  /**
   * The user's documents as this page lists them: ready, on their way, and whether any chunk
   * is searchable (a document being processed again keeps its previous chunks).
   * @returns {RagCounts}
   */
  status() {
    let ready = 0, processing = 0, available = false;
    for (const [key, d] of this.docs) {
      if (typeof key !== 'number') continue; // an upload, not a document yet
      if (d.state === 'ready') ready++;
      else if (d.state === 'queued' || d.state === 'processing') processing++;
      if (d.chunks > 0) available = true;
    }
    return { available, documents_ready: ready, documents_processing: processing };
  }

  /** Tells the page the list changed, once it holds the whole list. */
  changed() {
    if (this.loaded) this.hooks.onChange(this.status());
  }

  /** Puts the rows in order (uploads first, then newest first) and updates each. */
  render() {
    const order = [...this.docs.values()].sort((a, b) => {
      const ua = a.state === 'uploading', ub = b.state === 'uploading';
      if (ua !== ub) return ua ? -1 : 1;
      return (b.created_at || Infinity) - (a.created_at || Infinity) || String(b.key).localeCompare(String(a.key));
    });
    order.forEach((doc, i) => {
      const row = this.renderRow(doc.key);
      if (!row) return;
      if (this.list.children[i] !== row) this.list.insertBefore(row, this.list.children[i] || null);
    });
    this.empty.hidden = this.docs.size > 0;
    this.changed();
  }

  renderRow(key) {
    const doc = this.docs.get(key);
    if (!doc) return null;
    let row = this.rows.get(key);
    if (!row) {
      row = this.newRow(key);
      this.rows.set(key, row);
      this.list.prepend(row);
    }
    const { pct, waiting, line } = describe(doc);
    row.dataset.state = doc.state;
    if (typeof key === 'number') row.dataset.id = key;
    if (doc.firstEventMs !== undefined) row.dataset.firstEventMs = doc.firstEventMs;
    row.querySelector('.doc-name').textContent = doc.name;
    row.querySelector('.doc-meta').textContent = [KIND[doc.kind], doc.size !== undefined ? bytes(doc.size) : null,
      doc.created_at ? `added ${new Date(doc.created_at).toLocaleString()}` : null].filter(Boolean).join(' · ');
    const bar = row.querySelector('.bar');
    bar.className = `bar ${doc.state}${waiting ? ' waiting' : ''}`;
    // No figure on the line, none on the bar: it only says that something is going on.
    if (pct === null) bar.removeAttribute('aria-valuenow');
    else bar.setAttribute('aria-valuenow', String(Math.round(pct)));
    bar.setAttribute('aria-valuetext', line);
    bar.firstChild.style.width = `${(pct ?? 0).toFixed(1)}%`;
    const state = row.querySelector('.state');
    state.className = `state ${doc.state}`;
    state.textContent = STATE_WORD[doc.state] || doc.state;
    row.querySelector('.detail').textContent = line;
    const err = row.querySelector('.doc-error');
    err.hidden = !doc.error;
    err.textContent = doc.error ? `${doc.error.message} (${doc.error.code})` : '';
    const busy = doc.state === 'uploading';
    row.querySelector('.reprocess').hidden = busy || typeof key !== 'number';
    row.querySelector('.open').hidden = busy || typeof key !== 'number';
    row.querySelector('.delete').hidden = busy;
    row.querySelector('.delete').textContent = typeof key === 'number' ? 'Delete' : 'Dismiss';
    return row;
  }

  newRow(key) {
    const name = el('div', { class: 'doc-name' });
    const open = el('button', { type: 'button', class: 'open' }, 'Open');
    open.addEventListener('click', () => {
      const doc = this.docs.get(key);
      this.api.openOriginal(key, doc.name).catch((e) => this.hooks.onError(`Could not open ${doc.name}: ${e.message}`));
    });
    const reprocess = el('button', { type: 'button', class: 'reprocess' }, 'Re-process');
    const del = el('button', { type: 'button', class: 'delete danger' }, 'Delete');
    reprocess.addEventListener('click', () => this.reprocess(key));
    del.addEventListener('click', () => this.delete(key));
    const bar = el('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100' }, el('span'));
    const row = el('li', { class: 'doc' },
      name,
      el('div', { class: 'doc-actions' }, open, reprocess, del),
      el('div', { class: 'doc-meta' }),
      el('div', { class: 'doc-progress' }, bar,
        el('div', { class: 'doc-line' }, el('span', { class: 'state' }), el('span', { class: 'detail' }))),
      el('div', { class: 'doc-error', role: 'alert' }));
    bar.setAttribute('aria-label', 'Progress');
    return row;
  }

  async reprocess(key) {
    const doc = this.docs.get(key);
    const before = { ...doc };
    // Queued before the request: its events may arrive before its answer does.
    Object.assign(doc, { state: 'queued', stage: null, error: null, progress: { done: 0, total: 0 }, meter: null });
    this.renderRow(key);
    this.changed();
    try {
      await this.api.post(`/v1/documents/${key}/reprocess`);
    } catch (e) {
      Object.assign(doc, before);
      this.renderRow(key);
      this.changed();
      this.hooks.onError(`Could not re-process ${doc.name}: ${e.message}`);
    }
  }

  async delete(key) {
    const doc = this.docs.get(key);
    if (typeof key !== 'number') { this.remove(key); this.render(); return; }
    if (!confirm(`Delete “${doc.name}”? Its passages stop being searchable.`)) return;
    try {
      await this.api.delete(`/v1/documents/${key}`);
      this.remove(key);
      this.render();
    } catch (e) {
      if (e.status === 404) { this.remove(key); this.render(); return; }
      this.hooks.onError(`Could not delete ${doc.name}: ${e.message}`);
    }
  }

  /** The document called `id`, if listed. */
  byId(id) { return this.docs.get(id); }
}

/**
 * Where a document stands: the bar's percentage (null when the line has no figure to show,
 * and the bar only says that something is going on), whether it waits, and a line of words.
 * The bar shows the line's own figures: bytes sent while uploading, chunks embedded while
 * embedding.
 */
function describe(doc) {
  const p = doc.progress || { done: 0, total: 0 };
  switch (doc.state) {
    case 'uploading': {
      const size = doc.size || 0;
      if (!doc.sent) return { pct: null, waiting: true, line: `Waiting to upload ${bytes(size)}` };
      const frac = doc.sendTotal ? Math.min(1, doc.sent / doc.sendTotal) : 0;
      return { pct: 100 * frac, waiting: false, line: `Uploading ${bytes(Math.round(size * frac))} of ${bytes(size)}` };
    }
    case 'queued':
      return { pct: null, waiting: true, line: 'Waiting for a worker' };
    case 'processing': {
      if (doc.stage === 'embedding' && p.total > 0) {
        const frac = Math.min(1, p.done / p.total);
        return { pct: 100 * frac, waiting: false, line: embeddingLine(p, doc.meter?.rate() ?? null) };
      }
      return { pct: null, waiting: true, line: stageLine(doc.stage) };
    }
    case 'ready': {
      const total = doc.timings?.total;
      const took = doc.unchanged ? 'unchanged, already searchable' : total ? `processed in ${seconds(total)}` : null;
      return { pct: 100, waiting: false, line: [`${doc.chunks ?? p.total} chunks`, took].filter(Boolean).join(' · ') };
    }
    case 'failed':
      if (typeof doc.key !== 'number') return { pct: 100, waiting: false, line: 'Upload refused; nothing was stored' };
      return { pct: 100, waiting: false, line: doc.chunks ? 'The new version failed; the previous one stays searchable' : 'Not searchable' };
    default:
      return { pct: null, waiting: true, line: '' };
  }
}

function stageLine(stage) {
  switch (stage) {
    case 'extracting': return 'Reading the text';
    case 'chunking': return 'Splitting into chunks';
    case 'embedding': return 'Embedding';
    case 'storing': return 'Saving';
    case 'waiting': return 'Waiting for the vector store to come back (retrying)';
    default: return 'Waiting for a worker';
  }
}

function embeddingLine(p, rate) {
  const parts = [`Embedding ${p.done} of ${p.total} chunks`];
  if (p.done < p.total) {
    if (rate === null) parts.push('estimating…');
    else parts.push(`${rate.toFixed(rate < 10 ? 1 : 0)} chunks/s`, `about ${seconds((p.total - p.done) / rate)} left`);
  }
  return parts.join(' · ');
}

/**
 * Chunks per second over one document's progress events in a stage: the units and the seconds
 * between events, each an exponentially weighted moving average (weight SMOOTHING for the
 * newest interval), divided. `rate()` says nothing (null) until it rests on MIN_UPDATES
 * intervals spanning MIN_SECONDS: the first interval alone (a cold model, the cache lookup)
 * says little about the rest.
 */
export class RateMeter {
  static SMOOTHING = 0.3;
  static MIN_SECONDS = 2;
  static MIN_UPDATES = 3;

  /** Starts at `done` units at `now` (milliseconds). */
  constructor(now, done) {
    this.start = now;
    this.t = now;
    this.done = done;
    this.units = 0;     // average units per interval
    this.seconds = 0;   // average seconds per interval
    this.updates = 0;
  }

  /** `done` units at `now` (milliseconds). */
  update(now, done) {
    const dt = (now - this.t) / 1000;
    if (dt <= 0 || done < this.done) return;
    const a = this.updates ? RateMeter.SMOOTHING : 1;
    this.units += a * (done - this.done - this.units);
    this.seconds += a * (dt - this.seconds);
    this.t = now;
    this.done = done;
    this.updates++;
  }

  /** Units per second, or null while there is too little to go on. */
  rate() {
    const enough = this.updates >= RateMeter.MIN_UPDATES && this.t - this.start >= RateMeter.MIN_SECONDS * 1000;
    return enough && this.units > 0 ? this.units / this.seconds : null;
  }
}

/**
 * @typedef {{ available: boolean, documents_ready: number, documents_processing: number }} RagCounts
 */
