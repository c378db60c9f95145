"""IAM groups and membership: CreateGroup / GetGroup / UpdateGroup / DeleteGroup / ListGroups,
AddUserToGroup / RemoveUserFromGroup / ListGroupsForUser, group inline policies."""

import re

from support import ADMIN, allow, aws_error, collect_pages, doc, policy, recent, unique, unique_path

GROUP_ID = re.compile(r"^AGPA[A-Z0-9]{17}$")


def test_create_group_returns_aws_shape(iam, account_id):
    name = unique("group")
    group = iam.create_group(GroupName=name)["Group"]
    assert group["GroupName"] == name
    assert group["Path"] == "/"
    assert GROUP_ID.match(group["GroupId"]), group["GroupId"]
    assert group["Arn"] == f"arn:aws:iam::{account_id}:group/{name}"
    assert recent(group["CreateDate"])
    got = iam.get_group(GroupName=name)
    assert got["Group"]["GroupId"] == group["GroupId"]
    assert got["Users"] == []
    assert got["IsTruncated"] is False


def test_create_group_with_path(iam, account_id):
    name = unique("group")
    group = iam.create_group(GroupName=name, Path="/eng/")["Group"]
    assert group["Arn"] == f"arn:aws:iam::{account_id}:group/eng/{name}"


def test_create_duplicate_group(iam):
    name = unique("group")
    iam.create_group(GroupName=name)
    with aws_error("EntityAlreadyExists", 409, message=f"Group with name {name} already exists."):
        iam.create_group(GroupName=name)


def test_get_missing_group(iam):
    name = unique("nogroup")
    with aws_error("NoSuchEntity", 404, message=f"The group with name {name} cannot be found."):
        iam.get_group(GroupName=name)


def test_invalid_group_name(iam):
    with aws_error("ValidationError", 400, match=r"at 'groupName' failed to satisfy constraint"):
        iam.create_group(GroupName="bad/name")


def test_membership(iam):
    group, alice, bob = unique("group"), unique("alice"), unique("bob")
    iam.create_group(GroupName=group)
    for u in (alice, bob):
        iam.create_user(UserName=u)
        iam.add_user_to_group(GroupName=group, UserName=u)
    members = iam.get_group(GroupName=group)["Users"]
    assert sorted(u["UserName"] for u in members) == sorted([alice, bob])
    assert all(u["Arn"].endswith(f":user/{u['UserName']}") for u in members)
    groups = iam.list_groups_for_user(UserName=alice)["Groups"]
    assert [g["GroupName"] for g in groups] == [group]
    iam.remove_user_from_group(GroupName=group, UserName=alice)
    assert [u["UserName"] for u in iam.get_group(GroupName=group)["Users"]] == [bob]
    assert iam.list_groups_for_user(UserName=alice)["Groups"] == []


def test_add_user_twice_is_idempotent(iam):
    group, user = unique("group"), unique("user")
    iam.create_group(GroupName=group)
    iam.create_user(UserName=user)
    iam.add_user_to_group(GroupName=group, UserName=user)
    iam.add_user_to_group(GroupName=group, UserName=user)
    assert [u["UserName"] for u in iam.get_group(GroupName=group)["Users"]] == [user]
    assert len(iam.list_groups_for_user(UserName=user)["Groups"]) == 1


def test_add_missing_user_or_group(iam):
    group, user = unique("group"), unique("user")
    iam.create_group(GroupName=group)
    iam.create_user(UserName=user)
    with aws_error("NoSuchEntity", 404):
        iam.add_user_to_group(GroupName=group, UserName=unique("nobody"))
    with aws_error("NoSuchEntity", 404):
        iam.add_user_to_group(GroupName=unique("nogroup"), UserName=user)


def test_remove_non_member(iam):
    group, user = unique("group"), unique("user")
    iam.create_group(GroupName=group)
    iam.create_user(UserName=user)
    with aws_error("NoSuchEntity", 404):
        iam.remove_user_from_group(GroupName=group, UserName=user)


def test_list_groups_for_missing_user(iam):
    with aws_error("NoSuchEntity", 404):
        iam.list_groups_for_user(UserName=unique("nobody"))


def test_groups_per_user_limit(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    for _ in range(10):
        g = unique("group")
        iam.create_group(GroupName=g)
        iam.add_user_to_group(GroupName=g, UserName=user)
    extra = unique("group")
    iam.create_group(GroupName=extra)
    with aws_error("LimitExceeded", 409, match="GroupsPerUser"):
        iam.add_user_to_group(GroupName=extra, UserName=user)
    assert len(iam.list_groups_for_user(UserName=user)["Groups"]) == 10


def test_update_group_keeps_members_and_policies(iam, account_id):
    old, new, user = unique("group"), unique("renamed"), unique("user")
    created = iam.create_group(GroupName=old)["Group"]
    iam.create_user(UserName=user)
    iam.add_user_to_group(GroupName=old, UserName=user)
    iam.put_group_policy(GroupName=old, PolicyName="p", PolicyDocument=doc(ADMIN))
    iam.update_group(GroupName=old, NewGroupName=new, NewPath="/moved/")
    with aws_error("NoSuchEntity", 404):
        iam.get_group(GroupName=old)
    got = iam.get_group(GroupName=new)
    assert got["Group"]["GroupId"] == created["GroupId"]
    assert got["Group"]["Arn"] == f"arn:aws:iam::{account_id}:group/moved/{new}"
    assert [u["UserName"] for u in got["Users"]] == [user]
    assert iam.list_group_policies(GroupName=new)["PolicyNames"] == ["p"]
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName=user)["Groups"]] == [new]


def test_update_group_to_existing_name(iam):
    a, b = unique("group"), unique("group")
    iam.create_group(GroupName=a)
    iam.create_group(GroupName=b)
    with aws_error("EntityAlreadyExists", 409):
        iam.update_group(GroupName=a, NewGroupName=b)


def test_delete_group(iam):
    name = unique("group")
    iam.create_group(GroupName=name)
    iam.delete_group(GroupName=name)
    with aws_error("NoSuchEntity", 404):
        iam.get_group(GroupName=name)
    with aws_error("NoSuchEntity", 404):
        iam.delete_group(GroupName=name)


def test_delete_group_with_members_conflicts(iam):
    group, user = unique("group"), unique("user")
    iam.create_group(GroupName=group)
    iam.create_user(UserName=user)
    iam.add_user_to_group(GroupName=group, UserName=user)
    with aws_error("DeleteConflict", 409, message="Cannot delete entity, must remove users from group first."):
        iam.delete_group(GroupName=group)
    iam.remove_user_from_group(GroupName=group, UserName=user)
    iam.delete_group(GroupName=group)


def test_delete_group_with_inline_policy_conflicts(iam):
    group = unique("group")
    iam.create_group(GroupName=group)
    iam.put_group_policy(GroupName=group, PolicyName="p", PolicyDocument=doc(ADMIN))
    with aws_error("DeleteConflict", 409, message="Cannot delete entity, must delete policies first."):
        iam.delete_group(GroupName=group)
    iam.delete_group_policy(GroupName=group, PolicyName="p")
    iam.delete_group(GroupName=group)


def test_delete_group_with_attached_policy_conflicts(iam, make_policy):
    group, arn = unique("group"), make_policy()
    iam.create_group(GroupName=group)
    iam.attach_group_policy(GroupName=group, PolicyArn=arn)
    with aws_error("DeleteConflict", 409, message="Cannot delete entity, must detach all policies first."):
        iam.delete_group(GroupName=group)
    iam.detach_group_policy(GroupName=group, PolicyArn=arn)
    iam.delete_group(GroupName=group)


def test_group_inline_policies(iam):
    group = unique("group")
    iam.create_group(GroupName=group)
    d1, d2 = policy(allow("iam:Get*")), policy(allow("iam:List*"))
    iam.put_group_policy(GroupName=group, PolicyName="one", PolicyDocument=doc(d1))
    iam.put_group_policy(GroupName=group, PolicyName="two", PolicyDocument=doc(d2))
    got = iam.get_group_policy(GroupName=group, PolicyName="one")
    assert got["GroupName"] == group and got["PolicyName"] == "one"
    assert got["PolicyDocument"] == d1
    assert sorted(iam.list_group_policies(GroupName=group)["PolicyNames"]) == ["one", "two"]
    iam.put_group_policy(GroupName=group, PolicyName="one", PolicyDocument=doc(d2))
    assert iam.get_group_policy(GroupName=group, PolicyName="one")["PolicyDocument"] == d2
    iam.delete_group_policy(GroupName=group, PolicyName="one")
    assert iam.list_group_policies(GroupName=group)["PolicyNames"] == ["two"]
    with aws_error("NoSuchEntity", 404):
        iam.get_group_policy(GroupName=group, PolicyName="one")
    with aws_error("NoSuchEntity", 404):
        iam.delete_group_policy(GroupName=group, PolicyName="one")


def test_group_inline_policy_on_missing_group(iam):
    with aws_error("NoSuchEntity", 404):
        iam.put_group_policy(GroupName=unique("nogroup"), PolicyName="p", PolicyDocument=doc(ADMIN))


def test_group_inline_policy_malformed(iam):
    group = unique("group")
    iam.create_group(GroupName=group)
    with aws_error("MalformedPolicyDocument", 400):
        iam.put_group_policy(GroupName=group, PolicyName="p", PolicyDocument="{not json")


def test_list_groups_path_prefix(iam):
    path = unique_path()
    inside = sorted(unique("group") for _ in range(3))
    for g in inside:
        iam.create_group(GroupName=g, Path=path)
    resp = iam.list_groups(PathPrefix=path)
    assert sorted(g["GroupName"] for g in resp["Groups"]) == inside
    assert resp["IsTruncated"] is False


def test_get_group_paginates_members(iam):
    group = unique("group")
    iam.create_group(GroupName=group)
    users = sorted(unique("member") for _ in range(5))
    for u in users:
        iam.create_user(UserName=u)
        iam.add_user_to_group(GroupName=group, UserName=u)
    members, pages = collect_pages(lambda **kw: iam.get_group(GroupName=group, **kw), "Users", 2)
    assert pages == 3
    assert sorted(u["UserName"] for u in members) == users
    via_paginator = [
        u["UserName"]
        for page in iam.get_paginator("get_group").paginate(GroupName=group, PaginationConfig={"PageSize": 2})
        for u in page["Users"]
    ]
    assert sorted(via_paginator) == users


def test_list_groups_for_user_paginates(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    groups = sorted(unique("group") for _ in range(3))
    for g in groups:
        iam.create_group(GroupName=g)
        iam.add_user_to_group(GroupName=g, UserName=user)
    got, pages = collect_pages(lambda **kw: iam.list_groups_for_user(UserName=user, **kw), "Groups", 1)
    assert pages == 3
    assert sorted(g["GroupName"] for g in got) == groups
