// The chat and search page: the RAG toggle, answers streamed token by token with their cited
// passages, and plain search (no chat model needed; without one the page is search only).
// Passages open in a dialog.

import { renderMarkdown } from './markdown.js';
import { el, snippet, where } from './util.js';

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
    this.wire();
  }

  wire() {
    const toggle = this.$('rag-toggle');
    toggle.addEventListener('change', () => { this.touched = true; });
    this.$('chat-form').addEventListener('submit', (e) => { e.preventDefault(); this.send(); });
    this.$('chat-input').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.send(); }
    });
    this.$('chat-clear').addEventListener('click', () => this.clear());
    this.$('search-form').addEventListener('submit', (e) => { e.preventDefault(); this.search(); });
    this.$('search-weaker-toggle').addEventListener('click', () => this.showWeaker(this.$('search-weaker').hidden));
    // How passages are found (search and RAG chat alike), remembered on this browser.
    const mode = this.$('search-mode');
    const saved = localStorage.getItem('ragmill.searchMode');
    if (saved && [...mode.options].some((o) => o.value === saved)) mode.value = saved;
    mode.addEventListener('change', () => {
      localStorage.setItem('ragmill.searchMode', mode.value);
      if (this.$('search-input').value.trim()) this.search();
    });
    this.$('passage-open').addEventListener('click', async () => {
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
    this.$('passage-doc').addEventListener('click', () => {
      const id = Number(this.$('passage').dataset.document);
      this.$('passage').close();
      this.hooks.showDocument(id);
    });
  }

  /** Asks the server whether a chat model is configured. */
  async loadConfig() {
    try {
      const c = await this.api.get('/v1/chat');
      this.configured = !!c.configured;
      this.model = c.model;
    } catch {
      // Not known: the chat stays, and says so if a message is refused.
    }
    this.renderConfig();
    this.hooks.onConfig();
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
    if (this.configured && this.model) this.$('chat-input').placeholder = `Ask ${this.model}…`;
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

  clear() {
    this.abort?.abort();
    this.messages = [];
    const log = this.$('chat-log');
    log.replaceChildren(this.$('chat-empty') || el('p', { class: 'empty', id: 'chat-empty' }));
    this.$('chat-empty').hidden = false;
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
    this.abort = new AbortController();
    this.renderConfig();
    try {
      const mode = this.$('search-mode').value;
      await this.api.chat({ messages: this.messages, rag, mode }, (name, data) => {
        if (name === 'sources') sources = data.sources || [];
        else if (name === 'token') {
          answer += data.content;
          body.textContent = answer;
          log.scrollTop = log.scrollHeight;
        } else if (name === 'error') {
          bubble.append(el('p', { class: 'error' }, `The chat model failed: ${data.message}`));
        }
      }, this.abort.signal);
      if (answer) {
        this.messages.push({ role: 'assistant', content: answer });
        this.format(body, answer, sources);
      }
      if (sources.length) bubble.append(this.sourceList(sources));
    } catch (e) {
      bubble.classList.add('error');
      body.textContent = e.code === 'chat_unconfigured' ? 'No chat model is configured on this server.' : e.message;
      if (e.code === 'chat_unconfigured') { this.configured = false; this.hooks.onConfig(); }
      this.messages.pop();
    } finally {
      body.classList.remove('typing');
      bubble.removeAttribute('aria-busy');
      this.abort = null;
      this.renderConfig();
      input.focus();
    }
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
