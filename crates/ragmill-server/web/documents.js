// The documents page: drag-and-drop upload with a bar per file (upload, then processing as
// the event stream reports it), states and errors in plain words, delete and re-process.
// The page's list is also what the header and the chat's RAG status count (`status()`).

import { number } from './util.js';
import { RateMeter, STALL_MS, stallLimits } from './progress.js';
import { Batch, filesOfDrop, filesOfFolderInput, uploadName } from './batch.js';
import { actions } from './actions.js';
import { rows } from './rows.js';

// Re-exported: the browser tests and other modules import them from here.
export { RateMeter, STALL_MS, stallLimits, stalled } from './progress.js';

const UPLOADS_AT_ONCE = 3;
/** Rows per page of the list: the API pages it (limit/offset/total), the page holds no more. */
const PAGE_SIZE = 100;
/** The list's filter chips, as the API's `state` parameter(s). */
const FILTER_STATES = { all: [null], progress: ['processing', 'queued', 'paused'], ready: ['ready'], failed: ['failed'] };

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
    this.held = false;          // the batch is paused: uploads not sent yet wait
    this.loaded = false;        // the whole list was read once
    this.list = document.getElementById('documents');
    this.empty = document.getElementById('documents-empty');
    // What the list shows: a page of the documents matching the chip and the name, in an order.
    this.view = { filter: 'all', q: '', sort: 'created', order: 'desc', offset: 0 };
    this.total = 0;             // documents matching the view, as the API counts them
    this.fresh = 0;             // documents accepted since the list was read (shown first)
    this.seq = 0;               // their order
    this.loading = 0;           // the generation of the latest read of the list
    this.serverRag = null;      // the server's counts, when the page lists only part
    this.batch = new Batch({
      cancel: (ids, keys) => this.cancelMany(ids, keys),
      pause: (ids) => this.pauseMany(ids),
      resume: (ids) => this.resumeMany(ids),
      retry: (ids) => this.retry(ids),
      // A big batch's rows go back to a page of the list once it is over.
      finished: () => { if (this.fresh > PAGE_SIZE) this.load().catch(() => {}); },
    }, RateMeter);
    this.wire();
    // A document in a stage with no event for longer than the stage should take says so.
    setInterval(() => this.checkStalls(), 1000);
    // How long each stage may be silent here: learned from this server's timings, re-read.
    this.limits = STALL_MS;
    this.learnLimits();
    setInterval(() => this.learnLimits(), 10 * 60 * 1000);
  }

  /** Reads this server's stage timings into the stall limits (the floors if it cannot). */
  async learnLimits() {
    try {
      const stats = await this.api.get('/v1/stats');
      this.limits = stallLimits(stats.processing?.stages);
    } catch { /* keep the limits there are */ }
  }

  wire() {
    const zone = document.getElementById('dropzone');
    const input = document.getElementById('file-input');
    input.addEventListener('change', () => { this.batch.begin(); this.addFiles([...input.files]); input.value = ''; });
    const folder = document.getElementById('folder-input');
    folder.addEventListener('change', () => {
      this.batch.begin();
      this.addFiles(filesOfFolderInput(folder.files));
      folder.value = '';
    });
    const over = (on) => (e) => { e.preventDefault(); zone.classList.toggle('over', on); };
    zone.addEventListener('dragenter', over(true));
    zone.addEventListener('dragover', over(true));
    zone.addEventListener('dragleave', over(false));
    zone.addEventListener('drop', (e) => {
      over(false)(e);
      this.batch.begin();
      filesOfDrop(e.dataTransfer).then((files) => this.addFiles(files),
        (err) => { this.addFiles([]); this.hooks.onError(`Could not read the folder: ${err.message}`); });
    });
    // Dropping a file anywhere else must not navigate away from the page.
    window.addEventListener('dragover', (e) => e.preventDefault());
    window.addEventListener('drop', (e) => e.preventDefault());

    for (const chip of document.querySelectorAll('#list-tools .chip')) {
      chip.addEventListener('click', () => {
        for (const c of document.querySelectorAll('#list-tools .chip')) c.setAttribute('aria-pressed', String(c === chip));
        this.setView({ filter: chip.dataset.filter });
      });
    }
    const search = document.getElementById('list-search');
    let timer = null;
    search.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.setView({ q: search.value.trim() }), 250);
    });
    const sort = document.getElementById('list-sort');
    sort.addEventListener('change', () => {
      const [by, order] = sort.value.split(':');
      this.setView({ sort: by, order });
    });
    document.getElementById('list-prev').addEventListener('click', () =>
      this.setView({ offset: Math.max(0, this.view.offset - PAGE_SIZE) }, true));
    document.getElementById('list-next').addEventListener('click', () =>
      this.setView({ offset: this.view.offset + PAGE_SIZE }, true));
    document.getElementById('list-retry-all').addEventListener('click', () => this.retryAll());
  }

  /** Shows another part of the list (back to its first page unless `keepPage`). */
  setView(change, keepPage = false) {
    Object.assign(this.view, change);
    if (!keepPage) this.view.offset = 0;
    this.load().catch((e) => this.hooks.onError(`Could not read the documents: ${e.message}`));
  }

  /** Whether the view is the whole list's first page, newest first, unfiltered. */
  isDefaultView() {
    const v = this.view;
    return v.filter === 'all' && !v.q && v.offset === 0 && v.sort === 'created' && v.order === 'desc';
  }

  /** Whether `doc` belongs to the view's filter and name (an upload always does). */
  fits(doc) {
    if (doc.state === 'uploading') return true;
    const v = this.view;
    if (v.q && !String(doc.name).toLowerCase().includes(v.q.toLowerCase())) return false;
    const states = FILTER_STATES[v.filter];
    return states[0] === null || states.includes(doc.state);
  }

  /** One page of the view: the API's page of one state, or of several one after another. */
  async fetchPage() {
    const v = this.view;
    const states = FILTER_STATES[v.filter];
    const documents = [];
    let total = 0, skip = v.offset;
    for (const state of states) {
      const want = PAGE_SIZE - documents.length;
      const params = new URLSearchParams({ sort: v.sort, order: v.order, limit: String(Math.max(1, want)), offset: String(skip) });
      if (state) params.set('state', state);
      if (v.q) params.set('q', v.q);
      const page = await this.api.get(`/v1/documents?${params}`);
      if (want > 0) documents.push(...page.documents.slice(0, want));
      total += page.total;
      skip = Math.max(0, skip - page.total);
    }
    return { documents, total };
  }

  /** Loads the view's page of the list (on sign-in, after every reconnection, on a change of view). */
  async load() {
    const generation = ++this.loading;
    const { documents, total } = await this.fetchPage();
    if (generation !== this.loading) return; // a later read answers for a later view
    const partial = !(this.view.filter === 'all' && !this.view.q && total <= documents.length);
    if (partial) await this.readRag();
    if (generation !== this.loading) return;
    const seen = new Set();
    documents.forEach((d, i) => {
      seen.add(d.id);
      const known = this.docs.get(d.id);
      this.upsert(d.id, { ...d, state: d.state, pos: i });
      if (!known && (d.state === 'processing' || d.state === 'queued')) this.docs.get(d.id).lastEvent = performance.now();
    });
    for (const [key, doc] of this.docs) {
      if (typeof key === 'number' && !seen.has(key) && doc.state !== 'uploading') this.remove(key);
    }
    this.total = total;
    this.fresh = 0;
    this.partial = partial;
    this.loaded = true;
    this.render();
  }

  /** The server's counts (the header's), when this page lists only part of the documents. */
  async readRag() {
    try { this.serverRag = await this.api.get('/v1/rag/status'); } catch { /* keep the last */ }
  }

  /** Re-reads the server's counts soon, once for many events. */
  ragSoon() {
    if (!this.partial || this.ragTimer) return;
    this.ragTimer = setTimeout(async () => { this.ragTimer = null; await this.readRag(); this.changed(); }, 1000);
  }

  /** The pager's line and buttons. */
  renderPager() {
    const pages = document.getElementById('list-pages');
    const v = this.view;
    const shown = [...this.docs.keys()].filter((k) => typeof k === 'number').length;
    const total = this.total + this.fresh;
    pages.hidden = total <= PAGE_SIZE && v.offset === 0;
    const first = total ? v.offset + 1 : 0;
    document.getElementById('list-range').textContent =
      `${number(first)}–${number(Math.min(total, v.offset + Math.max(shown, 1)))} of ${number(total)}`;
    document.getElementById('list-prev').disabled = v.offset === 0;
    document.getElementById('list-next').disabled = v.offset + PAGE_SIZE >= this.total;
    document.getElementById('list-retry-all').hidden = v.filter !== 'failed' || !this.total;
  }

  /** Starts uploading `files`, each with its own bar. */
  addFiles(files) {
    const keys = [];
    for (const file of files) {
      const key = `u${++this.uploads}`;
      const dropped = performance.now();
      this.upsert(key, { name: uploadName(file), size: file.size, state: 'uploading', sent: 0, sendTotal: 0, dropped });
      this.waiting.push({ key, file });
      keys.push(key);
    }
    this.batch.add(keys);
    this.batch.render(true);
    this.render();
    this.pump();
  }

  /**
   * Sends queued uploads, a few at a time: a browser opens six connections to a server, and
   * the page needs some for its own requests while a hundred files go up.
   */
  pump() {
    while (!this.held && this.sending < UPLOADS_AT_ONCE && this.waiting.length) {
      const { key, file } = this.waiting.shift();
      if (!this.docs.has(key)) continue; // dismissed while waiting
      this.sending++;
      this.api.upload(file, uploadName(file), (loaded, total) => {
        if (this.docs.get(key)?.state !== 'uploading') return; // answered or dismissed already
        // `total` is the whole request's (the form around the file): the row keeps the file's size.
        this.upsert(key, { sent: loaded, sendTotal: total });
        this.renderRow(key);
      }).then((accepted) => this.claim(key, accepted), (err) => {
        this.batch.refuse(key);
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
    const isNew = !this.docs.has(accepted.id);
    if (isNew) this.fresh++;
    const cancelWanted = doc?.cancelWanted;
    this.remove(key);
    this.batch.accept(key, accepted.id, accepted.state);
    const unchanged = accepted.state === 'ready';
    // A name uploaded again keeps the row it had, and its chunks stay searchable meanwhile.
    const before = this.docs.get(accepted.id);
    this.upsert(accepted.id, {
      ...doc, key: accepted.id, id: accepted.id, name: accepted.name, state: accepted.state, error: null,
      stage: null, progress: { done: 0, total: 0 }, unchanged, sent: undefined, sendTotal: undefined,
      chunks: before?.chunks, kind: before?.kind, created_at: before?.created_at,
      pos: before ? before.pos : -(++this.seq), lastEvent: performance.now(), cancelWanted: undefined,
    });
    const early = this.early.get(accepted.id);
    this.early.delete(accepted.id);
    if (early) early.forEach((m) => this.apply(m));
    // Its type (detected by the server) and date, now rather than at the next reload.
    if (unchanged) this.refresh(accepted.id); else this.refreshMeta(accepted.id);
    // Cancelled while it was going up: cancel it now that it is a document; the same for a
    // batch paused while it was going up.
    if (cancelWanted && !unchanged) this.act(accepted.id, 'cancel');
    else if (this.held && !unchanged && this.batch.has(accepted.id)) this.act(accepted.id, 'pause');
    // Not of the view (another filter, name or page): the batch still counts it, the list does not.
    if (!this.fits(this.docs.get(accepted.id)) || (!before && this.view.offset > 0)) {
      this.remove(accepted.id);
      this.fresh = Math.max(0, this.fresh - 1);
    }
    this.renderRow(accepted.id);
    this.changed();
    this.renderSoon();
    this.flash(accepted.id);
  }

  /** A snapshot or an event from the live stream. */
  onMessage(m) {
    if (m.type === 'snapshot') {
      // Only the rows already listed: the list reads its own page below.
      for (const d of m.documents) if (this.docs.has(d.id)) this.upsert(d.id, d);
      if (m.rag) this.serverRag = m.rag;
      this.render();
      this.load().catch(() => {});
      return;
    }
    if (!m.type.startsWith('document.')) return;
    if (m.type !== 'document.progress') this.ragSoon();
    if (!this.docs.has(m.id) && this.batch.has(m.id)) {
      this.batch.onEvent(m); // of the batch, but not on this page of the list
      return;
    }
    if (!this.docs.has(m.id)) {
      // Its upload's answer may still be on its way; otherwise it came from elsewhere.
      const list = this.early.get(m.id) || [];
      list.push(m);
      this.early.set(m.id, list);
      // A document from elsewhere shows up if it belongs at the top of the list as shown.
      setTimeout(() => {
        if (!this.early.has(m.id)) return;
        this.early.delete(m.id);
        if (this.isDefaultView()) this.refresh(m.id, true);
      }, 1500);
      return;
    }
    this.apply(m);
  }

  apply(m) {
    const doc = this.docs.get(m.id);
    if (!doc) return;
    const now = performance.now();
    this.batch.onEvent(m);
    doc.lastEvent = now;
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
    } else if (m.type === 'document.paused') {
      doc.meter = null;
      this.upsert(m.id, { state: 'paused', stage: null, progress: { done: 0, total: 0 }, error: null });
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
      this.renderRow(id);
    } catch (e) {
      if (e.status === 404) { this.remove(id); this.render(); }
    }
  }

  /** Re-reads one document (its timings, kind and chunk count); `add`s it at the top if not listed. */
  async refresh(id, add = false) {
    try {
      const d = await this.api.get(`/v1/documents/${id}`);
      if (!this.docs.has(id) && !add) return;
      if (!this.docs.has(id)) { this.fresh++; d.pos = -(++this.seq); d.lastEvent = performance.now(); }
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

  /**
   * The counts the header and the chat show: the list's own while it holds every document,
   * the server's while it shows part of them (a page, a filter, a name).
   */
  counts() {
    if (!this.partial || !this.serverRag) return this.status();
    const { available, documents_ready, documents_processing } = this.serverRag;
    return { available, documents_ready, documents_processing };
  }

  /** Tells the page the list changed, once it holds the whole list. */
  changed() {
    if (this.loaded) this.hooks.onChange(this.counts());
  }

  /** render() at the next frame, once for many changes (a big batch's uploads). */
  renderSoon() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => { this.renderQueued = false; this.render(); });
  }

  /**
   * Puts the rows in order (uploads first, then those accepted since the list was read, newest
   * first, then the list's page in the API's order) and updates each.
   */
  render() {
    const order = [...this.docs.values()].sort((a, b) => {
      const ua = a.state === 'uploading', ub = b.state === 'uploading';
      if (ua !== ub) return ua ? -1 : 1;
      if (ua) return Number(String(b.key).slice(1)) - Number(String(a.key).slice(1));
      return (a.pos ?? -Infinity) - (b.pos ?? -Infinity);
    });
    // Every row first (a new one is prepended), then each put in its place in order.
    const rows = order.map((doc) => this.renderRow(doc.key)).filter(Boolean);
    rows.forEach((row, i) => {
      if (this.list.children[i] !== row) this.list.insertBefore(row, this.list.children[i] || null);
    });
    this.empty.hidden = this.docs.size > 0 || !this.isDefaultView();
    this.list.dataset.total = String(this.total);
    this.renderPager();
    this.changed();
  }

  /** The document called `id`, if listed. */
  byId(id) { return this.docs.get(id); }
}

/**
 * @typedef {{ available: boolean, documents_ready: number, documents_processing: number }} RagCounts
 */

// What a user does to documents (cancel, pause, resume, retry, re-process, delete), one by one
// and as a batch: methods of `Documents`, kept in actions.js.
Object.assign(Documents.prototype, actions);
// Drawing one document's row, and the stall notices: methods too, kept in rows.js.
Object.assign(Documents.prototype, rows);
