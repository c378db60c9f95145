#!/usr/bin/env python3
"""Generate crates/trail/data/redaction.json: per event source and operation, the request and
response members an audit record may show (an ALLOW-list), from botocore's service models.

A member is shown only when the model names it in the operation's input (request) or output
(response), at any depth, and neither the member nor its shape (nor a list's or map's element) is
`"sensitive": true`. A member whose shape is a map is shown whole ("opaque": its keys are data,
e.g. KMS encryption contexts). Then CloudTrail's documented omissions on top (`CLOUDTRAIL`).

Run with any botocore (the compat venv's is the reference):
    .venv/bin/python scripts/trail-redaction-table.py > crates/trail/data/redaction.json
"""

import json
import sys

import botocore
import botocore.loaders

SERVICES = {
    "iam": "iam.amazonaws.com",
    "sts": "sts.amazonaws.com",
    "kms": "kms.amazonaws.com",
    "secretsmanager": "secretsmanager.amazonaws.com",
    "organizations": "organizations.amazonaws.com",
    "cloudtrail": "cloudtrail.amazonaws.com",
}

# What CloudTrail documents beyond the models' `sensitive` flags
# (https://docs.aws.amazon.com/kms/latest/developerguide/ct-sign.html, ct-verify.html,
# ct-generatemac.html, ct-verifymac.html): the message, signature and MAC are not recorded and
# `responseElements` is null.
CLOUDTRAIL = {
    ("kms.amazonaws.com", "Sign"): {"request_omit": ["message"], "response_all": True},
    ("kms.amazonaws.com", "Verify"): {"request_omit": ["message", "signature"], "response_all": True},
    ("kms.amazonaws.com", "GenerateMac"): {"request_omit": ["message"], "response_all": True},
    ("kms.amazonaws.com", "VerifyMac"): {"request_omit": ["message", "mac"], "response_all": True},
}


def lower_first(s: str) -> str:
    return s[:1].lower() + s[1:]


def sensitive(shapes: dict, name: str, seen=None) -> bool:
    """A shape is sensitive when flagged, or when its list element / map value is."""
    seen = seen or set()
    if name in seen:
        return False
    seen.add(name)
    s = shapes[name]
    if s.get("sensitive"):
        return True
    if s["type"] == "list":
        return sensitive(shapes, s["member"]["shape"], seen)
    if s["type"] == "map":
        return sensitive(shapes, s["value"]["shape"], seen) or sensitive(shapes, s["key"]["shape"], seen)
    return False


def walk(shapes: dict, name: str, allowed: set, opaque: set, secret: set, seen: set) -> None:
    if name in seen:
        return
    seen.add(name)
    s = shapes[name]
    if s["type"] == "list":
        walk(shapes, s["member"]["shape"], allowed, opaque, secret, seen)
    elif s["type"] == "structure":
        for member, ref in s.get("members", {}).items():
            names = {lower_first(member)}
            if "locationName" in ref:
                names.add(lower_first(ref["locationName"]))
            if ref.get("sensitive") or sensitive(shapes, ref["shape"]):
                secret.update(names)
                continue
            allowed.update(names)
            if shapes[ref["shape"]]["type"] == "map":
                opaque.update(names)
            else:
                walk(shapes, ref["shape"], allowed, opaque, secret, seen)


def part(shapes: dict, ref: dict | None, omit=(), drop_all=False) -> dict:
    if ref is None or drop_all:
        return {"allow": [], "opaque": []}
    allowed, opaque, secret = set(), set(), set(omit)
    walk(shapes, ref["shape"], allowed, opaque, secret, set())
    # A name secret anywhere in the operation is dropped everywhere in it.
    allowed -= {n for n in allowed if n.lower() in {s.lower() for s in secret}}
    opaque &= allowed
    return {"allow": sorted(allowed), "opaque": sorted(opaque)}


def main() -> None:
    loader = botocore.loaders.Loader()
    table = {"generator": "scripts/trail-redaction-table.py", "botocore": botocore.__version__, "sources": {}}
    for service, source in SERVICES.items():
        model = loader.load_service_model(service, "service-2")
        shapes = model["shapes"]
        ops = {}
        for op, spec in sorted(model["operations"].items()):
            extra = CLOUDTRAIL.get((source, op), {})
            ops[op] = {
                "request": part(shapes, spec.get("input"), extra.get("request_omit", ())),
                "response": part(shapes, spec.get("output"), drop_all=extra.get("response_all", False)),
            }
        table["sources"][source] = ops
    # One operation per line: reviewable diffs.
    out = ['{', f'  "generator": {json.dumps(table["generator"])},', f'  "botocore": {json.dumps(table["botocore"])},',
           '  "sources": {']
    sources = list(table["sources"].items())
    for i, (source, ops) in enumerate(sources):
        out.append(f'    {json.dumps(source)}: {{')
        items = list(ops.items())
        for j, (op, rule) in enumerate(items):
            comma = "," if j + 1 < len(items) else ""
            out.append(f'      {json.dumps(op)}: {json.dumps(rule, separators=(",", ":"))}{comma}')
        out.append("    }" + ("," if i + 1 < len(sources) else ""))
    out.append("  }")
    out.append("}")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
