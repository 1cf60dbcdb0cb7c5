// The web UI end to end: headless Chromium against a real `ragmill serve` (real model, real
// SQLite file) and a stand-in Ollama chat server. Screenshots land in tests/web/artifacts/.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import {
  artifacts, dropFiles, launch, openPage, root, shot, startServer, startStandinOllamaChat,
} from './harness.mjs';

let chrome;
before(async () => { chrome = await launch(); });
after(async () => { await chrome?.close(); });

/** A long text of distinct sentences: enough chunks to still be processing after a reload. */
function longText(paragraphs) {
  const topics = ['harbour', 'glacier', 'orchard', 'foundry', 'observatory', 'monastery', 'vineyard', 'lighthouse'];
  const out = ['# Field notes on many places\n'];
  for (let p = 0; p < paragraphs; p++) {
    const t = topics[p % topics.length];
    out.push(`\n## The ${t} ledger, entry ${p}\n`);
    for (let s = 0; s < 12; s++) {
      out.push(`Entry ${p}.${s}: the ${t} keeper counted ${(p * 37 + s * 11) % 997} crates, ` +
        `noted wind from bearing ${(p * 13 + s * 29) % 360} degrees and logged tide mark ${p * 12 + s}. `);
    }
  }
  return out.join('');
}

function sample(name, type) {
  return { name, type, bytes: readFileSync(join(root, 'samples', name)) };
}

async function waitFor(page, fn, arg, timeout = 120000) {
  await page.waitForFunction(fn, arg, { timeout, polling: 100 });
}

/**
 * Runs in the page: from now on (and, as an init script, from the start of every later load)
 * records what the page shows at each change: the line, bar and meta of field-notes.md's row
 * (`__seen`), and the counts of the header, the chat and the list (`__counts`).
 */
function recorder() {
  window.__seen = [];
  window.__counts = [];
  const start = () => {
    const snap = () => {
      const rows = [...document.querySelectorAll('#documents li')];
      const li = rows.find((l) => l.querySelector('.doc-name')?.textContent === 'field-notes.md');
      if (li) {
        const e = {
          t: performance.now(), state: li.dataset.state, id: li.dataset.id || null,
          line: li.querySelector('.detail').textContent,
          now: li.querySelector('.bar').getAttribute('aria-valuenow'),
          meta: li.querySelector('.doc-meta').textContent,
        };
        const last = window.__seen.at(-1);
        if (!last || ['state', 'id', 'line', 'now', 'meta'].some((k) => last[k] !== e[k])) window.__seen.push(e);
      }
      const c = {
        pill: document.getElementById('rag-pill').textContent,
        reason: document.getElementById('rag-reason').textContent,
        ready: rows.filter((l) => l.dataset.id && l.dataset.state === 'ready').length,
      };
      const last = window.__counts.at(-1);
      if (!last || last.pill !== c.pill || last.reason !== c.reason || last.ready !== c.ready) window.__counts.push(c);
    };
    new MutationObserver(snap).observe(document.getElementById('app'),
      { subtree: true, childList: true, characterData: true, attributes: true });
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
}

/** Every bar shows its line's own figures: "Embedding 3 of 88 chunks" is 3 %, and no figure none. */
function checkBars(seen, when) {
  for (const r of seen) {
    const m = r.line.match(/^Embedding (\d+) of (\d+) chunks/);
    if (m) {
      assert.equal(r.now, String(Math.round((100 * Number(m[1])) / Number(m[2]))),
        `${when}: the bar shows the line's figures: ${JSON.stringify(r)}`);
    } else if (r.state === 'queued' || r.state === 'processing') {
      assert.equal(r.now, null, `${when}: a line without figures, a bar without a value: ${JSON.stringify(r)}`);
    }
  }
}

/** Rates and time left only once they rest on 2 s and 3 updates; "estimating…" before. */
function checkRates(seen, when) {
  const embedding = seen.filter((r) => /^Embedding \d+ of \d+ chunks/.test(r.line));
  const first = embedding.findIndex((r) => /chunks\/s/.test(r.line));
  for (const r of first < 0 ? embedding : embedding.slice(0, first)) {
    const [, done, total] = r.line.match(/^Embedding (\d+) of (\d+)/);
    if (done !== total) assert.match(r.line, /estimating…/, `${when}: ${JSON.stringify(r)}`);
    assert.doesNotMatch(r.line, /left/, `${when}: no time left without a rate: ${JSON.stringify(r)}`);
  }
  if (first >= 0) {
    const before = embedding.slice(0, first + 1);
    const spent = before.at(-1).t - before[0].t;
    assert.ok(spent >= 2000, `${when}: a rate ${Math.round(spent)} ms after embedding showed: ${JSON.stringify(before)}`);
    const updates = new Set(before.map((r) => r.line.match(/\d+/)[0])).size;
    assert.ok(updates >= 4, `${when}: a rate after ${updates - 1} updates: ${JSON.stringify(before)}`);
  }
  return first >= 0 ? embedding[first].line : null;
}

/** The header, the chat's RAG line and the list count the same ready documents, always. */
function checkCounts(counts, when) {
  for (const c of counts) {
    const pill = Number(c.pill.match(/on · (\d+) ready/)?.[1] ?? 0);
    const reason = Number(c.reason.match(/^Searching (\d+) ready/)?.[1] ?? 0);
    assert.deepEqual([pill, reason], [c.ready, c.ready], `${when}: header, chat and list disagree: ${JSON.stringify(c)}`);
  }
}

/** `n` bytes as the page writes them. */
async function bytesOnPage(page, n) {
  return page.evaluate(async (size) => (await import('/assets/util.js')).bytes(size), n);
}

/** Waits until the row of document `name` is in `state`. */
async function waitState(page, name, state, timeout) {
  await waitFor(page, ([n, s]) => [...document.querySelectorAll('#documents li')]
    .find((li) => li.querySelector('.doc-name')?.textContent === n)?.dataset.state === s, [name, state], timeout);
}

test('upload, live progress, RAG toggle, reload, search, chat with sources, dashboard', async () => {
  const chat = await startStandinOllamaChat();
  const server = await startServer(['--chat-backend', 'ollama', '--chat-endpoint', chat.url, '--chat-model', 'standin-llm']);
  const { page, requests, errors } = await openPage(chrome.browser, server.origin);
  const figures = {};
  try {
    // Sign-in: a wrong key is refused in plain words; the right one opens the app.
    await page.fill('#signin-key', 'rmk_000000000000_wrong');
    await page.click('#signin-form button[type=submit]');
    await page.waitForSelector('#signin-error:not([hidden])');
    assert.match(await page.textContent('#signin-error'), /not accepted/);
    await shot(page, '01-sign-in');
    await page.fill('#signin-key', server.key);
    await page.press('#signin-key', 'Enter');
    await page.waitForSelector('#app:not([hidden])');
    await page.waitForSelector('#live-pill.ok');
    errors.length = 0; // the refused key's 401 above was expected
    assert.ok(await page.isVisible('#documents-empty'), 'an empty state before any upload');
    await page.evaluate(recorder);
    await page.addInitScript(recorder);

    // Before any document, the RAG toggle is off and says why.
    assert.equal(await page.isDisabled('#rag-toggle'), true);
    assert.match(await page.textContent('#rag-reason'), /Upload a document/);

    // Mark this page load: if the page reloads, the mark is gone.
    await page.evaluate(() => { window.__sameLoad = true; });
    const big = { name: 'field-notes.md', type: 'text/markdown', bytes: Buffer.from(longText(340)) };
    await dropFiles(page, '#dropzone', [
      sample('sourdough-starter.md', 'text/markdown'),
      sample('what-causes-tides.html', 'text/html'),
      big,
    ]);
    await waitFor(page, () => document.querySelectorAll('#documents li').length === 3);
    await shot(page, '02-uploading');

    // As soon as the server accepts it, a row shows the file's own size, its type and its date.
    const bigSize = await bytesOnPage(page, big.bytes.length);
    await waitFor(page, () => [...document.querySelectorAll('#documents li')]
      .find((l) => l.querySelector('.doc-name').textContent === 'field-notes.md')?.dataset.id !== undefined);
    await waitFor(page, ([size]) => {
      const li = [...document.querySelectorAll('#documents li')].find((l) => l.querySelector('.doc-name').textContent === 'field-notes.md');
      const meta = li.querySelector('.doc-meta').textContent;
      return /^Markdown · /.test(meta) && meta.includes(size) && /added /.test(meta);
    }, [bigSize], 5000);
    assert.notEqual(await page.$$eval('#documents li', (lis) => lis
      .find((l) => l.querySelector('.doc-name').textContent === 'field-notes.md').dataset.state), 'ready',
    'shown before it is ready');

    // The two small ones become ready; the toggle switches on without a reload.
    for (const name of ['sourdough-starter.md', 'what-causes-tides.html']) {
      await waitState(page, name, 'ready');
    }
    await waitFor(page, () => !document.getElementById('rag-toggle').disabled);
    assert.equal(await page.isChecked('#rag-toggle'), true, 'RAG turns on by itself');
    assert.equal(await page.evaluate(() => window.__sameLoad), true, 'no reload happened');
    assert.match(await page.textContent('#rag-pill'), /RAG on/);

    // The big one is processing: its bar moves with stage, counts, rate and ETA.
    await waitFor(page, () => {
      const li = [...document.querySelectorAll('#documents li')].find((l) => l.querySelector('.doc-name').textContent === 'field-notes.md');
      return li && li.dataset.state === 'processing' && /Embedding \d+ of \d+ chunks/.test(li.textContent);
    });
    await shot(page, '03-processing');
    const seenBefore = await page.evaluate(() => window.__seen);
    checkBars(seenBefore, 'before the reload');
    checkRates(seenBefore, 'before the reload');
    checkCounts(await page.evaluate(() => window.__counts), 'before the reload');
    for (const r of seenBefore.filter((x) => x.state !== 'uploading')) {
      assert.ok(r.meta.includes(bigSize), `the file's size, not the request's: ${JSON.stringify(r)} (${bigSize})`);
    }
    figures.firstEventMs = await page.$$eval('#documents li', (lis) =>
      Object.fromEntries(lis.map((li) => [li.querySelector('.doc-name').textContent, Number(li.dataset.firstEventMs)])));
    for (const [name, ms] of Object.entries(figures.firstEventMs)) {
      assert.ok(Number.isFinite(ms) && ms >= 0, `${name}: time from drop to first event recorded`);
    }

    // Reload mid-processing: the snapshot restores the bar.
    await page.reload();
    await page.waitForSelector('#app:not([hidden])');
    const restored = await page.waitForFunction(() => {
      const li = [...document.querySelectorAll('#documents li')].find((l) => l.querySelector('.doc-name').textContent === 'field-notes.md');
      if (!li) return null;
      const now = Number(li.querySelector('.bar').getAttribute('aria-valuenow'));
      return li.dataset.state === 'processing' && now > 0 ? { now, text: li.textContent } : null;
    }, null, { timeout: 10000, polling: 50 }).then((h) => h.jsonValue());
    assert.ok(restored.now > 0, `bar restored after reload: ${JSON.stringify(restored)}`);
    assert.equal(await page.evaluate(() => window.__sameLoad), undefined, 'the page did reload');
    await shot(page, '04-restored-after-reload');
    await waitFor(page, () => [...document.querySelectorAll('#documents li')].every((li) => li.dataset.state === 'ready'), undefined, 240000);
    await shot(page, '05-all-ready');
    const seenAfter = await page.evaluate(() => window.__seen);
    checkBars(seenAfter, 'after the reload');
    figures.firstRateLine = checkRates(seenAfter, 'after the reload');
    checkCounts(await page.evaluate(() => window.__counts), 'after the reload');

    // Plain search finds the expected passage.
    await page.click('nav a[data-page=chat]');
    await page.fill('#search-input', 'how do I keep a sourdough starter alive');
    await page.press('#search-input', 'Enter');
    await page.waitForSelector('#search-results li');
    const first = await page.textContent('#search-results li:first-child .where');
    assert.match(first, /sourdough-starter\.md/);

    // A passage opens formatted from its Markdown, numbered as the API numbers chunks.
    const [tidesAnswer] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/v1/search') && r.request().postDataJSON().query === 'What causes tides?'),
      page.fill('#search-input', 'What causes tides?').then(() => page.press('#search-input', 'Enter')),
    ]);
    const heading = (await tidesAnswer.json()).results.find((r) => r.text.startsWith('# What Causes Tides?'));
    assert.ok(heading, 'the page with the title is found');
    await page.waitForFunction(() => [...document.querySelectorAll('#search-results .snippet')].some((s) => s.textContent.startsWith('What Causes Tides?')));
    await page.evaluate(() => [...document.querySelectorAll('#search-results .result')]
      .find((b) => b.querySelector('.snippet').textContent.startsWith('What Causes Tides?')).click());
    await page.waitForSelector('#passage[open]');
    assert.equal(await page.textContent('#passage-text strong'), 'What Causes Tides?', 'the heading, formatted');
    assert.doesNotMatch(await page.textContent('#passage-text'), /# What|^\s*#/m, 'no Markdown marks');
    assert.equal(await page.$$eval('#passage-text script, #passage-text [onerror]', (n) => n.length), 0);
    assert.match(await page.textContent('#passage-meta'), new RegExp(`(^| · )chunk ${heading.chunk}( · |$)`),
      `chunk ${heading.chunk}, as the API says`);
    await shot(page, '05a-passage-formatted');
    await page.keyboard.press('Escape');
    await page.fill('#search-input', 'how do I keep a sourdough starter alive');

    // The mode control beside the box: "Exact words" searches the keyword index (BM25) only,
    // the request says so, and each score's tooltip says which retriever scored it.
    const [keywordAnswer] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/v1/search') && r.request().postDataJSON().mode === 'keyword'),
      page.selectOption('#search-mode', 'keyword'),
    ]);
    assert.equal((await keywordAnswer.json()).mode, 'keyword');
    await waitFor(page, () => /BM25/.test(document.querySelector('#search-results li .score')?.title || ''));
    const title = await page.getAttribute('#search-results li:first-child .score', 'title');
    assert.doesNotMatch(title, /meaning/, 'a keyword hit has no vector score');
    await shot(page, '05b-search-exact-words');
    const [hybridAnswer] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/v1/search') && r.request().postDataJSON().mode === 'hybrid'),
      page.selectOption('#search-mode', 'hybrid'),
    ]);
    assert.equal((await hybridAnswer.json()).mode, 'hybrid');

    // Chat with RAG: tokens stream in order, the cited passages are those the model was sent.
    assert.equal(await page.isChecked('#rag-toggle'), true);
    await page.fill('#chat-input', 'What causes spring tides?');
    await page.press('#chat-input', 'Enter');
    await page.waitForSelector('#chat-log .msg.assistant .sources li');
    const answer = await page.textContent('#chat-log .msg.assistant .answer');
    assert.equal(answer, chat.state.answer, 'the tokens arrived whole and in order');
    const system = chat.state.last.messages.find((m) => m.role === 'system').content;
    const norm = (t) => t.replace(/\s+/g, ' ').trim();
    const sent = system.split(/^(?=\[\d+\] )/m).filter((p) => /^\[\d+\] /.test(p)).map((p) => {
      const [head, ...body] = p.split('\n');
      const m = head.match(/^\[(\d+)\] (.+?)(?:, page \d+)?(?: — .*)?$/);
      return { n: Number(m[1]), document: m[2], text: norm(body.join('\n')), raw: body.join('\n') };
    });
    const cited = await page.$$eval('#chat-log .sources li', (lis) => lis.map((li) => ({
      where: li.querySelector('.where').firstChild.textContent,
      snippet: li.querySelector('.snippet').textContent,
    })));
    assert.ok(sent.length > 0, 'passages went into the prompt');
    assert.equal(cited.length, sent.length, 'one citation per passage sent');
    cited.forEach((c, i) => {
      const [n, document] = c.where.match(/^\[(\d+)\] ([^·]+)/).slice(1);
      assert.equal(Number(n), sent[i].n, 'numbered as in the prompt');
      assert.equal(document.trim(), sent[i].document, `citation ${n} names the document sent`);
      // The snippet is the passage's start, without Markdown heading marks and emphasis.
      const plain = norm(sent[i].raw.replace(/^#{1,6}\s+/gm, '').replace(/\*\*/g, ''));
      assert.ok(plain.startsWith(norm(c.snippet).replace(/…$/, '')), `citation ${n} quotes the passage sent`);
    });
    const cites = cited.map((c) => c.where);
    assert.match(cites[0], /what-causes-tides\.html/);
    await shot(page, '06-chat-with-sources');
    await page.click('#chat-log .sources li:first-child button');
    await page.waitForSelector('#passage[open]');
    assert.match(await page.textContent('#passage-text'), /tide/i);
    await shot(page, '07-passage');
    // The original opens in a new tab, from the server under its name, as plain text (the
    // HTML's markup shows, nothing runs).
    const [tab] = await Promise.all([page.context().waitForEvent('page'), page.click('#passage-open')]);
    await tab.waitForLoadState();
    assert.match(tab.url(), new RegExp(`^${server.origin}/v1/documents/\\d+/file\\?token=`));
    assert.match(await tab.textContent('body'), /<h1>What Causes Tides\?<\/h1>|<title>/i);
    await tab.close();
    await page.keyboard.press('Escape');
    // Each [n] in the answer opens passage n.
    await page.click('#chat-log .msg.assistant .cite >> nth=1');
    await page.waitForSelector('#passage[open]');
    // (Formatted: its heading marks and emphasis become formatting.)
    assert.equal(norm(await page.innerText('#passage-text')),
      norm(sent[1].raw.replace(/^#{1,6}\s+/gm, '').replace(/\*\*/g, '')), '[2] opens the second passage sent');
    await page.keyboard.press('Escape');

    // The dashboard draws its charts with real, non-zero data.
    await page.click('nav a[data-page=dashboard]');
    for (const chart of ['Chunks per second', 'Documents per minute', 'Workers busy', 'Time per document', 'Embedding time per batch', 'Queue depth']) {
      await waitFor(page, (title) => {
        const c = document.querySelector(`[data-chart="${title}"]`);
        return c && Number(c.dataset.points) > 0 && Number(c.dataset.max) > 0;
      }, chart, 20000);
    }
    assert.match(await page.textContent('#dash-scope'), /whole service/);
    const tiles = await page.textContent('#tiles');
    assert.match(tiles, /3\s*Ready/);
    await shot(page, '08-dashboard');

    // A new tab's dashboard starts with the server's record of the last minutes: the workers
    // were busy before this tab existed.
    const fresh = await openPage(chrome.browser, server.origin);
    await fresh.page.fill('#signin-key', server.key);
    await fresh.page.press('#signin-key', 'Enter');
    await fresh.page.click('nav a[data-page=dashboard]');
    await waitFor(fresh.page, () => Number(document.querySelector('[data-chart="Workers busy"]')?.dataset.max) > 0, undefined, 10000);
    await fresh.page.context().close();

    // Nothing the page asked for left the origin.
    const foreign = requests.filter((u) => !u.startsWith(server.origin) && !u.startsWith(server.origin.replace('http', 'ws')) &&
      !u.startsWith(`blob:${server.origin}`) && !u.startsWith('data:'));
    assert.deepEqual(foreign, []);
    assert.deepEqual(errors, [], 'no script errors');
  } finally {
    const kept = existsSync(join(artifacts, 'figures.json')) ? JSON.parse(readFileSync(join(artifacts, 'figures.json'), 'utf8')) : {};
    writeFileSync(join(artifacts, 'figures.json'), JSON.stringify({ ...kept, ...figures }, null, 2));
    console.log('time from drop to first progress event on the page (ms):', JSON.stringify(figures.firstEventMs));
    await page.context().close();
    await server.stop();
    await chat.stop();
  }
});

test('without a chat model the page says so, search still works, and a narrow screen is usable', async () => {
  const server = await startServer();
  const { page, requests, errors } = await openPage(chrome.browser, server.origin, { width: 390, height: 844 });
  try {
    // Keyboard only: the key field has focus, Enter signs in.
    await page.keyboard.type(server.key);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#app:not([hidden])');
    await dropFiles(page, '#dropzone', [sample('home-espresso.txt', 'text/plain')]);
    await waitFor(page, () => document.querySelector('#documents li')?.dataset.state === 'ready');
    assert.equal(await page.textContent('#whoami'), 'alice (administrator)');
    // Without a chat model, the header speaks of search, not RAG.
    assert.equal(await page.textContent('#rag-pill'), 'Search on · 1 ready');

    // An empty file: its row says 0 B (not the size of the request carrying it), then why not.
    await dropFiles(page, '#dropzone', [{ name: 'empty.txt', type: 'text/plain', bytes: Buffer.alloc(0) }]);
    await waitState(page, 'empty.txt', 'failed');
    const emptyRow = '#documents li[data-state=failed]';
    assert.equal(await page.textContent(`${emptyRow} .doc-meta`), '0 B');
    assert.match(await page.textContent(`${emptyRow} .doc-error`), /empty_file/);
    await page.click(`${emptyRow} button.delete`); // dismissed
    await waitFor(page, () => !document.querySelector('#documents li[data-state=failed]'));

    // A file that lies about its type is refused in plain words; the good one is unaffected.
    const junk = Buffer.alloc(4096, 0x9c);
    await dropFiles(page, '#dropzone', [{ name: 'report.pdf', type: 'application/pdf', bytes: junk }]);
    await waitState(page, 'report.pdf', 'failed');
    const refused = await page.textContent('#documents li[data-state=failed] .doc-error');
    assert.match(refused, /\w+.*\(\w+\)$/, `a message and its code: ${refused}`);
    assert.doesNotMatch(refused, /undefined|null|\[object/);
    await shot(page, '09-narrow-documents');
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `no horizontal scrolling on a narrow screen (${width}px)`);

    // Many files at once: uploads go a few at a time, and every one arrives.
    const many = Array.from({ length: 7 }, (_, i) => ({
      name: `note-${i}.txt`, type: 'text/plain', bytes: Buffer.from(`Note ${i}: the kettle ${'whistles '.repeat(i + 1)}at dawn.`),
    }));
    await dropFiles(page, '#dropzone', many);
    await waitFor(page, () => document.querySelectorAll('#documents li[data-state=ready]').length === 8);

    // Without a chat model the page is search: no dead chat panel, no RAG toggle, and one
    // small line on how to turn chat on.
    await page.click('nav a[data-page=chat]');
    await page.waitForSelector('#chat-unconfigured:not([hidden])');
    assert.match(await page.textContent('#chat-unconfigured'), /No chat model is configured/);
    assert.equal(await page.isVisible('#chat-card'), false, 'no chat panel');
    assert.equal(await page.isVisible('#rag-toggle'), false, 'no RAG toggle');
    assert.equal(await page.isDisabled('#chat-input'), true);
    const shown = await page.innerText('body');
    assert.equal(shown.split('--chat-backend').length - 1, 1, 'how to enable chat, said once');
    assert.equal(await page.textContent('nav a[data-page=chat]'), 'Search');
    assert.equal(await page.title(), 'Search · ragmill');

    // Search hides what is far below the best, behind a toggle that says how many.
    await page.fill('#search-input', 'espresso grind');
    await page.press('#search-input', 'Enter');
    await page.waitForSelector('#search-results li');
    assert.match(await page.textContent('#search-results li:first-child'), /home-espresso\.txt/);
    const kept = await page.$$eval('#search-results li .where', (w) => w.map((x) => x.textContent));
    assert.ok(kept.every((w) => /home-espresso\.txt/.test(w)), `only the espresso guide is near the question: ${kept}`);
    const toggle = '#search-weaker-toggle';
    await page.waitForSelector(`${toggle}:not([hidden])`);
    const hiddenCount = await page.$$eval('#search-weaker li', (l) => l.length);
    assert.equal(kept.length + hiddenCount, 8, 'top_k results in all');
    assert.equal(await page.textContent(toggle), `${hiddenCount} weaker result${hiddenCount === 1 ? '' : 's'} hidden — show`);
    assert.equal(await page.isVisible('#search-weaker'), false);
    assert.equal(await page.getAttribute(toggle, 'aria-expanded'), 'false');
    await page.focus(toggle);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#search-weaker:not([hidden])');
    assert.equal(await page.getAttribute(toggle, 'aria-expanded'), 'true');
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot(page, '10a-narrow-search-weaker-shown');
    assert.match(await page.textContent('#search-weaker'), /note-\d\.txt/, 'the unrelated notes are the weaker ones');
    assert.match(await page.textContent('#search-status'), new RegExp(`^${kept.length} passages? in \\d+ ms`));
    // By meaning alone, nothing under a cosine of 0.2 shows.
    await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/v1/search') && r.request().postDataJSON().mode === 'vector'),
      page.selectOption('#search-mode', 'vector'),
    ]);
    await page.waitForFunction(() => document.getElementById('search-weaker').hidden);
    const cosines = await page.$$eval('#search-results .score', (s) => s.map((x) => Number(x.textContent)));
    assert.ok(cosines.length > 0 && cosines.every((c) => c >= 0.2), `${cosines}`);
    await shot(page, '10-narrow-chat-unconfigured');

    const foreign = requests.filter((u) => !u.startsWith(server.origin) && !u.startsWith(server.origin.replace('http', 'ws')));
    assert.deepEqual(foreign, []);
    assert.deepEqual(errors, []);
  } finally {
    await page.context().close();
    await server.stop();
  }
});

test('every page passes axe\'s WCAG 2 A/AA checks; re-process, delete and sign-out work', async () => {
  const server = await startServer();
  // axe is injected as a script, which the page's CSP rightly refuses: this context bypasses it.
  const { page, errors } = await openPage(chrome.browser, server.origin, undefined, { bypassCSP: true });
  const axe = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  const audit = async (name) => {
    await page.addScriptTag({ content: axe });
    const result = await page.evaluate(() => window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa'] }));
    const bad = result.violations.map((v) => `${v.impact} ${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    assert.deepEqual(bad, [], `${name}: accessibility violations`);
  };
  page.on('dialog', (d) => d.accept()); // the delete confirmation
  try {
    await audit('sign-in');
    await page.fill('#signin-key', server.key);
    await page.click('#signin-form button[type=submit]');
    await page.waitForSelector('#app:not([hidden])');
    await audit('documents, empty');
    await dropFiles(page, '#dropzone', [sample('rust-error-handling.md', 'text/markdown')]);
    await waitState(page, 'rust-error-handling.md', 'ready');
    await audit('documents');
    for (const p of ['chat', 'dashboard']) {
      await page.click(`nav a[data-page=${p}]`);
      await page.waitForSelector(`#page-${p}:not([hidden])`);
      if (p === 'dashboard') await page.waitForSelector('#tiles .tile');
      if (p === 'chat') {
        await page.waitForSelector('#chat-unconfigured:not([hidden])');
        await shot(page, '11-search-only-without-a-chat-model');
      }
      await audit(p);
    }

    // Answers are formatted from their Markdown as DOM nodes, never as HTML.
    const formatted = await page.evaluate(async () => {
      const { renderMarkdown } = await import('/assets/markdown.js');
      const text = 'Intro with **bold** and `code` [1] [9].\n\n- first\n- second <script>alert(1)</script>\n\n' +
        '1. one\n2. two\n\n```\n<img src=x onerror=alert(1)>\n```\n## Heading';
      const box = document.createElement('div');
      box.append(...renderMarkdown(text, (n) => (n === 1 ? Object.assign(document.createElement('button'), { textContent: '[1]' }) : null)));
      return {
        tags: [...box.querySelectorAll('*')].map((e) => e.tagName.toLowerCase()).join(' '),
        text: box.textContent,
      };
    });
    assert.equal(formatted.tags, 'p strong code button ul li li ol li li pre code p strong');
    assert.match(formatted.text, /<script>alert\(1\)<\/script>/, 'markup stays text');
    assert.match(formatted.text, /\[9\]/, 'a citation with no passage stays text');

    // Chunks per second: nothing until 2 s and 3 updates, then a smoothed figure that a slow
    // first batch and uneven batches do not throw far off.
    const rates = await page.evaluate(async () => {
      const { RateMeter } = await import('/assets/documents.js');
      const m = new RateMeter(0, 0);
      const out = [];
      let t = 0, done = 0;
      for (const [dt, n] of [[900, 32], [300, 32], [700, 32], [300, 32], [700, 32], [300, 32], [700, 32], [300, 32], [700, 32]]) {
        t += dt; done += n;
        m.update(t, done);
        out.push(m.rate());
      }
      return out;
    });
    assert.deepEqual(rates.slice(0, 3), [null, null, null], `estimating at first: ${rates}`);
    assert.ok(rates.slice(3).every((r) => r > 40 && r < 90), `near 64 chunks/s once estimated: ${rates}`);

    // Which search results count as near the best (cosine and BM25 as the API gives them).
    const split = await page.evaluate(async () => {
      const { relevant } = await import('/assets/chat.js');
      const hit = (n, vector, keyword) => ({ n, scores: { vector, keyword } });
      const names = ({ kept, hidden }) => [kept.map((h) => h.n), hidden.map((h) => h.n)];
      const results = [hit(1, 0.75, 11.4), hit(2, 0.6, 7.4), hit(3, 0.39, 2.1), hit(4, 0.21, 1.1), hit(5, 0.1, 9), hit(6, 0.08)];
      return {
        hybrid: names(relevant(results, 'hybrid')),
        vector: names(relevant(results.map((h) => ({ ...h, scores: { vector: h.scores.vector } })), 'vector')),
        keyword: names(relevant(results, 'keyword')),
        nothingClose: names(relevant([hit(1, 0.15), hit(2, 0.12)], 'vector')),
      };
    });
    assert.deepEqual(split.hybrid, [[1, 2, 3, 5], [4, 6]], 'hybrid: near the best meaning or the best words');
    assert.deepEqual(split.vector, [[1, 2, 3], [4, 5, 6]], 'vector: within half the best cosine, and over 0.2');
    assert.deepEqual(split.keyword, [[1, 2, 3, 4, 5, 6], []], 'exact words: every hit has the words');
    assert.deepEqual(split.nothingClose, [[], [1, 2]]);

    // Re-process: back through the queue to ready.
    await page.click('nav a[data-page=documents]');
    const row = '#documents li[data-state]';
    await page.evaluate(() => {
      window.__states = [];
      const li = document.querySelector('#documents li');
      new MutationObserver(() => window.__states.push(li.dataset.state))
        .observe(li, { attributes: true, attributeFilter: ['data-state'] });
    });
    await page.click(`${row} button.reprocess`);
    await waitFor(page, () => window.__states.includes('queued') && window.__states.at(-1) === 'ready');

    // Delete: the row goes, and with the only document gone the RAG toggle turns off.
    assert.equal(await page.isDisabled('#rag-toggle'), false, 'RAG is on before the delete');
    await page.click(`${row} button.delete`);
    await waitFor(page, () => document.querySelectorAll('#documents li').length === 0);
    await waitFor(page, () => document.getElementById('rag-toggle').disabled);
    assert.ok(await page.isVisible('#documents-empty'));

    // "Open" on a PDF opens the server's file in a tab titled with the document's name (this
    // PDF has no title of its own), not a nameless blob.
    const pdf = readFileSync(join(root, 'samples', 'printing-press.pdf'));
    const untitled = Buffer.from(pdf.toString('latin1').replace('/Title (', '/Xitle ('), 'latin1');
    await dropFiles(page, '#dropzone', [{ name: 'ledger scan.pdf', type: 'application/pdf', bytes: untitled },
      sample('bicycle-tyre-repair.docx', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document')]);
    await waitState(page, 'ledger scan.pdf', 'ready');
    await waitState(page, 'bicycle-tyre-repair.docx', 'ready');
    const rowOf = (name) => `#documents li:has(.doc-name:text-is("${name}"))`;
    const [tab] = await Promise.all([page.context().waitForEvent('page'), page.click(`${rowOf('ledger scan.pdf')} button.open`)]);
    await tab.waitForLoadState();
    assert.match(tab.url(), new RegExp(`^${server.origin}/v1/documents/\\d+/file\\?token=`));
    const cdp = await page.context().newCDPSession(tab);
    let title = '';
    for (let i = 0; i < 100 && title !== 'ledger scan.pdf'; i++) {
      ({ targetInfo: { title } } = await cdp.send('Target.getTargetInfo'));
      if (title !== 'ledger scan.pdf') await new Promise((ok) => setTimeout(ok, 100));
    }
    assert.equal(title, 'ledger scan.pdf', 'the tab is titled with the name');
    await shot(tab, '12-pdf-opened-under-its-name');
    await tab.close();
    // A DOCX is downloaded, under its name.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click(`${rowOf('bicycle-tyre-repair.docx')} button.open`)]);
    assert.equal(download.suggestedFilename(), 'bicycle-tyre-repair.docx');
    assert.equal(await download.failure(), null);

    // Sign-out forgets the key.
    await page.click('#signout');
    await page.waitForSelector('#signin:not([hidden])');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('ragmill.key')), null);
    await page.reload();
    await page.waitForSelector('#signin:not([hidden])');
    assert.deepEqual(errors, []);
  } finally {
    await page.context().close();
    await server.stop();
  }
});
