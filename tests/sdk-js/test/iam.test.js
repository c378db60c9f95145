// IAM through @aws-sdk/client-iam (awsQuery: form-encoded requests, XML responses).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  AttachRolePolicyCommand,
  CreateAccessKeyCommand,
  CreatePolicyCommand,
  CreateRoleCommand,
  CreateServiceSpecificCredentialCommand,
  CreateUserCommand,
  DeleteServiceSpecificCredentialCommand,
  GenerateServiceLastAccessedDetailsCommand,
  GetServiceLastAccessedDetailsCommand,
  GetServiceLastAccessedDetailsWithEntitiesCommand,
  ListServiceSpecificCredentialsCommand,
  PutUserPolicyCommand,
  ResetServiceSpecificCredentialCommand,
  SetSecurityTokenServicePreferencesCommand,
  UpdateServiceSpecificCredentialCommand,
  DeleteAccessKeyCommand,
  DeletePolicyCommand,
  DeleteRoleCommand,
  DeleteUserCommand,
  DetachRolePolicyCommand,
  EntityAlreadyExistsException,
  GetAccessKeyLastUsedCommand,
  GetAccountSummaryCommand,
  GetPolicyCommand,
  GetPolicyVersionCommand,
  GetRoleCommand,
  GetUserCommand,
  IAMClient,
  IAMServiceException,
  ListAccessKeysCommand,
  ListAttachedRolePoliciesCommand,
  ListUsersCommand,
  ListUserTagsCommand,
  MalformedPolicyDocumentException,
  NoSuchEntityException,
  TagUserCommand,
  UntagUserCommand,
  UpdateAccessKeyCommand,
  ListRoleTagsCommand,
  paginateListPolicies,
  paginateListRoles,
  paginateListUsers,
} from "@aws-sdk/client-iam";
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";

import { UNICODE, implicitDeny, policy, startServer, unique } from "../harness.js";

// IAM tag values allow letters, numbers, spaces and _.:/=+-@ in any script (tagValueType).
const TAG_TEXT = "naïve 日本語 Ünïcödé";

let srv, iam;
before(async () => {
  srv = await startServer();
  iam = srv.client(IAMClient);
});
after(async () => {
  await srv?.stop();
});

const uniquePath = () => `/sdkjs/${unique("p")}/`;

test("users: create, get, list, tag, untag, delete", async () => {
  const name = unique("user");
  const path = uniquePath();
  const { User } = await iam.send(
    new CreateUserCommand({ UserName: name, Path: path, Tags: [{ Key: "team", Value: TAG_TEXT }] }),
  );
  assert.equal(User.UserName, name);
  assert.equal(User.Path, path);
  assert.equal(User.Arn, `arn:aws:iam::${srv.accountId}:user${path}${name}`);
  assert.match(User.UserId, /^AIDA[A-Z0-9]{17}$/);
  assert.ok(User.CreateDate instanceof Date, "CreateDate is parsed as a Date");
  assert.ok(Math.abs(Date.now() - User.CreateDate.getTime()) < 300_000);

  const got = (await iam.send(new GetUserCommand({ UserName: name }))).User;
  assert.equal(got.Arn, User.Arn);
  assert.equal(got.UserId, User.UserId);
  assert.deepEqual(got.Tags, [{ Key: "team", Value: TAG_TEXT }]);

  const listed = (await iam.send(new ListUsersCommand({ PathPrefix: path }))).Users;
  assert.deepEqual(
    listed.map((u) => u.UserName),
    [name],
  );

  await iam.send(new TagUserCommand({ UserName: name, Tags: [{ Key: "ключ", Value: "значение 値" }] }));
  const tags = (await iam.send(new ListUserTagsCommand({ UserName: name }))).Tags;
  assert.deepEqual(
    tags.toSorted((a, b) => a.Key.localeCompare(b.Key)),
    [
      { Key: "team", Value: TAG_TEXT },
      { Key: "ключ", Value: "значение 値" },
    ].toSorted((a, b) => a.Key.localeCompare(b.Key)),
  );
  await iam.send(new UntagUserCommand({ UserName: name, TagKeys: ["team"] }));
  assert.deepEqual((await iam.send(new ListUserTagsCommand({ UserName: name }))).Tags, [
    { Key: "ключ", Value: "значение 値" },
  ]);

  await assert.rejects(iam.send(new CreateUserCommand({ UserName: name })), (e) => {
    assert.ok(e instanceof EntityAlreadyExistsException, `${e.name}: ${e.message}`);
    assert.equal(e.$metadata.httpStatusCode, 409);
    assert.equal(e.message, `User with name ${name} already exists.`);
    return true;
  });

  await iam.send(new DeleteUserCommand({ UserName: name }));
  assert.deepEqual((await iam.send(new ListUsersCommand({ PathPrefix: path }))).Users, []);
});

test("a missing user is NoSuchEntityException", async () => {
  const name = unique("missing");
  for (const cmd of [new GetUserCommand({ UserName: name }), new DeleteUserCommand({ UserName: name })]) {
    await assert.rejects(iam.send(cmd), (e) => {
      assert.ok(e instanceof NoSuchEntityException, `${e.name}: ${e.message}`);
      assert.ok(e instanceof IAMServiceException);
      assert.equal(e.name, "NoSuchEntityException");
      assert.equal(e.$fault, "client");
      assert.equal(e.$metadata.httpStatusCode, 404);
      assert.match(e.$metadata.requestId, /\S/);
      assert.equal(e.message, `The user with name ${name} cannot be found.`);
      return true;
    });
  }
});

test("roles with a trust policy and an attached managed policy", async () => {
  const roleName = unique("role");
  const path = uniquePath();
  const trust = {
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" }],
  };
  // Role descriptions are Latin-1 only (roleDescriptionType).
  const roleDescription = "rôle für café - ñ ¿¡";
  const created = (
    await iam.send(
      new CreateRoleCommand({
        RoleName: roleName,
        Path: path,
        AssumeRolePolicyDocument: JSON.stringify(trust),
        Description: roleDescription,
        MaxSessionDuration: 7200,
      }),
    )
  ).Role;
  assert.equal(created.Arn, `arn:aws:iam::${srv.accountId}:role${path}${roleName}`);
  assert.match(created.RoleId, /^AROA[A-Z0-9]{17}$/);

  const role = (await iam.send(new GetRoleCommand({ RoleName: roleName }))).Role;
  assert.equal(role.Description, roleDescription);
  assert.equal(role.MaxSessionDuration, 7200);
  // IAM returns policy documents URL-encoded (RFC 3986), as AWS does; the SDK leaves them so.
  assert.deepEqual(JSON.parse(decodeURIComponent(role.AssumeRolePolicyDocument)), trust);

  const policyName = unique("policy");
  const document = { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "s3:GetObject", Resource: "*" }] };
  const created2 = (
    await iam.send(
      new CreatePolicyCommand({
        PolicyName: policyName,
        Path: path,
        PolicyDocument: JSON.stringify(document),
        Description: `policy ${UNICODE}`,
      }),
    )
  ).Policy;
  const policyArn = created2.Arn;
  assert.equal(policyArn, `arn:aws:iam::${srv.accountId}:policy${path}${policyName}`);
  assert.equal(created2.DefaultVersionId, "v1");
  const got = (await iam.send(new GetPolicyCommand({ PolicyArn: policyArn }))).Policy;
  assert.equal(got.Description, `policy ${UNICODE}`);
  const version = (await iam.send(new GetPolicyVersionCommand({ PolicyArn: policyArn, VersionId: "v1" })))
    .PolicyVersion;
  assert.equal(version.IsDefaultVersion, true);
  assert.deepEqual(JSON.parse(decodeURIComponent(version.Document)), document);

  await iam.send(new AttachRolePolicyCommand({ RoleName: roleName, PolicyArn: policyArn }));
  await iam.send(
    new AttachRolePolicyCommand({ RoleName: roleName, PolicyArn: "arn:aws:iam::aws:policy/ReadOnlyAccess" }),
  );
  const attached = (await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: roleName }))).AttachedPolicies;
  assert.deepEqual(
    attached.map((p) => p.PolicyArn).sort(),
    ["arn:aws:iam::aws:policy/ReadOnlyAccess", policyArn].sort(),
  );
  assert.equal((await iam.send(new GetPolicyCommand({ PolicyArn: policyArn }))).Policy.AttachmentCount, 1);

  // A role with attached policies cannot be deleted.
  await assert.rejects(iam.send(new DeleteRoleCommand({ RoleName: roleName })), { name: "DeleteConflictException" });
  await iam.send(new DetachRolePolicyCommand({ RoleName: roleName, PolicyArn: policyArn }));
  await iam.send(
    new DetachRolePolicyCommand({ RoleName: roleName, PolicyArn: "arn:aws:iam::aws:policy/ReadOnlyAccess" }),
  );
  await iam.send(new DeleteRoleCommand({ RoleName: roleName }));
  await iam.send(new DeletePolicyCommand({ PolicyArn: policyArn }));
  await assert.rejects(iam.send(new GetRoleCommand({ RoleName: roleName })), NoSuchEntityException);
  await assert.rejects(iam.send(new GetPolicyCommand({ PolicyArn: policyArn })), NoSuchEntityException);
});

test("a malformed trust policy is MalformedPolicyDocumentException", async () => {
  await assert.rejects(
    iam.send(new CreateRoleCommand({ RoleName: unique("role"), AssumeRolePolicyDocument: "{not json" })),
    (e) => {
      assert.ok(e instanceof MalformedPolicyDocumentException, `${e.name}: ${e.message}`);
      assert.equal(e.$metadata.httpStatusCode, 400);
      return true;
    },
  );
});

test("access keys: create, list, deactivate, last used, delete; the key signs calls", async () => {
  const name = unique("user");
  await iam.send(new CreateUserCommand({ UserName: name }));
  const key = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey;
  assert.equal(key.UserName, name);
  assert.equal(key.Status, "Active");
  assert.match(key.AccessKeyId, /^AKIA[A-Z0-9]{16}$/);
  assert.equal(key.SecretAccessKey.length, 40);

  const creds = { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey };
  const me = await srv.client(STSClient, creds).send(new GetCallerIdentityCommand({}));
  assert.equal(me.Arn, `arn:aws:iam::${srv.accountId}:user/${name}`);

  const listed = (await iam.send(new ListAccessKeysCommand({ UserName: name }))).AccessKeyMetadata;
  assert.deepEqual(
    listed.map((k) => [k.AccessKeyId, k.Status]),
    [[key.AccessKeyId, "Active"]],
  );
  const used = await iam.send(new GetAccessKeyLastUsedCommand({ AccessKeyId: key.AccessKeyId }));
  assert.equal(used.UserName, name);
  assert.equal(used.AccessKeyLastUsed.ServiceName, "sts");
  assert.ok(used.AccessKeyLastUsed.LastUsedDate instanceof Date);

  await iam.send(new UpdateAccessKeyCommand({ UserName: name, AccessKeyId: key.AccessKeyId, Status: "Inactive" }));
  assert.equal((await iam.send(new ListAccessKeysCommand({ UserName: name }))).AccessKeyMetadata[0].Status, "Inactive");
  await assert.rejects(srv.client(STSClient, creds).send(new GetCallerIdentityCommand({})), (e) => {
    assert.equal(e.name, "InvalidClientTokenId");
    assert.equal(e.$metadata.httpStatusCode, 403);
    return true;
  });

  await iam.send(new DeleteAccessKeyCommand({ UserName: name, AccessKeyId: key.AccessKeyId }));
  assert.deepEqual((await iam.send(new ListAccessKeysCommand({ UserName: name }))).AccessKeyMetadata, []);
  await iam.send(new DeleteUserCommand({ UserName: name }));
});

test("paginateListUsers follows Marker across pages", async () => {
  const path = uniquePath();
  const names = [];
  for (let i = 0; i < 7; i++) {
    const name = `${unique("page")}-${i}`;
    await iam.send(new CreateUserCommand({ UserName: name, Path: path }));
    names.push(name);
  }
  const pages = [];
  for await (const page of paginateListUsers({ client: iam, pageSize: 3 }, { PathPrefix: path })) {
    pages.push(page.Users.map((u) => u.UserName));
  }
  assert.deepEqual(
    pages.map((p) => p.length),
    [3, 3, 1],
  );
  assert.deepEqual(pages.flat().sort(), names.sort());
});

test("paginateListPolicies pages through the AWS managed policies", async () => {
  // The whole catalogue (over a thousand policies) in pages of the largest size, then in pages of 100.
  const all = [];
  for await (const page of paginateListPolicies({ client: iam, pageSize: 1000 }, { Scope: "AWS" })) {
    all.push(...page.Policies.map((p) => p.Arn));
  }
  assert.ok(all.includes("arn:aws:iam::aws:policy/AdministratorAccess"));
  assert.ok(all.length > 1000, `${all.length} AWS managed policies`);
  const pages = [];
  for await (const page of paginateListPolicies({ client: iam, pageSize: 100 }, { Scope: "AWS" })) {
    assert.ok(page.Policies.length <= 100);
    pages.push(page.Policies.map((p) => p.Arn));
  }
  assert.equal(pages.length, Math.ceil(all.length / 100));
  assert.ok(pages.length > 1);
  assert.deepEqual(pages.flat(), all, "the pages are the unpaged list, in order, without overlap");
});

test("paginateListRoles across pages; role tags round-trip non-ASCII text", async () => {
  const path = uniquePath();
  const trust = policy({ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" });
  const names = [];
  for (let i = 0; i < 5; i++) {
    const name = `${unique("role")}-${i}`;
    await iam.send(
      new CreateRoleCommand({
        RoleName: name,
        Path: path,
        AssumeRolePolicyDocument: trust,
        Tags: [{ Key: "名前", Value: `${TAG_TEXT} ${i}` }],
      }),
    );
    names.push(name);
  }
  const pages = [];
  for await (const page of paginateListRoles({ client: iam, pageSize: 2 }, { PathPrefix: path })) {
    pages.push(page.Roles.map((r) => r.RoleName));
  }
  assert.deepEqual(
    pages.map((p) => p.length),
    [2, 2, 1],
  );
  assert.deepEqual(pages.flat().sort(), names.toSorted());
  const tags = (await iam.send(new ListRoleTagsCommand({ RoleName: names[3] }))).Tags;
  assert.deepEqual(tags, [{ Key: "名前", Value: `${TAG_TEXT} 3` }]);
});

test("a user without policies gets AccessDenied with AWS's message", async () => {
  const name = unique("nobody");
  const user = (await iam.send(new CreateUserCommand({ UserName: name }))).User;
  const key = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey;
  const asUser = srv.client(IAMClient, { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey });

  await assert.rejects(asUser.send(new ListUsersCommand({})), (e) => {
    // client-iam models no AccessDenied shape: the SDK raises its service exception named after the code.
    assert.ok(e instanceof IAMServiceException, `${e.constructor.name}: ${e.message}`);
    assert.equal(e.name, "AccessDenied");
    assert.equal(e.$fault, "client");
    assert.equal(e.$metadata.httpStatusCode, 403);
    assert.equal(e.message, implicitDeny(user.Arn, "iam:ListUsers", `arn:aws:iam::${srv.accountId}:user/`));
    return true;
  });
  await assert.rejects(asUser.send(new GetUserCommand({ UserName: "someone-else" })), (e) => {
    assert.equal(e.name, "AccessDenied");
    assert.equal(
      e.message,
      implicitDeny(user.Arn, "iam:GetUser", `arn:aws:iam::${srv.accountId}:user/someone-else`),
    );
    return true;
  });
});

test("service-specific credentials: create, list, reset, deactivate, delete; the quota and unknown services", async () => {
  const name = unique("user");
  await iam.send(new CreateUserCommand({ UserName: name }));
  const c = (
    await iam.send(new CreateServiceSpecificCredentialCommand({ UserName: name, ServiceName: "codecommit.amazonaws.com" }))
  ).ServiceSpecificCredential;
  assert.match(c.ServiceSpecificCredentialId, /^ACCA[A-Z2-7]{17}$/);
  assert.equal(c.ServiceUserName, `${name}-at-${srv.accountId}`);
  assert.equal(c.ServicePassword.length, 44);
  assert.ok(c.CreateDate instanceof Date);
  const listed = (await iam.send(new ListServiceSpecificCredentialsCommand({ UserName: name }))).ServiceSpecificCredentials;
  assert.deepEqual(
    listed.map((m) => [m.ServiceSpecificCredentialId, m.Status, m.ServicePassword]),
    [[c.ServiceSpecificCredentialId, "Active", undefined]],
  );
  const r = (
    await iam.send(
      new ResetServiceSpecificCredentialCommand({ UserName: name, ServiceSpecificCredentialId: c.ServiceSpecificCredentialId }),
    )
  ).ServiceSpecificCredential;
  assert.notEqual(r.ServicePassword, c.ServicePassword);
  await iam.send(
    new UpdateServiceSpecificCredentialCommand({
      UserName: name,
      ServiceSpecificCredentialId: c.ServiceSpecificCredentialId,
      Status: "Inactive",
    }),
  );
  const key = (
    await iam.send(
      new CreateServiceSpecificCredentialCommand({ UserName: name, ServiceName: "bedrock.amazonaws.com", CredentialAgeDays: 7 }),
    )
  ).ServiceSpecificCredential;
  assert.equal(key.ServiceCredentialSecret.length, 44);
  assert.equal((key.ExpirationDate - key.CreateDate) / 86400000, 7);
  await iam.send(new CreateServiceSpecificCredentialCommand({ UserName: name, ServiceName: "codecommit.amazonaws.com" }));
  await assert.rejects(
    iam.send(new CreateServiceSpecificCredentialCommand({ UserName: name, ServiceName: "codecommit.amazonaws.com" })),
    (e) => {
      assert.equal(e.name, "LimitExceededException");
      assert.equal(e.$metadata.httpStatusCode, 409);
      return true;
    },
  );
  await assert.rejects(
    iam.send(new CreateServiceSpecificCredentialCommand({ UserName: name, ServiceName: "s3.amazonaws.com" })),
    (e) => {
      // AWS answers NoSuchEntity here, not the modelled NotSupportedService (recorded responses).
      assert.equal(e.name, "NoSuchEntityException");
      assert.equal(e.message, "No such service s3.amazonaws.com is supported for Service Specific Credentials");
      assert.equal(e.$metadata.httpStatusCode, 404);
      return true;
    },
  );
  await assert.rejects(iam.send(new DeleteUserCommand({ UserName: name })), (e) => e.name === "DeleteConflictException");
  for (const m of (await iam.send(new ListServiceSpecificCredentialsCommand({ UserName: name }))).ServiceSpecificCredentials) {
    await iam.send(new DeleteServiceSpecificCredentialCommand({ UserName: name, ServiceSpecificCredentialId: m.ServiceSpecificCredentialId }));
  }
  await assert.rejects(
    iam.send(new DeleteServiceSpecificCredentialCommand({ UserName: name, ServiceSpecificCredentialId: c.ServiceSpecificCredentialId })),
    (e) => e instanceof NoSuchEntityException,
  );
  await iam.send(new DeleteUserCommand({ UserName: name }));
});

test("service last accessed: a user's report from the recorded calls, and its entities", async () => {
  const name = unique("user");
  const user = (await iam.send(new CreateUserCommand({ UserName: name }))).User;
  await iam.send(
    new PutUserPolicyCommand({
      UserName: name,
      PolicyName: "p",
      PolicyDocument: policy({ Effect: "Allow", Action: ["iam:List*", "s3:GetObject"], Resource: "*" }),
    }),
  );
  const key = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey;
  const asUser = srv.client(IAMClient, { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey });
  await asUser.send(new ListUsersCommand({}));
  const { JobId } = await iam.send(
    new GenerateServiceLastAccessedDetailsCommand({ Arn: user.Arn, Granularity: "ACTION_LEVEL" }),
  );
  assert.equal(JobId.length, 36);
  // A job: poll until it is no longer IN_PROGRESS (bounded).
  let report;
  for (let i = 0; i < 100; i++) {
    report = await iam.send(new GetServiceLastAccessedDetailsCommand({ JobId }));
    if (report.JobStatus !== "IN_PROGRESS") break;
  }
  assert.equal(report.JobStatus, "COMPLETED");
  assert.equal(report.JobType, "ACTION_LEVEL");
  assert.deepEqual(
    report.ServicesLastAccessed.map((s) => [s.ServiceNamespace, s.TotalAuthenticatedEntities]),
    [
      ["iam", 1],
      ["s3", 0],
    ],
  );
  const iamSvc = report.ServicesLastAccessed[0];
  assert.equal(iamSvc.LastAuthenticatedEntity, user.Arn);
  assert.ok(iamSvc.LastAuthenticated instanceof Date);
  assert.deepEqual(
    iamSvc.TrackedActionsLastAccessed.map((a) => a.ActionName),
    ["ListUsers"],
  );
  const ents = await iam.send(new GetServiceLastAccessedDetailsWithEntitiesCommand({ JobId, ServiceNamespace: "iam" }));
  assert.deepEqual(
    ents.EntityDetailsList.map((e) => [e.EntityInfo.Arn, e.EntityInfo.Type, e.LastAuthenticated instanceof Date]),
    [[user.Arn, "USER", true]],
  );
  await assert.rejects(
    iam.send(new GetServiceLastAccessedDetailsCommand({ JobId: "00000000-0000-0000-0000-000000000000" })),
    (e) => e instanceof NoSuchEntityException,
  );
});

test("SetSecurityTokenServicePreferences shows in GetAccountSummary", async () => {
  await iam.send(new SetSecurityTokenServicePreferencesCommand({ GlobalEndpointTokenVersion: "v2Token" }));
  assert.equal((await iam.send(new GetAccountSummaryCommand({}))).SummaryMap.GlobalEndpointTokenVersion, 2);
  await iam.send(new SetSecurityTokenServicePreferencesCommand({ GlobalEndpointTokenVersion: "v1Token" }));
  assert.equal((await iam.send(new GetAccountSummaryCommand({}))).SummaryMap.GlobalEndpointTokenVersion, 1);
});

