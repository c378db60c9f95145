"""KMS authorization: key policies (required), IAM delegation, grants, condition keys."""

from __future__ import annotations

import json

import pytest

from support import allow, aws_error, deny, policy


@pytest.fixture(scope="session")
def kms(server):
    return server.client("kms")


def root_statement(account_id):
    return {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": "kms:*", "Resource": "*"}


def denied(action, arn, resource, layer="resource-based policy"):
    return (f"User: {arn} is not authorized to perform: {action} on resource: {resource} "
            f"because no {layer} allows the {action} action")


def test_default_policy_delegates_to_iam(kms, make_user):
    key = kms.create_key()["KeyMetadata"]
    user = make_user(inline={"p": policy(allow(["kms:Encrypt", "kms:Decrypt"], key["Arn"]))})
    ukms = user.client("kms")
    blob = ukms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert ukms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    with aws_error("AccessDeniedException", 400,
                   message=denied("kms:GenerateDataKey", user.arn, key["Arn"], "identity-based policy")):
        ukms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    nobody = make_user()
    with aws_error("AccessDeniedException", 400,
                   message=denied("kms:DescribeKey", nobody.arn, key["Arn"], "identity-based policy")):
        nobody.client("kms").describe_key(KeyId=key["KeyId"])


def test_iam_only_without_root_delegation_is_denied(kms, account_id, make_user):
    user = make_user(inline={"p": policy(allow("kms:*"))})
    other = make_user()
    # The key policy names only `other`: no account delegation, so IAM policies alone cannot allow.
    key_policy = policy({"Effect": "Allow", "Principal": {"AWS": other.arn}, "Action": "kms:*", "Resource": "*"})
    with aws_error("MalformedPolicyDocumentException", 400):
        kms.create_key(Policy=json.dumps(key_policy))
    key = kms.create_key(Policy=json.dumps(key_policy), BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]
    with aws_error("AccessDeniedException", 400, message=denied("kms:Encrypt", user.arn, key["Arn"])):
        user.client("kms").encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    # Not even the root user gets in.
    with aws_error("AccessDeniedException", 400):
        kms.describe_key(KeyId=key["KeyId"])
    # The principal the key policy names needs no IAM policy at all.
    okms = other.client("kms")
    blob = okms.encrypt(KeyId=key["KeyId"], Plaintext=b"ok")["CiphertextBlob"]
    assert okms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"ok"


def test_key_policy_explicit_deny_beats_iam_allow(kms, account_id, make_user):
    user = make_user(inline={"p": policy(allow("kms:*"))})
    key_policy = policy(root_statement(account_id),
                        {"Effect": "Deny", "Principal": {"AWS": user.arn}, "Action": "kms:Decrypt", "Resource": "*"})
    key = kms.create_key(Policy=json.dumps(key_policy))["KeyMetadata"]
    ukms = user.client("kms")
    blob = ukms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    with aws_error("AccessDeniedException", 400, match="with an explicit deny in a resource-based policy"):
        ukms.decrypt(CiphertextBlob=blob)


def test_iam_explicit_deny(kms, make_user):
    key = kms.create_key()["KeyMetadata"]
    user = make_user(inline={"p": policy(allow("kms:*"), deny("kms:Encrypt", key["Arn"]))})
    with aws_error("AccessDeniedException", 400, match="with an explicit deny in an identity-based policy"):
        user.client("kms").encrypt(KeyId=key["KeyId"], Plaintext=b"x")


def test_encryption_context_condition_keys(kms, make_user):
    key = kms.create_key()["KeyMetadata"]
    user = make_user(inline={"p": policy(
        allow("kms:Encrypt", key["Arn"], Condition={"StringEquals": {"kms:EncryptionContext:tenant": "alice"}}),
        allow("kms:Decrypt", key["Arn"], Condition={
            "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["tenant"]},
            "StringEquals": {"kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}}),
        allow("kms:GenerateDataKey", key["Arn"], Condition={"StringEquals": {"kms:CallerAccount": "999999999999"}}),
    )})
    ukms = user.client("kms")
    blob = ukms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"tenant": "alice"})["CiphertextBlob"]
    with aws_error("AccessDeniedException", 400):
        ukms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"tenant": "bob"})
    with aws_error("AccessDeniedException", 400):
        ukms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert ukms.decrypt(CiphertextBlob=blob, EncryptionContext={"tenant": "alice"})["Plaintext"] == b"x"
    other = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"y", EncryptionContext={"tenant": "alice", "extra": "1"})
    with aws_error("AccessDeniedException", 400):
        ukms.decrypt(CiphertextBlob=other["CiphertextBlob"], EncryptionContext={"tenant": "alice", "extra": "1"})
    with aws_error("AccessDeniedException", 400):
        ukms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")


def test_key_spec_and_resource_tag_conditions(kms, make_user):
    sym = kms.create_key(Tags=[{"TagKey": "team", "TagValue": "blue"}])["KeyMetadata"]
    untagged = kms.create_key()["KeyMetadata"]
    user = make_user(inline={"p": policy(allow("kms:DescribeKey", Condition={
        "StringEquals": {"aws:ResourceTag/team": "blue", "kms:KeySpec": "SYMMETRIC_DEFAULT",
                         "kms:KeyUsage": "ENCRYPT_DECRYPT"}}))})
    ukms = user.client("kms")
    ukms.describe_key(KeyId=sym["KeyId"])
    with aws_error("AccessDeniedException", 400):
        ukms.describe_key(KeyId=untagged["KeyId"])


def test_create_key_needs_iam_permission(make_user):
    user = make_user(inline={"p": policy(allow("kms:CreateKey", Condition={
        "StringEquals": {"aws:RequestTag/owner": "me"}}))})
    ukms = user.client("kms")
    with aws_error("AccessDeniedException", 400, message=denied("kms:CreateKey", user.arn, "*", "identity-based policy")):
        ukms.create_key()
    # With the required tag the key is created (and its default policy lets the account's IAM decide).
    md = ukms.create_key(Tags=[{"TagKey": "owner", "TagValue": "me"}])["KeyMetadata"]
    assert md["KeyState"] == "Enabled"


def test_grants_allow_and_constraints(kms, account_id, make_user):
    key = kms.create_key()["KeyMetadata"]
    grantee = make_user()  # no IAM policies at all
    retirer = make_user()
    gkms = grantee.client("kms")
    with aws_error("AccessDeniedException", 400):
        gkms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"dept": "a"})
    g = kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee.arn, RetiringPrincipal=retirer.arn,
                         Operations=["Encrypt", "Decrypt"], Name="g1",
                         Constraints={"EncryptionContextSubset": {"dept": "a"}})
    assert len(g["GrantId"]) == 64 and g["GrantToken"]
    # Same name and parameters: the same grant.
    again = kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee.arn, RetiringPrincipal=retirer.arn,
                             Operations=["Encrypt", "Decrypt"], Name="g1",
                             Constraints={"EncryptionContextSubset": {"dept": "a"}})
    assert again["GrantId"] == g["GrantId"]
    blob = gkms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"dept": "a", "more": "1"},
                        GrantTokens=[g["GrantToken"]])["CiphertextBlob"]
    assert gkms.decrypt(CiphertextBlob=blob, EncryptionContext={"dept": "a", "more": "1"})["Plaintext"] == b"x"
    with aws_error("AccessDeniedException", 400):
        gkms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"dept": "b"})
    with aws_error("AccessDeniedException", 400):
        gkms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext={"dept": "a"})
    grants = kms.list_grants(KeyId=key["KeyId"])["Grants"]
    assert len(grants) == 1
    listed = grants[0]
    assert listed["GranteePrincipal"] == grantee.arn and listed["RetiringPrincipal"] == retirer.arn
    assert listed["Operations"] == ["Encrypt", "Decrypt"] and listed["Name"] == "g1"
    assert listed["Constraints"] == {"EncryptionContextSubset": {"dept": "a"}}
    assert listed["IssuingAccount"] == f"arn:aws:iam::{account_id}:root"
    retirable = kms.list_retirable_grants(RetiringPrincipal=retirer.arn)["Grants"]
    assert [r["GrantId"] for r in retirable] == [g["GrantId"]]
    # The grantee may not retire it (the grant lacks RetireGrant); the retiring principal may.
    with aws_error("AccessDeniedException", 400):
        gkms.retire_grant(GrantToken=g["GrantToken"])
    retirer.client("kms").retire_grant(GrantToken=g["GrantToken"])
    assert kms.list_grants(KeyId=key["KeyId"])["Grants"] == []
    with aws_error("AccessDeniedException", 400):
        gkms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"dept": "a"})


def test_grant_equals_constraint_and_revoke(kms, make_user):
    key = kms.create_key()["KeyMetadata"]
    grantee = make_user()
    gkms = grantee.client("kms")
    g = kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee.arn, Operations=["GenerateDataKey"],
                         Constraints={"EncryptionContextEquals": {"a": "1"}})
    gkms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext={"a": "1"})
    with aws_error("AccessDeniedException", 400):
        gkms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext={"a": "1", "b": "2"})
    kms.revoke_grant(KeyId=key["KeyId"], GrantId=g["GrantId"])
    with aws_error("AccessDeniedException", 400):
        gkms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext={"a": "1"})
    with aws_error("NotFoundException", 400):
        kms.revoke_grant(KeyId=key["KeyId"], GrantId=g["GrantId"])
    with aws_error("InvalidGrantIdException", 400):
        kms.revoke_grant(KeyId=key["KeyId"], GrantId="nope")


def test_grant_errors_and_create_grant_condition(kms, make_user):
    key = kms.create_key()["KeyMetadata"]
    grantee = make_user()
    with aws_error("ValidationException", 400):
        kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee.arn, Operations=["Fly"])
    with aws_error("InvalidArnException", 400):
        kms.create_grant(KeyId=key["KeyId"], GranteePrincipal="not-an-arn", Operations=["Encrypt"])
    with aws_error("InvalidGrantTokenException", 400):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=["!!!"])
    # kms:GrantOperations limits what an IAM principal may delegate.
    admin = make_user(inline={"p": policy(allow("kms:CreateGrant", key["Arn"], Condition={
        "ForAllValues:StringEquals": {"kms:GrantOperations": ["Encrypt", "Decrypt"]}}))})
    akms = admin.client("kms")
    akms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee.arn, Operations=["Decrypt"])
    with aws_error("AccessDeniedException", 400):
        akms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee.arn, Operations=["Decrypt", "CreateGrant"])


def test_grant_with_retire_operation_lets_grantee_retire(kms, make_user):
    key = kms.create_key()["KeyMetadata"]
    grantee = make_user()
    g = kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee.arn, Operations=["DescribeKey", "RetireGrant"])
    gkms = grantee.client("kms")
    gkms.describe_key(KeyId=key["Arn"])
    gkms.retire_grant(KeyId=key["Arn"], GrantId=g["GrantId"])
    with aws_error("AccessDeniedException", 400):
        gkms.describe_key(KeyId=key["Arn"])


def test_disabled_key_is_checked_after_authorization(kms, make_user):
    key = kms.create_key()["KeyMetadata"]
    kms.disable_key(KeyId=key["KeyId"])
    nobody = make_user()
    with aws_error("AccessDeniedException", 400):
        nobody.client("kms").encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    with aws_error("DisabledException", 400):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")


def test_huge_tag_list_is_refused_by_its_count_before_authorization(make_user):
    # A user without policies: the tag limit answers, not a (slow) AccessDenied. (20,000 tags keep the
    # body under the 1 MiB awsJson bound, which refuses larger bodies before they are read.)
    ukms = make_user().client("kms")
    tags = [{"TagKey": f"k{i}", "TagValue": "v"} for i in range(20_000)]
    with aws_error("TagException", 400, message="Too many tags"):
        ukms.create_key(Tags=tags)
