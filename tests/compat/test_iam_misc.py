"""GetAccountSummary, account aliases, instance profiles, and Marker/MaxItems pagination across
the List* operations."""

import re

import pytest

from support import (ADMIN, allow, aws_error, collect_pages, doc, policy, random_account_id, random_key_id,
                     random_secret, recent, trust, unique, unique_path)

PROFILE_ID = re.compile(r"^AIPA[A-Z0-9]{17}$")


# -- GetAccountSummary -----------------------------------------------------------------------------
def test_account_summary_quotas(iam):
    summary = iam.get_account_summary()["SummaryMap"]
    for key in ("Users", "Groups", "Roles", "Policies", "InstanceProfiles", "UsersQuota", "GroupsQuota",
                "RolesQuota", "PoliciesQuota", "AccessKeysPerUserQuota", "GroupsPerUserQuota",
                "AttachedPoliciesPerUserQuota", "AttachedPoliciesPerGroupQuota", "AttachedPoliciesPerRoleQuota",
                "VersionsPerPolicyQuota", "PolicySizeQuota", "UserPolicySizeQuota", "RolePolicySizeQuota",
                "GroupPolicySizeQuota", "AccountMFAEnabled"):
        assert key in summary, f"SummaryMap lacks {key}"
        assert isinstance(summary[key], int)
    assert summary["AccessKeysPerUserQuota"] == 2
    assert summary["VersionsPerPolicyQuota"] == 5
    assert summary["GroupsPerUserQuota"] == 10
    assert summary["AttachedPoliciesPerUserQuota"] == 10
    assert summary["PolicySizeQuota"] == 6144
    assert summary["UserPolicySizeQuota"] == 2048


def test_account_summary_counts(iam):
    before = iam.get_account_summary()["SummaryMap"]
    iam.create_user(UserName=unique("user"))
    iam.create_group(GroupName=unique("group"))
    iam.create_role(RoleName=unique("role"), AssumeRolePolicyDocument=doc(trust()))
    iam.create_policy(PolicyName=unique("policy"), PolicyDocument=doc(ADMIN))
    iam.create_instance_profile(InstanceProfileName=unique("profile"))
    after = iam.get_account_summary()["SummaryMap"]
    for key in ("Users", "Groups", "Roles", "Policies", "InstanceProfiles"):
        assert after[key] == before[key] + 1, key


# -- account aliases -------------------------------------------------------------------------------
def test_account_alias_lifecycle(iam):
    for existing in iam.list_account_aliases()["AccountAliases"]:
        iam.delete_account_alias(AccountAlias=existing)
    alias = f"compat-{unique('a').split('-', 2)[2]}"
    iam.create_account_alias(AccountAlias=alias)
    listed = iam.list_account_aliases()
    assert listed["AccountAliases"] == [alias]
    assert listed["IsTruncated"] is False
    iam.delete_account_alias(AccountAlias=alias)
    assert iam.list_account_aliases()["AccountAliases"] == []
    with aws_error("NoSuchEntity", 404):
        iam.delete_account_alias(AccountAlias=alias)


@pytest.mark.parametrize("alias", ["Upper-Case", "under_score", "-leading", "trailing-", "double--hyphen", "ab"])
def test_invalid_account_alias(iam_unvalidated, alias):
    with aws_error("ValidationError", 400, match="accountAlias"):
        iam_unvalidated.create_account_alias(AccountAlias=alias)


# -- instance profiles -----------------------------------------------------------------------------
def test_instance_profile_lifecycle(iam, account_id):
    name, role = unique("profile"), unique("role")
    t = trust()
    created = iam.create_instance_profile(InstanceProfileName=name, Path="/ec2/")["InstanceProfile"]
    assert created["InstanceProfileName"] == name
    assert PROFILE_ID.match(created["InstanceProfileId"]), created["InstanceProfileId"]
    assert created["Arn"] == f"arn:aws:iam::{account_id}:instance-profile/ec2/{name}"
    assert created["Path"] == "/ec2/"
    assert created["Roles"] == []
    assert recent(created["CreateDate"])

    role_obj = iam.create_role(RoleName=role, AssumeRolePolicyDocument=doc(t))["Role"]
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
    got = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    assert got["InstanceProfileId"] == created["InstanceProfileId"]
    assert [r["RoleName"] for r in got["Roles"]] == [role]
    assert got["Roles"][0]["RoleId"] == role_obj["RoleId"]
    assert got["Roles"][0]["Arn"] == role_obj["Arn"]
    assert got["Roles"][0]["AssumeRolePolicyDocument"] == t

    for_role = iam.list_instance_profiles_for_role(RoleName=role)["InstanceProfiles"]
    assert [p["InstanceProfileName"] for p in for_role] == [name]

    with aws_error("DeleteConflict", 409, message="Cannot delete entity, must remove roles from instance profile first."):
        iam.delete_instance_profile(InstanceProfileName=name)
    iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=role)
    assert iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Roles"] == []
    assert iam.list_instance_profiles_for_role(RoleName=role)["InstanceProfiles"] == []
    iam.delete_instance_profile(InstanceProfileName=name)
    with aws_error("NoSuchEntity", 404):
        iam.get_instance_profile(InstanceProfileName=name)


def test_instance_profile_duplicate_and_missing(iam):
    name = unique("profile")
    iam.create_instance_profile(InstanceProfileName=name)
    with aws_error("EntityAlreadyExists", 409, match=re.escape(name)):
        iam.create_instance_profile(InstanceProfileName=name)
    missing = unique("noprofile")
    with aws_error("NoSuchEntity", 404, match=re.escape(missing)):
        iam.get_instance_profile(InstanceProfileName=missing)
    with aws_error("NoSuchEntity", 404):
        iam.delete_instance_profile(InstanceProfileName=missing)


def test_instance_profile_holds_one_role(iam):
    name, r1, r2 = unique("profile"), unique("role"), unique("role")
    iam.create_instance_profile(InstanceProfileName=name)
    for r in (r1, r2):
        iam.create_role(RoleName=r, AssumeRolePolicyDocument=doc(trust()))
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=r1)
    with aws_error("LimitExceeded", 409, match="InstanceSessionsPerInstanceProfile"):
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=r2)
    assert [r["RoleName"] for r in iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Roles"]] == [r1]


def test_instance_profile_role_errors(iam):
    name, role = unique("profile"), unique("role")
    iam.create_instance_profile(InstanceProfileName=name)
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=doc(trust()))
    with aws_error("NoSuchEntity", 404):
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=unique("norole"))
    with aws_error("NoSuchEntity", 404):
        iam.add_role_to_instance_profile(InstanceProfileName=unique("noprofile"), RoleName=role)
    with aws_error("NoSuchEntity", 404):
        iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=role)
    with aws_error("NoSuchEntity", 404):
        iam.list_instance_profiles_for_role(RoleName=unique("norole"))


def test_list_instance_profiles_path_prefix(iam):
    path = unique_path()
    inside = sorted(unique("profile") for _ in range(3))
    for n in inside:
        iam.create_instance_profile(InstanceProfileName=n, Path=path)
    resp = iam.list_instance_profiles(PathPrefix=path)
    assert sorted(p["InstanceProfileName"] for p in resp["InstanceProfiles"]) == inside
    assert resp["IsTruncated"] is False


# -- pagination ------------------------------------------------------------------------------------
def _mk_user(iam, path):
    n = unique("user")
    iam.create_user(UserName=n, Path=path)
    return n


def _mk_group(iam, path):
    n = unique("group")
    iam.create_group(GroupName=n, Path=path)
    return n


def _mk_role(iam, path):
    n = unique("role")
    iam.create_role(RoleName=n, Path=path, AssumeRolePolicyDocument=doc(trust()))
    return n


def _mk_policy(iam, path):
    n = unique("policy")
    iam.create_policy(PolicyName=n, Path=path, PolicyDocument=doc(ADMIN))
    return n


def _mk_profile(iam, path):
    n = unique("profile")
    iam.create_instance_profile(InstanceProfileName=n, Path=path)
    return n


LISTS = {
    "list_users": (_mk_user, "Users", "UserName", {}),
    "list_groups": (_mk_group, "Groups", "GroupName", {}),
    "list_roles": (_mk_role, "Roles", "RoleName", {}),
    "list_policies": (_mk_policy, "Policies", "PolicyName", {"Scope": "Local"}),
    "list_instance_profiles": (_mk_profile, "InstanceProfiles", "InstanceProfileName", {}),
}


@pytest.mark.parametrize("operation", list(LISTS))
def test_marker_pagination(iam, operation):
    make, key, name_key, extra = LISTS[operation]
    path = unique_path()
    want = sorted(make(iam, path) for _ in range(5))
    items, pages = collect_pages(getattr(iam, operation), key, 2, PathPrefix=path, **extra)
    assert pages == 3
    got = [i[name_key] for i in items]
    assert sorted(got) == want and len(got) == len(set(got)), "every item exactly once"

    first = getattr(iam, operation)(PathPrefix=path, MaxItems=5, **extra)
    assert first["IsTruncated"] is False and len(first[key]) == 5

    paged = [
        i[name_key]
        for page in iam.get_paginator(operation).paginate(PathPrefix=path, PaginationConfig={"PageSize": 2}, **extra)
        for i in page[key]
    ]
    assert sorted(paged) == want and len(paged) == 5
    capped = iam.get_paginator(operation).paginate(
        PathPrefix=path, PaginationConfig={"PageSize": 2, "MaxItems": 3}, **extra).build_full_result()
    assert len(capped[key]) == 3 and "NextToken" in capped


def test_inline_and_attached_lists_paginate(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    names = sorted(f"p{i}" for i in range(3))
    for n in names:
        iam.put_user_policy(UserName=user, PolicyName=n, PolicyDocument=doc(policy(allow("s3:GetObject"))))
    got, pages = collect_pages(lambda **kw: iam.list_user_policies(UserName=user, **kw), "PolicyNames", 2)
    assert sorted(got) == names and pages == 2
    arns = sorted(
        iam.create_policy(PolicyName=unique("policy"), PolicyDocument=doc(ADMIN))["Policy"]["Arn"] for _ in range(3)
    )
    for arn in arns:
        iam.attach_user_policy(UserName=user, PolicyArn=arn)
    got, pages = collect_pages(lambda **kw: iam.list_attached_user_policies(UserName=user, **kw), "AttachedPolicies", 2)
    assert sorted(p["PolicyArn"] for p in got) == arns and pages == 2


def test_list_entities_for_policy_paginates(iam):
    arn = iam.create_policy(PolicyName=unique("policy"), PolicyDocument=doc(ADMIN))["Policy"]["Arn"]
    users = sorted(unique("user") for _ in range(3))
    for u in users:
        iam.create_user(UserName=u)
        iam.attach_user_policy(UserName=u, PolicyArn=arn)
    got, pages = collect_pages(lambda **kw: iam.list_entities_for_policy(PolicyArn=arn, EntityFilter="User", **kw),
                               "PolicyUsers", 2)
    assert sorted(u["UserName"] for u in got) == users and pages == 2


@pytest.mark.parametrize("max_items", [0, 1001])
def test_max_items_bounds(iam_unvalidated, max_items):
    with aws_error("ValidationError", 400, match="maxItems"):
        iam_unvalidated.list_users(MaxItems=max_items)


def test_max_items_1000_accepted(iam):
    assert iam.list_users(MaxItems=1000)["Users"] is not None


def test_security_token_service_preferences(spawn_server):
    # Its own server: the preference is the account's, and other tests read the summary.
    srv = spawn_server(ephemeral=True, data_dir=None, account_id=random_account_id(),
                       access_key_id=random_key_id(), secret_access_key=random_secret())
    iam = srv.client("iam")
    assert iam.get_account_summary()["SummaryMap"]["GlobalEndpointTokenVersion"] == 1
    iam.set_security_token_service_preferences(GlobalEndpointTokenVersion="v2Token")
    assert iam.get_account_summary()["SummaryMap"]["GlobalEndpointTokenVersion"] == 2
    iam.set_security_token_service_preferences(GlobalEndpointTokenVersion="v1Token")
    assert iam.get_account_summary()["SummaryMap"]["GlobalEndpointTokenVersion"] == 1
    with aws_error("ValidationError", 400, match="globalEndpointTokenVersion"):
        srv.client("iam", parameter_validation=False).set_security_token_service_preferences(
            GlobalEndpointTokenVersion="v3Token")
    name = unique("user")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    user_iam = srv.client("iam", key["AccessKeyId"], key["SecretAccessKey"])
    with aws_error("AccessDenied", 403, match="iam:SetSecurityTokenServicePreferences on resource: \\*"):
        user_iam.set_security_token_service_preferences(GlobalEndpointTokenVersion="v2Token")
