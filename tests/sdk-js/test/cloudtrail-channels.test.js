// CloudTrail Lake integrations through @aws-sdk/client-cloudtrail: an event data store of
// ActivityAuditLog events, a channel into it, its resource policy; then cloudtrail-data's
// PutAuditEvents (restJson1, signed for `cloudtrail-data` with the SDK's own SigV4 signer:
// @aws-sdk/client-cloudtrail-data is not installable from the registry here) and a query that
// finds the events.

import assert from "node:assert/strict";
import { createHash, createHmac, randomUUID } from "node:crypto";
import { after, before, test } from "node:test";

import {
  ChannelNotFoundException,
  CloudTrailClient,
  CreateChannelCommand,
  CreateEventDataStoreCommand,
  DeleteChannelCommand,
  DeleteResourcePolicyCommand,
  DescribeQueryCommand,
  GetChannelCommand,
  GetQueryResultsCommand,
  GetResourcePolicyCommand,
  InvalidEventDataStoreCategoryException,
  PutResourcePolicyCommand,
  ResourcePolicyNotFoundException,
  ResourcePolicyNotValidException,
  StartQueryCommand,
  UpdateChannelCommand,
  paginateListChannels,
} from "@aws-sdk/client-cloudtrail";
import { SignatureV4 } from "@smithy/signature-v4";

import { REGION, UNICODE, startServer, unique } from "../harness.js";

let srv, ct;
before(async () => {
  srv = await startServer();
  ct = srv.client(CloudTrailClient);
});
after(async () => {
  await srv?.stop();
});

/** SHA-256 / HMAC-SHA-256 in the shape the Smithy signer takes. */
class Sha256 {
  constructor(secret) {
    this.h = secret ? createHmac("sha256", Buffer.from(secret)) : createHash("sha256");
  }
  update(data) {
    this.h.update(typeof data === "string" ? Buffer.from(data) : Buffer.from(data));
  }
  async digest() {
    return new Uint8Array(this.h.digest());
  }
}

/** POST /PutAuditEvents signed for cloudtrail-data; returns [status, body]. */
async function putAuditEvents(channelArn, auditEvents) {
  const url = new URL(srv.endpoint);
  const body = JSON.stringify({ auditEvents });
  const signer = new SignatureV4({ service: "cloudtrail-data", region: REGION, credentials: srv.credentials, sha256: Sha256 });
  const signed = await signer.sign({
    method: "POST",
    protocol: "http:",
    hostname: url.hostname,
    port: Number(url.port),
    path: "/PutAuditEvents",
    query: { channelArn },
    headers: { host: url.host, "content-type": "application/json" },
    body,
  });
  const res = await fetch(`${srv.endpoint}/PutAuditEvents?channelArn=${encodeURIComponent(channelArn)}`, {
    method: "POST",
    headers: signed.headers,
    body,
  });
  return [res.status, await res.json()];
}

function auditEvent(eventName, extra = {}) {
  const eventData = JSON.stringify({
    version: "1.0",
    userIdentity: { type: "CustomUser", principalId: UNICODE },
    eventSource: "app.example",
    eventName,
    eventTime: "2024-06-01T12:00:00Z",
    UID: randomUUID(),
    recipientAccountId: srv.accountId,
    ...extra,
  });
  const eventDataChecksum = createHash("sha256").update(eventData).digest("base64");
  return { id: randomUUID(), eventData, eventDataChecksum };
}

async function waitQuery(QueryId) {
  const end = Date.now() + 60_000;
  for (;;) {
    const d = await ct.send(new DescribeQueryCommand({ QueryId }));
    if (["FINISHED", "FAILED", "CANCELLED", "TIMED_OUT"].includes(d.QueryStatus) || Date.now() > end) return d;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("channels, resource policy, PutAuditEvents and a query of the events", async () => {
  const store = await ct.send(
    new CreateEventDataStoreCommand({
      Name: unique("ext"),
      TerminationProtectionEnabled: false,
      AdvancedEventSelectors: [{ FieldSelectors: [{ Field: "eventCategory", Equals: ["ActivityAuditLog"] }] }],
    }),
  );
  const mgmt = await ct.send(new CreateEventDataStoreCommand({ Name: unique("mgmt"), TerminationProtectionEnabled: false }));
  await assert.rejects(
    ct.send(
      new CreateChannelCommand({
        Name: unique("c"),
        Source: "Custom",
        Destinations: [{ Type: "EVENT_DATA_STORE", Location: mgmt.EventDataStoreArn }],
      }),
    ),
    InvalidEventDataStoreCategoryException,
  );

  const channel = await ct.send(
    new CreateChannelCommand({
      Name: unique("chan"),
      Source: "Custom",
      Destinations: [{ Type: "EVENT_DATA_STORE", Location: store.EventDataStoreArn }],
      Tags: [{ Key: "k", Value: UNICODE }],
    }),
  );
  assert.match(channel.ChannelArn, new RegExp(`^arn:aws:cloudtrail:${REGION}:${srv.accountId}:channel/`));
  assert.deepEqual(channel.Tags, [{ Key: "k", Value: UNICODE }]);

  const listed = [];
  for await (const page of paginateListChannels({ client: ct, pageSize: 1 }, {})) listed.push(...page.Channels);
  assert.ok(listed.some((c) => c.ChannelArn === channel.ChannelArn));

  // Resource policy on the channel.
  await assert.rejects(ct.send(new GetResourcePolicyCommand({ ResourceArn: channel.ChannelArn })), ResourcePolicyNotFoundException);
  const doc = JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Allow",
        Principal: { AWS: "arn:aws:iam::123456789012:root" },
        Action: "cloudtrail-data:PutAuditEvents",
        Resource: channel.ChannelArn,
      },
    ],
  });
  await ct.send(new PutResourcePolicyCommand({ ResourceArn: channel.ChannelArn, ResourcePolicy: doc }));
  const got = await ct.send(new GetResourcePolicyCommand({ ResourceArn: channel.ChannelArn }));
  assert.deepEqual(JSON.parse(got.ResourcePolicy), JSON.parse(doc));
  await assert.rejects(
    ct.send(new PutResourcePolicyCommand({ ResourceArn: channel.ChannelArn, ResourcePolicy: doc.replace("cloudtrail-data:PutAuditEvents", "s3:GetObject") })),
    ResourcePolicyNotValidException,
  );
  await ct.send(new DeleteResourcePolicyCommand({ ResourceArn: channel.ChannelArn }));

  // PutAuditEvents: per-event answers.
  const ok = auditEvent("Approve");
  const badSum = { ...auditEvent("Reject"), eventDataChecksum: "AAAA" };
  const [status, out] = await putAuditEvents(channel.ChannelArn, [ok, badSum]);
  assert.equal(status, 200, JSON.stringify(out));
  assert.deepEqual(out.successful.map((s) => s.id), [ok.id]);
  assert.deepEqual(out.failed.map((f) => [f.id, f.errorCode]), [[badSum.id, "InvalidChecksum"]]);

  const info = await ct.send(new GetChannelCommand({ Channel: channel.ChannelArn }));
  assert.equal(info.IngestionStatus.LatestIngestionSuccessEventID, out.successful[0].eventID);
  assert.ok(info.IngestionStatus.LatestIngestionSuccessTime instanceof Date);

  const id = store.EventDataStoreArn.split("/").pop();
  const { QueryId } = await ct.send(
    new StartQueryCommand({ QueryStatement: `SELECT eventData.eventName, eventData.userIdentity.principalId FROM ${id}` }),
  );
  const d = await waitQuery(QueryId);
  assert.equal(d.QueryStatus, "FINISHED", JSON.stringify(d));
  const rows = (await ct.send(new GetQueryResultsCommand({ QueryId }))).QueryResultRows;
  assert.deepEqual(rows, [[{ eventName: "Approve" }, { principalId: UNICODE }]]);

  // Update and delete; a deleted channel is not found.
  const renamed = unique("renamed");
  assert.equal((await ct.send(new UpdateChannelCommand({ Channel: channel.ChannelArn, Name: renamed }))).Name, renamed);
  await ct.send(new DeleteChannelCommand({ Channel: channel.ChannelArn }));
  await assert.rejects(ct.send(new GetChannelCommand({ Channel: channel.ChannelArn })), ChannelNotFoundException);
  const [gone, err] = await putAuditEvents(channel.ChannelArn, [auditEvent("Late")]);
  assert.equal(gone, 400);
  assert.match(JSON.stringify(err), /ChannelNotFound/);
});
