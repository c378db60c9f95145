// Outbound web identity federation (GetWebIdentityToken, verified against the issuer's JWKS with
// node:crypto) and AssumeRoot (a member account's root, scoped by a root-task policy) through
// @aws-sdk/client-sts, @aws-sdk/client-iam and @aws-sdk/client-organizations.

import assert from "node:assert/strict";
import { createPublicKey, verify } from "node:crypto";
import { after, before, test } from "node:test";

import {
  AttachUserPolicyCommand,
  CreateAccessKeyCommand,
  CreateUserCommand,
  EnableOrganizationsRootSessionsCommand,
  EnableOutboundWebIdentityFederationCommand,
  GetOutboundWebIdentityFederationInfoCommand,
  IAMClient,
  ListAccessKeysCommand,
  ListUsersCommand,
} from "@aws-sdk/client-iam";
import {
  CreateAccountCommand,
  CreateOrganizationCommand,
  EnableAWSServiceAccessCommand,
  OrganizationsClient,
} from "@aws-sdk/client-organizations";
import {
  AssumeRootCommand,
  GetCallerIdentityCommand,
  GetWebIdentityTokenCommand,
  OutboundWebIdentityFederationDisabledException,
  STSClient,
} from "@aws-sdk/client-sts";

import { ADMIN_ARN, startServer, unique } from "../harness.js";

const AUDIT = "arn:aws:iam::aws:policy/root-task/IAMAuditRootUserCredentials";
const NS = "https://sts.amazonaws.com/";

let srv, iam, sts;
before(async () => {
  srv = await startServer();
  iam = srv.client(IAMClient);
  sts = srv.client(STSClient);
});
after(async () => {
  await srv?.stop();
});

const b64 = (s) => Buffer.from(s, "base64url");

async function getJson(url) {
  const r = await fetch(url);
  assert.equal(r.status, 200, url);
  return r.json();
}

/** Verify `token` as a relying party does: discovery → JWKS → signature. Returns the claims. */
async function verifyToken(token, issuer) {
  const config = await getJson(`${issuer}/.well-known/openid-configuration`);
  assert.equal(config.issuer, issuer);
  const jwks = await getJson(config.jwks_uri);
  const [h, p, s] = token.split(".");
  const header = JSON.parse(b64(h));
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `kid ${header.kid} published`);
  const key = createPublicKey({ key: jwk, format: "jwk" });
  const data = Buffer.from(`${h}.${p}`);
  const ok =
    header.alg === "RS256"
      ? verify("sha256", data, key, b64(s))
      : verify("sha384", data, { key, dsaEncoding: "ieee-p1363" }, b64(s));
  assert.ok(ok, `${header.alg} signature verifies`);
  assert.ok(!verify(header.alg === "RS256" ? "sha256" : "sha384", Buffer.from("x"), header.alg === "RS256" ? key : { key, dsaEncoding: "ieee-p1363" }, b64(s)));
  return JSON.parse(b64(p));
}

test("GetWebIdentityToken: refused until enabled, then RS256 and ES384 tokens verify", async () => {
  await assert.rejects(
    sts.send(new GetWebIdentityTokenCommand({ Audience: ["https://api.example.com"], SigningAlgorithm: "RS256" })),
    (e) => {
      assert.ok(e instanceof OutboundWebIdentityFederationDisabledException, `${e.name}: ${e.message}`);
      assert.equal(e.$metadata.httpStatusCode, 403);
      return true;
    },
  );
  const issuer = (await iam.send(new EnableOutboundWebIdentityFederationCommand({}))).IssuerIdentifier;
  assert.ok(issuer.startsWith(`${srv.endpoint}/_rampart/oidc/`), issuer);
  const info = await iam.send(new GetOutboundWebIdentityFederationInfoCommand({}));
  assert.equal(info.IssuerIdentifier, issuer);
  assert.equal(info.JwtVendingEnabled, true);

  for (const alg of ["RS256", "ES384"]) {
    const out = await sts.send(
      new GetWebIdentityTokenCommand({
        Audience: ["https://api.example.com"],
        SigningAlgorithm: alg,
        DurationSeconds: 120,
        Tags: [{ Key: "job", Value: "naïve 日本語" }],
      }),
    );
    assert.ok(out.Expiration instanceof Date);
    const claims = await verifyToken(out.WebIdentityToken, issuer);
    assert.equal(claims.iss, issuer);
    assert.equal(claims.aud, "https://api.example.com");
    assert.equal(claims.sub, `arn:aws:iam::${srv.accountId}:root`);
    assert.equal(claims.exp - claims.iat, 120);
    assert.equal(claims.exp, Math.floor(out.Expiration.getTime() / 1000));
    assert.equal(claims[NS].aws_account, srv.accountId);
    assert.deepEqual(claims[NS].request_tags, { job: "naïve 日本語" });
  }
});

test("AssumeRoot: a member account's root, scoped by the task policy", async () => {
  const name = unique("admin");
  await iam.send(new CreateUserCommand({ UserName: name }));
  await iam.send(new AttachUserPolicyCommand({ UserName: name, PolicyArn: ADMIN_ARN }));
  const k = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey;
  const admin = { accessKeyId: k.AccessKeyId, secretAccessKey: k.SecretAccessKey };
  const org = srv.client(OrganizationsClient, admin);
  await org.send(new CreateOrganizationCommand({ FeatureSet: "ALL" }));
  const member = (await org.send(new CreateAccountCommand({ Email: "m@example.com", AccountName: "m" })))
    .CreateAccountStatus.AccountId;
  await org.send(new EnableAWSServiceAccessCommand({ ServicePrincipal: "iam.amazonaws.com" }));
  const adminSts = srv.client(STSClient, admin);

  await assert.rejects(
    adminSts.send(new AssumeRootCommand({ TargetPrincipal: member, TaskPolicyArn: { arn: AUDIT } })),
    (e) => e.name === "AccessDenied" && e.$metadata.httpStatusCode === 403,
  );
  const features = await srv.client(IAMClient, admin).send(new EnableOrganizationsRootSessionsCommand({}));
  assert.deepEqual(features.EnabledFeatures, ["RootSessions"]);

  const c = (
    await adminSts.send(
      new AssumeRootCommand({ TargetPrincipal: member, TaskPolicyArn: { arn: AUDIT }, DurationSeconds: 300 }),
    )
  ).Credentials;
  const ttl = c.Expiration.getTime() - Date.now();
  assert.ok(ttl > 250_000 && ttl <= 305_000, `expires in ${ttl} ms`);
  const creds = { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken };
  const me = await srv.client(STSClient, creds).send(new GetCallerIdentityCommand({}));
  assert.equal(me.Arn, `arn:aws:iam::${member}:root`);
  assert.equal(me.Account, member);
  const rootIam = srv.client(IAMClient, creds);
  assert.deepEqual((await rootIam.send(new ListAccessKeysCommand({}))).AccessKeyMetadata, []);
  await assert.rejects(rootIam.send(new ListUsersCommand({})), (e) => {
    assert.equal(e.name, "AccessDenied");
    assert.equal(e.$metadata.httpStatusCode, 403);
    return true;
  });
});
