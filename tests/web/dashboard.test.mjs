// The dashboard tells what was done, by whom, and what each figure counts: documents ingested
// by `ragmill ingest` (another process, on the server's data directory, while it runs) show in
// the charts, the per-stage p50/p95 table says how many documents it rests on, and every
// chart and tile carries a caption.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startServer, launch, openPage, shot, root } from './harness.mjs';

const run = promisify(execFile);
const bin = process.env.RAGMILL_BIN || join(root, 'target/debug/ragmill');
const modelDir = process.env.RAGMILL_MODEL_DIR || join(root, 'models/all-MiniLM-L6-v2');

async function waitFor(page, fn, arg, timeout = 20000) {
  await page.waitForFunction(fn, arg, { timeout, polling: 200 });
}

test('work done by ragmill ingest shows on the dashboard, every figure captioned', async () => {
  const server = await startServer();
  const chrome = await launch();
  try {
    // `ragmill ingest` on the running server's data directory: its own process, its own
    // pipeline; nothing of it passes through the server.
    const samples = join(root, 'samples');
    const files = readdirSync(samples).filter((f) => !f.startsWith('.')).map((f) => join(samples, f));
    assert.ok(files.length >= 5, `samples: ${files}`);
    const env = { ...process.env, RAGMILL_MODEL_DIR: modelDir, RUST_LOG: 'warn' };
    await run(bin, ['--data-dir', server.data, 'ingest', '--user', 'alice', ...files], { env, timeout: 240000 })
      .catch((e) => { throw new Error(`ragmill ingest failed: ${e.stderr || e}`); });

    const { page } = await openPage(chrome.browser, server.origin);
    await page.fill('#signin-key', server.key);
    await page.press('#signin-key', 'Enter');
    await page.click('nav a[data-page=dashboard]');

    // The processing charts have the CLI's work in them (the server's workers did nothing).
    for (const chart of ['Chunks per second', 'Documents per minute', 'Time per document']) {
      await waitFor(page, (title) => {
        const c = document.querySelector(`[data-chart="${title}"]`);
        return c && Number(c.dataset.points) > 0 && Number(c.dataset.max) > 0;
      }, chart);
    }
    const docsMax = await page.$eval('[data-chart="Documents per minute"]', (c) => Number(c.dataset.max));
    assert.ok(docsMax >= 1, `documents per minute: ${docsMax}`);
    assert.match(await page.textContent('#dash-origins'), /\d+ by ragmill ingest \(cli\)/);
    assert.doesNotMatch(await page.textContent('#dash-origins'), /server's workers/);

    // Time per stage: p50 and p95 of every stage over the documents stored, and how many.
    await waitFor(page, () => Number(document.getElementById('stages')?.dataset.documents) > 0);
    const stages = await page.$$eval('#stages tr[data-stage]', (rows) => rows.map((r) =>
      [r.dataset.stage, ...[...r.querySelectorAll('td.num')].map((td) => td.textContent)]));
    assert.deepEqual(stages.map((s) => s[0]), ['extracting', 'chunking', 'embedding', 'storing', 'total']);
    const documents = Number(await page.$eval('#stages', (e) => e.dataset.documents));
    assert.ok(documents >= 3 && documents <= files.length, `documents: ${documents}`);
    for (const [stage, p50, p95, n] of stages) {
      assert.match(p50, /^\d+\.\d+ s$/, `${stage} p50 in seconds`);
      assert.match(p95, /^\d+\.\d+ s$/, `${stage} p95 in seconds`);
      assert.ok(parseFloat(p95) >= parseFloat(p50), `${stage}: p95 ${p95} < p50 ${p50}`);
      assert.equal(Number(n), documents, `${stage} rests on every document`);
    }
    const note = await page.textContent('#stages-note');
    assert.match(note, new RegExp(`over the ${documents} documents stored in the last 15 min`));

    // Every chart says what it counts and over which window; so does every tile.
    const captions = await page.$$eval('#charts figure.chart', (figs) =>
      figs.map((f) => [f.dataset.chart, f.querySelector('figcaption')?.textContent || '']));
    assert.ok(captions.length >= 9, `${captions.length} charts`);
    for (const [title, caption] of captions) assert.ok(caption.length > 30, `${title} has no caption`);
    const caption = Object.fromEntries(captions);
    assert.match(caption['Chunks per second'], /processing log.*ragmill ingest/);
    assert.match(caption['Time per document'], /one document/);
    assert.match(caption['Embedding time per batch'], /one batch/);
    const tiles = await page.$$eval('#tiles .tile', (ts) => ts.map((t) => [t.dataset.tile, t.querySelector('.c')?.textContent || '']));
    for (const [name, c] of tiles) assert.ok(c.length > 3, `tile ${name} has no caption`);

    // Times are in seconds everywhere, per what they are: never a bare "ms".
    const text = await page.textContent('#page-dashboard');
    assert.doesNotMatch(text, /\d ms\b/);
    assert.match(await page.textContent('#endpoints'), /per batch \(mean\)/);

    await shot(page, 'dashboard');
  } finally {
    await chrome.close();
    await server.stop();
  }
});
