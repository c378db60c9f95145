// Secrets Manager through @aws-sdk/client-secrets-manager (awsJson1_1).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { CreateAccessKeyCommand, CreateUserCommand, IAMClient } from "@aws-sdk/client-iam";
import {
  BatchGetSecretValueCommand,
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetRandomPasswordCommand,
  GetSecretValueCommand,
  InvalidRequestException,
  ListResourcePoliciesCommand,
  ListSecretsCommand,
  ListSecretVersionIdsCommand,
  PutResourcePolicyCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  RestoreSecretCommand,
  SecretsManagerClient,
  SecretsManagerServiceException,
  StopReplicationToReplicaCommand,
  TagResourceCommand,
  UpdateSecretCommand,
  paginateListSecrets,
} from "@aws-sdk/client-secrets-manager";

import { ALL_BYTES, UNICODE, implicitDeny, startServer, unique } from "../harness.js";

let srv, sm;
before(async () => {
  srv = await startServer();
  sm = srv.client(SecretsManagerClient);
});
after(async () => {
  await srv?.stop();
});

const ARN_RE = (accountId, name) =>
  new RegExp(`^arn:aws:secretsmanager:us-east-1:${accountId}:secret:${name}-[A-Za-z0-9]{6}$`);

test("create, get, put, describe, update, delete a secret; non-ASCII text exact", async () => {
  const name = unique("app/db");
  const secretString = JSON.stringify({ user: "admin", password: `p@ss ${UNICODE}` });
  const created = await sm.send(
    new CreateSecretCommand({
      Name: name,
      SecretString: secretString,
      Description: `database ${UNICODE}`,
      Tags: [{ Key: "env", Value: UNICODE }],
    }),
  );
  assert.equal(created.Name, name);
  assert.match(created.ARN, ARN_RE(srv.accountId, name));
  const v1 = created.VersionId;
  assert.match(v1, /^[0-9a-f-]{36}$/);

  const got = await sm.send(new GetSecretValueCommand({ SecretId: name }));
  assert.equal(got.SecretString, secretString);
  assert.equal(JSON.parse(got.SecretString).password, `p@ss ${UNICODE}`);
  assert.equal(got.SecretBinary, undefined);
  assert.equal(got.ARN, created.ARN);
  assert.equal(got.VersionId, v1);
  assert.deepEqual(got.VersionStages, ["AWSCURRENT"]);
  assert.ok(got.CreatedDate instanceof Date);

  // A new version with a binary value; the first one becomes AWSPREVIOUS.
  const put = await sm.send(new PutSecretValueCommand({ SecretId: created.ARN, SecretBinary: ALL_BYTES }));
  assert.deepEqual(put.VersionStages, ["AWSCURRENT"]);
  const bin = await sm.send(new GetSecretValueCommand({ SecretId: name }));
  assert.ok(bin.SecretBinary instanceof Uint8Array);
  assert.deepEqual(Buffer.from(bin.SecretBinary), Buffer.from(ALL_BYTES));
  assert.equal(bin.SecretString, undefined);
  assert.equal(bin.VersionId, put.VersionId);
  const prev = await sm.send(new GetSecretValueCommand({ SecretId: name, VersionStage: "AWSPREVIOUS" }));
  assert.equal(prev.SecretString, secretString);
  assert.equal(prev.VersionId, v1);

  const described = await sm.send(new DescribeSecretCommand({ SecretId: name }));
  assert.equal(described.Description, `database ${UNICODE}`);
  assert.deepEqual(described.Tags, [{ Key: "env", Value: UNICODE }]);
  assert.deepEqual(described.VersionIdsToStages, { [v1]: ["AWSPREVIOUS"], [put.VersionId]: ["AWSCURRENT"] });
  assert.ok(described.LastChangedDate instanceof Date);

  const versions = (await sm.send(new ListSecretVersionIdsCommand({ SecretId: name }))).Versions;
  assert.deepEqual(versions.map((v) => v.VersionId).sort(), [v1, put.VersionId].sort());

  await sm.send(new UpdateSecretCommand({ SecretId: name, Description: "✓ updated", SecretString: "plain ✓" }));
  assert.equal((await sm.send(new GetSecretValueCommand({ SecretId: name }))).SecretString, "plain ✓");
  await sm.send(new TagResourceCommand({ SecretId: name, Tags: [{ Key: "ключ", Value: "値" }] }));
  const after = await sm.send(new DescribeSecretCommand({ SecretId: name }));
  assert.equal(after.Description, "✓ updated");
  assert.deepEqual(
    after.Tags.toSorted((a, b) => (a.Key < b.Key ? -1 : 1)),
    [
      { Key: "env", Value: UNICODE },
      { Key: "ключ", Value: "値" },
    ],
  );

  // Scheduled deletion: the value is gone, the secret can be restored.
  const del = await sm.send(new DeleteSecretCommand({ SecretId: name, RecoveryWindowInDays: 7 }));
  assert.equal(del.ARN, created.ARN);
  assert.ok(del.DeletionDate instanceof Date);
  const days = (del.DeletionDate.getTime() - Date.now()) / 86_400_000;
  assert.ok(days > 6.9 && days <= 7.01, `${days} days`);
  await assert.rejects(sm.send(new GetSecretValueCommand({ SecretId: name })), (e) => {
    assert.ok(e instanceof InvalidRequestException, `${e.name}: ${e.message}`);
    return true;
  });
  await sm.send(new RestoreSecretCommand({ SecretId: name }));
  assert.equal((await sm.send(new GetSecretValueCommand({ SecretId: name }))).SecretString, "plain ✓");

  await sm.send(new DeleteSecretCommand({ SecretId: name, ForceDeleteWithoutRecovery: true }));
  await assert.rejects(sm.send(new DescribeSecretCommand({ SecretId: name })), ResourceNotFoundException);
});

test("a secret created with SecretBinary returns the same bytes", async () => {
  const name = unique("bin");
  const bytes = Uint8Array.from([0, 255, 0xc3, 0x28, 10, 13, 0]);
  await sm.send(new CreateSecretCommand({ Name: name, SecretBinary: bytes }));
  const got = await sm.send(new GetSecretValueCommand({ SecretId: name }));
  assert.deepEqual([...got.SecretBinary], [...bytes]);
  await assert.rejects(sm.send(new CreateSecretCommand({ Name: name, SecretString: "x" })), (e) => {
    assert.ok(e instanceof ResourceExistsException, `${e.name}: ${e.message}`);
    assert.equal(e.message, `The operation failed because the secret ${name} already exists.`);
    return true;
  });
});

test("ListSecrets with a name filter, and paginateListSecrets across pages", async () => {
  const prefix = unique("list");
  const names = [];
  for (let i = 0; i < 5; i++) {
    const name = `${prefix}/s${i}`;
    await sm.send(new CreateSecretCommand({ Name: name, SecretString: `value ${i}` }));
    names.push(name);
  }
  const filtered = await sm.send(new ListSecretsCommand({ Filters: [{ Key: "name", Values: [prefix] }] }));
  assert.deepEqual(filtered.SecretList.map((s) => s.Name).sort(), names);

  const pages = [];
  for await (const page of paginateListSecrets(
    { client: sm, pageSize: 2 },
    { Filters: [{ Key: "name", Values: [prefix] }] },
  )) {
    pages.push(page.SecretList.map((s) => s.Name));
  }
  assert.deepEqual(
    pages.map((p) => p.length),
    [2, 2, 1],
  );
  assert.deepEqual(pages.flat().sort(), names);
});

test("a secret that does not exist is ResourceNotFoundException", async () => {
  const name = unique("missing");
  for (const cmd of [
    new GetSecretValueCommand({ SecretId: name }),
    new DescribeSecretCommand({ SecretId: name }),
    new PutSecretValueCommand({ SecretId: name, SecretString: "x" }),
  ]) {
    await assert.rejects(sm.send(cmd), (e) => {
      assert.ok(e instanceof ResourceNotFoundException, `${e.name}: ${e.message}`);
      assert.ok(e instanceof SecretsManagerServiceException);
      assert.equal(e.$metadata.httpStatusCode, 400);
      assert.equal(e.message, "Secrets Manager can't find the specified secret.");
      return true;
    });
  }
});

test("a user without policies gets AccessDeniedException with AWS's message", async () => {
  const name = unique("guarded");
  const { ARN } = await sm.send(new CreateSecretCommand({ Name: name, SecretString: "top secret" }));
  const iam = srv.client(IAMClient);
  const userName = unique("nobody");
  const { User } = await iam.send(new CreateUserCommand({ UserName: userName }));
  const { AccessKey } = await iam.send(new CreateAccessKeyCommand({ UserName: userName }));
  const asUser = srv.client(SecretsManagerClient, {
    accessKeyId: AccessKey.AccessKeyId,
    secretAccessKey: AccessKey.SecretAccessKey,
  });
  await assert.rejects(asUser.send(new GetSecretValueCommand({ SecretId: name })), (e) => {
    assert.ok(e instanceof SecretsManagerServiceException, `${e.constructor.name}: ${e.message}`);
    assert.equal(e.name, "AccessDeniedException");
    assert.equal(e.$metadata.httpStatusCode, 400);
    assert.equal(e.message, implicitDeny(User.Arn, "secretsmanager:GetSecretValue", ARN));
    return true;
  });
  await assert.rejects(asUser.send(new ListSecretsCommand({})), (e) => {
    assert.equal(e.name, "AccessDeniedException");
    assert.equal(e.message, implicitDeny(User.Arn, "secretsmanager:ListSecrets", "*"));
    return true;
  });
});

test("BatchGetSecretValue and GetRandomPassword", async () => {
  const a = unique("batch");
  const b = unique("batch");
  await sm.send(new CreateSecretCommand({ Name: a, SecretString: UNICODE }));
  await sm.send(new CreateSecretCommand({ Name: b, SecretBinary: ALL_BYTES }));
  const out = await sm.send(new BatchGetSecretValueCommand({ SecretIdList: [a, b] }));
  assert.deepEqual(out.Errors, []);
  const byName = Object.fromEntries(out.SecretValues.map((v) => [v.Name, v]));
  assert.equal(byName[a].SecretString, UNICODE);
  assert.deepEqual(Buffer.from(byName[b].SecretBinary), Buffer.from(ALL_BYTES));

  const pw = (await sm.send(new GetRandomPasswordCommand({ PasswordLength: 40, ExcludePunctuation: true })))
    .RandomPassword;
  assert.match(pw, /^[A-Za-z0-9]{40}$/);
});

test("secrets survive a restart of the durable server", async () => {
  const name = unique("durable");
  await sm.send(new CreateSecretCommand({ Name: name, SecretBinary: ALL_BYTES, Description: UNICODE }));
  await srv.restart();
  sm = srv.client(SecretsManagerClient);
  const got = await sm.send(new GetSecretValueCommand({ SecretId: name }));
  assert.deepEqual(Buffer.from(got.SecretBinary), Buffer.from(ALL_BYTES));
  assert.equal((await sm.send(new DescribeSecretCommand({ SecretId: name }))).Description, UNICODE);
});

test("StopReplicationToReplica promotes a replica; ListResourcePolicies names the policy", async () => {
  const name = unique("promote");
  const created = await sm.send(
    new CreateSecretCommand({ Name: name, SecretString: `v1 ${UNICODE}`, AddReplicaRegions: [{ Region: "us-west-2" }] }),
  );
  const replicaArn = created.ARN.replace(":us-east-1:", ":us-west-2:");
  const west = new SecretsManagerClient({
    endpoint: srv.endpoint,
    region: "us-west-2",
    credentials: srv.credentials,
    maxAttempts: 1,
  });
  assert.equal((await west.send(new StopReplicationToReplicaCommand({ SecretId: replicaArn }))).ARN, replicaArn);
  const d = await west.send(new DescribeSecretCommand({ SecretId: name }));
  assert.equal(d.PrimaryRegion, undefined);
  assert.equal((await west.send(new GetSecretValueCommand({ SecretId: name }))).SecretString, `v1 ${UNICODE}`);
  assert.equal((await sm.send(new DescribeSecretCommand({ SecretId: name }))).ReplicationStatus, undefined);
  await assert.rejects(sm.send(new StopReplicationToReplicaCommand({ SecretId: name })), (e) => {
    assert.ok(e instanceof InvalidRequestException, e.name);
    return true;
  });

  assert.deepEqual((await sm.send(new ListResourcePoliciesCommand({ SecretId: name }))).ResourcePolicies, []);
  await sm.send(
    new PutResourcePolicyCommand({
      SecretId: name,
      ResourcePolicy: JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Allow",
            Principal: { AWS: `arn:aws:iam::${srv.accountId}:root` },
            Action: "secretsmanager:GetSecretValue",
            Resource: "*",
          },
        ],
      }),
    }),
  );
  assert.deepEqual((await sm.send(new ListResourcePoliciesCommand({ SecretId: name }))).ResourcePolicies, [
    { PolicyName: "default" },
  ]);
  await assert.rejects(sm.send(new ListResourcePoliciesCommand({ SecretId: unique("missing") })), (e) => {
    assert.ok(e instanceof ResourceNotFoundException, e.name);
    return true;
  });
  await sm.send(new DeleteSecretCommand({ SecretId: name, ForceDeleteWithoutRecovery: true }));
  await west.send(new DeleteSecretCommand({ SecretId: name, ForceDeleteWithoutRecovery: true }));
});

