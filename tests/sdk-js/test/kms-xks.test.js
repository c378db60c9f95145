// KMS custom key stores through @aws-sdk/client-kms: an external key store backed by a small XKS
// proxy (node:http) that checks KMS's SigV4 signature (service `kms-xks-proxy`) and answers
// GetHealthStatus; CloudHSM key stores answered as AWS answers for a cluster that does not exist.

import assert from "node:assert/strict";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { after, before, test } from "node:test";

import {
  CloudHsmClusterNotFoundException,
  ConnectCustomKeyStoreCommand,
  CreateCustomKeyStoreCommand,
  CustomKeyStoreNotFoundException,
  DeleteCustomKeyStoreCommand,
  DescribeCustomKeyStoresCommand,
  DisconnectCustomKeyStoreCommand,
  KMSClient,
  UpdateCustomKeyStoreCommand,
  XksProxyIncorrectAuthenticationCredentialException,
} from "@aws-sdk/client-kms";

import { UNICODE, startServer, unique } from "../harness.js";

const ACCESS_KEY_ID = "XKSPROXYTESTKEY234567ABCD";
const SECRET = randomBytes(33).toString("base64");

const hmac = (key, data) => createHmac("sha256", key).update(data).digest();
const sha256 = (data) => createHash("sha256").update(data).digest("hex");

/** Whether `req` carries a valid SigV4 signature of `body` by ACCESS_KEY_ID / SECRET. */
function signed(req, body) {
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/kms-xks-proxy\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(
    req.headers.authorization ?? "",
  );
  if (!m || m[1] !== ACCESS_KEY_ID) return false;
  const [, , day, region, signedHeaders, signature] = m;
  const names = signedHeaders.split(";");
  const canonical = [
    "POST",
    req.url,
    "",
    ...names.map((n) => `${n}:${String(req.headers[n]).trim()}`),
    "",
    signedHeaders,
    sha256(body),
  ].join("\n");
  const date = req.headers["x-amz-date"];
  const scope = `${day}/${region}/kms-xks-proxy/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", date, scope, sha256(canonical)].join("\n");
  let key = hmac(`AWS4${SECRET}`, day);
  for (const part of [region, "kms-xks-proxy", "aws4_request"]) key = hmac(key, part);
  return hmac(key, toSign).toString("hex") === signature;
}

let srv, kms, proxy, proxyEndpoint;
const calls = { health: 0 };

before(async () => {
  proxy = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const answer = (status, doc) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(doc));
      };
      if (!signed(req, body)) return answer(401, { errorName: "AuthenticationFailedException" });
      if (req.url !== "/kms/xks/v1/health") return answer(404, { errorName: "InvalidUriPathException" });
      calls.health += 1;
      answer(200, {
        xksProxyFleetSize: 1,
        xksProxyVendor: "sdk-js",
        xksProxyModel: "node",
        ekmVendor: "sdk-js",
        ekmFleetDetails: [{ id: "ekm-1", model: "software", healthStatus: "ACTIVE" }],
      });
    });
  });
  await new Promise((r) => proxy.listen(0, "127.0.0.1", r));
  proxyEndpoint = `http://127.0.0.1:${proxy.address().port}`;
  srv = await startServer({ RAMPART_KMS_XKS_ALLOW_HTTP: "1" });
  kms = srv.client(KMSClient);
});
after(async () => {
  await srv?.stop();
  proxy?.close();
});

const credential = (secret = SECRET) => ({ AccessKeyId: ACCESS_KEY_ID, RawSecretAccessKey: secret });

test("CreateCustomKeyStore (external key store), DescribeCustomKeyStores, connect, disconnect, delete", async () => {
  const name = `${unique("xks")} ${UNICODE}`;
  const { CustomKeyStoreId: id } = await kms.send(
    new CreateCustomKeyStoreCommand({
      CustomKeyStoreName: name,
      CustomKeyStoreType: "EXTERNAL_KEY_STORE",
      XksProxyConnectivity: "PUBLIC_ENDPOINT",
      XksProxyUriEndpoint: proxyEndpoint,
      XksProxyUriPath: "/kms/xks/v1",
      XksProxyAuthenticationCredential: credential(),
    }),
  );
  assert.match(id, /^cks-[0-9a-f]{17}$/);
  assert.equal(calls.health, 1);

  const [store] = (await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreName: name }))).CustomKeyStores;
  assert.equal(store.CustomKeyStoreId, id);
  assert.equal(store.CustomKeyStoreName, name);
  assert.equal(store.CustomKeyStoreType, "EXTERNAL_KEY_STORE");
  assert.equal(store.ConnectionState, "DISCONNECTED");
  assert.ok(store.CreationDate instanceof Date);
  assert.deepEqual(store.XksProxyConfiguration, {
    Connectivity: "PUBLIC_ENDPOINT",
    AccessKeyId: ACCESS_KEY_ID,
    UriEndpoint: proxyEndpoint,
    UriPath: "/kms/xks/v1",
  });
  const all = await kms.send(new DescribeCustomKeyStoresCommand({ Limit: 1 }));
  assert.equal(all.CustomKeyStores.length, 1);

  await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
  const connected = (await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: id }))).CustomKeyStores[0];
  assert.equal(connected.ConnectionState, "CONNECTED");
  await kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: id, NewCustomKeyStoreName: `${name} 2` }));
  await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
  await kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: id }));
  await assert.rejects(kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: id })), (e) => {
    assert.ok(e instanceof CustomKeyStoreNotFoundException, `${e.name}: ${e.message}`);
    assert.equal(e.$metadata.httpStatusCode, 400);
    return true;
  });
});

test("CreateCustomKeyStore: a credential the proxy does not know; a CloudHSM cluster that does not exist", async () => {
  await assert.rejects(
    kms.send(
      new CreateCustomKeyStoreCommand({
        CustomKeyStoreName: unique("xks"),
        CustomKeyStoreType: "EXTERNAL_KEY_STORE",
        XksProxyConnectivity: "PUBLIC_ENDPOINT",
        XksProxyUriEndpoint: proxyEndpoint,
        XksProxyUriPath: "/kms/xks/v1",
        XksProxyAuthenticationCredential: credential(randomBytes(33).toString("base64")),
      }),
    ),
    (e) => e instanceof XksProxyIncorrectAuthenticationCredentialException,
  );
  await assert.rejects(
    kms.send(
      new CreateCustomKeyStoreCommand({
        CustomKeyStoreName: unique("hsm"),
        CloudHsmClusterId: "cluster-234abcdefgh",
        TrustAnchorCertificate: "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----",
        KeyStorePassword: "kmsPswd1",
      }),
    ),
    (e) => e instanceof CloudHsmClusterNotFoundException && e.$metadata.httpStatusCode === 400,
  );
});
