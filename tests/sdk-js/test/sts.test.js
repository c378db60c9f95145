// STS through @aws-sdk/client-sts (awsQuery), and calling other services as the role session.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  AttachUserPolicyCommand,
  CreateAccessKeyCommand,
  CreateRoleCommand,
  CreateUserCommand,
  GetRoleCommand,
  IAMClient,
  ListUsersCommand,
  PutRolePolicyCommand,
} from "@aws-sdk/client-iam";
import {
  AssumeRoleCommand,
  GetCallerIdentityCommand,
  GetSessionTokenCommand,
  MalformedPolicyDocumentException,
  STSClient,
  STSServiceException,
} from "@aws-sdk/client-sts";

import { ADMIN_ARN, allow, implicitDeny, policy, startServer, unique } from "../harness.js";

let srv, iam, sts;
before(async () => {
  srv = await startServer();
  iam = srv.client(IAMClient);
  sts = srv.client(STSClient);
});
after(async () => {
  await srv?.stop();
});

async function makeUser(managed = []) {
  const name = unique("user");
  const user = (await iam.send(new CreateUserCommand({ UserName: name }))).User;
  for (const arn of managed) await iam.send(new AttachUserPolicyCommand({ UserName: name, PolicyArn: arn }));
  const key = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey;
  return { ...user, credentials: { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey } };
}

/** A role the account trusts, allowed only iam:GetRole. */
async function makeRole() {
  const name = unique("role");
  const trust = {
    Version: "2012-10-17",
    Statement: [
      { Effect: "Allow", Principal: { AWS: `arn:aws:iam::${srv.accountId}:root` }, Action: "sts:AssumeRole" },
    ],
  };
  const role = (await iam.send(new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: JSON.stringify(trust) })))
    .Role;
  await iam.send(
    new PutRolePolicyCommand({ RoleName: name, PolicyName: "get-role", PolicyDocument: policy(allow("iam:GetRole")) }),
  );
  return role;
}

test("GetCallerIdentity as the account root", async () => {
  const me = await sts.send(new GetCallerIdentityCommand({}));
  assert.equal(me.Account, srv.accountId);
  assert.equal(me.Arn, `arn:aws:iam::${srv.accountId}:root`);
  assert.equal(me.UserId, srv.accountId);
  assert.match(me.$metadata.requestId, /\S/);
});

test("AssumeRole, then call STS and IAM as the session", async () => {
  const admin = await makeUser([ADMIN_ARN]);
  const role = await makeRole();
  const out = await srv
    .client(STSClient, admin.credentials)
    .send(new AssumeRoleCommand({ RoleArn: role.Arn, RoleSessionName: "sdk-js", DurationSeconds: 900 }));
  const sessionArn = `arn:aws:sts::${srv.accountId}:assumed-role/${role.RoleName}/sdk-js`;
  assert.equal(out.AssumedRoleUser.Arn, sessionArn);
  assert.equal(out.AssumedRoleUser.AssumedRoleId, `${role.RoleId}:sdk-js`);
  const c = out.Credentials;
  assert.match(c.AccessKeyId, /^ASIA[A-Z0-9]{16}$/);
  assert.ok(c.SecretAccessKey && c.SessionToken);
  assert.ok(c.Expiration instanceof Date);
  const ttl = c.Expiration.getTime() - Date.now();
  assert.ok(ttl > 800_000 && ttl <= 905_000, `expires in ${ttl} ms`);

  const creds = { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken };
  const me = await srv.client(STSClient, creds).send(new GetCallerIdentityCommand({}));
  assert.equal(me.Arn, sessionArn);
  assert.equal(me.UserId, `${role.RoleId}:sdk-js`);
  assert.equal(me.Account, srv.accountId);

  const sessionIam = srv.client(IAMClient, creds);
  assert.equal((await sessionIam.send(new GetRoleCommand({ RoleName: role.RoleName }))).Role.Arn, role.Arn);
  await assert.rejects(sessionIam.send(new ListUsersCommand({})), (e) => {
    assert.equal(e.name, "AccessDenied");
    assert.equal(e.$metadata.httpStatusCode, 403);
    assert.equal(e.message, implicitDeny(sessionArn, "iam:ListUsers", `arn:aws:iam::${srv.accountId}:user/`));
    return true;
  });
});

test("GetSessionToken: temporary credentials of a user", async () => {
  const user = await makeUser();
  const c = (await srv.client(STSClient, user.credentials).send(new GetSessionTokenCommand({ DurationSeconds: 900 })))
    .Credentials;
  assert.match(c.AccessKeyId, /^ASIA/);
  const me = await srv
    .client(STSClient, { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken })
    .send(new GetCallerIdentityCommand({}));
  assert.equal(me.Arn, user.Arn);
  assert.equal(me.UserId, user.UserId);
});

test("a user without policies may not assume the role: AccessDenied", async () => {
  const user = await makeUser();
  const role = await makeRole();
  await assert.rejects(
    srv.client(STSClient, user.credentials).send(new AssumeRoleCommand({ RoleArn: role.Arn, RoleSessionName: "denied" })),
    (e) => {
      assert.ok(e instanceof STSServiceException, `${e.constructor.name}: ${e.message}`);
      assert.equal(e.name, "AccessDenied");
      assert.equal(e.$metadata.httpStatusCode, 403);
      assert.ok(
        e.message.startsWith(`User: ${user.Arn} is not authorized to perform: sts:AssumeRole on resource: ${role.Arn}`),
        e.message,
      );
      return true;
    },
  );
});

test("a malformed session policy is MalformedPolicyDocumentException", async () => {
  const admin = await makeUser([ADMIN_ARN]);
  const role = await makeRole();
  await assert.rejects(
    srv
      .client(STSClient, admin.credentials)
      .send(new AssumeRoleCommand({ RoleArn: role.Arn, RoleSessionName: "malformed", Policy: "{not json" })),
    (e) => {
      assert.ok(e instanceof MalformedPolicyDocumentException, `${e.name}: ${e.message}`);
      assert.equal(e.$metadata.httpStatusCode, 400);
      return true;
    },
  );
});

test("unknown credentials are InvalidClientTokenId", async () => {
  const client = srv.client(STSClient, { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "x".repeat(40) });
  await assert.rejects(client.send(new GetCallerIdentityCommand({})), (e) => {
    assert.equal(e.name, "InvalidClientTokenId");
    assert.equal(e.$metadata.httpStatusCode, 403);
    assert.equal(e.message, "The security token included in the request is invalid.");
    return true;
  });
});
