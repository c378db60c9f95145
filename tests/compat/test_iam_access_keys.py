"""Access keys: CreateAccessKey / ListAccessKeys / UpdateAccessKey / DeleteAccessKey /
GetAccessKeyLastUsed, the 2-per-user quota, and what inactive or deleted keys can do."""

import re

from support import allow, aws_error, make_client, policy, recent, unique, wait_until

KEY_ID = re.compile(r"^AKIA[A-Z0-9]{16}$")
INVALID_TOKEN = "The security token included in the request is invalid."


def test_create_access_key_shape(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    assert key["UserName"] == user
    assert KEY_ID.match(key["AccessKeyId"]), key["AccessKeyId"]
    assert len(key["SecretAccessKey"]) == 40
    assert key["Status"] == "Active"
    assert recent(key["CreateDate"])
    listed = iam.list_access_keys(UserName=user)
    assert listed["IsTruncated"] is False
    assert listed["AccessKeyMetadata"] == [
        {"UserName": user, "AccessKeyId": key["AccessKeyId"], "Status": "Active", "CreateDate": key["CreateDate"]}
    ]


def test_new_key_signs_immediately(server, iam, account_id):
    user = unique("user")
    created = iam.create_user(UserName=user)["User"]
    key = iam.create_access_key(UserName=user)["AccessKey"]
    ident = make_client("sts", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"]).get_caller_identity()
    assert ident["Arn"] == created["Arn"]
    assert ident["UserId"] == created["UserId"]
    assert ident["Account"] == account_id


def test_two_keys_per_user(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    a = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    b = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    assert a != b
    with aws_error("LimitExceeded", 409, message="Cannot exceed quota for AccessKeysPerUser: 2"):
        iam.create_access_key(UserName=user)
    iam.update_access_key(UserName=user, AccessKeyId=a, Status="Inactive")
    with aws_error("LimitExceeded", 409):
        iam.create_access_key(UserName=user)  # inactive keys still count
    iam.delete_access_key(UserName=user, AccessKeyId=a)
    c = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    assert sorted(k["AccessKeyId"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]) == sorted([b, c])


def test_inactive_key_cannot_sign(server, iam):
    user = unique("user")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    sts = make_client("sts", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    sts.get_caller_identity()
    iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    assert iam.list_access_keys(UserName=user)["AccessKeyMetadata"][0]["Status"] == "Inactive"
    with aws_error("InvalidClientTokenId", 403, message=INVALID_TOKEN):
        sts.get_caller_identity()
    iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Active")
    sts.get_caller_identity()


def test_deleted_key_cannot_sign(server, iam):
    user = unique("user")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    sts = make_client("sts", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    sts.get_caller_identity()
    iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
    with aws_error("InvalidClientTokenId", 403, message=INVALID_TOKEN):
        sts.get_caller_identity()
    assert iam.list_access_keys(UserName=user)["AccessKeyMetadata"] == []


def test_delete_missing_key(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    missing = "AKIA" + "Z" * 16
    with aws_error("NoSuchEntity", 404, message=f"The Access Key with id {missing} cannot be found."):
        iam.delete_access_key(UserName=user, AccessKeyId=missing)
    with aws_error("NoSuchEntity", 404):
        iam.update_access_key(UserName=user, AccessKeyId=missing, Status="Inactive")


def test_key_of_another_user(iam):
    a, b = unique("user"), unique("user")
    iam.create_user(UserName=a)
    iam.create_user(UserName=b)
    key = iam.create_access_key(UserName=a)["AccessKey"]["AccessKeyId"]
    with aws_error("NoSuchEntity", 404):
        iam.delete_access_key(UserName=b, AccessKeyId=key)
    assert len(iam.list_access_keys(UserName=a)["AccessKeyMetadata"]) == 1


def test_update_access_key_invalid_status(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    with aws_error("ValidationError", 400, match="status"):
        iam.update_access_key(UserName=user, AccessKeyId=key, Status="Disabled")


def test_access_key_for_missing_user(iam):
    with aws_error("NoSuchEntity", 404):
        iam.create_access_key(UserName=unique("nobody"))
    with aws_error("NoSuchEntity", 404):
        iam.list_access_keys(UserName=unique("nobody"))


def test_access_keys_paginate(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    keys = sorted(iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"] for _ in range(2))
    first = iam.list_access_keys(UserName=user, MaxItems=1)
    assert first["IsTruncated"] is True and len(first["AccessKeyMetadata"]) == 1
    second = iam.list_access_keys(UserName=user, MaxItems=1, Marker=first["Marker"])
    assert second["IsTruncated"] is False
    assert sorted([first["AccessKeyMetadata"][0]["AccessKeyId"], second["AccessKeyMetadata"][0]["AccessKeyId"]]) == keys


def test_user_manages_own_keys(make_user):
    u = make_user(inline=[policy(allow(["iam:CreateAccessKey", "iam:ListAccessKeys", "iam:DeleteAccessKey"],
                                       "arn:aws:iam::*:user/${aws:username}"))])
    own = u.iam.list_access_keys()
    assert [k["AccessKeyId"] for k in own["AccessKeyMetadata"]] == [u.access_key_id]
    assert own["AccessKeyMetadata"][0]["UserName"] == u.name
    new = u.iam.create_access_key()["AccessKey"]
    assert new["UserName"] == u.name
    u.iam.delete_access_key(AccessKeyId=new["AccessKeyId"])


def test_access_key_last_used(server, iam):
    user = unique("user")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    unused = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])
    assert unused["UserName"] == user
    assert unused["AccessKeyLastUsed"]["ServiceName"] == "N/A"
    assert unused["AccessKeyLastUsed"]["Region"] == "N/A"
    assert "LastUsedDate" not in unused["AccessKeyLastUsed"]

    make_client("sts", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"]).get_caller_identity()
    used = wait_until(
        lambda: (r := iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"]))["AccessKeyLastUsed"].get(
            "LastUsedDate") and r
    )
    assert used, "LastUsedDate recorded after the key signed a call"
    last = used["AccessKeyLastUsed"]
    assert recent(last["LastUsedDate"])
    assert last["ServiceName"] == "sts"
    assert last["Region"] == "us-east-1"


def test_get_access_key_last_used_from_a_role_session(server, iam, sts, account_id):
    """GetAccessKeyLastUsed takes AccessKeyId alone (botocore's GetAccessKeyLastUsedRequest): an
    assumed-role caller is answered, not told to name a user."""
    import json

    user = unique("klu")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    role = unique("klu-role")
    trust_doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"}}]}
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust_doc))["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="p",
                        PolicyDocument=json.dumps(policy(allow("iam:GetAccessKeyLastUsed"))))
    c = sts.assume_role(RoleArn=arn, RoleSessionName="s1")["Credentials"]
    as_role = make_client("iam", server.endpoint, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    got = as_role.get_access_key_last_used(AccessKeyId=key)
    got.pop("ResponseMetadata")
    assert got == {"UserName": user, "AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"}}
