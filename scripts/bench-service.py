#!/usr/bin/env python3
"""Benchmarks `ragmill serve` end to end over HTTP (Python standard library only).

1. The origin plan's case: one document of about 175 chunks, uploaded over HTTP; seconds from
   the request to the document being ready (the plan's figures: 360 s sequential, ~70 s batched).
2. Concurrency: U users upload D documents each at the same moment; documents per minute,
   chunks per second, and the time until each user's first document is ready.

Every document is distinct generated prose, so the embedding cache does not flatter the
figures. Readiness is polled every 50 ms (the figures are seconds; the polling costs nothing).

Usage: scripts/bench-service.py [--bin target/release/ragmill] [--users 5] [--docs 20]
                                [--chunks 175] [--json]
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

WORDS = (
    "the river valley harbour engine archive signal winter market lantern orchard copper "
    "garden library bridge mountain theory measure careful history people studied record "
    "question answer season weather journey distance pressure station network village "
    "museum painting science method result evidence sample pattern growth harvest storm "
    "coast island forest desert glacier volcano comet planet orbit light sound water stone"
).split()


def prose(seed, words):
    rng = random.Random(seed)
    out, sentence = [], []
    for _ in range(words):
        sentence.append(rng.choice(WORDS))
        if len(sentence) >= rng.randint(8, 18):
            out.append(" ".join(sentence).capitalize() + ".")
            sentence = []
            if rng.random() < 0.2:
                out.append("\n\n")
    return " ".join(out).encode()


def request(method, url, key, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    req.add_header("Authorization", "Bearer " + key)
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read() or b"null")


def upload(base, key, files):
    boundary = uuid.uuid4().hex
    parts = []
    for name, data in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return request("POST", base + "/v1/documents", key, body,
                   {"Content-Type": f"multipart/form-data; boundary={boundary}"})["documents"]


def wait_ready(base, key, doc_id, timeout=1800):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = request("GET", f"{base}/v1/documents/{doc_id}", key)
        if d["state"] in ("ready", "failed"):
            return d
        time.sleep(0.05)
    raise SystemExit(f"bench-service: document {doc_id} not ready after {timeout} s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/ragmill")
    ap.add_argument("--users", type=int, default=5)
    ap.add_argument("--docs", type=int, default=20)
    ap.add_argument("--chunks", type=int, default=175)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        sys.exit(f"bench-service: {a.bin} not found (cargo build --release -p ragmill)")

    data = tempfile.mkdtemp(prefix="ragmill-bench-")
    run = lambda *args: subprocess.run([a.bin, "--data-dir", data, *args], check=True,
                                       capture_output=True, text=True).stdout
    keys = [json.loads(run("users", "add", f"user{u}", "--json"))["api_key"] for u in range(a.users + 1)]
    server = subprocess.Popen([a.bin, "--data-dir", data, "serve", "--bind", "127.0.0.1:0"],
                              stdout=subprocess.PIPE, text=True)
    try:
        base = server.stdout.readline().split()[-1]
        report = {"machine": os.uname().machine, "cpus": os.cpu_count()}

        # 1. One document of about --chunks chunks (~224 new tokens per 256-token chunk with
        #    32 overlap; ~1.2 tokens per generated word, measured).
        words = int(a.chunks * 224 / 1.21)
        t0 = time.monotonic()
        doc = upload(base, keys[0], [("origin-plan-case.txt", prose(1, words))])[0]
        done = wait_ready(base, keys[0], doc["id"])
        big = {"chunks": done["chunks"], "seconds": round(time.monotonic() - t0, 2),
               "state": done["state"], "timings": done["timings"]}
        report["one_document"] = big

        # 2. U users x D documents at once (about 4 chunks each).
        firsts, totals, lock = {}, {"chunks": 0, "docs": 0}, threading.Lock()
        start = time.monotonic()

        def user_run(u):
            key = keys[u + 1]
            files = [(f"u{u}-doc{d:02}.txt", prose(1000 * (u + 1) + d, 700)) for d in range(a.docs)]
            ids = [x["id"] for x in upload(base, key, files)]
            pending = set(ids)
            while pending:
                listing = request("GET", base + "/v1/documents", key)["documents"]
                for d in listing:
                    if d["id"] in pending and d["state"] in ("ready", "failed"):
                        pending.discard(d["id"])
                        with lock:
                            totals["chunks"] += d["chunks"]
                            totals["docs"] += 1
                            firsts.setdefault(u, round(time.monotonic() - start, 2))
                time.sleep(0.05)

        threads = [threading.Thread(target=user_run, args=(u,)) for u in range(a.users)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - start
        report["concurrent"] = {
            "users": a.users, "documents": totals["docs"], "chunks": totals["chunks"],
            "seconds": round(wall, 2),
            "documents_per_minute": round(totals["docs"] / wall * 60, 1),
            "chunks_per_s": round(totals["chunks"] / wall, 1),
            "first_ready_s_by_user": [firsts.get(u) for u in range(a.users)],
        }
    finally:
        server.terminate()
        server.wait(timeout=60)

    if a.json:
        print(json.dumps(report))
        return
    b, c = report["one_document"], report["concurrent"]
    print(f"machine: {report['machine']}, {report['cpus']} CPUs")
    print(f"one document: {b['chunks']} chunks, request to ready in {b['seconds']} s "
          f"(origin plan: 360 s sequential, ~70 s batched)")
    print(f"{c['users']} users x {a.docs} documents at once: {c['documents']} documents, "
          f"{c['chunks']} chunks in {c['seconds']} s = {c['documents_per_minute']} documents/min, "
          f"{c['chunks_per_s']} chunks/s; first document ready per user (s): {c['first_ready_s_by_user']}")


if __name__ == "__main__":
    main()
