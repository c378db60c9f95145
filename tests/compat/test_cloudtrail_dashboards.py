"""CloudTrail Lake dashboards: CreateDashboard, GetDashboard, ListDashboards, UpdateDashboard,
DeleteDashboard, StartDashboardRefresh — and the event data store resource policy that lets
CloudTrail (cloudtrail.amazonaws.com) run a dashboard's queries."""

from __future__ import annotations

import json
import re
import time

import pytest
from botocore.exceptions import ClientError

from support import unique


@pytest.fixture(scope="module")
def ct(server):
    return server.client("cloudtrail")


@pytest.fixture(scope="module")
def ct_raw(server):
    return server.client("cloudtrail", parameter_validation=False)


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def dash_name() -> str:
    return unique("dash").replace(".", "-")


_created: list[str] = []


@pytest.fixture(autouse=True)
def _delete_stores(ct):
    """Each test's event data stores go when it ends (10 per account and Region: the session's
    server is shared with the other Lake tests)."""
    yield
    while _created:
        ct.delete_event_data_store(EventDataStore=_created.pop())


def new_store(ct) -> str:
    arn = ct.create_event_data_store(Name=unique("eds"), TerminationProtectionEnabled=False)["EventDataStoreArn"]
    _created.append(arn)
    return arn


def dashboard_arn(account_id: str, name: str) -> str:
    return f"arn:aws:cloudtrail:us-east-1:{account_id}:dashboard/{name}"


def allow_dashboard(ct, eds: str, dashboard: str, account_id: str) -> None:
    ct.put_resource_policy(ResourceArn=eds, ResourcePolicy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "dashboard", "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "cloudtrail:StartQuery", "Resource": eds,
            "Condition": {"StringEquals": {"AWS:SourceArn": dashboard, "AWS:SourceAccount": account_id}},
        }],
    }))


def widget(eds: str) -> dict:
    return {
        "QueryStatement": f"SELECT eventName, count(*) AS n FROM {eds.rsplit('/', 1)[1]} "
                          "WHERE eventTime > '?' GROUP BY eventName ORDER BY 2 DESC",
        "QueryParameters": ["$StartTime$"],
        "ViewProperties": {"View": "Table"},
    }


def test_lifecycle_without_widgets(ct, account_id):
    name = dash_name()
    created = ct.create_dashboard(Name=name, TerminationProtectionEnabled=True,
                                  TagsList=[{"Key": "team", "Value": "sec"}],
                                  RefreshSchedule={"Frequency": {"Unit": "HOURS", "Value": 6}, "Status": "DISABLED"})
    arn = dashboard_arn(account_id, name)
    assert created["DashboardArn"] == arn and created["Name"] == name and created["Type"] == "CUSTOM"
    assert created["Widgets"] == [] and created["TagsList"] == [{"Key": "team", "Value": "sec"}]
    assert created["TerminationProtectionEnabled"] is True
    assert created["RefreshSchedule"] == {"Frequency": {"Unit": "HOURS", "Value": 6}, "Status": "DISABLED"}
    got = ct.get_dashboard(DashboardId=arn)
    assert got["DashboardArn"] == arn and got["Type"] == "CUSTOM" and got["Status"] == "CREATED"
    assert "LastRefreshId" not in got and got["CreatedTimestamp"] == got["UpdatedTimestamp"]
    with pytest.raises(ClientError) as exc:
        ct.create_dashboard(Name=name)
    assert code(exc) == "ConflictException"
    with pytest.raises(ClientError) as exc:
        ct.delete_dashboard(DashboardId=name)
    assert code(exc) == "ConflictException"
    updated = ct.update_dashboard(DashboardId=name, TerminationProtectionEnabled=False)
    assert updated["TerminationProtectionEnabled"] is False and updated["Name"] == name
    assert ct.get_dashboard(DashboardId=name)["Status"] == "UPDATED"
    ct.delete_dashboard(DashboardId=name)
    with pytest.raises(ClientError) as exc:
        ct.get_dashboard(DashboardId=name)
    assert code(exc) == "ResourceNotFoundException"


def test_list_filters_and_pages(ct):
    prefix = dash_name()
    names = sorted(f"{prefix}-{i}" for i in range(3))
    for n in names:
        ct.create_dashboard(Name=n)
    listed = ct.list_dashboards(NamePrefix=prefix)["Dashboards"]
    assert [d["DashboardArn"].rsplit("/", 1)[1] for d in listed] == names
    assert all(d["Type"] == "CUSTOM" for d in listed)
    assert ct.list_dashboards(NamePrefix=prefix, Type="MANAGED")["Dashboards"] == []
    seen, token = [], None
    while True:
        page = ct.list_dashboards(NamePrefix=prefix, MaxResults=1, **({"NextToken": token} if token else {}))
        assert len(page["Dashboards"]) <= 1
        seen += [d["DashboardArn"].rsplit("/", 1)[1] for d in page["Dashboards"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == names
    for n in names:
        ct.delete_dashboard(DashboardId=n)


def test_validation(ct, ct_raw):
    eds = new_store(ct)
    cases = [
        ({"Name": "a!"}, "InvalidParameterException"),
        ({"Name": "AWSCloudTrail-Highlights", "RefreshSchedule": {
            "Frequency": {"Unit": "HOURS", "Value": 6}, "Status": "ENABLED"}}, "UnsupportedOperationException"),
        ({"Name": dash_name(), "RefreshSchedule": {"Status": "ENABLED"}}, "InvalidParameterException"),
        ({"Name": dash_name(), "RefreshSchedule": {"Frequency": {"Unit": "DAYS", "Value": 2}, "Status": "ENABLED"}},
         "InvalidParameterException"),
        ({"Name": dash_name(), "RefreshSchedule": {"Frequency": {"Unit": "HOURS", "Value": 5}}}, "InvalidParameterException"),
        ({"Name": dash_name(), "Widgets": [{"QueryStatement": "DROP TABLE x", "ViewProperties": {}}]},
         "InvalidQueryStatementException"),
        ({"Name": dash_name(), "Widgets": [{"QueryStatement": f"SELECT * FROM {eds.rsplit('/', 1)[1]}"}]},
         "InvalidParameterException"),
        ({"Name": dash_name(), "Widgets": [{**widget(eds), "QueryParameters": None}]}, "InvalidQueryStatementException"),
        ({"Name": dash_name(), "Widgets": [widget(eds)] * 11}, "ServiceQuotaExceededException"),
        ({"Name": dash_name(), "Widgets": [widget("x/00000000-0000-4000-8000-000000000000")]},
         "EventDataStoreNotFoundException"),
    ]
    for kw, want in cases:
        kw = {k: v for k, v in kw.items()}
        if "Widgets" in kw:
            kw["Widgets"] = [{k: v for k, v in w.items() if v is not None} for w in kw["Widgets"]]
        with pytest.raises(ClientError) as exc:
            ct_raw.create_dashboard(**kw)
        assert code(exc) == want, kw
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as exc:
        ct_raw.get_dashboard(DashboardId="no-such-dashboard")
    assert code(exc) == "ResourceNotFoundException"


def test_widgets_need_the_event_data_store_policy_for_cloudtrail(ct, account_id):
    eds = new_store(ct)
    name = dash_name()
    arn = dashboard_arn(account_id, name)
    with pytest.raises(ClientError) as exc:
        ct.create_dashboard(Name=name, Widgets=[widget(eds)])
    assert code(exc) == "AccessDeniedException"
    # A policy for another dashboard's refreshes is not this one's.
    allow_dashboard(ct, eds, dashboard_arn(account_id, "someone-else"), account_id)
    with pytest.raises(ClientError) as exc:
        ct.create_dashboard(Name=name, Widgets=[widget(eds)])
    assert code(exc) == "AccessDeniedException"
    allow_dashboard(ct, eds, arn, account_id)
    created = ct.create_dashboard(Name=name, Widgets=[widget(eds)])
    assert created["Widgets"] == [widget(eds)]
    assert ct.get_dashboard(DashboardId=name)["Widgets"] == [widget(eds)]


def test_refresh_runs_every_widget_query(ct, iam, account_id):
    eds = new_store(ct)
    name = dash_name()
    arn = dashboard_arn(account_id, name)
    allow_dashboard(ct, eds, arn, account_id)
    ct.create_dashboard(Name=name, Widgets=[widget(eds)])
    user = unique("dash-user")
    iam.create_user(UserName=user)
    with pytest.raises(ClientError) as exc:
        ct.start_dashboard_refresh(DashboardId=name)
    assert code(exc) == "InvalidParameterException"  # $StartTime$ has no value
    refresh = ct.start_dashboard_refresh(DashboardId=arn, QueryParameterValues={"$StartTime$": "2020-01-01 00:00:00"})
    assert re.fullmatch(r"\d{10,20}", refresh["RefreshId"])
    assert ct.get_dashboard(DashboardId=name)["LastRefreshId"] == refresh["RefreshId"]
    # The widget's query ran as a query of the store, over the calls made since it was created.
    queries = ct.list_queries(EventDataStore=eds)["Queries"]
    assert len(queries) == 1
    end = time.monotonic() + 60
    while True:
        d = ct.describe_query(QueryId=queries[0]["QueryId"])
        if d["QueryStatus"] not in ("QUEUED", "RUNNING") or time.monotonic() > end:
            break
        time.sleep(0.05)
    assert d["QueryStatus"] == "FINISHED", d
    rows = ct.get_query_results(QueryId=queries[0]["QueryId"])["QueryResultRows"]
    counts = {r[0]["eventName"]: r[1]["n"] for r in rows}
    assert counts.get("CreateUser") == "1" and "CreateDashboard" in counts
    # Without the policy CloudTrail may not run the queries.
    ct.delete_resource_policy(ResourceArn=eds)
    with pytest.raises(ClientError) as exc:
        ct.start_dashboard_refresh(DashboardId=name, QueryParameterValues={"$StartTime$": "2020-01-01 00:00:00"})
    assert code(exc) == "AccessDeniedException"


def test_authorization(ct, make_user):
    name = dash_name()
    ct.create_dashboard(Name=name)
    c = make_user().client("cloudtrail")
    for call in (lambda: c.create_dashboard(Name=dash_name()), lambda: c.get_dashboard(DashboardId=name),
                 lambda: c.list_dashboards(), lambda: c.delete_dashboard(DashboardId=name),
                 lambda: c.start_dashboard_refresh(DashboardId=name)):
        with pytest.raises(ClientError) as exc:
            call()
        assert code(exc) == "AccessDeniedException"
    assert ct.get_dashboard(DashboardId=name)["DashboardArn"].endswith(f"/{name}")


def test_refresh_schedule_is_kept_and_shown(ct):
    """An enabled schedule is accepted (Rampart's background thread runs it; see the unit tests
    for the runs themselves, on an injected clock) and can be turned off."""
    name = dash_name()
    schedule = {"Frequency": {"Unit": "HOURS", "Value": 6}, "Status": "ENABLED", "TimeOfDay": "00:15"}
    created = ct.create_dashboard(Name=name, RefreshSchedule=schedule)
    assert created["RefreshSchedule"] == schedule
    got = ct.get_dashboard(DashboardId=name)
    assert got["RefreshSchedule"] == schedule and "LastRefreshFailureReason" not in got
    off = {"Frequency": {"Unit": "DAYS", "Value": 1}, "Status": "DISABLED"}
    assert ct.update_dashboard(DashboardId=name, RefreshSchedule=off)["RefreshSchedule"] == off
    assert ct.get_dashboard(DashboardId=name)["RefreshSchedule"] == off
    ct.delete_dashboard(DashboardId=name)
