"""GetAccountAuthorizationDetails and ListPoliciesGrantingServiceAccess: the account snapshot
auditing tools take first, and which of an identity's policies let it reach a service."""

import json

import pytest

from support import (
    ADMIN_ARN,
    access_denied_message,
    allow,
    aws_error,
    collect_pages,
    deny,
    doc,
    policy,
    trust,
    unique,
)

LISTS = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")
S3_READ = policy(allow(["s3:GetObject", "s3:ListBucket"]))


def everything(iam, max_items=100, **params):
    """Every page of the snapshot; (the four lists merged, number of pages)."""
    out = {k: [] for k in LISTS}
    pages, marker = 0, None
    while True:
        kw = dict(params, MaxItems=max_items)
        if marker:
            kw["Marker"] = marker
        resp = iam.get_account_authorization_details(**kw)
        pages += 1
        got = sum(len(resp[k]) for k in LISTS)
        assert got <= max_items, f"page of {got} > MaxItems {max_items}"
        for k in LISTS:
            out[k].extend(resp[k])
        if not resp["IsTruncated"]:
            assert "Marker" not in resp
            return out, pages
        assert resp["Marker"]
        marker = resp["Marker"]
        assert pages < 2000


def by_name(items, key):
    return {i[key]: i for i in items}


@pytest.fixture(scope="module")
def world(iam):
    """A group with an inline and a managed policy, a user in it with its own policies, a role in
    an instance profile with a boundary and tags, a customer policy with two versions."""
    w = {"group": unique("grp"), "user": unique("usr"), "role": unique("rol"), "profile": unique("ip"),
         "policy": unique("pol")}
    p = iam.create_policy(PolicyName=w["policy"], PolicyDocument=doc(S3_READ), Description="d")["Policy"]
    w["policy_arn"] = p["Arn"]
    iam.create_policy_version(PolicyArn=p["Arn"], PolicyDocument=doc(policy(allow("s3:*"))), SetAsDefault=True)
    iam.create_group(GroupName=w["group"])
    iam.put_group_policy(GroupName=w["group"], PolicyName="grp-inline", PolicyDocument=doc(policy(allow("ec2:Describe*"))))
    iam.attach_group_policy(GroupName=w["group"], PolicyArn=p["Arn"])
    iam.create_user(UserName=w["user"], Tags=[{"Key": "team", "Value": "red"}])
    iam.add_user_to_group(GroupName=w["group"], UserName=w["user"])
    iam.put_user_policy(UserName=w["user"], PolicyName="usr-inline", PolicyDocument=doc(policy(allow("sqs:Send*"))))
    iam.attach_user_policy(UserName=w["user"], PolicyArn=ADMIN_ARN)
    iam.create_role(RoleName=w["role"], AssumeRolePolicyDocument=doc(trust()), PermissionsBoundary=p["Arn"],
                    Tags=[{"Key": "k", "Value": "v"}])
    iam.put_role_policy(RoleName=w["role"], PolicyName="rol-inline", PolicyDocument=doc(policy(allow("kms:Decrypt"))))
    iam.create_instance_profile(InstanceProfileName=w["profile"])
    iam.add_role_to_instance_profile(InstanceProfileName=w["profile"], RoleName=w["role"])
    return w


# -- GetAccountAuthorizationDetails -----------------------------------------------------------------
def test_snapshot_shapes(iam, account_id, world):
    snap, _ = everything(iam, max_items=1000)
    u = by_name(snap["UserDetailList"], "UserName")[world["user"]]
    assert u["Arn"] == f"arn:aws:iam::{account_id}:user/{world['user']}"
    assert u["Path"] == "/" and u["UserId"].startswith("AIDA")
    assert u["GroupList"] == [world["group"]]
    assert u["UserPolicyList"] == [{"PolicyName": "usr-inline", "PolicyDocument": policy(allow("sqs:Send*"))}]
    assert u["AttachedManagedPolicies"] == [{"PolicyName": "AdministratorAccess", "PolicyArn": ADMIN_ARN}]
    assert u["Tags"] == [{"Key": "team", "Value": "red"}]
    assert "PermissionsBoundary" not in u

    g = by_name(snap["GroupDetailList"], "GroupName")[world["group"]]
    assert set(g) == {"Path", "GroupName", "GroupId", "Arn", "CreateDate", "GroupPolicyList", "AttachedManagedPolicies"}
    assert g["GroupPolicyList"] == [{"PolicyName": "grp-inline", "PolicyDocument": policy(allow("ec2:Describe*"))}]
    assert g["AttachedManagedPolicies"] == [{"PolicyName": world["policy"], "PolicyArn": world["policy_arn"]}]

    r = by_name(snap["RoleDetailList"], "RoleName")[world["role"]]
    assert r["AssumeRolePolicyDocument"] == trust()
    assert r["RolePolicyList"] == [{"PolicyName": "rol-inline", "PolicyDocument": policy(allow("kms:Decrypt"))}]
    assert r["AttachedManagedPolicies"] == []
    assert r["PermissionsBoundary"] == {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": world["policy_arn"]}
    assert r["Tags"] == [{"Key": "k", "Value": "v"}]
    assert r["RoleLastUsed"] == {}
    [ip] = r["InstanceProfileList"]
    assert ip["InstanceProfileName"] == world["profile"]
    assert [x["RoleName"] for x in ip["Roles"]] == [world["role"]]
    assert "Description" not in r and "MaxSessionDuration" not in r

    pols = by_name(snap["Policies"], "Arn")
    p = pols[world["policy_arn"]]
    assert p["DefaultVersionId"] == "v2"
    assert p["AttachmentCount"] == 1 and p["PermissionsBoundaryUsageCount"] == 1 and p["IsAttachable"] is True
    versions = {v["VersionId"]: v for v in p["PolicyVersionList"]}
    assert set(versions) == {"v1", "v2"}
    assert versions["v1"]["Document"] == S3_READ and versions["v1"]["IsDefaultVersion"] is False
    assert versions["v2"]["Document"] == policy(allow("s3:*")) and versions["v2"]["IsDefaultVersion"] is True
    # An AWS managed policy attached in the account is listed with its document; the catalogue's
    # unattached ones are not.
    admin = pols[ADMIN_ARN]
    assert admin["AttachmentCount"] >= 1
    assert admin["PolicyVersionList"][0]["Document"]["Statement"]
    assert all(x["AttachmentCount"] + x["PermissionsBoundaryUsageCount"] > 0
               for x in snap["Policies"] if x["Arn"].startswith("arn:aws:iam::aws:"))
    assert len(snap["Policies"]) < 1000


@pytest.mark.parametrize("only,present", [
    (["User"], "UserDetailList"),
    (["Group"], "GroupDetailList"),
    (["Role"], "RoleDetailList"),
])
def test_filter_by_entity_type(iam, world, only, present):
    snap, _ = everything(iam, max_items=1000, Filter=only)
    for k in LISTS:
        assert (len(snap[k]) > 0) == (k == present), (k, only)


def test_filter_policies(iam, world):
    local, _ = everything(iam, max_items=1000, Filter=["LocalManagedPolicy"])
    assert world["policy_arn"] in {p["Arn"] for p in local["Policies"]}
    assert not any(p["Arn"].startswith("arn:aws:iam::aws:") for p in local["Policies"])
    assert not local["UserDetailList"] and not local["RoleDetailList"]
    aws, _ = everything(iam, max_items=1000, Filter=["AWSManagedPolicy"])
    arns = {p["Arn"] for p in aws["Policies"]}
    assert ADMIN_ARN in arns
    assert all(a.startswith("arn:aws:iam::aws:policy/") for a in arns)
    both, _ = everything(iam, max_items=1000, Filter=["LocalManagedPolicy", "AWSManagedPolicy"])
    assert {p["Arn"] for p in both["Policies"]} == arns | {p["Arn"] for p in local["Policies"]}


def test_paging_covers_everything_once(iam, world):
    for i in range(3):
        iam.create_group(GroupName=unique("pg"))
    whole, one_page = everything(iam, max_items=1000)
    assert one_page == 1
    paged, pages = everything(iam, max_items=3)
    assert pages >= 3
    for k, key in zip(LISTS, ("UserName", "GroupName", "RoleName", "Arn")):
        names = [x[key] for x in paged[k]]
        assert len(names) == len(set(names)), f"{k}: an entry on two pages"
        assert set(names) == {x[key] for x in whole[k]}, f"{k}: entries missing"


def test_paginator(iam, world):
    pages = list(iam.get_paginator("get_account_authorization_details").paginate(
        Filter=["User", "Group"], PaginationConfig={"PageSize": 2}))
    assert len(pages) >= 2
    users = [u["UserName"] for p in pages for u in p["UserDetailList"]]
    assert world["user"] in users and len(users) == len(set(users))


@pytest.mark.parametrize("value", [0, 1001])
def test_max_items_bounds(iam_unvalidated, value):
    op = "greater than or equal to 1" if value == 0 else "less than or equal to 1000"
    with aws_error("ValidationError", 400,
                   message=f"1 validation error detected: Value '{value}' at 'maxItems' failed to satisfy "
                           f"constraint: Member must have value {op}"):
        iam_unvalidated.get_account_authorization_details(MaxItems=value)


def test_unknown_filter_value(iam_unvalidated):
    with aws_error("ValidationError", 400, match=r"at 'filter\.1\.member' failed to satisfy constraint: Member "
                                                 r"must satisfy enum value set: \[User, Role, Group, "
                                                 r"LocalManagedPolicy, AWSManagedPolicy\]"):
        iam_unvalidated.get_account_authorization_details(Filter=["Users"])


def test_snapshot_denied_without_policies(make_user):
    u = make_user()
    with aws_error("AccessDenied", 403, message=access_denied_message(
            u.arn, "iam:GetAccountAuthorizationDetails", "*")):
        u.iam.get_account_authorization_details()


def test_snapshot_allowed_by_policy(make_user):
    u = make_user(inline=[policy(allow("iam:GetAccountAuthorizationDetails"))])
    snap = u.iam.get_account_authorization_details(Filter=["User"], MaxItems=1000)
    assert u.name in {x["UserName"] for x in snap["UserDetailList"]} or snap["IsTruncated"]


# -- ListPoliciesGrantingServiceAccess --------------------------------------------------------------
def granting(iam, arn, *namespaces):
    resp = iam.list_policies_granting_service_access(Arn=arn, ServiceNamespaces=list(namespaces))
    assert resp["IsTruncated"] is False
    assert [e["ServiceNamespace"] for e in resp["PoliciesGrantingServiceAccess"]] == list(namespaces)
    return {e["ServiceNamespace"]: e["Policies"] for e in resp["PoliciesGrantingServiceAccess"]}


def test_user_policies_and_its_groups(iam, account_id, world):
    arn = f"arn:aws:iam::{account_id}:user/{world['user']}"
    got = granting(iam, arn, "s3", "ec2", "sqs", "dynamodb")
    # The group's customer policy allows s3:*; AdministratorAccess allows everything.
    assert got["s3"] == [
        {"PolicyName": "AdministratorAccess", "PolicyType": "MANAGED", "PolicyArn": ADMIN_ARN},
        {"PolicyName": world["policy"], "PolicyType": "MANAGED", "PolicyArn": world["policy_arn"]},
    ]
    assert {"PolicyName": "grp-inline", "PolicyType": "INLINE", "EntityType": "GROUP",
            "EntityName": world["group"]} in got["ec2"]
    assert {"PolicyName": "usr-inline", "PolicyType": "INLINE", "EntityType": "USER",
            "EntityName": world["user"]} in got["sqs"]
    assert got["dynamodb"] == [{"PolicyName": "AdministratorAccess", "PolicyType": "MANAGED", "PolicyArn": ADMIN_ARN}]


def test_group_and_role(iam, account_id, world):
    g = granting(iam, f"arn:aws:iam::{account_id}:group/{world['group']}", "ec2", "sqs", "s3")
    assert g["ec2"] == [{"PolicyName": "grp-inline", "PolicyType": "INLINE", "EntityType": "GROUP",
                         "EntityName": world["group"]}]
    assert g["sqs"] == []
    r = granting(iam, f"arn:aws:iam::{account_id}:role/{world['role']}", "kms", "s3")
    # The role's boundary is not a permissions policy: it is not listed.
    assert r == {"kms": [{"PolicyName": "rol-inline", "PolicyType": "INLINE", "EntityType": "ROLE",
                          "EntityName": world["role"]}], "s3": []}


def test_action_patterns(iam, account_id):
    name = unique("pat")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=doc(trust()))
    docs = {
        "s3-get": policy(allow("s3:Get*")),
        "upper": policy(allow("S3:ListBucket")),
        "star": policy(allow("*")),
        "not-action": policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),
        "deny-only": policy(deny("s3:*")),
        "other": policy(allow("ec2:Describe*")),
    }
    for pname, d in docs.items():
        iam.put_role_policy(RoleName=name, PolicyName=pname, PolicyDocument=doc(d))
    got = granting(iam, f"arn:aws:iam::{account_id}:role/{name}", "s3", "iam", "ec2")
    names = {ns: sorted(p["PolicyName"] for p in ps) for ns, ps in got.items()}
    assert names == {"s3": ["not-action", "s3-get", "star", "upper"], "iam": ["star"],
                     "ec2": ["not-action", "other", "star"]}


def test_unknown_and_malformed_arn(iam, account_id):
    with aws_error("NoSuchEntity", 404, message="The user with name nobody-here cannot be found."):
        iam.list_policies_granting_service_access(Arn=f"arn:aws:iam::{account_id}:user/nobody-here",
                                                  ServiceNamespaces=["s3"])
    with aws_error("InvalidInput", 400, message="ARN arn:aws:s3:::some-bucket-name is not valid."):
        iam.list_policies_granting_service_access(Arn="arn:aws:s3:::some-bucket-name", ServiceNamespaces=["s3"])


def test_namespace_list_bounds(iam_unvalidated, account_id, world):
    arn = f"arn:aws:iam::{account_id}:user/{world['user']}"
    with aws_error("ValidationError", 400, match="at 'serviceNamespaces' failed to satisfy constraint: "
                                                 "Member must have length less than or equal to 200"):
        iam_unvalidated.list_policies_granting_service_access(Arn=arn, ServiceNamespaces=["s3"] * 201)


def test_granting_denied_without_policies(make_user, account_id, world):
    u = make_user()
    arn = f"arn:aws:iam::{account_id}:user/{world['user']}"
    with aws_error("AccessDenied", 403, message=access_denied_message(
            u.arn, "iam:ListPoliciesGrantingServiceAccess", arn)):
        u.iam.list_policies_granting_service_access(Arn=arn, ServiceNamespaces=["s3"])
