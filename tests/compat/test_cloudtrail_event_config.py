"""CloudTrail PutEventConfiguration / GetEventConfiguration: an event data store's MaxEventSize
(honoured by what the store keeps), its ContextKeySelectors (refused: Rampart's records cannot
be enriched honestly), and a trail's AggregationConfigurations."""

from __future__ import annotations

import datetime
import gzip
import json
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from support import unique


@pytest.fixture(scope="module")
def ct(server):
    return server.client("cloudtrail")


@pytest.fixture(scope="module")
def ct_raw(server):
    """Skips botocore's client-side validation, to reach the server's."""
    return server.client("cloudtrail", parameter_validation=False)


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


_created: list[str] = []


@pytest.fixture(autouse=True)
def _delete_stores(ct):
    """Each test's event data stores go when it ends (10 per account and Region: the session's
    server is shared with the other Lake tests)."""
    yield
    while _created:
        arn = _created.pop()
        try:
            ct.delete_event_data_store(EventDataStore=arn)
        except ClientError as e:
            if e.response["Error"]["Code"] not in ("InactiveEventDataStoreException", "EventDataStoreNotFoundException"):
                raise


def create(ct, **kw) -> str:
    kw.setdefault("Name", unique("eds"))
    kw.setdefault("TerminationProtectionEnabled", False)
    arn = ct.create_event_data_store(**kw)["EventDataStoreArn"]
    _created.append(arn)
    return arn


def test_event_data_store_size_round_trip(ct):
    arn = create(ct)
    got = ct.get_event_configuration(EventDataStore=arn)
    assert got["EventDataStoreArn"] == arn and got["MaxEventSize"] == "Standard"
    assert got["ContextKeySelectors"] == []
    put = ct.put_event_configuration(EventDataStore=arn.rsplit("/", 1)[1], MaxEventSize="Large")
    assert put["EventDataStoreArn"] == arn and put["MaxEventSize"] == "Large"
    assert ct.get_event_configuration(EventDataStore=arn)["MaxEventSize"] == "Large"
    ct.put_event_configuration(EventDataStore=arn, MaxEventSize="Standard")
    assert ct.get_event_configuration(EventDataStore=arn)["MaxEventSize"] == "Standard"


def test_validation_and_combinations(ct, ct_raw):
    arn = create(ct)
    cases = [
        ({"EventDataStore": arn, "MaxEventSize": "Huge"}, "InvalidParameterException"),
        ({"EventDataStore": arn, "MaxEventSize": "Large",
          "ContextKeySelectors": [{"Type": "Other", "Equals": ["a"]}]}, "InvalidParameterException"),
        ({"EventDataStore": arn, "MaxEventSize": "Large",
          "ContextKeySelectors": [{"Type": "TagContext", "Equals": []}]}, "InvalidParameterException"),
        ({"EventDataStore": arn, "MaxEventSize": "Large", "ContextKeySelectors": [
            {"Type": "TagContext", "Equals": ["a"]}, {"Type": "RequestContext", "Equals": ["b"]},
            {"Type": "TagContext", "Equals": ["c"]}]}, "InvalidParameterException"),
        ({"EventDataStore": arn, "MaxEventSize": "Standard",
          "ContextKeySelectors": [{"Type": "TagContext", "Equals": ["team"]}]}, "InvalidParameterCombinationException"),
        ({"MaxEventSize": "Large"}, "InvalidParameterCombinationException"),
        ({"EventDataStore": arn, "TrailName": "some-trail", "MaxEventSize": "Large"}, "InvalidParameterCombinationException"),
        ({"EventDataStore": arn, "AggregationConfigurations": [
            {"Templates": ["API_ACTIVITY"], "EventCategory": "Data"}]}, "InvalidParameterCombinationException"),
        ({"TrailName": "some-trail", "MaxEventSize": "Large"}, "InvalidParameterCombinationException"),
        ({"TrailName": "some-trail", "AggregationConfigurations": [
            {"Templates": ["NOPE"], "EventCategory": "Data"}]}, "InvalidParameterException"),
        ({"TrailName": "some-trail", "AggregationConfigurations": [
            {"Templates": ["API_ACTIVITY"], "EventCategory": "Management"}]}, "InvalidParameterException"),
        ({"EventDataStore": "arn:aws:cloudtrail:us-east-1:123:nope", "MaxEventSize": "Large"},
         "EventDataStoreARNInvalidException"),
        ({"EventDataStore": "00000000-0000-4000-8000-000000000000", "MaxEventSize": "Large"},
         "EventDataStoreNotFoundException"),
        ({"TrailName": "no-such-trail", "AggregationConfigurations": [
            {"Templates": ["API_ACTIVITY"], "EventCategory": "Data"}]}, "TrailNotFoundException"),
    ]
    for kw, want in cases:
        with pytest.raises(ClientError) as exc:
            ct_raw.put_event_configuration(**kw)
        assert code(exc) == want, kw
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as exc:
        ct_raw.get_event_configuration()
    assert code(exc) == "InvalidParameterCombinationException"
    # Nothing of the refused calls was applied.
    assert ct.get_event_configuration(EventDataStore=arn)["MaxEventSize"] == "Standard"


def test_context_key_selectors_are_refused_not_faked(ct):
    arn = create(ct)
    with pytest.raises(ClientError) as exc:
        ct.put_event_configuration(EventDataStore=arn, MaxEventSize="Large",
                                   ContextKeySelectors=[{"Type": "TagContext", "Equals": ["team"]}])
    assert code(exc) == "UnsupportedOperationException"
    got = ct.get_event_configuration(EventDataStore=arn)
    assert got["MaxEventSize"] == "Standard" and got["ContextKeySelectors"] == []
    # An empty list (no enrichment) is what the store already does.
    put = ct.put_event_configuration(EventDataStore=arn, MaxEventSize="Large", ContextKeySelectors=[])
    assert put["MaxEventSize"] == "Large" and put["ContextKeySelectors"] == []


def test_pending_deletion_store_is_inactive(ct):
    arn = create(ct)
    ct.delete_event_data_store(EventDataStore=arn)
    with pytest.raises(ClientError) as exc:
        ct.put_event_configuration(EventDataStore=arn, MaxEventSize="Large")
    assert code(exc) == "InactiveEventDataStoreException"
    assert ct.get_event_configuration(EventDataStore=arn)["MaxEventSize"] == "Standard"


def test_trail_aggregation_configurations(ct):
    trail = unique("agg")
    arn = ct.create_trail(Name=trail, S3BucketName=unique("agg-bucket").lower().replace("_", "-"))["TrailARN"]
    got = ct.get_event_configuration(TrailName=trail)
    assert got["TrailARN"] == arn and got["AggregationConfigurations"] == []
    configs = [{"Templates": ["API_ACTIVITY", "USER_ACTIONS"], "EventCategory": "Data"}]
    put = ct.put_event_configuration(TrailName=arn, AggregationConfigurations=configs)
    assert put["TrailARN"] == arn and put["AggregationConfigurations"] == configs
    assert ct.get_event_configuration(TrailName=trail)["AggregationConfigurations"] == configs
    ct.put_event_configuration(TrailName=trail, AggregationConfigurations=[])
    assert ct.get_event_configuration(TrailName=trail)["AggregationConfigurations"] == []


def test_authorization(server, ct, make_user):
    arn = create(ct)
    user = make_user()
    c = user.client("cloudtrail")
    with pytest.raises(ClientError) as exc:
        c.get_event_configuration(EventDataStore=arn)
    assert code(exc) == "AccessDeniedException"
    with pytest.raises(ClientError) as exc:
        c.put_event_configuration(EventDataStore=arn, MaxEventSize="Large")
    assert code(exc) == "AccessDeniedException"
    assert ct.get_event_configuration(EventDataStore=arn)["MaxEventSize"] == "Standard"


def wait_import(ct, import_id: str, deadline: float = 60.0) -> dict:
    end = time.monotonic() + deadline
    while True:
        got = ct.get_import(ImportId=import_id)
        if got["ImportStatus"] not in ("INITIALIZING", "IN_PROGRESS") or time.monotonic() > end:
            return got
        time.sleep(0.05)


def query(ct, statement: str, deadline: float = 60.0) -> list[dict]:
    qid = ct.start_query(QueryStatement=statement)["QueryId"]
    end = time.monotonic() + deadline
    while True:
        d = ct.describe_query(QueryId=qid)
        if d["QueryStatus"] not in ("QUEUED", "RUNNING") or time.monotonic() > end:
            break
        time.sleep(0.05)
    assert d["QueryStatus"] == "FINISHED", d
    rows = ct.get_query_results(QueryId=qid)["QueryResultRows"]
    return [{k: v for col in row for k, v in col.items()} for row in rows]


def test_stores_keep_events_up_to_their_max_event_size(ct, server, account_id):
    """A 300 KB event (its bulk in requestParameters) and a 1.2 MB one (its bulk in a field that
    cannot be omitted), copied from a trail's log file: a Standard store keeps the first with its
    requestParameters omitted and not the second; a Large store keeps the first whole."""
    bucket = unique("size-bucket").lower().replace("_", "-")
    ct.create_trail(Name=unique("size"), S3BucketName=bucket)
    marker = unique("size")
    # Recent, so that retention (366 days by default) does not take the events meanwhile.
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)

    def record(name: str, **extra) -> dict:
        return {
            "eventVersion": "1.09", "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "eventSource": "iam.amazonaws.com",
            "eventName": name, "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.9",
            "userAgent": marker, "eventID": str(uuid.uuid4()), "readOnly": False, "eventType": "AwsApiCall",
            "managementEvent": True, "recipientAccountId": account_id, "eventCategory": "Management",
            "userIdentity": {"type": "Root", "accountId": account_id}, **extra,
        }

    big = record("PutBigPolicy", requestParameters={"policyDocument": "x" * (300 * 1024)})
    huge = record("PutHugeThing", requestParameters={"a": "b"}, errorMessage="y" * (1200 * 1024))
    day = Path(server.data_dir) / "trails" / bucket / "AWSLogs" / account_id / "CloudTrail" / "us-east-1" / when.strftime("%Y") / when.strftime("%m") / when.strftime("%d")
    day.mkdir(parents=True, exist_ok=True)
    (day / "sizes.json.gz").write_bytes(gzip.compress(json.dumps({"Records": [big, huge]}).encode()))
    standard = create(ct, StartIngestion=False)
    large = create(ct, StartIngestion=False)
    ct.put_event_configuration(EventDataStore=large, MaxEventSize="Large")
    source = {"S3": {"S3LocationUri": f"s3://{bucket}", "S3BucketRegion": "us-east-1",
                     "S3BucketAccessRoleArn": f"arn:aws:iam::{account_id}:role/lake-import"}}
    for dest in (standard, large):
        got = wait_import(ct, ct.start_import(Destinations=[dest], ImportSource=source)["ImportId"])
        assert got["ImportStatus"] == "COMPLETED", got
    sql = ("SELECT eventName, length(element_at(requestParameters, 'policyDocument')) AS n, "
           "json_extract_scalar(requestParameters, '$.omitted') AS omitted FROM {} "
           f"WHERE userAgent = '{marker}' ORDER BY eventName")
    rows = query(ct, sql.format(standard.rsplit("/", 1)[1]))
    assert [r["eventName"] for r in rows] == ["PutBigPolicy"]
    # requestParameters became {"omitted": true}.
    assert rows[0]["n"] == "" and rows[0]["omitted"] not in ("", "false")
    rows = query(ct, sql.format(large.rsplit("/", 1)[1]))
    assert [r["eventName"] for r in rows] == ["PutBigPolicy"]
    assert rows[0]["n"] == str(300 * 1024)
