"""KMS external key stores (XKS) through boto3, against a small XKS proxy written here after AWS's
"External Key Store (XKS) Proxy API Specification": POST <path>/health and
<path>/keys/<id>/{metadata,encrypt,decrypt}, JSON bodies, SigV4-signed by KMS with service name
`kms-xks-proxy` and the store's proxy credential — verified here with botocore's own SigV4Auth —
and AES-GCM from `cryptography`.

The server runs with RAMPART_KMS_XKS_ALLOW_HTTP=1: AWS requires https:// on port 443, the test
proxy is http:// on a free port. CloudHSM key stores are answered as AWS answers for a cluster
that does not exist."""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from support import (
    REGION,
    RampartServer,
    allow,
    aws_error,
    free_port,
    policy,
    random_account_id,
    random_key_id,
    random_secret,
)


def xks_access_key() -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return "".join(secrets.choice(alphabet) for _ in range(24))


def xks_secret() -> str:
    return base64.b64encode(os.urandom(33)).decode()  # 44 characters of [A-Za-z0-9+/=]


class XksProxy:
    """An XKS proxy on 127.0.0.1: verifies every request's SigV4 signature, counts calls."""

    def __init__(self, access_key_id: str, secret: str, region: str = REGION, prefix: str = "/kms/xks/v1"):
        self.access_key_id, self.secret, self.region, self.prefix = access_key_id, secret, region, prefix
        self.keys = {"xks-key-1": AESGCM.generate_key(256), "xks-key-2": AESGCM.generate_key(256)}
        self.key_specs = {"xks-key-small": "AES_128"}
        self.calls: Counter[str] = Counter()
        self.deny = False
        self.metadata_seen: list[dict] = []
        self.port = free_port()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, answer = proxy.handle(self.path, dict(self.headers), body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def signature_ok(self, path: str, headers: dict, body: bytes) -> bool:
        h = {k.lower(): v for k, v in headers.items()}
        auth = h.get("authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return False
        parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
        akid, day, region, service, term = parts["Credential"].split("/")
        if akid != self.access_key_id or region != self.region or service != "kms-xks-proxy":
            return False
        signed = parts["SignedHeaders"].split(";")
        req = AWSRequest(method="POST", url=f"http://{h['host']}{path}", data=body,
                         headers={name: h[name] for name in signed})
        req.context["timestamp"] = h["x-amz-date"]
        signer = SigV4Auth(Credentials(self.access_key_id, self.secret), "kms-xks-proxy", self.region)
        expected = signer.signature(signer.string_to_sign(req, signer.canonical_request(req)), req)
        return secrets.compare_digest(expected, parts["Signature"])

    def handle(self, path: str, headers: dict, body: bytes) -> tuple[int, dict]:
        def error(status, name):
            return status, {"errorName": name, "errorMessage": name}

        if not self.signature_ok(path, headers, body):
            return error(401, "AuthenticationFailedException")
        if self.deny:
            return error(403, "AccessDeniedException")
        if not path.startswith(self.prefix + "/"):
            return error(404, "InvalidUriPathException")
        req = json.loads(body)
        rest = path[len(self.prefix):]
        if rest == "/health":
            self.calls["health"] += 1
            return 200, {"xksProxyFleetSize": 1, "xksProxyVendor": "rampart-tests", "xksProxyModel": "python",
                         "ekmVendor": "rampart-tests",
                         "ekmFleetDetails": [{"id": "hsm-1", "model": "software", "healthStatus": "ACTIVE"}]}
        _, _, key_id, op = rest.split("/", 3)
        self.calls[op] += 1
        if op == "metadata":
            self.metadata_seen.append(req["requestMetadata"])
            if key_id in self.key_specs:
                return 200, {"keySpec": self.key_specs[key_id], "keyUsage": ["ENCRYPT", "DECRYPT"], "keyStatus": "ENABLED"}
            if key_id not in self.keys:
                return error(404, "KeyNotFoundException")
            return 200, {"keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT"], "keyStatus": "ENABLED"}
        if key_id not in self.keys:
            return error(404, "KeyNotFoundException")
        aes = AESGCM(self.keys[key_id])
        aad = base64.b64decode(req.get("additionalAuthenticatedData", ""))
        if op == "encrypt":
            assert req["encryptionAlgorithm"] == "AES_GCM"
            assert req["requestMetadata"]["kmsOperation"] in (
                "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncrypt",
                "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext")
            iv = os.urandom(12)
            ct = aes.encrypt(iv, base64.b64decode(req["plaintext"]), aad)
            return 200, {"ciphertext": base64.b64encode(ct[:-16]).decode(),
                         "initializationVector": base64.b64encode(iv).decode(),
                         "authenticationTag": base64.b64encode(ct[-16:]).decode()}
        if op == "decrypt":
            try:
                pt = aes.decrypt(base64.b64decode(req["initializationVector"]),
                                 base64.b64decode(req["ciphertext"]) + base64.b64decode(req["authenticationTag"]), aad)
            except Exception:
                return error(400, "InvalidCiphertextException")
            return 200, {"plaintext": base64.b64encode(pt).decode()}
        return error(404, "InvalidUriPathException")


@pytest.fixture(scope="module")
def xks_server(tmp_path_factory):
    work = tmp_path_factory.mktemp("xks")
    srv = RampartServer(work, data_dir=work / "data", account_id=random_account_id(),
                        access_key_id=random_key_id(), secret_access_key=random_secret(),
                        extra_env={"RAMPART_KMS_XKS_ALLOW_HTTP": "1"}).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def kms(xks_server):
    return xks_server.client("kms")


@pytest.fixture
def proxy():
    p = XksProxy(xks_access_key(), xks_secret())
    yield p
    p.stop()


def create_store(kms, proxy: XksProxy, name: str | None = None, **over) -> str:
    args = dict(
        CustomKeyStoreName=name or f"xks-{secrets.token_hex(4)}",
        CustomKeyStoreType="EXTERNAL_KEY_STORE",
        XksProxyUriEndpoint=proxy.endpoint,
        XksProxyUriPath=proxy.prefix,
        XksProxyConnectivity="PUBLIC_ENDPOINT",
        XksProxyAuthenticationCredential={"AccessKeyId": proxy.access_key_id, "RawSecretAccessKey": proxy.secret},
    )
    args.update(over)
    return kms.create_custom_key_store(**args)["CustomKeyStoreId"]


def describe(kms, store_id: str) -> dict:
    return kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0]


def test_lifecycle(kms, proxy):
    name = f"xks-{secrets.token_hex(4)}"
    sid = create_store(kms, proxy, name)
    assert sid.startswith("cks-") and len(sid) == 21
    assert proxy.calls["health"] == 1  # KMS connects to a public endpoint while creating the store
    d = describe(kms, sid)
    assert d["CustomKeyStoreName"] == name
    assert d["CustomKeyStoreType"] == "EXTERNAL_KEY_STORE"
    assert d["ConnectionState"] == "DISCONNECTED"
    assert "ConnectionErrorCode" not in d
    assert d["XksProxyConfiguration"] == {"Connectivity": "PUBLIC_ENDPOINT", "AccessKeyId": proxy.access_key_id,
                                          "UriEndpoint": proxy.endpoint, "UriPath": proxy.prefix}
    assert "CreationDate" in d
    assert kms.describe_custom_key_stores(CustomKeyStoreName=name)["CustomKeyStores"][0]["CustomKeyStoreId"] == sid
    assert any(s["CustomKeyStoreId"] == sid for s in kms.describe_custom_key_stores()["CustomKeyStores"])

    # Uniqueness: the name, and the proxy's URI, per account and Region.
    with aws_error("CustomKeyStoreNameInUseException", 400):
        create_store(kms, proxy, name, XksProxyUriPath="/other/kms/xks/v1")
    with aws_error("XksProxyUriInUseException", 400):
        create_store(kms, proxy)

    # Update while disconnected (the new name is checked too).
    kms.update_custom_key_store(CustomKeyStoreId=sid, NewCustomKeyStoreName=name + "-renamed")
    assert describe(kms, sid)["CustomKeyStoreName"] == name + "-renamed"

    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    assert describe(kms, sid)["ConnectionState"] == "CONNECTED"
    assert proxy.calls["health"] == 2
    kms.connect_custom_key_store(CustomKeyStoreId=sid)  # already connected: nothing to do

    # Connected: the name (and credential, path) may change; the endpoint may not.
    kms.update_custom_key_store(CustomKeyStoreId=sid, NewCustomKeyStoreName=name)
    with aws_error("CustomKeyStoreInvalidStateException", 400):
        kms.update_custom_key_store(CustomKeyStoreId=sid, XksProxyUriEndpoint="https://elsewhere.example.com")
    with aws_error("CustomKeyStoreInvalidStateException", 400):
        kms.delete_custom_key_store(CustomKeyStoreId=sid)

    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    assert describe(kms, sid)["ConnectionState"] == "DISCONNECTED"
    with aws_error("CustomKeyStoreInvalidStateException", 400):
        kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    # GenerateRandom takes CloudHSM key stores only.
    with aws_error("UnsupportedOperationException", 400):
        kms.generate_random(NumberOfBytes=8, CustomKeyStoreId=sid)
    with aws_error("CustomKeyStoreNotFoundException", 400):
        kms.generate_random(NumberOfBytes=8, CustomKeyStoreId="cks-1234567890abcdef0")
    kms.delete_custom_key_store(CustomKeyStoreId=sid)
    with aws_error("CustomKeyStoreNotFoundException", 400):
        kms.describe_custom_key_stores(CustomKeyStoreId=sid)
    with aws_error("CustomKeyStoreNotFoundException", 400):
        kms.connect_custom_key_store(CustomKeyStoreId=sid)


def test_create_checks_the_proxy(kms, proxy):
    with aws_error("XksProxyIncorrectAuthenticationCredentialException", 400):
        create_store(kms, proxy, XksProxyAuthenticationCredential={
            "AccessKeyId": proxy.access_key_id, "RawSecretAccessKey": xks_secret()})
    with aws_error("XksProxyInvalidConfigurationException", 400):
        create_store(kms, proxy, XksProxyUriPath="/wrong/kms/xks/v1")
    with aws_error("XksProxyUriUnreachableException", 400):
        create_store(kms, proxy, XksProxyUriEndpoint=f"http://127.0.0.1:{free_port()}")


def test_connect_failures(kms, proxy):
    sid = create_store(kms, proxy)
    # The proxy's credential rotates on the proxy but not in KMS: its signatures are refused (401).
    proxy.secret = xks_secret()
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    d = describe(kms, sid)
    assert (d["ConnectionState"], d["ConnectionErrorCode"]) == ("FAILED", "INVALID_CREDENTIALS")
    # FAILED: disconnect before connecting again.
    with aws_error("CustomKeyStoreInvalidStateException", 400):
        kms.connect_custom_key_store(CustomKeyStoreId=sid)
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    assert "ConnectionErrorCode" not in describe(kms, sid)
    # The proxy's authorization rules deny KMS (403).
    proxy.deny = True
    with aws_error("XksProxyIncorrectAuthenticationCredentialException", 400):
        kms.update_custom_key_store(CustomKeyStoreId=sid, XksProxyAuthenticationCredential={
            "AccessKeyId": proxy.access_key_id, "RawSecretAccessKey": proxy.secret})
    proxy.deny = False
    kms.update_custom_key_store(CustomKeyStoreId=sid, XksProxyAuthenticationCredential={
        "AccessKeyId": proxy.access_key_id, "RawSecretAccessKey": proxy.secret})
    proxy.deny = True
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    d = describe(kms, sid)
    assert (d["ConnectionState"], d["ConnectionErrorCode"]) == ("FAILED", "XKS_PROXY_ACCESS_DENIED")
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    proxy.deny = False
    # Nothing listening any more.
    proxy.stop()
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    d = describe(kms, sid)
    assert (d["ConnectionState"], d["ConnectionErrorCode"]) == ("FAILED", "XKS_PROXY_NOT_REACHABLE")
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    kms.delete_custom_key_store(CustomKeyStoreId=sid)


def test_double_encryption_goes_through_the_proxy(kms, proxy):
    sid = create_store(kms, proxy)
    with aws_error("CustomKeyStoreInvalidStateException", 400):
        kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=sid, XksKeyId="xks-key-1")
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    with aws_error("XksKeyNotFoundException", 400):
        kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=sid, XksKeyId="no-such-key")
    with aws_error("XksKeyInvalidConfigurationException", 400):
        kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=sid, XksKeyId="xks-key-small")
    meta = kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=sid, XksKeyId="xks-key-1",
                          Description="in my XKS")["KeyMetadata"]
    assert meta["Origin"] == "EXTERNAL_KEY_STORE"
    assert meta["CustomKeyStoreId"] == sid
    assert meta["XksKeyConfiguration"] == {"Id": "xks-key-1"}
    assert meta["KeyState"] == "Enabled"
    assert proxy.metadata_seen[-1]["kmsOperation"] == "CreateKey"
    kid = meta["KeyId"]
    with aws_error("XksKeyAlreadyInUseException", 400):
        kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=sid, XksKeyId="xks-key-1")
    described = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert described["XksKeyConfiguration"] == {"Id": "xks-key-1"} and described["CustomKeyStoreId"] == sid

    ec = {"purpose": "xks-test"}
    before = proxy.calls["encrypt"]
    blob = kms.encrypt(KeyId=kid, Plaintext="double encrypted ü".encode(), EncryptionContext=ec)["CiphertextBlob"]
    assert proxy.calls["encrypt"] == before + 1
    before = proxy.calls["decrypt"]
    out = kms.decrypt(CiphertextBlob=blob, EncryptionContext=ec)
    assert out["Plaintext"] == "double encrypted ü".encode() and out["KeyId"].endswith(kid)
    assert proxy.calls["decrypt"] == before + 1
    with aws_error("InvalidCiphertextException", 400):
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"purpose": "other"})

    dk = kms.generate_data_key(KeyId=kid, KeySpec="AES_256")
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
    nopt = kms.generate_data_key_without_plaintext(KeyId=kid, NumberOfBytes=16)["CiphertextBlob"]
    assert len(kms.decrypt(CiphertextBlob=nopt)["Plaintext"]) == 16
    # ReEncrypt from the XKS key to an ordinary key and back.
    plain_key = kms.create_key()["KeyMetadata"]["KeyId"]
    moved = kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext=ec, DestinationKeyId=plain_key)
    back = kms.re_encrypt(CiphertextBlob=moved["CiphertextBlob"], DestinationKeyId=kid)
    assert kms.decrypt(CiphertextBlob=back["CiphertextBlob"])["Plaintext"] == "double encrypted ü".encode()

    # Rotation is not for keys in custom key stores.
    with aws_error("UnsupportedOperationException", 400):
        kms.enable_key_rotation(KeyId=kid)

    # The proxy's external key decides: another proxy with other key material cannot decrypt.
    proxy.keys["xks-key-1"] = AESGCM.generate_key(256)
    with aws_error("InvalidCiphertextException", 400):
        kms.decrypt(CiphertextBlob=blob, EncryptionContext=ec)

    # Disconnected: the key is Unavailable and cannot be used.
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Unavailable"
    with aws_error("KMSInvalidStateException", 400):
        kms.encrypt(KeyId=kid, Plaintext=b"x")
    with aws_error("CustomKeyStoreHasCMKsException", 400):
        kms.delete_custom_key_store(CustomKeyStoreId=sid)


def test_proxy_gone_fails_decrypt(kms, proxy):
    sid = create_store(kms, proxy)
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    kid = kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=sid, XksKeyId="xks-key-2")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=kid, Plaintext=b"needs the proxy")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"needs the proxy"
    proxy.stop()
    with aws_error("KMSInvalidStateException", 400):
        kms.decrypt(CiphertextBlob=blob)
    with aws_error("KMSInvalidStateException", 400):
        kms.encrypt(KeyId=kid, Plaintext=b"x")


def test_validation(kms, proxy):
    base = dict(CustomKeyStoreName="v", CustomKeyStoreType="EXTERNAL_KEY_STORE", XksProxyConnectivity="PUBLIC_ENDPOINT",
                XksProxyUriEndpoint="https://xks.example.com", XksProxyUriPath="/kms/xks/v1",
                XksProxyAuthenticationCredential={"AccessKeyId": xks_access_key(), "RawSecretAccessKey": xks_secret()})
    cases = [
        ({"XksProxyUriEndpoint": "ftp://xks.example.com"}, "xksProxyUriEndpoint"),
        ({"XksProxyUriEndpoint": "https://xks.example.com/path"}, "xksProxyUriEndpoint"),
        ({"XksProxyUriPath": "/kms/xks/v1/extra"}, "xksProxyUriPath"),
        ({"XksProxyUriPath": "kms/xks/v1x"}, "xksProxyUriPath"),
        ({"XksProxyAuthenticationCredential": {"AccessKeyId": "lowercase" * 3, "RawSecretAccessKey": xks_secret()}},
         "xksProxyAuthenticationCredential.accessKeyId"),
        ({"XksProxyAuthenticationCredential": {"AccessKeyId": xks_access_key(), "RawSecretAccessKey": "!" * 44}},
         "xksProxyAuthenticationCredential.rawSecretAccessKey"),
    ]
    for over, member in cases:
        with aws_error("ValidationException", 400) as ei:
            kms.create_custom_key_store(**{**base, **over})
        assert f"at '{member}'" in ei.value.response["Error"]["Message"]
        # The secret is never echoed.
        assert base["XksProxyAuthenticationCredential"]["RawSecretAccessKey"] not in ei.value.response["Error"]["Message"]
    with aws_error("ValidationException", 400):
        kms.create_custom_key_store(**{k: v for k, v in base.items() if k != "XksProxyUriPath"})
    with aws_error("ValidationException", 400):
        kms.describe_custom_key_stores(CustomKeyStoreId="cks-1", CustomKeyStoreName="n")
    with aws_error("ValidationException", 400):
        kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId="cks-1234567890abcdef0")
    with aws_error("CustomKeyStoreNotFoundException", 400):
        kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId="cks-1234567890abcdef0", XksKeyId="k")
    with aws_error("CustomKeyStoreNotFoundException", 400):
        kms.update_custom_key_store(CustomKeyStoreId="cks-1234567890abcdef0", NewCustomKeyStoreName="x")
    with aws_error("CustomKeyStoreNotFoundException", 400):
        kms.delete_custom_key_store(CustomKeyStoreId="cks-1234567890abcdef0")
    with aws_error("CustomKeyStoreNotFoundException", 400):
        kms.disconnect_custom_key_store(CustomKeyStoreId="cks-1234567890abcdef0")
    # VPC endpoint services: Rampart has none, so the one named cannot be found.
    with aws_error("XksProxyVpcEndpointServiceNotFoundException", 400):
        kms.create_custom_key_store(**{**base, "XksProxyConnectivity": "VPC_ENDPOINT_SERVICE",
                                       "XksProxyVpcEndpointServiceName": "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0"})


def test_cloudhsm_cluster_not_found(kms):
    with aws_error("CloudHsmClusterNotFoundException", 400):
        kms.create_custom_key_store(CustomKeyStoreName="hsm", CloudHsmClusterId="cluster-234abcdefgh",
                                    TrustAnchorCertificate="-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----",
                                    KeyStorePassword="kmsPswd1")
    with aws_error("ValidationException", 400):
        kms.create_custom_key_store(CustomKeyStoreName="hsm", CloudHsmClusterId="cluster-234abcdefgh")
    with aws_error("CustomKeyStoreNotFoundException", 400):
        kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId="cks-1234567890abcdef0")


def test_https_required_without_the_flag(server):
    """The shared server runs without --dev or RAMPART_KMS_XKS_ALLOW_HTTP: AWS's https:// pattern."""
    kms = server.client("kms")
    with aws_error("ValidationException", 400) as ei:
        kms.create_custom_key_store(
            CustomKeyStoreName="h", CustomKeyStoreType="EXTERNAL_KEY_STORE", XksProxyConnectivity="PUBLIC_ENDPOINT",
            XksProxyUriEndpoint="http://127.0.0.1:9", XksProxyUriPath="/kms/xks/v1",
            XksProxyAuthenticationCredential={"AccessKeyId": xks_access_key(), "RawSecretAccessKey": xks_secret()})
    assert "^https://[a-zA-Z0-9.-]+$" in ei.value.response["Error"]["Message"]


def test_authorization_and_trail(xks_server, kms, proxy):
    """kms:*CustomKeyStore* on "*" through IAM policies; the proxy's secret never in the trail."""
    iam = xks_server.client("iam")
    user = f"xks-{secrets.token_hex(4)}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(policy(
        allow("kms:DescribeCustomKeyStores"))))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    limited = xks_server.client("kms", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    limited.describe_custom_key_stores()
    with aws_error("AccessDeniedException", 400):
        create_store(limited, proxy)
    assert proxy.calls["health"] == 0  # refused before KMS called the proxy

    sid = create_store(kms, proxy)
    trail = xks_server.client("cloudtrail")
    events = trail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName",
                                                    "AttributeValue": "CreateCustomKeyStore"}])["Events"]
    assert events
    text = json.dumps([e["CloudTrailEvent"] for e in events])
    assert proxy.secret not in text
    assert sid in text
    kms.delete_custom_key_store(CustomKeyStoreId=sid)


def test_proxy_secret_not_on_disk(xks_server, kms, proxy):
    """The proxy credential's secret is sealed before it reaches the store."""
    sid = create_store(kms, proxy)
    secret = proxy.secret.encode()
    for root, _, files in os.walk(xks_server.data_dir):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                assert secret not in fh.read(), f
    for f in os.listdir(xks_server.workdir):
        if f.startswith("server-"):
            with open(os.path.join(xks_server.workdir, f), "rb") as fh:
                assert secret not in fh.read(), f
    kms.delete_custom_key_store(CustomKeyStoreId=sid)


def test_describe_pages(kms, proxy):
    # The same proxy under two endpoint names (the endpoint + path is unique per store).
    ids = {create_store(kms, proxy, XksProxyUriEndpoint=f"http://{host}:{proxy.port}")
           for host in ("127.0.0.1", "localhost")}
    first = kms.describe_custom_key_stores(Limit=1)
    assert len(first["CustomKeyStores"]) == 1 and first["Truncated"] is True and first["NextMarker"]
    seen = [s["CustomKeyStoreId"] for page in kms.get_paginator("describe_custom_key_stores").paginate(
        PaginationConfig={"PageSize": 1}) for s in page["CustomKeyStores"]]
    assert ids <= set(seen) and len(seen) == len(set(seen))
    for sid in ids:
        kms.delete_custom_key_store(CustomKeyStoreId=sid)


def test_secrets_manager_under_an_external_key_store_key(xks_server, kms, proxy):
    """Secrets Manager's envelope encryption with a KMS key in an external key store: the secret's
    data key is double-encrypted, so reading the secret needs the proxy."""
    sid = create_store(kms, proxy)
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    kid = kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=sid, XksKeyId="xks-key-1")["KeyMetadata"]["KeyId"]
    sm = xks_server.client("secretsmanager")
    name = f"xks-{secrets.token_hex(4)}"
    sm.create_secret(Name=name, KmsKeyId=kid, SecretString="behind the proxy")
    before = proxy.calls["decrypt"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "behind the proxy"
    assert proxy.calls["decrypt"] == before + 1
    proxy.stop()
    with pytest.raises(Exception):
        sm.get_secret_value(SecretId=name)
