#!/usr/bin/env python3
"""Helper for scripts/compare-embed.sh: the sentence-transformers (PyTorch) side of the comparison,
the benchmark texts, and the Markdown table of the combined report.

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
      Renders the combined JSON report written by compare-embed.sh (OUT/report.json) as a
      Markdown table: PyTorch FP32, ragmill FP32 and ragmill INT8 side by side, with each
      ragmill precision's throughput as a multiple of PyTorch's. Missing values print "-".
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


def fmt_ratio(v):
    return "-" if v is None else f"{v:.2f}×"


# The ragmill precisions in the table, in column order, with their column labels.
TABLE_PRECISIONS = (("fp32", "FP32"), ("int8", "INT8"))


def cmd_table(args):
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8")  # the × sign, whatever the locale
    try:
        with open(args.file, encoding="utf-8") as f:
            report = json.load(f)
    except (OSError, ValueError) as e:
        die(f"cannot read report {args.file}: {e}")
    m = report.get("machine", {})
    parts = [f"machine: {m.get('cpu', '?')}, {m.get('nproc', '?')} CPUs"]
    if report.get("torch"):
        parts.append(f"PyTorch: torch {report['torch']}, sentence-transformers "
                     f"{report.get('sentence_transformers')}, {report.get('pytorch_threads')} threads")
    else:
        parts.append("PyTorch: not run")
    if report.get("ragmill"):
        parts.append(f"ragmill: {report['ragmill']}, kernels {report.get('kernels') or '?'}, "
                     f"{report.get('ragmill_threads')} threads")
    else:
        parts.append("ragmill: not run")
    parts.append(f"{report.get('chunks')} chunks per run")
    print("; ".join(parts))
    print()

    header = ["batch", "tokens", "PyTorch chunks/s", "PyTorch tokens/s"]
    for _, label in TABLE_PRECISIONS:
        header += [f"ragmill {label} chunks/s", "tokens/s", "×PyTorch"]
    body = []
    for r in report["rows"]:
        pt = r.get("pytorch") or {}
        cells = [str(r["batch"]), str(r["tokens"]),
                 fmt(pt.get("chunks_per_s"), ",.1f"), fmt(pt.get("tokens_per_s"), ",.0f")]
        rm = r.get("ragmill") or {}
        for key, _ in TABLE_PRECISIONS:
            c = rm.get(key) or {}
            cells += [fmt(c.get("chunks_per_s"), ",.1f"), fmt(c.get("tokens_per_s"), ",.0f"),
                      fmt_ratio(c.get("ratio_vs_pytorch"))]
        body.append(cells)
    widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
    for cells in body:
        print("| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths)) + " |")
    print()
    print("×PyTorch = ragmill chunks/s ÷ sentence-transformers (PyTorch FP32) chunks/s on the same "
          "texts (above 1×: ragmill is faster); each run after one untimed warm-up batch.")


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
