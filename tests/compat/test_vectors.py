"""Whole-response comparisons, as data: each file under tests/compat/vectors/<service>/ is one call
and the response AWS documents for it (see vectors/README.md). The whole parsed response is
compared (every member, nothing extra), not a few fields.

Adding a case is adding one file.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from support import make_client, random_account_id, random_key_id, random_secret, unique

VECTORS = Path(__file__).parent / "vectors"
FILES = sorted(VECTORS.glob("*/*.json"))

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def substitute(value, names: dict, account: str, region: str, saved: dict | None = None):
    """`{{name:X}}` → a unique name (the same one for X throughout the file), `{{account}}`,
    `{{region}}`, `{{saved:X}}` → what a setup step saved as X. A string that is one `{{saved:X}}`
    placeholder alone becomes the saved value itself (bytes stay bytes)."""
    saved = saved if saved is not None else {}
    if isinstance(value, str):
        whole = re.fullmatch(r"\{\{saved:([^}]+)\}\}", value)
        if whole:
            return saved[whole.group(1)]

        def one(m):
            kind, _, arg = m.group(1).partition(":")
            if kind == "name":
                return names.setdefault(arg, unique(arg[:8] or "v"))
            if kind == "account":
                return account
            if kind == "region":
                return region
            if kind == "saved":
                return str(saved[arg])
            raise ValueError(f"unknown placeholder {m.group(0)}")
        return re.sub(r"\{\{([^}]+)\}\}", one, value)
    if isinstance(value, list):
        return [substitute(v, names, account, region, saved) for v in value]
    if isinstance(value, dict):
        return {substitute(k, names, account, region, saved): substitute(v, names, account, region, saved)
                for k, v in value.items()}
    return value


def dig(resp, path: str):
    """`KeyMetadata.KeyId`, `Versions.0.VersionId`: a value in a parsed response."""
    for part in path.split("."):
        resp = resp[int(part)] if isinstance(resp, list) else resp[part]
    return resp


def matches(expected, actual, path: str = "$") -> list[str]:
    """Differences between an expected response (with markers) and the parsed actual one.

    Markers: `<<any>>` any value; `<<uuid>>`; `<<timestamp>>` a parsed time; `<<id:PREFIX>>` an
    AWS unique ID (PREFIX + 17 upper-case letters/digits); `<<regex:…>>`; `<<b64>>` bytes."""
    if isinstance(expected, str) and expected.startswith("<<") and expected.endswith(">>"):
        marker = expected[2:-2]
        ok = {
            "any": lambda a: True,
            "uuid": lambda a: isinstance(a, str) and bool(UUID.match(a)),
            "timestamp": lambda a: isinstance(a, dt.datetime),
            "b64": lambda a: isinstance(a, (bytes, bytearray)),
        }.get(marker)
        if ok is None and marker.startswith("id:"):
            prefix = marker[3:]
            ok = lambda a: isinstance(a, str) and bool(re.fullmatch(re.escape(prefix) + r"[A-Z0-9]{17}", a))  # noqa: E731
        if ok is None and marker.startswith("regex:"):
            ok = lambda a: isinstance(a, str) and bool(re.fullmatch(marker[6:], a))  # noqa: E731
        if ok is None:
            return [f"{path}: unknown marker {expected}"]
        return [] if ok(actual) else [f"{path}: {actual!r} is not {expected}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r}"]
        diffs = []
        for k in expected.keys() - actual.keys():
            diffs.append(f"{path}.{k}: missing")
        for k in actual.keys() - expected.keys():
            diffs.append(f"{path}.{k}: not in AWS's response ({actual[k]!r})")
        for k in expected.keys() & actual.keys():
            diffs += matches(expected[k], actual[k], f"{path}.{k}")
        return diffs
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: expected {len(expected)} items, got {actual!r}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual)) for d in matches(e, a, f"{path}[{i}]")]
    return [] if expected == actual else [f"{path}: expected {expected!r}, got {actual!r}"]


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_response_matches_aws(request, path):
    case = json.loads(path.read_text())
    server = request.getfixturevalue("server")
    if case.get("server") == "fresh":
        # A server of its own, under --dev: for account-wide state (a feature switched on for the
        # whole account) and Organizations (an account is in one organization only), so no other
        # vector's order or worker decides what it sees. `"caller": "222222222222"` signs a call
        # or step as the root of that account.
        server = request.getfixturevalue("spawn_server")(
            data_dir=None, extra_args=["--dev"], account_id=random_account_id(),
            access_key_id=random_key_id(), secret_access_key=random_secret())
    account_id = server.account_id
    names: dict = {}
    saved: dict = {}

    def creds(who: str | None) -> tuple[str, str]:
        return (who, "test") if who else (server.access_key_id, server.secret_access_key)

    sub = lambda v: substitute(v, names, account_id, "us-east-1", saved)  # noqa: E731
    # The call itself skips boto3's own parameter checks, so a vector can show AWS's answer to a
    # value the SDK would refuse before sending (e.g. NumberOfBytes=0).
    client = make_client(case["service"], server.endpoint, *creds(case.get("caller")), parameter_validation=False)
    for step in case.get("setup", []):
        c = make_client(step.get("service", case["service"]), server.endpoint, *creds(step.get("caller")))
        out = getattr(c, _snake(step["operation"]))(**sub(step.get("params", {})))
        for name, where in step.get("save", {}).items():
            saved[name] = dig(out, where)
    call = getattr(client, _snake(case["operation"]))
    if "error" in case:
        with pytest.raises(ClientError) as e:
            call(**sub(case.get("params", {})))
        err = e.value.response
        actual = {"Code": err["Error"]["Code"], "Message": err["Error"].get("Message"),
                  "HTTPStatusCode": err["ResponseMetadata"]["HTTPStatusCode"]}
        expected = sub(case["error"])
        if "Members" in expected:
            # The error's other parsed members (e.g. KMS's `message`), every one compared.
            actual["Members"] = {k: v for k, v in err.items() if k not in ("Error", "ResponseMetadata")}
        diffs = matches(expected, actual)
    else:
        resp = call(**sub(case.get("params", {})))
        resp.pop("ResponseMetadata", None)
        diffs = matches(sub(case["expect"]), resp)
    assert not diffs, f"{path.name} ({case.get('source', 'no source')}):\n  " + "\n  ".join(diffs)


def _snake(op: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", op).lower()


def test_markers_and_placeholders():
    """The comparison itself: extra members fail, markers match what they say."""
    assert matches({"a": 1}, {"a": 1, "b": 2}) == ["$.b: not in AWS's response (2)"]
    assert matches({"a": "<<uuid>>"}, {"a": "3f8a9c2e-5b1d-4e6f-9a7b-0c1d2e3f4a5b"}) == []
    assert matches({"a": "<<id:AIDA>>"}, {"a": "AIDAZ2ABCDEFGHIJKLMNO"}) == []
    assert matches({"a": "<<id:AIDA>>"}, {"a": "AROAZ2ABCDEFGHIJKLMNO"}) != []
    assert matches({"t": "<<timestamp>>"}, {"t": dt.datetime.now()}) == []
    assert matches([1, 2], [1]) != []
    names: dict = {}
    out = substitute({"u": "{{name:u}}", "arn": "arn:aws:iam::{{account}}:user/{{name:u}}"}, names, "123", "r")
    assert out["arn"] == f"arn:aws:iam::123:user/{out['u']}"
    saved = {"key": "1234abcd-12ab-34cd-56ef-1234567890ab", "blob": b"\x01\x02"}
    out = substitute({"k": "{{saved:key}}", "arn": "arn:aws:kms:r:{{account}}:key/{{saved:key}}", "b": "{{saved:blob}}"},
                     names, "123", "r", saved)
    assert out == {"k": saved["key"], "arn": f"arn:aws:kms:r:123:key/{saved['key']}", "b": b"\x01\x02"}
    assert dig({"KeyMetadata": {"KeyId": "x"}, "L": [{"a": 1}]}, "KeyMetadata.KeyId") == "x"
    assert dig({"L": [{"a": 1}]}, "L.0.a") == 1
