"""The AWS managed policy catalogue: every policy AWS publishes, with AWS's documents.

The expected documents, IDs and versions below are AWS's (GetPolicy / GetPolicyVersion as recorded
by github.com/z0ph/MAMIP, the source of crates/iam/data/aws-managed-policies.jsonl.zst).
"""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError

AWS = "arn:aws:iam::aws:policy"

# name → (path, policy ID, default version, document)
NEWLY_PRESENT = {
    "AWSLambdaExecute": ("/", "ANPAJE5FX7FQZSU5XAKGO", "v1", {
        "Version": "2012-10-17",
        "Statement": [
            {"Action": ["logs:*"], "Resource": "arn:aws:logs:*:*:*", "Effect": "Allow"},
            {"Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::*", "Effect": "Allow"},
        ],
    }),
    "AWSSupportAccess": ("/", "ANPAJSNKQX2OW67GF4S7E", "v4", {
        "Version": "2012-10-17",
        "Statement": [{"Action": ["support:*", "support-console:*"], "Resource": "*", "Effect": "Allow"}],
    }),
    "AWSCloudShellFullAccess": ("/", "ANPAZKAPJZG4HEDUXFSA3", "v1", {
        "Version": "2012-10-17",
        "Statement": [{"Action": ["cloudshell:*"], "Resource": "*", "Effect": "Allow"}],
    }),
    "IAMUserSSHKeys": ("/", "ANPAJTSHUA4UXGXU7ANUA", "v1", {
        "Version": "2012-10-17",
        "Statement": [{
            "Action": ["iam:DeleteSSHPublicKey", "iam:GetSSHPublicKey", "iam:ListSSHPublicKeys",
                       "iam:UpdateSSHPublicKey", "iam:UploadSSHPublicKey"],
            "Resource": "arn:aws:iam::*:user/${aws:username}",
            "Effect": "Allow",
        }],
    }),
}


@pytest.mark.parametrize("name", sorted(NEWLY_PRESENT))
def test_get_policy_and_version_return_aws_documents(iam, name):
    path, policy_id, version, document = NEWLY_PRESENT[name]
    arn = f"{AWS}{path}{name}"
    p = iam.get_policy(PolicyArn=arn)["Policy"]
    assert (p["PolicyName"], p["PolicyId"], p["Arn"], p["Path"], p["DefaultVersionId"]) == (
        name, policy_id, arn, path, version)
    assert p["IsAttachable"] is True
    assert isinstance(p["CreateDate"], dt.datetime) and p["UpdateDate"] >= p["CreateDate"]
    v = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]
    assert v["Document"] == document
    assert v["VersionId"] == version and v["IsDefaultVersion"] is True
    listed = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert [x["VersionId"] for x in listed] == [version]


def test_service_linked_role_policies_live_under_their_path(iam):
    p = iam.get_policy(PolicyArn=f"{AWS}/aws-service-role/CertificateManagerServiceRolePolicy")["Policy"]
    assert p["Path"] == "/aws-service-role/"


def test_unknown_aws_policy_is_not_found(iam):
    with pytest.raises(ClientError) as e:
        iam.get_policy(PolicyArn=f"{AWS}/NoSuchPolicyAtAll")
    assert e.value.response["Error"]["Code"] == "NoSuchEntity"


def test_list_policies_scope_aws_pages_through_the_whole_catalogue(iam):
    pages = list(iam.get_paginator("list_policies").paginate(Scope="AWS", PaginationConfig={"PageSize": 100}))
    assert all(len(pg["Policies"]) == 100 for pg in pages[:-1])
    assert pages[-1]["IsTruncated"] is False and all(pg["IsTruncated"] for pg in pages[:-1])
    policies = [p for pg in pages for p in pg["Policies"]]
    arns = [p["Arn"] for p in policies]
    assert len(arns) > 1300 and len(arns) == len(set(arns))
    keys = [f"{p['PolicyName'].lower()}|{p['Arn']}" for p in policies]
    assert keys == sorted(keys), "listed in order, pages contiguous"
    for name, (path, *_rest) in NEWLY_PRESENT.items():
        assert f"{AWS}{path}{name}" in arns
    paths = {p["Path"] for p in policies}
    assert {"/", "/service-role/", "/aws-service-role/", "/job-function/"} <= paths
    # A path prefix narrows the same walk.
    job = iam.get_paginator("list_policies").paginate(Scope="AWS", PathPrefix="/job-function/").build_full_result()
    assert sorted(p["Arn"] for p in job["Policies"]) == sorted(a for a in arns if "/job-function/" in a)


def test_attached_aws_policy_is_listed_as_in_use(iam, make_user):
    arn = f"{AWS}/AWSCloudShellFullAccess"
    make_user(managed=[arn])
    used = iam.get_paginator("list_policies").paginate(Scope="AWS", OnlyAttached=True).build_full_result()
    assert arn in [p["Arn"] for p in used["Policies"]]
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] >= 1


def test_user_with_aws_support_access_is_allowed_what_it_grants(iam, make_user):
    user = make_user(managed=[f"{AWS}/AWSSupportAccess"])
    results = iam.simulate_principal_policy(
        PolicySourceArn=user.arn,
        ActionNames=["support:DescribeCases", "support:CreateCase", "support-console:GetBanner", "iam:ListUsers"],
    )["EvaluationResults"]
    decisions = {r["EvalActionName"]: r["EvalDecision"] for r in results}
    assert decisions == {"support:DescribeCases": "allowed", "support:CreateCase": "allowed",
                         "support-console:GetBanner": "allowed", "iam:ListUsers": "implicitDeny"}
    matched = [r["MatchedStatements"] for r in results if r["EvalActionName"] == "support:CreateCase"][0]
    assert matched and matched[0]["SourcePolicyId"] == "AWSSupportAccess"
    # And enforcement: what it does not grant is refused.
    with pytest.raises(ClientError) as e:
        user.iam.list_users()
    assert e.value.response["Error"]["Code"] == "AccessDenied"


def test_newly_present_policy_is_enforced_on_real_calls(make_user):
    """IAMUserSSHKeys grants SSH-key calls on the caller's own user (`${aws:username}`)."""
    user = make_user(managed=[f"{AWS}/IAMUserSSHKeys"])
    assert user.iam.list_ssh_public_keys(UserName=user.name)["SSHPublicKeys"] == []
    with pytest.raises(ClientError) as e:
        user.iam.list_ssh_public_keys(UserName="someone-else")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
