#!/usr/bin/env python3
"""Builds a synthetic BEIR-format retrieval set from Python standard-library docstrings.

Task: each query is the one-paragraph summary at the top of a docstring (of a public function,
class or method of a fixed list of standard-library modules); its single relevant document is
the rest of that same docstring. Titles are left empty, so the qualified name cannot give the
answer away. The set is meant for comparing embedders (e.g. FP32 against INT8) with
`ragmill eval --beir DIR` on this machine; it is not a published BEIR dataset.

Writes, into OUT (default bench/data/pydoc-beir/ under the repository root):

  corpus.jsonl      {"_id": "d0001", "title": "", "text": "..."}
  queries.jsonl     {"_id": "q0001", "text": "..."}
  qrels/test.tsv    header "query-id<TAB>corpus-id<TAB>score", then "q0001<TAB>d0042<TAB>1"

The output depends only on the Python that runs it (its docstrings) and the options: modules are
walked in the fixed order of MODULES and their members in sorted order; duplicates and near-copies
are dropped keeping the first; the documents are then put in an order given by a SHA-256 of their
qualified names (so that --max-docs and the query subset take an even sample across modules). No
randomness, no network: the same Python gives byte-identical files on every run. A README.md
describing the set (counts, Python version, a BM25 reference figure) is written into OUT too.

Usage:  python3 scripts/make-eval-set.py [--out DIR] [--max-docs N] [--query-every K]
"""

import argparse
import hashlib
import importlib
import inspect
import json
import math
import pathlib
import platform
import re
import sys
import textwrap
import warnings
from collections import Counter

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "data" / "pydoc-beir"

# Modules walked, in this order. A module that does not import is skipped (and reported).
# For the modules in CLASSES_OFF only module-level functions are taken (asyncio has hundreds of
# near-identical class and method docstrings that would swamp the set).
MODULES = [
    "os", "os.path", "shutil", "json", "re", "itertools", "functools", "collections",
    "pathlib", "subprocess", "datetime", "string", "textwrap", "statistics", "random", "math",
    "heapq", "bisect", "urllib.parse", "http.client", "email", "email.message", "email.utils",
    "csv", "sqlite3", "logging", "argparse", "unittest", "threading", "asyncio", "zipfile",
    "tarfile", "gzip", "hashlib", "hmac", "secrets", "socket", "ssl", "tempfile", "glob",
    "fnmatch", "difflib", "inspect", "typing", "enum", "dataclasses", "contextlib", "copy",
    "pickle", "struct", "codecs", "unicodedata", "locale", "calendar", "time", "uuid", "base64",
    "binascii", "xml.etree.ElementTree", "html", "configparser", "getpass", "platform", "sys",
    "io", "operator", "decimal", "fractions", "array", "queue", "sched", "selectors", "signal",
    "weakref", "abc", "traceback", "warnings", "zlib", "bz2", "lzma", "shlex", "pprint",
    "ipaddress", "mimetypes", "filecmp", "fileinput", "imaplib", "smtplib", "ftplib", "pdb",
    "timeit", "tokenize", "ast", "dis", "importlib", "pkgutil", "multiprocessing",
    "concurrent.futures", "http.server", "http.cookies", "urllib.request", "xml.dom.minidom",
    "plistlib", "netrc", "stat", "shelve", "dbm", "numbers", "graphlib", "zoneinfo",
    "builtins", "unittest.mock", "email.header", "email.charset", "email.parser",
    "email.generator", "email.policy", "email.headerregistry", "logging.handlers",
    "logging.config", "xml.sax", "xml.sax.saxutils", "xml.sax.handler", "xml.sax.xmlreader",
    "doctest", "optparse", "cmd", "code", "trace", "profile", "cProfile", "pstats",
    "socketserver", "xmlrpc.client", "xmlrpc.server", "wsgiref.handlers", "wsgiref.headers",
    "wsgiref.util", "http.cookiejar", "collections.abc", "importlib.abc", "importlib.machinery",
    "importlib.util", "importlib.resources", "importlib.metadata", "ctypes", "runpy", "site",
    "sysconfig", "symtable", "linecache", "quopri", "poplib", "webbrowser", "tkinter", "turtle",
    "curses", "readline", "rlcompleter", "venv", "zipapp", "zipimport", "compileall",
    "py_compile", "modulefinder", "wave", "multiprocessing.managers",
    "multiprocessing.shared_memory", "contextvars", "atexit", "gc",
]
CLASSES_OFF = {"asyncio"}

MIN_SUMMARY_WORDS = 4
MAX_SUMMARY_WORDS = 40      # a longer first paragraph is cut to its first sentence
MIN_BODY_WORDS = 25
MAX_BODY_WORDS = 300
NEAR_DUPLICATE = 0.8        # word-set Jaccard similarity at which a body counts as a near-copy

# Old-style C docstrings start with signature lines: "name(args) -> result", "name(args) --> x",
# sometimes wrapped over several lines; a few put the summary after the arrow.
SIGNATURE_START = re.compile(r"[\w.]+\(")
ARROW = re.compile(r"(-{1,2}|=)>\s*")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`'\"])")
# A summary still shaped like a signature or a grammar rule after stripping is not a usable query:
# "islice(iterable, stop) --> ...", "uri [,options] -> ...", "csv_reader = reader(...)",
# "m=None, name=None, ...".
SIGNATURE_LIKE = re.compile(
    r"^[\w.]+\(|-->|=>|^[a-z_][\w.]*( ?\[[^\]]*\])* ?->|^[\w.]+ = |^\w+=")
# "waitid_result: Result from waitid." (struct sequences): drop the type-name prefix.
STRUCT_PREFIX = re.compile(r"^[a-z][a-z0-9]*_[a-z0-9_]*: ")


def words(s):
    return s.split()


def normalise(s):
    return " ".join(s.split())


def strip_signatures(lines):
    """Drops leading blank and signature lines (a signature may wrap over up to 4 lines). When a
    signature line carries the summary after its arrow ("zip(...) --> Yield tuples ..."), the
    summary is kept."""
    while lines:
        first = lines[0].strip()
        if not first:
            lines.pop(0)
            continue
        if not SIGNATURE_START.match(first):
            break
        text, used = first, 1
        while text.count("(") > text.count(")") and used < min(len(lines), 4):
            text += " " + lines[used].strip()
            used += 1
        depth, end = 0, None
        for i, ch in enumerate(text):
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    end = i
                    break
        if end is None:
            break
        rest = text[end + 1:].strip()
        arrow = ARROW.match(rest)
        if rest and not arrow:
            break
        del lines[:used]
        after = rest[arrow.end():] if arrow else ""
        if after[:1].isupper() and after.endswith("."):
            lines.insert(0, after)
            break
    return lines


def split_docstring(doc):
    """Returns (summary, body) of a docstring, or None when it has no usable summary."""
    lines = strip_signatures(inspect.cleandoc(doc).splitlines())
    paragraphs, current = [], []
    for line in lines:
        if line.strip():
            current.append(line)
        elif current:
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)
    if not paragraphs:
        return None
    summary = STRUCT_PREFIX.sub("", normalise(" ".join(paragraphs[0])))
    body = normalise(" ".join(" ".join(p) for p in paragraphs[1:]))
    if len(words(summary)) > MAX_SUMMARY_WORDS:
        summary = SENTENCE_END.split(summary, maxsplit=1)[0]
        if len(words(summary)) > MAX_SUMMARY_WORDS:
            return None
    if SIGNATURE_LIKE.search(summary):
        return None
    return summary, body


def cap_words(s, n):
    w = words(s)
    return s if len(w) <= n else " ".join(w[:n])


def module_public_names(mod):
    """Sorted public names of a module: its __all__ when it has one, else the public names whose
    objects were defined in it (or in its private C accelerator, e.g. _heapq for heapq)."""
    explicit = getattr(mod, "__all__", None)
    if explicit is not None:
        return sorted({n for n in explicit if isinstance(n, str) and not n.startswith("_")}), True
    return sorted(n for n in dir(mod) if not n.startswith("_")), False


def defined_here(obj, mod):
    origin = getattr(obj, "__module__", None)
    if not isinstance(origin, str):
        return False
    name = mod.__name__
    last = name.rsplit(".", 1)[-1]
    return (origin == name or origin.startswith(name + ".") or origin == "_" + last
            or origin.startswith("_"))


def is_method_like(obj):
    return inspect.isroutine(obj) or isinstance(obj, (classmethod, staticmethod))


def walk(modules, report):
    """Yields (qualified name, object) for every candidate, in a fixed order."""
    seen_ids = set()
    keep_alive = []  # ids are only unique while the objects live

    def fresh(obj):
        if id(obj) in seen_ids:
            return False
        seen_ids.add(id(obj))
        keep_alive.append(obj)
        return True

    for modname in modules:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mod = importlib.import_module(modname)
        except Exception as e:  # noqa: BLE001  (any import failure just skips the module)
            report.append(f"skipped {modname}: {type(e).__name__}: {e}")
            continue
        names, from_all = module_public_names(mod)
        for name in names:
            try:
                obj = getattr(mod, name)
            except AttributeError:
                continue
            is_class = inspect.isclass(obj)
            if not (is_class or inspect.isroutine(obj)):
                continue
            if not from_all and not defined_here(obj, mod):
                continue
            if is_class and modname in CLASSES_OFF:
                continue
            if not fresh(obj):
                continue
            yield f"{modname}.{name}", obj
            if not is_class:
                continue
            for member in sorted(vars(obj)):
                if member.startswith("_"):
                    continue
                raw = vars(obj)[member]
                if not is_method_like(raw):
                    continue
                try:
                    bound = getattr(obj, member)
                except AttributeError:
                    continue
                key = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
                if not fresh(key):
                    continue
                yield f"{modname}.{name}.{member}", bound


def order_key(qualname):
    return hashlib.sha256(qualname.encode("utf-8")).hexdigest()


def build(max_docs, query_every, report):
    candidates = []
    seen_summaries, seen_bodies = set(), set()
    kept_sets = []
    stats = {"objects": 0, "no_doc": 0, "short_summary": 0, "short_body": 0,
             "summary_in_body": 0, "dup_summary": 0, "dup_body": 0, "near_dup_body": 0}
    for qualname, obj in walk(MODULES, report):
        stats["objects"] += 1
        doc = getattr(obj, "__doc__", None)
        if not isinstance(doc, str) or not doc.strip():
            stats["no_doc"] += 1
            continue
        parts = split_docstring(doc)
        if parts is None or len(words(parts[0])) < MIN_SUMMARY_WORDS:
            stats["short_summary"] += 1
            continue
        summary, body = parts
        if len(words(body)) < MIN_BODY_WORDS:
            stats["short_body"] += 1
            continue
        body = cap_words(body, MAX_BODY_WORDS)
        # Compare case- and punctuation-insensitively so trivially re-worded copies count too.
        skey = re.sub(r"\W+", " ", summary.lower()).strip()
        bkey = re.sub(r"\W+", " ", body.lower()).strip()
        # A body that repeats its own summary word for word would make the query trivial.
        if f" {skey} " in f" {bkey} ":
            stats["summary_in_body"] += 1
            continue
        if skey in seen_summaries:
            stats["dup_summary"] += 1
            continue
        if bkey in seen_bodies:
            stats["dup_body"] += 1
            continue
        # Near-copies (json.dump / json.dumps, bytes / bytearray methods, ...) would make the
        # judgement a coin toss between two documents that both answer the query.
        bset = frozenset(bkey.split())
        if any(len(bset & other) >= NEAR_DUPLICATE * len(bset | other) for other in kept_sets):
            stats["near_dup_body"] += 1
            continue
        seen_summaries.add(skey)
        seen_bodies.add(bkey)
        kept_sets.append(bset)
        candidates.append((qualname, summary, body))

    candidates.sort(key=lambda c: order_key(c[0]))
    if max_docs is not None:
        candidates = candidates[:max_docs]
    width = max(4, len(str(len(candidates))))
    corpus, queries, qrels, names = [], [], [], []
    for i, (qualname, summary, body) in enumerate(candidates):
        did = f"d{i + 1:0{width}d}"
        corpus.append({"_id": did, "title": "", "text": body})
        names.append((did, qualname))
        if i % query_every == 0:
            qid = f"q{len(queries) + 1:0{width}d}"
            queries.append({"_id": qid, "text": summary})
            qrels.append((qid, did))
    return corpus, queries, qrels, names, stats


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


README = """\
# pydoc-beir

A synthetic retrieval test set in the [BEIR](https://github.com/beir-cellar/beir) layout, made
from the docstrings of the Python standard library, for comparing embedders (for example an FP32
model against its INT8 quantisation) with `ragmill eval --beir bench/data/pydoc-beir` on this
project's own machine. It is **not** a published BEIR dataset, and its figures are not
comparable with any published results.

## Task

Docstring summary → docstring body. For each public function, class and method (of a fixed list
of {n_modules} standard-library modules, walked in list order, names sorted within each) whose
docstring has a first paragraph of at least {min_summary} words and at least {min_body} words after
it:

- the **document** is everything after the first paragraph, whitespace-normalised and cut to at
  most {max_body} words, with an empty title (the qualified name would give the answer away);
- the **query** is the first paragraph (the summary), cut to its first sentence when longer
  than {max_summary} words. Old-style `name(args) -> result` signature lines are dropped first,
  and an object whose summary is still shaped like a signature is skipped.

Each query has exactly one relevant document (score 1): the body of its own docstring. Objects
whose summary or body duplicates an earlier one (ignoring case and punctuation), or whose body
is a near-copy of an earlier one (Jaccard similarity of their lower-cased word sets at least
{near}, e.g. `json.dump` and `json.dumps`), are dropped entirely, so each query has one clear
answer.

{query_subset}

It is harder than `beir-mini`: the corpus holds many near neighbours whose bodies share
vocabulary (the `turtle` and `tkinter` methods, the `os` functions, `inspect`, `typing`, the
`unittest` assertions, the compression and codec modules, …), and a summary is often a short
paraphrase of its body rather than a copy of it (an object whose body repeats its summary word
for word is dropped). The documents come from {n_source_modules} modules; the largest shares:
{top_modules}.

For reference, a plain BM25 (k1 = 1.2, b = 0.75, lower-cased `\\w+` tokens, computed by the
script) scores **nDCG@10 = {bm25_ndcg:.4f}, MRR@10 = {bm25_mrr:.4f},
recall@100 = {bm25_recall:.4f}**.

## Counts

- documents: {n_docs} (`corpus.jsonl`, {corpus_bytes} bytes)
- queries: {n_queries} (`queries.jsonl`, {queries_bytes} bytes)
- judgements: {n_qrels} (`qrels/test.tsv`, split `test`)
- median words: query {q_median}, document {d_median}

## How it was made

```
{command}
```

with {python} ({impl}) on {system}. The script uses the standard library only and is
deterministic: running it again with the same Python gives byte-identical files. A different
Python version has different docstrings, and a build without Tk or curses skips `tkinter`,
`turtle` or `curses`, so either gives a different set: compare embedders only on figures made
from the same files.

{skipped}

## Licence

The text is taken from the docstrings of CPython {python_short}, © Python Software Foundation,
under the [PSF License Agreement](https://docs.python.org/3/license.html).
"""


def bm25_baseline(corpus, queries, qrels, k1=1.2, b=0.75):
    """nDCG@10, MRR@10 and recall@100 of a plain BM25 on the set, as a lexical reference figure.
    Ties rank by document id descending, as trec_eval (and ragmill-eval) break them."""
    tokenize = lambda s: re.findall(r"\w+", s.lower())  # noqa: E731
    docs = [tokenize(d["text"]) for d in corpus]
    n = len(docs)
    avg = sum(map(len, docs)) / n
    df = Counter(t for d in docs for t in set(d))
    idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
    postings = {}
    for i, d in enumerate(docs):
        norm = k1 * (1 - b + b * len(d) / avg)
        for t, f in sorted(Counter(d).items()):
            postings.setdefault(t, []).append((i, idf[t] * f * (k1 + 1) / (f + norm)))
    relevant = dict(qrels)
    ndcg = mrr = recall = 0.0
    for q in queries:
        scores = [0.0] * n
        for t in tokenize(q["text"]):
            for i, w in postings.get(t, ()):
                scores[i] += w
        ranked = sorted(range(n), key=lambda i: (scores[i], corpus[i]["_id"]), reverse=True)
        rank = next(r for r, i in enumerate(ranked, 1) if corpus[i]["_id"] == relevant[q["_id"]])
        if rank <= 10:
            ndcg += 1 / math.log2(rank + 1)
            mrr += 1 / rank
        recall += rank <= 100
    m = len(queries)
    return ndcg / m, mrr / m, recall / m


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT,
                    help=f"output directory (default {DEFAULT_OUT.relative_to(ROOT)})")
    ap.add_argument("--max-docs", type=int, default=None,
                    help="keep at most N documents (default: all)")
    ap.add_argument("--query-every", type=int, default=2,
                    help="give every K-th document a query (default 2)")
    args = ap.parse_args()
    if args.max_docs is not None and args.max_docs < 1:
        ap.error("--max-docs must be at least 1")
    if args.query_every < 1:
        ap.error("--query-every must be at least 1")

    report = []
    corpus, queries, qrels, names, stats = build(args.max_docs, args.query_every, report)

    out = args.out
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "corpus.jsonl", corpus)
    write_jsonl(out / "queries.jsonl", queries)
    with open(out / "qrels" / "test.tsv", "w", encoding="utf-8", newline="\n") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for qid, did in qrels:
            f.write(f"{qid}\t{did}\t1\n")

    command = "python3 scripts/make-eval-set.py"
    try:
        rel = out.resolve().relative_to(ROOT)
        if rel != DEFAULT_OUT.relative_to(ROOT):
            command += f" --out {rel}"
    except ValueError:
        command += f" --out {out}"
    if args.max_docs is not None:
        command += f" --max-docs {args.max_docs}"
    if args.query_every != 2:
        command += f" --query-every {args.query_every}"
    skipped = [r for r in report if r.startswith("skipped")]
    per_module = Counter(max((m for m in MODULES if q.startswith(m + ".")), key=len)
                         for _, q in names)
    top = sorted(per_module.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    bm25_ndcg, bm25_mrr, bm25_recall = bm25_baseline(corpus, queries, qrels)
    ordinal = {2: "second", 3: "third"}.get(args.query_every, f"{args.query_every}th")
    query_subset = ("Every document has a query." if args.query_every == 1 else
                    f"Every document is in the corpus, but only every {ordinal} one (in corpus "
                    "order) has a query, to keep evaluation time down; the others are "
                    "distractors.")
    query_subset += (" The corpus is ordered by a SHA-256 of each object's qualified name, so the "
                     "queries (and --max-docs) sample evenly across modules.")
    (out / "README.md").write_text(README.format(
        n_modules=len(MODULES) - len(skipped),
        min_summary=MIN_SUMMARY_WORDS, min_body=MIN_BODY_WORDS, max_body=MAX_BODY_WORDS,
        max_summary=MAX_SUMMARY_WORDS, near=NEAR_DUPLICATE,
        query_subset=textwrap.fill(query_subset, 96),
        n_source_modules=len(per_module),
        top_modules=textwrap.fill(", ".join(f"`{m}` {c}" for m, c in top), 96),
        bm25_ndcg=bm25_ndcg, bm25_mrr=bm25_mrr, bm25_recall=bm25_recall,
        n_docs=len(corpus), n_queries=len(queries), n_qrels=len(qrels),
        corpus_bytes=(out / "corpus.jsonl").stat().st_size,
        queries_bytes=(out / "queries.jsonl").stat().st_size,
        q_median=median([len(words(q["text"])) for q in queries]),
        d_median=median([len(words(d["text"])) for d in corpus]),
        command=command,
        python=f"Python {platform.python_version()}",
        python_short=platform.python_version(),
        impl=platform.python_implementation(),
        system=f"{platform.system()} {platform.machine()}",
        skipped=("Modules that did not import and were skipped: "
                 + ", ".join(r.split(":")[0].removeprefix("skipped ") for r in skipped) + ".")
                if skipped else "Every listed module imported.",
    ), encoding="utf-8")

    for line in report:
        print(line, file=sys.stderr)
    print(f"walked {stats['objects']} objects: {stats['no_doc']} without a docstring, "
          f"{stats['short_summary']} with a short or signature-like summary, "
          f"{stats['short_body']} with a short body, "
          f"{stats['summary_in_body']} repeating the summary in the body, "
          f"{stats['dup_summary']} duplicate summaries, {stats['dup_body']} duplicate bodies, "
          f"{stats['near_dup_body']} near-duplicate bodies")
    print(f"wrote {out}: {len(corpus)} documents, {len(queries)} queries, {len(qrels)} judgements "
          f"(corpus.jsonl {(out / 'corpus.jsonl').stat().st_size} bytes)")
    print(f"BM25 reference: nDCG@10 {bm25_ndcg:.4f}  MRR@10 {bm25_mrr:.4f}  "
          f"recall@100 {bm25_recall:.4f}")


if __name__ == "__main__":
    main()
