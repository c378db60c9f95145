"""IAM users: CreateUser / GetUser / UpdateUser / DeleteUser / ListUsers, boundaries, conflicts."""

import re

from support import ADMIN, aws_error, doc, policy, allow, recent, unique, unique_path

USER_ID = re.compile(r"^AIDA[A-Z0-9]{17}$")


def test_create_user_returns_aws_shape(iam, account_id):
    name = unique("user")
    user = iam.create_user(UserName=name)["User"]
    assert user["UserName"] == name
    assert user["Path"] == "/"
    assert USER_ID.match(user["UserId"]), user["UserId"]
    assert user["Arn"] == f"arn:aws:iam::{account_id}:user/{name}"
    assert recent(user["CreateDate"])
    got = iam.get_user(UserName=name)["User"]
    assert {k: got[k] for k in ("UserName", "UserId", "Arn", "Path", "CreateDate")} == {
        k: user[k] for k in ("UserName", "UserId", "Arn", "Path", "CreateDate")
    }


def test_user_ids_are_unique(iam):
    ids = {iam.create_user(UserName=unique("user"))["User"]["UserId"] for _ in range(5)}
    assert len(ids) == 5


def test_create_user_with_path_and_tags(iam, account_id):
    name, path = unique("user"), "/division/team/"
    tags = [{"Key": "team", "Value": "red"}, {"Key": "cost-center", "Value": "42"}]
    user = iam.create_user(UserName=name, Path=path, Tags=tags)["User"]
    assert user["Path"] == path
    assert user["Arn"] == f"arn:aws:iam::{account_id}:user/division/team/{name}"
    got = iam.get_user(UserName=name)["User"]
    assert got["Path"] == path
    assert sorted(got["Tags"], key=lambda t: t["Key"]) == sorted(tags, key=lambda t: t["Key"])


def test_create_duplicate_user(iam):
    name = unique("user")
    iam.create_user(UserName=name)
    with aws_error("EntityAlreadyExists", 409, message=f"User with name {name} already exists."):
        iam.create_user(UserName=name)


def test_user_names_are_case_insensitive(iam):
    name = unique("User")
    iam.create_user(UserName=name)
    with aws_error("EntityAlreadyExists", 409):
        iam.create_user(UserName=name.lower())


def test_get_missing_user(iam):
    name = unique("nobody")
    with aws_error("NoSuchEntity", 404, message=f"The user with name {name} cannot be found."):
        iam.get_user(UserName=name)


def test_get_user_without_name_as_root(iam, account_id):
    user = iam.get_user()["User"]
    assert user["Arn"] == f"arn:aws:iam::{account_id}:root"
    assert user["UserId"] == account_id


def test_get_user_without_name_as_user(make_user):
    u = make_user(inline=[policy(allow("iam:GetUser", "arn:aws:iam::*:user/${aws:username}"))])
    got = u.iam.get_user()["User"]
    assert got["UserName"] == u.name
    assert got["Arn"] == u.arn
    assert got["UserId"] == u.user_id


def test_invalid_user_name(iam):
    with aws_error(
        "ValidationError", 400,
        match=r"^1 validation error detected: Value 'bad name' at 'userName' failed to satisfy constraint: "
        r"Member must satisfy regular expression pattern",
    ):
        iam.create_user(UserName="bad name")


def test_user_name_too_long(iam):
    with aws_error("ValidationError", 400, match=r"at 'userName' failed to satisfy constraint: Member must have length less than or equal to 64"):
        iam.create_user(UserName="u" * 65)
    name = unique("u")
    name = name + "x" * (64 - len(name))
    assert iam.create_user(UserName=name)["User"]["UserName"] == name


def test_invalid_path(iam):
    with aws_error("ValidationError", 400, match=r"at 'path' failed to satisfy constraint"):
        iam.create_user(UserName=unique("user"), Path="no-slashes")


def test_update_user_name_and_path(iam, account_id):
    old, new = unique("user"), unique("renamed")
    created = iam.create_user(UserName=old)["User"]
    iam.update_user(UserName=old, NewUserName=new, NewPath="/moved/")
    with aws_error("NoSuchEntity", 404):
        iam.get_user(UserName=old)
    got = iam.get_user(UserName=new)["User"]
    assert got["UserId"] == created["UserId"], "renaming keeps the unique ID"
    assert got["Path"] == "/moved/"
    assert got["Arn"] == f"arn:aws:iam::{account_id}:user/moved/{new}"


def test_update_user_keeps_keys_policies_and_groups(iam, names):
    old, new, group = names("user"), names("renamed"), names("group")
    iam.create_user(UserName=old)
    iam.create_group(GroupName=group)
    iam.add_user_to_group(GroupName=group, UserName=old)
    iam.put_user_policy(UserName=old, PolicyName="p", PolicyDocument=doc(ADMIN))
    key = iam.create_access_key(UserName=old)["AccessKey"]["AccessKeyId"]
    iam.update_user(UserName=old, NewUserName=new)
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName=new)["AccessKeyMetadata"]] == [key]
    assert iam.list_user_policies(UserName=new)["PolicyNames"] == ["p"]
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName=new)["Groups"]] == [group]
    assert [u["UserName"] for u in iam.get_group(GroupName=group)["Users"]] == [new]


def test_update_user_to_existing_name(iam):
    a, b = unique("user"), unique("user")
    iam.create_user(UserName=a)
    iam.create_user(UserName=b)
    with aws_error("EntityAlreadyExists", 409):
        iam.update_user(UserName=a, NewUserName=b)


def test_update_missing_user(iam):
    with aws_error("NoSuchEntity", 404):
        iam.update_user(UserName=unique("nobody"), NewPath="/x/")


def test_delete_user(iam):
    name = unique("user")
    iam.create_user(UserName=name)
    iam.delete_user(UserName=name)
    with aws_error("NoSuchEntity", 404):
        iam.get_user(UserName=name)
    with aws_error("NoSuchEntity", 404, message=f"The user with name {name} cannot be found."):
        iam.delete_user(UserName=name)


def test_name_reusable_after_delete(iam):
    name = unique("user")
    first = iam.create_user(UserName=name)["User"]["UserId"]
    iam.delete_user(UserName=name)
    second = iam.create_user(UserName=name)["User"]["UserId"]
    assert first != second, "a re-created user is a new principal with a new unique ID"


def test_delete_user_with_access_key_conflicts(iam):
    name = unique("user")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
    with aws_error("DeleteConflict", 409, message="Cannot delete entity, must delete access keys first."):
        iam.delete_user(UserName=name)
    iam.delete_access_key(UserName=name, AccessKeyId=key)
    iam.delete_user(UserName=name)


def test_delete_user_with_inline_policy_conflicts(iam):
    name = unique("user")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=doc(ADMIN))
    with aws_error("DeleteConflict", 409, message="Cannot delete entity, must delete policies first."):
        iam.delete_user(UserName=name)
    iam.delete_user_policy(UserName=name, PolicyName="p")
    iam.delete_user(UserName=name)


def test_delete_user_with_attached_policy_conflicts(iam, make_policy):
    name = unique("user")
    arn = make_policy()
    iam.create_user(UserName=name)
    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    with aws_error("DeleteConflict", 409, message="Cannot delete entity, must detach all policies first."):
        iam.delete_user(UserName=name)
    iam.detach_user_policy(UserName=name, PolicyArn=arn)
    iam.delete_user(UserName=name)


def test_delete_user_in_group_conflicts(iam):
    name, group = unique("user"), unique("group")
    iam.create_user(UserName=name)
    iam.create_group(GroupName=group)
    iam.add_user_to_group(GroupName=group, UserName=name)
    with aws_error("DeleteConflict", 409, message="Cannot delete entity, must remove users from group first."):
        iam.delete_user(UserName=name)
    iam.remove_user_from_group(GroupName=group, UserName=name)
    iam.delete_user(UserName=name)


def test_list_users_path_prefix(iam):
    path = unique_path()
    inside = sorted(unique("user") for _ in range(3))
    for n in inside:
        iam.create_user(UserName=n, Path=path)
    iam.create_user(UserName=unique("user"), Path="/elsewhere/")
    listed = iam.list_users(PathPrefix=path)
    assert listed["IsTruncated"] is False
    assert sorted(u["UserName"] for u in listed["Users"]) == inside
    for u in listed["Users"]:
        assert u["Path"] == path and u["Arn"].endswith(f"user{path}{u['UserName']}")
    # A prefix matches deeper paths too.
    assert {u["UserName"] for u in iam.list_users(PathPrefix=path.rsplit("/", 2)[0] + "/")["Users"]} >= set(inside)


def test_list_users_includes_new_user(iam):
    name = unique("user")
    iam.create_user(UserName=name)
    paginator = iam.get_paginator("list_users")
    all_names = [u["UserName"] for page in paginator.paginate() for u in page["Users"]]
    assert name in all_names
    assert len(all_names) == len(set(all_names))


def test_user_permissions_boundary(iam, make_policy):
    name = unique("user")
    arn = make_policy()
    iam.create_user(UserName=name)
    iam.put_user_permissions_boundary(UserName=name, PermissionsBoundary=arn)
    pb = iam.get_user(UserName=name)["User"]["PermissionsBoundary"]
    assert pb == {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": arn}
    iam.delete_user_permissions_boundary(UserName=name)
    assert "PermissionsBoundary" not in iam.get_user(UserName=name)["User"]


def test_create_user_with_boundary(iam, make_policy):
    name = unique("user")
    arn = make_policy()
    iam.create_user(UserName=name, PermissionsBoundary=arn)
    assert iam.get_user(UserName=name)["User"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == arn


def test_boundary_with_aws_managed_policy(iam):
    name = unique("user")
    iam.create_user(UserName=name)
    iam.put_user_permissions_boundary(UserName=name, PermissionsBoundary="arn:aws:iam::aws:policy/IAMReadOnlyAccess")
    pb = iam.get_user(UserName=name)["User"]["PermissionsBoundary"]
    assert pb["PermissionsBoundaryArn"] == "arn:aws:iam::aws:policy/IAMReadOnlyAccess"


def test_boundary_with_missing_policy(iam, account_id):
    name = unique("user")
    iam.create_user(UserName=name)
    with aws_error("NoSuchEntity", codes=("InvalidInput",)):
        iam.put_user_permissions_boundary(
            UserName=name, PermissionsBoundary=f"arn:aws:iam::{account_id}:policy/{unique('missing')}"
        )


def test_boundary_on_missing_user(iam, make_policy):
    with aws_error("NoSuchEntity", 404):
        iam.put_user_permissions_boundary(UserName=unique("nobody"), PermissionsBoundary=make_policy())
