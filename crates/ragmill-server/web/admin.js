// The administration page (administrators only; the API answers others 403 `admin_only`):
// every user with their usage, create a user (their first key shown once), a new key, revoke
// all of a user's keys, make or unmake an administrator, and the service's settings read-only.

import { copyText } from './chat.js';
import { bytes, el, number } from './util.js';

/** "max_upload_bytes" -> "Max upload bytes". */
function label(key) {
  const s = String(key).replace(/_/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** A settings value as a definition list (objects), a list (arrays) or text; sizes in bytes readable. */
export function describe(value, key = '') {
  if (typeof value === 'number' && /bytes$/.test(key) && value >= 1024) {
    return document.createTextNode(`${bytes(value)} (${number(value)} bytes)`);
  }
  if (value === null || value === undefined) return el('span', { class: 'muted' }, 'none');
  if (Array.isArray(value)) {
    if (!value.length) return el('span', { class: 'muted' }, 'none');
    return el('ul', { class: 'settings-list' }, value.map((v) => el('li', {}, describe(v))));
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value);
    if (!entries.length) return el('span', { class: 'muted' }, 'none');
    return el('dl', { class: 'settings' }, entries.flatMap(([k, v]) => [el('dt', {}, label(k)), el('dd', {}, describe(v, k))]));
  }
  if (typeof value === 'boolean') return document.createTextNode(value ? 'yes' : 'no');
  if (typeof value === 'number') return document.createTextNode(Number.isInteger(value) ? number(value) : String(value));
  return document.createTextNode(String(value));
}

let current = null;
let wired = false;

export class Admin {
  /** @param {import('./api.js').Api} api */
  constructor(api) {
    this.api = api;
    this.me = null;
    this.users = [];
    this.$ = (id) => document.getElementById(id);
    // One session at a time (a new one after each sign-in): the page's controls are wired once
    // and act for the current one.
    current = this;
    if (wired) return;
    wired = true;
    this.$('user-create').addEventListener('submit', (e) => { e.preventDefault(); current.create(); });
    this.$('key-copy').addEventListener('click', async () => {
      this.$('key-copied').textContent = (await copyText(this.$('key-value').value))
        ? 'Copied to the clipboard.' : 'Cannot copy here: select the key and copy it.';
    });
    // The key leaves the page when the dialog closes.
    this.$('key-dialog').addEventListener('close', () => {
      this.$('key-value').value = '';
      this.$('key-copied').textContent = '';
    });
  }

  say(message, bad = false) {
    const s = this.$('admin-status');
    s.textContent = message || '';
    s.className = `small ${bad ? 'error' : 'ok-text'}`;
  }

  /** Shown: read the users and the settings again. */
  async show(me) {
    this.me = me;
    await Promise.all([this.load(), this.loadSettings()]);
  }

  async load() {
    try {
      const { users } = await this.api.get('/v1/admin/users');
      this.users = users;
      this.render();
    } catch (e) {
      this.say(e.code === 'admin_only' ? 'Only administrators can see this page.' : `Cannot list the users: ${e.message}`, true);
    }
  }

  async loadSettings() {
    try {
      const settings = await this.api.get('/v1/admin/settings');
      this.$('settings').replaceChildren(describe(settings));
    } catch (e) {
      this.$('settings').replaceChildren(el('p', { class: 'error small' }, e.message));
    }
  }

  render() {
    this.$('users').replaceChildren(...this.users.map((u) => this.row(u)));
  }

  row(u) {
    const you = this.me && u.name === this.me.user;
    const a = u.activity || {};
    const action = (text, cls, aria, fn) => {
      const b = el('button', { type: 'button', class: `small ${cls}`, 'aria-label': aria }, text);
      b.addEventListener('click', () => fn(b));
      return b;
    };
    return el('tr', { 'data-user': u.name },
      el('th', { scope: 'row' }, el('span', { class: 'user-name' }, u.name),
        u.admin ? el('span', { class: 'pill admin-pill' }, 'administrator') : null,
        you ? el('span', { class: 'muted small' }, ' (you)') : null,
        el('span', { class: 'muted small user-since' }, `since ${new Date(u.created_at).toLocaleDateString()}`)),
      // Each cell names its column too, for a phone's width, where rows become cards.
      el('td', { class: 'num', 'data-label': 'Documents' }, number(u.documents)),
      el('td', { class: 'num', 'data-label': 'Chunks' }, number(u.chunks)),
      el('td', { class: 'num', 'data-label': 'Size' }, bytes(u.bytes)),
      el('td', { class: 'num keys', 'data-label': 'Active keys' }, number(u.active_keys)),
      el('td', { class: 'small', 'data-label': 'Since start-up' }, `${number(a.documents_ready ?? 0)} ready, ${number(a.documents_failed ?? 0)} failed, ` +
        `${number(a.chunks_embedded ?? 0)} chunks embedded` + (a.workers_busy ? `, ${a.workers_busy} working now` : '')),
      el('td', {}, el('div', { class: 'user-actions' },
        action('New key', 'new-key', `New key for ${u.name}`, (b) => this.newKey(u, b)),
        action('Revoke keys', 'danger revoke', `Revoke every key of ${u.name}`, (b) => this.revoke(u, b)),
        action(u.admin ? 'Remove administrator' : 'Make administrator', 'toggle-admin',
          u.admin ? `Remove ${u.name} as administrator` : `Make ${u.name} an administrator`, (b) => this.setAdmin(u, !u.admin, b)))));
  }

  /** Shows a key once, in the dialog. */
  showKey(name, key) {
    this.$('key-title').textContent = `API key for ${name}`;
    this.$('key-value').value = key;
    this.$('key-copied').textContent = '';
    this.$('key-dialog').showModal();
    this.$('key-value').select();
  }

  async busy(button, fn) {
    if (button) button.disabled = true;
    try { await fn(); } finally { if (button) button.disabled = false; }
  }

  async create() {
    const name = this.$('user-name').value.trim();
    if (!name) { this.say('Give the new user a name.', true); this.$('user-name').focus(); return; }
    const button = this.$('user-create').querySelector('button[type=submit]');
    await this.busy(button, async () => {
      try {
        const { user, api_key } = await this.api.post('/v1/admin/users', { name, admin: this.$('user-admin').checked });
        this.$('user-name').value = '';
        this.$('user-admin').checked = false;
        await this.load();
        this.say(`Created ${user.name}.`);
        this.showKey(user.name, api_key);
      } catch (e) {
        this.say(`Cannot create ${name}: ${e.message}`, true);
      }
    });
  }

  async newKey(u, button) {
    await this.busy(button, async () => {
      try {
        const { api_key } = await this.api.post(`/v1/admin/users/${u.id}/keys`);
        await this.load();
        this.say(`A new key for ${u.name}; their other keys still work.`);
        this.showKey(u.name, api_key);
      } catch (e) {
        this.say(`Cannot make a key for ${u.name}: ${e.message}`, true);
      }
    });
  }

  async revoke(u, button) {
    const self = this.me && u.name === this.me.user;
    if (!confirm(`Revoke every API key of ${u.name}? Anyone using them is signed out at once.` +
      (self ? ' That includes the key you are signed in with.' : ''))) return;
    await this.busy(button, async () => {
      try {
        const { revoked } = await this.api.post(`/v1/admin/users/${u.id}/revoke`);
        await this.load();
        this.say(`Revoked ${revoked} key${revoked === 1 ? '' : 's'} of ${u.name}.`);
      } catch (e) {
        this.say(`Cannot revoke ${u.name}'s keys: ${e.message}`, true);
      }
    });
  }

  async setAdmin(u, admin, button) {
    await this.busy(button, async () => {
      try {
        await this.api.request('PATCH', `/v1/admin/users/${u.id}`, { admin });
        if (!admin && this.me && u.name === this.me.user) { this.onSelfDemoted?.(); return; }
        await this.load();
        this.say(admin ? `${u.name} is an administrator now.` : `${u.name} is no longer an administrator.`);
      } catch (e) {
        if (e.code === 'last_admin') {
          this.say(`${u.name} is the only administrator, so stays one: make someone else an administrator first.`, true);
        } else {
          this.say(`Cannot change ${u.name}: ${e.message}`, true);
        }
      }
    });
  }
}
