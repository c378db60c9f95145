#!/usr/bin/env python3
"""Build crates/iam/data/service-linked-roles.json: the role AWS creates for each service principal
(CreateServiceLinkedRole), with the source of every row.

Sources, strongest first:
1. recording — AWS's own answers, recorded against a real account by LocalStack's IAM suite
   (tests/aws/services/iam/test_iam.snapshot.json in github.com/localstack/localstack, Apache-2.0):
   per service, GetRole after CreateServiceLinkedRole (name, path, trust policy),
   ListAttachedRolePolicies (the service's managed policy), and whether CreateServiceLinkedRole
   with CustomSuffix succeeded or answered `InvalidInput: Custom suffix is not allowed for …`.
2. policy-document — AWS managed policies (crates/iam/data/aws-managed-policies.jsonl.zst, see
   scripts/aws-managed-policies.py) that grant iam:CreateServiceLinkedRole on an exact role ARN
   `arn:aws:iam::*:role/aws-service-role/<principal>/<RoleName>` (no wildcard). These give the
   name and path only: the attached policy and the CustomSuffix rule stay unknown.
3. unsourced — names Rampart's earlier hand-written table gave for principals neither source covers;
   kept so those calls behave as before, marked so a source can replace them.
A name two principals would share is kept for the recorded principal only (a role name is unique in
an account).

    git clone --depth 1 https://github.com/localstack/localstack /tmp/localstack
    python3 scripts/service-linked-roles.py /tmp/localstack/tests/aws/services/iam/test_iam.snapshot.json \\
        --commit "$(git -C /tmp/localstack rev-parse HEAD)"
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "crates" / "iam" / "data" / "aws-managed-policies.jsonl.zst"
OUT = ROOT / "crates" / "iam" / "data" / "service-linked-roles.json"
SNAPSHOT_URL = "https://github.com/localstack/localstack/blob/{}/tests/aws/services/iam/test_iam.snapshot.json"
EXACT = re.compile(r"^arn:aws:iam::\*:role/aws-service-role/([a-z0-9.-]+\.amazonaws\.com)/([\w+=,.@-]+)$")
UNSOURCED = {
    "access-analyzer.amazonaws.com": "AWSServiceRoleForAccessAnalyzer",
    "compute-optimizer.amazonaws.com": "AWSServiceRoleForComputeOptimizer",
    "custom-resource.application-autoscaling.amazonaws.com": "AWSServiceRoleForApplicationAutoScaling_CustomResource",
    "dax.amazonaws.com": "AWSServiceRoleForDAX",
    "ecs.application-autoscaling.amazonaws.com": "AWSServiceRoleForApplicationAutoScaling_ECSService",
    "es.amazonaws.com": "AWSServiceRoleForAmazonElasticsearchService",
    "fsx.amazonaws.com": "AWSServiceRoleForAmazonFSx",
    "globalaccelerator.amazonaws.com": "AWSServiceRoleForGlobalAccelerator",
    "guardduty.amazonaws.com": "AWSServiceRoleForAmazonGuardDuty",
    "inspector2.amazonaws.com": "AWSServiceRoleForAmazonInspector2",
    "lambda.application-autoscaling.amazonaws.com": "AWSServiceRoleForApplicationAutoScaling_LambdaConcurrency",
    "organizations.amazonaws.com": "AWSServiceRoleForOrganizations",
    "rds.application-autoscaling.amazonaws.com": "AWSServiceRoleForApplicationAutoScaling_RDSCluster",
    "replicator.lambda.amazonaws.com": "AWSServiceRoleForLambdaReplicator",
    "securityhub.amazonaws.com": "AWSServiceRoleForSecurityHub",
    "spotfleet.amazonaws.com": "AWSServiceRoleForEC2SpotFleet",
    "transitgateway.amazonaws.com": "AWSServiceRoleForVPCTransitGateway",
    "trustedadvisor.amazonaws.com": "AWSServiceRoleForTrustedAdvisor",
}
TEST = re.compile(r"::(test_service_role_lifecycle(?:_custom_suffix(?:_not_allowed)?)?)\[(.+)\]$")


def from_recording(path: Path, url: str) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    snap = json.loads(path.read_text())
    for key, entry in snap.items():
        m = TEST.search(key)
        if not m:
            continue
        test, service = m.groups()
        content = entry["recorded-content"]
        row = rows.setdefault(service, {"service": service, "suffix": "unknown"})
        source = f"{url} ({test}[{service}], recorded {entry.get('recorded-date', '?')})"
        if test == "test_service_role_lifecycle":
            role = content["describe-response"]["Role"]
            stmt = role["AssumeRolePolicyDocument"]["Statement"]
            assert role["Path"] == f"/aws-service-role/{service}/", key
            assert stmt == [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": service}}], key
            row["role"] = role["RoleName"]
            if role.get("Description"):
                row["description"] = role["Description"]
            row["policies"] = [p["PolicyArn"].replace("arn:<partition>:", "arn:aws:")
                               for p in content["attached-role-policies"]["AttachedPolicies"]]
            row["source"] = source
        elif test == "test_service_role_lifecycle_custom_suffix":
            row["suffix"] = "allowed"
        else:
            err = content["custom-suffix-not-allowed"]["Error"]
            assert (err["Code"], err["Message"]) == ("InvalidInput", f"Custom suffix is not allowed for {service}"), key
            row["suffix"] = "refused"
    return {s: r for s, r in rows.items() if "role" in r}


def from_documents() -> dict[str, dict]:
    text = subprocess.run(["zstd", "-dc", str(POLICIES)], capture_output=True, check=True).stdout.decode()
    found: dict[str, dict[str, list[str]]] = {}

    def walk(x, arn):
        if isinstance(x, dict):
            for v in x.values():
                walk(v, arn)
        elif isinstance(x, list):
            for v in x:
                walk(v, arn)
        elif isinstance(x, str) and (m := EXACT.match(x)):
            found.setdefault(m.group(1), {}).setdefault(m.group(2), []).append(arn)

    for line in text.splitlines():
        p = json.loads(line)
        walk(json.loads(p["document"]), f"arn:aws:iam::aws:policy{p['path']}{p['name']}")
    rows = {}
    for service, names in found.items():
        if len(names) != 1:
            print(f"skipped {service}: the documents name {sorted(names)}", file=sys.stderr)
            continue
        (role, arns), = names.items()
        rows[service] = {"service": service, "role": role, "policies": None, "suffix": "unknown",
                         "source": f"{sorted(arns)[0]} (grants iam:CreateServiceLinkedRole on this role)"}
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("snapshot", type=Path, help="localstack's tests/aws/services/iam/test_iam.snapshot.json")
    ap.add_argument("--commit", default="main", help="the localstack commit the snapshot is from")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    recorded = from_recording(args.snapshot, SNAPSHOT_URL.format(args.commit))
    documented = from_documents()
    rows = dict(recorded)
    for service, row in documented.items():
        if service in rows:
            if rows[service]["role"] != row["role"]:
                print(f"{service}: recorded {rows[service]['role']}, documents say {row['role']}", file=sys.stderr)
            continue
        rows[service] = row
    for service, role in UNSOURCED.items():
        if service in rows:
            print(f"{service}: now sourced; drop it from UNSOURCED", file=sys.stderr)
            continue
        rows[service] = {"service": service, "role": role, "policies": None, "suffix": "unknown",
                         "source": "unsourced: Rampart's earlier hand-written table"}
    owners: dict[str, list[str]] = {}
    for service, row in rows.items():
        owners.setdefault(row["role"], []).append(service)
    for role, services in owners.items():
        if len(services) > 1:
            keep = [s for s in services if s in recorded]
            if len(keep) != 1:
                print(f"conflict: {role} named for {services}", file=sys.stderr)
                return 1
            for s in services:
                if s not in keep:
                    print(f"dropped {s}: {role} is {keep[0]}'s role (recorded)", file=sys.stderr)
                    del rows[s]
    out = [rows[s] for s in sorted(rows)]
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    counts = {k: sum(1 for r in out if r["source"].startswith(prefix))
              for k, prefix in (("recorded", "https://"), ("from policy documents", "arn:"), ("unsourced", "unsourced"))}
    print(f"{len(out)} services ({', '.join(f'{n} {k}' for k, n in counts.items())}) → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
