// The live event stream: a WebSocket to /v1/events, opened with a short-lived token (a
// browser cannot set headers on a WebSocket), reopened with back-off when it drops. Every
// (re)connection starts with a snapshot, which restores whatever was missed.

export class LiveEvents {
  /**
   * @param {import('./api.js').Api} api
   * @param {(message: object) => void} onMessage  every snapshot and event
   * @param {(state: 'connecting'|'live'|'offline') => void} onState
   * @param {() => void} onUnauthorized  the key stopped working
   */
  constructor(api, onMessage, onState, onUnauthorized) {
    Object.assign(this, { api, onMessage, onState, onUnauthorized });
    this.socket = null;
    this.retry = 0;
    this.timer = null;
    this.stopped = false;
  }

  async start() {
    if (this.stopped) return;
    this.onState('connecting');
    let token;
    try {
      ({ token } = await this.api.post('/v1/events/token'));
    } catch (e) {
      if (e.status === 401) return this.onUnauthorized();
      return this.later();
    }
    if (this.stopped) return;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}/v1/events?token=${encodeURIComponent(token)}`);
    this.socket = socket;
    socket.onopen = () => { this.retry = 0; this.onState('live'); };
    socket.onmessage = (e) => {
      let message;
      try { message = JSON.parse(e.data); } catch { return; }
      this.onMessage(message);
    };
    socket.onclose = () => {
      if (this.socket === socket) this.later();
    };
  }

  later() {
    if (this.stopped) return;
    this.onState('offline');
    const delay = Math.min(10000, 500 * 2 ** this.retry++);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.start(), delay);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close();
  }
}
