// Where a document stands, in words and as a bar (`describe`), whether it has gone quiet for
// longer than its stage should take (`stalled`), and a smoothed rate that says nothing until it
// means something (`RateMeter`): the documents page's rows and the batch's overall bar.

import { bytes, seconds } from './util.js';

/**
 * Where a document stands: the bar's percentage (null when the line has no figure to show,
 * and the bar only says that something is going on), whether it waits, and a line of words.
 * The bar shows the line's own figures: bytes sent while uploading, chunks embedded while
 * embedding.
 */
export function describe(doc) {
  const p = doc.progress || { done: 0, total: 0 };
  switch (doc.state) {
    case 'uploading': {
      const size = doc.size || 0;
      if (!doc.sent) return { pct: null, waiting: true, line: `Waiting to upload ${bytes(size)}` };
      const frac = doc.sendTotal ? Math.min(1, doc.sent / doc.sendTotal) : 0;
      return { pct: 100 * frac, waiting: false, line: `Uploading ${bytes(Math.round(size * frac))} of ${bytes(size)}` };
    }
    case 'queued':
      return { pct: null, waiting: true, line: 'Waiting for a worker' };
    case 'paused':
      return { pct: 0, waiting: false, line: doc.chunks ? 'Paused; the previous version stays searchable' : 'Paused; resume to process it' };
    case 'processing': {
      if (doc.stage === 'embedding' && p.total > 0) {
        const frac = Math.min(1, p.done / p.total);
        return { pct: 100 * frac, waiting: false, line: embeddingLine(p, doc.meter?.rate() ?? null) };
      }
      return { pct: null, waiting: true, line: stageLine(doc.stage) };
    }
    case 'ready': {
      const total = doc.timings?.total;
      const took = doc.unchanged ? 'unchanged, already searchable' : total ? `processed in ${seconds(total)}` : null;
      return { pct: 100, waiting: false, line: [plural(doc.chunks ?? p.total, 'chunk'), took].filter(Boolean).join(' · ') };
    }
    case 'failed':
      if (doc.error?.code === 'cancelled') {
        if (typeof doc.key !== 'number') return { pct: 100, waiting: false, line: 'Not uploaded' };
        return { pct: 100, waiting: false, line: doc.chunks ? 'Stopped; the previous version stays searchable' : 'Stopped; nothing of it was kept' };
      }
      if (typeof doc.key !== 'number') return { pct: 100, waiting: false, line: 'Upload refused; nothing was stored' };
      return { pct: 100, waiting: false, line: doc.chunks ? 'The new version failed; the previous one stays searchable' : 'Not searchable' };
    default:
      return { pct: null, waiting: true, line: '' };
  }
}

/**
 * How long each stage may go without an event before the row says so (milliseconds; none for
 * a document waiting for a worker, or for the vector store, which say what they wait for).
 * Extracting sends no event until it ends, and the server gives it 60 s before it fails the
 * document: a notice just before would only race the failure. Embedding sends an event per
 * batch, and one batch to a slow remote endpoint may take its 30 s timeout and a retry.
 * Chunking and storing take seconds even for big documents.
 */
export const STALL_MS = { extracting: 90000, chunking: 30000, embedding: 60000, storing: 30000, null: 60000 };

/** Stages that send one event for their whole run: their time per document is the silence. */
const ONE_EVENT = new Set(['extracting', 'chunking', 'storing']);
/** Documents a stage's p95 must rest on before it moves a limit. */
const LEARN_FROM = 20;

/**
 * This server's limits, from its own timings (`GET /v1/stats`'s `processing.stages`): a stage
 * that sends one event for its whole run may stay silent up to 3× its p95 per document, once
 * that rests on 20 documents, and never less than `STALL_MS` (a server that extracts big PDFs
 * with a longer timeout, or stores into a slow vector store, is not called stuck for it).
 * Embedding sends an event per batch, so a document's embedding time says nothing of the
 * silence between two: it keeps its own limit.
 */
export function stallLimits(stageTimes) {
  const limits = { ...STALL_MS };
  for (const s of stageTimes?.stages ?? []) {
    if (ONE_EVENT.has(s.stage) && s.documents >= LEARN_FROM && Number.isFinite(s.p95_s)) {
      limits[s.stage] = Math.max(STALL_MS[s.stage], Math.round(3000 * s.p95_s));
    }
  }
  return limits;
}

/**
 * "no progress for 2 min — still working?", when a processing document has been silent for
 * longer than its stage's limit (`limits`, from `stallLimits`).
 */
export function stalled(doc, now, limits = STALL_MS) {
  if (doc.state !== 'processing' || doc.lastEvent === undefined) return null;
  const limit = limits[doc.stage ?? 'null'];
  if (!limit) return null;
  const quiet = now - doc.lastEvent;
  if (quiet < limit) return null;
  const min = Math.floor(quiet / 60000);
  return `no progress for ${min >= 1 ? `${min} min` : `${Math.round(quiet / 1000)} s`} — still working?`;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function stageLine(stage) {
  switch (stage) {
    case 'extracting': return 'Reading the text';
    case 'chunking': return 'Splitting into chunks';
    case 'embedding': return 'Embedding';
    case 'storing': return 'Saving';
    case 'waiting': return 'Waiting for the vector store to come back (retrying)';
    default: return 'Waiting for a worker';
  }
}

function embeddingLine(p, rate) {
  const parts = [`Embedding ${p.done} of ${p.total} chunks`];
  if (p.done < p.total) {
    if (rate === null) parts.push('estimating…');
    else parts.push(`${rate.toFixed(rate < 10 ? 1 : 0)} chunks/s`, `about ${seconds((p.total - p.done) / rate)} left`);
  }
  return parts.join(' · ');
}

/**
 * Chunks per second over one document's progress events in a stage: the units and the seconds
 * between events, each an exponentially weighted moving average (weight SMOOTHING for the
 * newest interval), divided. `rate()` says nothing (null) until it rests on MIN_UPDATES
 * intervals spanning MIN_SECONDS: the first interval alone (a cold model, the cache lookup)
 * says little about the rest.
 */
export class RateMeter {
  static SMOOTHING = 0.3;
  static MIN_SECONDS = 2;
  static MIN_UPDATES = 3;

  /** Starts at `done` units at `now` (milliseconds). */
  constructor(now, done) {
    this.start = now;
    this.t = now;
    this.done = done;
    this.units = 0;     // average units per interval
    this.seconds = 0;   // average seconds per interval
    this.updates = 0;
  }

  /** `done` units at `now` (milliseconds). */
  update(now, done) {
    const dt = (now - this.t) / 1000;
    if (dt <= 0 || done < this.done) return;
    const a = this.updates ? RateMeter.SMOOTHING : 1;
    this.units += a * (done - this.done - this.units);
    this.seconds += a * (dt - this.seconds);
    this.t = now;
    this.done = done;
    this.updates++;
  }

  /** Units per second, or null while there is too little to go on. */
  rate() {
    const enough = this.updates >= RateMeter.MIN_UPDATES && this.t - this.start >= RateMeter.MIN_SECONDS * 1000;
    return enough && this.units > 0 ? this.units / this.seconds : null;
  }
}
