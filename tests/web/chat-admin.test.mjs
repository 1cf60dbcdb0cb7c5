// Saved conversations and the administration page, end to end: headless Chromium against a real
// `ragmill serve` and a stand-in Ollama chat server whose answers come word by word at a pace
// the test sets (slow enough to stop one midway). Screenshots land in tests/web/artifacts/.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { artifacts, launch, openPage, root, shot, startServer } from './harness.mjs';

let chrome;
before(async () => { chrome = await launch(); });
after(async () => { await chrome?.close(); });

const axe = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** axe's WCAG 2 A/AA checks of the page as it is (its context bypasses the CSP for the script). */
async function audit(page, name) {
  await page.addScriptTag({ content: axe });
  const result = await page.evaluate(() => window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa'] }));
  const bad = result.violations.map((v) => `${v.impact} ${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  assert.deepEqual(bad, [], `${name}: accessibility violations`);
}

/**
 * A stand-in Ollama chat server (`POST /api/chat`, one JSON line per word) whose answer names the
 * question, adds `filler` words and cites each numbered passage of the system prompt; each word
 * after `state.delay` ms. Every request is kept.
 */
async function startChat() {
  const state = { delay: 5, filler: 6, requests: [], models: null };
  const server = createServer((req, res) => {
    // Ollama's model list, when the test gives one (otherwise a 404, as from an old server).
    if (req.method === 'GET' && req.url === '/api/tags' && state.models) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify({ models: state.models.map((name) => ({ name, model: name, size: 1 })) }));
    }
    if (req.method !== 'POST' || req.url !== '/api/chat') {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      return res.end('{"error":"not found"}');
    }
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', async () => {
      const request = JSON.parse(body);
      state.requests.push(request);
      const system = request.messages.filter((m) => m.role === 'system').map((m) => m.content).join('\n');
      const cited = [...system.matchAll(/^\[(\d+)\]/gm)].map((m) => `[${m[1]}]`);
      const question = request.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '';
      const filler = Array.from({ length: state.filler }, (_, i) => `word${i + 1}`);
      const words = ['Stand-in', 'answer', 'to:', ...question.split(' '), ...filler, 'Sources:', ...(cited.length ? cited : ['none'])];
      let closed = false;
      res.on('close', () => { closed = true; });
      res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
      for (const [i, w] of words.entries()) {
        if (closed) return;
        res.write(JSON.stringify({ model: request.model, created_at: new Date().toISOString(),
          message: { role: 'assistant', content: i + 1 < words.length ? `${w} ` : w }, done: false }) + '\n');
        await new Promise((ok) => setTimeout(ok, state.delay));
      }
      res.end(JSON.stringify({ model: request.model, created_at: new Date().toISOString(),
        message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop' }) + '\n');
    });
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    state,
    stop: () => new Promise((ok) => { server.closeAllConnections?.(); server.close(ok); }),
  };
}

function sample(name, type) {
  return { name, type, bytes: readFileSync(join(root, 'samples', name)) };
}

async function signIn(page, key) {
  await page.fill('#signin-key', key);
  await page.press('#signin-key', 'Enter');
  await page.waitForSelector('#app:not([hidden])');
}

/** The API as `key` sees it, from the page (same origin): `{status, body}`. */
async function call(page, key, method, path, body) {
  return page.evaluate(async ([k, m, p, b]) => {
    const r = await fetch(p, { method: m, headers: { Authorization: `Bearer ${k}`, 'Content-Type': 'application/json' },
      body: b === undefined ? undefined : JSON.stringify(b) });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  }, [key, method, path, body]);
}

/**
 * Uploads `files` ({name, type, bytes}) as `key` through the API and waits until every one is
 * ready (the documents page itself is tested elsewhere).
 */
async function upload(page, key, files) {
  const payload = files.map((f) => ({ name: f.name, type: f.type, b64: Buffer.from(f.bytes).toString('base64') }));
  const ids = await page.evaluate(async ([k, items]) => {
    const out = [];
    for (const f of items) {
      const form = new FormData();
      form.append('file', new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name, { type: f.type }), f.name);
      const r = await fetch('/v1/documents', { method: 'POST', headers: { Authorization: `Bearer ${k}` }, body: form });
      out.push((await r.json()).documents[0].id);
    }
    return out;
  }, [key, payload]);
  await until(async () => {
    const { body } = await call(page, key, 'GET', '/v1/documents');
    return ids.every((id) => body.documents.find((d) => d.id === id)?.state === 'ready');
  }, 'the uploads ready', 120000);
  return ids;
}

/** Polls `fn` (in node) until it returns something truthy. */
async function until(fn, what, timeout = 10000) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
}

const answers = (page) => page.$$eval('#chat-log .msg.assistant', (bs) => bs.map((b) => ({
  text: b.querySelector('.answer').textContent,
  sources: [...b.querySelectorAll('.sources .where')].map((w) => w.firstChild.textContent),
  stopped: b.dataset.stopped === 'true',
  busy: b.hasAttribute('aria-busy'),
})));

async function ask(page, question, count) {
  await page.fill('#chat-input', question);
  await page.press('#chat-input', 'Enter');
  await page.waitForFunction((n) => {
    const done = [...document.querySelectorAll('#chat-log .msg.assistant')].filter((b) => !b.hasAttribute('aria-busy'));
    return done.length === n && done.at(-1).querySelector('.msg-actions');
  }, count, { timeout: 30000 });
}

test('conversations are kept: saved turns with sources, reopened after a reload, stop, copy, retrieval settings, rename, delete', async () => {
  const chat = await startChat();
  const server = await startServer(['--chat-backend', 'ollama', '--chat-endpoint', chat.url, '--chat-model', 'standin-llm']);
  const { page, context, requests, errors } = await openPage(chrome.browser, server.origin, undefined,
    { bypassCSP: true, permissions: ['clipboard-read', 'clipboard-write'] });
  page.on('dialog', (d) => d.accept()); // the delete confirmation
  try {
    await signIn(page, server.key);
    await upload(page, server.key, [sample('sourdough-starter.md', 'text/markdown'), sample('what-causes-tides.html', 'text/html')]);

    await page.click('nav a[data-page=chat]');
    await page.waitForSelector('#chat-model:not([hidden])');
    assert.equal(await page.textContent('#chat-model'), 'Model: standin-llm (ollama)', 'the one model, shown read-only');
    assert.ok(await page.isHidden('#chat-model-row'), 'no model picker for one model');
    assert.ok(await page.isVisible('#conversations-empty'));
    await page.waitForFunction(() => !document.getElementById('rag-toggle').disabled && document.getElementById('rag-toggle').checked);

    // Two turns: one conversation, named after its first question, both turns saved with sources.
    await ask(page, 'What causes spring tides?', 1);
    await ask(page, 'How do I feed a sourdough starter?', 2);
    const live = await answers(page);
    assert.ok(live.every((a) => a.sources.length > 0 && !a.stopped), JSON.stringify(live));
    assert.match(live[0].text, /^Stand-in answer to: What causes spring tides\?/);
    const items = await page.$$eval('#conversation-list li', (lis) => lis.map((li) => ({ id: Number(li.dataset.id), title: li.querySelector('.conv-title').textContent })));
    assert.equal(items.length, 1);
    assert.equal(items[0].title, 'What causes spring tides?');
    const id = items[0].id;
    const saved = await until(async () => {
      const r = await call(page, server.key, 'GET', `/v1/conversations/${id}`);
      return r.body.history.length === 4 ? r.body : null;
    }, 'both turns saved');
    assert.deepEqual(saved.history.map((m) => m.role), ['user', 'assistant', 'user', 'assistant']);
    assert.equal(saved.history[3].content, live[1].text);
    assert.ok(saved.history[1].sources.length > 0, 'the answer\'s sources are kept with it');
    assert.ok(chat.state.requests.at(-1).messages.some((m) => m.content === live[0].text), 'the second turn carries the first');

    // Reload: the list is there; reopening shows the history as it was, sources and all.
    await page.reload();
    await page.waitForSelector('#app:not([hidden])');
    await page.click('nav a[data-page=chat]');
    await page.waitForSelector('#conversation-list li .conv-open');
    assert.equal(await page.$$eval('#chat-log .msg', (m) => m.length), 0, 'a new conversation after a reload');
    await page.click('#conversation-list li .conv-open');
    await page.waitForFunction(() => document.querySelectorAll('#chat-log .msg.assistant').length === 2);
    assert.deepEqual(await answers(page), live, 'reopened as it was shown live');
    assert.equal(await page.getAttribute('#conversation-list li .conv-open', 'aria-current'), 'true');
    await page.click('#chat-log .msg.assistant >> nth=0 >> .sources li:first-child button');
    await page.waitForSelector('#passage[open]');
    assert.match(await page.textContent('#passage-title'), /what-causes-tides\.html/);
    await page.keyboard.press('Escape');

    // Copy: the answer's text on the clipboard.
    const copy = page.locator('#chat-log .msg.assistant >> nth=1 >> button.copy');
    assert.equal(await copy.getAttribute('aria-label'), 'Copy answer');
    await copy.click();
    await page.waitForFunction(() => /Copied/.test(document.querySelectorAll('#chat-log .copy-status')[1].textContent));
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), live[1].text);

    // Retrieval settings: fewer passages, only one document, the mode shared with search.
    await page.click('#retrieval summary');
    await page.fill('#chat-top-k', '2');
    await page.press('#chat-top-k', 'Tab');
    await page.selectOption('#chat-mode', 'vector');
    assert.equal(await page.inputValue('#search-mode'), 'vector', 'one mode for search and chat');
    await page.waitForSelector('#doc-picker-list input');
    assert.deepEqual(await page.$$eval('#doc-picker-list label', (ls) => ls.map((l) => l.textContent)),
      ['sourdough-starter.md', 'what-causes-tides.html']);
    await page.fill('#doc-picker-filter', 'tides');
    await page.waitForFunction(() => document.querySelectorAll('#doc-picker-list input').length === 1);
    await page.check('#doc-picker-list input');
    assert.match(await page.textContent('#retrieval-summary'), /^2 passages · meaning · 1 document only$/);
    await shot(page, '30-conversations');
    await audit(page, 'chat with a conversation and the retrieval settings');
    const [sent] = await Promise.all([
      page.waitForRequest((r) => r.url().endsWith('/v1/chat') && r.method() === 'POST'),
      ask(page, 'Why are there two tides a day?', 3),
    ]);
    const body = sent.postDataJSON();
    assert.equal(body.top_k, 2);
    assert.equal(body.mode, 'vector');
    assert.equal(body.conversation, id);
    assert.equal(body.documents.length, 1);
    const third = (await answers(page))[2];
    assert.ok(third.sources.length >= 1 && third.sources.length <= 2, JSON.stringify(third));
    assert.ok(third.sources.every((s) => /what-causes-tides\.html/.test(s)), JSON.stringify(third));
    await page.click('#doc-picker-clear');
    await page.selectOption('#chat-mode', 'hybrid');

    // Stop mid-answer: what came stays, marked stopped, and is saved so.
    chat.state.delay = 250;
    chat.state.filler = 60;
    await page.fill('#chat-input', 'Tell me everything about tides');
    await page.press('#chat-input', 'Enter');
    await page.waitForSelector('#chat-stop:not([hidden])');
    await page.waitForFunction(() => (document.querySelectorAll('#chat-log .msg.assistant')[3]?.querySelector('.answer').textContent || '').includes('word2'));
    await page.click('#chat-stop');
    await page.waitForSelector('#chat-log .msg.assistant.stopped');
    const stopped = (await answers(page))[3];
    assert.ok(stopped.stopped && !stopped.busy);
    assert.match(stopped.text, /^Stand-in answer to: Tell me everything about tides/);
    assert.doesNotMatch(stopped.text, /Sources:|word60/, 'cut short');
    assert.match(await page.textContent('#chat-log .msg.assistant.stopped .stopped-note'), /Stopped/);
    assert.ok(await page.isHidden('#chat-stop'));
    assert.equal(await page.isDisabled('#chat-send'), false);
    const kept = await until(async () => {
      const r = await call(page, server.key, 'GET', `/v1/conversations/${id}`);
      return r.body.history.length === 8 ? r.body.history[7] : null;
    }, 'the stopped turn saved');
    assert.equal(kept.stopped, true);
    assert.ok(kept.content.startsWith(stopped.text.trim().split(' ').slice(0, -1).join(' ')), `${kept.content} / ${stopped.text}`);
    assert.doesNotMatch(kept.content, /Sources:/);
    chat.state.delay = 5;
    chat.state.filler = 6;
    // Reopened, it is still marked stopped.
    await page.click('#conversation-new');
    assert.equal(await page.$$eval('#chat-log .msg', (m) => m.length), 0);
    await page.click('#conversation-list li .conv-open');
    await page.waitForFunction(() => document.querySelectorAll('#chat-log .msg.assistant').length === 4);
    assert.deepEqual((await answers(page)).map((a) => a.stopped), [false, false, false, true]);

    // Rename in place (Escape cancels; Enter saves).
    await page.click('#conversation-list li .conv-rename');
    await page.fill('#conversation-list li input', 'Thrown away');
    await page.press('#conversation-list li input', 'Escape');
    assert.equal(await page.textContent('#conversation-list li .conv-title'), 'What causes spring tides?');
    await page.click('#conversation-list li .conv-rename');
    await page.fill('#conversation-list li input', 'Tides and sourdough');
    await page.press('#conversation-list li input', 'Enter');
    await page.waitForFunction(() => document.querySelector('#conversation-list li .conv-title')?.textContent === 'Tides and sourdough');
    assert.equal((await call(page, server.key, 'GET', '/v1/conversations')).body.conversations[0].title, 'Tides and sourdough');

    // A phone's width: everything reachable, nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.evaluate(() => window.scrollTo(0, 0));
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no sideways scrolling');
    await shot(page, '34-chat-phone');
    await page.setViewportSize({ width: 1280, height: 900 });

    // Delete (after the confirmation): gone from the list and from the server.
    await page.click('#conversation-list li .conv-delete');
    await page.waitForFunction(() => document.querySelectorAll('#conversation-list li').length === 0);
    assert.equal(await page.$$eval('#chat-log .msg', (m) => m.length), 0, 'the deleted conversation is no longer shown');
    assert.equal((await call(page, server.key, 'GET', `/v1/conversations/${id}`)).status, 404);

    const foreign = requests.filter((u) => !u.startsWith(server.origin) && !u.startsWith(server.origin.replace('http', 'ws')));
    assert.deepEqual(foreign, []);
    assert.deepEqual(errors, [], 'no script errors');
  } finally {
    await context.close();
    await server.stop();
    await chat.stop();
  }
});

test('a model picker when the chat server offers several: the pick answers, and is remembered', async () => {
  const chat = await startChat();
  chat.state.models = ['standin-llm', 'standin-large', 'nomic-embed-text'];
  const server = await startServer(['--chat-backend', 'ollama', '--chat-endpoint', chat.url, '--chat-model', 'standin-llm']);
  const { page, context, errors } = await openPage(chrome.browser, server.origin, undefined, { bypassCSP: true });
  try {
    await signIn(page, server.key);
    await page.click('nav a[data-page=chat]');
    await page.waitForSelector('#chat-model-row:not([hidden])');
    assert.ok(await page.isHidden('#chat-model'), 'the picker, not the read-only line');
    const options = await page.$$eval('#chat-model-pick option', (o) => o.map((x) => [x.value, x.textContent]));
    assert.deepEqual(options, [['standin-llm', 'standin-llm (default)'], ['standin-large', 'standin-large']],
      'the default first; the embedding model left out');
    await page.selectOption('#chat-model-pick', 'standin-large');
    assert.equal(await page.getAttribute('#chat-input', 'placeholder'), 'Ask standin-large…');
    await ask(page, 'Which model answers?', 1);
    assert.equal(chat.state.requests.at(-1).model, 'standin-large');
    await page.waitForSelector('#chat-log .msg.assistant .answered-by');
    assert.equal(await page.textContent('#chat-log .msg.assistant .answered-by'), 'standin-large');
    const conversation = Number(await page.getAttribute('#conversation-list li', 'data-id'));
    const saved = await until(async () => {
      const r = await call(page, server.key, 'GET', `/v1/conversations/${conversation}`);
      return r.body.history.length === 2 ? r.body : null;
    }, 'the turn saved');
    assert.equal(saved.history[1].model, 'standin-large', 'the answer keeps the model that gave it');
    await shot(page, '36-chat-model-picker');
    await audit(page, 'chat with a model picker');

    await page.reload();
    await page.waitForSelector('#app:not([hidden])');
    await page.click('nav a[data-page=chat]');
    await page.waitForSelector('#chat-model-row:not([hidden])');
    assert.equal(await page.inputValue('#chat-model-pick'), 'standin-large', 'remembered on this browser');
    await page.selectOption('#chat-model-pick', 'standin-llm');
    await ask(page, 'And now?', 1);
    assert.equal(chat.state.requests.at(-1).model, 'standin-llm', 'the default');
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await server.stop();
    await chat.stop();
  }
});

test('administration: only for administrators; users, keys shown once, revoke, make admin, settings', async () => {
  const server = await startServer();
  const { page, context, errors } = await openPage(chrome.browser, server.origin, undefined,
    { bypassCSP: true, permissions: ['clipboard-read', 'clipboard-write'] });
  page.on('dialog', (d) => d.accept()); // the revoke confirmation
  const other = await openPage(chrome.browser, server.origin);
  try {
    await signIn(page, server.key);
    await page.waitForSelector('nav a[data-page=admin]:not([hidden])');
    await page.click('nav a[data-page=admin]');
    await page.waitForSelector('#users tr[data-user=alice]');
    assert.match(await page.textContent('#users tr[data-user=alice]'), /administrator/);
    assert.equal(await page.textContent('#users tr[data-user=alice] td.keys'), '1');

    // The last administrator stays one, and the page says so in plain words.
    await page.click('#users tr[data-user=alice] button.toggle-admin');
    await page.waitForFunction(() => /only administrator/.test(document.getElementById('admin-status').textContent));
    assert.match(await page.textContent('#users tr[data-user=alice]'), /administrator/);

    // A new user: their key is shown once, with a copy button and the note.
    await page.fill('#user-name', 'bob');
    await page.click('#user-create button[type=submit]');
    await page.waitForSelector('#key-dialog[open]');
    const key = await page.inputValue('#key-value');
    assert.match(key, /^rmk_/);
    assert.match(await page.textContent('#key-once'), /only time this key is shown/);
    assert.match(await page.textContent('#key-title'), /bob/);
    await shot(page, '32-admin-key-once');
    await audit(page, 'the key dialog');
    await page.click('#key-copy');
    await page.waitForFunction(() => /Copied/.test(document.getElementById('key-copied').textContent));
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key);
    await page.click('#key-dialog button[value=close]');
    await page.waitForFunction(() => !document.getElementById('key-dialog').open && document.getElementById('key-value').value === '');
    await page.waitForSelector('#users tr[data-user=bob]');
    assert.equal(await page.textContent('#users tr[data-user=bob] td.keys'), '1');
    assert.equal(await page.$$eval('#users tr[data-user=bob] .admin-pill', (n) => n.length), 0, 'bob is no administrator');

    // The key works, in another browser: no administration there, and the API refuses it.
    await signIn(other.page, key);
    await other.page.waitForFunction(() => /bob/.test(document.getElementById('whoami').textContent));
    assert.equal(await other.page.isHidden('nav a[data-page=admin]'), true, 'no administration for bob');
    await other.page.evaluate(() => { location.hash = '#/admin'; });
    await other.page.waitForSelector('#page-documents:not([hidden])');
    assert.equal(await other.page.isHidden('#page-admin'), true);
    const refused = await call(other.page, key, 'GET', '/v1/admin/users');
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'admin_only');
    assert.equal((await call(other.page, key, 'GET', '/v1/admin/settings')).status, 403);

    // Bob uploads something: his usage shows.
    await upload(other.page, key, [sample('sourdough-starter.md', 'text/markdown')]);
    await page.click('nav a[data-page=documents]');
    await page.click('nav a[data-page=admin]');
    await page.waitForFunction(() => document.querySelector('#users tr[data-user=bob] td.num')?.textContent === '1');
    assert.match(await page.textContent('#users tr[data-user=bob]'), /1 ready/);
    await shot(page, '31-admin-users');

    // Revoke (after the confirmation): the key stops working.
    await page.click('#users tr[data-user=bob] button.revoke');
    await page.waitForFunction(() => /Revoked 1 key of bob/.test(document.getElementById('admin-status').textContent));
    assert.equal(await page.textContent('#users tr[data-user=bob] td.keys'), '0');
    assert.equal((await call(other.page, key, 'GET', '/v1/me')).status, 401);

    // A new key for bob works; making him an administrator lets alice step down.
    await page.click('#users tr[data-user=bob] button.new-key');
    await page.waitForSelector('#key-dialog[open]');
    const second = await page.inputValue('#key-value');
    assert.notEqual(second, key);
    await page.click('#key-dialog button[value=close]');
    assert.equal((await call(other.page, second, 'GET', '/v1/me')).body.user, 'bob');
    await page.click('#users tr[data-user=bob] button.toggle-admin');
    await page.waitForFunction(() => /bob is an administrator now/.test(document.getElementById('admin-status').textContent));
    await page.waitForSelector('#users tr[data-user=bob] .admin-pill');
    assert.equal((await call(other.page, second, 'GET', '/v1/admin/users')).status, 200);

    // The service's settings, read-only, as a readable list.
    const dts = await page.$$eval('#settings > dl.settings > dt', (d) => d.map((x) => x.textContent));
    for (const k of ['Model', 'Vectors', 'Search', 'Workers', 'Limits']) assert.ok(dts.includes(k), `${k} in ${dts}`);
    assert.match(await page.textContent('#settings'), /all-MiniLM-L6-v2|MiniLM/i);
    assert.equal(await page.$$eval('#settings input, #settings button', (n) => n.length), 0, 'nothing to change there');
    mkdirSync(artifacts, { recursive: true });
    await page.locator('.settings-card').screenshot({ path: join(artifacts, '33-settings.png') });
    await audit(page, 'administration');

    await page.setViewportSize({ width: 390, height: 844 });
    await page.evaluate(() => window.scrollTo(0, 0));
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no sideways scrolling');
    await shot(page, '35-admin-phone');
    await page.setViewportSize({ width: 1280, height: 900 });

    // Signed out and in again in the same tab: one click still makes one user.
    await page.click('#signout');
    await signIn(page, server.key);
    await page.click('nav a[data-page=admin]');
    await page.waitForSelector('#users tr[data-user=alice]');
    const creates = [];
    page.on('request', (r) => { if (r.method() === 'POST' && r.url().endsWith('/v1/admin/users')) creates.push(r.url()); });
    await page.fill('#user-name', 'carol');
    await page.click('#user-create button[type=submit]');
    await page.waitForSelector('#key-dialog[open]');
    await page.click('#key-dialog button[value=close]');
    await page.waitForSelector('#users tr[data-user=carol]');
    assert.equal(creates.length, 1, 'one request per click after a second sign-in');
    assert.deepEqual(errors, [], 'no script errors');
  } finally {
    await other.context.close();
    await context.close();
    await server.stop();
  }
});
