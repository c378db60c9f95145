// CloudTrail through @aws-sdk/client-cloudtrail (awsJson1_1 with the Smithy SDKs' target prefix
// `CloudTrail_20131101.*`): LookupEvents finds the calls this SDK just made; trails.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  AccessDeniedException,
  AddTagsCommand,
  CloudTrailClient,
  CreateDashboardCommand,
  DeleteDashboardCommand,
  GetDashboardCommand,
  ListDashboardsCommand,
  ListQueriesCommand,
  PutResourcePolicyCommand,
  ResourceNotFoundException,
  StartDashboardRefreshCommand,
  CreateEventDataStoreCommand,
  DeleteEventDataStoreCommand,
  DescribeQueryCommand,
  EventDataStoreNotFoundException,
  GetEventConfigurationCommand,
  GetEventDataStoreCommand,
  GetQueryResultsCommand,
  InvalidParameterCombinationException,
  PutEventConfigurationCommand,
  UnsupportedOperationException,
  InvalidQueryStatementException,
  StartQueryCommand,
  CloudTrailServiceException,
  CreateTrailCommand,
  DeleteTrailCommand,
  DescribeTrailsCommand,
  GetTrailCommand,
  GetTrailStatusCommand,
  GetInsightSelectorsCommand,
  InsightNotEnabledException,
  InvalidInsightSelectorsException,
  ListInsightsDataCommand,
  ListInsightsMetricDataCommand,
  OrganizationsNotInUseException,
  PutInsightSelectorsCommand,
  RegisterOrganizationDelegatedAdminCommand,
  InvalidLookupAttributesException,
  ListTagsCommand,
  LookupEventsCommand,
  StartLoggingCommand,
  StopLoggingCommand,
  TrailAlreadyExistsException,
  TrailNotFoundException,
  paginateGetQueryResults,
  paginateListEventDataStores,
  paginateLookupEvents,
} from "@aws-sdk/client-cloudtrail";
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient } from "@aws-sdk/client-iam";
import { CreateKeyCommand, EncryptCommand, KMSClient } from "@aws-sdk/client-kms";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";

import { UNICODE, implicitDeny, startServer, unique } from "../harness.js";

let srv, ct, iam;
before(async () => {
  srv = await startServer();
  ct = srv.client(CloudTrailClient);
  iam = srv.client(IAMClient);
});
after(async () => {
  await srv?.stop();
});

async function makeUser() {
  const name = unique("user");
  const { User } = await iam.send(new CreateUserCommand({ UserName: name }));
  const { AccessKey } = await iam.send(new CreateAccessKeyCommand({ UserName: name }));
  return { ...User, credentials: { accessKeyId: AccessKey.AccessKeyId, secretAccessKey: AccessKey.SecretAccessKey } };
}

test("LookupEvents finds a CreateUser call just made, with its full record", async () => {
  const name = unique("user");
  const created = await iam.send(
    new CreateUserCommand({ UserName: name, Tags: [{ Key: "team", Value: "naïve 日本語" }] }),
  );
  const { Events } = await ct.send(
    new LookupEventsCommand({ LookupAttributes: [{ AttributeKey: "ResourceName", AttributeValue: name }] }),
  );
  assert.equal(Events.length, 1);
  const event = Events[0];
  assert.equal(event.EventName, "CreateUser");
  assert.equal(event.EventSource, "iam.amazonaws.com");
  assert.equal(event.Username, "root");
  assert.equal(event.AccessKeyId, srv.credentials.accessKeyId);
  assert.equal(event.ReadOnly, "false");
  assert.ok(event.EventTime instanceof Date);
  assert.ok(Math.abs(Date.now() - event.EventTime.getTime()) < 300_000);
  assert.deepEqual(event.Resources, [{ ResourceType: "AWS::IAM::User", ResourceName: name }]);

  const record = JSON.parse(event.CloudTrailEvent);
  assert.equal(record.eventID, event.EventId);
  assert.equal(record.eventName, "CreateUser");
  assert.equal(record.requestID, created.$metadata.requestId);
  assert.match(record.userAgent, /aws-sdk-js/);
  assert.deepEqual(record.userIdentity, {
    type: "Root",
    principalId: srv.accountId,
    arn: `arn:aws:iam::${srv.accountId}:root`,
    accountId: srv.accountId,
    accessKeyId: srv.credentials.accessKeyId,
  });
  // Non-ASCII request parameters are recorded exactly.
  assert.deepEqual(record.requestParameters, { userName: name, tags: [{ key: "team", value: "naïve 日本語" }] });
  assert.equal(record.responseElements.user.arn, created.User.Arn);
});

test("LookupEvents by EventName and by AccessKeyId: KMS, STS, and a denied call", async () => {
  const user = await makeUser();
  const kms = srv.client(KMSClient);
  const key = (await kms.send(new CreateKeyCommand({ Description: UNICODE }))).KeyMetadata;
  await kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Uint8Array.of(1, 2, 3) }));
  await srv.client(STSClient, user.credentials).send(new GetCallerIdentityCommand({}));
  await assert.rejects(srv.client(KMSClient, user.credentials).send(new CreateKeyCommand({})));

  const byName = (
    await ct.send(
      new LookupEventsCommand({ LookupAttributes: [{ AttributeKey: "EventName", AttributeValue: "CreateKey" }] }),
    )
  ).Events.map((e) => JSON.parse(e.CloudTrailEvent));
  const mine = byName.find((r) => r.responseElements?.keyMetadata?.keyId === key.KeyId);
  assert.ok(mine, "the CreateKey call is recorded");
  assert.equal(mine.eventSource, "kms.amazonaws.com");
  assert.equal(mine.requestParameters.description, UNICODE);

  const byKey = (
    await ct.send(
      new LookupEventsCommand({
        LookupAttributes: [{ AttributeKey: "AccessKeyId", AttributeValue: user.credentials.accessKeyId }],
      }),
    )
  ).Events;
  // Newest first.
  assert.deepEqual(
    byKey.map((e) => e.EventName),
    ["CreateKey", "GetCallerIdentity"],
  );
  const denied = JSON.parse(byKey[0].CloudTrailEvent);
  assert.equal(denied.errorCode, "AccessDeniedException");
  assert.equal(denied.errorMessage, implicitDeny(user.Arn, "kms:CreateKey", "*"));
  assert.equal(denied.userIdentity.type, "IAMUser");
  assert.equal(denied.userIdentity.userName, user.UserName);
});

test("paginateLookupEvents follows NextToken across pages", async () => {
  const user = await makeUser();
  const sts = srv.client(STSClient, user.credentials);
  for (let i = 0; i < 7; i++) await sts.send(new GetCallerIdentityCommand({}));
  const pages = [];
  for await (const page of paginateLookupEvents(
    { client: ct, pageSize: 3 },
    { LookupAttributes: [{ AttributeKey: "Username", AttributeValue: user.UserName }] },
  )) {
    pages.push(page.Events);
  }
  assert.deepEqual(
    pages.map((p) => p.length),
    [3, 3, 1],
  );
  const events = pages.flat();
  assert.ok(events.every((e) => e.EventName === "GetCallerIdentity" && e.Username === user.UserName));
  assert.equal(new Set(events.map((e) => e.EventId)).size, 7, "no event on two pages");
  const times = events.map((e) => e.EventTime.getTime());
  assert.deepEqual(times, times.toSorted((a, b) => b - a), "newest first");
});

test("LookupEvents with a time range (timestamps the SDK sends as epoch seconds)", async () => {
  const user = await makeUser();
  const sts = srv.client(STSClient, user.credentials);
  await sts.send(new GetCallerIdentityCommand({}));
  const byUser = [{ AttributeKey: "Username", AttributeValue: user.UserName }];
  const now = Date.now();
  const inRange = await ct.send(
    new LookupEventsCommand({
      LookupAttributes: byUser,
      StartTime: new Date(now - 60_000),
      EndTime: new Date(now + 60_000),
    }),
  );
  assert.equal(inRange.Events.length, 1);
  const t = inRange.Events[0].EventTime.getTime();
  // An EndTime before the event, and a StartTime after it, leave it out.
  const before = await ct.send(
    new LookupEventsCommand({ LookupAttributes: byUser, StartTime: new Date(t - 60_000), EndTime: new Date(t - 1000) }),
  );
  assert.deepEqual(before.Events, []);
  const later = await ct.send(
    new LookupEventsCommand({ LookupAttributes: byUser, StartTime: new Date(t + 1000), EndTime: new Date(t + 60_000) }),
  );
  assert.deepEqual(later.Events, []);
});

test("trails: CreateTrail, GetTrail, StartLogging, status, tags, StopLogging, DeleteTrail", async () => {
  const name = unique("trail");
  const bucket = `audit-${name.toLowerCase()}`;
  const arn = `arn:aws:cloudtrail:us-east-1:${srv.accountId}:trail/${name}`;
  const created = await ct.send(
    new CreateTrailCommand({
      Name: name,
      S3BucketName: bucket,
      EnableLogFileValidation: true,
      TagsList: [{ Key: "owner", Value: UNICODE }],
    }),
  );
  assert.equal(created.Name, name);
  assert.equal(created.TrailARN, arn);
  assert.equal(created.S3BucketName, bucket);
  assert.equal(created.LogFileValidationEnabled, true);

  const trail = (await ct.send(new GetTrailCommand({ Name: name }))).Trail;
  assert.equal(trail.TrailARN, arn);
  assert.equal(trail.HomeRegion, "us-east-1");
  assert.equal(trail.IsMultiRegionTrail, false);
  assert.deepEqual(
    (await ct.send(new DescribeTrailsCommand({ trailNameList: [name] }))).trailList.map((t) => t.Name),
    [name],
  );

  assert.equal((await ct.send(new GetTrailStatusCommand({ Name: name }))).IsLogging, false);
  await ct.send(new StartLoggingCommand({ Name: name }));
  const status = await ct.send(new GetTrailStatusCommand({ Name: arn }));
  assert.equal(status.IsLogging, true);
  assert.ok(status.StartLoggingTime instanceof Date);

  await ct.send(new AddTagsCommand({ ResourceId: arn, TagsList: [{ Key: "ключ", Value: "値 ✓" }] }));
  const tags = (await ct.send(new ListTagsCommand({ ResourceIdList: [arn] }))).ResourceTagList[0];
  assert.equal(tags.ResourceId, arn);
  assert.deepEqual(
    tags.TagsList.toSorted((a, b) => (a.Key < b.Key ? -1 : 1)),
    [
      { Key: "owner", Value: UNICODE },
      { Key: "ключ", Value: "値 ✓" },
    ],
  );

  await assert.rejects(ct.send(new CreateTrailCommand({ Name: name, S3BucketName: bucket })), (e) => {
    assert.ok(e instanceof TrailAlreadyExistsException, `${e.name}: ${e.message}`);
    return true;
  });

  await ct.send(new StopLoggingCommand({ Name: name }));
  const stopped = await ct.send(new GetTrailStatusCommand({ Name: name }));
  assert.equal(stopped.IsLogging, false);
  assert.ok(stopped.StopLoggingTime instanceof Date);

  await ct.send(new DeleteTrailCommand({ Name: name }));
  await assert.rejects(ct.send(new GetTrailCommand({ Name: name })), (e) => {
    assert.ok(e instanceof TrailNotFoundException, `${e.name}: ${e.message}`);
    assert.ok(e instanceof CloudTrailServiceException);
    assert.equal(e.$metadata.httpStatusCode, 400);
    // GetTrail names the trail as given; the other operations name its ARN (as AWS does).
    assert.equal(e.message, `Unknown trail: ${name} for the user: ${srv.accountId}`);
    return true;
  });
  await assert.rejects(ct.send(new GetTrailStatusCommand({ Name: name })), (e) => {
    assert.ok(e instanceof TrailNotFoundException, `${e.name}: ${e.message}`);
    assert.equal(e.message, `Unknown trail: ${arn} for the user: ${srv.accountId}`);
    return true;
  });
});

test("an unknown lookup attribute is InvalidLookupAttributesException", async () => {
  await assert.rejects(
    ct.send(new LookupEventsCommand({ LookupAttributes: [{ AttributeKey: "Bogus", AttributeValue: "x" }] })),
    (e) => {
      assert.ok(e instanceof InvalidLookupAttributesException, `${e.name}: ${e.message}`);
      return true;
    },
  );
});

test("a user without policies gets AccessDeniedException", async () => {
  const user = await makeUser();
  await assert.rejects(srv.client(CloudTrailClient, user.credentials).send(new LookupEventsCommand({})), (e) => {
    assert.ok(e instanceof CloudTrailServiceException, `${e.constructor.name}: ${e.message}`);
    assert.equal(e.name, "AccessDeniedException");
    assert.equal(e.message, implicitDeny(user.Arn, "cloudtrail:LookupEvents", "*"));
    return true;
  });
});

// -- CloudTrail Lake ------------------------------------------------------------------------------

async function waitForQuery(QueryId) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const d = await ct.send(new DescribeQueryCommand({ QueryId }));
    if (["FINISHED", "FAILED", "CANCELLED", "TIMED_OUT"].includes(d.QueryStatus) || Date.now() > deadline) return d;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("Lake: CreateEventDataStore, StartQuery over the calls made since, paginated GetQueryResults", async () => {
  const created = await ct.send(
    new CreateEventDataStoreCommand({ Name: unique("eds"), TerminationProtectionEnabled: false, RetentionPeriod: 30 }),
  );
  assert.match(created.EventDataStoreArn, /^arn:aws:cloudtrail:us-east-1:\d{12}:eventdatastore\/[0-9a-f-]{36}$/);
  assert.equal(created.RetentionPeriod, 30);
  assert.ok(created.CreatedTimestamp instanceof Date);
  const id = created.EventDataStoreArn.split("/").pop();
  const got = await ct.send(new GetEventDataStoreCommand({ EventDataStore: created.EventDataStoreArn }));
  assert.equal(got.Status, "ENABLED");
  let listed = [];
  for await (const page of paginateListEventDataStores({ client: ct, pageSize: 1 }, {})) listed.push(...page.EventDataStores);
  assert.ok(listed.some((s) => s.EventDataStoreArn === created.EventDataStoreArn));

  const prefix = unique("lake");
  const names = [`${prefix}-a`, `${prefix}-b`, `${prefix}-ü日本`];
  for (const n of names) await iam.send(new CreateUserCommand({ UserName: n.replace(/[^\w+=,.@-]/g, "x") }));
  const { QueryId } = await ct.send(
    new StartQueryCommand({
      QueryStatement: `SELECT element_at(requestParameters, 'userName') AS u, userIdentity.type FROM ${id} WHERE eventName = 'CreateUser' AND element_at(requestParameters, 'userName') LIKE '${prefix}%' ORDER BY 1`,
    }),
  );
  const d = await waitForQuery(QueryId);
  assert.equal(d.QueryStatus, "FINISHED", d.ErrorMessage);
  assert.ok(d.QueryStatistics.CreationTime instanceof Date);
  const rows = [];
  let pages = 0;
  for await (const page of paginateGetQueryResults({ client: ct }, { QueryId, MaxQueryResults: 2 })) {
    assert.ok(page.QueryResultRows.length <= 2);
    assert.equal(page.QueryStatistics.TotalResultsCount, 3);
    rows.push(...page.QueryResultRows);
    pages += 1;
  }
  assert.equal(pages, 2);
  assert.deepEqual(
    rows.map((r) => r[0].u),
    names.map((n) => n.replace(/[^\w+=,.@-]/g, "x")),
  );
  assert.deepEqual(rows[0][1], { type: "Root" });
  await ct.send(new DeleteEventDataStoreCommand({ EventDataStore: created.EventDataStoreArn }));
});

test("Lake: typed errors for a bad statement and a missing event data store", async () => {
  await assert.rejects(ct.send(new StartQueryCommand({ QueryStatement: "DROP TABLE x" })), (e) => {
    assert.ok(e instanceof InvalidQueryStatementException, `${e.name}: ${e.message}`);
    return true;
  });
  await assert.rejects(
    ct.send(new GetEventDataStoreCommand({ EventDataStore: "00000000-0000-4000-8000-000000000000" })),
    (e) => {
      assert.ok(e instanceof EventDataStoreNotFoundException, `${e.name}: ${e.message}`);
      return true;
    },
  );
});

test("Lake: PutEventConfiguration / GetEventConfiguration (MaxEventSize; context key selectors refused)", async () => {
  const { EventDataStoreArn: arn } = await ct.send(
    new CreateEventDataStoreCommand({ Name: unique("eds"), TerminationProtectionEnabled: false }),
  );
  const before = await ct.send(new GetEventConfigurationCommand({ EventDataStore: arn }));
  assert.equal(before.EventDataStoreArn, arn);
  assert.equal(before.MaxEventSize, "Standard");
  assert.deepEqual(before.ContextKeySelectors, []);
  const put = await ct.send(new PutEventConfigurationCommand({ EventDataStore: arn.split("/").pop(), MaxEventSize: "Large" }));
  assert.equal(put.EventDataStoreArn, arn);
  assert.equal(put.MaxEventSize, "Large");
  assert.equal((await ct.send(new GetEventConfigurationCommand({ EventDataStore: arn }))).MaxEventSize, "Large");
  await assert.rejects(
    ct.send(
      new PutEventConfigurationCommand({
        EventDataStore: arn,
        MaxEventSize: "Large",
        ContextKeySelectors: [{ Type: "TagContext", Equals: ["team"] }],
      }),
    ),
    (e) => {
      assert.ok(e instanceof UnsupportedOperationException, `${e.name}: ${e.message}`);
      return true;
    },
  );
  await assert.rejects(ct.send(new GetEventConfigurationCommand({})), (e) => {
    assert.ok(e instanceof InvalidParameterCombinationException, `${e.name}: ${e.message}`);
    assert.equal(e.$metadata.httpStatusCode, 400);
    return true;
  });
});

test("Lake dashboards: CreateDashboard under the store's policy for CloudTrail, refresh, Get/List/Delete", async () => {
  const { EventDataStoreArn: eds } = await ct.send(
    new CreateEventDataStoreCommand({ Name: unique("eds"), TerminationProtectionEnabled: false }),
  );
  const name = unique("dash");
  const account = eds.split(":")[4];
  const arn = `arn:aws:cloudtrail:us-east-1:${account}:dashboard/${name}`;
  const widget = {
    QueryStatement: `SELECT eventName, count(*) AS n FROM ${eds.split("/").pop()} WHERE eventTime > '?' GROUP BY eventName`,
    QueryParameters: ["$StartTime$"],
    ViewProperties: { View: "Table" },
  };
  // Without a policy letting cloudtrail.amazonaws.com query the store for this dashboard: denied.
  await assert.rejects(ct.send(new CreateDashboardCommand({ Name: name, Widgets: [widget] })), (e) => {
    assert.ok(e instanceof AccessDeniedException, `${e.name}: ${e.message}`);
    return true;
  });
  await ct.send(
    new PutResourcePolicyCommand({
      ResourceArn: eds,
      ResourcePolicy: JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Allow",
            Principal: { Service: "cloudtrail.amazonaws.com" },
            Action: "cloudtrail:StartQuery",
            Resource: eds,
            Condition: { StringEquals: { "aws:SourceArn": arn } },
          },
        ],
      }),
    }),
  );
  const created = await ct.send(new CreateDashboardCommand({ Name: name, Widgets: [widget] }));
  assert.equal(created.DashboardArn, arn);
  assert.equal(created.Type, "CUSTOM");
  assert.deepEqual(created.Widgets, [widget]);
  const { RefreshId } = await ct.send(
    new StartDashboardRefreshCommand({ DashboardId: name, QueryParameterValues: { $StartTime$: "2020-01-01 00:00:00" } }),
  );
  assert.match(RefreshId, /^\d{10,20}$/);
  const got = await ct.send(new GetDashboardCommand({ DashboardId: arn }));
  assert.equal(got.LastRefreshId, RefreshId);
  assert.ok(got.CreatedTimestamp instanceof Date);
  const { Queries } = await ct.send(new ListQueriesCommand({ EventDataStore: eds }));
  assert.equal(Queries.length, 1);
  const listed = await ct.send(new ListDashboardsCommand({ NamePrefix: name }));
  assert.deepEqual(listed.Dashboards, [{ DashboardArn: arn, Type: "CUSTOM" }]);
  await ct.send(new DeleteDashboardCommand({ DashboardId: name }));
  await assert.rejects(ct.send(new GetDashboardCommand({ DashboardId: name })), (e) => {
    assert.ok(e instanceof ResourceNotFoundException, `${e.name}: ${e.message}`);
    return true;
  });
});

// -- Insights and Organizations ------------------------------------------------------------------

test("Insights: PutInsightSelectors, GetInsightSelectors, the counted metric, ListInsightsData", async () => {
  const Name = unique("trail");
  const { TrailARN } = await ct.send(new CreateTrailCommand({ Name, S3BucketName: `ins-${Name.toLowerCase()}` }));
  await assert.rejects(ct.send(new GetInsightSelectorsCommand({ TrailName: Name })), (e) => {
    assert.ok(e instanceof InsightNotEnabledException, e.constructor.name);
    return true;
  });
  await assert.rejects(
    ct.send(new PutInsightSelectorsCommand({ TrailName: Name, InsightSelectors: [{ InsightType: "ApiBurst" }] })),
    (e) => e instanceof InvalidInsightSelectorsException,
  );
  await ct.send(new StartLoggingCommand({ Name }));
  const put = await ct.send(
    new PutInsightSelectorsCommand({
      TrailName: Name,
      InsightSelectors: [{ InsightType: "ApiCallRateInsight" }, { InsightType: "ApiErrorRateInsight", EventCategories: ["Management"] }],
    }),
  );
  assert.equal(put.TrailARN, TrailARN);
  const got = await ct.send(new GetInsightSelectorsCommand({ TrailName: TrailARN }));
  assert.deepEqual(got.InsightSelectors, [
    { InsightType: "ApiCallRateInsight" },
    { InsightType: "ApiErrorRateInsight", EventCategories: ["Management"] },
  ]);
  for (let i = 0; i < 3; i++) await iam.send(new CreateUserCommand({ UserName: unique("ins") }));
  await ct.send(new StopLoggingCommand({ Name })); // the detector counts on the flush
  const metric = await ct.send(
    new ListInsightsMetricDataCommand({
      TrailName: Name,
      EventSource: "iam.amazonaws.com",
      EventName: "CreateUser",
      InsightType: "ApiCallRateInsight",
      Period: 60,
      StartTime: new Date(Date.now() - 3_600_000),
    }),
  );
  assert.equal(metric.TrailARN, TrailARN);
  assert.equal(metric.Values.reduce((a, b) => a + b, 0), 3);
  assert.ok(metric.Timestamps.every((t) => t instanceof Date));
  // Too little history for a baseline: nothing is unusual yet.
  const data = await ct.send(new ListInsightsDataCommand({ InsightSource: TrailARN, DataType: "InsightsEvents" }));
  assert.deepEqual(data.Events, []);
  await ct.send(new DeleteTrailCommand({ Name }));
});

test("RegisterOrganizationDelegatedAdmin outside an organization is OrganizationsNotInUseException", async () => {
  await assert.rejects(ct.send(new RegisterOrganizationDelegatedAdminCommand({ MemberAccountId: "210987654321" })), (e) => {
    assert.ok(e instanceof OrganizationsNotInUseException, e.constructor.name);
    return true;
  });
});
