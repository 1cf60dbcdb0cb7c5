#!/usr/bin/env python3
"""Helper for scripts/compare-embed.sh: the sentence-transformers (PyTorch) side of the comparison.

Subcommands (each prints JSON on stdout, progress on stderr):

  texts  --model-dir DIR --tokens T --chunks N --out FILE [--source FILE...]
      Writes N texts, one per line, each exactly T-2 word-piece tokens of the model's
      tokenizer (T with [CLS] and [SEP]): prose from the source files is cut at T-2 tokens and
      decoded back to text, so the PyTorch side and ragmill see byte-identical input.
  st     --model-dir DIR --input FILE --batch B [--threads N] [--max-seq-length 256]
      Embeds every non-empty line of FILE with SentenceTransformer(DIR, device="cpu"),
      normalize_embeddings=True, after one untimed warm-up batch; prints
      {"model","chunks","tokens","seconds","chunks_per_s","tokens_per_s","batch","threads"},
      the same shape as `ragmill bench embed --json`.
  table  FILE
      Renders the combined JSON report written by compare-embed.sh as a text table.
"""

import argparse
import json
import os
import sys
import time

# Used when no source file is given or readable: enough distinct prose to cut many chunks from.
FALLBACK_PROSE = """
A sourdough starter is a culture of wild yeast and lactic acid bacteria living in a paste of
flour and water. Fed regularly, it rises and falls on a predictable schedule; neglected, it
turns sour, grey and sluggish, though it can usually be revived with a few generous feedings.
Tides are the regular rise and fall of the sea caused mainly by the Moon's gravity acting
unevenly across the Earth. The side facing the Moon is pulled most strongly, the far side
least, and the difference stretches the oceans into two bulges that the planet rotates beneath.
The printing press with movable metal type, developed in Mainz around 1450, made books cheap
enough for merchants and students, spread the Reformation and standardised spelling across Europe.
Espresso is brewed by forcing water at about nine bars of pressure through a compact puck of
finely ground coffee; grind size, dose and shot time must be balanced to avoid sour or bitter cups.
To repair a punctured inner tube, remove the wheel, lever the tyre off the rim, find the hole by
inflating the tube and listening for the hiss, roughen the area, apply a patch, and check the
inside of the tyre for the thorn or glass that caused the puncture before refitting everything.
In Rust, recoverable errors are values of type Result, propagated with the question-mark
operator; panics are reserved for bugs, and libraries describe their failures with error enums.
""".strip()


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def die(message):
    print(f"compare_embed.py: {message}", file=sys.stderr)
    sys.exit(1)


def load_tokenizer(model_dir):
    path = os.path.join(model_dir, "tokenizer.json")
    if not os.path.isfile(path):
        die(f"no tokenizer.json in model dir {model_dir}")
    try:
        from tokenizers import Tokenizer
    except ImportError:
        die("the Python package 'tokenizers' is missing (pip install sentence-transformers brings it)")
    tok = Tokenizer.from_file(path)
    tok.no_truncation()
    tok.no_padding()
    return tok


def read_source(paths):
    parts = []
    for p in paths:
        try:
            with open(p, "rb") as f:
                raw = f.read()
        except OSError:
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")
        parts.append(text)
    text = "\n".join(parts) if parts else FALLBACK_PROSE
    words = text.split()
    if len(words) < 50:
        words = FALLBACK_PROSE.split()
    return words


def cmd_texts(args):
    tok = load_tokenizer(args.model_dir)
    body = args.tokens - 2
    if body < 1:
        die("--tokens must be at least 3")
    words = read_source(args.source or [])
    n_words = len(words)
    out = []
    # Each chunk starts at a different word offset (a stride coprime-ish to the text length)
    # so chunks differ, and takes enough words to exceed the token budget before cutting.
    words_needed = max(8, body)  # a word is >= 1 token, so this many words always suffice
    for i in range(args.chunks):
        start = (i * 97) % n_words
        span = [words[(start + j) % n_words] for j in range(words_needed)]
        ids = tok.encode(" ".join(span), add_special_tokens=False).ids[:body]
        text = " ".join(tok.decode(ids).split())
        out.append(text)
    # Measure what the model will actually see (re-encoding a decoded text can shift by a token).
    lengths = [len(tok.encode(t, add_special_tokens=True).ids) for t in out]
    with open(args.out, "w", encoding="utf-8") as f:
        for t in out:
            f.write(t + "\n")
    print(json.dumps({
        "file": args.out,
        "chunks": len(out),
        "target_tokens": args.tokens,
        "mean_tokens": sum(lengths) / len(lengths),
        "min_tokens": min(lengths),
        "max_tokens": max(lengths),
    }))


def cmd_st(args):
    threads = args.threads or os.cpu_count() or 1
    try:
        import torch
        from sentence_transformers import SentenceTransformer
        import sentence_transformers
    except ImportError as e:
        die(f"cannot import sentence-transformers/torch with {sys.executable}: {e}")
    torch.set_num_threads(threads)
    with open(args.input, encoding="utf-8") as f:
        texts = [line.rstrip("\n") for line in f if line.strip()]
    if not texts:
        die(f"no non-empty lines in {args.input}")
    model = SentenceTransformer(args.model_dir, device="cpu")
    model.max_seq_length = args.max_seq_length
    tok = model.tokenizer
    tokens = sum(
        min(len(ids), args.max_seq_length)
        for ids in tok(texts, add_special_tokens=True, truncation=False)["input_ids"]
    )

    # Warm-up: one batch, untimed (first-call allocation, oneDNN kernel selection).
    model.encode(texts[: args.batch], batch_size=args.batch, normalize_embeddings=True,
                 show_progress_bar=False)
    t0 = time.perf_counter()
    emb = model.encode(texts, batch_size=args.batch, normalize_embeddings=True,
                       show_progress_bar=False, convert_to_numpy=True)
    seconds = time.perf_counter() - t0
    if emb.shape[0] != len(texts):
        die(f"sentence-transformers returned {emb.shape[0]} embeddings for {len(texts)} texts")
    print(json.dumps({
        "model": os.path.basename(os.path.normpath(args.model_dir)),
        "chunks": len(texts),
        "tokens": tokens,
        "seconds": seconds,
        "chunks_per_s": len(texts) / seconds,
        "tokens_per_s": tokens / seconds,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "dim": int(emb.shape[1]),
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__,
    }))


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def cmd_table(args):
    with open(args.file, encoding="utf-8") as f:
        report = json.load(f)
    m = report.get("machine", {})
    print(f"machine: {m.get('cpu', '?')}, {m.get('nproc', '?')} CPUs; model: {report.get('model_dir')}")
    if report.get("torch"):
        print(f"pytorch side: torch {report['torch']}, sentence-transformers "
              f"{report.get('sentence_transformers')}, {report.get('pytorch_threads')} threads")
    if report.get("ragmill_threads") is not None:
        print(f"ragmill side: {report.get('ragmill')}, {report['ragmill_threads']} threads")
    print(f"{report.get('chunks')} chunks per run; chunks/s after one untimed warm-up batch")
    print()
    header = f"{'batch':>5}  {'tokens':>6}  {'pytorch chunks/s':>16}  {'ragmill chunks/s':>16}  {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for r in report["rows"]:
        ratio = r.get("ratio")
        print(f"{r['batch']:>5}  {r['tokens']:>6}  {fmt(r.get('pytorch_chunks_per_s'), '16.2f'):>16}  "
              f"{fmt(r.get('ragmill_chunks_per_s'), '16.2f'):>16}  "
              f"{(fmt(ratio, '.2f') + 'x') if ratio is not None else '-':>6}")
    print()
    print("ratio = ragmill / pytorch (above 1: ragmill is faster)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("texts")
    t.add_argument("--model-dir", required=True)
    t.add_argument("--tokens", type=int, required=True)
    t.add_argument("--chunks", type=int, required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--source", action="append")
    s = sub.add_parser("st")
    s.add_argument("--model-dir", required=True)
    s.add_argument("--input", required=True)
    s.add_argument("--batch", type=int, required=True)
    s.add_argument("--threads", type=int, default=0)
    s.add_argument("--max-seq-length", type=int, default=256)
    tb = sub.add_parser("table")
    tb.add_argument("file")
    args = p.parse_args()
    {"texts": cmd_texts, "st": cmd_st, "table": cmd_table}[args.cmd](args)


if __name__ == "__main__":
    main()
