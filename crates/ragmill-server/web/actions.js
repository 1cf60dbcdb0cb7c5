// What a user does to documents on the documents page: cancel, pause, resume, retry,
// re-process and delete, one document or a batch at once. These are methods of `Documents`
// (documents.js mixes them in); `this` is the page's list, its rows and its batch. Each asks the
// server, and the server's events then bring the rows their new state; only a document queued
// again is shown waiting at once, since its events may come before the request's answer.

export const actions = {
  /**
   * Cancels (`op` 'cancel'), pauses ('pause') or resumes ('resume') document `key`; the
   * server's event says when it is cancelled or paused, and a resumed one is waiting again at
   * once. A document that moved on meanwhile (409, 404) is read again instead.
   */
  async act(key, op) {
    const doc = this.docs.get(key);
    try {
      await this.api.post(`/v1/documents/${key}/${op}`);
      if (op === 'resume') this.requeued([key], 'paused');
    } catch (e) {
      if (e.status === 409 || e.status === 404) { this.refresh(key); return; }
      this.hooks.onError(`Could not ${op} ${doc?.name ?? key}: ${e.message}`);
    }
  },

  /**
   * Cancels the batch: documents `ids` in one request, uploads `keys` not sent yet are dropped,
   * and those going up are cancelled once the server accepts them.
   */
  async cancelMany(ids, keys) {
    const unsent = new Set(this.waiting.map((w) => w.key));
    for (const key of keys) {
      const doc = this.docs.get(key);
      if (unsent.has(key)) {
        this.waiting = this.waiting.filter((w) => w.key !== key);
        this.batch.refuse(key, true);
        if (doc) {
          this.upsert(key, { state: 'failed', error: { code: 'cancelled', message: 'Cancelled before it was uploaded' } });
          this.renderRow(key);
        }
      } else if (doc) {
        doc.cancelWanted = true;
      }
    }
    await this.bulk('cancel', { ids }, 'cancel the batch');
  },

  /** Pauses the batch: uploads not sent yet wait, documents `ids` are paused in one request. */
  async pauseMany(ids) {
    this.held = true;
    await this.bulk('pause', { ids }, 'pause the batch');
  },

  /** Resumes the batch: its waiting uploads go up again and paused documents `ids` are queued. */
  async resumeMany(ids) {
    this.held = false;
    this.pump();
    if (ids.length && await this.bulk('resume', { ids }, 'resume the batch', true)) this.requeued(ids, 'paused');
  },

  /**
   * Documents `ids` are queued again (retried, resumed, re-processed): they wait for a worker,
   * at once, since their events may come before the request's answer. `from`: only those in
   * that state.
   */
  requeued(ids, from = null) {
    for (const id of ids) {
      const doc = this.docs.get(id);
      if (doc && (!from || doc.state === from)) {
        Object.assign(doc, { state: 'queued', stage: null, error: null, progress: { done: 0, total: 0 }, meter: null, lastEvent: performance.now() });
        this.renderRow(id);
      }
      this.batch.set(id, 'queued');
    }
    this.changed();
  },

  /** Queues failed (and cancelled) documents `ids` again, in one request. */
  async retry(ids) {
    this.requeued(ids);
    await this.bulk('retry', { ids }, 'retry', true);
  },

  /** Queues every failed document again (the "Failed" chip's button). */
  async retryAll() {
    if (await this.bulk('retry', { all: true }, 'retry', true)) this.load().catch(() => {});
  },

  /**
   * `POST /v1/documents/{op}` for the documents `selection` names (`{ids}`, none: nothing to
   * ask, or `{all: true}`). True once done; on failure it says so (`Could not <what>`), and
   * with `reload` reads the list again (the page may have shown them queued already).
   */
  async bulk(op, selection, what, reload = false) {
    if (selection.ids && !selection.ids.length) return true;
    try {
      await this.api.post(`/v1/documents/${op}`, selection);
      return true;
    } catch (e) {
      this.hooks.onError(`Could not ${what}: ${e.message}`);
      if (reload) this.load().catch(() => {});
      return false;
    }
  },

  async reprocess(key) {
    const doc = this.docs.get(key);
    const before = { ...doc };
    this.requeued([key]);
    try {
      await this.api.post(`/v1/documents/${key}/reprocess`);
    } catch (e) {
      Object.assign(doc, before);
      this.renderRow(key);
      this.changed();
      this.hooks.onError(`Could not re-process ${doc.name}: ${e.message}`);
    }
  },

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
  },
};
