"""CloudTrail: one record per call (allowed, denied, unauthenticated), redaction, LookupEvents,
trails, delivered log files with a signed digest chain, and `rampart trail verify`."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from support import allow, make_client, policy, random_key_id, random_secret, rampart_bin, unique


@pytest.fixture(scope="module")
def ct(server):
    return server.client("cloudtrail")


@pytest.fixture(scope="module")
def ct_raw(server):
    """Skips botocore's client-side validation, to reach the server's."""
    return server.client("cloudtrail", parameter_validation=False)


def lookup(ct, key, value, **kw):
    return ct.lookup_events(LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}], **kw)["Events"]


def record(event) -> dict:
    return json.loads(event["CloudTrailEvent"])


def one_record(ct, key, value, event_name):
    events = [e for e in lookup(ct, key, value) if e["EventName"] == event_name]
    assert len(events) == 1, events
    return events[0], record(events[0])


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


# -- records ---------------------------------------------------------------------------------------
def test_allowed_call_by_root_is_recorded(server, iam, ct, account_id):
    name = unique("user")
    resp = iam.create_user(UserName=name)
    event, r = one_record(ct, "ResourceName", name, "CreateUser")
    assert r["eventVersion"] == "1.09"
    assert r["eventSource"] == "iam.amazonaws.com"
    assert r["eventName"] == "CreateUser"
    assert r["awsRegion"] == "us-east-1"
    assert r["sourceIPAddress"] == "127.0.0.1"
    assert "Boto3" in r["userAgent"] or "Botocore" in r["userAgent"]
    assert r["userIdentity"] == {
        "type": "Root",
        "principalId": account_id,
        "arn": f"arn:aws:iam::{account_id}:root",
        "accountId": account_id,
        "accessKeyId": server.access_key_id,
    }
    assert r["requestParameters"] == {"userName": name}
    assert r["responseElements"]["user"]["userName"] == name
    assert r["responseElements"]["user"]["arn"] == resp["User"]["Arn"]
    assert r["requestID"] == resp["ResponseMetadata"]["RequestId"]
    assert r["eventID"] == event["EventId"]
    assert r["readOnly"] is False
    assert r["eventType"] == "AwsApiCall"
    assert r["managementEvent"] is True
    assert r["recipientAccountId"] == account_id
    assert r["eventCategory"] == "Management"
    assert "errorCode" not in r
    assert event["Username"] == "root"
    assert event["AccessKeyId"] == server.access_key_id
    assert {"ResourceType": "AWS::IAM::User", "ResourceName": name} in event["Resources"]
    t = dt.datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    assert abs((event["EventTime"] - t).total_seconds()) < 1


def test_denied_call_by_user_is_recorded(make_user, ct, account_id):
    user = make_user()
    with pytest.raises(ClientError) as exc:
        user.iam.list_users()
    assert code(exc) == "AccessDenied"
    event, r = one_record(ct, "AccessKeyId", user.access_key_id, "ListUsers")
    assert r["errorCode"] == "AccessDenied"
    assert "is not authorized to perform: iam:ListUsers" in r["errorMessage"]
    assert r["userIdentity"] == {
        "type": "IAMUser",
        "principalId": user.user_id,
        "arn": user.arn,
        "accountId": account_id,
        "accessKeyId": user.access_key_id,
        "userName": user.name,
    }
    assert r["readOnly"] is True
    assert r["responseElements"] is None
    assert event["Username"] == user.name


def test_read_only_success_has_null_response_elements(make_user, ct):
    user = make_user(inline=[policy(allow("iam:GetUser"))])
    user.iam.get_user(UserName=user.name)
    _, r = one_record(ct, "AccessKeyId", user.access_key_id, "GetUser")
    assert r["readOnly"] is True and r["responseElements"] is None
    assert r["requestParameters"] == {"userName": user.name}


def test_unknown_key_is_recorded_under_the_server_account(server, ct, account_id):
    key = random_key_id()
    client = make_client("iam", server.endpoint, key, random_secret())
    with pytest.raises(ClientError) as exc:
        client.get_user()
    assert code(exc) == "InvalidClientTokenId"
    _, r = one_record(ct, "AccessKeyId", key, "GetUser")
    assert r["errorCode"] == "InvalidClientTokenId"
    assert r["userIdentity"] == {"type": "Unknown", "accountId": account_id, "accessKeyId": key}
    assert r["recipientAccountId"] == account_id
    assert r["requestParameters"] is None


def test_bad_signature_with_a_known_key_names_the_user(make_user, server, ct):
    user = make_user()
    client = make_client("sts", server.endpoint, user.access_key_id, random_secret())
    with pytest.raises(ClientError) as exc:
        client.get_caller_identity()
    assert code(exc) == "SignatureDoesNotMatch"
    _, r = one_record(ct, "AccessKeyId", user.access_key_id, "GetCallerIdentity")
    assert r["eventSource"] == "sts.amazonaws.com"
    assert r["errorCode"] == "SignatureDoesNotMatch"
    assert r["userIdentity"]["type"] == "IAMUser"
    assert r["userIdentity"]["userName"] == user.name


def test_create_access_key_secret_is_never_recorded(server, iam, ct):
    name = unique("user")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    _, r = one_record(ct, "ResourceName", name, "CreateAccessKey")
    assert r["responseElements"]["accessKey"]["accessKeyId"] == key["AccessKeyId"]
    assert r["responseElements"]["accessKey"]["userName"] == name
    assert "secretAccessKey" not in r["responseElements"]["accessKey"]
    assert key["SecretAccessKey"] not in json.dumps(r)
    # Nowhere in the data directory either (store, WAL, trail files).
    secret = key["SecretAccessKey"].encode()
    for path in Path(server.data_dir).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".gz":
                data = gzip.decompress(data)
            assert secret not in data, f"secret found in {path}"


def test_login_profile_password_is_never_recorded(iam, ct):
    name = unique("user")
    iam.create_user(UserName=name)
    iam.create_login_profile(UserName=name, Password="Sup3r-Secret-Pw!x", PasswordResetRequired=False)
    _, r = one_record(ct, "ResourceName", name, "CreateLoginProfile")
    assert "Sup3r-Secret-Pw!x" not in json.dumps(r)
    assert r["requestParameters"]["userName"] == name
    assert "password" not in r["requestParameters"]


def test_virtual_mfa_seed_is_never_recorded(iam, ct):
    name = unique("mfa")
    dev = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]
    events = [e for e in lookup(ct, "EventName", "CreateVirtualMFADevice") if name in e["CloudTrailEvent"]]
    assert len(events) == 1
    r = record(events[0])
    assert r["responseElements"]["virtualMFADevice"]["serialNumber"] == dev["SerialNumber"]
    text = json.dumps(r)
    assert dev["Base32StringSeed"].decode() not in text
    assert "base32StringSeed" not in text and "qRCodePNG" not in text


# -- LookupEvents -----------------------------------------------------------------------------------
def test_lookup_filters(make_user, ct, server):
    user = make_user(inline=[policy(allow(["iam:GetUser", "iam:TagUser"]))])
    user.iam.get_user(UserName=user.name)
    user.iam.tag_user(UserName=user.name, Tags=[{"Key": "k", "Value": "v"}])
    events = lookup(ct, "AccessKeyId", user.access_key_id)
    assert [e["EventName"] for e in events] == ["TagUser", "GetUser"], "newest first"
    tag_event = events[0]
    assert [e["EventId"] for e in lookup(ct, "EventId", tag_event["EventId"])] == [tag_event["EventId"]]
    assert any(e["EventId"] == tag_event["EventId"] for e in lookup(ct, "EventName", "TagUser"))
    assert any(e["EventId"] == tag_event["EventId"] for e in lookup(ct, "Username", user.name))
    assert any(e["EventId"] == tag_event["EventId"] for e in lookup(ct, "ResourceType", "AWS::IAM::User"))
    assert any(e["EventId"] == tag_event["EventId"] for e in lookup(ct, "EventSource", "iam.amazonaws.com"))
    by_name = lookup(ct, "ResourceName", user.name)
    assert {"TagUser", "GetUser", "CreateUser"} <= {e["EventName"] for e in by_name}
    ro = {e["EventId"] for e in lookup(ct, "ReadOnly", "true", MaxResults=50)}
    rw = {e["EventId"] for e in lookup(ct, "ReadOnly", "false", MaxResults=50)}
    assert tag_event["EventId"] in rw and tag_event["EventId"] not in ro
    assert all(e["EventSource"] == "iam.amazonaws.com" for e in lookup(ct, "EventSource", "iam.amazonaws.com"))
    assert lookup(ct, "EventName", "NoSuchOperation") == []


def test_lookup_time_range(make_user, ct):
    user = make_user(inline=[policy(allow("iam:GetUser"))])
    user.iam.get_user(UserName=user.name)
    now = dt.datetime.now(dt.timezone.utc)
    assert lookup(ct, "AccessKeyId", user.access_key_id, StartTime=now - dt.timedelta(minutes=5))
    assert lookup(ct, "AccessKeyId", user.access_key_id, EndTime=now - dt.timedelta(minutes=5)) == []
    assert lookup(ct, "AccessKeyId", user.access_key_id, StartTime=now + dt.timedelta(minutes=5)) == []


def test_lookup_pagination(make_user, ct):
    user = make_user(inline=[policy(allow("iam:GetUser"))])
    for _ in range(5):
        user.iam.get_user(UserName=user.name)
    ids, token, pages = [], None, 0
    while True:
        kw = {"NextToken": token} if token else {}
        resp = ct.lookup_events(
            LookupAttributes=[{"AttributeKey": "AccessKeyId", "AttributeValue": user.access_key_id}],
            MaxResults=2,
            **kw,
        )
        pages += 1
        assert len(resp["Events"]) <= 2
        ids += [e["EventId"] for e in resp["Events"]]
        token = resp.get("NextToken")
        if not token:
            break
    assert pages == 3 and len(ids) == 5 == len(set(ids))
    # The boto3 paginator walks the same pages.
    pager = ct.get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": "AccessKeyId", "AttributeValue": user.access_key_id}],
        PaginationConfig={"PageSize": 2},
    )
    assert [e["EventId"] for page in pager for e in page["Events"]] == ids


def test_lookup_errors(ct_raw):
    with pytest.raises(ClientError) as exc:
        ct_raw.lookup_events(
            LookupAttributes=[
                {"AttributeKey": "EventName", "AttributeValue": "a"},
                {"AttributeKey": "Username", "AttributeValue": "b"},
            ]
        )
    assert code(exc) == "InvalidLookupAttributesException"
    with pytest.raises(ClientError) as exc:
        ct_raw.lookup_events(LookupAttributes=[{"AttributeKey": "Bogus", "AttributeValue": "a"}])
    assert code(exc) == "InvalidLookupAttributesException"
    with pytest.raises(ClientError) as exc:
        ct_raw.lookup_events(MaxResults=51)
    assert code(exc) == "InvalidMaxResultsException"
    now = dt.datetime.now(dt.timezone.utc)
    with pytest.raises(ClientError) as exc:
        ct_raw.lookup_events(StartTime=now, EndTime=now - dt.timedelta(hours=1))
    assert code(exc) == "InvalidTimeRangeException"
    with pytest.raises(ClientError) as exc:
        ct_raw.lookup_events(NextToken="not-a-token")
    assert code(exc) == "InvalidNextTokenException"


def test_lookup_requires_cloudtrail_permission(make_user):
    user = make_user()
    with pytest.raises(ClientError) as exc:
        user.client("cloudtrail").lookup_events()
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403)
    assert "cloudtrail:LookupEvents" in exc.value.response["Error"]["Message"]
    allowed = make_user(inline=[policy(allow("cloudtrail:LookupEvents"))])
    assert "Events" in allowed.client("cloudtrail").lookup_events(MaxResults=1)


def test_unknown_operation(server):
    import botocore.session  # noqa: F401

    ct = server.client("cloudtrail")
    with pytest.raises(ClientError) as exc:
        ct.generate_query(EventDataStores=["eds"], Prompt="show me every call")
    assert code(exc) == "UnknownOperationException"


# -- trails ----------------------------------------------------------------------------------------
@pytest.fixture
def trail(ct):
    names = []

    def _make(**kw):
        name = unique("trail")
        kw.setdefault("S3BucketName", "audit-" + name.lower())
        ct.create_trail(Name=name, **kw)
        names.append(name)
        return name

    yield _make
    for n in names:
        try:
            ct.delete_trail(Name=n)
        except ClientError:
            pass


def test_trail_lifecycle(ct, trail, account_id):
    name = trail(EnableLogFileValidation=True, TagsList=[{"Key": "team", "Value": "sec"}])
    arn = f"arn:aws:cloudtrail:us-east-1:{account_id}:trail/{name}"
    t = ct.get_trail(Name=name)["Trail"]
    assert t["TrailARN"] == arn and t["HomeRegion"] == "us-east-1"
    assert t["LogFileValidationEnabled"] is True and t["IsMultiRegionTrail"] is False
    assert t["IncludeGlobalServiceEvents"] is True
    assert ct.get_trail(Name=arn)["Trail"]["Name"] == name
    assert any(x["TrailARN"] == arn for x in ct.describe_trails()["trailList"])
    assert [x["Name"] for x in ct.describe_trails(trailNameList=[name])["trailList"]] == [name]
    assert any(x["TrailARN"] == arn for x in ct.list_trails()["Trails"])

    updated = ct.update_trail(Name=name, S3KeyPrefix="logs", IsMultiRegionTrail=True)
    assert updated["S3KeyPrefix"] == "logs" and updated["IsMultiRegionTrail"] is True

    assert ct.get_trail_status(Name=name)["IsLogging"] is False
    ct.start_logging(Name=name)
    status = ct.get_trail_status(Name=name)
    assert status["IsLogging"] is True and "StartLoggingTime" in status
    ct.stop_logging(Name=name)
    status = ct.get_trail_status(Name=name)
    assert status["IsLogging"] is False and "StopLoggingTime" in status

    sel = ct.get_event_selectors(TrailName=name)
    assert sel["EventSelectors"][0]["ReadWriteType"] == "All"
    ct.put_event_selectors(TrailName=name, EventSelectors=[{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}])
    assert ct.get_event_selectors(TrailName=name)["EventSelectors"][0]["ReadWriteType"] == "WriteOnly"
    assert ct.get_trail(Name=name)["Trail"]["HasCustomEventSelectors"] is True

    ct.add_tags(ResourceId=arn, TagsList=[{"Key": "env", "Value": "prod"}])
    tags = ct.list_tags(ResourceIdList=[arn])["ResourceTagList"][0]
    assert tags["ResourceId"] == arn
    assert sorted((t["Key"], t["Value"]) for t in tags["TagsList"]) == [("env", "prod"), ("team", "sec")]
    ct.remove_tags(ResourceId=arn, TagsList=[{"Key": "team"}])
    assert [t["Key"] for t in ct.list_tags(ResourceIdList=[arn])["ResourceTagList"][0]["TagsList"]] == ["env"]

    ct.delete_trail(Name=name)
    with pytest.raises(ClientError) as exc:
        ct.get_trail(Name=name)
    assert code(exc) == "TrailNotFoundException"


def test_trail_errors(ct, ct_raw, trail, account_id):
    name = trail()
    with pytest.raises(ClientError) as exc:
        ct.create_trail(Name=name, S3BucketName="another-bucket")
    assert code(exc) == "TrailAlreadyExistsException"
    for bad in ["ab", "-starts-with-dash", "has space", "a..b", "192.168.1.1"]:
        with pytest.raises(ClientError) as exc:
            ct_raw.create_trail(Name=bad, S3BucketName="bucket-ok")
        assert code(exc) == "InvalidTrailNameException", bad
    with pytest.raises(ClientError) as exc:
        ct.create_trail(Name=unique("trail"), S3BucketName="Bad_Bucket")
    assert code(exc) == "InvalidS3BucketNameException"
    for op, kw in [
        ("get_trail", {"Name": "no-such-trail"}),
        ("delete_trail", {"Name": "no-such-trail"}),
        ("start_logging", {"Name": "no-such-trail"}),
        ("get_trail_status", {"Name": "no-such-trail"}),
        ("get_event_selectors", {"TrailName": "no-such-trail"}),
    ]:
        with pytest.raises(ClientError) as exc:
            getattr(ct, op)(**kw)
        assert code(exc) == "TrailNotFoundException", op
    # GetTrail names the trail as given; the other operations name its ARN (as AWS does).
    with pytest.raises(ClientError) as exc:
        ct.get_trail(Name="no-such-trail")
    assert exc.value.response["Error"]["Message"] == f"Unknown trail: no-such-trail for the user: {account_id}"
    with pytest.raises(ClientError) as exc:
        ct.get_trail_status(Name="no-such-trail")
    assert exc.value.response["Error"]["Message"] == (
        f"Unknown trail: arn:aws:cloudtrail:us-east-1:{account_id}:trail/no-such-trail for the user: {account_id}"
    )
    for bad, message in [
        ("a", "Trail name too short. Minimum allowed length: 3 characters. Specified name length: 1 characters."),
        ("a" * 129, "Trail name too long. Maximum allowed length: 128 characters. Specified name length: 129 characters."),
        ("trail!", "Trail name must ends with a letter or number."),
    ]:
        with pytest.raises(ClientError) as exc:
            ct_raw.get_trail(Name=bad)
        assert exc.value.response["Error"]["Message"] == message, bad
    with pytest.raises(ClientError) as exc:
        ct.get_trail(Name="arn:aws:cloudtrail:us-east-1:bad")
    assert code(exc) == "CloudTrailARNInvalidException"
    with pytest.raises(ClientError) as exc:
        ct.add_tags(ResourceId=f"arn:aws:cloudtrail:us-east-1:{account_id}:trail/no-such-trail",
                    TagsList=[{"Key": "a", "Value": "b"}])
    assert code(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        ct.put_event_selectors(TrailName=name, EventSelectors=[{"ReadWriteType": "All"}],
                               AdvancedEventSelectors=[{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}])
    assert code(exc) == "InvalidParameterCombinationException"


def test_trail_actions_are_authorized(make_user, ct, trail, account_id):
    name = trail()
    user = make_user(inline=[policy(allow("cloudtrail:GetTrail", f"arn:aws:cloudtrail:us-east-1:{account_id}:trail/{name}"))])
    uct = user.client("cloudtrail")
    assert uct.get_trail(Name=name)["Trail"]["Name"] == name
    with pytest.raises(ClientError) as exc:
        uct.delete_trail(Name=name)
    assert "cloudtrail:DeleteTrail" in exc.value.response["Error"]["Message"]


def test_aws_cli_describe_trails_and_lookup(aws_cli, trail):
    name = trail()
    out = aws_cli("cloudtrail", "describe-trails", "--trail-name-list", name, check=True).json()
    assert [t["Name"] for t in out["trailList"]] == [name]
    out = aws_cli("cloudtrail", "lookup-events", "--max-results", "3",
                  "--lookup-attributes", "AttributeKey=EventName,AttributeValue=DescribeTrails", check=True).json()
    assert out["Events"] and all(e["EventName"] == "DescribeTrails" for e in out["Events"])


# -- delivery and validation ----------------------------------------------------------------------------
def trail_files(bucket_dir: Path, kind: str) -> list[Path]:
    return sorted(p for p in bucket_dir.rglob("*.json.gz") if f"/{kind}/" in str(p))


def verify(dir_: Path) -> subprocess.CompletedProcess:
    return subprocess.run([rampart_bin(), "trail", "verify", str(dir_)], capture_output=True, text=True, timeout=60)


def deliver_some(server, ct, trail, iam, rounds=2):
    """A validated trail; calls; StopLogging/StartLogging as the deterministic flush."""
    name = trail(EnableLogFileValidation=True)
    bucket = ct.get_trail(Name=name)["Trail"]["S3BucketName"]
    ct.start_logging(Name=name)
    users = []
    for _ in range(rounds):
        u = unique("user")
        iam.create_user(UserName=u)
        users.append(u)
        ct.stop_logging(Name=name)
        ct.start_logging(Name=name)
    ct.stop_logging(Name=name)
    return name, Path(server.data_dir) / "trails" / bucket, users


def test_delivery_writes_log_and_digest_files(server, ct, trail, iam, account_id):
    name, bucket_dir, users = deliver_some(server, ct, trail, iam)
    logs = trail_files(bucket_dir, "CloudTrail")
    digests = trail_files(bucket_dir, "CloudTrail-Digest")
    assert len(logs) >= 2 and len(digests) >= 2
    rel = logs[0].relative_to(bucket_dir).as_posix()
    assert rel.startswith(f"AWSLogs/{account_id}/CloudTrail/us-east-1/")
    assert logs[0].name.startswith(f"{account_id}_CloudTrail_us-east-1_")
    records = [r for p in logs for r in json.loads(gzip.decompress(p.read_bytes()))["Records"]]
    created = [r for r in records if r["eventName"] == "CreateUser"]
    assert {r["requestParameters"]["userName"] for r in created} >= set(users)
    d = json.loads(gzip.decompress(digests[-1].read_bytes()))
    assert d["digestSignatureAlgorithm"] == "SHA256withRSA"
    assert d["previousDigestS3Object"] == digests[-2].relative_to(bucket_dir).as_posix()
    assert d["logFiles"] and all(f["hashAlgorithm"] == "SHA-256" for f in d["logFiles"])
    assert f"_CloudTrail-Digest_us-east-1_{name}_us-east-1_" in digests[0].name
    status = ct.get_trail_status(Name=name)
    assert "LatestDeliveryTime" in status and "LatestDigestDeliveryTime" in status
    keys = ct.list_public_keys()["PublicKeyList"]
    assert keys and keys[0]["Fingerprint"] == d["digestPublicKeyFingerprint"]
    assert (Path(server.data_dir) / "trails" / "public-keys" / f"{keys[0]['Fingerprint']}.der").read_bytes() == keys[0]["Value"]


def test_verify_passes_then_names_tampered_files(server, ct, trail, iam, tmp_path):
    _, bucket_dir, _ = deliver_some(server, ct, trail, iam, rounds=3)
    ok = verify(bucket_dir)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "3/3 log files valid" in ok.stdout or "log files valid" in ok.stdout

    def copy() -> Path:
        root = tmp_path / unique("copy")
        shutil.copytree(bucket_dir.parent / "public-keys", root / "public-keys")
        shutil.copytree(bucket_dir, root / bucket_dir.name)
        return root / bucket_dir.name

    # Changed log file.
    b = copy()
    victim = trail_files(b, "CloudTrail")[1]
    data = json.loads(gzip.decompress(victim.read_bytes()))
    data["Records"][0]["sourceIPAddress"] = "10.0.0.1"
    victim.write_bytes(gzip.compress(json.dumps(data).encode()))
    out = verify(b)
    assert out.returncode == 1 and victim.name in out.stdout and "changed" in out.stdout, out.stdout

    # Deleted log file.
    b = copy()
    victim = trail_files(b, "CloudTrail")[0]
    victim.unlink()
    out = verify(b)
    assert out.returncode == 1 and victim.name in out.stdout and "deleted" in out.stdout, out.stdout

    # Inserted log file.
    b = copy()
    src = trail_files(b, "CloudTrail")[0]
    forged = src.with_name(src.name.replace(".json.gz", "Z.json.gz"))
    shutil.copy(src, forged)
    out = verify(b)
    assert out.returncode == 1 and forged.name in out.stdout and "added" in out.stdout, out.stdout

    # Deleted digest: the next digest's chain names it.
    b = copy()
    victim = trail_files(b, "CloudTrail-Digest")[0]
    victim.unlink()
    out = verify(b)
    assert out.returncode == 1 and victim.name in out.stdout, out.stdout


def test_record_survives_a_crash(spawn_server):
    srv = spawn_server(account_id="210987654321", access_key_id=random_key_id(), secret_access_key=random_secret())
    name = unique("user")
    srv.client("iam").create_user(UserName=name)
    srv.kill()  # SIGKILL: no shutdown path runs
    srv.start()
    events = lookup(srv.client("cloudtrail"), "ResourceName", name)
    assert [e["EventName"] for e in events] == ["CreateUser"]
    assert record(events[0])["recipientAccountId"] == "210987654321"


@pytest.mark.parametrize("prefix", ["com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101", "CloudTrail_20131101"])
def test_smithy_sdks_target_prefix_is_accepted(server, prefix):
    """botocore sends the long X-Amz-Target prefix; the Smithy SDKs (JavaScript v3, Rust, Go v2)
    send the service shape's name. AWS accepts both."""
    from botocore.awsrequest import AWSRequest
    from support import sign, send_request

    req = AWSRequest(method="POST", url=f"{server.endpoint}/", data=b'{"MaxResults": 1}', headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{prefix}.LookupEvents"})
    sign(req, server.access_key_id, server.secret_access_key, service="cloudtrail")
    resp = send_request(req)
    assert resp.status == 200, resp.body
    assert "Events" in json.loads(resp.body)
    bad = AWSRequest(method="POST", url=f"{server.endpoint}/", data=b"{}", headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "v20131101.CloudTrail_20131101.LookupEvents"})
    sign(bad, server.access_key_id, server.secret_access_key, service="cloudtrail")
    resp = send_request(bad)
    assert resp.status == 400 and b"UnknownOperationException" in resp.body
