"""Secrets Manager enforcement: IAM policies, the secret's resource policy, and the
secretsmanager:* / aws:* condition keys; KMS permissions on the secret's key."""

from __future__ import annotations

import json

import pytest

from botocore.exceptions import ClientError

from support import REGION, allow, aws_error, deny, make_client, policy, unique


@pytest.fixture(scope="module")
def sm(server):
    return server.client("secretsmanager")


def denied(principal: str, action: str, resource: str, why: str = "because no identity-based policy allows") -> str:
    return f"User: {principal} is not authorized to perform: {action} on resource: {resource} {why}"


def pattern(account_id: str, name: str) -> str:
    return f"arn:aws:secretsmanager:{REGION}:{account_id}:secret:{name}-*"


def test_identity_policy_scopes_actions_and_resources(sm, make_user, account_id):
    name, other = unique("az"), unique("az-other")
    arn = sm.create_secret(Name=name, SecretString="v")["ARN"]
    other_arn = sm.create_secret(Name=other, SecretString="w")["ARN"]
    user = make_user(inline=[policy(allow("secretsmanager:GetSecretValue", pattern(account_id, name)))])
    c = user.client("secretsmanager")
    assert c.get_secret_value(SecretId=name)["SecretString"] == "v"
    assert c.get_secret_value(SecretId=arn)["SecretString"] == "v"
    with aws_error("AccessDeniedException", 400, denied(user.arn, "secretsmanager:DescribeSecret", arn)
                   + " the secretsmanager:DescribeSecret action"):
        c.describe_secret(SecretId=name)
    with aws_error("AccessDeniedException", 400):
        c.get_secret_value(SecretId=other_arn)
    with aws_error("AccessDeniedException", 400):
        c.list_secrets()


def test_missing_secret_is_not_found_only_when_allowed(sm, make_user):
    user = make_user(inline=[policy(allow("secretsmanager:GetSecretValue"))])
    with aws_error("ResourceNotFoundException", 400, "Secrets Manager can't find the specified secret."):
        user.client("secretsmanager").get_secret_value(SecretId=unique("missing"))
    nobody = make_user(inline=[policy(allow("secretsmanager:ListSecrets"))])
    with aws_error("AccessDeniedException", 400):
        nobody.client("secretsmanager").get_secret_value(SecretId=unique("missing"))


def test_resource_policy_explicit_deny_wins(sm, make_user):
    user = make_user(inline=[policy(allow("secretsmanager:*"))])
    name = unique("rp-deny")
    arn = sm.create_secret(Name=name, SecretString="v")["ARN"]
    sm.put_resource_policy(SecretId=name, ResourcePolicy=json.dumps(policy(
        {"Effect": "Deny", "Principal": {"AWS": user.arn}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"})))
    c = user.client("secretsmanager")
    with aws_error("AccessDeniedException", 400, denied(user.arn, "secretsmanager:GetSecretValue", arn,
                                                          "with an explicit deny in a resource-based policy")):
        c.get_secret_value(SecretId=name)
    assert c.describe_secret(SecretId=name)["Name"] == name
    sm.delete_resource_policy(SecretId=name)
    assert c.get_secret_value(SecretId=name)["SecretString"] == "v"


def test_resource_policy_grants_same_account_principal(sm, make_user):
    user = make_user(inline=[policy(allow("secretsmanager:ListSecrets"))])
    name = unique("rp-allow")
    sm.create_secret(Name=name, SecretString="granted")
    c = user.client("secretsmanager")
    with aws_error("AccessDeniedException", 400):
        c.get_secret_value(SecretId=name)
    sm.put_resource_policy(SecretId=name, ResourcePolicy=json.dumps(policy(
        {"Effect": "Allow", "Principal": {"AWS": user.arn}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"})))
    assert c.get_secret_value(SecretId=name)["SecretString"] == "granted"
    with aws_error("AccessDeniedException", 400):
        c.put_secret_value(SecretId=name, SecretString="nope")


def test_resource_tag_condition(sm, make_user, account_id):
    prod, dev = unique("prod"), unique("dev")
    sm.create_secret(Name=prod, SecretString="p", Tags=[{"Key": "env", "Value": "prod"}])
    sm.create_secret(Name=dev, SecretString="d", Tags=[{"Key": "env", "Value": "dev"}])
    for key in ("secretsmanager:ResourceTag/env", "aws:ResourceTag/env"):
        user = make_user(inline=[policy(allow("secretsmanager:GetSecretValue",
                                              Condition={"StringEquals": {key: "dev"}}))])
        c = user.client("secretsmanager")
        assert c.get_secret_value(SecretId=dev)["SecretString"] == "d"
        with aws_error("AccessDeniedException", 400):
            c.get_secret_value(SecretId=prod)


def test_version_stage_and_version_id_conditions(sm, make_user):
    name = unique("stage")
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    sm.put_secret_value(SecretId=name, SecretString="two")
    user = make_user(inline=[policy(allow("secretsmanager:GetSecretValue",
                                          Condition={"StringEquals": {"secretsmanager:VersionStage": "AWSPREVIOUS"}}))])
    c = user.client("secretsmanager")
    assert c.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "one"
    with aws_error("AccessDeniedException", 400):
        c.get_secret_value(SecretId=name)
    user2 = make_user(inline=[policy(allow("secretsmanager:GetSecretValue",
                                           Condition={"StringEquals": {"secretsmanager:VersionId": v1}}))])
    assert user2.client("secretsmanager").get_secret_value(SecretId=name, VersionId=v1)["SecretString"] == "one"
    with aws_error("AccessDeniedException", 400):
        user2.client("secretsmanager").get_secret_value(SecretId=name)


def test_create_conditions_request_tags_name_description(sm, make_user, account_id):
    user = make_user(inline=[policy(
        allow("secretsmanager:CreateSecret", Condition={
            "StringEquals": {"aws:RequestTag/team": "blue"},
            "ForAllValues:StringEquals": {"aws:TagKeys": ["team"]},
            "StringLike": {"secretsmanager:Name": "blue/*"}}),
        allow("secretsmanager:TagResource", Condition={"StringEquals": {"aws:RequestTag/team": "blue"}}),
        deny("secretsmanager:CreateSecret", Condition={"StringLike": {"secretsmanager:Description": "*forbidden*"}}),
    )])
    c = user.client("secretsmanager")
    ok = "blue/" + unique("s")
    c.create_secret(Name=ok, SecretString="x", Tags=[{"Key": "team", "Value": "blue"}])
    with aws_error("AccessDeniedException", 400):
        c.create_secret(Name="blue/" + unique("s"), SecretString="x", Tags=[{"Key": "team", "Value": "red"}])
    with aws_error("AccessDeniedException", 400):
        c.create_secret(Name="blue/" + unique("s"), Tags=[{"Key": "team", "Value": "blue"}, {"Key": "x", "Value": "y"}])
    with aws_error("AccessDeniedException", 400):
        c.create_secret(Name="red/" + unique("s"), Tags=[{"Key": "team", "Value": "blue"}])
    with aws_error("AccessDeniedException", 400, match="explicit deny"):
        c.create_secret(Name="blue/" + unique("s"), Description="a forbidden one", Tags=[{"Key": "team", "Value": "blue"}])


def test_tag_and_untag_conditions(sm, make_user):
    name = unique("tagz")
    sm.create_secret(Name=name, Tags=[{"Key": "owner", "Value": "me"}])
    user = make_user(inline=[policy(
        allow(["secretsmanager:TagResource", "secretsmanager:UntagResource"],
              Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["cost"]}}))])
    c = user.client("secretsmanager")
    c.tag_resource(SecretId=name, Tags=[{"Key": "cost", "Value": "1"}])
    with aws_error("AccessDeniedException", 400):
        c.tag_resource(SecretId=name, Tags=[{"Key": "owner", "Value": "you"}])
    with aws_error("AccessDeniedException", 400):
        c.untag_resource(SecretId=name, TagKeys=["owner"])
    c.untag_resource(SecretId=name, TagKeys=["cost"])


def test_delete_and_policy_condition_keys(sm, make_user):
    name = unique("keys")
    sm.create_secret(Name=name, SecretString="x")
    user = make_user(inline=[policy(
        allow(["secretsmanager:DeleteSecret", "secretsmanager:RestoreSecret", "secretsmanager:PutResourcePolicy"]),
        deny("secretsmanager:DeleteSecret", Condition={"Bool": {"secretsmanager:ForceDeleteWithoutRecovery": "true"}}),
        deny("secretsmanager:PutResourcePolicy", Condition={"Bool": {"secretsmanager:BlockPublicPolicy": "false"}}),
    )])
    c = user.client("secretsmanager")
    with aws_error("AccessDeniedException", 400):
        c.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    c.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    c.restore_secret(SecretId=name)
    doc = json.dumps(policy({"Effect": "Allow", "Principal": {"AWS": user.arn}, "Action": "secretsmanager:*",
                             "Resource": "*"}))
    with aws_error("AccessDeniedException", 400):
        c.put_resource_policy(SecretId=name, ResourcePolicy=doc, BlockPublicPolicy=False)
    c.put_resource_policy(SecretId=name, ResourcePolicy=doc)


def test_batch_get_checks_each_secret(sm, make_user, account_id):
    mine, theirs = unique("bmine"), unique("btheirs")
    sm.create_secret(Name=mine, SecretString="m")
    sm.create_secret(Name=theirs, SecretString="t")
    user = make_user(inline=[policy(allow("secretsmanager:BatchGetSecretValue"),
                                    allow("secretsmanager:GetSecretValue", pattern(account_id, mine)))])
    out = user.client("secretsmanager").batch_get_secret_value(SecretIdList=[mine, theirs])
    assert [v["Name"] for v in out["SecretValues"]] == [mine]
    assert [(e["SecretId"], e["ErrorCode"]) for e in out["Errors"]] == [(theirs, "AccessDeniedException")]
    no_batch = make_user(inline=[policy(allow("secretsmanager:GetSecretValue"))])
    with aws_error("AccessDeniedException", 400):
        no_batch.client("secretsmanager").batch_get_secret_value(SecretIdList=[mine])


def test_kms_decrypt_is_required_on_a_customer_key(server, sm, make_user, account_id):
    if "kms" not in server.health()[1].get("services", []):
        pytest.skip("KMS is not wired into this server")
    kms = server.client("kms")
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    name = unique("cmk")
    sm.create_secret(Name=name, SecretString="under-cmk", KmsKeyId=key_arn)
    assert sm.describe_secret(SecretId=name)["KmsKeyId"] == key_arn
    without = make_user(inline=[policy(allow("secretsmanager:GetSecretValue"))])
    with aws_error("AccessDeniedException", 400, match="kms:Decrypt"):
        without.client("secretsmanager").get_secret_value(SecretId=name)
    with_kms = make_user(inline=[policy(allow("secretsmanager:GetSecretValue"),
                                        allow("kms:Decrypt", key_arn, Condition={"StringEquals": {
                                            "kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}}))])
    assert with_kms.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"] == "under-cmk"
    # The AWS managed key's policy lets every principal of the account use it through Secrets Manager.
    default = unique("awskey")
    sm.create_secret(Name=default, SecretString="managed")
    assert without.client("secretsmanager").get_secret_value(SecretId=default)["SecretString"] == "managed"


def test_default_key_secret_cannot_be_read_or_written_from_another_account(spawn_server):
    """AWS: "You can't access a secret from a different AWS account if you encrypt the secret with
    the default KMS service key" — even when the resource policy allows the other account (the
    managed key's policy cannot name it). Recorded in LocalStack's
    test_secretsmanager.py::TestSecretsManagerMultiAccounts::test_cross_account_access snapshot."""
    srv = spawn_server(data_dir=None, extra_args=["--dev"])
    owner = make_client("secretsmanager", srv.endpoint, "test", "test")
    other = make_client("secretsmanager", srv.endpoint, "111111111111", "test")
    arn = owner.create_secret(Name=unique("xacct"), SecretString="s")["ARN"]
    owner.put_resource_policy(SecretId=arn, ResourcePolicy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                       "Action": "secretsmanager:*", "Resource": "*"}]}))
    assert other.describe_secret(SecretId=arn)["ARN"] == arn
    message = ("You can't access a secret from a different AWS account if you encrypt the secret "
               "with the default KMS service key.")
    for call in (lambda: other.get_secret_value(SecretId=arn),
                 lambda: other.put_secret_value(SecretId=arn, SecretString="n")):
        with pytest.raises(ClientError) as e:
            call()
        assert e.value.response["Error"] == {"Code": "InvalidRequestException", "Message": message}
    # The value did not change, and the owner still reads it.
    assert owner.get_secret_value(SecretId=arn)["SecretString"] == "s"
