"""CloudTrail Lake integrations: resource-based policies (Put/Get/DeleteResourcePolicy), channels
(Create/Get/List/Update/DeleteChannel), cloudtrail-data's PutAuditEvents into an event data store
of ActivityAuditLog events, and cross-account queries allowed by an event data store's policy.

A --dev server: an access key that is a 12-digit account number is that account's root (secret
`test`), so two accounts talk to one server."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from support import RampartServer, make_client, unique

OWNER = "000000000000"
OTHER = "111111111111"
TERMINAL = {"FINISHED", "FAILED", "CANCELLED", "TIMED_OUT"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = RampartServer(tmp_path_factory.mktemp("channels"), ephemeral=True, extra_args=["--dev"]).start()
    yield s
    s.kill()


def client(srv, service, account=OWNER, **config):
    key = "test" if account == OWNER else account
    return make_client(service, srv.endpoint, key, "test", **config)


@pytest.fixture(scope="module")
def ct(srv):
    return client(srv, "cloudtrail")


@pytest.fixture(scope="module")
def ct_raw(srv):
    return client(srv, "cloudtrail", parameter_validation=False)


@pytest.fixture(scope="module")
def data(srv):
    return client(srv, "cloudtrail-data")


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


ACTIVITY = [{"Name": "integration", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["ActivityAuditLog"]}]}]


@pytest.fixture(scope="module")
def activity_store(ct):
    return ct.create_event_data_store(Name=unique("ext"), AdvancedEventSelectors=ACTIVITY,
                                      TerminationProtectionEnabled=False)


@pytest.fixture(scope="module")
def channel(ct, activity_store):
    return ct.create_channel(Name=unique("chan"), Source="Custom",
                             Destinations=[{"Type": "EVENT_DATA_STORE",
                                            "Location": activity_store["EventDataStoreArn"]}],
                             Tags=[{"Key": "team", "Value": "sec"}])


def event(account=OWNER, **over) -> dict:
    d = {
        "version": "1.0",
        "userIdentity": {"type": "CustomUser", "principalId": "alice", "details": {"team": "blue"}},
        "userAgent": "my-app/1.0",
        "eventSource": "my.app.example",
        "eventName": "Login",
        "eventTime": "2024-05-01T10:00:00Z",
        "UID": str(uuid.uuid4()),
        "requestParameters": {"user": "alice"},
        "recipientAccountId": account,
    }
    d.update(over)
    return d


def entry(data: dict, checksum: bool = True) -> dict:
    text = json.dumps(data)
    e = {"id": str(uuid.uuid4()), "eventData": text}
    if checksum:
        e["eventDataChecksum"] = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return e


def wait(ct, qid, **kw) -> dict:
    end = time.monotonic() + 60
    while True:
        d = ct.describe_query(QueryId=qid, **kw)
        if d["QueryStatus"] in TERMINAL or time.monotonic() > end:
            return d
        time.sleep(0.05)


def rows(ct, statement, **kw) -> list[dict]:
    qid = ct.start_query(QueryStatement=statement, **kw)["QueryId"]
    d = wait(ct, qid, **kw)
    assert d["QueryStatus"] == "FINISHED", d
    page = ct.get_query_results(QueryId=qid, **kw)
    return [{k: v for col in row for k, v in col.items()} for row in page["QueryResultRows"]]


# -- event data stores of ActivityAuditLog events ---------------------------------------------

def test_event_data_store_of_activity_audit_log_events(ct, ct_raw, activity_store):
    got = ct.get_event_data_store(EventDataStore=activity_store["EventDataStoreArn"])
    assert got["AdvancedEventSelectors"] == ACTIVITY
    # Not mixed with other categories.
    with pytest.raises(ClientError) as e:
        ct_raw.create_event_data_store(Name=unique("mix"), AdvancedEventSelectors=ACTIVITY + [
            {"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}])
    assert code(e) == "InvalidEventSelectorsException"


# -- channels ------------------------------------------------------------------------------------

def test_create_get_list_channel(ct, channel, activity_store):
    arn = channel["ChannelArn"]
    assert arn.startswith(f"arn:aws:cloudtrail:us-east-1:{OWNER}:channel/")
    assert channel["Source"] == "Custom"
    assert channel["Tags"] == [{"Key": "team", "Value": "sec"}]
    got = ct.get_channel(Channel=arn)
    assert got["Name"] == channel["Name"]
    assert got["Destinations"] == [{"Type": "EVENT_DATA_STORE", "Location": activity_store["EventDataStoreArn"]}]
    assert "IngestionStatus" in got
    # By ID too.
    assert ct.get_channel(Channel=arn.rsplit("/", 1)[1])["ChannelArn"] == arn
    listed = ct.list_channels()["Channels"]
    assert {"ChannelArn": arn, "Name": channel["Name"]} in listed


def test_channel_tags(ct, activity_store):
    c = ct.create_channel(Name=unique("tags"), Source="Custom",
                          Destinations=[{"Type": "EVENT_DATA_STORE", "Location": activity_store["EventDataStoreArn"]}],
                          Tags=[{"Key": "a", "Value": "1"}])
    arn = c["ChannelArn"]
    ct.add_tags(ResourceId=arn, TagsList=[{"Key": "b", "Value": "2"}])
    ct.remove_tags(ResourceId=arn, TagsList=[{"Key": "a"}])
    assert ct.list_tags(ResourceIdList=[arn])["ResourceTagList"] == [
        {"ResourceId": arn, "TagsList": [{"Key": "b", "Value": "2"}]}]
    ct.delete_channel(Channel=arn)
    with pytest.raises(ClientError) as e:
        ct.list_tags(ResourceIdList=[arn])
    assert code(e) == "ResourceNotFoundException"


def test_channel_errors(ct, ct_raw, channel, activity_store):
    mgmt = ct.create_event_data_store(Name=unique("mgmt"), TerminationProtectionEnabled=False)
    with pytest.raises(ClientError) as e:
        ct.create_channel(Name=unique("c"), Source="Custom",
                          Destinations=[{"Type": "EVENT_DATA_STORE", "Location": mgmt["EventDataStoreArn"]}])
    assert code(e) == "InvalidEventDataStoreCategoryException"
    missing = activity_store["EventDataStoreArn"].rsplit("/", 1)[0] + "/" + str(uuid.uuid4())
    with pytest.raises(ClientError) as e:
        ct.create_channel(Name=unique("c"), Source="Custom",
                          Destinations=[{"Type": "EVENT_DATA_STORE", "Location": missing}])
    assert code(e) == "EventDataStoreNotFoundException"
    with pytest.raises(ClientError) as e:
        ct.create_channel(Name=channel["Name"], Source="Custom",
                          Destinations=[{"Type": "EVENT_DATA_STORE", "Location": activity_store["EventDataStoreArn"]}])
    assert code(e) == "ChannelAlreadyExistsException"
    with pytest.raises(ClientError) as e:
        ct_raw.create_channel(Name="x", Source="Custom",
                              Destinations=[{"Type": "EVENT_DATA_STORE", "Location": activity_store["EventDataStoreArn"]}])
    assert code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ct.get_channel(Channel=f"arn:aws:cloudtrail:us-east-1:{OWNER}:channel/{uuid.uuid4()}")
    assert code(e) == "ChannelNotFoundException"
    with pytest.raises(ClientError) as e:
        ct.get_channel(Channel="arn:aws:cloudtrail:us-east-1:000000000000:trail/x")
    assert code(e) == "ChannelARNInvalidException"
    ct.delete_event_data_store(EventDataStore=mgmt["EventDataStoreArn"])


def test_update_and_delete_channel(ct, activity_store):
    c = ct.create_channel(Name=unique("upd"), Source="Custom",
                          Destinations=[{"Type": "EVENT_DATA_STORE", "Location": activity_store["EventDataStoreArn"]}])
    new_name = unique("renamed")
    out = ct.update_channel(Channel=c["ChannelArn"], Name=new_name)
    assert out["Name"] == new_name and out["ChannelArn"] == c["ChannelArn"]
    assert ct.get_channel(Channel=c["ChannelArn"])["Name"] == new_name
    ct.delete_channel(Channel=c["ChannelArn"])
    with pytest.raises(ClientError) as e:
        ct.get_channel(Channel=c["ChannelArn"])
    assert code(e) == "ChannelNotFoundException"
    assert c["ChannelArn"] not in [x["ChannelArn"] for x in ct.list_channels()["Channels"]]


# -- resource policies -------------------------------------------------------------------------

def channel_policy(arn, principal=OTHER, **cond) -> str:
    st = {"Sid": "ChannelPolicy", "Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{principal}:root"]},
          "Action": "cloudtrail-data:PutAuditEvents", "Resource": arn}
    if cond:
        st["Condition"] = cond
    return json.dumps({"Version": "2012-10-17", "Statement": [st]})


def test_resource_policy_lifecycle_and_errors(ct, ct_raw, channel):
    arn = channel["ChannelArn"]
    with pytest.raises(ClientError) as e:
        ct.get_resource_policy(ResourceArn=arn)
    assert code(e) == "ResourcePolicyNotFoundException"
    doc = channel_policy(arn)
    out = ct.put_resource_policy(ResourceArn=arn, ResourcePolicy=doc)
    assert out["ResourceArn"] == arn and json.loads(out["ResourcePolicy"]) == json.loads(doc)
    assert json.loads(ct.get_resource_policy(ResourceArn=arn)["ResourcePolicy"]) == json.loads(doc)
    # A channel's policy allows only cloudtrail-data:PutAuditEvents, on the channel itself.
    bad = json.loads(doc)
    bad["Statement"][0]["Action"] = "cloudtrail:StartQuery"
    with pytest.raises(ClientError) as e:
        ct.put_resource_policy(ResourceArn=arn, ResourcePolicy=json.dumps(bad))
    assert code(e) == "ResourcePolicyNotValidException"
    with pytest.raises(ClientError) as e:
        ct.put_resource_policy(ResourceArn=arn, ResourcePolicy="{not json")
    assert code(e) == "ResourcePolicyNotValidException"
    no_principal = json.loads(doc)
    del no_principal["Statement"][0]["Principal"]
    with pytest.raises(ClientError) as e:
        ct.put_resource_policy(ResourceArn=arn, ResourcePolicy=json.dumps(no_principal))
    assert code(e) == "ResourcePolicyNotValidException"
    with pytest.raises(ClientError) as e:
        ct_raw.put_resource_policy(ResourceArn=arn, ResourcePolicy="x" * 8193)
    assert code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ct.put_resource_policy(ResourceArn=f"arn:aws:cloudtrail:us-east-1:{OWNER}:trail/t", ResourcePolicy=doc)
    assert code(e) == "ResourceTypeNotSupportedException"
    with pytest.raises(ClientError) as e:
        ct.put_resource_policy(ResourceArn="arn:aws:s3:::bucket", ResourcePolicy=doc)
    assert code(e) == "ResourceARNNotValidException"
    gone = f"arn:aws:cloudtrail:us-east-1:{OWNER}:channel/{uuid.uuid4()}"
    with pytest.raises(ClientError) as e:
        ct.put_resource_policy(ResourceArn=gone, ResourcePolicy=channel_policy(gone))
    assert code(e) == "ResourceNotFoundException"
    ct.delete_resource_policy(ResourceArn=arn)
    with pytest.raises(ClientError) as e:
        ct.delete_resource_policy(ResourceArn=arn)
    assert code(e) == "ResourcePolicyNotFoundException"


# -- PutAuditEvents ------------------------------------------------------------------------------

def test_put_audit_events_then_query(ct, data, channel, activity_store):
    uid = str(uuid.uuid4())
    good = entry(event(UID=uid, eventName="Export"))
    no_checksum = entry(event(eventName="Logout"), checksum=False)
    bad_sum = entry(event())
    bad_sum["eventDataChecksum"] = base64.b64encode(b"x" * 32).decode()
    missing = event()
    del missing["UID"]
    wrong_recipient = entry(event(account=OTHER))
    out = data.put_audit_events(channelArn=channel["ChannelArn"],
                                auditEvents=[good, no_checksum, bad_sum, entry(missing), wrong_recipient])
    assert [s["id"] for s in out["successful"]] == [good["id"], no_checksum["id"]]
    assert all(len(s["eventID"]) == 36 for s in out["successful"])
    failed = {f["id"]: f["errorCode"] for f in out["failed"]}
    assert failed == {bad_sum["id"]: "InvalidChecksum", out["failed"][1]["id"]: "FieldNotFound",
                      wrong_recipient["id"]: "InvalidRecipient"}
    status = ct.get_channel(Channel=channel["ChannelArn"])["IngestionStatus"]
    assert status["LatestIngestionSuccessEventID"] == out["successful"][-1]["eventID"]
    assert "LatestIngestionSuccessTime" in status

    sid = activity_store["EventDataStoreArn"].rsplit("/", 1)[1]
    got = rows(ct, f"SELECT eventData.eventName, eventData.UID, eventCategory, metadata.channelARN "
                   f"FROM {sid} WHERE eventData.UID = '{uid}'")
    assert got == [{"eventName": "Export", "UID": uid, "eventCategory": "ActivityAuditLog",
                    "channelARN": channel["ChannelArn"]}]


def test_put_audit_events_request_errors(srv, data, channel):
    raw = client(srv, "cloudtrail-data", parameter_validation=False)
    e1 = entry(event())
    with pytest.raises(ClientError) as e:
        data.put_audit_events(channelArn=channel["ChannelArn"], auditEvents=[e1, dict(e1)])
    assert code(e) == "DuplicatedAuditEventId"
    with pytest.raises(ClientError) as e:
        raw.put_audit_events(channelArn=channel["ChannelArn"], auditEvents=[entry(event()) for _ in range(101)])
    assert code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        data.put_audit_events(channelArn=f"arn:aws:cloudtrail:us-east-1:{OWNER}:channel/{uuid.uuid4()}",
                              auditEvents=[entry(event())])
    assert code(e) == "ChannelNotFound"
    with pytest.raises(ClientError) as e:
        data.put_audit_events(channelArn="arn:aws:cloudtrail:us-east-1:000000000000:trail/x",
                              auditEvents=[entry(event())])
    assert code(e) == "InvalidChannelARN"


def test_cross_account_put_audit_events_needs_the_channel_policy(srv, ct, channel):
    arn = channel["ChannelArn"]
    other = client(srv, "cloudtrail-data", account=OTHER)
    # The events name the channel owner as recipient.
    with pytest.raises(ClientError) as e:
        other.put_audit_events(channelArn=arn, auditEvents=[entry(event())])
    assert code(e) == "AccessDeniedException"
    ct.put_resource_policy(ResourceArn=arn, ResourcePolicy=channel_policy(
        arn, StringEquals={"cloudtrail:ExternalId": "partner-secret"}))
    try:
        # The policy's external ID condition must hold.
        with pytest.raises(ClientError) as e:
            other.put_audit_events(channelArn=arn, auditEvents=[entry(event())])
        assert code(e) == "AccessDeniedException"
        out = other.put_audit_events(channelArn=arn, externalId="partner-secret", auditEvents=[entry(event())])
        assert len(out["successful"]) == 1 and out["failed"] == []
    finally:
        ct.delete_resource_policy(ResourceArn=arn)


# -- cross-account queries ---------------------------------------------------------------------

def test_cross_account_query_allowed_by_the_event_data_store_policy(srv, ct):
    store = ct.create_event_data_store(Name=unique("shared"), TerminationProtectionEnabled=False)
    arn = store["EventDataStoreArn"]
    sid = arn.rsplit("/", 1)[1]
    ct.list_channels()  # something to find
    other = client(srv, "cloudtrail", account=OTHER)
    stmt = f"SELECT eventName FROM {sid} WHERE eventName = 'ListChannels'"
    with pytest.raises(ClientError) as e:
        other.start_query(QueryStatement=stmt, EventDataStoreOwnerAccountId=OWNER)
    assert code(e) == "AccessDeniedException"
    policy = {"Version": "2012-10-17", "Statement": [{
        "Sid": "share", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
        "Action": ["cloudtrail:StartQuery", "cloudtrail:DescribeQuery", "cloudtrail:GetQueryResults"],
        "Resource": arn}]}
    ct.put_resource_policy(ResourceArn=arn, ResourcePolicy=json.dumps(policy))
    got = rows(other, stmt, EventDataStoreOwnerAccountId=OWNER)
    assert got and all(r == {"eventName": "ListChannels"} for r in got)
    # Without the policy again: refused.
    ct.delete_resource_policy(ResourceArn=arn)
    with pytest.raises(ClientError) as e:
        other.start_query(QueryStatement=stmt, EventDataStoreOwnerAccountId=OWNER)
    assert code(e) == "AccessDeniedException"
    ct.delete_event_data_store(EventDataStore=arn)
