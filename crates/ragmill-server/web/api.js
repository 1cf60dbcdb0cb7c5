// The HTTP API, as the page uses it. Every request goes to this origin.

/** An error the API answered with (`{"error":{"code","message"}}`), or a network failure. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function errorOf(response) {
  try {
    const body = await response.json();
    if (body && body.error) return new ApiError(response.status, body.error.code, body.error.message);
  } catch { /* not JSON */ }
  return new ApiError(response.status, 'http_' + response.status, `The server answered ${response.status}.`);
}

export class Api {
  constructor(key) {
    this.key = key;
  }

  headers(extra = {}) {
    return { Authorization: `Bearer ${this.key}`, ...extra };
  }

  async request(method, path, body) {
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: this.headers(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, 'network', 'The server cannot be reached.');
    }
    if (!response.ok) throw await errorOf(response);
    return response.status === 204 ? null : response.json();
  }

  get(path) { return this.request('GET', path); }
  post(path, body) { return this.request('POST', path, body); }
  delete(path) { return this.request('DELETE', path); }

  /**
   * Uploads one file under `name` (its path in a dropped folder, or its own name);
   * `onProgress(loaded, total)` follows the bytes sent. Resolves to the
   * accepted document (`{id, name, state}`). XMLHttpRequest because fetch reports no upload
   * progress.
   */
  upload(file, name, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', '/v1/documents');
      xhr.setRequestHeader('Authorization', `Bearer ${this.key}`);
      xhr.responseType = 'json';
      xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
      xhr.onerror = () => reject(new ApiError(0, 'network', 'The upload was interrupted.'));
      xhr.onload = () => {
        const body = xhr.response;
        if (xhr.status >= 200 && xhr.status < 300 && body && body.documents && body.documents[0]) {
          resolve(body.documents[0]);
        } else if (body && body.error) {
          reject(new ApiError(xhr.status, body.error.code, body.error.message));
        } else {
          reject(new ApiError(xhr.status, 'http_' + xhr.status, `The server answered ${xhr.status}.`));
        }
      };
      const form = new FormData();
      form.append('file', file, name);
      xhr.send(form);
    });
  }

  /**
   * Opens a document's original in a new tab (PDF at `page`), or downloads it (DOCX). The tab
   * opens the server's own URL, through a link token (a tab cannot send the key), so the file
   * keeps its name in the tab's title and in a download; the server serves text formats as
   * plain text in a sandbox and PDFs under a no-script policy, so nothing uploaded runs here.
   */
  async openOriginal(id, name, page) {
    const link = await this.post(`/v1/documents/${id}/file/link`);
    if (link.disposition === 'inline') {
      window.open(page ? `${link.url}#page=${page}` : link.url, '_blank', 'noopener');
    } else {
      const a = document.createElement('a');
      a.href = link.url;
      a.download = name;
      a.click();
    }
  }

  /**
   * Posts a chat and calls `onEvent(name, data)` for each Server-Sent Event of the answer.
   * Resolves when the stream ends; rejects with an ApiError when the request is refused.
   */
  async chat(body, onEvent, signal) {
    let response;
    try {
      response = await fetch('/v1/chat', {
        method: 'POST',
        headers: this.headers({ 'Content-Type': 'application/json', Accept: 'text/event-stream' }),
        body: JSON.stringify(body),
        signal,
      });
    } catch (e) {
      if (e.name === 'AbortError') return;
      throw new ApiError(0, 'network', 'The server cannot be reached.');
    }
    if (!response.ok) throw await errorOf(response);
    await readEventStream(response.body, onEvent);
  }
}

/** Reads a `text/event-stream` body, calling `onEvent(name, parsedData)` per event. */
export async function readEventStream(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      dispatch(block, onEvent);
    }
  }
  if (buffer.trim()) dispatch(buffer, onEvent);
}

function dispatch(block, onEvent) {
  let name = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue; // comment / keep-alive
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') name = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length) return;
  let parsed;
  try { parsed = JSON.parse(data.join('\n')); } catch { parsed = data.join('\n'); }
  onEvent(name, parsed);
}
