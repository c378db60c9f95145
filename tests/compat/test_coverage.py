"""What Rampart covers of AWS's models: every advertised operation is one of botocore's (the pinned
version), every other operation of the model answers "not implemented", and docs/coverage.md
lists exactly what is missing. Regenerate the page after adding operations with
`RAMPART_WRITE_COVERAGE=1 .venv/bin/python -m pytest tests/compat/test_coverage.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import botocore
import botocore.loaders
import pytest
from botocore.exceptions import ClientError

from support import make_client, send

DOC = Path(__file__).resolve().parents[2] / "docs" / "coverage.md"


def render(ops: dict) -> str:
    lines = [
        "# Coverage of AWS's models",
        "",
        f"Operations of botocore {ops['botocore']}'s models that Rampart answers, per service (also in",
        "`GET /_rampart/health` as counts and `GET /_rampart/operations` as lists). Every other",
        "operation answers the protocol's unknown-operation error (`InvalidAction` for awsQuery,",
        "`UnknownOperationException` for JSON). Generated and checked by tests/compat/test_coverage.py.",
        "",
        "| service | implemented | in the model |",
        "|---|---:|---:|",
    ]
    services = ops["services"]
    for name, v in sorted(services.items()):
        lines.append(f"| {name} | {len(v['implemented'])} | {len(v['implemented']) + len(v['missing'])} |")
    for name, v in sorted(services.items()):
        lines += ["", f"## {name}: not implemented ({len(v['missing'])})", ""]
        lines.append(", ".join(f"`{op}`" for op in v["missing"]) if v["missing"] else "None.")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def operations(server):
    resp = send("GET", f"{server.endpoint}/_rampart/operations")
    assert resp.status == 200
    return json.loads(resp.body)


def test_advertised_operations_are_botocores_and_the_rest_are_listed_missing(operations):
    assert operations["botocore"] == botocore.__version__, "regenerate crates/service/src/model_operations.rs"
    loader = botocore.loaders.Loader()
    assert set(operations["services"]) == {"cloudtrail", "cloudtrail-data", "iam", "kms", "organizations", "secretsmanager", "sts"}
    for name, v in operations["services"].items():
        model = set(loader.load_service_model(name, "service-2")["operations"])
        implemented, missing = set(v["implemented"]), set(v["missing"])
        assert implemented <= model, f"{name} advertises operations AWS does not have: {implemented - model}"
        assert missing == model - implemented, name


def test_health_carries_the_same_counts(server, operations):
    health = json.loads(send("GET", f"{server.endpoint}/_rampart/health").body)
    for name, v in operations["services"].items():
        assert health["coverage"][name] == {
            "implemented": len(v["implemented"]),
            "inModel": len(v["implemented"]) + len(v["missing"]),
        }


def test_a_missing_operation_answers_not_implemented(server, operations):
    """Every operation the model has and Rampart lacks answers the protocol's own error: the first
    missing one of each JSON service and of each awsQuery service (none is skipped: while any service
    has a missing operation this checks it)."""
    checked = 0
    for name, v in sorted(operations["services"].items()):
        if not v["missing"] or name == "cloudtrail-data":
            continue
        client = make_client(name, server.endpoint, server.access_key_id, server.secret_access_key,
                             parameter_validation=False)
        with pytest.raises(ClientError) as e:
            client._make_api_call(v["missing"][0], {})
        code = e.value.response["Error"]["Code"]
        assert code in ("UnknownOperationException", "InvalidAction"), (name, e.value.response)
        checked += 1
    assert checked or all(not v["missing"] for v in operations["services"].values())


def test_docs_list_exactly_what_is_missing(operations):
    text = render(operations)
    if os.environ.get("RAMPART_WRITE_COVERAGE") == "1":
        DOC.write_text(text)
    assert DOC.read_text() == text, "docs/coverage.md is stale: rerun with RAMPART_WRITE_COVERAGE=1"
