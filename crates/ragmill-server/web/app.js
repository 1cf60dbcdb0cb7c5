// ragmill's web UI: sign-in, then three pages (documents, chat and search, dashboard) fed by
// the HTTP API and the live event stream. Plain ES modules, no build step, nothing loaded
// from outside this origin.

import { Admin } from './admin.js';
import { Api } from './api.js';
import { Chat } from './chat.js';
import { Dashboard } from './dashboard.js';
import { Documents } from './documents.js';
import { LiveEvents } from './live.js';

const KEY = 'ragmill.key';
const PAGES = ['documents', 'chat', 'dashboard', 'admin'];
const $ = (id) => document.getElementById(id);

let session = null;

function showSignIn(message) {
  $('app').hidden = true;
  $('signin').hidden = false;
  const err = $('signin-error');
  err.hidden = !message;
  err.textContent = message || '';
  $('signin-key').focus();
}

async function signIn(key) {
  const api = new Api(key);
  try {
    await api.get('/v1/me');
  } catch (e) {
    return e.status === 401 ? 'That key was not accepted. Check it, or ask for a new one.' : e.message;
  }
  sessionStorage.setItem(KEY, key);
  start(api);
  return null;
}

function signOut() {
  session?.stop();
  session = null;
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem('ragmill.dashboard');
  $('whoami').textContent = '';
  $('signin-key').value = '';
  showSignIn(null);
}

/** Everything that lives while signed in. */
class Session {
  constructor(api) {
    this.api = api;
    // The header and the chat both show the documents page's own counts, set together on
    // every change of its list (an event, a load, an upload, a delete); until the list is
    // loaded the header says "checking".
    this.documents = new Documents(api, {
      onChange: (status) => this.setRag(status), onError: (m) => alert(m),
    });
    this.chat = new Chat(api, {
      showDocument: (id) => this.showDocument(id),
      onConfig: () => { this.setRag(this.rag); route(); },
    });
    this.dashboard = new Dashboard(api);
    this.admin = new Admin(api);
    this.admin.onSelfDemoted = () => this.setMe({ ...this.me, admin: false });
    this.me = null;
    this.live = new LiveEvents(api, (m) => this.onMessage(m), (s) => this.onLiveState(s), () => signOut());
    this.rag = null;
  }

  start() {
    this.api.get('/v1/me').then((me) => this.setMe(me), () => {});
    this.live.start();
    this.documents.load().catch(() => {});
    this.chat.loadConfig();
    this.dashboard.start();
  }

  stop() {
    this.live.stop();
    this.dashboard.stop();
  }

  /** Who is signed in: the administration page is there for administrators only. */
  setMe(me) {
    this.me = me;
    $('whoami').textContent = me.admin ? `${me.user} (administrator)` : me.user;
    document.querySelector('nav a[data-page="admin"]').hidden = !me.admin;
    route();
  }

  onMessage(m) {
    this.documents.onMessage(m);
  }

  onLiveState(state) {
    const pill = $('live-pill');
    pill.textContent = { live: 'live', connecting: 'connecting…', offline: 'reconnecting…' }[state];
    pill.className = `pill ${state === 'live' ? 'ok' : 'warn'}`;
    pill.title = state === 'live' ? 'Progress arrives as it happens' : 'Live updates paused; reconnecting';
  }

  setRag(status) {
    if (!status) return;
    this.rag = status;
    this.chat.setRag(status);
    const pill = $('rag-pill');
    // Without a chat model there is no RAG to speak of, only search.
    const what = this.chat.configured === false ? 'Search' : 'RAG';
    pill.textContent = status.available
      ? `${what} on · ${status.documents_ready} ready`
      : status.documents_processing ? `${what}: waiting for the first document` : `${what}: no documents yet`;
    pill.className = `pill ${status.available ? 'ok' : 'warn'}`;
  }

  showDocument(id) {
    location.hash = '#/documents';
    const row = document.querySelector(`#documents li[data-id="${id}"]`);
    if (row) {
      row.scrollIntoView({ block: 'center' });
      this.documents.flash(id);
    }
  }
}

function start(api) {
  session?.stop();
  session = new Session(api);
  $('signin').hidden = true;
  $('app').hidden = false;
  session.start();
  route();
}

function route() {
  const page = (location.hash.match(/^#\/(\w+)/) || [])[1];
  // The administration page only once /v1/me said so (the API refuses others anyway).
  const allowed = (p) => PAGES.includes(p) && (p !== 'admin' || !!session?.me?.admin);
  const current = allowed(page) ? page : 'documents';
  for (const p of PAGES) {
    $(`page-${p}`).hidden = p !== current;
    const link = document.querySelector(`nav a[data-page="${p}"]`);
    if (p === current) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
  }
  session?.dashboard.show(current === 'dashboard');
  if (current === 'admin' && session?.shown !== 'admin') session.admin.show(session.me);
  if (session) session.shown = current;
  document.title = `${document.querySelector(`nav a[data-page="${current}"]`).textContent} · ragmill`;
}

window.addEventListener('hashchange', () => { route(); $('main').focus({ preventScroll: true }); });
$('signout').addEventListener('click', signOut);
$('signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const key = $('signin-key').value.trim();
  if (!key) return showSignIn('Enter your API key.');
  const button = e.submitter;
  if (button) button.disabled = true;
  const error = await signIn(key);
  if (button) button.disabled = false;
  if (error) showSignIn(error);
});

const saved = sessionStorage.getItem(KEY);
if (saved) start(new Api(saved)); else showSignIn(null);
