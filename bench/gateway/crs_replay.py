#!/usr/bin/env python3
"""Replays the OWASP CRS regression corpus (go-ftw YAML) through an HTTP endpoint and reports
detection (tests expecting a CRS rule to fire that the endpoint blocks) and false positives (tests
expecting no rule that the endpoint blocks).

"Blocked" means the response did not come from the upstream: the upstream marks its answers with
`x-upstream: 1`, so a WAF's 403, a proxy's 400 for a malformed request, or a dropped connection all
count as blocked, for every system measured alike.

Usage: crs_replay.py --target 127.0.0.1:8080 [--corpus DIR] [--sample K] [--json OUT] [--label NAME]
Requests are sent as raw bytes (many tests are deliberately malformed).
"""

import argparse
import base64
import collections
import concurrent.futures
import json
import os
import socket
import sys
import time

import yaml

DEFAULT_CORPUS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "corpora", "crs-regression")


def find_corpus(path):
    for p in [path, DEFAULT_CORPUS, "/work/shared/corpora/crs-regression"]:
        if p and os.path.isdir(os.path.join(p, "tests")):
            return os.path.abspath(p)
    return None


def build_request(inp):
    if inp.get("encoded_request"):
        return base64.b64decode(inp["encoded_request"].replace("\n", ""))
    if inp.get("raw_request"):
        return inp["raw_request"].encode("latin-1", "replace")
    method = str(inp.get("method", "GET"))
    uri = str(inp.get("uri", "/"))
    version = str(inp.get("version", "HTTP/1.1"))
    headers = inp.get("headers") or {}
    data = inp.get("data")
    if data is None:
        body = b""
    elif isinstance(data, list):
        body = "\r\n".join(str(x) for x in data).encode("utf-8", "surrogateescape")
    else:
        body = str(data).encode("utf-8", "surrogateescape")
    autocomplete = inp.get("autocomplete_headers", True)
    lines = [f"{method} {uri} {version}".encode("utf-8", "surrogateescape")]
    names = set()
    for k, v in headers.items():
        lines.append(f"{k}: {v}".encode("utf-8", "surrogateescape"))
        names.add(str(k).lower())
    if autocomplete:
        if body and "content-length" not in names and "transfer-encoding" not in names:
            lines.append(f"Content-Length: {len(body)}".encode())
        if "connection" not in names:
            lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def send(target, raw, timeout=5.0):
    """Returns (status or None, from_upstream)."""
    host, port = target.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            # No half-close: servers may take an early EOF as the client going away.
            s.sendall(raw)
            buf = b""
            while b"\r\n\r\n" not in buf and len(buf) < 65536:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
    except (OSError, socket.timeout):
        return None, False
    head = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    try:
        status = int(lines[0].split(" ")[1])
    except (IndexError, ValueError):
        return None, False
    upstream = any(l.lower().startswith("x-upstream:") for l in lines[1:])
    return status, upstream


def load_tests(corpus):
    tests = []
    root = os.path.join(corpus, "tests")
    for family in sorted(os.listdir(root)):
        fdir = os.path.join(root, family)
        # RESPONSE-* tests need a backend that answers with leaks; a request-side WAF cannot be judged on them.
        if not os.path.isdir(fdir) or family.startswith("RESPONSE-"):
            continue
        for name in sorted(os.listdir(fdir)):
            if not name.endswith(".yaml"):
                continue
            with open(os.path.join(fdir, name), "rb") as f:
                try:
                    doc = yaml.safe_load(f)
                except yaml.YAMLError:
                    continue
            if not isinstance(doc, dict):
                continue
            rule = doc.get("rule_id") or name[:-5]
            for t in doc.get("tests") or []:
                stages = t.get("stages") or []
                kind = None
                for st in stages:
                    st = st.get("stage", st)
                    out = (st.get("output") or {})
                    log = out.get("log") or {}
                    if log.get("expect_ids") or out.get("log_contains"):
                        kind = "attack"
                    elif kind is None and (log.get("no_expect_ids") or out.get("no_log_contains")):
                        kind = "benign"
                if kind is None:
                    continue
                reqs = []
                for st in stages:
                    st = st.get("stage", st)
                    try:
                        reqs.append(build_request(st.get("input") or {}))
                    except Exception:  # noqa: BLE001 - a test we cannot build is skipped, not fatal
                        reqs = []
                        break
                if reqs:
                    tests.append({"family": family, "rule": str(rule), "id": f"{rule}-{t.get('test_id')}", "kind": kind, "reqs": reqs})
    return tests


def run_one(target, t):
    blocked = False
    for raw in t["reqs"]:
        status, upstream = send(target, raw)
        if not upstream:
            blocked = True
    return blocked


def replay(target, tests, workers=8):
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as ex:
        results = list(ex.map(lambda t: run_one(target, t), tests))
    fam = collections.defaultdict(lambda: {"attack": 0, "detected": 0, "benign": 0, "false_positive": 0})
    missed, fps = [], []
    for t, b in zip(tests, results):
        f = fam[t["family"]]
        if t["kind"] == "attack":
            f["attack"] += 1
            f["detected"] += int(b)
            if not b:
                missed.append(t["id"])
        else:
            f["benign"] += 1
            f["false_positive"] += int(b)
            if b:
                fps.append(t["id"])
    total = {k: sum(v[k] for v in fam.values()) for k in ["attack", "detected", "benign", "false_positive"]}
    total["detection_rate"] = total["detected"] / total["attack"] if total["attack"] else 0.0
    total["false_positive_rate"] = total["false_positive"] / total["benign"] if total["benign"] else 0.0
    return {"total": total, "families": dict(fam), "missed": missed, "false_positives": fps}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--corpus")
    ap.add_argument("--sample", type=int, default=1, help="replay every K-th test")
    ap.add_argument("--json")
    ap.add_argument("--label", default="target")
    ap.add_argument("--workers", type=int, default=8)
    a = ap.parse_args()
    corpus = find_corpus(a.corpus)
    if not corpus:
        print("crs_replay: corpus not found", file=sys.stderr)
        return 2
    tests = load_tests(corpus)[:: max(1, a.sample)]
    t0 = time.time()
    res = replay(a.target, tests, a.workers)
    res["label"] = a.label
    res["seconds"] = round(time.time() - t0, 1)
    tot = res["total"]
    print(f"{a.label}: {len(tests)} tests in {res['seconds']} s")
    print(f"  detection: {tot['detected']}/{tot['attack']} = {tot['detection_rate']:.1%}")
    print(f"  false positives: {tot['false_positive']}/{tot['benign']} = {tot['false_positive_rate']:.1%}")
    for fam, v in sorted(res["families"].items()):
        det = f"{v['detected']}/{v['attack']}" if v["attack"] else "-"
        fp = f"{v['false_positive']}/{v['benign']}" if v["benign"] else "-"
        print(f"  {fam:48s} detected {det:>10s}   false positives {fp:>8s}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
