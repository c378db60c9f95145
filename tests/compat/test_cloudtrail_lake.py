"""CloudTrail Lake: event data stores (lifecycle, selectors, retention limits, termination
protection, restore, ingestion start/stop, tags) and SQL queries over the audit records they
collect (StartQuery, DescribeQuery, GetQueryResults, CancelQuery, ListQueries)."""

from __future__ import annotations

import re
import time

import pytest
from botocore.exceptions import ClientError

from support import allow, policy, random_account_id, random_key_id, random_secret, unique

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TERMINAL = {"FINISHED", "FAILED", "CANCELLED", "TIMED_OUT"}


@pytest.fixture(scope="module")
def ct(server):
    return server.client("cloudtrail")


@pytest.fixture(scope="module")
def ct_raw(server):
    """Skips botocore's client-side validation, to reach the server's."""
    return server.client("cloudtrail", parameter_validation=False)


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def eds_id(arn: str) -> str:
    return arn.rsplit("/", 1)[1]


def create(ct, **kw) -> dict:
    kw.setdefault("Name", unique("eds"))
    kw.setdefault("TerminationProtectionEnabled", False)
    return ct.create_event_data_store(**kw)


def wait(ct, query_id: str, deadline: float = 60.0) -> dict:
    """Poll DescribeQuery until the query ends (or the deadline passes)."""
    end = time.monotonic() + deadline
    while True:
        d = ct.describe_query(QueryId=query_id)
        if d["QueryStatus"] in TERMINAL or time.monotonic() > end:
            return d
        time.sleep(0.05)


def run(ct, statement: str, **kw) -> list[list[dict]]:
    qid = ct.start_query(QueryStatement=statement, **kw)["QueryId"]
    d = wait(ct, qid)
    assert d["QueryStatus"] == "FINISHED", d
    rows = []
    token = None
    while True:
        page = ct.get_query_results(QueryId=qid, **({"NextToken": token} if token else {}))
        rows += page["QueryResultRows"]
        token = page.get("NextToken")
        if not token:
            return rows


def flat(rows) -> list[dict]:
    """Rows as one dict each."""
    return [{k: v for col in row for k, v in col.items()} for row in rows]


@pytest.fixture(scope="module")
def store(ct):
    """An event data store of all management events, shared by the query tests."""
    resp = create(ct)
    yield resp
    ct.delete_event_data_store(EventDataStore=resp["EventDataStoreArn"])


# -- event data stores -------------------------------------------------------------------------------
def test_create_get_list_update(ct, account_id):
    name = unique("eds")
    resp = ct.create_event_data_store(Name=name, RetentionPeriod=30, TagsList=[{"Key": "team", "Value": "sec"}])
    arn = resp["EventDataStoreArn"]
    assert re.match(rf"^arn:aws:cloudtrail:us-east-1:{account_id}:eventdatastore/", arn)
    assert UUID.match(eds_id(arn))
    assert resp["Name"] == name
    assert resp["Status"] == "CREATED"
    assert resp["MultiRegionEnabled"] is True
    assert resp["OrganizationEnabled"] is False
    assert resp["RetentionPeriod"] == 30
    assert resp["TerminationProtectionEnabled"] is True
    assert resp["BillingMode"] == "EXTENDABLE_RETENTION_PRICING"
    assert resp["TagsList"] == [{"Key": "team", "Value": "sec"}]
    assert resp["AdvancedEventSelectors"] == [
        {
            "Name": "Default management events",
            "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}],
        }
    ]
    got = ct.get_event_data_store(EventDataStore=arn)
    assert got["Status"] == "ENABLED"
    assert got["CreatedTimestamp"] == resp["CreatedTimestamp"]
    # By ID as well as by ARN.
    assert ct.get_event_data_store(EventDataStore=eds_id(arn))["EventDataStoreArn"] == arn
    listed = ct.list_event_data_stores()["EventDataStores"]
    assert arn in [s["EventDataStoreArn"] for s in listed]
    up = ct.update_event_data_store(
        EventDataStore=arn, Name=name + "-2", RetentionPeriod=90, TerminationProtectionEnabled=False
    )
    assert (up["Name"], up["RetentionPeriod"], up["TerminationProtectionEnabled"]) == (name + "-2", 90, False)
    assert ct.get_event_data_store(EventDataStore=arn)["Name"] == name + "-2"
    ct.delete_event_data_store(EventDataStore=arn)


def test_region_scoping_and_list_pagination(server):
    west = server.client("cloudtrail", region="eu-west-3")
    arns = [create(west)["EventDataStoreArn"] for _ in range(3)]
    assert all(":eu-west-3:" in a for a in arns)
    page = west.list_event_data_stores(MaxResults=2)
    assert len(page["EventDataStores"]) == 2 and page["NextToken"]
    rest = west.list_event_data_stores(NextToken=page["NextToken"])["EventDataStores"]
    assert sorted(s["EventDataStoreArn"] for s in page["EventDataStores"] + rest) == sorted(arns)
    east = server.client("cloudtrail")
    with pytest.raises(ClientError) as exc:
        east.get_event_data_store(EventDataStore=arns[0])
    assert code(exc) == "EventDataStoreNotFoundException"
    for a in arns:
        west.delete_event_data_store(EventDataStore=a)


def test_input_validation(ct, ct_raw):
    with pytest.raises(ClientError) as exc:
        ct_raw.create_event_data_store(Name="ab")
    assert code(exc) == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        ct_raw.create_event_data_store(Name="bad name!")
    assert code(exc) == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        ct.create_event_data_store(Name=unique("eds"), BillingMode="FIXED_RETENTION_PRICING", RetentionPeriod=3000)
    assert code(exc) == "InvalidParameterException"
    assert "2557" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        ct_raw.create_event_data_store(Name=unique("eds"), RetentionPeriod=5)
    assert code(exc) == "InvalidParameterException"
    for selectors in (
        [{"FieldSelectors": [{"Field": "readOnly", "Equals": ["true"]}]}],
        [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}, {"Field": "readOnly", "Equals": ["maybe"]}]}],
        [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}, {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}]}],
        [{"FieldSelectors": [{"Field": "eventCategory", "NotEquals": ["Management"]}]}],
    ):
        with pytest.raises(ClientError) as exc:
            ct.create_event_data_store(Name=unique("eds"), AdvancedEventSelectors=selectors)
        assert code(exc) == "InvalidEventSelectorsException", selectors
    with pytest.raises(ClientError) as exc:
        ct.create_event_data_store(Name=unique("eds"), KmsKeyId="not a key")
    assert code(exc) == "InvalidKmsKeyIdException"
    with pytest.raises(ClientError) as exc:
        ct.create_event_data_store(Name=unique("eds"), KmsKeyId="alias/lake")
    assert code(exc) == "UnsupportedOperationException"
    with pytest.raises(ClientError) as exc:
        ct.create_event_data_store(Name=unique("eds"), OrganizationEnabled=True)
    assert code(exc) == "UnsupportedOperationException"
    with pytest.raises(ClientError) as exc:
        ct.get_event_data_store(EventDataStore="arn:aws:cloudtrail:us-east-1:123:trail/x")
    assert code(exc) == "EventDataStoreARNInvalidException"
    with pytest.raises(ClientError) as exc:
        ct.get_event_data_store(EventDataStore="00000000-0000-4000-8000-000000000000")
    assert code(exc) == "EventDataStoreNotFoundException"


def test_names_are_unique_per_region(ct):
    resp = create(ct)
    with pytest.raises(ClientError) as exc:
        ct.create_event_data_store(Name=resp["Name"])
    assert code(exc) == "EventDataStoreAlreadyExistsException"
    ct.delete_event_data_store(EventDataStore=resp["EventDataStoreArn"])


def test_quota_of_event_data_stores(server):
    c = server.client("cloudtrail", region="ap-south-1")
    arns = [create(c)["EventDataStoreArn"] for _ in range(10)]
    with pytest.raises(ClientError) as exc:
        create(c)
    assert code(exc) == "EventDataStoreMaxLimitExceededException"
    # Stores pending deletion do not count, so restoring one can exceed the quota.
    c.delete_event_data_store(EventDataStore=arns[0])
    arns.append(create(c)["EventDataStoreArn"])
    with pytest.raises(ClientError) as exc:
        c.restore_event_data_store(EventDataStore=arns[0])
    assert code(exc) == "EventDataStoreMaxLimitExceededException"
    for a in arns[1:]:
        c.delete_event_data_store(EventDataStore=a)


def test_termination_protection_delete_and_restore(ct):
    arn = ct.create_event_data_store(Name=unique("eds"))["EventDataStoreArn"]
    with pytest.raises(ClientError) as exc:
        ct.delete_event_data_store(EventDataStore=arn)
    assert code(exc) == "EventDataStoreTerminationProtectedException"
    ct.update_event_data_store(EventDataStore=arn, TerminationProtectionEnabled=False)
    ct.delete_event_data_store(EventDataStore=arn)
    assert ct.get_event_data_store(EventDataStore=arn)["Status"] == "PENDING_DELETION"
    with pytest.raises(ClientError) as exc:
        ct.delete_event_data_store(EventDataStore=arn)
    assert code(exc) == "InactiveEventDataStoreException"
    with pytest.raises(ClientError) as exc:
        ct.start_query(QueryStatement=f"SELECT eventName FROM {eds_id(arn)}")
    assert code(exc) == "InactiveEventDataStoreException"
    with pytest.raises(ClientError) as exc:
        ct.update_event_data_store(EventDataStore=arn, RetentionPeriod=30)
    assert code(exc) == "InactiveEventDataStoreException"
    restored = ct.restore_event_data_store(EventDataStore=arn)
    assert restored["Status"] == "ENABLED"
    with pytest.raises(ClientError) as exc:
        ct.restore_event_data_store(EventDataStore=arn)
    assert code(exc) == "InvalidEventDataStoreStatusException"
    ct.delete_event_data_store(EventDataStore=arn)


def test_tags_on_event_data_stores(ct):
    arn = create(ct, TagsList=[{"Key": "a", "Value": "1"}])["EventDataStoreArn"]
    ct.add_tags(ResourceId=arn, TagsList=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "3"}])
    tags = ct.list_tags(ResourceIdList=[arn])["ResourceTagList"]
    assert tags == [{"ResourceId": arn, "TagsList": [{"Key": "a", "Value": "3"}, {"Key": "b", "Value": "2"}]}]
    ct.remove_tags(ResourceId=arn, TagsList=[{"Key": "a"}])
    assert ct.list_tags(ResourceIdList=[arn])["ResourceTagList"][0]["TagsList"] == [{"Key": "b", "Value": "2"}]
    missing = arn[:-4] + "ffff"
    with pytest.raises(ClientError) as exc:
        ct.add_tags(ResourceId=missing, TagsList=[{"Key": "b", "Value": "2"}])
    assert code(exc) == "ResourceNotFoundException"
    ct.delete_event_data_store(EventDataStore=arn)


# -- ingestion and queries -----------------------------------------------------------------------------
def test_a_store_collects_calls_from_its_creation_and_answers_sql(ct, iam, account_id):
    before = unique("user")
    iam.create_user(UserName=before)
    arn = create(ct)["EventDataStoreArn"]
    sid = eds_id(arn)
    after = unique("user")
    iam.create_user(UserName=after)
    iam.get_user(UserName=after)
    iam.get_user(UserName=after)
    rows = run(
        ct,
        f"SELECT eventName, count(*) FROM {sid} WHERE element_at(requestParameters, 'userName') IN ('{before}', '{after}') "
        "AND eventTime > '2020-01-01 00:00:00' GROUP BY 1 ORDER BY 2 DESC",
    )
    assert rows == [[{"eventName": "GetUser"}, {"_col1": "2"}], [{"eventName": "CreateUser"}, {"_col1": "1"}]]
    rows = flat(
        run(
            ct,
            f"SELECT userIdentity.arn, userIdentity.type AS t, readOnly, eventTime, recipientAccountId FROM {sid} "
            f"WHERE eventName = 'CreateUser' AND requestParameters['userName'] = '{after}'",
        )
    )
    assert len(rows) == 1
    assert rows[0]["arn"] == f"arn:aws:iam::{account_id}:root"
    assert rows[0]["t"] == "Root"
    assert rows[0]["readOnly"] == "false"
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$", rows[0]["eventTime"])
    assert rows[0]["recipientAccountId"] == account_id
    ct.delete_event_data_store(EventDataStore=arn)


def test_selectors_choose_what_is_collected(ct, iam, sts):
    arn = create(
        ct,
        AdvancedEventSelectors=[
            {
                "Name": "IAM writes",
                "FieldSelectors": [
                    {"Field": "eventCategory", "Equals": ["Management"]},
                    {"Field": "eventSource", "Equals": ["iam.amazonaws.com"]},
                    {"Field": "readOnly", "Equals": ["false"]},
                ],
            }
        ],
    )["EventDataStoreArn"]
    name = unique("user")
    iam.create_user(UserName=name)
    iam.get_user(UserName=name)
    sts.get_caller_identity()
    rows = flat(run(ct, f"SELECT DISTINCT eventSource, readOnly FROM {eds_id(arn)}"))
    assert rows == [{"eventSource": "iam.amazonaws.com", "readOnly": "false"}]
    ct.delete_event_data_store(EventDataStore=arn)


def test_stopped_ingestion_misses_calls_made_meanwhile(ct, iam):
    arn = create(ct)["EventDataStoreArn"]
    sid = eds_id(arn)
    first, during, later = unique("user"), unique("user"), unique("user")
    iam.create_user(UserName=first)
    ct.stop_event_data_store_ingestion(EventDataStore=arn)
    assert ct.get_event_data_store(EventDataStore=arn)["Status"] == "STOPPED_INGESTION"
    with pytest.raises(ClientError) as exc:
        ct.stop_event_data_store_ingestion(EventDataStore=arn)
    assert code(exc) == "InvalidEventDataStoreStatusException"
    iam.create_user(UserName=during)
    ct.start_event_data_store_ingestion(EventDataStore=arn)
    iam.create_user(UserName=later)
    rows = flat(run(ct, f"SELECT element_at(requestParameters, 'userName') AS u FROM {sid} WHERE eventName = 'CreateUser' ORDER BY eventTime"))
    assert [r["u"] for r in rows] == [first, later]
    ct.delete_event_data_store(EventDataStore=arn)


def test_results_pages_and_statistics(ct, iam, store):
    sid = eds_id(store["EventDataStoreArn"])
    prefix = unique("page")
    for i in range(5):
        iam.create_user(UserName=f"{prefix}-{i}")
    stmt = (
        f"SELECT element_at(requestParameters, 'userName') AS u FROM {sid} "
        f"WHERE eventName = 'CreateUser' AND element_at(requestParameters, 'userName') LIKE '{prefix}%' ORDER BY 1"
    )
    qid = ct.start_query(QueryStatement=stmt)["QueryId"]
    assert UUID.match(qid)
    d = wait(ct, qid)
    assert d["QueryStatus"] == "FINISHED"
    assert d["QueryString"] == stmt
    stats = d["QueryStatistics"]
    assert stats["EventsScanned"] >= 5 and stats["BytesScanned"] > 0 and stats["EventsMatched"] == 5
    assert "CreationTime" in stats and stats["ExecutionTimeInMillis"] >= 0
    page = ct.get_query_results(QueryId=qid, MaxQueryResults=2)
    assert page["QueryStatistics"]["ResultsCount"] == 2
    assert page["QueryStatistics"]["TotalResultsCount"] == 5
    got = [r[0]["u"] for r in page["QueryResultRows"]]
    while "NextToken" in page:
        page = ct.get_query_results(QueryId=qid, MaxQueryResults=2, NextToken=page["NextToken"])
        got += [r[0]["u"] for r in page["QueryResultRows"]]
    assert got == [f"{prefix}-{i}" for i in range(5)]
    with pytest.raises(ClientError) as exc:
        ct.get_query_results(QueryId=qid, NextToken="bm90LWEtdG9rZW4=")
    assert code(exc) == "InvalidNextTokenException"
    # ListQueries shows it, newest first.
    listed = ct.list_queries(EventDataStore=store["EventDataStoreArn"])["Queries"]
    assert listed[0]["QueryId"] == qid and listed[0]["QueryStatus"] == "FINISHED"
    assert qid in [q["QueryId"] for q in ct.list_queries(EventDataStore=sid, QueryStatus="FINISHED")["Queries"]]
    assert ct.list_queries(EventDataStore=sid, QueryStatus="FAILED")["Queries"] == [] or all(
        q["QueryStatus"] == "FAILED" for q in ct.list_queries(EventDataStore=sid, QueryStatus="FAILED")["Queries"]
    )
    with pytest.raises(ClientError) as exc:
        ct.list_queries(EventDataStore=sid, StartTime=time.time(), EndTime=time.time() - 3600)
    assert code(exc) == "InvalidDateRangeException"
    # A finished query cannot be cancelled.
    with pytest.raises(ClientError) as exc:
        ct.cancel_query(QueryId=qid)
    assert code(exc) == "InactiveQueryException"


def test_time_functions_and_parameters(ct, iam, store):
    sid = eds_id(store["EventDataStoreArn"])
    name = unique("user")
    iam.create_user(UserName=name)
    rows = flat(
        run(
            ct,
            f"SELECT date_trunc('day', eventTime) AS d, count(*) AS n FROM {sid} "
            "WHERE eventTime > date_add('hour', -1, now()) AND element_at(requestParameters, 'userName') = ? GROUP BY 1",
            QueryParameters=[name],
        )
    )
    assert len(rows) == 1 and rows[0]["n"] == "1" and rows[0]["d"].endswith(" 00:00:00.000")


def test_query_errors(ct, store):
    sid = eds_id(store["EventDataStoreArn"])
    for stmt in (
        f"DELETE FROM {sid}",
        f"SELECT * FROM {sid}; DROP TABLE x",
        "SELECT 1",
        f"SELECT nosuchcolumn FROM {sid}",
        f"SELECT readfile('/etc/passwd') FROM {sid}",
        f"SELECT eventName FROM {sid} WHERE",
    ):
        with pytest.raises(ClientError) as exc:
            ct.start_query(QueryStatement=stmt)
        assert code(exc) == "InvalidQueryStatementException", stmt
    with pytest.raises(ClientError) as exc:
        ct.start_query(QueryStatement="SELECT eventName FROM 00000000-0000-4000-8000-000000000000")
    assert code(exc) == "EventDataStoreNotFoundException"
    with pytest.raises(ClientError) as exc:
        ct.describe_query(QueryId="00000000-0000-4000-8000-000000000000")
    assert code(exc) == "QueryIdNotFoundException"
    with pytest.raises(ClientError) as exc:
        ct.get_query_results(QueryId="00000000-0000-4000-8000-000000000000")
    assert code(exc) == "QueryIdNotFoundException"
    with pytest.raises(ClientError) as exc:
        ct.start_query(QueryStatement=f"SELECT eventName FROM {sid} WHERE eventName = ?")
    assert code(exc) == "InvalidQueryStatementException"


def test_a_runaway_query_can_be_cancelled(ct, iam, store):
    sid = eds_id(store["EventDataStoreArn"])
    for _ in range(3):
        iam.list_users(MaxItems=1)
    joins = " ".join(f"CROSS JOIN {sid} t{i}" for i in range(7))
    qid = ct.start_query(QueryStatement=f"SELECT count(*) FROM {sid} t {joins}")["QueryId"]
    resp = ct.cancel_query(QueryId=qid)
    assert resp == {**resp, "QueryId": qid, "QueryStatus": "CANCELLED"}
    d = wait(ct, qid)
    assert d["QueryStatus"] == "CANCELLED"
    assert ct.get_query_results(QueryId=qid)["QueryResultRows"] == []


def test_a_runaway_query_times_out(spawn_server):
    srv = spawn_server(
        account_id=random_account_id(),
        access_key_id=random_key_id(),
        secret_access_key=random_secret(),
        extra_env={"RAMPART_LAKE_QUERY_TIMEOUT_SECONDS": "1"},
    )
    c = srv.client("cloudtrail")
    sid = eds_id(create(c)["EventDataStoreArn"])
    for _ in range(15):
        srv.client("sts").get_caller_identity()
    # At least 16 events, 10 copies joined: ~10^12 rows, far past any second on any machine.
    joins = " ".join(f"CROSS JOIN {sid} t{i}" for i in range(9))
    qid = c.start_query(QueryStatement=f"SELECT count(*) FROM {sid} t {joins}")["QueryId"]
    d = wait(c, qid, deadline=30)
    assert d["QueryStatus"] == "TIMED_OUT", d
    assert "time limit of 1 seconds" in d["ErrorMessage"]
    assert 900 <= d["QueryStatistics"]["ExecutionTimeInMillis"] < 10_000


def test_queries_are_authorized_on_the_event_data_store(ct, make_user, store, account_id):
    sid = eds_id(store["EventDataStoreArn"])
    other = create(ct)["EventDataStoreArn"]
    user = make_user(inline=[policy(allow(["cloudtrail:StartQuery", "cloudtrail:DescribeQuery", "cloudtrail:GetQueryResults"], other))])
    uct = user.client("cloudtrail")
    with pytest.raises(ClientError) as exc:
        uct.start_query(QueryStatement=f"SELECT eventName FROM {sid}")
    assert code(exc) in ("AccessDenied", "AccessDeniedException")
    qid = uct.start_query(QueryStatement=f"SELECT count(*) AS n FROM {eds_id(other)}")["QueryId"]
    assert wait(uct, qid)["QueryStatus"] == "FINISHED"
    with pytest.raises(ClientError) as exc:
        uct.create_event_data_store(Name=unique("eds"))
    assert code(exc) in ("AccessDenied", "AccessDeniedException")
    ct.delete_event_data_store(EventDataStore=other)


# -- imports -------------------------------------------------------------------------------------------
def wait_import(ct, import_id: str, deadline: float = 60.0) -> dict:
    end = time.monotonic() + deadline
    while True:
        got = ct.get_import(ImportId=import_id)
        if got["ImportStatus"] not in ("INITIALIZING", "IN_PROGRESS") or time.monotonic() > end:
            return got
        time.sleep(0.05)


def test_import_copies_delivered_trail_files(ct, iam, server, account_id):
    import gzip
    from pathlib import Path

    bucket = unique("lake-bucket").lower().replace("_", "-")
    trail = unique("trail")
    ct.create_trail(Name=trail, S3BucketName=bucket)
    ct.start_logging(Name=trail)
    name = unique("user")
    iam.create_user(UserName=name)
    ct.stop_logging(Name=trail)  # delivers what is pending
    # A damaged file in the trail's CloudTrail prefix is a failure, not the end of the import.
    day = Path(server.data_dir) / "trails" / bucket / "AWSLogs" / account_id / "CloudTrail" / "us-east-1" / "2020" / "01" / "01"
    day.mkdir(parents=True, exist_ok=True)
    (day / "broken.json.gz").write_bytes(gzip.compress(b"{not json"))
    dest = create(ct, StartIngestion=False)["EventDataStoreArn"]
    source = {"S3": {"S3LocationUri": f"s3://{bucket}", "S3BucketRegion": "us-east-1",
                     "S3BucketAccessRoleArn": f"arn:aws:iam::{account_id}:role/lake-import"}}
    started = ct.start_import(Destinations=[dest], ImportSource=source)
    assert UUID.match(started["ImportId"]) and started["ImportStatus"] == "INITIALIZING"
    assert started["Destinations"] == [dest] and started["ImportSource"] == source
    got = wait_import(ct, started["ImportId"])
    assert got["ImportStatus"] == "COMPLETED", got
    stats = got["ImportStatistics"]
    assert stats["FilesCompleted"] >= 2 and stats["EventsCompleted"] >= 1 and stats["FailedEntries"] == 1
    assert stats["PrefixesFound"] == stats["PrefixesCompleted"] >= 2
    failures = ct.list_import_failures(ImportId=started["ImportId"])["Failures"]
    assert len(failures) == 1 and failures[0]["Location"].endswith("/broken.json.gz") and failures[0]["Status"] == "FAILED"
    rows = run(ct, f"SELECT eventName FROM {eds_id(dest)} WHERE element_at(requestParameters, 'userName') = '{name}'")
    assert rows == [[{"eventName": "CreateUser"}]]
    listed = ct.list_imports(Destination=dest)["Imports"]
    assert [i["ImportId"] for i in listed] == [started["ImportId"]]
    # Importing again copies each event once.
    again = ct.start_import(Destinations=[dest], ImportSource=source)
    assert wait_import(ct, again["ImportId"])["ImportStatus"] == "COMPLETED"
    rows = run(ct, f"SELECT count(*) AS n FROM {eds_id(dest)} WHERE element_at(requestParameters, 'userName') = '{name}'")
    assert rows == [[{"n": "1"}]]
    # Only the caller's trail buckets.
    with pytest.raises(ClientError) as exc:
        ct.start_import(Destinations=[dest], ImportSource={"S3": {**source["S3"], "S3LocationUri": "s3://someone-elses-bucket"}})
    assert code(exc) == "InvalidImportSourceException"
    with pytest.raises(ClientError) as exc:
        ct.get_import(ImportId="00000000-0000-4000-8000-000000000000")
    assert code(exc) == "ImportNotFoundException"
    ct.delete_trail(Name=trail)
    ct.delete_event_data_store(EventDataStore=dest)


# -- sample queries ------------------------------------------------------------------------------------
def test_search_sample_queries_ranks_rampart_samples(ct, store, iam):
    found = ct.search_sample_queries(SearchPhrase="which access keys were created")["SearchResults"]
    assert found[0]["Name"] == "Access keys created"
    assert 0 < found[0]["Relevance"] <= 1 and all(a["Relevance"] >= b["Relevance"] for a, b in zip(found, found[1:]))
    assert "$EDS_ID" in found[0]["SQL"]
    # A sample runs as it is once $EDS_ID names a store.
    name = unique("user")
    iam.create_user(UserName=name)
    iam.create_access_key(UserName=name)
    rows = flat(run(ct, found[0]["SQL"].replace("$EDS_ID", eds_id(store["EventDataStoreArn"]))))
    assert name in [r["userName"] for r in rows]
    page = ct.search_sample_queries(SearchPhrase="calls", MaxResults=2)
    assert len(page["SearchResults"]) == 2 and page["NextToken"]
    assert ct.search_sample_queries(SearchPhrase="zebra giraffe")["SearchResults"] == []
