"""Outbound web identity federation: IAM Enable/Disable/GetOutboundWebIdentityFederationInfo and
STS GetWebIdentityToken. Every token is verified here as an external service would: the issuer's
discovery document (fetched over HTTP from the issuer URL Rampart reports) names the JWKS, and the
signature is checked against it with `cryptography` (RS256 and ES384)."""

from __future__ import annotations

import base64
import json
import time

import pytest
import urllib3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from support import RampartServer, allow, aws_error, doc, make_client, policy, random_account_id, random_key_id, \
    random_secret, unique

NS = "https://sts.amazonaws.com/"
HTTP = urllib3.PoolManager()


@pytest.fixture(scope="module")
def fed(tmp_path_factory):
    """A server of its own: outbound federation is account-wide state."""
    work = tmp_path_factory.mktemp("outbound")
    srv = RampartServer(work, ephemeral=True, account_id=random_account_id(), access_key_id=random_key_id(),
                        secret_access_key=random_secret()).start()
    yield srv
    srv.stop()


def unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def get_json(url: str) -> dict:
    r = HTTP.request("GET", url)
    assert r.status == 200, (url, r.status, r.data[:200])
    assert r.headers["content-type"].startswith("application/json")
    return json.loads(r.data)


def verify(token: str, issuer: str) -> tuple[dict, dict]:
    """Verify `token` against the issuer's published keys, as a relying party does; returns
    (header, claims)."""
    config = get_json(f"{issuer}/.well-known/openid-configuration")
    assert config["issuer"] == issuer
    assert config["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    jwks = get_json(config["jwks_uri"])
    h64, p64, s64 = token.split(".")
    header = json.loads(unb64(h64))
    claims = json.loads(unb64(p64))
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    assert key["alg"] == header["alg"] and key["use"] == "sig"
    signed, sig = f"{h64}.{p64}".encode(), unb64(s64)
    if header["alg"] == "RS256":
        pub = rsa.RSAPublicNumbers(int.from_bytes(unb64(key["e"]), "big"),
                                   int.from_bytes(unb64(key["n"]), "big")).public_key()
        pub.verify(sig, signed, padding.PKCS1v15(), hashes.SHA256())
        with pytest.raises(InvalidSignature):
            pub.verify(sig, signed + b"x", padding.PKCS1v15(), hashes.SHA256())
    else:
        assert header["alg"] == "ES384" and key["crv"] == "P-384" and len(sig) == 96
        pub = ec.EllipticCurvePublicNumbers(int.from_bytes(unb64(key["x"]), "big"),
                                            int.from_bytes(unb64(key["y"]), "big"), ec.SECP384R1()).public_key()
        der = encode_dss_signature(int.from_bytes(sig[:48], "big"), int.from_bytes(sig[48:], "big"))
        pub.verify(der, signed, ec.ECDSA(hashes.SHA384()))
        with pytest.raises(InvalidSignature):
            pub.verify(der, signed + b"x", ec.ECDSA(hashes.SHA384()))
    assert claims["iss"] == issuer
    return header, claims


def user(fed, iam, statements, tags=None):
    name = unique("fed")
    kwargs = {"UserName": name}
    if tags:
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    arn = iam.create_user(**kwargs)["User"]["Arn"]
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=doc(policy(*statements)))
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return arn, make_client("sts", fed.endpoint, k["AccessKeyId"], k["SecretAccessKey"])


def test_lifecycle_issuer_documents_and_tokens(fed):
    iam, sts = fed.client("iam"), fed.client("sts")
    with aws_error("FeatureDisabled", 404):
        iam.get_outbound_web_identity_federation_info()
    with aws_error("FeatureDisabled", 404):
        iam.disable_outbound_web_identity_federation()
    with aws_error("OutboundWebIdentityFederationDisabledException", 403):
        sts.get_web_identity_token(Audience=["https://api.example.com"], SigningAlgorithm="RS256")

    issuer = iam.enable_outbound_web_identity_federation()["IssuerIdentifier"]
    assert issuer.startswith(f"{fed.endpoint}/_rampart/oidc/")
    with aws_error("FeatureEnabled", 409):
        iam.enable_outbound_web_identity_federation()
    info = iam.get_outbound_web_identity_federation_info()
    assert info["IssuerIdentifier"] == issuer and info["JwtVendingEnabled"] is True
    jwks = get_json(f"{issuer}/.well-known/jwks.json")
    assert sorted(k["alg"] for k in jwks["keys"]) == ["ES384", "RS256"]
    assert not any("d" in k or "p" in k for k in jwks["keys"]), "no private members published"
    assert HTTP.request("GET", f"{issuer}/.well-known/other").status == 404
    assert HTTP.request("GET", f"{fed.endpoint}/_rampart/oidc/00000000-0000-0000-0000-000000000000"
                               "/.well-known/jwks.json").status == 404

    # The root's token: default duration 300 s, one audience as a string.
    before = int(time.time())
    r = sts.get_web_identity_token(Audience=["https://api.example.com"], SigningAlgorithm="RS256")
    header, claims = verify(r["WebIdentityToken"], issuer)
    assert header["typ"] == "JWT"
    assert claims["aud"] == "https://api.example.com"
    assert claims["sub"] == f"arn:aws:iam::{fed.account_id}:root"
    assert claims["exp"] - claims["iat"] == 300 and claims["iat"] >= before - 1
    assert int(r["Expiration"].timestamp()) == claims["exp"]
    assert claims[NS]["aws_account"] == fed.account_id and claims[NS]["source_region"] == "us-east-1"
    assert "request_tags" not in claims[NS]
    jti = claims["jti"]

    # ES384, several audiences (a list), request tags, an explicit duration.
    r = sts.get_web_identity_token(Audience=["a", "b"], SigningAlgorithm="ES384", DurationSeconds=3600,
                                   Tags=[{"Key": "job", "Value": "42"}, {"Key": "team", "Value": "données"}])
    _, claims = verify(r["WebIdentityToken"], issuer)
    assert claims["aud"] == ["a", "b"] and claims["exp"] - claims["iat"] == 3600
    assert claims[NS]["request_tags"] == {"job": "42", "team": "données"}
    assert claims["jti"] != jti

    # Disabled: no new tokens, but the issuer stays published and earlier tokens still verify.
    iam.disable_outbound_web_identity_federation()
    info = iam.get_outbound_web_identity_federation_info()
    assert info["IssuerIdentifier"] == issuer and info["JwtVendingEnabled"] is False
    with aws_error("OutboundWebIdentityFederationDisabledException", 403):
        sts.get_web_identity_token(Audience=["x"], SigningAlgorithm="RS256")
    verify(r["WebIdentityToken"], issuer)
    # Enabled again: the same issuer.
    assert iam.enable_outbound_web_identity_federation()["IssuerIdentifier"] == issuer


@pytest.fixture(scope="module")
def enabled(fed):
    iam = fed.client("iam")
    try:
        return iam.enable_outbound_web_identity_federation()["IssuerIdentifier"]
    except iam.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "FeatureEnabled"
        return iam.get_outbound_web_identity_federation_info()["IssuerIdentifier"]


def test_validation_before_authorization(fed, enabled):
    iam = fed.client("iam")
    _, sts = user(fed, iam, [{"Effect": "Deny", "Action": "*", "Resource": "*"}])
    raw = make_client("sts", fed.endpoint, sts._request_signer._credentials.access_key,
                      sts._request_signer._credentials.secret_key, parameter_validation=False)
    with aws_error("ValidationError", 400, match="signingAlgorithm"):
        raw.get_web_identity_token(Audience=["a"], SigningAlgorithm="HS256")
    with aws_error("ValidationError", 400, match="durationSeconds"):
        raw.get_web_identity_token(Audience=["a"], SigningAlgorithm="RS256", DurationSeconds=59)
    with aws_error("ValidationError", 400, match="audience"):
        raw.get_web_identity_token(Audience=[f"a{i}" for i in range(11)], SigningAlgorithm="RS256")
    with aws_error("ValidationError", 400, match="audience"):
        raw.get_web_identity_token(SigningAlgorithm="RS256")
    with aws_error("AccessDenied", 403):
        raw.get_web_identity_token(Audience=["a"], SigningAlgorithm="RS256")


def test_users_conditions_and_principal_tags(fed, enabled):
    iam = fed.client("iam")
    cond = {"ForAllValues:StringEquals": {"sts:IdentityTokenAudience": "https://ok.example"},
            "NumericLessThanEquals": {"sts:DurationSeconds": "300"},
            "StringEquals": {"sts:SigningAlgorithm": "ES384"}}
    arn, sts = user(fed, iam, [{"Effect": "Allow", "Action": "sts:GetWebIdentityToken", "Resource": "*",
                                "Condition": cond}], tags={"team": "red"})
    r = sts.get_web_identity_token(Audience=["https://ok.example"], SigningAlgorithm="ES384")
    _, claims = verify(r["WebIdentityToken"], enabled)
    assert claims["sub"] == arn
    assert claims[NS]["principal_tags"] == {"team": "red"}
    for bad in [dict(Audience=["https://other.example"], SigningAlgorithm="ES384"),
                dict(Audience=["https://ok.example"], SigningAlgorithm="RS256"),
                dict(Audience=["https://ok.example"], SigningAlgorithm="ES384", DurationSeconds=301)]:
        with aws_error("AccessDenied", 403, match="sts:GetWebIdentityToken"):
            sts.get_web_identity_token(**bad)


def test_role_sessions_name_the_role_and_cannot_outlive_the_session(fed, enabled):
    iam = fed.client("iam")
    name = unique("fedrole")
    trust = policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{fed.account_id}:root"},
                    "Action": ["sts:AssumeRole", "sts:TagSession"]})
    role_arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=doc(trust),
                               Tags=[{"Key": "team", "Value": "blue"}, {"Key": "env", "Value": "dev"}])["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="p",
                        PolicyDocument=doc(policy(allow("sts:GetWebIdentityToken"))))
    _, caller = user(fed, iam, [allow(["sts:AssumeRole", "sts:TagSession"])])
    creds = caller.assume_role(RoleArn=role_arn, RoleSessionName="s1", DurationSeconds=900,
                               Tags=[{"Key": "team", "Value": "green"}])["Credentials"]
    sts = make_client("sts", fed.endpoint, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    r = sts.get_web_identity_token(Audience=["x"], SigningAlgorithm="RS256", DurationSeconds=600)
    _, claims = verify(r["WebIdentityToken"], enabled)
    assert claims["sub"] == role_arn
    assert claims[NS]["principal_tags"] == {"team": "green", "env": "dev"}
    with aws_error("SessionDurationEscalationException", 403):
        sts.get_web_identity_token(Audience=["x"], SigningAlgorithm="RS256", DurationSeconds=3600)


def test_tokens_stay_out_of_the_audit_trail(fed, enabled):
    sts = fed.client("sts")
    token = sts.get_web_identity_token(Audience=["trail"], SigningAlgorithm="RS256")["WebIdentityToken"]
    ct = fed.client("cloudtrail")
    events = ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName",
                                                 "AttributeValue": "GetWebIdentityToken"}])["Events"]
    assert events
    for e in events:
        assert token not in e["CloudTrailEvent"]
        assert token.split(".")[2] not in e["CloudTrailEvent"]
        record = json.loads(e["CloudTrailEvent"])
        assert record["eventSource"] == "sts.amazonaws.com"
