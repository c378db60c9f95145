"""SigV4 authentication as AWS does it: header and presigned query auth, X-Amz-Date and Date,
payload hashing, clock skew, and AWS's error codes for every way a signature can be wrong."""

import datetime as dt
import urllib.parse

import pytest
from botocore import UNSIGNED
from botocore.awsrequest import AWSRequest

from support import (
    IAM_VERSION,
    STS_VERSION,
    aws_error,
    make_client,
    query_request,
    random_key_id,
    random_secret,
    send,
    send_request,
    sign,
    signed_query,
    unique,
    utcnow_naive,
)

INVALID_TOKEN = "The security token included in the request is invalid."
SIG_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)
LIST_USERS = {"Action": "ListUsers", "Version": IAM_VERSION, "MaxItems": "1"}


def assert_error(resp, code, status, codes=()):
    assert resp.status == status, f"HTTP {resp.status}: {resp.text[:500]}"
    assert resp.error_code in (code, *codes), resp.text[:500]
    return resp


# -- failures through boto3 ------------------------------------------------------------------------
def test_unsigned_request(server):
    iam = make_client("iam", server.endpoint, "x", "y", signature_version=UNSIGNED)
    with aws_error("MissingAuthenticationToken", 403):
        iam.list_users()
    sts = make_client("sts", server.endpoint, "x", "y", signature_version=UNSIGNED)
    with aws_error("MissingAuthenticationToken", 403):
        sts.get_caller_identity()


def test_unknown_access_key(server):
    for service, call in (("iam", lambda c: c.list_users()), ("sts", lambda c: c.get_caller_identity())):
        client = make_client(service, server.endpoint, random_key_id(), random_secret())
        with aws_error("InvalidClientTokenId", 403, message=INVALID_TOKEN):
            call(client)


def test_wrong_secret(server):
    for service, call in (("iam", lambda c: c.list_users()), ("sts", lambda c: c.get_caller_identity())):
        client = make_client(service, server.endpoint, server.access_key_id, random_secret())
        with aws_error("SignatureDoesNotMatch", 403, match=r"^The request signature we calculated does not match "
                                                           r"the signature you provided\."):
            call(client)


def test_wrong_secret_of_user_key(server, make_user):
    u = make_user()
    # Change the last character (to one it is not: a secret ending in "x" stays wrong).
    wrong = u.secret_access_key[:-1] + ("y" if u.secret_access_key.endswith("x") else "x")
    client = make_client("sts", server.endpoint, u.access_key_id, wrong)
    with aws_error("SignatureDoesNotMatch", 403):
        client.get_caller_identity()


def test_unknown_session_token(server):
    client = make_client("sts", server.endpoint, random_key_id("ASIA"), random_secret(), token="FwoGZXIvYXdzEBogus" * 8)
    with aws_error("InvalidClientTokenId", 403, codes=("ExpiredToken",)):
        client.get_caller_identity()


# -- clock skew ------------------------------------------------------------------------------------
@pytest.mark.parametrize("minutes", [-20, 20])
def test_clock_skew_beyond_15_minutes(server, minutes):
    when = utcnow_naive() + dt.timedelta(minutes=minutes)
    resp = signed_query(server, LIST_USERS, when=when)
    assert resp.status == 403, resp.text[:500]
    code = resp.error_code
    assert code in ("SignatureDoesNotMatch", "RequestTimeTooSkewed", "RequestExpired"), resp.text[:500]
    if code == "SignatureDoesNotMatch":
        msg = resp.findtext("Error/Message")
        assert ("Signature expired" in msg) if minutes < 0 else ("Signature not yet current" in msg), msg


@pytest.mark.parametrize("minutes", [-10, 10])
def test_clock_skew_within_15_minutes(server, minutes):
    resp = signed_query(server, LIST_USERS, when=utcnow_naive() + dt.timedelta(minutes=minutes))
    assert resp.status == 200, resp.text[:500]


# -- header signing variants -----------------------------------------------------------------------
def test_signed_post_and_get(server):
    assert signed_query(server, LIST_USERS).status == 200
    resp = signed_query(server, LIST_USERS, method="GET")
    assert resp.status == 200, resp.text[:500]
    assert resp.find("ListUsersResult") is not None


def test_date_header_instead_of_x_amz_date(server):
    req = query_request(server.endpoint, LIST_USERS, headers={"Date": "placeholder"})
    sign(req, server.access_key_id, server.secret_access_key)
    assert "X-Amz-Date" not in req.headers and "Date" in req.headers
    resp = send_request(req)
    assert resp.status == 200, resp.text[:500]


def test_unsigned_payload_is_refused(server):
    """Outside S3 the body's hash is always the one signed: a request signed with
    UNSIGNED-PAYLOAD fails (IAM and STS answer SignatureDoesNotMatch), so it cannot be replayed
    with another body either."""
    req = query_request(server.endpoint, LIST_USERS, headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    sign(req, server.access_key_id, server.secret_access_key)
    assert "x-amz-content-sha256" in req.headers["Authorization"]
    assert_error(send_request(req), "SignatureDoesNotMatch", 403)

    params = {"Action": "GetUser", "Version": IAM_VERSION, "UserName": "alice"}
    req = query_request(server.endpoint, params, headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    sign(req, server.access_key_id, server.secret_access_key)
    req.data = urllib.parse.urlencode({**params, "UserName": "mallory"}).encode()
    assert_error(send_request(req), "SignatureDoesNotMatch", 403)

    # A claimed hash that is not the body's: refused as well.
    req = query_request(server.endpoint, LIST_USERS, headers={"X-Amz-Content-SHA256": "0" * 64})
    sign(req, server.access_key_id, server.secret_access_key)
    assert_error(send_request(req), "SignatureDoesNotMatch", 403)


def test_signed_headers_must_be_sent_and_sorted(server):
    req = query_request(server.endpoint, LIST_USERS)
    sign(req, server.access_key_id, server.secret_access_key)
    authz = req.headers["Authorization"]
    signed = authz.split("SignedHeaders=")[1].split(",")[0]
    for forged in (
        ";".join(sorted(signed.split(";") + ["x-not-sent"])),
        ";".join(reversed(signed.split(";"))),
    ):
        del req.headers["Authorization"]
        req.headers["Authorization"] = authz.replace(f"SignedHeaders={signed}", f"SignedHeaders={forged}")
        assert_error(send_request(req), "SignatureDoesNotMatch", 403)


def test_repeated_signature_parameters_are_refused(server):
    req = query_request(server.endpoint, LIST_USERS)
    sign(req, server.access_key_id, server.secret_access_key)
    authz = req.headers["Authorization"]
    credential = authz.split("Credential=")[1].split(",")[0]
    del req.headers["Authorization"]
    req.headers["Authorization"] = f"{authz}, Credential={credential}"
    assert_error(send_request(req), "IncompleteSignature", 400)


def test_h2c_prior_knowledge(server):
    """HTTP/2 without TLS: the host is the :authority pseudo-header, and it is what was signed."""
    import shutil
    import subprocess

    curl = shutil.which("curl")
    assert curl, "curl (with HTTP/2) is needed for this test"
    out = subprocess.run(
        [curl, "-sS", "--http2-prior-knowledge", "-w", "\n%{http_version} %{http_code}",
         "--aws-sigv4", "aws:amz:us-east-1:sts", "--user", f"{server.access_key_id}:{server.secret_access_key}",
         "-H", "Content-Type: application/x-www-form-urlencoded",
         "--data", "Action=GetCallerIdentity&Version=2011-06-15", f"{server.endpoint}/"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    body, status = out.stdout.rsplit("\n", 1)
    assert status == "2 200", out.stdout
    assert "<GetCallerIdentityResult>" in body, body


def test_explicit_payload_hash_header(server):
    import hashlib

    req = query_request(server.endpoint, LIST_USERS)
    req.headers["X-Amz-Content-SHA256"] = hashlib.sha256(req.data).hexdigest()
    sign(req, server.access_key_id, server.secret_access_key)
    assert send_request(req).status == 200


def test_tampered_body(server):
    req = query_request(server.endpoint, {"Action": "GetUser", "Version": IAM_VERSION, "UserName": "alice"})
    sign(req, server.access_key_id, server.secret_access_key)
    req.data = urllib.parse.urlencode({"Action": "GetUser", "Version": IAM_VERSION, "UserName": "mallory"}).encode()
    assert_error(send_request(req), "SignatureDoesNotMatch", 403)


def test_tampered_signed_header(server):
    req = query_request(server.endpoint, LIST_USERS, headers={"X-Amz-Meta-Note": "original"})
    sign(req, server.access_key_id, server.secret_access_key)
    req.headers["X-Amz-Meta-Note"] = "changed"
    assert_error(send_request(req), "SignatureDoesNotMatch", 403)


def test_extra_unsigned_header_is_ignored(server):
    req = query_request(server.endpoint, LIST_USERS)
    sign(req, server.access_key_id, server.secret_access_key)
    req.headers["X-Added-After-Signing"] = "1"
    assert send_request(req).status == 200


def test_signature_error_body_for_wrong_secret(server):
    resp = signed_query(server, LIST_USERS, secret=random_secret())
    assert_error(resp, "SignatureDoesNotMatch", 403)
    assert resp.findtext("Error/Message").startswith(SIG_MISMATCH[:60])
    assert resp.findtext("Error/Type") == "Sender"


def test_incomplete_signature_missing_signature_part(server):
    req = query_request(server.endpoint, LIST_USERS)
    sign(req, server.access_key_id, server.secret_access_key)
    auth = req.headers["Authorization"]
    req.headers["Authorization"] = auth.split(", Signature=")[0]
    assert_error(send_request(req), "IncompleteSignature", 400)


def test_incomplete_signature_missing_date(server):
    req = query_request(server.endpoint, LIST_USERS)
    sign(req, server.access_key_id, server.secret_access_key)
    del req.headers["X-Amz-Date"]
    assert_error(send_request(req), "IncompleteSignature", 400)


def test_incomplete_signature_garbage_authorization(server):
    req = query_request(server.endpoint, LIST_USERS, headers={"X-Amz-Date": "20240101T000000Z"})
    req.headers["Authorization"] = "AWS4-HMAC-SHA256 garbage"
    resp = send_request(req)
    assert resp.status in (400, 403) and resp.error_code in ("IncompleteSignature", "InvalidSignatureException"), resp.text


def test_malformed_credential_scope(server):
    req = query_request(server.endpoint, LIST_USERS)
    sign(req, server.access_key_id, server.secret_access_key)
    # Credential=<key>/<date>/<region>/<service>/aws4_request with the terminator missing.
    req.headers["Authorization"] = req.headers["Authorization"].replace("/aws4_request", "")
    resp = send_request(req)
    assert resp.status in (400, 403) and resp.error_code in ("IncompleteSignature", "SignatureDoesNotMatch"), resp.text


# -- presigned URLs (query-string auth) ------------------------------------------------------------
def test_presigned_get_url_for_iam(server, iam):
    name = unique("presigned")
    iam.create_user(UserName=name)
    url = iam.generate_presigned_url("get_user", Params={"UserName": name}, ExpiresIn=300, HttpMethod="GET")
    assert "X-Amz-Signature=" in url and "X-Amz-Credential=" in url
    resp = send("GET", url)
    assert resp.status == 200, resp.text[:500]
    assert resp.findtext("GetUserResult/User/UserName") == name


def test_presigned_get_url_for_sts(server, account_id):
    sts = make_client("sts", server.endpoint, server.access_key_id, server.secret_access_key)
    url = sts.generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET")
    resp = send("GET", url)
    assert resp.status == 200, resp.text[:500]
    assert resp.findtext("GetCallerIdentityResult/Arn") == f"arn:aws:iam::{account_id}:root"


def test_presigned_url_as_user(make_user):
    u = make_user()
    resp = send("GET", u.sts.generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET"))
    assert resp.status == 200 and resp.findtext("GetCallerIdentityResult/Arn") == u.arn


def test_presigned_url_tampered(server, iam):
    url = iam.generate_presigned_url("get_user", Params={"UserName": "alice"}, ExpiresIn=300, HttpMethod="GET")
    assert "UserName=alice" in url
    assert_error(send("GET", url.replace("UserName=alice", "UserName=mallory")), "SignatureDoesNotMatch", 403)


def test_presigned_url_method_is_signed(server, iam):
    """A URL presigned for POST (botocore's default for awsQuery) does not verify as a GET."""
    url = iam.generate_presigned_url("list_users", ExpiresIn=300)
    assert_error(send("GET", url), "SignatureDoesNotMatch", 403)


def _presigned_at(server, minutes_ago, expires_in):
    from unittest import mock

    iam = make_client("iam", server.endpoint, server.access_key_id, server.secret_access_key)
    past = utcnow_naive() - dt.timedelta(minutes=minutes_ago)
    with mock.patch("botocore.auth.get_current_datetime", return_value=past):
        return iam.generate_presigned_url("list_users", ExpiresIn=expires_in, HttpMethod="GET")


def test_presigned_url_query_services_use_the_15_minute_window(server):
    """IAM and STS ignore X-Amz-Expires: a presigned URL is good for 15 minutes from X-Amz-Date
    (aws/aws-sdk-go#2167; EKS tokens rely on it), however short its X-Amz-Expires."""
    resp = send("GET", _presigned_at(server, minutes_ago=10, expires_in=60))
    assert resp.status == 200, resp.text[:500]


def test_presigned_url_expired(server):
    resp = send("GET", _presigned_at(server, minutes_ago=20, expires_in=3600))
    assert_error(resp, "SignatureDoesNotMatch", 403)
    assert "Signature expired" in resp.findtext("Error/Message")


def test_presigned_url_unknown_key(server):
    iam = make_client("iam", server.endpoint, random_key_id(), random_secret())
    resp = send("GET", iam.generate_presigned_url("list_users", ExpiresIn=60, HttpMethod="GET"))
    assert_error(resp, "InvalidClientTokenId", 403)


def test_presigned_url_user_without_permission(make_user, account_id):
    u = make_user()
    resp = send("GET", u.iam.generate_presigned_url("list_users", ExpiresIn=60, HttpMethod="GET"))
    assert_error(resp, "AccessDenied", 403)
    assert resp.findtext("Error/Message").startswith(f"User: {u.arn} is not authorized to perform: iam:ListUsers")


def test_sts_raw_signed_post(server, account_id):
    resp = signed_query(server, {"Action": "GetCallerIdentity", "Version": STS_VERSION}, service="sts")
    assert resp.status == 200, resp.text
    assert resp.findtext("GetCallerIdentityResult/Account") == account_id


def test_long_term_key_with_session_token(server):
    """A session token sent with a long-term (AKIA) key is not a valid token."""
    client = make_client("sts", server.endpoint, server.access_key_id, server.secret_access_key, token="bogus-token")
    with aws_error("InvalidClientTokenId", 403, message=INVALID_TOKEN):
        client.get_caller_identity()
