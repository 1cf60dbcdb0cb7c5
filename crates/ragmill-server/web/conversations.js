// The list of saved conversations beside the chat: pick one to continue it, rename it in place,
// delete it (after a confirmation). Kept on the server per user (`/v1/conversations`), so they
// are there after a reload and in any other browser signed in with the same user.

import { el } from './util.js';

/** "today 14:05", or the date when older. */
function when(ms) {
  const d = new Date(ms);
  const today = new Date();
  return d.toDateString() === today.toDateString()
    ? `today ${d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })}`
    : d.toLocaleDateString();
}

let latest = null;
let wired = false;

export class Conversations {
  /**
   * @param {import('./api.js').Api} api
   * @param {{ onOpen: (detail: object) => void, onNew: () => void }} hooks
   *   `onOpen` with a conversation and its history; `onNew` when the one shown is gone
   */
  constructor(api, hooks) {
    this.api = api;
    this.hooks = hooks;
    this.items = [];
    this.current = null;
    this.editing = null;
    this.$ = (id) => document.getElementById(id);
    // Wired once for the page; acts for the latest list (a new one after each sign-in).
    latest = this;
    if (!wired) {
      wired = true;
      this.$('conversation-new').addEventListener('click', () => { latest.current = null; latest.render(); latest.hooks.onNew(); });
    }
  }

  title(c) {
    return c.title || 'Untitled conversation';
  }

  say(message) {
    this.$('conversations-status').textContent = message || '';
  }

  async load() {
    try {
      const { conversations } = await this.api.get('/v1/conversations');
      this.items = conversations;
      this.say('');
    } catch (e) {
      this.say(`Cannot list your conversations: ${e.message}`);
    }
    this.render();
  }

  /** A new conversation named after its first question; its id. */
  async create(question) {
    const title = question.replace(/\s+/g, ' ').trim().slice(0, 80);
    const c = await this.api.post('/v1/conversations', { title });
    this.items.unshift(c);
    this.current = c.id;
    this.render();
    return c.id;
  }

  /** A turn was saved into the current conversation: it moves to the top. */
  touched(id, messages) {
    const c = this.items.find((x) => x.id === id);
    if (!c) return;
    c.messages += messages;
    c.updated_at = Date.now();
    this.items = [c, ...this.items.filter((x) => x !== c)];
    this.render();
  }

  async open(id) {
    try {
      const detail = await this.api.get(`/v1/conversations/${id}`);
      this.current = id;
      this.say('');
      this.render();
      this.hooks.onOpen(detail);
    } catch (e) {
      this.say(e.status === 404 ? 'That conversation is gone.' : `Cannot open it: ${e.message}`);
      if (e.status === 404) await this.load();
    }
  }

  currentTitle() {
    const c = this.items.find((x) => x.id === this.current);
    return c ? this.title(c) : '';
  }

  render() {
    const list = this.$('conversation-list');
    this.$('conversations-empty').hidden = this.items.length > 0;
    list.replaceChildren(...this.items.map((c) => this.item(c)));
  }

  item(c) {
    const title = this.title(c);
    const li = el('li', { class: 'conversation', 'data-id': String(c.id) });
    if (this.editing === c.id) {
      const input = el('input', { type: 'text', value: title, maxLength: 200, id: `conversation-title-${c.id}`, class: 'conv-title-input' });
      const form = el('form', { class: 'conv-rename-form' },
        el('label', { for: input.id, class: 'sr-only' }, 'New title'), input,
        el('span', { class: 'conv-actions' },
          el('button', { type: 'submit', class: 'small primary' }, 'Save'),
          el('button', { type: 'button', class: 'small conv-cancel' }, 'Cancel')));
      form.addEventListener('submit', (e) => { e.preventDefault(); this.rename(c.id, input.value); });
      form.querySelector('.conv-cancel').addEventListener('click', () => this.stopEditing(c.id));
      input.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.preventDefault(); this.stopEditing(c.id); } });
      li.append(form);
      queueMicrotask(() => { input.focus(); input.select(); });
      return li;
    }
    const open = el('button', { type: 'button', class: 'conv-open', 'aria-current': this.current === c.id ? 'true' : null },
      el('span', { class: 'conv-title' }, title),
      el('span', { class: 'conv-meta' }, `${c.messages} message${c.messages === 1 ? '' : 's'} · ${when(c.updated_at)}`));
    open.addEventListener('click', () => this.open(c.id));
    const rename = el('button', { type: 'button', class: 'link small conv-rename', 'aria-label': `Rename “${title}”` }, 'Rename');
    rename.addEventListener('click', () => { this.editing = c.id; this.render(); });
    const del = el('button', { type: 'button', class: 'link small danger conv-delete', 'aria-label': `Delete “${title}”` }, 'Delete');
    del.addEventListener('click', () => this.remove(c.id));
    li.append(open, el('span', { class: 'conv-actions' }, rename, del));
    return li;
  }

  stopEditing(id) {
    this.editing = null;
    this.render();
    this.$('conversation-list').querySelector(`li[data-id="${id}"] .conv-rename`)?.focus();
  }

  async rename(id, title) {
    if (!title.trim()) { this.say('A title cannot be empty.'); return; }
    try {
      const c = await this.api.request('PATCH', `/v1/conversations/${id}`, { title });
      this.items = this.items.map((x) => (x.id === id ? c : x));
      this.say('');
      this.stopEditing(id);
      this.hooks.onRenamed?.(id);
    } catch (e) {
      this.say(`Cannot rename it: ${e.message}`);
    }
  }

  async remove(id) {
    const c = this.items.find((x) => x.id === id);
    if (!c || !confirm(`Delete the conversation “${this.title(c)}” and its messages? This cannot be undone.`)) return;
    try {
      await this.api.delete(`/v1/conversations/${id}`);
    } catch (e) {
      if (e.status !== 404) { this.say(`Cannot delete it: ${e.message}`); return; }
    }
    this.items = this.items.filter((x) => x.id !== id);
    this.say('');
    if (this.current === id) { this.current = null; this.hooks.onNew(); }
    this.render();
    this.$('conversation-new').focus();
  }
}
