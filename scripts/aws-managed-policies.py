#!/usr/bin/env python3
"""Build crates/iam/data/aws-managed-policies.jsonl.zst: every AWS managed policy, as AWS publishes it.

Source: a checkout of https://github.com/z0ph/MAMIP, which records AWS's own answers every few hours:
`policies-list.json` is `aws iam list-policies --scope AWS` (name, ID, path, default version, create
and update dates) and `policies/<name>` is `aws iam get-policy-version` of the default version
(document and the version's create date). Only the policy data (AWS's) is taken from it.

    git clone --depth 1 https://github.com/z0ph/MAMIP /tmp/mamip
    python3 scripts/aws-managed-policies.py /tmp/mamip

One JSON object per line, ordered as ListPolicies orders them (lower-cased name, `|`, ARN):
  {"name", "path", "id", "version", "created", "updated", "version_created", "document"}
with times as epoch seconds and the document as compact JSON text. Compressed with the `zstd` tool.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "crates" / "iam" / "data" / "aws-managed-policies.jsonl.zst"


def epoch(text: str) -> int:
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mamip", type=Path, help="a checkout of github.com/z0ph/MAMIP")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    listing = json.loads((args.mamip / "policies-list.json").read_text())["Policies"]
    rows, problems = [], []
    for p in listing:
        name, path = p["PolicyName"], p["Path"]
        if p["Arn"] != f"arn:aws:iam::aws:policy{path}{name}":
            problems.append(f"{name}: ARN {p['Arn']} does not follow its path")
            continue
        f = args.mamip / "policies" / name
        if not f.exists():
            problems.append(f"{name}: no document in policies/")
            continue
        version = json.loads(f.read_text())["PolicyVersion"]
        if version["VersionId"] != p["DefaultVersionId"]:
            problems.append(f"{name}: document is {version['VersionId']}, the listing says {p['DefaultVersionId']}")
            continue
        rows.append({
            "name": name,
            "path": path,
            "id": p["PolicyId"],
            "version": p["DefaultVersionId"],
            "created": epoch(p["CreateDate"]),
            "updated": epoch(p["UpdateDate"]),
            "version_created": epoch(version["CreateDate"]),
            "document": json.dumps(version["Document"], separators=(",", ":"), ensure_ascii=False),
        })
    for line in problems:
        print("skipped:", line, file=sys.stderr)
    rows.sort(key=lambda r: f"{r['name'].lower()}|arn:aws:iam::aws:policy{r['path']}{r['name']}")
    text = "".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for r in rows).encode()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    packed = subprocess.run(["zstd", "-19", "-q", "-c"], input=text, capture_output=True, check=True).stdout
    args.out.write_bytes(packed)
    print(f"{len(rows)} policies, {len(text)} bytes of JSON lines, {len(packed)} compressed → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
