"""Secrets Manager through boto3 and the aws CLI: every operation, label moves, idempotency,
lookups, deletion windows, filters, pagination, resource policies, tags, errors."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid

import pytest

from support import REGION, aws_error, recent, unique

NOT_FOUND = "Secrets Manager can't find the specified secret."
MARKED = "You can't perform this operation on the secret because it was marked for deletion."


@pytest.fixture(scope="module")
def sm(server):
    return server.client("secretsmanager")


@pytest.fixture(scope="module")
def sm_raw(server):
    """Skips botocore's client-side validation, to reach the server's."""
    return server.client("secretsmanager", parameter_validation=False)


def tok() -> str:
    return str(uuid.uuid4())


def stages(sm, sid) -> dict:
    return sm.describe_secret(SecretId=sid)["VersionIdsToStages"]


def test_create_describe_get(sm, account_id):
    name = unique("app/db")
    t = tok()
    out = sm.create_secret(Name=name, SecretString='{"user":"u","password":"p"}', Description="the db",
                           ClientRequestToken=t, Tags=[{"Key": "env", "Value": "prod"}])
    arn = out["ARN"]
    prefix = f"arn:aws:secretsmanager:{REGION}:{account_id}:secret:{name}-"
    assert arn.startswith(prefix) and len(arn) == len(prefix) + 6 and arn[-6:].isalnum()
    assert out["Name"] == name and out["VersionId"] == t
    d = sm.describe_secret(SecretId=name)
    assert d["ARN"] == arn and d["Description"] == "the db"
    assert d["VersionIdsToStages"] == {t: ["AWSCURRENT"]}
    assert d["Tags"] == [{"Key": "env", "Value": "prod"}]
    assert recent(d["CreatedDate"]) and recent(d["LastChangedDate"])
    assert "KmsKeyId" not in d  # the AWS managed key aws/secretsmanager
    g = sm.get_secret_value(SecretId=name)
    assert g["SecretString"] == '{"user":"u","password":"p"}'
    assert g["VersionId"] == t and g["VersionStages"] == ["AWSCURRENT"] and g["ARN"] == arn
    assert "SecretBinary" not in g
    assert recent(sm.describe_secret(SecretId=name)["LastAccessedDate"], within=86400 * 2)


def test_binary_secret_round_trip(sm):
    name = unique("bin")
    data = bytes(range(256))
    sm.create_secret(Name=name, SecretBinary=data)
    g = sm.get_secret_value(SecretId=name)
    assert g["SecretBinary"] == data and "SecretString" not in g


def test_create_without_value_then_put(sm):
    name = unique("empty")
    out = sm.create_secret(Name=name)
    assert "VersionId" not in out
    assert "VersionIdsToStages" not in sm.describe_secret(SecretId=name)  # AWS leaves the empty map out
    with aws_error("ResourceNotFoundException", 400,
                   "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT"):
        sm.get_secret_value(SecretId=name)
    put = sm.put_secret_value(SecretId=name, SecretString="v1")
    assert put["VersionStages"] == ["AWSCURRENT"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v1"


def test_lookup_by_name_full_and_partial_arn(sm):
    name = unique("look")
    arn = sm.create_secret(Name=name, SecretString="x")["ARN"]
    for sid in (name, arn, arn[:-7]):
        assert sm.get_secret_value(SecretId=sid)["SecretString"] == "x", sid
    with aws_error("ResourceNotFoundException", 400, NOT_FOUND):
        sm.get_secret_value(SecretId=arn[:-6] + "ZZZZZZ")
    with aws_error("ResourceNotFoundException", 400, NOT_FOUND):
        sm.describe_secret(SecretId=unique("nope"))


def test_labels_move_like_aws(sm):
    name = unique("labels")
    v1, v2, v3 = tok(), tok(), tok()
    sm.create_secret(Name=name, SecretString="one", ClientRequestToken=v1)
    sm.put_secret_value(SecretId=name, SecretString="two", ClientRequestToken=v2)
    assert stages(sm, name) == {v1: ["AWSPREVIOUS"], v2: ["AWSCURRENT"]}
    sm.put_secret_value(SecretId=name, SecretString="three", ClientRequestToken=v3)
    assert stages(sm, name) == {v2: ["AWSPREVIOUS"], v3: ["AWSCURRENT"]}
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "two"
    assert sm.get_secret_value(SecretId=name, VersionId=v1)["SecretString"] == "one"
    # A version with a custom label only: AWSCURRENT does not move.
    v4 = tok()
    out = sm.put_secret_value(SecretId=name, SecretString="four", ClientRequestToken=v4, VersionStages=["blue"])
    assert out["VersionStages"] == ["blue"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "three"
    assert sm.get_secret_value(SecretId=name, VersionStage="blue")["SecretString"] == "four"
    # Move AWSCURRENT by hand: RemoveFromVersionId is required; AWSPREVIOUS follows automatically.
    with aws_error("InvalidParameterException", 400):
        sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v4)
    with aws_error("InvalidParameterException", 400):
        sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v4,
                                       RemoveFromVersionId=v2)
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v4, RemoveFromVersionId=v3)
    assert stages(sm, name) == {v3: ["AWSPREVIOUS"], v4: ["blue", "AWSCURRENT"]}
    sm.update_secret_version_stage(SecretId=name, VersionStage="blue", RemoveFromVersionId=v4)
    assert stages(sm, name) == {v3: ["AWSPREVIOUS"], v4: ["AWSCURRENT"]}
    with aws_error("InvalidParameterException", 400):
        sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", RemoveFromVersionId=v4)
    with aws_error("ResourceNotFoundException", 400):
        sm.get_secret_value(SecretId=name, VersionStage="blue")
    with aws_error("InvalidRequestException", 400):
        sm.get_secret_value(SecretId=name, VersionId=v4, VersionStage="AWSPREVIOUS")


def test_list_secret_version_ids(sm):
    name = unique("versions")
    ids = [tok() for _ in range(4)]
    sm.create_secret(Name=name, SecretString="0", ClientRequestToken=ids[0])
    for i, t in enumerate(ids[1:], 1):
        sm.put_secret_value(SecretId=name, SecretString=str(i), ClientRequestToken=t)
    out = sm.list_secret_version_ids(SecretId=name)
    assert {v["VersionId"] for v in out["Versions"]} == {ids[2], ids[3]}
    everything = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    assert [v["VersionId"] for v in everything] == list(reversed(ids))
    assert all("KmsKeyIds" in v and recent(v["CreatedDate"]) for v in everything)
    page1 = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True, MaxResults=3)
    assert len(page1["Versions"]) == 3 and page1["NextToken"]
    page2 = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True, MaxResults=3, NextToken=page1["NextToken"])
    assert [v["VersionId"] for v in page2["Versions"]] == [ids[0]] and "NextToken" not in page2


def test_client_request_token_idempotency(sm):
    name = unique("idem")
    t = tok()
    sm.create_secret(Name=name, SecretString="a")
    first = sm.put_secret_value(SecretId=name, SecretString="b", ClientRequestToken=t)
    again = sm.put_secret_value(SecretId=name, SecretString="b", ClientRequestToken=t)
    assert again["VersionId"] == first["VersionId"] == t
    assert len(sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]) == 2
    with aws_error("ResourceExistsException", 400):
        sm.put_secret_value(SecretId=name, SecretString="different", ClientRequestToken=t)
    with aws_error("ResourceExistsException", 400, f"The operation failed because the secret {name} already exists."):
        sm.create_secret(Name=name, SecretString="a")


def test_update_secret(sm):
    name = unique("upd")
    sm.create_secret(Name=name, SecretString="a", Description="old")
    out = sm.update_secret(SecretId=name, Description="new")
    assert "VersionId" not in out
    t = tok()
    out = sm.update_secret(SecretId=name, SecretString="b", ClientRequestToken=t)
    assert out["VersionId"] == t
    d = sm.describe_secret(SecretId=name)
    assert d["Description"] == "new" and d["VersionIdsToStages"][t] == ["AWSCURRENT"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "b"
    with aws_error("InvalidParameterException", 400):
        sm.update_secret(SecretId=name, SecretString="x", SecretBinary=b"y")


def test_delete_restore_and_windows(sm):
    name = unique("del")
    sm.create_secret(Name=name, SecretString="x")
    for kwargs in ({"RecoveryWindowInDays": 6}, {"RecoveryWindowInDays": 31}):
        with aws_error("InvalidParameterException", 400,
                       "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."):
            sm.delete_secret(SecretId=name, **kwargs)
    with aws_error("InvalidParameterException", 400,
                   "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."):
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=7, ForceDeleteWithoutRecovery=True)
    out = sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    now = dt.datetime.now(dt.timezone.utc)
    assert abs((out["DeletionDate"] - (now + dt.timedelta(days=7))).total_seconds()) < 120
    for call in (lambda: sm.get_secret_value(SecretId=name), lambda: sm.put_secret_value(SecretId=name, SecretString="y"),
                 lambda: sm.update_secret(SecretId=name, Description="d"),
                 lambda: sm.tag_resource(SecretId=name, Tags=[{"Key": "a", "Value": "b"}])):
        with aws_error("InvalidRequestException", 400, MARKED):
            call()
    with aws_error("InvalidRequestException", 400):
        sm.create_secret(Name=name, SecretString="again")
    assert recent(sm.describe_secret(SecretId=name)["DeletedDate"])
    listed = lambda **kw: [s["Name"] for s in sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}], **kw)["SecretList"]]
    assert listed() == [] and listed(IncludePlannedDeletion=True) == [name]
    default = sm.delete_secret(SecretId=sm.restore_secret(SecretId=name)["ARN"])
    assert abs((default["DeletionDate"] - (now + dt.timedelta(days=30))).total_seconds()) < 120
    sm.restore_secret(SecretId=name)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "x"
    assert "DeletedDate" not in sm.describe_secret(SecretId=name)


def test_force_delete_purges_immediately(sm):
    name = unique("force")
    arn = sm.create_secret(Name=name, SecretString="x")["ARN"]
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    with aws_error("ResourceNotFoundException", 400, NOT_FOUND):
        sm.describe_secret(SecretId=arn)
    new_arn = sm.create_secret(Name=name, SecretString="y")["ARN"]
    assert new_arn != arn
    with aws_error("ResourceNotFoundException", 400, NOT_FOUND):
        sm.get_secret_value(SecretId=arn)  # the old ARN names the purged secret, not the new one
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "y"


def test_list_secrets_filters_sort_and_pages(sm):
    tag = unique("grp")
    names = [unique("ls") for _ in range(5)]
    for i, n in enumerate(names):
        sm.create_secret(Name=n, Description=f"Widget number {i}" if i % 2 == 0 else "gadget",
                         Tags=[{"Key": tag, "Value": "even" if i % 2 == 0 else "odd"}])
    f = [{"Key": "tag-key", "Values": [tag]}]
    listed = [s["Name"] for s in sm.list_secrets(Filters=f)["SecretList"]]
    assert listed == names
    assert [s["Name"] for s in sm.list_secrets(Filters=f, SortOrder="desc")["SecretList"]] == list(reversed(names))
    evens = sm.list_secrets(Filters=f + [{"Key": "tag-value", "Values": ["even"]}])["SecretList"]
    assert [s["Name"] for s in evens] == names[0::2]
    assert [s["Name"] for s in sm.list_secrets(Filters=f + [{"Key": "description", "Values": ["widget"]}])["SecretList"]] == names[0::2]
    assert [s["Name"] for s in sm.list_secrets(Filters=f + [{"Key": "tag-value", "Values": ["!even"]}])["SecretList"]] == names[1::2]
    assert sm.list_secrets(Filters=[{"Key": "name", "Values": [names[0].upper()]}])["SecretList"] == []
    # Pagination by hand and with the paginator.
    seen, token = [], None
    while True:
        kw = {"Filters": f, "MaxResults": 2}
        if token:
            kw["NextToken"] = token
        page = sm.list_secrets(**kw)
        assert len(page["SecretList"]) <= 2
        seen += [s["Name"] for s in page["SecretList"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == names
    pages = sm.get_paginator("list_secrets").paginate(Filters=f, PaginationConfig={"PageSize": 3})
    assert [s["Name"] for p in pages for s in p["SecretList"]] == names
    entry = sm.list_secrets(Filters=[{"Key": "name", "Values": [names[0]]}])["SecretList"][0]
    assert entry["Tags"] == [{"Key": tag, "Value": "even"}] and recent(entry["CreatedDate"])
    with aws_error("InvalidNextTokenException", 400):
        sm.list_secrets(NextToken="bm90LWEtdG9rZW4=")


def test_list_secrets_rejects_bad_filters(sm_raw):
    with aws_error("ValidationException", 400):
        sm_raw.list_secrets(Filters=[{"Key": "colour", "Values": ["x"]}])
    with aws_error("ValidationException", 400):
        sm_raw.list_secrets(MaxResults=101)


def test_batch_get_secret_value(sm):
    a, b = unique("ba"), unique("bb")
    sm.create_secret(Name=a, SecretString="A")
    sm.create_secret(Name=b, SecretString="B")
    missing = unique("missing")
    out = sm.batch_get_secret_value(SecretIdList=[a, b, missing])
    assert sorted(v["SecretString"] for v in out["SecretValues"]) == ["A", "B"]
    assert [(e["SecretId"], e["ErrorCode"]) for e in out["Errors"]] == [(missing, "ResourceNotFoundException")]
    out = sm.batch_get_secret_value(Filters=[{"Key": "name", "Values": [a]}])
    assert [v["Name"] for v in out["SecretValues"]] == [a]
    with aws_error("InvalidParameterException", 400):
        sm.batch_get_secret_value()


@pytest.mark.parametrize(
    "kwargs,check",
    [
        ({}, lambda p: len(p) == 32),
        ({"PasswordLength": 100}, lambda p: len(p) == 100),
        ({"ExcludeNumbers": True, "ExcludePunctuation": True}, lambda p: p.isalpha()),
        ({"ExcludeUppercase": True, "ExcludeLowercase": True, "ExcludePunctuation": True}, lambda p: p.isdigit()),
        ({"IncludeSpace": True, "PasswordLength": 60}, lambda p: " " in p),
        ({"ExcludeCharacters": "abcdefghijklmnopqrstuvwxyz"}, lambda p: not any(c.islower() for c in p)),
        ({"PasswordLength": 4, "RequireEachIncludedType": True},
         lambda p: any(c.islower() for c in p) and any(c.isupper() for c in p) and any(c.isdigit() for c in p)),
        ({"PasswordLength": 2, "RequireEachIncludedType": False}, lambda p: len(p) == 2),
    ],
)
def test_get_random_password(sm, kwargs, check):
    p = sm.get_random_password(**kwargs)["RandomPassword"]
    assert check(p), p


def test_get_random_password_errors(sm, sm_raw):
    with aws_error("InvalidParameterException", 400):
        sm.get_random_password(ExcludeNumbers=True, ExcludePunctuation=True, ExcludeUppercase=True, ExcludeLowercase=True)
    with aws_error("InvalidParameterException", 400):
        sm.get_random_password(PasswordLength=3)
    with aws_error("ValidationException", 400):
        sm_raw.get_random_password(PasswordLength=4097)


def test_resource_policies(sm, account_id):
    name = unique("pol")
    arn = sm.create_secret(Name=name, SecretString="x")["ARN"]
    private = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
        "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]})
    public = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]})
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=name)
    assert sm.put_resource_policy(SecretId=name, ResourcePolicy=private)["ARN"] == arn
    assert json.loads(sm.get_resource_policy(SecretId=name)["ResourcePolicy"]) == json.loads(private)
    with aws_error("PublicPolicyException", 400):
        sm.put_resource_policy(SecretId=name, ResourcePolicy=public, BlockPublicPolicy=True)
    sm.put_resource_policy(SecretId=name, ResourcePolicy=public, BlockPublicPolicy=False)
    with aws_error("MalformedPolicyDocumentException", 400):
        sm.put_resource_policy(SecretId=name, ResourcePolicy='{"Version": "2012-10-17", "Statement": [')
    v = sm.validate_resource_policy(ResourcePolicy=private)
    assert v["PolicyValidationPassed"] is True and v["ValidationErrors"] == []
    v = sm.validate_resource_policy(SecretId=name, ResourcePolicy=public)
    assert v["PolicyValidationPassed"] is False
    assert v["ValidationErrors"][0]["CheckName"] == "PUBLIC_ACCESS_CHECK"
    v = sm.validate_resource_policy(ResourcePolicy='{"Statement": "nope"}')
    assert v["PolicyValidationPassed"] is False and v["ValidationErrors"][0]["CheckName"] == "SYNTAX_CHECK"
    sm.delete_resource_policy(SecretId=name)
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=name)


def test_tags(sm):
    name = unique("tags")
    sm.create_secret(Name=name, Tags=[{"Key": "a", "Value": "1"}])
    sm.tag_resource(SecretId=name, Tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "3"}])
    assert sm.describe_secret(SecretId=name)["Tags"] == [{"Key": "a", "Value": "3"}, {"Key": "b", "Value": "2"}]
    sm.untag_resource(SecretId=name, TagKeys=["a", "zzz"])
    assert sm.describe_secret(SecretId=name)["Tags"] == [{"Key": "b", "Value": "2"}]
    with aws_error("InvalidParameterException", 400):
        sm.tag_resource(SecretId=name, Tags=[{"Key": "aws:reserved", "Value": "x"}])
    with aws_error("ValidationException", 400):
        sm.tag_resource(SecretId=name, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])


def test_input_validation(sm, sm_raw):
    with aws_error("ValidationException", 400):
        sm.create_secret(Name="bad name!")
    with aws_error("InvalidParameterException", 400,
                   "You can't specify both a binary secret value and a string secret value in the same secret."):
        sm.create_secret(Name=unique("both"), SecretString="a", SecretBinary=b"b")
    with aws_error("ValidationException", 400):
        sm_raw.create_secret(Name=unique("tok"), ClientRequestToken="too-short")
    with aws_error("ValidationException", 400):
        sm_raw.get_secret_value()
    with aws_error("ValidationException", 400):
        sm.create_secret(Name=unique("big"), SecretString="x" * 65537)


def test_unimplemented_operation_is_unknown(sm):
    name = unique("rep")
    arn = sm.create_secret(Name=name, SecretString="x")["ARN"]
    with aws_error("UnknownOperationException", 400):
        sm.disassociate_cross_account_replica(SecretId=name, CrossAccountReplicaARN=arn)


def test_secret_values_are_not_on_disk_in_plaintext(sm, server):
    marker = "plaintext-canary-" + uuid.uuid4().hex
    name = unique("canary")
    sm.create_secret(Name=name, SecretString=marker)
    sm.put_secret_value(SecretId=name, SecretBinary=marker.encode() + b"-bin")
    assert sm.get_secret_value(SecretId=name)["SecretBinary"] == marker.encode() + b"-bin"
    found = []
    for path in server.data_dir.rglob("*"):
        if path.is_file() and marker.encode() in path.read_bytes():
            found.append(path)
    assert found == []
    assert marker not in server.logs()


def test_cli_round_trip(aws_cli):
    name = unique("cli")
    created = aws_cli("secretsmanager", "create-secret", "--name", name, "--secret-string", "s3cr3t", check=True).json()
    assert created["Name"] == name
    got = aws_cli("secretsmanager", "get-secret-value", "--secret-id", name, check=True).json()
    assert got["SecretString"] == "s3cr3t" and got["VersionStages"] == ["AWSCURRENT"]
    aws_cli("secretsmanager", "put-secret-value", "--secret-id", name, "--secret-string", "v2", check=True)
    versions = aws_cli("secretsmanager", "list-secret-version-ids", "--secret-id", name, check=True).json()["Versions"]
    assert sorted(s for v in versions for s in v["VersionStages"]) == ["AWSCURRENT", "AWSPREVIOUS"]
    listed = aws_cli("secretsmanager", "list-secrets", "--filters", f"Key=name,Values={name}", check=True).json()
    assert [s["Name"] for s in listed["SecretList"]] == [name]
    pw = aws_cli("secretsmanager", "get-random-password", "--password-length", "20", "--exclude-punctuation",
                 check=True).json()["RandomPassword"]
    assert len(pw) == 20 and pw.isalnum()
    deleted = aws_cli("secretsmanager", "delete-secret", "--secret-id", name, "--recovery-window-in-days", "7",
                      check=True).json()
    assert deleted["Name"] == name
    r = aws_cli("secretsmanager", "get-secret-value", "--secret-id", name)
    assert r.returncode != 0 and "InvalidRequestException" in r.stderr and "marked for deletion" in r.stderr
    aws_cli("secretsmanager", "restore-secret", "--secret-id", name, check=True)
    aws_cli("secretsmanager", "delete-secret", "--secret-id", name, "--force-delete-without-recovery", check=True)
    r = aws_cli("secretsmanager", "describe-secret", "--secret-id", name)
    assert r.returncode != 0 and "ResourceNotFoundException" in r.stderr


def test_binary_via_cli(aws_cli, tmp_path):
    name = unique("clibin")
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x00\x01binary\xff")
    aws_cli("secretsmanager", "create-secret", "--name", name, "--secret-binary", f"fileb://{blob}", check=True)
    got = aws_cli("secretsmanager", "get-secret-value", "--secret-id", name, check=True).json()
    assert base64.b64decode(got["SecretBinary"]) == b"\x00\x01binary\xff"


def test_replica_in_another_region_reads_the_primary(server, sm):
    other = "us-west-2" if REGION != "us-west-2" else "us-east-2"
    sm2 = server.client("secretsmanager", region=other)
    name = unique("dup")
    created = sm.create_secret(Name=name, SecretString="s1", AddReplicaRegions=[{"Region": other}])
    assert created["ReplicationStatus"] == [{"Region": other, "Status": "InSync"}]
    replica = created["ARN"].replace(f":{REGION}:", f":{other}:")
    # The value is decrypted with the primary Region's key.
    got = sm2.get_secret_value(SecretId=replica)
    assert (got["ARN"], got["SecretString"]) == (replica, "s1")
    assert sm2.describe_secret(SecretId=name)["PrimaryRegion"] == REGION
    with aws_error("InvalidParameterException", 400):
        sm2.put_secret_value(SecretId=replica, SecretString="x")
    with aws_error("InvalidParameterException", 400):
        sm.delete_secret(SecretId=name)
    sm.remove_regions_from_replication(SecretId=name, RemoveReplicaRegions=[other])
    with aws_error("ResourceNotFoundException", 400):
        sm2.describe_secret(SecretId=replica)
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


def test_untagging_everything_leaves_an_empty_tag_list(sm):
    name = unique("tags")
    sm.create_secret(Name=name, SecretString="x")
    assert "Tags" not in sm.describe_secret(SecretId=name)
    sm.tag_resource(SecretId=name, Tags=[{"Key": "a", "Value": "1"}])
    sm.untag_resource(SecretId=name, TagKeys=["a"])
    assert sm.describe_secret(SecretId=name)["Tags"] == []
