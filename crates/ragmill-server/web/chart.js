// A small line chart on a canvas: a time window of one or more series, a y-axis from zero,
// the latest value in the header. Drawn by hand because the page loads nothing from outside
// and a charting library would be most of its weight.

import { el } from './util.js';

const COLORS = ['--c1', '--c2', '--c3', '--c4', '--c5', '--c6'];

export class LineChart {
  /**
   * @param {string} title
   * @param {{ unit?: string, digits?: number, percent?: boolean, min?: number, integer?: boolean, caption?: string }} options
   *   `integer`: the series counts things, so the axis steps by whole numbers; `percent`: a rate
   *   of 0 to 1, whose axis ends at 100 % unless a value passes it; `caption`: one line under
   *   the chart saying what it counts and over which window
   */
  constructor(title, options = {}) {
    this.title = title;
    this.options = options;
    this.canvas = el('canvas', { role: 'img', 'aria-label': title });
    this.now = el('span', { class: 'now' });
    this.legend = el('div', { class: 'legend' });
    this.node = el('figure', { class: 'chart', 'data-chart': title },
      el('header', {}, el('h3', {}, title), this.now), this.canvas, this.legend,
      ...(options.caption ? [el('figcaption', { class: 'caption' }, options.caption)] : []));
  }

  format(v) {
    if (v === null || v === undefined || !Number.isFinite(v)) return '–';
    const { unit = '', digits = 1, percent } = this.options;
    return percent ? `${(v * 100).toFixed(digits)}%` : `${v.toFixed(digits)}${unit ? ' ' + unit : ''}`;
  }

  /**
   * @param {number[]} times  seconds, oldest first
   * @param {{ name: string, values: (number|null)[] }[]} series
   * @param {number} span  seconds shown
   */
  draw(times, series, span) {
    const canvas = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 300, h = canvas.clientHeight || 144;
    if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
    if (canvas.height !== Math.round(h * dpr)) canvas.height = Math.round(h * dpr);
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const style = getComputedStyle(document.documentElement);
    const color = (i) => style.getPropertyValue(COLORS[i % COLORS.length]).trim() || '#1d5fd0';
    const muted = style.getPropertyValue('--muted').trim();
    const line = style.getPropertyValue('--line').trim();

    let max = 0;
    let points = 0;
    for (const s of series) for (const v of s.values) if (Number.isFinite(v)) { max = Math.max(max, v); points++; }
    const top = axisTop(max, this.options);
    const pad = { l: 44, r: 8, t: 6, b: 18 };
    const pw = w - pad.l - pad.r, ph = h - pad.t - pad.b;
    const t1 = times.length ? times[times.length - 1] : 0, t0 = t1 - span;
    const x = (t) => pad.l + ((t - t0) / span) * pw;
    const y = (v) => pad.t + ph - (v / top) * ph;

    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = muted;
    ctx.strokeStyle = line;
    ctx.lineWidth = 1;
    const ticks = [];
    for (let i = 0; i <= 4; i++) {
      const v = (top * i) / 4, yy = Math.round(y(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(pad.l, yy); ctx.lineTo(w - pad.r, yy); ctx.stroke();
      ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
      ticks.push(this.axis(v));
      ctx.fillText(ticks[i], pad.l - 4, yy);
    }
    this.node.dataset.ticks = ticks.join(',');
    ctx.textAlign = 'left'; ctx.textBaseline = 'top';
    ctx.fillText(`−${Math.round(span / 60)} min`, pad.l, h - pad.b + 4);
    ctx.textAlign = 'right';
    ctx.fillText('now', w - pad.r, h - pad.b + 4);

    series.forEach((s, i) => {
      ctx.strokeStyle = color(i);
      ctx.lineWidth = 2;
      ctx.beginPath();
      let open = false;
      s.values.forEach((v, j) => {
        if (!Number.isFinite(v) || times[j] < t0) { open = false; return; }
        if (open) ctx.lineTo(x(times[j]), y(v)); else ctx.moveTo(x(times[j]), y(v));
        open = true;
      });
      ctx.stroke();
      // A value with no neighbour draws no line: a dot, so one bucket of work still shows.
      ctx.fillStyle = color(i);
      s.values.forEach((v, j) => {
        if (!Number.isFinite(v) || times[j] < t0) return;
        if (Number.isFinite(s.values[j - 1]) || Number.isFinite(s.values[j + 1])) return;
        ctx.beginPath(); ctx.arc(x(times[j]), y(v), 2.5, 0, 2 * Math.PI); ctx.fill();
      });
    });

    const latest = series.map((s) => lastFinite(s.values));
    this.now.textContent = series.length === 1 ? this.format(latest[0])
      : latest.map((v) => this.format(v)).join(' / ');
    this.legend.replaceChildren(...(series.length > 1 ? series.map((s, i) =>
      el('span', {}, swatch(color(i)), s.name)) : []));
    this.canvas.setAttribute('aria-label', `${this.title}: ${series.map((s, i) => `${s.name} ${this.format(latest[i])}`).join(', ')}`);
    // For tests and the curious: what the chart holds.
    this.node.dataset.points = String(points);
    this.node.dataset.max = String(max);
  }

  axis(v) {
    if (this.options.percent) return `${Math.round(v * 100)}%`;
    if (this.options.integer) return v >= 1000 ? `${(v / 1000).toFixed(1)}k` : String(Math.round(v));
    // Up to two decimals, as many as the step needs: 0.25, 0.5, 0.75 (never 0.3 for 0.25).
    return v >= 1000 ? `${(v / 1000).toFixed(1)}k` : v >= 10 || v === 0 ? String(Math.round(v)) : String(Number(v.toFixed(2)));
  }
}

function swatch(color) {
  const i = el('i');
  i.style.background = color; // through the CSSOM: the CSP forbids inline style attributes
  return i;
}

function lastFinite(values) {
  for (let i = values.length - 1; i >= 0; i--) if (Number.isFinite(values[i])) return values[i];
  return null;
}

/**
 * The top of the y-axis for values up to `max`: four nice steps; whole steps for counts (no
 * 0.3 of a document); for a rate, 100 % unless a value passes it (never 200 % for 80 %).
 */
export function axisTop(max, options = {}) {
  if (options.percent && max <= 1) return 1;
  let step = niceTick(Math.max(max, options.min ?? 0) / 4);
  if (options.integer) step = Math.max(1, Math.ceil(step));
  return 4 * step;
}

/** The smallest of 1, 2 or 5 times a power of ten that is at least `v` (one grid step). */
function niceTick(v) {
  if (!(v > 0)) return 0.25;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
