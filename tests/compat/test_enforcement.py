"""Every non-root call is authorized with AWS's policy semantics: identity policies (user inline,
attached, group), explicit deny, permissions boundaries, conditions and policy variables — and
changes take effect on the very next call."""

import re

from support import (
    ADMIN,
    ADMIN_ARN,
    IAM_READ_ONLY_ARN,
    access_denied_message,
    allow,
    aws_error,
    deny,
    doc,
    explicit_deny_prefix,
    policy,
    unique,
)


def user_arn(account_id, name, path="/"):
    return f"arn:aws:iam::{account_id}:user{path}{name}"


def test_user_without_policy_is_denied_with_aws_message(make_user, iam, account_id):
    u = make_user()
    target = unique("target")
    with aws_error(
        "AccessDenied", 403,
        message=access_denied_message(u.arn, "iam:CreateUser", user_arn(account_id, target)),
    ):
        u.iam.create_user(UserName=target)
    with aws_error("NoSuchEntity", 404):
        iam.get_user(UserName=target)  # the denied call changed nothing


def test_denied_message_names_the_target_resource(make_user, iam, account_id):
    u = make_user()
    other = unique("other")
    iam.create_user(UserName=other, Path="/dept/")
    with aws_error(
        "AccessDenied", 403,
        message=access_denied_message(u.arn, "iam:GetUser", user_arn(account_id, other, "/dept/")),
    ):
        u.iam.get_user(UserName=other)
    group = unique("group")
    with aws_error(
        "AccessDenied", 403,
        message=access_denied_message(u.arn, "iam:CreateGroup", f"arn:aws:iam::{account_id}:group/{group}"),
    ):
        u.iam.create_group(GroupName=group)


def test_user_arn_with_path_in_message(make_user, account_id):
    u = make_user(path="/ops/")
    assert u.arn == user_arn(account_id, u.name, "/ops/")
    target = unique("target")
    with aws_error("AccessDenied", 403, message=access_denied_message(
            u.arn, "iam:CreateUser", user_arn(account_id, target))):
        u.iam.create_user(UserName=target)


def test_inline_user_policy_allows(make_user, iam):
    u = make_user(inline=[policy(allow(["iam:CreateUser", "iam:GetUser"]))])
    target = unique("target")
    assert u.iam.create_user(UserName=target)["User"]["UserName"] == target
    assert u.iam.get_user(UserName=target)["User"]["UserName"] == target
    with aws_error("AccessDenied", 403):
        u.iam.delete_user(UserName=target)
    iam.get_user(UserName=target)


def test_group_policy_allows_until_user_leaves(make_user, make_group, iam):
    group = make_group(inline={"list": policy(allow("iam:ListUsers"))})
    u = make_user(groups=[group])
    u.iam.list_users(MaxItems=1)
    iam.remove_user_from_group(GroupName=group, UserName=u.name)
    with aws_error("AccessDenied", 403, match=r"iam:ListUsers.*because no identity-based policy allows"):
        u.iam.list_users(MaxItems=1)
    iam.add_user_to_group(GroupName=group, UserName=u.name)
    u.iam.list_users(MaxItems=1)


def test_group_attached_managed_policy_allows(make_user, make_group):
    u = make_user(groups=[make_group(managed=[IAM_READ_ONLY_ARN])])
    u.iam.list_groups(MaxItems=1)


def test_detached_policy_takes_effect_on_next_call(make_user, make_policy, iam):
    arn = make_policy(policy(allow("iam:ListUsers")))
    u = make_user(managed=[arn])
    u.iam.list_users(MaxItems=1)
    iam.detach_user_policy(UserName=u.name, PolicyArn=arn)
    with aws_error("AccessDenied", 403):
        u.iam.list_users(MaxItems=1)


def test_new_default_policy_version_takes_effect(make_user, make_policy, iam):
    arn = make_policy(policy(allow("iam:ListUsers")))
    u = make_user(managed=[arn])
    u.iam.list_users(MaxItems=1)
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc(policy(allow("iam:ListGroups"))), SetAsDefault=True)
    with aws_error("AccessDenied", 403):
        u.iam.list_users(MaxItems=1)
    u.iam.list_groups(MaxItems=1)
    iam.set_default_policy_version(PolicyArn=arn, VersionId="v1")
    u.iam.list_users(MaxItems=1)


def test_replaced_inline_policy_takes_effect(make_user, iam):
    u = make_user(inline={"p": policy(allow("iam:ListUsers"))})
    u.iam.list_users(MaxItems=1)
    iam.put_user_policy(UserName=u.name, PolicyName="p", PolicyDocument=doc(policy(allow("iam:ListRoles"))))
    with aws_error("AccessDenied", 403):
        u.iam.list_users(MaxItems=1)
    u.iam.list_roles(MaxItems=1)
    iam.delete_user_policy(UserName=u.name, PolicyName="p")
    with aws_error("AccessDenied", 403):
        u.iam.list_roles(MaxItems=1)


def test_deleted_key_fails_on_next_call(make_user, iam):
    u = make_user(inline=[policy(allow("iam:ListUsers"))])
    client = u.iam
    client.list_users(MaxItems=1)
    iam.delete_access_key(UserName=u.name, AccessKeyId=u.access_key_id)
    with aws_error("InvalidClientTokenId", 403, message="The security token included in the request is invalid."):
        client.list_users(MaxItems=1)


def test_aws_managed_read_only(make_user, account_id):
    u = make_user(managed=[IAM_READ_ONLY_ARN])
    u.iam.list_users(MaxItems=1)
    u.iam.get_account_summary()
    target = unique("target")
    with aws_error("AccessDenied", 403, message=access_denied_message(
            u.arn, "iam:CreateUser", user_arn(account_id, target))):
        u.iam.create_user(UserName=target)


def test_explicit_deny_wins(make_user, account_id):
    u = make_user(managed=[ADMIN_ARN], inline={"guard": policy(deny("iam:CreateUser"))})
    u.iam.list_users(MaxItems=1)
    target = unique("target")
    with aws_error("AccessDenied", 403, match="^" + re.escape(
            explicit_deny_prefix(u.arn, "iam:CreateUser", user_arn(account_id, target)))):
        u.iam.create_user(UserName=target)


def test_group_deny_beats_user_allow(make_user, make_group):
    group = make_group(inline={"deny": policy(deny("iam:List*"))})
    u = make_user(inline=[ADMIN], groups=[group])
    u.iam.get_account_summary()
    with aws_error("AccessDenied", 403, match="with an explicit deny in an identity-based policy"):
        u.iam.list_users(MaxItems=1)


def test_deny_scoped_to_resource(make_user, iam, account_id):
    protected = unique("protected")
    iam.create_user(UserName=protected)
    u = make_user(inline=[policy(allow("iam:*"), deny("iam:DeleteUser", user_arn(account_id, protected)))])
    scratch = unique("scratch")
    u.iam.create_user(UserName=scratch)
    u.iam.delete_user(UserName=scratch)
    with aws_error("AccessDenied", 403, match="explicit deny"):
        u.iam.delete_user(UserName=protected)


def test_permissions_boundary_limits(make_user, make_policy, iam, account_id):
    boundary = make_policy(policy(allow(["iam:Get*", "iam:List*"])))
    u = make_user(managed=[ADMIN_ARN], boundary=boundary)
    u.iam.list_users(MaxItems=1)
    target = unique("target")
    with aws_error("AccessDenied", 403, message=access_denied_message(
            u.arn, "iam:CreateUser", user_arn(account_id, target), reason="boundary")):
        u.iam.create_user(UserName=target)
    iam.delete_user_permissions_boundary(UserName=u.name)
    u.iam.create_user(UserName=target)


def test_boundary_alone_grants_nothing(make_user, account_id):
    u = make_user(boundary=ADMIN_ARN)
    target = unique("target")
    with aws_error("AccessDenied", 403, message=access_denied_message(
            u.arn, "iam:CreateUser", user_arn(account_id, target))):
        u.iam.create_user(UserName=target)


def test_boundary_deny_is_explicit(make_user, make_policy, account_id):
    boundary = make_policy(policy(allow("*"), deny("iam:CreateUser")))
    u = make_user(managed=[ADMIN_ARN], boundary=boundary)
    target = unique("target")
    with aws_error("AccessDenied", 403, match=r"with an explicit deny in a permissions boundary"):
        u.iam.create_user(UserName=target)


def test_policy_variable_username(make_user, iam):
    u = make_user(inline=[policy(allow(["iam:GetUser", "iam:ListAccessKeys"], "arn:aws:iam::*:user/${aws:username}"))])
    assert u.iam.get_user(UserName=u.name)["User"]["UserName"] == u.name
    u.iam.list_access_keys(UserName=u.name)
    other = unique("other")
    iam.create_user(UserName=other)
    with aws_error("AccessDenied", 403):
        u.iam.get_user(UserName=other)


def test_not_action(make_user):
    u = make_user(inline=[policy({"Effect": "Allow", "NotAction": "iam:CreateUser", "Resource": "*"})])
    u.iam.list_users(MaxItems=1)
    with aws_error("AccessDenied", 403):
        u.iam.create_user(UserName=unique("target"))


def test_action_match_is_case_insensitive(make_user):
    u = make_user(inline=[policy(allow("IAM:listusers"))])
    u.iam.list_users(MaxItems=1)


def test_wildcard_actions(make_user):
    u = make_user(inline=[policy(allow("iam:List*"))])
    u.iam.list_users(MaxItems=1)
    u.iam.list_roles(MaxItems=1)
    with aws_error("AccessDenied", 403):
        u.iam.get_account_summary()


def test_other_account_resource_does_not_match(make_user):
    u = make_user(inline=[policy(allow("iam:*", "arn:aws:iam::999999999999:user/*"))])
    with aws_error("AccessDenied", 403):
        u.iam.create_user(UserName=unique("target"))


def test_condition_source_ip(make_user):
    ok = make_user(inline=[policy(allow("iam:ListUsers", Condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}))])
    ok.iam.list_users(MaxItems=1)
    no = make_user(inline=[policy(allow("iam:ListUsers", Condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}))])
    with aws_error("AccessDenied", 403):
        no.iam.list_users(MaxItems=1)


def test_condition_current_time(make_user):
    ok = make_user(inline=[policy(allow("iam:ListUsers",
                                        Condition={"DateGreaterThan": {"aws:CurrentTime": "2000-01-01T00:00:00Z"}}))])
    ok.iam.list_users(MaxItems=1)
    no = make_user(inline=[policy(allow("iam:ListUsers",
                                        Condition={"DateLessThan": {"aws:CurrentTime": "2000-01-01T00:00:00Z"}}))])
    with aws_error("AccessDenied", 403):
        no.iam.list_users(MaxItems=1)


def test_condition_username_and_principal_tag(make_user, iam):
    u = make_user(inline=[policy(
        allow("iam:ListUsers", Condition={"StringEquals": {"aws:username": "${aws:username}",
                                                            "aws:PrincipalTag/team": "red"}}))])
    with aws_error("AccessDenied", 403):
        u.iam.list_users(MaxItems=1)
    iam.tag_user(UserName=u.name, Tags=[{"Key": "team", "Value": "red"}])
    u.iam.list_users(MaxItems=1)


def test_condition_resource_tag(make_user, iam):
    tagged, plain = unique("tagged"), unique("plain")
    iam.create_user(UserName=tagged, Tags=[{"Key": "env", "Value": "dev"}])
    iam.create_user(UserName=plain)
    u = make_user(inline=[policy(allow("iam:GetUser", Condition={"StringEquals": {"aws:ResourceTag/env": "dev"}}))])
    u.iam.get_user(UserName=tagged)
    with aws_error("AccessDenied", 403):
        u.iam.get_user(UserName=plain)


def test_condition_request_tag(make_user):
    u = make_user(inline=[policy(allow(["iam:CreateUser", "iam:TagUser"],
                                       Condition={"StringEquals": {"aws:RequestTag/team": "red"}}))])
    u.iam.create_user(UserName=unique("target"), Tags=[{"Key": "team", "Value": "red"}])
    with aws_error("AccessDenied", 403):
        u.iam.create_user(UserName=unique("target"), Tags=[{"Key": "team", "Value": "blue"}])
    with aws_error("AccessDenied", 403):
        u.iam.create_user(UserName=unique("target"))


def test_get_caller_identity_needs_no_permission(make_user, account_id):
    u = make_user(inline=[policy(deny("*"))])
    ident = u.sts.get_caller_identity()
    assert ident == {**ident, "Arn": u.arn, "UserId": u.user_id, "Account": account_id}


def test_root_is_not_bound_by_policies(iam, sts, account_id):
    ident = sts.get_caller_identity()
    assert ident["Arn"] == f"arn:aws:iam::{account_id}:root"
    assert ident["Account"] == account_id
    assert ident["UserId"] == account_id
    name = unique("rootmade")
    iam.create_user(UserName=name)
    iam.delete_user(UserName=name)


def test_user_admin_can_manage_iam(make_user):
    u = make_user(managed=[ADMIN_ARN])
    name = unique("made-by-admin")
    u.iam.create_user(UserName=name)
    u.iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=doc(policy(allow("s3:*"))))
    u.iam.delete_user_policy(UserName=name, PolicyName="p")
    u.iam.delete_user(UserName=name)


def test_get_own_user_needs_permission(make_user):
    u = make_user()
    with aws_error("AccessDenied", 403, message=access_denied_message(u.arn, "iam:GetUser", u.arn)):
        u.iam.get_user()


def test_caller_identity_of_user_with_path(make_user, account_id):
    u = make_user(path="/team/ops/")
    ident = u.sts.get_caller_identity()
    assert ident["Arn"] == f"arn:aws:iam::{account_id}:user/team/ops/{u.name}"
    assert ident["UserId"] == u.user_id
