// One document's row on the documents page: its name, type, size and date, its state in plain
// words, the bar and the line beside it (from progress.js's `describe`), the buttons that fit
// its state, and a notice when its stage has gone quiet for too long. These are methods of
// `Documents` (documents.js mixes them in); `this` is the page's list.

import { el, bytes } from './util.js';
import { describe, stalled } from './progress.js';

const KIND = { text: 'Text', markdown: 'Markdown', html: 'HTML', pdf: 'PDF', docx: 'DOCX' };
const STATE_WORD = { uploading: 'Uploading', queued: 'Waiting', processing: 'Processing', ready: 'Ready', failed: 'Failed', paused: 'Paused' };

export const rows = {
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
    const cancelled = doc.error?.code === 'cancelled';
    if (cancelled) row.dataset.error = 'cancelled'; else delete row.dataset.error;
    state.className = `state ${cancelled ? 'cancelled' : doc.state}`;
    state.textContent = cancelled ? 'Cancelled' : STATE_WORD[doc.state] || doc.state;
    row.querySelector('.detail').textContent = line;
    const stall = stalled(doc, performance.now(), this.limits);
    row.querySelector('.stall').textContent = stall || '';
    row.querySelector('.stall').hidden = !stall;
    if (stall) row.dataset.stalled = 'true'; else delete row.dataset.stalled;
    const err = row.querySelector('.doc-error');
    // A cancel the user asked for is said by the state and the line, not as an alert.
    err.hidden = !doc.error || cancelled;
    err.textContent = doc.error && !cancelled ? `${doc.error.message} (${doc.error.code})` : '';
    const busy = doc.state === 'uploading';
    row.querySelector('.reprocess').hidden = busy || typeof key !== 'number';
    row.querySelector('.open').hidden = busy || typeof key !== 'number';
    row.querySelector('.delete').hidden = busy;
    const going = typeof key === 'number' && (doc.state === 'queued' || doc.state === 'processing');
    const cancel = row.querySelector('.cancel');
    cancel.hidden = !going && !(typeof key === 'number' && doc.state === 'paused');
    cancel.setAttribute('aria-label', `Cancel ${doc.name}`);
    const pause = row.querySelector('.pause');
    pause.hidden = !going;
    pause.setAttribute('aria-label', `Pause ${doc.name}`);
    const resume = row.querySelector('.resume');
    resume.hidden = !(typeof key === 'number' && doc.state === 'paused');
    resume.setAttribute('aria-label', `Resume ${doc.name}`);
    row.querySelector('.reprocess').hidden ||= doc.state === 'paused';
    row.querySelector('.delete').textContent = typeof key === 'number' ? 'Delete' : 'Dismiss';
    return row;
  },

  newRow(key) {
    const name = el('div', { class: 'doc-name' });
    const open = el('button', { type: 'button', class: 'open' }, 'Open');
    open.addEventListener('click', () => {
      const doc = this.docs.get(key);
      this.api.openOriginal(key, doc.name).catch((e) => this.hooks.onError(`Could not open ${doc.name}: ${e.message}`));
    });
    const reprocess = el('button', { type: 'button', class: 'reprocess' }, 'Re-process');
    const cancel = el('button', { type: 'button', class: 'cancel danger' }, 'Cancel');
    cancel.addEventListener('click', () => this.act(key, 'cancel'));
    const pause = el('button', { type: 'button', class: 'pause' }, 'Pause');
    pause.addEventListener('click', () => this.act(key, 'pause'));
    const resume = el('button', { type: 'button', class: 'resume' }, 'Resume');
    resume.addEventListener('click', () => this.act(key, 'resume'));
    const del = el('button', { type: 'button', class: 'delete danger' }, 'Delete');
    reprocess.addEventListener('click', () => this.reprocess(key));
    del.addEventListener('click', () => this.delete(key));
    const bar = el('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100' }, el('span'));
    const row = el('li', { class: 'doc' },
      name,
      el('div', { class: 'doc-actions' }, pause, resume, cancel, open, reprocess, del),
      el('div', { class: 'doc-meta' }),
      el('div', { class: 'doc-progress' }, bar,
        el('div', { class: 'doc-line' }, el('span', { class: 'state' }), el('span', { class: 'detail' }),
          el('span', { class: 'stall', hidden: true }))),
      el('div', { class: 'doc-error', role: 'alert' }));
    bar.setAttribute('aria-label', 'Progress');
    return row;
  },

  /** Rows whose stage has had no event for too long say so (and stop saying it at the next event). */
  checkStalls() {
    const now = performance.now();
    for (const [key, doc] of this.docs) {
      const row = this.rows.get(key);
      if (!row) continue;
      const stall = stalled(doc, now, this.limits);
      if ((stall || '') !== row.querySelector('.stall').textContent) this.renderRow(key);
    }
  },
};
