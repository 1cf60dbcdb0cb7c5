// What the browser tests share: a real `ragmill serve` on a fresh data directory, Debian's
// Chromium driven by playwright-core, a stand-in chat server speaking Ollama's streaming wire
// format, and screenshots saved as test artefacts.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, '../..');
export const artifacts = join(here, 'artifacts');
const bin = process.env.RAGMILL_BIN || join(root, 'target/debug/ragmill');
const modelDir = process.env.RAGMILL_MODEL_DIR || join(root, 'models/all-MiniLM-L6-v2');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

/** `ragmill serve` on a fresh data directory, with one administrator. */
export async function startServer(extraArgs = []) {
  const data = mkdtempSync(join(tmpdir(), 'ragmill-web-'));
  const env = { ...process.env, RAGMILL_MODEL_DIR: modelDir, RUST_LOG: 'warn' };
  const added = execFileSync(bin, ['--data-dir', data, '--json', 'users', 'add', 'alice', '--admin'], { env });
  const key = JSON.parse(added.toString()).api_key;
  const child = spawn(bin, ['--data-dir', data, 'serve', '--bind', '127.0.0.1:0', '--workers', '2', ...extraArgs],
    { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const origin = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`ragmill serve did not start:\n${log}`)), 60000);
    const read = (chunk) => {
      log += chunk;
      const m = log.match(/listening on (http:\/\/[0-9.:]+)/);
      if (m) { clearTimeout(timer); ok(m[1]); }
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.on('exit', (code) => fail(new Error(`ragmill serve exited with ${code}:\n${log}`)));
  });
  return {
    origin, key, data,
    log: () => log,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((ok) => { child.once('exit', ok); setTimeout(ok, 5000); });
      rmSync(data, { recursive: true, force: true });
    },
  };
}

/**
 * Headless Chromium with the flags this sandbox needs (no outside network, running as root).
 * Playwright gives every launch a fresh, empty profile directory of its own.
 */
export async function launch() {
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run'],
  });
  return { browser, close: () => browser.close() };
}

/**
 * A new page that records every request it makes, so a test can check that none left the
 * origin; page errors fail the test.
 */
export async function openPage(browser, origin, viewport = { width: 1280, height: 900 }, contextOptions = {}) {
  const context = await browser.newContext({ viewport, ...contextOptions });
  const page = await context.newPage();
  const requests = [];
  const errors = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => errors.push(String(e)));
  // The browser logs every non-2xx answer as an error; the API's refusals are expected there.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });
  await page.goto(origin);
  return { page, context, requests, errors };
}

export async function shot(page, name) {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

/**
 * A stand-in for an Ollama chat server: `POST /api/chat` answered in Ollama's streaming wire
 * format (one JSON object per line, `done: true` last). The answer names each numbered passage
 * of the system prompt, word by word, and the last request is kept for the test.
 */
export async function startStandinOllamaChat() {
  const state = { last: null };
  const server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/api/chat') {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify({ error: 'not found' }));
    }
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', async () => {
      const request = JSON.parse(body);
      state.last = request;
      const system = request.messages.filter((m) => m.role === 'system').map((m) => m.content).join('\n');
      const cited = [...system.matchAll(/^\[(\d+)\]/gm)].map((m) => `[${m[1]}]`);
      const question = request.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '';
      const words = `Stand-in answer to: ${question} Sources: ${cited.join(' ') || 'none'}`.split(' ');
      res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
      for (const [i, w] of words.entries()) {
        const content = i + 1 < words.length ? `${w} ` : w;
        res.write(JSON.stringify({ model: request.model, created_at: new Date().toISOString(),
          message: { role: 'assistant', content }, done: false }) + '\n');
        await new Promise((ok) => setTimeout(ok, 15));
      }
      res.end(JSON.stringify({ model: request.model, created_at: new Date().toISOString(),
        message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop' }) + '\n');
      state.answer = words.join(' ');
    });
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    state,
    stop: () => new Promise((ok) => server.close(ok)),
  };
}

/** Drops `files` ({name, type, bytes}) on `selector` through a real DataTransfer drop event. */
export async function dropFiles(page, selector, files) {
  const payload = files.map((f) => ({ name: f.name, type: f.type, b64: Buffer.from(f.bytes).toString('base64') }));
  const transfer = await page.evaluateHandle((items) => {
    const dt = new DataTransfer();
    for (const f of items) {
      const bin = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
      dt.items.add(new File([bin], f.name, { type: f.type }));
    }
    return dt;
  }, payload);
  await page.dispatchEvent(selector, 'dragenter', { dataTransfer: transfer });
  await page.dispatchEvent(selector, 'drop', { dataTransfer: transfer });
}
