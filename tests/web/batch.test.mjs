// Big batches in the web UI, end to end (headless Chromium against a real `ragmill serve`): a
// 300-file folder with one overall bar, cancel and pause mid-embedding, resume, retry failed, and the list's
// order, filters, search and pages over a few hundred documents. Screenshots and figures land
// in tests/web/artifacts/.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { artifacts, dropFiles, launch, openPage, shot, startServer } from './harness.mjs';

/** A screenshot of what the screen shows (a full page of 300 rows says nothing). */
async function screen(page, name) {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, `${name}.png`) });
}

let chrome;
before(async () => { chrome = await launch(); });
after(async () => { await chrome?.close(); });

const FILES = 300;
const name = (i) => `note-${String(i).padStart(3, '0')}.md`;
/** The name file `i` of folder `dir` is stored under: its path in the folder, folder included. */
const stored = (dir, i) => `${basename(dir)}/${i < 150 ? 'part-a' : 'part-b'}/${name(i)}`;

/** A folder of FILES small Markdown files, plus hidden ones the page must skip. */
function folder() {
  const dir = mkdtempSync(join(tmpdir(), 'ragmill-batch-'));
  const topics = ['tides', 'bread', 'bicycles', 'volcanoes', 'printing', 'coffee'];
  for (let i = 0; i < FILES; i++) {
    const sub = join(dir, i < 150 ? 'part-a' : 'part-b');
    mkdirSync(sub, { recursive: true });
    const t = topics[i % topics.length];
    // Sizes differ, so ordering by size means something.
    const body = `# Note ${i} on ${t}\n\n` + `Entry ${i} about ${t}, line. `.repeat(1 + (i % 17));
    writeFileSync(join(sub, name(i)), body);
  }
  writeFileSync(join(dir, '.DS_Store'), 'hidden');
  mkdirSync(join(dir, '.git'));
  writeFileSync(join(dir, '.git', 'HEAD.md'), '# hidden');
  return dir;
}

/** A long text: enough chunks to still be embedding when the test cancels it. */
function longText(paragraphs) {
  const topics = ['harbour', 'glacier', 'orchard', 'foundry', 'observatory', 'monastery'];
  const out = ['# A long ledger\n'];
  for (let p = 0; p < paragraphs; p++) {
    const t = topics[p % topics.length];
    out.push(`\n## The ${t} ledger, entry ${p}\n`);
    for (let s = 0; s < 12; s++) {
      out.push(`Entry ${p}.${s}: the ${t} keeper counted ${(p * 37 + s * 11) % 997} crates and logged tide mark ${p * 12 + s}. `);
    }
  }
  return out.join('');
}

function saveFigures(add) {
  const path = join(artifacts, 'figures.json');
  mkdirSync(artifacts, { recursive: true });
  const all = existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : {};
  writeFileSync(path, JSON.stringify({ ...all, ...add }, null, 2));
}

async function signIn(page, key) {
  await page.fill('#signin-key', key);
  await page.press('#signin-key', 'Enter');
  await page.waitForSelector('#app:not([hidden])');
  await page.waitForSelector('#live-pill.ok');
}

async function axeCheck(page, what) {
  const axe = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  await page.addScriptTag({ content: axe });
  const result = await page.evaluate(() => window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa'] }));
  const bad = result.violations.map((v) => `${v.impact} ${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  assert.deepEqual(bad, [], `${what}: accessibility violations`);
}

/** Waits until the list's first row is `name` (and says what it shows if it never is). */
async function firstIs(page, name) {
  try {
    await page.waitForFunction((n) => document.querySelector('#documents li .doc-name')?.textContent === n, name, { timeout: 10000 });
  } catch (e) {
    throw new Error(`first row never ${name}: ${(await rowNames(page)).slice(0, 5)} (${await page.textContent('#list-range')})`);
  }
}

const rowNames = (page) => page.$$eval('#documents li .doc-name', (ns) => ns.map((n) => n.textContent));

async function api(server, path, init = {}) {
  const r = await fetch(server.origin + path, {
    ...init, headers: { Authorization: `Bearer ${server.key}`, 'Content-Type': 'application/json' },
  });
  return r.status === 204 ? null : r.json();
}

test('a 300-file folder: one overall bar within a second, all ready; order, filters, search, pages; axe', async () => {
  const server = await startServer();
  const dir = folder();
  // axe is injected as a script, which the page's CSP rightly refuses: this context bypasses it.
  const { page, errors, requests } = await openPage(chrome.browser, server.origin, undefined, { bypassCSP: true });
  try {
    await signIn(page, server.key);
    // Every change of the overall bar, as the page shows it.
    await page.evaluate(() => {
      window.__batch = [];
      const panel = document.getElementById('batch');
      new MutationObserver(() => {
        const e = { t: performance.now(), hidden: panel.hidden, line: document.getElementById('batch-line').textContent,
          now: document.getElementById('batch-bar').getAttribute('aria-valuenow') };
        const last = window.__batch.at(-1);
        if (!last || last.line !== e.line || last.hidden !== e.hidden) window.__batch.push(e);
      }).observe(panel, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    // When the page gets the folder (the input's change event; Playwright reads the files first).
    await page.evaluate(() => document.getElementById('folder-input')
      .addEventListener('change', () => { window.__dropAt = performance.now(); }, { capture: true }));
    const t0 = await page.evaluate(() => performance.now());
    await page.setInputFiles('#folder-input', dir);
    await page.waitForSelector('#batch:not([hidden])[data-total="300"]', { timeout: 5000 });
    const shownAt = await page.evaluate(() => performance.now());
    const firstLine = (await page.evaluate(() => window.__batch)).find((s) => !s.hidden && /documents done/.test(s.line));
    const dropAt = await page.evaluate(() => window.__dropAt);
    const firstShownMs = Math.round(firstLine.t - dropAt);
    assert.ok(firstShownMs < 1000, `the overall bar ${firstShownMs} ms after the drop`);
    assert.match(firstLine.line, /^0 of 300 documents done · 0 of 300 uploaded · chunks\/s estimating… · time left estimating…$/);
    // The first document done, on the overall bar.
    await page.waitForFunction(() => Number(document.getElementById('batch').dataset.done) > 0, null, { timeout: 60000, polling: 50 });
    const firstDoneAt = await page.evaluate(() => performance.now());
    await page.waitForFunction(() => Number(document.getElementById('batch').dataset.done) >= 30, null, { timeout: 120000, polling: 200 });
    await page.evaluate(() => window.scrollTo(0, document.getElementById('batch').offsetTop - 70));
    await screen(page, '20-batch-progress');
    await page.waitForSelector('#batch[data-state="finished"]', { timeout: 400000 });
    const line = await page.textContent('#batch-line');
    assert.match(line, /^300 of 300 documents done · in /);
    assert.deepEqual(await page.$$eval('#batch-counts li', (l) => l.map((x) => x.textContent)), ['300 ready']);
    assert.ok(await page.isVisible('#batch-clear') && !(await page.isVisible('#batch-cancel')));
    // Over, the batch's 300 rows go back to a page of the list.
    await page.waitForFunction(() => document.querySelectorAll('#documents li').length === 100);
    assert.equal(await page.textContent('#list-range'), '1–100 of 300');
    const listed = await api(server, '/v1/documents?state=ready&limit=1');
    assert.equal(listed.total, 300, 'the hidden files were skipped, every other one is ready');

    // The overall line: rate and time left say "estimating…" until they rest on enough updates.
    const seen = await page.evaluate(() => window.__batch);
    const firstRate = seen.findIndex((s) => /chunks\/s/.test(s.line) && !/chunks\/s estimating/.test(s.line));
    assert.ok(seen.filter((s) => /documents done/.test(s.line)).length > 10, 'the bar moved as documents ended');
    if (firstRate >= 0) assert.ok(seen[firstRate].t - seen[0].t >= 2000, `a rate too early: ${JSON.stringify(seen.slice(0, firstRate + 1))}`);
    for (const s of seen) {
      const m = s.line.match(/^(\d+) of (\d+) documents done/);
      if (m) assert.equal(s.now, String(Math.round((100 * Number(m[1])) / Number(m[2]))), `bar and line agree: ${JSON.stringify(s)}`);
    }
    const figures = {
      // From the page's drop (change event) to the overall bar showing "0 of 300 documents done".
      batchDropToOverallBarMs: firstShownMs,
      // The same from the test's call, including Playwright reading 300 files into the page.
      batchDropToOverallBarWallMs: Math.round(shownAt - t0),
      // From the page's drop to the overall bar's first document done (uploaded and processed).
      batchDropToFirstDocumentDoneMs: Number(await page.getAttribute('#batch', 'data-first-done-ms')),
      batchDropToFirstDocumentDoneWallMs: Math.round(firstDoneAt - t0),
      batchFirstRateLine: firstRate >= 0 ? seen[firstRate].line : null,
      batchFinalLine: line,
    };
    saveFigures(figures);
    console.log('300-file folder:', JSON.stringify(figures));
    await axeCheck(page, 'documents with a finished batch');

    // The list pages: reading it again shows a page of 100, not every document.
    await page.reload();
    await page.waitForSelector('#app:not([hidden])');
    await page.waitForFunction(() => document.querySelectorAll('#documents li').length === 100);
    assert.equal(await page.textContent('#list-range'), '1–100 of 300');
    assert.ok(await page.isDisabled('#list-prev'));
    assert.match(await page.textContent('#rag-pill'), /on · 300 ready/, 'the header counts all, not the page');
    await page.selectOption('#list-sort', 'name:asc');
    await firstIs(page, stored(dir, 0));
    assert.deepEqual((await rowNames(page)).slice(0, 3), [0, 1, 2].map((i) => stored(dir, i)),
      'stored under their paths in the folder, so same-named files of two subfolders stay apart');
    await page.click('#list-next');
    await firstIs(page, stored(dir, 100));
    assert.equal(await page.textContent('#list-range'), '101–200 of 300');
    await page.click('#list-next');
    await firstIs(page, stored(dir, 200));
    assert.ok(await page.isDisabled('#list-next'));
    await page.selectOption('#list-sort', 'name:desc');
    await firstIs(page, stored(dir, 299));
    assert.equal(await page.textContent('#list-range'), '1–100 of 300', 'a new order starts at the first page');
    await page.selectOption('#list-sort', 'size:desc');
    await page.waitForFunction((last) => document.querySelector('#documents li .doc-name')?.textContent !== last, stored(dir, 299));
    await page.waitForFunction(() => document.querySelectorAll('#documents li').length === 100);
    const sizeOf = new Map((await api(server, '/v1/documents')).documents.map((d) => [d.name, d.size]));
    const shown = (await rowNames(page)).map((n) => sizeOf.get(n));
    const largest = [...sizeOf.values()].sort((a, b) => b - a).slice(0, 100);
    assert.deepEqual(shown, largest, 'the largest 100, largest first');

    // Search by name, and filter by state.
    await page.fill('#list-search', 'note-12');
    await page.waitForFunction(() => document.querySelectorAll('#documents li').length === 10);
    assert.ok((await rowNames(page)).every((n) => n.includes('/note-12')));
    assert.ok(await page.isHidden('#list-pages'));
    await page.fill('#list-search', '');
    await page.click('.chip[data-filter=failed]');
    await page.waitForFunction(() => document.querySelectorAll('#documents li').length === 0);
    assert.equal(await page.getAttribute('.chip[data-filter=failed]', 'aria-pressed'), 'true');
    assert.ok(await page.isHidden('#documents-empty'), 'no "no documents yet" under a filter');
    await page.click('.chip[data-filter=ready]');
    await page.waitForFunction(() => document.querySelectorAll('#documents li').length === 100);
    await page.fill('#list-search', 'note-29');
    await page.waitForFunction(() => document.querySelectorAll('#documents li').length === 10);
    await shot(page, '22-filtered');
    await axeCheck(page, 'documents, filtered');
    // By keyboard: the chips are buttons in the tab order.
    await page.focus('.chip[data-filter=all]');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelectorAll('#documents li').length === 10);
    assert.equal(await page.getAttribute('.chip[data-filter=all]', 'aria-pressed'), 'true');

    // A phone's width: nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than a phone`);
    await shot(page, '23-narrow-list');

    assert.deepEqual(errors, []);
    const foreign = requests.filter((u) => !u.startsWith(server.origin) && !u.startsWith('data:') && !u.startsWith('blob:'));
    assert.deepEqual(foreign, [], 'the page asks nothing of any other origin');
  } finally {
    await page.context().close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cancel mid-embedding stops within seconds; retry failed; cancel all; a silent stage says so', async () => {
  const server = await startServer();
  const { page, errors } = await openPage(chrome.browser, server.origin, undefined, { bypassCSP: true });
  try {
    await signIn(page, server.key);
    await dropFiles(page, '#dropzone', [
      { name: 'big-ledger.md', type: 'text/markdown', bytes: Buffer.from(longText(500)) },
      { name: 'small.md', type: 'text/markdown', bytes: Buffer.from('# Small\n\nA short note about tides.') },
    ]);
    await page.waitForSelector('#batch:not([hidden])[data-total="2"]', { timeout: 1000 });
    await page.waitForFunction(() => [...document.querySelectorAll('#documents li[data-id]')]
      .some((li) => li.querySelector('.doc-name').textContent === 'big-ledger.md'), null, { timeout: 30000 });
    const id = await page.evaluate(() => Number([...document.querySelectorAll('#documents li[data-id]')]
      .find((li) => li.querySelector('.doc-name').textContent === 'big-ledger.md').dataset.id));
    const row = `#documents li[data-id="${id}"]`;
    await page.waitForFunction((sel) => {
      const li = document.querySelector(sel);
      const m = li?.querySelector('.detail').textContent.match(/^Embedding (\d+) of (\d+)/);
      return m && Number(m[1]) > 0 && Number(m[1]) < Number(m[2]);
    }, row, { timeout: 120000, polling: 50 });
    await page.waitForSelector(`${row} button.cancel:visible`);
    const t0 = Date.now();
    await page.click(`${row} button.cancel`);
    await page.waitForSelector(`${row}[data-error="cancelled"]`, { timeout: 5000 });
    const cancelMs = Date.now() - t0;
    assert.ok(cancelMs < 3000, `the row said cancelled ${cancelMs} ms after the click`);
    assert.equal(await page.textContent(`${row} .state`), 'Cancelled');
    assert.match(await page.textContent(`${row} .detail`), /Stopped; nothing of it was kept/);
    assert.ok(await page.isHidden(`${row} button.cancel`));
    const doc = await api(server, `/v1/documents/${id}`);
    assert.equal(doc.state, 'failed');
    assert.equal(doc.error?.code, 'cancelled');
    // It stays stopped: no progress afterwards.
    const before = await page.textContent(`${row} .detail`);
    await page.waitForTimeout(1500);
    assert.equal(await page.textContent(`${row} .detail`), before);
    await page.waitForSelector('#batch[data-state="finished"]', { timeout: 60000 });
    assert.match(await page.textContent('#batch-counts'), /1 ready.*1 cancelled/);
    await shot(page, '21-cancelled');
    saveFigures({ cancelClickToRowCancelledMs: cancelMs });

    // Retry failed (the cancelled one), then cancel the whole batch while it embeds again.
    await page.click('#batch-retry');
    await page.waitForFunction((sel) => /^Embedding \d+ of/.test(document.querySelector(sel)?.querySelector('.detail').textContent || ''),
      row, { timeout: 120000, polling: 50 });
    assert.ok(await page.isVisible('#batch-cancel'));
    await page.click('#batch-cancel');
    await page.waitForSelector(`${row}[data-error="cancelled"]`, { timeout: 5000 });
    await page.waitForSelector('#batch[data-state="finished"]', { timeout: 5000 });
    assert.equal((await api(server, `/v1/documents/${id}`)).error?.code, 'cancelled');

    // "Failed" chip: the cancelled document, and "Retry all failed" (the bulk form with all).
    await page.click('.chip[data-filter=failed]');
    await page.waitForFunction(() => document.querySelectorAll('#documents li').length === 1);
    assert.ok(await page.isVisible('#list-retry-all'));
    await axeCheck(page, 'documents, cancelled and filtered');
    await page.click('#list-retry-all');
    await page.waitForFunction(() => document.querySelectorAll('#documents li').length === 0);
    assert.notEqual((await api(server, `/v1/documents/${id}`)).state, 'failed');
    await api(server, `/v1/documents/${id}/cancel`, { method: 'POST' });

    // A stage silent for longer than it should take says so, and says nothing before.
    const said = await page.evaluate(async () => {
      const { stalled } = await import('/assets/documents.js');
      return [
        stalled({ state: 'processing', stage: 'embedding', lastEvent: 0 }, 30000),
        stalled({ state: 'processing', stage: 'embedding', lastEvent: 0 }, 75000),
        stalled({ state: 'processing', stage: 'extracting', lastEvent: 0 }, 75000),
        stalled({ state: 'processing', stage: 'extracting', lastEvent: 0 }, 130000),
        stalled({ state: 'processing', stage: 'storing', lastEvent: 0 }, 45000),
        stalled({ state: 'processing', stage: 'waiting', lastEvent: 0 }, 600000),
        stalled({ state: 'queued', stage: null, lastEvent: 0 }, 600000),
      ];
    });
    assert.deepEqual(said, [null, 'no progress for 1 min — still working?', null, 'no progress for 2 min — still working?',
      'no progress for 45 s — still working?', null, null], 'each stage its own limit');

    // A server whose documents take long in a one-event stage moves that stage's limit to 3×
    // its p95, once 20 documents say so; never below the floor, and never embedding's.
    const learned = await page.evaluate(async () => {
      const { stallLimits, stalled } = await import('/assets/documents.js');
      const slow = stallLimits({ stages: [
        { stage: 'extracting', p50_s: 20, p95_s: 100, documents: 30 },
        { stage: 'storing', p50_s: 0.1, p95_s: 2, documents: 30 },
        { stage: 'chunking', p50_s: 30, p95_s: 50, documents: 19 },
        { stage: 'embedding', p50_s: 200, p95_s: 900, documents: 30 },
      ] });
      const extracting = (now) => stalled({ state: 'processing', stage: 'extracting', lastEvent: 0 }, now, slow);
      return {
        limits: [slow.extracting, slow.storing, slow.chunking, slow.embedding],
        said: [extracting(130000), extracting(310000)],
        none: stallLimits(undefined).extracting,
      };
    });
    assert.deepEqual(learned.limits, [300000, 30000, 30000, 60000]);
    assert.deepEqual(learned.said, [null, 'no progress for 5 min — still working?']);
    assert.equal(learned.none, 90000, 'no timings: the floors');
    assert.deepEqual(errors, []);
  } finally {
    await page.context().close();
    await server.stop();
  }
});

test('pause a batch mid-embedding: it holds still; resume (the batch, then one row) runs it to ready', async () => {
  const server = await startServer();
  const { page, errors } = await openPage(chrome.browser, server.origin, undefined, { bypassCSP: true });
  try {
    await signIn(page, server.key);
    await dropFiles(page, '#dropzone', [
      { name: 'paused-ledger.md', type: 'text/markdown', bytes: Buffer.from(longText(120)) },
      { name: 'tides.md', type: 'text/markdown', bytes: Buffer.from('# Tides\n\nThe moon pulls the sea.') },
    ]);
    await page.waitForSelector('#batch:not([hidden])[data-total="2"]', { timeout: 1000 });
    const findRow = () => page.waitForFunction(() => [...document.querySelectorAll('#documents li[data-id]')]
      .find((li) => li.querySelector('.doc-name').textContent === 'paused-ledger.md')?.dataset.id, null, { timeout: 30000 });
    const id = Number(await (await findRow()).jsonValue());
    const row = `#documents li[data-id="${id}"]`;
    const embedding = () => page.waitForFunction((sel) => {
      const m = document.querySelector(sel)?.querySelector('.detail').textContent.match(/^Embedding (\d+) of (\d+)/);
      return m && Number(m[1]) > 0 && Number(m[1]) < Number(m[2]);
    }, row, { timeout: 120000, polling: 50 });
    await embedding();

    // The whole batch: the row says Paused within seconds and stays still; the bar says paused.
    const t0 = Date.now();
    await page.click('#batch-pause');
    await page.waitForSelector(`${row}[data-state="paused"]`, { timeout: 5000 });
    const pauseMs = Date.now() - t0;
    assert.equal(await page.textContent(`${row} .state`), 'Paused');
    assert.equal((await api(server, `/v1/documents/${id}`)).state, 'paused');
    await page.waitForSelector('#batch[data-paused="true"]');
    assert.match(await page.textContent('#batch-line'), /paused/);
    assert.match(await page.textContent('#batch-counts'), /1 paused/);
    assert.ok(await page.isVisible('#batch-resume'));
    assert.ok(await page.isHidden('#batch-pause'));
    assert.ok(await page.isVisible(`${row} button.resume`));
    const still = await page.textContent(`${row} .detail`);
    await page.waitForTimeout(1500);
    assert.equal(await page.textContent(`${row} .detail`), still, 'a paused document moves no further');
    assert.equal((await api(server, `/v1/documents/${id}`)).state, 'paused');
    assert.notEqual(await page.getAttribute('#batch', 'data-state'), 'finished', 'a paused batch is not over');
    await shot(page, '24-batch-paused');
    saveFigures({ pauseClickToRowPausedMs: pauseMs });

    // Resume the batch; pause that one row while it embeds again, then resume the row.
    await page.click('#batch-resume');
    await page.waitForSelector('#batch[data-paused="false"]');
    await embedding();
    await page.click(`${row} button.pause`);
    await page.waitForSelector(`${row}[data-state="paused"]`, { timeout: 5000 });
    await page.click(`${row} button.resume`);
    await page.waitForSelector(`${row}[data-state="ready"]`, { timeout: 180000 });
    await page.waitForSelector('#batch[data-state="finished"]', { timeout: 10000 });
    assert.match(await page.textContent('#batch-counts'), /2 ready/);
    assert.equal((await api(server, `/v1/documents/${id}`)).state, 'ready');
    assert.deepEqual(errors, []);
  } finally {
    await page.context().close();
    await server.stop();
  }
});
