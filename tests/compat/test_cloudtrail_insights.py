"""CloudTrail Insights on trails: PutInsightSelectors / GetInsightSelectors, the detector (a burst
of write calls or of errors becomes an Insights event), delivery under CloudTrail-Insight/,
LookupEvents EventCategory=insight, ListInsightsData and ListInsightsMetricData.

Detection is driven by StopLogging, the deterministic flush: it runs the detector at once (a start
is seen in the running minute). The spawned server judges minutes without a minimum baseline
(RAMPART_TRAIL_INSIGHTS_MIN_BASELINE_MINUTES=0), so no test waits for history. The end of an
Insights event needs a complete normal minute: that is the Rust tests' (an injected clock)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from support import allow, policy, random_account_id, random_key_id, random_secret, unique


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def watched(tmp_path_factory):
    """A server of its own judging from the first minute, with a trail watching both types."""
    from support import RampartServer

    work = tmp_path_factory.mktemp("insights")
    srv = RampartServer(
        work,
        data_dir=work / "data",
        account_id=random_account_id(),
        access_key_id=random_key_id(),
        secret_access_key=random_secret(),
        extra_env={"RAMPART_TRAIL_INSIGHTS_MIN_BASELINE_MINUTES": "0"},
    ).start()
    yield srv
    srv.stop()


def test_a_burst_of_writes_and_errors_becomes_insights_events(watched):
    ct, iam = watched.client("cloudtrail"), watched.client("iam")
    account = watched.account_id
    name = unique("trail")
    bucket = "insights-" + name.lower()
    arn = ct.create_trail(Name=name, S3BucketName=bucket)["TrailARN"]
    ct.start_logging(Name=name)
    put = ct.put_insight_selectors(
        TrailName=name,
        InsightSelectors=[{"InsightType": "ApiCallRateInsight"}, {"InsightType": "ApiErrorRateInsight"}],
    )
    assert put["TrailARN"] == arn
    assert [s["InsightType"] for s in put["InsightSelectors"]] == ["ApiCallRateInsight", "ApiErrorRateInsight"]
    got = ct.get_insight_selectors(TrailName=arn)
    assert got["TrailARN"] == arn and len(got["InsightSelectors"]) == 2
    assert ct.get_trail(Name=name)["Trail"]["HasInsightSelectors"] is True

    # Twelve writes of one API and twelve NoSuchEntity errors: whatever minute boundary falls in
    # between, one minute holds at least six of each (the minimum is five, the baseline empty).
    users = [unique("burst") for _ in range(12)]
    for u in users:
        iam.create_user(UserName=u)
    for _ in range(12):
        with pytest.raises(ClientError):
            iam.get_user(UserName=unique("nobody"))
    ct.stop_logging(Name=name)

    events = ct.lookup_events(EventCategory="insight")["Events"]
    records = [json.loads(e["CloudTrailEvent"]) for e in events]
    by_type = {(r["insightDetails"]["insightType"], r["insightDetails"]["eventName"]): r for r in records}
    call = by_type[("ApiCallRateInsight", "CreateUser")]
    assert call["eventType"] == "AwsCloudTrailInsight"
    assert call["eventCategory"] == "Insight"
    assert call["recipientAccountId"] == account
    assert call["awsRegion"] == "us-east-1"
    assert call["sharedEventID"] and call["eventID"]
    details = call["insightDetails"]
    assert details["state"] == "Start"
    assert details["eventSource"] == "iam.amazonaws.com"
    stats = details["insightContext"]["statistics"]
    assert stats["baseline"]["average"] == 0
    assert stats["insight"]["average"] >= 6
    # One minute, or two when the boundary splits the burst with five or more on each side.
    assert stats["insightDuration"] in (1, 2)
    attributions = {a["attribute"]: a for a in details["insightContext"]["attributions"]}
    assert set(attributions) == {"userIdentityArn", "userAgent", "errorCode"}
    assert attributions["userIdentityArn"]["insight"][0]["value"] == f"arn:aws:iam::{account}:root"
    assert attributions["errorCode"]["insight"][0]["value"] == "null"
    t = dt.datetime.strptime(call["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
    assert t.second == 0, "an Insights event names its minute"

    err = by_type[("ApiErrorRateInsight", "GetUser")]
    assert err["insightDetails"]["errorCode"] == "NoSuchEntity"
    assert {a["attribute"] for a in err["insightDetails"]["insightContext"]["attributions"]} == {
        "userIdentityArn",
        "userAgent",
    }
    lookup_event = next(e for e in events if json.loads(e["CloudTrailEvent"])["eventID"] == call["eventID"])
    assert lookup_event["EventName"] == "CreateUser" and lookup_event["EventSource"] == "iam.amazonaws.com"

    # Delivered with the trail, in AWS's layout.
    insight_dir = Path(watched.data_dir) / "trails" / bucket / "AWSLogs" / account / "CloudTrail-Insight" / "us-east-1"
    files = sorted(insight_dir.rglob("*.json.gz"))
    assert files, "Insights files delivered"
    assert all(f.name.startswith(f"{account}_CloudTrail-Insight_us-east-1_") for f in files)
    delivered = [r for f in files for r in json.loads(gzip.decompress(f.read_bytes()))["Records"]]
    assert {r["eventID"] for r in delivered} == {r["eventID"] for r in records}

    # ListInsightsData: the trail's Insights events, by dimension.
    listed = ct.list_insights_data(InsightSource=arn, DataType="InsightsEvents", Dimensions={"EventName": "GetUser"})
    assert [e["EventName"] for e in listed["Events"]] == ["GetUser"]
    assert json.loads(listed["Events"][0]["CloudTrailEvent"])["eventID"] == err["eventID"]
    one = ct.list_insights_data(InsightSource=arn, DataType="InsightsEvents", MaxResults=1)
    assert len(one["Events"]) == 1 and "NextToken" in one

    # ListInsightsMetricData: what the detector counted, per minute.
    metric = ct.list_insights_metric_data(
        EventSource="iam.amazonaws.com", EventName="CreateUser", InsightType="ApiCallRateInsight", Period=60
    )
    assert metric["TrailARN"] == arn
    assert sum(metric["Values"]) == 12
    assert len(metric["Timestamps"]) == len(metric["Values"])
    errors = ct.list_insights_metric_data(
        TrailName=name,
        EventSource="iam.amazonaws.com",
        EventName="GetUser",
        InsightType="ApiErrorRateInsight",
        ErrorCode="NoSuchEntity",
        Period=300,
    )
    assert sum(errors["Values"]) == 12

    # Turned off: Insights are no longer on the trail.
    ct.put_insight_selectors(TrailName=name, InsightSelectors=[])
    with pytest.raises(ClientError) as exc:
        ct.get_insight_selectors(TrailName=name)
    assert code(exc) == "InsightNotEnabledException"
    assert ct.get_trail(Name=name)["Trail"]["HasInsightSelectors"] is False


def test_normal_activity_raises_nothing(watched):
    ct, iam = watched.client("cloudtrail"), watched.client("iam")
    name = unique("trail")
    arn = ct.create_trail(Name=name, S3BucketName="quiet-" + name.lower())["TrailARN"]
    ct.start_logging(Name=name)
    ct.put_insight_selectors(TrailName=name, InsightSelectors=[{"InsightType": "ApiCallRateInsight"}])
    iam.create_group(GroupName=unique("group"))
    iam.create_group(GroupName=unique("group"))
    ct.stop_logging(Name=name)
    assert ct.list_insights_data(InsightSource=arn, DataType="InsightsEvents")["Events"] == []


@pytest.fixture(scope="module")
def ct(server):
    return server.client("cloudtrail")


@pytest.fixture(scope="module")
def ct_raw(server):
    return server.client("cloudtrail", parameter_validation=False)


@pytest.fixture
def trail(ct):
    names = []

    def _make(**kw):
        name = unique("trail")
        ct.create_trail(Name=name, S3BucketName="ins-" + name.lower(), **kw)
        names.append(name)
        return name

    yield _make
    for n in names:
        try:
            ct.delete_trail(Name=n)
        except ClientError:
            pass


def test_insight_selector_errors(ct, ct_raw, trail, account_id):
    name = trail()
    with pytest.raises(ClientError) as exc:
        ct.get_insight_selectors(TrailName=name)
    assert code(exc) == "InsightNotEnabledException"
    with pytest.raises(ClientError) as exc:
        ct_raw.put_insight_selectors(TrailName=name, InsightSelectors=[{"InsightType": "ApiBurstInsight"}])
    assert code(exc) == "InvalidInsightSelectorsException"
    with pytest.raises(ClientError) as exc:
        ct.put_insight_selectors(
            TrailName=name, InsightSelectors=[{"InsightType": "ApiCallRateInsight", "EventCategories": ["Data"]}]
        )
    assert code(exc) == "InvalidInsightSelectorsException"
    with pytest.raises(ClientError) as exc:
        ct.put_insight_selectors(TrailName=unique("missing"), InsightSelectors=[])
    assert code(exc) == "TrailNotFoundException"
    with pytest.raises(ClientError) as exc:
        ct.put_insight_selectors(TrailName="x", InsightSelectors=[])
    assert code(exc) == "InvalidTrailNameException"
    with pytest.raises(ClientError) as exc:
        ct_raw.put_insight_selectors(TrailName=name)
    assert code(exc) == "InvalidParameterException"
    # A trail logging only reads cannot watch write call rates.
    ct.put_event_selectors(TrailName=name, EventSelectors=[{"ReadWriteType": "ReadOnly"}])
    with pytest.raises(ClientError) as exc:
        ct.put_insight_selectors(TrailName=name, InsightSelectors=[{"InsightType": "ApiCallRateInsight"}])
    assert code(exc) == "InvalidInsightSelectorsException"
    with pytest.raises(ClientError) as exc:
        ct.list_insights_metric_data(EventSource="iam.amazonaws.com", EventName="GetUser", InsightType="ApiErrorRateInsight")
    assert code(exc) == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        ct.list_insights_metric_data(
            EventSource="iam.amazonaws.com", EventName="GetUser", InsightType="ApiCallRateInsight", Period=120
        )
    assert code(exc) == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        ct.list_insights_data(InsightSource="not-an-arn", DataType="InsightsEvents")
    assert code(exc) == "InvalidParameterException"


def test_insights_operations_are_authorized_on_the_trail(make_user, ct, trail, account_id):
    name = trail()
    arn = f"arn:aws:cloudtrail:us-east-1:{account_id}:trail/{name}"
    user = make_user(inline=[policy(allow("cloudtrail:PutInsightSelectors", arn))])
    uct = user.client("cloudtrail")
    uct.put_insight_selectors(TrailName=name, InsightSelectors=[{"InsightType": "ApiErrorRateInsight"}])
    with pytest.raises(ClientError) as exc:
        uct.get_insight_selectors(TrailName=name)
    assert code(exc) == "AccessDeniedException"
    with pytest.raises(ClientError) as exc:
        uct.list_insights_data(InsightSource=arn, DataType="InsightsEvents")
    assert code(exc) == "AccessDeniedException"
    # With a trail: LookupEvents and ListInsightsData on it; LookupEvents alone is not enough.
    looker = make_user(inline=[policy(allow("cloudtrail:LookupEvents", "*"))])
    lct = looker.client("cloudtrail")
    lct.list_insights_metric_data(EventSource="iam.amazonaws.com", EventName="CreateUser", InsightType="ApiCallRateInsight")
    with pytest.raises(ClientError) as exc:
        lct.list_insights_metric_data(
            TrailName=arn, EventSource="iam.amazonaws.com", EventName="CreateUser", InsightType="ApiCallRateInsight"
        )
    assert code(exc) == "AccessDeniedException"
