"""Managed policies (CreatePolicy, versions, attach/detach, ListEntitiesForPolicy, ListPolicies)
and inline user policies; policy document validation and size limits."""

import json
import re

import pytest

from support import (
    ADMIN,
    ADMIN_ARN,
    IAM_READ_ONLY_ARN,
    allow,
    aws_error,
    deny,
    doc,
    policy,
    recent,
    trust,
    unique,
    unique_path,
)

POLICY_ID = re.compile(r"^ANPA[A-Z0-9]{17}$")


def create(iam, document=None, **kw):
    kw.setdefault("PolicyName", unique("policy"))
    return iam.create_policy(PolicyDocument=doc(document or policy(allow("iam:Get*"))), **kw)["Policy"]


# -- CreatePolicy / GetPolicy ----------------------------------------------------------------------
def test_create_policy_returns_aws_shape(iam, account_id):
    name = unique("policy")
    p = iam.create_policy(PolicyName=name, PolicyDocument=doc(ADMIN), Description="compat")["Policy"]
    assert p["PolicyName"] == name
    assert POLICY_ID.match(p["PolicyId"]), p["PolicyId"]
    assert p["Arn"] == f"arn:aws:iam::{account_id}:policy/{name}"
    assert p["Path"] == "/"
    assert p["DefaultVersionId"] == "v1"
    assert p["AttachmentCount"] == 0
    assert p["PermissionsBoundaryUsageCount"] == 0
    assert p["IsAttachable"] is True
    assert recent(p["CreateDate"]) and recent(p["UpdateDate"])
    got = iam.get_policy(PolicyArn=p["Arn"])["Policy"]
    assert got["PolicyId"] == p["PolicyId"]
    assert got["Description"] == "compat"
    v = iam.get_policy_version(PolicyArn=p["Arn"], VersionId="v1")["PolicyVersion"]
    assert v["Document"] == ADMIN
    assert v["VersionId"] == "v1" and v["IsDefaultVersion"] is True


def test_create_policy_with_path(iam, account_id):
    p = create(iam, Path="/team/")
    assert p["Arn"] == f"arn:aws:iam::{account_id}:policy/team/{p['PolicyName']}"
    assert p["Path"] == "/team/"


def test_create_duplicate_policy(iam):
    name = create(iam)["PolicyName"]
    with aws_error(
        "EntityAlreadyExists", 409, message=f"A policy called {name} already exists. Duplicate names are not allowed."
    ):
        create(iam, PolicyName=name)


def test_get_missing_policy(iam, account_id):
    arn = f"arn:aws:iam::{account_id}:policy/{unique('missing')}"
    with aws_error("NoSuchEntity", 404, match=re.escape(arn)):
        iam.get_policy(PolicyArn=arn)


def test_get_policy_invalid_arn(iam):
    with aws_error("InvalidInput", 400, codes=("ValidationError",)):
        iam.get_policy(PolicyArn="this-is-not-an-arn-at-all")


def test_aws_managed_policy(iam):
    p = iam.get_policy(PolicyArn=ADMIN_ARN)["Policy"]
    assert p["PolicyName"] == "AdministratorAccess"
    assert p["Arn"] == ADMIN_ARN
    assert p["Path"] == "/"
    assert p["IsAttachable"] is True
    assert POLICY_ID.match(p["PolicyId"])
    v = iam.get_policy_version(PolicyArn=ADMIN_ARN, VersionId=p["DefaultVersionId"])["PolicyVersion"]
    stmts = v["Document"]["Statement"]
    stmts = stmts if isinstance(stmts, list) else [stmts]
    assert any(s["Effect"] == "Allow" and s["Action"] == "*" and s["Resource"] == "*" for s in stmts)


# -- document validation ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "document, message",
    [
        ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}]},
         "Policy document should not specify a principal."),
        ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*"}]},
         "Policy statement must contain actions."),
        ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*"}]},
         "Policy statement must contain resources."),
    ],
    ids=["principal", "no-action", "no-resource"],
)
def test_malformed_policy_messages(iam, document, message):
    with aws_error("MalformedPolicyDocument", 400, message=message):
        create(iam, document)


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}]}),
        json.dumps({"Version": "2013-01-01", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}),
        json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "nocolon", "Resource": "*"}]}),
        json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "bucket"}]}),
        json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*",
                    "Condition": {"StringEqualz": {"aws:username": "x"}}}]}),
        json.dumps({"Version": "2012-10-17"}),
        json.dumps(["not", "an", "object"]),
    ],
    ids=["invalid-json", "bad-effect", "bad-version", "action-without-service", "resource-not-arn",
         "unknown-condition-operator", "no-statement", "not-an-object"],
)
def test_malformed_policy_rejected(iam, text):
    with aws_error("MalformedPolicyDocument", 400):
        iam.create_policy(PolicyName=unique("policy"), PolicyDocument=text)


@pytest.mark.parametrize(
    "document",
    [
        {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"],
                                                 "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]}},
        {"Version": "2012-10-17", "Statement": [{"Sid": "One", "Effect": "Deny", "NotAction": "iam:*", "NotResource": "*"}]},
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*",
                                                  "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]},
                                                                "StringLikeIfExists": {"s3:prefix": "home/${aws:username}/*"}}}]},
    ],
    ids=["single-statement-object", "not-action-not-resource", "conditions"],
)
def test_valid_policy_variants_accepted(iam, document):
    p = create(iam, document)
    assert iam.get_policy_version(PolicyArn=p["Arn"], VersionId="v1")["PolicyVersion"]["Document"] == document


@pytest.mark.parametrize(
    "document",
    [
        {"Version": "2008-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]},
        {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]},
    ],
    ids=["2008-version", "no-version"],
)
def test_managed_policy_needs_2012_version(iam, document):
    """Managed policies must use the current policy language (AWS rejects older/missing Version)."""
    with aws_error("MalformedPolicyDocument", 400, message="Policy document must be version 2012-10-17 or greater."):
        create(iam, document)


def test_managed_policy_size_limit(iam):
    big = policy(*[allow(f"s3:GetObject", f"arn:aws:s3:::bucket-{i:04d}/*") for i in range(150)])
    assert len(json.dumps(big, separators=(",", ":"))) > 6144
    with aws_error("LimitExceeded", 409):
        create(iam, big)


# -- versions --------------------------------------------------------------------------------------
def test_policy_versions(iam):
    arn = create(iam)["Arn"]
    d2 = policy(allow("iam:List*"))
    v2 = iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc(d2))["PolicyVersion"]
    assert v2["VersionId"] == "v2" and v2["IsDefaultVersion"] is False
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v1"
    got = iam.get_policy_version(PolicyArn=arn, VersionId="v2")["PolicyVersion"]
    assert got["Document"] == d2 and got["IsDefaultVersion"] is False and recent(got["CreateDate"])
    versions = {v["VersionId"]: v["IsDefaultVersion"] for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]}
    assert versions == {"v1": True, "v2": False}

    iam.set_default_policy_version(PolicyArn=arn, VersionId="v2")
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v2"
    versions = {v["VersionId"]: v["IsDefaultVersion"] for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]}
    assert versions == {"v1": False, "v2": True}

    v3 = iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc(ADMIN), SetAsDefault=True)["PolicyVersion"]
    assert v3["VersionId"] == "v3" and v3["IsDefaultVersion"] is True
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v3"


def test_five_version_limit_and_version_ids_not_reused(iam):
    arn = create(iam)["Arn"]
    for i in range(2, 6):
        assert iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc(policy(allow(f"s3:Get{i}"))))[
            "PolicyVersion"]["VersionId"] == f"v{i}"
    with aws_error("LimitExceeded", 409):
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc(ADMIN))
    iam.delete_policy_version(PolicyArn=arn, VersionId="v2")
    v6 = iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc(ADMIN))["PolicyVersion"]
    assert v6["VersionId"] == "v6"
    assert sorted(v["VersionId"] for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]) == [
        "v1", "v3", "v4", "v5", "v6"]


def test_delete_default_version_conflicts(iam):
    arn = create(iam)["Arn"]
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc(ADMIN), SetAsDefault=True)
    with aws_error("DeleteConflict", 409, message="Cannot delete the default version of a policy."):
        iam.delete_policy_version(PolicyArn=arn, VersionId="v2")
    iam.delete_policy_version(PolicyArn=arn, VersionId="v1")
    assert [v["VersionId"] for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]] == ["v2"]


def test_missing_versions(iam, iam_unvalidated):
    arn = create(iam)["Arn"]
    with aws_error("NoSuchEntity", 404):
        iam.get_policy_version(PolicyArn=arn, VersionId="v9")
    with aws_error("NoSuchEntity", 404):
        iam.set_default_policy_version(PolicyArn=arn, VersionId="v9")
    with aws_error("NoSuchEntity", 404):
        iam.delete_policy_version(PolicyArn=arn, VersionId="v9")
    with aws_error("ValidationError", 400, match="versionId"):
        iam_unvalidated.get_policy_version(PolicyArn=arn, VersionId="version-one")


def test_create_version_malformed(iam):
    arn = create(iam)["Arn"]
    with aws_error("MalformedPolicyDocument", 400):
        iam.create_policy_version(PolicyArn=arn, PolicyDocument="[]")
    assert len(iam.list_policy_versions(PolicyArn=arn)["Versions"]) == 1


def test_create_version_of_missing_policy(iam, account_id):
    with aws_error("NoSuchEntity", 404):
        iam.create_policy_version(
            PolicyArn=f"arn:aws:iam::{account_id}:policy/{unique('missing')}", PolicyDocument=doc(ADMIN)
        )


# -- DeletePolicy ----------------------------------------------------------------------------------
def test_delete_policy(iam):
    arn = create(iam)["Arn"]
    iam.delete_policy(PolicyArn=arn)
    with aws_error("NoSuchEntity", 404):
        iam.get_policy(PolicyArn=arn)
    with aws_error("NoSuchEntity", 404):
        iam.delete_policy(PolicyArn=arn)


def test_delete_attached_policy_conflicts(iam):
    arn, user = create(iam)["Arn"], unique("user")
    iam.create_user(UserName=user)
    iam.attach_user_policy(UserName=user, PolicyArn=arn)
    with aws_error("DeleteConflict", 409, message="Cannot delete a policy attached to entities."):
        iam.delete_policy(PolicyArn=arn)
    iam.detach_user_policy(UserName=user, PolicyArn=arn)
    iam.delete_policy(PolicyArn=arn)


def test_delete_policy_with_versions_conflicts(iam):
    arn = create(iam)["Arn"]
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc(ADMIN))
    with aws_error("DeleteConflict", 409):
        iam.delete_policy(PolicyArn=arn)
    iam.delete_policy_version(PolicyArn=arn, VersionId="v2")
    iam.delete_policy(PolicyArn=arn)


# -- attach / detach -------------------------------------------------------------------------------
def test_attach_to_user_group_role_and_count(iam):
    p = create(iam)
    arn = p["Arn"]
    user, group, role = unique("user"), unique("group"), unique("role")
    iam.create_user(UserName=user)
    iam.create_group(GroupName=group)
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=doc(trust()))
    iam.attach_user_policy(UserName=user, PolicyArn=arn)
    iam.attach_group_policy(GroupName=group, PolicyArn=arn)
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 3
    expected = [{"PolicyName": p["PolicyName"], "PolicyArn": arn}]
    assert iam.list_attached_user_policies(UserName=user)["AttachedPolicies"] == expected
    assert iam.list_attached_group_policies(GroupName=group)["AttachedPolicies"] == expected
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == expected

    entities = iam.list_entities_for_policy(PolicyArn=arn)
    assert [e["UserName"] for e in entities["PolicyUsers"]] == [user]
    assert [e["GroupName"] for e in entities["PolicyGroups"]] == [group]
    assert [e["RoleName"] for e in entities["PolicyRoles"]] == [role]
    assert entities["PolicyUsers"][0]["UserId"] == iam.get_user(UserName=user)["User"]["UserId"]
    assert entities["PolicyGroups"][0]["GroupId"] == iam.get_group(GroupName=group)["Group"]["GroupId"]
    assert entities["PolicyRoles"][0]["RoleId"] == iam.get_role(RoleName=role)["Role"]["RoleId"]

    only_roles = iam.list_entities_for_policy(PolicyArn=arn, EntityFilter="Role")
    assert only_roles["PolicyUsers"] == [] and only_roles["PolicyGroups"] == []
    assert [e["RoleName"] for e in only_roles["PolicyRoles"]] == [role]

    iam.detach_user_policy(UserName=user, PolicyArn=arn)
    iam.detach_group_policy(GroupName=group, PolicyArn=arn)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    assert iam.list_attached_user_policies(UserName=user)["AttachedPolicies"] == []
    assert iam.list_entities_for_policy(PolicyArn=arn, EntityFilter="User")["PolicyUsers"] == []


def test_attach_twice_is_idempotent(iam):
    arn, user = create(iam)["Arn"], unique("user")
    iam.create_user(UserName=user)
    iam.attach_user_policy(UserName=user, PolicyArn=arn)
    iam.attach_user_policy(UserName=user, PolicyArn=arn)
    assert len(iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]) == 1
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1


def test_attach_missing_policy(iam, account_id):
    user = unique("user")
    iam.create_user(UserName=user)
    arn = f"arn:aws:iam::{account_id}:policy/{unique('missing')}"
    with aws_error("NoSuchEntity", 404, match=re.escape(arn)):
        iam.attach_user_policy(UserName=user, PolicyArn=arn)


def test_detach_not_attached(iam):
    arn, user = create(iam)["Arn"], unique("user")
    iam.create_user(UserName=user)
    with aws_error("NoSuchEntity", 404):
        iam.detach_user_policy(UserName=user, PolicyArn=arn)


def test_attach_to_missing_entities(iam):
    arn = create(iam)["Arn"]
    with aws_error("NoSuchEntity", 404):
        iam.attach_user_policy(UserName=unique("nobody"), PolicyArn=arn)
    with aws_error("NoSuchEntity", 404):
        iam.attach_group_policy(GroupName=unique("nogroup"), PolicyArn=arn)


def test_attached_policies_per_user_limit(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    arns = [create(iam)["Arn"] for _ in range(11)]
    for arn in arns[:10]:
        iam.attach_user_policy(UserName=user, PolicyArn=arn)
    with aws_error("LimitExceeded", 409, match="PoliciesPerUser"):
        iam.attach_user_policy(UserName=user, PolicyArn=arns[10])


def test_attach_aws_managed_policy(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    iam.attach_user_policy(UserName=user, PolicyArn=IAM_READ_ONLY_ARN)
    assert iam.list_attached_user_policies(UserName=user)["AttachedPolicies"] == [
        {"PolicyName": "IAMReadOnlyAccess", "PolicyArn": IAM_READ_ONLY_ARN}
    ]
    users = iam.list_entities_for_policy(PolicyArn=IAM_READ_ONLY_ARN, EntityFilter="User")["PolicyUsers"]
    assert user in [u["UserName"] for u in users]


def test_list_attached_path_prefix(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    a = create(iam, Path="/alpha/")["Arn"]
    b = create(iam, Path="/beta/")["Arn"]
    iam.attach_user_policy(UserName=user, PolicyArn=a)
    iam.attach_user_policy(UserName=user, PolicyArn=b)
    got = iam.list_attached_user_policies(UserName=user, PathPrefix="/alpha/")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in got] == [a]


def test_boundary_usage_count(iam):
    p = create(iam)
    user = unique("user")
    iam.create_user(UserName=user, PermissionsBoundary=p["Arn"])
    got = iam.get_policy(PolicyArn=p["Arn"])["Policy"]
    assert got["PermissionsBoundaryUsageCount"] == 1
    assert got["AttachmentCount"] == 0
    listed = iam.get_paginator("list_policies").paginate(
        Scope="Local", PolicyUsageFilter="PermissionsBoundary").build_full_result()["Policies"]
    assert p["Arn"] in [x["Arn"] for x in listed]
    only_perm = [x["Arn"] for x in iam.get_paginator("list_policies").paginate(
        Scope="Local", PolicyUsageFilter="PermissionsPolicy").build_full_result()["Policies"]]
    assert p["Arn"] not in only_perm


# -- ListPolicies ----------------------------------------------------------------------------------
def test_list_policies_scope_and_path(iam):
    path = unique_path()
    mine = sorted(create(iam, Path=path)["Arn"] for _ in range(3))
    local = iam.list_policies(Scope="Local", PathPrefix=path)
    assert sorted(p["Arn"] for p in local["Policies"]) == mine
    assert local["IsTruncated"] is False
    assert iam.list_policies(Scope="AWS", PathPrefix=path)["Policies"] == []


def test_list_policies_only_attached(iam):
    path = unique_path()
    attached, loose = create(iam, Path=path)["Arn"], create(iam, Path=path)["Arn"]
    user = unique("user")
    iam.create_user(UserName=user)
    iam.attach_user_policy(UserName=user, PolicyArn=attached)
    got = iam.list_policies(Scope="Local", PathPrefix=path, OnlyAttached=True)["Policies"]
    assert [p["Arn"] for p in got] == [attached]
    assert loose in [p["Arn"] for p in iam.list_policies(Scope="Local", PathPrefix=path)["Policies"]]


def test_list_aws_managed_policies(iam):
    result = iam.get_paginator("list_policies").paginate(
        Scope="AWS", PaginationConfig={"PageSize": 100}).build_full_result()["Policies"]
    arns = [p["Arn"] for p in result]
    assert len(arns) == len(set(arns))
    assert ADMIN_ARN in arns and IAM_READ_ONLY_ARN in arns
    assert all(a.startswith("arn:aws:iam::aws:policy/") for a in arns)


# -- inline user policies --------------------------------------------------------------------------
def test_user_inline_policies(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    d1, d2 = policy(allow("iam:Get*")), policy(deny("iam:Delete*"))
    iam.put_user_policy(UserName=user, PolicyName="read", PolicyDocument=doc(d1))
    iam.put_user_policy(UserName=user, PolicyName="guard", PolicyDocument=doc(d2))
    got = iam.get_user_policy(UserName=user, PolicyName="read")
    assert got["UserName"] == user and got["PolicyName"] == "read" and got["PolicyDocument"] == d1
    assert sorted(iam.list_user_policies(UserName=user)["PolicyNames"]) == ["guard", "read"]
    iam.put_user_policy(UserName=user, PolicyName="read", PolicyDocument=doc(d2))
    assert iam.get_user_policy(UserName=user, PolicyName="read")["PolicyDocument"] == d2
    iam.delete_user_policy(UserName=user, PolicyName="read")
    assert iam.list_user_policies(UserName=user)["PolicyNames"] == ["guard"]
    with aws_error("NoSuchEntity", 404, message="The user policy with name read cannot be found."):
        iam.get_user_policy(UserName=user, PolicyName="read")
    with aws_error("NoSuchEntity", 404):
        iam.delete_user_policy(UserName=user, PolicyName="read")


def test_user_inline_policy_validation(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    with aws_error("MalformedPolicyDocument", 400, message="Policy document should not specify a principal."):
        iam.put_user_policy(UserName=user, PolicyName="p",
                            PolicyDocument=doc(policy(allow("s3:*", Principal={"AWS": "*"}))))
    with aws_error("ValidationError", 400, match="policyName"):
        iam.put_user_policy(UserName=user, PolicyName="bad name!", PolicyDocument=doc(ADMIN))
    with aws_error("NoSuchEntity", 404):
        iam.put_user_policy(UserName=unique("nobody"), PolicyName="p", PolicyDocument=doc(ADMIN))
    assert iam.list_user_policies(UserName=user)["PolicyNames"] == []


def test_user_inline_policy_size_limit(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    big = policy(*[allow("s3:GetObject", f"arn:aws:s3:::bucket-{i:04d}/*") for i in range(60)])
    assert len(json.dumps(big, separators=(",", ":"))) > 2048
    with aws_error("LimitExceeded", 409):
        iam.put_user_policy(UserName=user, PolicyName="big", PolicyDocument=doc(big))


def test_policy_size_ignores_whitespace(iam):
    """AWS doesn't count white space toward policy size quotas."""
    user = unique("user")
    iam.create_user(UserName=user)
    d = policy(*[allow("s3:GetObject", f"arn:aws:s3:::bucket-{i:04d}/*") for i in range(20)])
    compact = json.dumps(d, separators=(",", ":"))
    spacious = json.dumps(d, indent=16)
    assert len(compact) < 2048 < len(spacious)
    iam.put_user_policy(UserName=user, PolicyName="spacious", PolicyDocument=spacious)
    assert iam.get_user_policy(UserName=user, PolicyName="spacious")["PolicyDocument"] == d


def test_policy_members_per_call_as_aws(iam):
    """AWS-verified (moto's test_iam_response_attributes): CreatePolicy omits Description and
    returns Tags only when given; GetPolicy returns Description and always Tags; ListPolicies neither."""
    from support import allow, doc, policy, unique, unique_path

    for with_optional in (True, False):
        path = unique_path()
        params = {"PolicyName": unique("pol"), "Path": path, "PolicyDocument": doc(policy(allow("s3:GetObject")))}
        if with_optional:
            params.update(Description="d", Tags=[{"Key": "k", "Value": "v"}])
        created = iam.create_policy(**params)["Policy"]
        assert "Description" not in created
        assert ("Tags" in created) is with_optional
        got = iam.get_policy(PolicyArn=created["Arn"])["Policy"]
        assert ("Description" in got) is with_optional
        assert got["Tags"] == ([{"Key": "k", "Value": "v"}] if with_optional else [])
        listed = iam.list_policies(Scope="Local", PathPrefix=path)["Policies"]
        assert len(listed) == 1 and "Description" not in listed[0] and "Tags" not in listed[0]
        iam.delete_policy(PolicyArn=created["Arn"])


@pytest.mark.parametrize("document,message", [
    # A repeated key has no single meaning (readers pick the first or the last): refused.
    ('{"Version":"2012-10-17","Statement":{"Effect":"Deny","Effect":"Allow","Action":"s3:*","Resource":"*"}}',
     "Syntax errors in policy."),
    ('{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*",'
     '"Condition":{"StringEquals":{"aws:username":"a","aws:username":"b"}}}}', "Syntax errors in policy."),
    ('{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b\\u0000"}}',
     "Syntax errors in policy."),
    ('{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*",'
     '"Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}}}', "The policy failed legacy parsing"),
    ('{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*",'
     '"Condition":{"NotIpAddress":{"aws:SourceIp":["203.0.113.0/24","1.2.3"]}}}}', "The policy failed legacy parsing"),
])
def test_ambiguous_or_meaningless_documents_are_malformed(iam, document, message):
    user = unique("user")
    iam.create_user(UserName=user)
    with aws_error("MalformedPolicyDocument", 400, message=message):
        iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=document)
    with aws_error("MalformedPolicyDocument", 400, message=message):
        iam.create_policy(PolicyName=unique("pol"), PolicyDocument=document)
