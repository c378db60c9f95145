"""AssumeRoleWithWebIdentity against IAM OIDC providers: the test is its own identity provider — it
signs RS256 JWTs and serves the discovery document and JWKS over HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from support import aws_error, doc, make_client, unique


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(n: int) -> str:
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Idp:
    """A minimal OpenID Connect issuer: discovery, JWKS, and token signing."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "key-1"
        self.fetches = 0
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": idp.issuer, "jwks_uri": f"{idp.issuer}/keys"}
                elif self.path == "/keys":
                    idp.fetches += 1
                    pub = idp.key.public_key().public_numbers()
                    body = {"keys": [{"kty": "RSA", "kid": idp.kid, "use": "sig", "alg": "RS256",
                                      "n": uint(pub.n), "e": uint(pub.e)}]}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return self.issuer.removeprefix("http://")

    def token(self, key=None, kid=None, **claims) -> str:
        now = int(time.time())
        payload = {"iss": self.issuer, "sub": "user-1", "aud": "my-app", "iat": now, "exp": now + 600}
        payload.update(claims)
        header = {"alg": "RS256", "typ": "JWT", "kid": kid or self.kid}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
        sig = (key or self.key).sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(sig)}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def idp():
    i = Idp()
    yield i
    i.close()


@pytest.fixture
def provider(iam, idp):
    arn = iam.create_open_id_connect_provider(Url=idp.issuer, ClientIDList=["my-app"])["OpenIDConnectProviderArn"]
    yield arn
    iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)


def web_role(iam, provider_arn: str, host: str, sub: str = "user-1") -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{host}:aud": "my-app", f"{host}:sub": sub}},
        }],
    }
    name = unique("webrole")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=doc(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=doc(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:ListRoles", "Resource": "*"}]}))
    return arn


def anonymous_sts(server):
    # AssumeRoleWithWebIdentity is unsigned in botocore's model: the keys given here are not sent.
    return make_client("sts", server.endpoint, "AKIAUNUSEDUNUSED0000", "unused")


def test_provider_crud(iam, idp, account_id):
    arn = iam.create_open_id_connect_provider(
        Url=idp.issuer + "/", ClientIDList=["a", "b"], ThumbprintList=["a" * 40], Tags=[{"Key": "k", "Value": "v"}]
    )["OpenIDConnectProviderArn"]
    assert arn == f"arn:aws:iam::{account_id}:oidc-provider/{idp.host}"
    got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert got["Url"] == idp.host
    assert got["ClientIDList"] == ["a", "b"] and got["ThumbprintList"] == ["a" * 40]
    assert got["Tags"] == [{"Key": "k", "Value": "v"}]
    assert arn in [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]]
    with aws_error("EntityAlreadyExists", 409):
        iam.create_open_id_connect_provider(Url=idp.issuer, ClientIDList=["a"])
    iam.update_open_id_connect_provider_thumbprint(OpenIDConnectProviderArn=arn, ThumbprintList=["b" * 40])
    iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="c")
    iam.remove_client_id_from_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="a")
    got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert got["ClientIDList"] == ["b", "c"] and got["ThumbprintList"] == ["b" * 40]
    iam.tag_open_id_connect_provider(OpenIDConnectProviderArn=arn, Tags=[{"Key": "x", "Value": "y"}])
    assert len(iam.list_open_id_connect_provider_tags(OpenIDConnectProviderArn=arn)["Tags"]) == 2
    iam.untag_open_id_connect_provider(OpenIDConnectProviderArn=arn, TagKeys=["k"])
    assert iam.list_open_id_connect_provider_tags(OpenIDConnectProviderArn=arn)["Tags"] == [{"Key": "x", "Value": "y"}]
    iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    with aws_error("NoSuchEntity", 404):
        iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    # Plain http is only for loopback issuers; thumbprints are 40 hex characters.
    with aws_error("InvalidInput", 400):
        iam.create_open_id_connect_provider(Url="http://idp.example.com", ClientIDList=["a"])
    with aws_error("InvalidInput", 400):
        iam.create_open_id_connect_provider(Url="https://idp.example.com", ThumbprintList=["z" * 40])


def test_assume_role_with_web_identity(server, iam, idp, provider, account_id):
    role = web_role(iam, provider, idp.host)
    sts = anonymous_sts(server)
    r = sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="web", WebIdentityToken=idp.token(),
                                          DurationSeconds=900)
    assert r["SubjectFromWebIdentityToken"] == "user-1"
    assert r["Audience"] == "my-app" and r["Provider"] == idp.issuer
    assert r["Credentials"]["AccessKeyId"].startswith("ASIA")
    name = role.rsplit("/", 1)[1]
    assert r["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{account_id}:assumed-role/{name}/web"
    c = r["Credentials"]
    who = make_client("sts", server.endpoint, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    assert who.get_caller_identity()["Arn"] == r["AssumedRoleUser"]["Arn"]
    s_iam = make_client("iam", server.endpoint, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    s_iam.list_roles()
    with aws_error("AccessDenied", 403):
        s_iam.list_users()


def test_web_identity_rejections(server, iam, idp, provider):
    role = web_role(iam, provider, idp.host)
    sts = anonymous_sts(server)

    def call(token, **kw):
        return sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="web", WebIdentityToken=token, **kw)

    # The trust policy's sub condition.
    with aws_error("AccessDenied", 403):
        call(idp.token(sub="someone-else"))
    # Audience not among the provider's client IDs.
    with aws_error("InvalidIdentityToken", 400, match="audience"):
        call(idp.token(aud="other-app"))
    # Expired.
    with aws_error("ExpiredTokenException", 400):
        call(idp.token(exp=int(time.time()) - 60))
    # Signed by a key the issuer does not publish.
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with aws_error("InvalidIdentityToken", 400):
        call(idp.token(key=stranger))
    # Tampered payload.
    head, payload, sig = idp.token().split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["sub"] = "admin"
    with aws_error("InvalidIdentityToken", 400):
        call(f"{head}.{b64url(json.dumps(forged).encode())}.{sig}")
    # An issuer without a provider in the account.
    with aws_error("InvalidIdentityToken", 400, match="No OpenIDConnect provider"):
        call(idp.token(iss="http://127.0.0.1:1"))
    with aws_error("InvalidIdentityToken", 400):
        call("not-a-jwt")
    # Longer than the role allows.
    with aws_error("ValidationError", 400):
        call(idp.token(), DurationSeconds=7200)
    # The key set was fetched once and cached across these calls.
    assert idp.fetches == 1


def test_cli_assume_role_with_web_identity(aws_cli, iam, idp, provider):
    role = web_role(iam, provider, idp.host)
    out = aws_cli("sts", "assume-role-with-web-identity", "--role-arn", role, "--role-session-name", "cli",
                  "--web-identity-token", idp.token(), check=True).json()
    assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
    assert out["SubjectFromWebIdentityToken"] == "user-1"
    bad = aws_cli("sts", "assume-role-with-web-identity", "--role-arn", role, "--role-session-name", "cli",
                  "--web-identity-token", idp.token(aud="nope"))
    assert bad.returncode != 0 and "InvalidIdentityToken" in bad.stderr


class StalledIssuer:
    """An issuer that accepts connections and never answers (a hung identity provider)."""

    def __init__(self):
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.issuer = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = threading.Semaphore(0)
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            self.accepted.release()

    def close(self):
        for c in self.conns:
            c.close()
        self.sock.close()


def test_calls_stuck_on_a_hung_issuer_do_not_delay_other_calls(spawn_server):
    """Outbound fetches run off the serving threads: with four calls waiting on hung identity
    providers (more than there are serving threads), health and signed calls are still answered."""
    srv = spawn_server(extra_env={"RAMPART_OIDC_FETCH_TIMEOUT_MS": "60000"}, access_key_id="AKIA" + "H" * 16,
                       secret_access_key="hung-issuer-test-secret", extra_args=["--threads", "2"])
    iam = srv.client("iam")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuers = [StalledIssuer() for _ in range(4)]
    results: list[str] = []
    try:
        calls = []
        for i, hung in enumerate(issuers):
            arn = iam.create_open_id_connect_provider(Url=hung.issuer, ClientIDList=["my-app"])["OpenIDConnectProviderArn"]
            role = web_role(iam, arn, hung.issuer.removeprefix("http://"))
            now = int(time.time())
            header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "k"}).encode())
            payload = b64url(json.dumps({"iss": hung.issuer, "sub": "user-1", "aud": "my-app", "iat": now,
                                         "exp": now + 600}).encode())
            sig = key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
            token = f"{header}.{payload}.{b64url(sig)}"

            def call(role=role, token=token):
                try:
                    anonymous_sts(srv).assume_role_with_web_identity(
                        RoleArn=role, RoleSessionName="stuck", WebIdentityToken=token)
                    results.append("ok")
                except Exception as e:  # the hung issuer is closed at the end: the call fails then
                    results.append(type(e).__name__)

            calls.append(threading.Thread(target=call))
        for t in calls:
            t.start()
        for hung in issuers:  # every call is now waiting on its issuer
            assert hung.accepted.acquire(timeout=30), f"the call never reached its issuer: {results}"
        status, _ = srv.health()
        assert status == 200
        assert srv.client("sts").get_caller_identity()["Account"]
        assert all(t.is_alive() for t in calls), "the slow calls were still waiting while others were answered"
    finally:
        for hung in issuers:
            hung.close()
    for t in calls:
        t.join(60)
    assert len(results) == 4 and "ok" not in results, results
