// Big batches: the files of a dropped folder (or of many files), and one overall bar for the
// batch above the per-file rows. Every figure comes from the server's events (or, while a
// file is still going up, from the upload itself); rates and time left say "estimating…"
// until they rest on enough updates (RateMeter).

import { el, seconds } from './util.js';

/** A name (or a path's part) that starts with a dot: hidden, and skipped. */
const hidden = (name) => name.startsWith('.');

/**
 * The name a file is uploaded (and stored) under: its path inside the dropped or chosen folder,
 * folder included ("docs/guide/index.md"), so that same-named files of different subfolders
 * stay different documents; a file dropped on its own keeps its name.
 * @param {File & { relativePath?: string }} file
 */
export const uploadName = (file) => file.relativePath || file.webkitRelativePath || file.name;

/**
 * The files of a drop, folders walked recursively (hidden files and folders skipped). The
 * entries must be taken while the drop event is dispatched, so this reads them at once and
 * returns a promise of the files.
 * @param {DataTransfer} dt
 * @returns {Promise<File[]>}
 */
export function filesOfDrop(dt) {
  const items = [...(dt?.items || [])].filter((i) => i.kind === 'file');
  const taken = items.map((i) => ({ entry: i.webkitGetAsEntry?.() || null, file: i.getAsFile() }));
  if (!taken.length) return Promise.resolve([...(dt?.files || [])].filter((f) => !hidden(f.name)));
  return (async () => {
    const out = [];
    for (const { entry, file } of taken) {
      if (entry && entry.isDirectory) await walk(entry, out, entry.name);
      else if (file && !hidden(file.name)) out.push(file);
    }
    return out;
  })();
}

async function walk(dir, out, path) {
  if (hidden(dir.name)) return;
  const reader = dir.createReader();
  for (;;) {
    // readEntries answers a hundred or so at a time, and nothing once done.
    const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
    if (!batch.length) break;
    for (const entry of batch) {
      if (hidden(entry.name)) continue;
      if (entry.isDirectory) { await walk(entry, out, `${path}/${entry.name}`); continue; }
      const file = await new Promise((ok, fail) => entry.file(ok, fail));
      file.relativePath = `${path}/${entry.name}`;
      out.push(file);
    }
  }
}

/** The files an `<input webkitdirectory>` chose, hidden files and folders skipped. */
export function filesOfFolderInput(files) {
  return [...files].filter((f) => !(f.webkitRelativePath || f.name).split('/').some(hidden));
}

const ENDED = new Set(['ready', 'failed', 'cancelled']);

/**
 * The current batch: its members (an upload's key until the server accepts it, then the
 * document's id), each with where it stands, and the overall bar drawn from them.
 */
export class Batch {
  /**
   * @param {{ cancel: (ids: number[], keys: string[]) => Promise<void>, pause: (ids: number[]) => Promise<void>, resume: (ids: number[]) => Promise<void>, retry: (ids: number[]) => Promise<void>, finished?: () => void }} actions
   * @param {typeof import('./progress.js').RateMeter} Meter
   */
  constructor(actions, Meter) {
    this.actions = actions;
    this.Meter = Meter;
    this.members = new Map();
    this.panel = document.getElementById('batch');
    this.bar = document.getElementById('batch-bar');
    this.line = document.getElementById('batch-line');
    this.counts = document.getElementById('batch-counts');
    this.spoken = document.getElementById('batch-spoken');
    this.cancelButton = document.getElementById('batch-cancel');
    this.pauseButton = document.getElementById('batch-pause');
    this.resumeButton = document.getElementById('batch-resume');
    this.pauseButton.addEventListener('click', () => this.pauseAll());
    this.resumeButton.addEventListener('click', () => this.resumeAll());
    this.retryButton = document.getElementById('batch-retry');
    this.clearButton = document.getElementById('batch-clear');
    this.cancelButton.addEventListener('click', () => this.cancelAll());
    this.retryButton.addEventListener('click', () => this.retryFailed());
    this.clearButton.addEventListener('click', () => this.clear());
    this.queued = false;
    this.lastSpoken = 0;
    this.reset();
  }

  reset() {
    this.members.clear();
    this.started = null;     // performance.now() of the first drop of this batch
    this.firstShownMs = null;
    this.firstDoneMs = null;
    this.finishedAt = null;
    this.chunkMeter = null;  // chunks embedded, over the batch
    this.docMeter = null;    // documents ended, over the batch
    this.reading = false;
    this.paused = false;     // the user paused the batch (its uploads wait, its documents are held)
  }

  /** A drop began (its files may still be being read from a folder). */
  begin(now = performance.now()) {
    if (this.members.size && this.finished()) this.reset();
    if (this.started === null) this.started = now;
    this.finishedAt = null;
    this.reading = true;
    if (!this.sampler) this.sampler = setInterval(() => this.sample(), 1000);
    this.render(true);
  }

  /** The files of the drop are known: `keys` are their uploads' keys. */
  add(keys) {
    this.reading = false;
    for (const key of keys) this.members.set(key, { state: 'uploading', done: 0, total: 0, chunks: 0 });
    this.schedule();
  }

  has(key) { return this.members.has(key); }

  /** The upload `key` was accepted as document `id` in `state`. */
  accept(key, id, state) {
    const m = this.members.get(key);
    if (!m) return;
    this.members.delete(key);
    // Accepted unchanged (already ready): ended, but no chunks embedded by this batch.
    this.members.set(id, { ...m, state, unchanged: state === 'ready' });
    if (state === 'ready') this.ended();
    this.schedule();
  }

  /** The upload `key` was refused (or dropped before it was sent, `cancelled`). */
  refuse(key, cancelled = false) {
    const m = this.members.get(key);
    if (!m) return;
    m.state = cancelled ? 'cancelled' : 'failed';
    this.ended();
    this.schedule();
  }

  /** A document event for a member. */
  onEvent(msg) {
    const m = this.members.get(msg.id);
    if (!m) return;
    const wasEnded = ENDED.has(m.state);
    if (msg.type === 'document.progress') {
      m.state = msg.stage === 'queued' ? 'queued' : 'processing';
      if (msg.stage === 'embedding') { m.done = msg.done; m.total = msg.total; }
    } else if (msg.type === 'document.ready') {
      m.state = 'ready';
      m.done = m.total = m.chunks = msg.chunks;
    } else if (msg.type === 'document.failed') {
      m.state = msg.error?.code === 'cancelled' ? 'cancelled' : 'failed';
    } else if (msg.type === 'document.paused') {
      Object.assign(m, { state: 'paused', done: 0, total: 0 });
    } else {
      return;
    }
    if (!wasEnded && ENDED.has(m.state)) this.ended();
    this.schedule();
  }

  /**
   * Once a second while the batch runs: the chunks embedded and the documents ended so far,
   * into their meters. Sampled, not per event: many documents' events arrive together, and
   * intervals of a millisecond between them would make a rate of nothing.
   */
  sample() {
    if (this.finished()) { clearInterval(this.sampler); this.sampler = null; return; }
    if (this.paused) return; // nothing moves: a rate measured now would be of nothing
    const now = performance.now();
    const embedded = this.embedded();
    const ended = this.tally().ended;
    if (!this.chunkMeter) {
      this.chunkMeter = new this.Meter(now, embedded);
      this.docMeter = new this.Meter(now, ended);
    } else {
      this.chunkMeter.update(now, embedded);
      this.docMeter.update(now, ended);
    }
    this.schedule();
  }

  /** Locally set a member's state (a retry or re-process queued it again). */
  set(id, state) {
    const m = this.members.get(id);
    if (!m) return;
    Object.assign(m, { state, done: 0, total: 0 });
    this.finishedAt = null;
    this.chunkMeter = this.docMeter = null; // the counts went back: measure afresh
    if (!this.sampler) this.sampler = setInterval(() => this.sample(), 1000);
    this.schedule();
  }

  ended(now = performance.now()) {
    if (this.firstDoneMs === null && this.started !== null) this.firstDoneMs = Math.round(now - this.started);
  }

  /** Chunks embedded so far by the batch's documents. */
  embedded() {
    let n = 0;
    for (const m of this.members.values()) if (!m.unchanged) n += m.state === 'ready' ? m.chunks : m.done;
    return n;
  }

  tally() {
    const t = { total: 0, uploading: 0, waiting: 0, processing: 0, paused: 0, ready: 0, failed: 0, cancelled: 0, ended: 0 };
    for (const m of this.members.values()) {
      t.total++;
      if (m.state === 'queued') t.waiting++; else t[m.state]++;
      if (ENDED.has(m.state)) t.ended++;
    }
    return t;
  }

  finished() {
    const t = this.tally();
    return !this.reading && t.total > 0 && t.ended === t.total;
  }

  /** Time left, honestly: from chunks when every unfinished document's are known, else from documents. */
  left(t) {
    const open = [...this.members.values()].filter((m) => !ENDED.has(m.state));
    const chunkRate = this.chunkMeter?.rate() ?? null;
    if (open.length && open.every((m) => m.total > 0) && chunkRate) {
      return open.reduce((s, m) => s + (m.total - m.done), 0) / chunkRate;
    }
    const docRate = this.docMeter?.rate() ?? null;
    return docRate ? (t.total - t.ended) / docRate : null;
  }

  schedule() {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => { this.queued = false; this.render(); });
  }

  render(now = false) {
    if (now) this.queued = false;
    const t = this.tally();
    if (!this.reading && !t.total) { this.panel.hidden = true; return; }
    this.panel.hidden = false;
    if (this.firstShownMs === null && this.started !== null) {
      this.firstShownMs = Math.round(performance.now() - this.started);
      this.panel.dataset.firstShownMs = String(this.firstShownMs);
    }
    if (this.firstDoneMs !== null) this.panel.dataset.firstDoneMs = String(this.firstDoneMs);
    const finished = this.finished();
    if (finished && this.finishedAt === null) {
      this.finishedAt = performance.now();
      this.actions.finished?.();
    }
    this.panel.dataset.state = this.reading ? 'reading' : finished ? 'finished' : 'running';
    this.panel.dataset.done = String(t.ended);
    this.panel.dataset.total = String(t.total);
    const pct = t.total ? (100 * t.ended) / t.total : 0;
    if (this.reading && !t.total) this.bar.removeAttribute('aria-valuenow');
    else this.bar.setAttribute('aria-valuenow', String(Math.round(pct)));
    this.bar.classList.toggle('waiting', this.reading && !t.total);
    this.bar.classList.toggle('ready', finished && !t.failed && !t.cancelled);
    this.bar.firstChild.style.width = `${pct.toFixed(1)}%`;

    let line;
    if (this.reading && !t.total) line = 'Reading the folder…';
    else {
      const parts = [`${t.ended} of ${t.total} documents done`];
      if (finished) {
        parts.push(`in ${seconds((this.finishedAt - this.started) / 1000)}`);
      } else if (this.paused) {
        parts.push('paused');
        if (t.processing) parts.push(`${t.processing} stopping…`);
      } else {
        if (t.uploading) parts.push(`${t.total - t.uploading} of ${t.total} uploaded`);
        const rate = this.chunkMeter?.rate() ?? null;
        const left = this.left(t);
        parts.push(rate === null ? 'chunks/s estimating…' : `${rate.toFixed(rate < 10 ? 1 : 0)} chunks/s`);
        parts.push(left === null ? 'time left estimating…' : `about ${seconds(left)} left`);
      }
      line = parts.join(' · ');
    }
    this.bar.setAttribute('aria-valuetext', line);
    this.line.textContent = line;
    const counts = [];
    if (t.processing) counts.push(`${t.processing} processing`);
    if (t.waiting) counts.push(`${t.waiting} waiting`);
    if (t.paused) counts.push(`${t.paused} paused`);
    if (t.ready) counts.push(`${t.ready} ready`);
    if (t.failed) counts.push(`${t.failed} failed`);
    if (t.cancelled) counts.push(`${t.cancelled} cancelled`);
    this.counts.replaceChildren(...counts.map((c) => el('li', { class: `count ${c.split(' ')[1]}` }, c)));
    this.cancelButton.hidden = finished || t.ended === t.total;
    this.pauseButton.hidden = finished || this.paused || t.ended === t.total;
    this.resumeButton.hidden = finished || !this.paused;
    this.panel.dataset.paused = String(this.paused);
    this.retryButton.hidden = !(t.failed + t.cancelled) || !this.failedIds().length;
    this.retryButton.textContent = `Retry failed (${t.failed + t.cancelled})`;
    this.clearButton.hidden = !finished;
    // Spoken at most every 5 s, and at the end: the visible line changes on every event.
    const at = performance.now();
    if (finished || at - this.lastSpoken > 5000) {
      this.lastSpoken = at;
      const spoken = finished
        ? `Batch finished: ${t.ready} ready${t.failed ? `, ${t.failed} failed` : ''}${t.cancelled ? `, ${t.cancelled} cancelled` : ''}.`
        : `${t.ended} of ${t.total} documents done.`;
      if (this.spoken.textContent !== spoken) this.spoken.textContent = spoken;
    }
  }

  failedIds() {
    return [...this.members].filter(([k, m]) => typeof k === 'number' && (m.state === 'failed' || m.state === 'cancelled')).map(([k]) => k);
  }

  async cancelAll() {
    const ids = [], keys = [];
    for (const [k, m] of this.members) {
      if (ENDED.has(m.state)) continue;
      if (typeof k === 'number') ids.push(k); else keys.push(k);
    }
    this.cancelButton.disabled = true;
    try { await this.actions.cancel(ids, keys); } finally { this.cancelButton.disabled = false; }
  }

  /** Pauses the batch: uploads not sent yet wait, documents waiting or processing are held. */
  async pauseAll() {
    const ids = [...this.members]
      .filter(([k, m]) => typeof k === 'number' && (m.state === 'queued' || m.state === 'processing'))
      .map(([k]) => k);
    this.paused = true;
    this.schedule();
    this.pauseButton.disabled = true;
    try { await this.actions.pause(ids); } finally { this.pauseButton.disabled = false; }
  }

  /** Resumes the batch: its uploads go on and its paused documents are queued again. */
  async resumeAll() {
    const ids = [...this.members].filter(([k, m]) => typeof k === 'number' && m.state === 'paused').map(([k]) => k);
    this.paused = false;
    this.finishedAt = null;
    this.chunkMeter = this.docMeter = null; // measure afresh from now
    if (!this.sampler) this.sampler = setInterval(() => this.sample(), 1000);
    this.schedule();
    this.resumeButton.disabled = true;
    try { await this.actions.resume(ids); } finally { this.resumeButton.disabled = false; }
  }

  async retryFailed() {
    const ids = this.failedIds();
    if (!ids.length) return;
    this.retryButton.disabled = true;
    try { await this.actions.retry(ids); } finally { this.retryButton.disabled = false; }
  }

  clear() {
    this.reset();
    this.render();
  }
}
