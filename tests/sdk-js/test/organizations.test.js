// AWS Organizations through @aws-sdk/client-organizations (awsJson1_1). The tests build one
// organization on this file's server and run in order (an account is in at most one organization).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  AttachUserPolicyCommand,
  CreateAccessKeyCommand,
  CreateUserCommand,
  GenerateOrganizationsAccessReportCommand,
  GetOrganizationsAccessReportCommand,
  IAMClient,
} from "@aws-sdk/client-iam";
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts";
import {
  AcceptHandshakeCommand,
  CreateOrganizationCommand as CreateOrgCommand,
  DescribeResponsibilityTransferCommand,
  InviteOrganizationToTransferResponsibilityCommand,
  ListInboundResponsibilityTransfersCommand,
  ListOutboundResponsibilityTransfersCommand,
  ResponsibilityTransferNotFoundException,
  TerminateResponsibilityTransferCommand,
  CancelHandshakeCommand,
  DeclineHandshakeCommand,
  DescribeEffectivePolicyCommand,
  DescribeHandshakeCommand,
  EnablePolicyTypeCommand,
  HandshakeAlreadyInStateException,
  HandshakeNotFoundException,
  InviteAccountToOrganizationCommand,
  ListHandshakesForAccountCommand,
  PutResourcePolicyCommand,
  DescribeResourcePolicyCommand,
  RemoveAccountFromOrganizationCommand,
  paginateListHandshakesForOrganization,
  AWSOrganizationsNotInUseException,
  AccessDeniedException,
  AccountNotFoundException,
  AlreadyInOrganizationException,
  AttachPolicyCommand,
  CreateAccountCommand,
  CreateOrganizationCommand,
  CreateOrganizationalUnitCommand,
  CreatePolicyCommand,
  DeletePolicyCommand,
  DescribeAccountCommand,
  DescribeOrganizationCommand,
  DescribePolicyCommand,
  DetachPolicyCommand,
  DuplicatePolicyAttachmentException,
  ListAccountsCommand,
  ListPoliciesForTargetCommand,
  ListRootsCommand,
  ListTagsForResourceCommand,
  ListTargetsForPolicyCommand,
  OrganizationsClient,
  PolicyNotFoundException,
  TagResourceCommand,
  paginateListAccounts,
  paginateListOrganizationalUnitsForParent,
  paginateListPolicies,
} from "@aws-sdk/client-organizations";

import { ADMIN_ARN, UNICODE, implicitDeny, policy, startServer, unique } from "../harness.js";

const SCP = "SERVICE_CONTROL_POLICY";

let srv, iam, org, admin;
before(async () => {
  srv = await startServer();
  iam = srv.client(IAMClient);
  // Organizations is managed by an administrator of the management account, as AWS recommends.
  const name = unique("admin");
  const user = (await iam.send(new CreateUserCommand({ UserName: name }))).User;
  await iam.send(new AttachUserPolicyCommand({ UserName: name, PolicyArn: ADMIN_ARN }));
  const { AccessKey } = await iam.send(new CreateAccessKeyCommand({ UserName: name }));
  admin = { ...user, credentials: { accessKeyId: AccessKey.AccessKeyId, secretAccessKey: AccessKey.SecretAccessKey } };
  org = srv.client(OrganizationsClient, admin.credentials);
});
after(async () => {
  await srv?.stop();
});

let organization, rootId;
const accounts = [];

test("before CreateOrganization: AWSOrganizationsNotInUseException", async () => {
  await assert.rejects(org.send(new DescribeOrganizationCommand({})), (e) => {
    assert.ok(e instanceof AWSOrganizationsNotInUseException, `${e.name}: ${e.message}`);
    assert.equal(e.$metadata.httpStatusCode, 400);
    assert.equal(e.message, "Your account is not a member of an organization.");
    return true;
  });
});

test("CreateOrganization, DescribeOrganization, ListRoots", async () => {
  organization = (await org.send(new CreateOrganizationCommand({ FeatureSet: "ALL" }))).Organization;
  assert.match(organization.Id, /^o-[a-z0-9]{10,32}$/);
  assert.equal(organization.MasterAccountId, srv.accountId);
  assert.equal(organization.FeatureSet, "ALL");
  assert.equal(
    organization.Arn,
    `arn:aws:organizations::${srv.accountId}:organization/${organization.Id}`,
  );
  const described = (await org.send(new DescribeOrganizationCommand({}))).Organization;
  assert.equal(described.Id, organization.Id);
  assert.equal(described.MasterAccountArn, `arn:aws:organizations::${srv.accountId}:account/${organization.Id}/${srv.accountId}`);

  const roots = (await org.send(new ListRootsCommand({}))).Roots;
  assert.equal(roots.length, 1);
  rootId = roots[0].Id;
  assert.match(rootId, /^r-[0-9a-z]{4,32}$/);
  assert.deepEqual(roots[0].PolicyTypes, [{ Type: SCP, Status: "ENABLED" }]);

  await assert.rejects(org.send(new CreateOrganizationCommand({})), AlreadyInOrganizationException);
});

test("CreateAccount, DescribeAccount, ListAccounts and paginateListAccounts", async () => {
  for (let i = 0; i < 4; i++) {
    const name = `${unique("acct")} ${i}`;
    const st = (
      await org.send(new CreateAccountCommand({ Email: `acct${i}-${Date.now()}@example.com`, AccountName: name }))
    ).CreateAccountStatus;
    assert.equal(st.State, "SUCCEEDED");
    assert.match(st.AccountId, /^\d{12}$/);
    accounts.push({ id: st.AccountId, name });
  }
  const acct = (await org.send(new DescribeAccountCommand({ AccountId: accounts[0].id }))).Account;
  assert.equal(acct.Name, accounts[0].name);
  assert.equal(acct.Status, "ACTIVE");
  assert.ok(acct.JoinedTimestamp instanceof Date);

  const all = (await org.send(new ListAccountsCommand({}))).Accounts.map((a) => a.Id);
  assert.deepEqual(all.toSorted(), [srv.accountId, ...accounts.map((a) => a.id)].toSorted());

  const pages = [];
  for await (const page of paginateListAccounts({ client: org, pageSize: 2 }, {})) {
    pages.push(page.Accounts.map((a) => a.Id));
  }
  assert.deepEqual(
    pages.map((p) => p.length),
    [2, 2, 1],
  );
  assert.deepEqual(pages.flat().toSorted(), all.toSorted());
});

test("CreatePolicy (SCP), attach to an account and an OU, list, detach, delete", async () => {
  const content = JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Deny", Action: "iam:CreateUser", Resource: "*" }],
  });
  const summary = (
    await org.send(
      new CreatePolicyCommand({
        Name: unique("deny-users"),
        Type: SCP,
        Description: `no new users — ${UNICODE}`,
        Content: content,
        Tags: [{ Key: "team", Value: "naïve 日本語" }],
      }),
    )
  ).Policy.PolicySummary;
  const pid = summary.Id;
  assert.match(pid, /^p-[0-9a-z]{8}$/);
  assert.equal(summary.Arn, `arn:aws:organizations::${srv.accountId}:policy/${organization.Id}/service_control_policy/${pid}`);
  assert.equal(summary.AwsManaged, false);

  const described = (await org.send(new DescribePolicyCommand({ PolicyId: pid }))).Policy;
  assert.equal(described.PolicySummary.Description, `no new users — ${UNICODE}`);
  assert.equal(described.Content, content);
  const tags = (await org.send(new ListTagsForResourceCommand({ ResourceId: pid }))).Tags;
  assert.deepEqual(tags, [{ Key: "team", Value: "naïve 日本語" }]);
  await org.send(new TagResourceCommand({ ResourceId: pid, Tags: [{ Key: "ключ", Value: "значение" }] }));
  assert.equal((await org.send(new ListTagsForResourceCommand({ ResourceId: pid }))).Tags.length, 2);

  const target = accounts[0].id;
  await org.send(new AttachPolicyCommand({ PolicyId: pid, TargetId: target }));
  await assert.rejects(org.send(new AttachPolicyCommand({ PolicyId: pid, TargetId: target })), (e) => {
    assert.ok(e instanceof DuplicatePolicyAttachmentException, `${e.name}: ${e.message}`);
    return true;
  });
  const ou = (await org.send(new CreateOrganizationalUnitCommand({ ParentId: rootId, Name: unique("ou") })))
    .OrganizationalUnit;
  await org.send(new AttachPolicyCommand({ PolicyId: pid, TargetId: ou.Id }));

  const forTarget = (await org.send(new ListPoliciesForTargetCommand({ TargetId: target, Filter: SCP }))).Policies;
  assert.deepEqual(forTarget.map((p) => p.Id).toSorted(), ["p-FullAWSAccess", pid].toSorted());
  const targets = (await org.send(new ListTargetsForPolicyCommand({ PolicyId: pid }))).Targets;
  assert.deepEqual(targets.map((t) => [t.TargetId, t.Type]).toSorted(), [
    [ou.Id, "ORGANIZATIONAL_UNIT"],
    [target, "ACCOUNT"],
  ].toSorted());

  const policyPages = [];
  for await (const page of paginateListPolicies({ client: org, pageSize: 1 }, { Filter: SCP })) {
    policyPages.push(page.Policies.map((p) => p.Id));
  }
  assert.deepEqual(policyPages.flat().toSorted(), ["p-FullAWSAccess", pid].toSorted());
  assert.equal(policyPages.length, 2);

  await org.send(new DetachPolicyCommand({ PolicyId: pid, TargetId: target }));
  await org.send(new DetachPolicyCommand({ PolicyId: pid, TargetId: ou.Id }));
  await org.send(new DeletePolicyCommand({ PolicyId: pid }));
  await assert.rejects(org.send(new DescribePolicyCommand({ PolicyId: pid })), (e) => {
    assert.ok(e instanceof PolicyNotFoundException, `${e.name}: ${e.message}`);
    assert.equal(e.message, "We can't find a policy with the PolicyId that you specified.");
    return true;
  });
});

test("paginateListOrganizationalUnitsForParent across pages", async () => {
  const parent = (await org.send(new CreateOrganizationalUnitCommand({ ParentId: rootId, Name: unique("parent") })))
    .OrganizationalUnit.Id;
  const ids = [];
  for (let i = 0; i < 5; i++) {
    const ou = (await org.send(new CreateOrganizationalUnitCommand({ ParentId: parent, Name: `ou ${i} ✓ 日本` })))
      .OrganizationalUnit;
    assert.equal(ou.Name, `ou ${i} ✓ 日本`);
    ids.push(ou.Id);
  }
  const pages = [];
  for await (const page of paginateListOrganizationalUnitsForParent({ client: org, pageSize: 2 }, { ParentId: parent })) {
    pages.push(page.OrganizationalUnits);
  }
  assert.deepEqual(
    pages.map((p) => p.length),
    [2, 2, 1],
  );
  assert.deepEqual(pages.flat().map((o) => o.Id).toSorted(), ids.toSorted());
  assert.deepEqual(pages.flat().map((o) => o.Name).toSorted(), [0, 1, 2, 3, 4].map((i) => `ou ${i} ✓ 日本`));
});

test("an account outside the organization is AccountNotFoundException", async () => {
  await assert.rejects(org.send(new DescribeAccountCommand({ AccountId: "000000000001" })), (e) => {
    assert.ok(e instanceof AccountNotFoundException, `${e.name}: ${e.message}`);
    assert.equal(e.$metadata.httpStatusCode, 400);
    assert.equal(e.message, "You specified an account that doesn't exist.");
    return true;
  });
});

test("a user without policies gets AccessDeniedException", async () => {
  const name = unique("nobody");
  const { User } = await iam.send(new CreateUserCommand({ UserName: name }));
  const { AccessKey } = await iam.send(new CreateAccessKeyCommand({ UserName: name }));
  const asUser = srv.client(OrganizationsClient, {
    accessKeyId: AccessKey.AccessKeyId,
    secretAccessKey: AccessKey.SecretAccessKey,
  });
  await assert.rejects(asUser.send(new ListAccountsCommand({})), (e) => {
    assert.ok(e instanceof AccessDeniedException, `${e.name}: ${e.message}`);
    assert.equal(e.$metadata.httpStatusCode, 400);
    assert.equal(e.message, implicitDeny(User.Arn, "organizations:ListAccounts", "*"));
    return true;
  });
});

// ---- invitations: an account the organization created, removed, then invited back --------------

/** Organizations client of a role session in `account` (its OrganizationAccountAccessRole). */
async function sessionIn(account) {
  const sts = srv.client(STSClient, admin.credentials);
  const { Credentials } = await sts.send(
    new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${account}:role/OrganizationAccountAccessRole`, RoleSessionName: "js" }),
  );
  return srv.client(OrganizationsClient, {
    accessKeyId: Credentials.AccessKeyId,
    secretAccessKey: Credentials.SecretAccessKey,
    sessionToken: Credentials.SessionToken,
  });
}

test("InviteAccountToOrganization, ListHandshakesForAccount, AcceptHandshake", async () => {
  const name = unique("wanderer");
  const created = (await org.send(new CreateAccountCommand({ Email: `${name}@example.com`, AccountName: name })))
    .CreateAccountStatus.AccountId;
  await org.send(new RemoveAccountFromOrganizationCommand({ AccountId: created }));
  const standalone = await sessionIn(created);

  const h = (
    await org.send(
      new InviteAccountToOrganizationCommand({ Target: { Id: created, Type: "ACCOUNT" }, Notes: `come back ${UNICODE}` }),
    )
  ).Handshake;
  assert.match(h.Id, /^h-[0-9a-z]{8,32}$/);
  assert.equal(h.Action, "INVITE");
  assert.equal(h.State, "OPEN");
  assert.equal(h.Arn, `arn:aws:organizations::${srv.accountId}:handshake/${organization.Id}/invite/${h.Id}`);
  assert.deepEqual(h.Parties, [
    { Id: organization.Id, Type: "ORGANIZATION" },
    { Id: created, Type: "ACCOUNT" },
  ]);
  assert.deepEqual(h.Resources.at(-1), { Type: "NOTES", Value: `come back ${UNICODE}` });
  assert.ok(h.RequestedTimestamp instanceof Date && h.ExpirationTimestamp instanceof Date);
  assert.equal(h.ExpirationTimestamp - h.RequestedTimestamp, 15 * 24 * 3600 * 1000);

  const received = (await standalone.send(new ListHandshakesForAccountCommand({}))).Handshakes;
  assert.deepEqual(received.map((x) => x.Id), [h.Id]);
  const accepted = (await standalone.send(new AcceptHandshakeCommand({ HandshakeId: h.Id }))).Handshake;
  assert.equal(accepted.State, "ACCEPTED");
  await assert.rejects(standalone.send(new AcceptHandshakeCommand({ HandshakeId: h.Id })), (e) => {
    assert.ok(e instanceof HandshakeAlreadyInStateException, `${e.name}: ${e.message}`);
    return true;
  });
  const member = (await org.send(new DescribeAccountCommand({ AccountId: created }))).Account;
  assert.equal(member.JoinedMethod, "INVITED");
  assert.equal(member.Email, `${name}@example.com`);
});

test("DeclineHandshake, CancelHandshake, paginateListHandshakesForOrganization", async () => {
  const name = unique("decliner");
  const created = (await org.send(new CreateAccountCommand({ Email: `${name}@example.com`, AccountName: name })))
    .CreateAccountStatus.AccountId;
  await org.send(new RemoveAccountFromOrganizationCommand({ AccountId: created }));
  const standalone = await sessionIn(created);
  const invite = async () =>
    (await org.send(new InviteAccountToOrganizationCommand({ Target: { Id: `${name}@example.com`, Type: "EMAIL" } })))
      .Handshake;
  const first = await invite();
  // An invitation by email reaches the account Organizations knows by that email.
  assert.equal((await standalone.send(new DeclineHandshakeCommand({ HandshakeId: first.Id }))).Handshake.State, "DECLINED");
  const second = await invite();
  assert.equal((await org.send(new CancelHandshakeCommand({ HandshakeId: second.Id }))).Handshake.State, "CANCELED");
  const described = (await standalone.send(new DescribeHandshakeCommand({ HandshakeId: second.Id }))).Handshake;
  assert.equal(described.State, "CANCELED");

  const pages = [];
  for await (const page of paginateListHandshakesForOrganization({ client: org, pageSize: 1 }, {})) {
    pages.push(page.Handshakes.map((x) => x.Id));
  }
  assert.ok(pages.length >= 3 && pages.every((p) => p.length === 1), JSON.stringify(pages));
  assert.ok(pages.flat().includes(first.Id) && pages.flat().includes(second.Id));

  await assert.rejects(org.send(new DescribeHandshakeCommand({ HandshakeId: "h-0123456789" })), (e) => {
    assert.ok(e instanceof HandshakeNotFoundException, `${e.name}: ${e.message}`);
    assert.equal(e.$metadata.httpStatusCode, 400);
    assert.equal(e.message, "We can't find a handshake with the HandshakeId that you specified.");
    return true;
  });
  // The wrong party: the sender cannot accept its own invitation.
  const third = await invite();
  await assert.rejects(org.send(new AcceptHandshakeCommand({ HandshakeId: third.Id })), (e) => {
    assert.ok(e instanceof AccessDeniedException, `${e.name}: ${e.message}`);
    return true;
  });
});

test("PutResourcePolicy, DescribeResourcePolicy; DescribeEffectivePolicy", async () => {
  const content = policy({
    Effect: "Allow",
    Principal: { AWS: `arn:aws:iam::${srv.accountId}:root` },
    Action: "organizations:List*",
    Resource: "*",
  });
  const put = (await org.send(new PutResourcePolicyCommand({ Content: content }))).ResourcePolicy;
  assert.match(put.ResourcePolicySummary.Id, /^rp-/);
  assert.deepEqual((await org.send(new DescribeResourcePolicyCommand({}))).ResourcePolicy, put);

  await org.send(new EnablePolicyTypeCommand({ RootId: rootId, PolicyType: "TAG_POLICY" }));
  const pid = (
    await org.send(
      new CreatePolicyCommand({
        Name: unique("tags"),
        Description: "",
        Type: "TAG_POLICY",
        Content: JSON.stringify({ tags: { team: { tag_key: { "@@assign": "Team" }, tag_value: { "@@assign": ["a", "b"] } } } }),
      }),
    )
  ).Policy.PolicySummary.Id;
  await org.send(new AttachPolicyCommand({ PolicyId: pid, TargetId: rootId }));
  const eff = (await org.send(new DescribeEffectivePolicyCommand({ PolicyType: "TAG_POLICY" }))).EffectivePolicy;
  assert.equal(eff.TargetId, srv.accountId);
  assert.deepEqual(JSON.parse(eff.PolicyContent), { tags: { team: { tag_key: "Team", tag_value: ["a", "b"] } } });
});

test("billing transfer: InviteOrganizationToTransferResponsibility, accept, list, terminate", async () => {
  // The other organization: an account this one created and let go, now managing its own.
  const name = unique("billsrc");
  const other = (await org.send(new CreateAccountCommand({ Email: `${name}@example.com`, AccountName: name })))
    .CreateAccountStatus.AccountId;
  await org.send(new RemoveAccountFromOrganizationCommand({ AccountId: other }));
  const source = await sessionIn(other);
  await source.send(new CreateOrgCommand({}));

  const now = new Date();
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
  const h = (
    await org.send(
      new InviteOrganizationToTransferResponsibilityCommand({
        Type: "BILLING",
        Target: { Id: other, Type: "ACCOUNT" },
        StartTimestamp: start,
        SourceName: "acme",
      }),
    )
  ).Handshake;
  assert.equal(h.Action, "TRANSFER_RESPONSIBILITY");
  const tid = h.Resources[0].Value;
  assert.match(tid, /^rt-[0-9a-z]{8,32}$/);
  const inbound = (await org.send(new ListInboundResponsibilityTransfersCommand({ Type: "BILLING" })))
    .ResponsibilityTransfers;
  assert.deepEqual(inbound.map((t) => [t.Id, t.Status]), [[tid, "REQUESTED"]]);
  assert.equal(inbound[0].StartTimestamp.getTime(), start.getTime());

  await source.send(new AcceptHandshakeCommand({ HandshakeId: h.Id }));
  const out = (await source.send(new ListOutboundResponsibilityTransfersCommand({ Type: "BILLING" })))
    .ResponsibilityTransfers;
  assert.deepEqual(out.map((t) => [t.Id, t.Status]), [[tid, "ACCEPTED"]]);
  assert.match(out[0].Arn, new RegExp(`^arn:aws:organizations::${other}:transfer/o-[a-z0-9]+/billing/outbound/${tid}$`));

  const ended = (await org.send(new TerminateResponsibilityTransferCommand({ Id: tid, EndTimestamp: start })))
    .ResponsibilityTransfer;
  assert.equal(ended.Status, "WITHDRAWN");
  assert.equal(ended.EndTimestamp.getTime(), Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1) - 1000);
  await assert.rejects(org.send(new DescribeResponsibilityTransferCommand({ Id: "rt-0123456789" })), (e) => {
    assert.ok(e instanceof ResponsibilityTransferNotFoundException, `${e.name}: ${e.message}`);
    return true;
  });
});

test("GenerateOrganizationsAccessReport / GetOrganizationsAccessReport for the root", async () => {
  const asAdmin = srv.client(IAMClient, admin.credentials);
  const path = `${organization.Id}/${rootId}`;
  const { JobId } = await asAdmin.send(new GenerateOrganizationsAccessReportCommand({ EntityPath: path }));
  let report;
  for (let i = 0; i < 100; i++) {
    report = await asAdmin.send(new GetOrganizationsAccessReportCommand({ JobId }));
    if (report.JobStatus !== "IN_PROGRESS") break;
  }
  assert.equal(report.JobStatus, "COMPLETED");
  const byNs = Object.fromEntries(report.AccessDetails.map((d) => [d.ServiceNamespace, d]));
  // The management account's principals called IAM and Organizations in the tests above.
  for (const ns of ["iam", "organizations"]) {
    assert.ok(byNs[ns].TotalAuthenticatedEntities >= 1, ns);
    assert.ok(byNs[ns].LastAuthenticatedTime instanceof Date, ns);
    assert.ok(byNs[ns].EntityPath.startsWith(`${path}/`), byNs[ns].EntityPath);
  }
  assert.equal(report.NumberOfServicesAccessible, report.AccessDetails.length);
});

