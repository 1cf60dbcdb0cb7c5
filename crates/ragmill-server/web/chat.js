// The chat and search page: the RAG toggle, answers streamed token by token with their cited
// passages, and plain search (no chat model needed; without one the page is search only).
// Passages open in a dialog. Every chat turn is saved into a conversation on the server
// (conversations.js lists them); an answer can be stopped (what came stays, marked stopped) and
// copied; the retrieval settings (passages, mode, only some documents) sit above the log.

import { Conversations } from './conversations.js';
import { renderMarkdown } from './markdown.js';
import { el, snippet, where } from './util.js';

const MODES = { hybrid: 'words + meaning', vector: 'meaning', keyword: 'exact words' };

export class Chat {
  /**
   * @param {import('./api.js').Api} api
   * @param {{ showDocument: (id: number) => void, onConfig: () => void }} hooks
   *   `onConfig` once the server said whether a chat model is configured
   */
  constructor(api, hooks) {
    this.api = api;
    this.hooks = hooks;
    this.messages = [];
    this.rag = { available: false, documents_ready: 0, documents_processing: 0 };
    this.touched = false;       // the user set the toggle themselves
    this.configured = null;     // whether a chat model is configured (null: not known yet)
    this.abort = null;
    this.$ = (id) => document.getElementById(id);
    this.picked = new Map();    // "only these documents": id -> name
    this.conversations = new Conversations(api, {
      onOpen: (detail) => this.show(detail),
      onNew: () => this.clear(),
      onRenamed: () => this.showName(),
    });
    // The page's controls act for the latest session's chat only (a new one after each sign-in).
    Chat.latest?.listeners.abort();
    Chat.latest = this;
    this.listeners = new AbortController();
    this.wire();
    // Nothing of a previous sign-in's chat or search stays on the page.
    this.clear();
    for (const id of ['search-results', 'search-weaker']) this.$(id).replaceChildren();
    this.$('search-status').textContent = '';
    this.$('search-weaker-toggle').hidden = true;
    this.$('doc-picker-list').replaceChildren();
  }

  on(node, type, fn) {
    node.addEventListener(type, fn, { signal: this.listeners.signal });
  }

  wire() {
    const toggle = this.$('rag-toggle');
    this.on(toggle, 'change', () => { this.touched = true; });
    this.on(this.$('chat-form'), 'submit', (e) => { e.preventDefault(); this.send(); });
    this.on(this.$('chat-input'), 'keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.send(); }
    });
    this.on(this.$('chat-stop'), 'click', () => this.stop());
    this.wireRetrieval();
    this.on(this.$('search-form'), 'submit', (e) => { e.preventDefault(); this.search(); });
    this.on(this.$('search-weaker-toggle'), 'click', () => this.showWeaker(this.$('search-weaker').hidden));
    // How passages are found (search and RAG chat alike), remembered on this browser.
    const mode = this.$('search-mode');
    const saved = localStorage.getItem('ragmill.searchMode');
    if (saved && [...mode.options].some((o) => o.value === saved)) mode.value = saved;
    this.on(mode, 'change', () => {
      localStorage.setItem('ragmill.searchMode', mode.value);
      this.$('chat-mode').value = mode.value;
      this.summarize();
      if (this.$('search-input').value.trim()) this.search();
    });
    this.$('chat-mode').value = mode.value;
    this.on(this.$('passage-open'), 'click', async () => {
      const d = this.$('passage');
      const err = this.$('passage-error');
      err.hidden = true;
      try {
        await this.api.openOriginal(Number(d.dataset.document), d.dataset.name, Number(d.dataset.page) || null);
      } catch (e) {
        err.textContent = `Cannot open it: ${e.message}`;
        err.hidden = false;
      }
    });
    this.on(this.$('passage-doc'), 'click', () => {
      const id = Number(this.$('passage').dataset.document);
      this.$('passage').close();
      this.hooks.showDocument(id);
    });
  }

  /**
   * The retrieval settings of RAG chat: passages to give the model (remembered on this
   * browser), how they are found (the search's own mode control, mirrored), and only some
   * ready documents (picked from `GET /v1/documents`).
   */
  wireRetrieval() {
    const topK = this.$('chat-top-k');
    const saved = Number(localStorage.getItem('ragmill.chatTopK'));
    if (saved >= 1 && saved <= 20) topK.value = String(saved);
    this.on(topK, 'change', () => {
      const k = Math.min(20, Math.max(1, Math.round(Number(topK.value)) || 5));
      topK.value = String(k);
      localStorage.setItem('ragmill.chatTopK', String(k));
      this.summarize();
    });
    this.on(this.$('chat-mode'), 'change', () => {
      const mode = this.$('search-mode');
      mode.value = this.$('chat-mode').value;
      mode.dispatchEvent(new Event('change'));
    });
    this.on(this.$('retrieval'), 'toggle', () => { if (this.$('retrieval').open) this.loadPicker(); });
    let timer = null;
    this.on(this.$('doc-picker-filter'), 'input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.loadPicker(), 200);
    });
    this.on(this.$('doc-picker-clear'), 'click', () => {
      this.picked.clear();
      for (const box of this.$('doc-picker-list').querySelectorAll('input')) box.checked = false;
      this.summarize();
    });
    this.summarize();
  }

  topK() {
    return Math.min(20, Math.max(1, Math.round(Number(this.$('chat-top-k').value)) || 5));
  }

  summarize() {
    const k = this.topK();
    const n = this.picked.size;
    this.$('retrieval-summary').textContent = `${k} passage${k === 1 ? '' : 's'} · ${MODES[this.$('search-mode').value]} · ` +
      (n ? `${n} document${n === 1 ? '' : 's'} only` : 'all documents');
    this.$('doc-picker-count').textContent = n
      ? `Only ${[...this.picked.values()].join(', ')}.`
      : 'All ready documents are searched.';
    this.$('doc-picker-clear').hidden = !n;
  }

  /** The ready documents whose name has the filter's text, each with its box. */
  async loadPicker() {
    const q = this.$('doc-picker-filter').value.trim();
    const list = this.$('doc-picker-list');
    try {
      const { documents, total } = await this.api.get(`/v1/documents?state=ready&sort=name&order=asc&limit=50${q ? `&q=${encodeURIComponent(q)}` : ''}`);
      const items = documents.map((d) => {
        const id = `pick-${d.id}`;
        const box = el('input', { type: 'checkbox', id, checked: this.picked.has(d.id) });
        box.addEventListener('change', () => {
          if (box.checked) this.picked.set(d.id, d.name); else this.picked.delete(d.id);
          this.summarize();
        });
        return el('li', {}, box, el('label', { for: id }, d.name));
      });
      if (total > documents.length) items.push(el('li', { class: 'muted small' }, `${total - documents.length} more: filter by name to find them.`));
      if (!documents.length) items.push(el('li', { class: 'muted small' }, q ? 'No ready document has that in its name.' : 'No document is ready yet.'));
      list.replaceChildren(...items);
    } catch (e) {
      list.replaceChildren(el('li', { class: 'error small' }, e.message));
    }
  }

  /** Asks the server whether a chat model is configured. */
  async loadConfig() {
    try {
      const c = await this.api.get('/v1/chat');
      this.configured = !!c.configured;
      this.model = c.model;
      this.backend = c.backend;
      this.models = Array.isArray(c.models) ? c.models : [];
    } catch {
      // Not known: the chat stays, and says so if a message is refused.
    }
    this.renderConfig();
    this.hooks.onConfig();
    if (this.configured) this.conversations.load();
  }

  /**
   * Without a chat model the chat panel (and its RAG toggle) is not shown at all: the page is
   * search, with one line on how to turn chat on.
   */
  renderConfig() {
    const off = this.configured === false;
    this.$('chat-unconfigured').hidden = !off;
    this.$('chat-card').hidden = off;
    this.$('chat-columns').classList.toggle('solo', off);
    document.querySelector('nav a[data-page="chat"]').textContent = off ? 'Search' : 'Chat & search';
    this.$('chat-input').disabled = off;
    this.$('chat-send').disabled = off || !!this.abort;
    this.$('chat-stop').hidden = !this.abort;
    // One chat model: shown, not picked. Several (GET /v1/chat's `models`): a picker, the
    // choice remembered on this browser while the server still offers it.
    const several = !!this.configured && (this.models?.length ?? 0) > 1;
    const model = this.$('chat-model');
    model.hidden = !(this.configured && this.model) || several;
    model.textContent = this.model ? `Model: ${this.model}${this.backend ? ` (${this.backend})` : ''}` : '';
    const pick = this.$('chat-model-pick');
    this.$('chat-model-row').hidden = !several;
    if (several && pick.options.length !== this.models.length) {
      pick.replaceChildren(...this.models.map((m, i) =>
        el('option', { value: m }, i === 0 ? `${m} (default)` : m)));
      const saved = localStorage.getItem('ragmill.chatModel');
      pick.value = this.models.includes(saved) ? saved : this.models[0];
      if (!pick.dataset.wired) {
        pick.dataset.wired = '1';
        this.on(pick, 'change', () => {
          localStorage.setItem('ragmill.chatModel', pick.value);
          this.renderConfig();
        });
      }
    }
    const chosen = this.chosenModel() || this.model;
    if (this.configured && chosen) this.$('chat-input').placeholder = `Ask ${chosen}…`;
  }

  /** The model picked, when the server offers several and it is not the default; else null. */
  chosenModel() {
    if (!((this.models?.length ?? 0) > 1)) return null;
    const v = this.$('chat-model-pick').value;
    return v && v !== this.models[0] && this.models.includes(v) ? v : null;
  }

  /** The RAG status changed (snapshot, `rag.available`, or a re-read). */
  setRag(status) {
    const was = this.rag.available;
    this.rag = status;
    const toggle = this.$('rag-toggle');
    toggle.disabled = !status.available;
    if (!status.available) {
      toggle.checked = false;
      this.touched = false;
    } else if (!was && !this.touched) {
      toggle.checked = true; // switches on the instant the first document is ready
    }
    const reason = this.$('rag-reason');
    if (status.available) {
      reason.textContent = `Searching ${status.documents_ready} ready document${status.documents_ready === 1 ? '' : 's'}` +
        (status.documents_processing ? `; ${status.documents_processing} more on the way.` : '.');
    } else if (status.documents_processing) {
      reason.textContent = `Available as soon as your first document is ready (${status.documents_processing} processing).`;
    } else {
      reason.textContent = 'Upload a document on the Documents page: RAG switches on as soon as it is ready.';
    }
  }

  /** An empty log: a new conversation, made on the server with its first question. */
  clear() {
    this.abort?.abort();
    this.messages = [];
    this.conversations.current = null;
    this.conversations.render();
    const log = this.$('chat-log');
    log.replaceChildren(this.$('chat-empty') || el('p', { class: 'empty', id: 'chat-empty' }));
    this.$('chat-empty').hidden = false;
    this.showName();
  }

  showName() {
    this.$('chat-conversation-name').textContent = this.conversations.current
      ? `In “${this.conversations.currentTitle()}”` : 'A new conversation';
  }

  /** A saved conversation, reopened: its messages, each answer with its sources. */
  show(detail) {
    this.abort?.abort();
    const log = this.$('chat-log');
    log.replaceChildren(this.$('chat-empty'));
    this.$('chat-empty').hidden = detail.history.length > 0;
    this.messages = [];
    for (const m of detail.history) {
      if (m.role === 'user') {
        log.append(el('div', { class: 'msg user' }, m.content));
      } else {
        const body = el('div', { class: 'answer' });
        const bubble = el('div', { class: 'msg assistant' }, body);
        log.append(bubble);
        this.finish(bubble, body, m.content, m.sources || [], m.stopped, m.model);
      }
      if (m.content.trim()) this.messages.push({ role: m.role, content: m.content });
    }
    log.scrollTop = log.scrollHeight;
    this.showName();
    this.$('chat-input').focus();
  }

  /** Stops the answer being written: what came stays, marked stopped (and is saved so). */
  stop() {
    if (!this.abort) return;
    this.stopping = true;
    this.abort.abort();
  }

  async send() {
    const input = this.$('chat-input');
    const text = input.value.trim();
    if (!text || this.abort || this.configured === false) return;
    input.value = '';
    this.$('chat-empty').hidden = true;
    const log = this.$('chat-log');
    log.append(el('div', { class: 'msg user' }, text));
    this.messages.push({ role: 'user', content: text });
    const rag = this.$('rag-toggle').checked;
    const body = el('div', { class: 'answer typing' });
    const bubble = el('div', { class: 'msg assistant', 'aria-busy': 'true' }, body);
    log.append(bubble);
    log.scrollTop = log.scrollHeight;
    let answer = '';
    let sources = [];
    let failed = false;
    let model = null;
    const abort = new AbortController();
    this.abort = abort;
    this.stopping = false;
    this.renderConfig();
    let conversation = this.conversations.current;
    try {
      if (!conversation) {
        try {
          conversation = await this.conversations.create(text);
          this.showName();
        } catch (e) {
          conversation = null;
          this.conversations.say(`This conversation is not being saved: ${e.message}`);
        }
      }
      const mode = this.$('search-mode').value;
      const request = { messages: this.messages, rag, mode, top_k: this.topK() };
      const picked = this.chosenModel();
      if (picked) request.model = picked;
      if (this.picked.size) request.documents = [...this.picked.keys()];
      if (conversation) request.conversation = conversation;
      if (abort.signal.aborted) throw new DOMException('stopped', 'AbortError');
      await this.api.chat(request, (name, data) => {
        if (name === 'sources') sources = data.sources || [];
        else if (name === 'token') {
          answer += data.content;
          body.textContent = answer;
          log.scrollTop = log.scrollHeight;
        } else if (name === 'done') {
          model = data.model || null;
        } else if (name === 'error') {
          failed = true;
          bubble.append(el('p', { class: 'error' }, `The chat model failed: ${data.message}`));
        }
      }, abort.signal);
      if (abort.signal.aborted) throw new DOMException('stopped', 'AbortError');
      if (answer) this.messages.push({ role: 'assistant', content: answer });
      this.finish(bubble, body, answer, sources, failed, model);
      if (conversation) this.conversations.touched(conversation, 2);
    } catch (e) {
      if (e.name === 'AbortError' || abort.signal.aborted) {
        if (this.stopping && bubble.isConnected) {
          // Stopped by the user: the partial answer stays, marked, as the server saved it.
          if (answer) this.messages.push({ role: 'assistant', content: answer });
          this.finish(bubble, body, answer, sources, true, this.chosenModel() || this.model);
          if (conversation) this.conversations.touched(conversation, 2);
        }
      } else {
        bubble.classList.add('error');
        body.textContent = e.code === 'chat_unconfigured' ? 'No chat model is configured on this server.' : e.message;
        if (e.code === 'chat_unconfigured') { this.configured = false; this.hooks.onConfig(); }
        this.messages.pop();
      }
    } finally {
      body.classList.remove('typing');
      bubble.removeAttribute('aria-busy');
      if (this.abort === abort) this.abort = null;
      this.stopping = false;
      this.renderConfig();
      input.focus();
    }
  }

  /**
   * An answer as it ended (live or reopened alike): formatted, its sources, a copy button, a
   * note when it was stopped before its end, and which model gave it when that is worth saying
   * (the server offers several, or it is not the one answering now).
   */
  finish(bubble, body, answer, sources, stopped, model) {
    if (answer) this.format(body, answer, sources);
    else body.textContent = stopped ? '' : '(no answer)';
    if (stopped) {
      bubble.classList.add('stopped');
      bubble.dataset.stopped = 'true';
      bubble.append(el('p', { class: 'stopped-note small' }, 'Stopped: the answer ends here.'));
    }
    if (sources.length) bubble.append(this.sourceList(sources));
    if (answer) {
      const actions = this.copyButton(answer);
      if (model && ((this.models?.length ?? 0) > 1 || model !== this.model)) {
        actions.append(el('span', { class: 'answered-by muted small', title: 'The model that gave this answer' }, model));
      }
      bubble.append(actions);
    }
  }

  copyButton(text) {
    const status = el('span', { class: 'copy-status small', role: 'status' });
    const button = el('button', { type: 'button', class: 'link small copy', 'aria-label': 'Copy answer' }, 'Copy');
    button.addEventListener('click', async () => {
      status.textContent = (await copyText(text)) ? 'Copied.' : 'Cannot copy here: select the text instead.';
      setTimeout(() => { status.textContent = ''; }, 2500);
    });
    return el('div', { class: 'msg-actions' }, button, status);
  }

  /** A finished answer, formatted: its Markdown, and each `[n]` a button opening passage n. */
  format(body, answer, sources) {
    const byN = new Map(sources.map((s) => [s.n, s]));
    body.classList.add('formatted');
    body.replaceChildren(...renderMarkdown(answer, (n) => {
      const source = byN.get(n);
      if (!source) return null;
      const b = el('button', { type: 'button', class: 'cite', 'aria-label': `Passage ${n}: ${source.document}` }, `[${n}]`);
      b.addEventListener('click', () => this.open(source));
      return b;
    }));
  }

  sourceList(sources) {
    return el('ol', { class: 'sources', 'aria-label': 'Sources' }, sources.map((s) =>
      el('li', {}, this.passageButton(s, `[${s.n}] `, 'source'))));
  }

  passageButton(hit, prefix, cls) {
    const b = el('button', { type: 'button', class: cls },
      el('span', { class: 'where' }, prefix + where(hit),
        hit.score !== undefined ? el('span', { class: 'score', title: scoreTitle(hit) }, ` ${hit.score.toFixed(2)}`) : null),
      el('span', { class: 'snippet' }, snippet(hit.text)));
    b.addEventListener('click', () => this.open(hit));
    return b;
  }

  open(hit) {
    const d = this.$('passage');
    this.$('passage-title').textContent = hit.document;
    // The chunk's ordinal as the API and the CLI give it (from 0).
    this.$('passage-meta').textContent = [hit.page ? `page ${hit.page}` : null,
      (hit.heading_path || []).join(' › ') || null, `chunk ${hit.chunk}`,
      hit.score !== undefined ? `score ${hit.score.toFixed(3)}` : null].filter(Boolean).join(' · ');
    // Its Markdown formatted, as DOM nodes (never HTML); a [n] in it stays text.
    this.$('passage-text').replaceChildren(...renderMarkdown(hit.text, () => null));
    d.dataset.document = hit.document_id;
    d.dataset.name = hit.document;
    d.dataset.page = hit.page || '';
    this.$('passage-error').hidden = true;
    d.showModal();
  }

  async search() {
    const q = this.$('search-input').value.trim();
    if (!q) return;
    const status = this.$('search-status');
    const list = this.$('search-results');
    status.textContent = 'Searching…';
    const weaker = this.$('search-weaker');
    const toggle = this.$('search-weaker-toggle');
    try {
      const started = performance.now();
      const { results, mode } = await this.api.post('/v1/search', { query: q, top_k: 8, mode: this.$('search-mode').value });
      const ms = Math.round(performance.now() - started);
      const { kept, hidden } = relevant(results, mode);
      const item = (r, i) => el('li', {}, this.passageButton(r, `${i + 1}. `, 'result'));
      list.replaceChildren(...kept.map(item));
      weaker.replaceChildren(...hidden.map((r, i) => item(r, kept.length + i)));
      toggle.hidden = !hidden.length;
      toggle.title = `Far below the best: closeness in meaning under ${VECTOR_SHARE * 100} % of the best's ` +
        `(or a cosine under ${MIN_COSINE})` + (mode === 'hybrid' ? `, and words scoring under ${KEYWORD_SHARE * 100} % of the best's` : '');
      this.showWeaker(false);
      if (kept.length) status.textContent = `${kept.length} passage${kept.length === 1 ? '' : 's'} in ${ms} ms`;
      else if (hidden.length) status.textContent = `No passage is close to the question (${ms} ms).`;
      else status.textContent = this.rag.available ? 'Nothing found.' : 'Nothing is searchable yet: upload a document first.';
    } catch (e) {
      list.replaceChildren();
      weaker.replaceChildren();
      toggle.hidden = true;
      status.textContent = e.message;
    }
  }

  /** Shows or hides the results far below the best. */
  showWeaker(show) {
    const weaker = this.$('search-weaker');
    const toggle = this.$('search-weaker-toggle');
    const n = weaker.children.length;
    weaker.hidden = !show;
    toggle.setAttribute('aria-expanded', String(show));
    toggle.textContent = show
      ? `Hide the ${n} weaker result${n === 1 ? '' : 's'}`
      : `${n} weaker result${n === 1 ? '' : 's'} hidden — show`;
  }
}

// What counts as near the best of a search (see `relevant`): a chunk's meaning (cosine
// similarity with the question) at least VECTOR_SHARE of the best chunk's and at least
// MIN_COSINE, or, in hybrid search, its words (BM25) at least KEYWORD_SHARE of the best's.
// Hybrid's fused score cannot tell: reciprocal rank fusion gives the 8th of 30 unrelated chunks
// nearly the score of the 1st, and BM25 scores every chunk sharing a "how" or a "the".
export const MIN_COSINE = 0.2;
export const VECTOR_SHARE = 0.5;
export const KEYWORD_SHARE = 0.7;

/**
 * Splits search results into those near the best (`kept`) and those far below it (`hidden`),
 * each in the order given. Exact-words search keeps everything it found: every hit has the
 * words.
 */
export function relevant(results, mode) {
  if (mode === 'keyword') return { kept: results, hidden: [] };
  const best = (side) => Math.max(0, ...results.map((r) => r.scores?.[side] ?? 0));
  const bestVector = best('vector');
  const bestKeyword = best('keyword');
  const near = (r) => {
    const v = r.scores?.vector;
    const k = r.scores?.keyword;
    if (v !== undefined && v >= MIN_COSINE && v >= VECTOR_SHARE * bestVector) return true;
    return mode === 'hybrid' && k !== undefined && k > 0 && k >= KEYWORD_SHARE * bestKeyword;
  };
  const kept = [], hidden = [];
  for (const r of results) (near(r) ? kept : hidden).push(r);
  return { kept, hidden };
}

/** What each retriever made of a hit, for the score's tooltip. */
function scoreTitle(hit) {
  const s = hit.scores || {};
  return [s.vector !== undefined ? `meaning ${s.vector.toFixed(3)}` : null,
    s.keyword !== undefined ? `words (BM25) ${s.keyword.toFixed(2)}` : null,
    s.rerank !== undefined ? `reranker ${s.rerank.toFixed(3)}` : null].filter(Boolean).join(' · ') || 'score';
}

/** Puts `text` on the clipboard; whether it worked. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard API (or no permission): the old way, through a selected text area.
    const area = el('textarea', { value: text, readOnly: true, class: 'sr-only' });
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    area.remove();
    return ok;
  }
}
