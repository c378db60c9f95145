"""The server's edge against misbehaving clients: connections that hold on, malformed or oversized
bodies, and inputs that would make errors (and their audit records) as large as themselves."""

from __future__ import annotations

import functools
import resource
import socket
import subprocess
import urllib.parse

import support
from botocore.awsrequest import AWSRequest
from support import IAM_VERSION, STS_VERSION, query_request, random_key_id, random_secret, send, send_request, sign

BOUND = 30.0  # seconds; far above anything the server should take


def raw_exchange(port: int, data: bytes) -> bytes:
    """Send `data` on a fresh connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=BOUND) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_health_answers_with_300_open_connections_under_256_files(spawn_server, monkeypatch):
    """Idle and half-sent connections beyond what the open-file limit allows do not stop the
    server: the oldest idle ones make room, health and signed calls are answered."""
    limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))  # noqa: E731
    monkeypatch.setattr(support.subprocess, "Popen", functools.partial(subprocess.Popen, preexec_fn=limit))
    srv = spawn_server(ephemeral=True, data_dir=None, account_id=support.random_account_id(),
                       access_key_id=random_key_id(), secret_access_key=random_secret())
    monkeypatch.undo()
    held = []
    try:
        for i in range(300):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=BOUND)
            if i % 2:
                s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: app")
            held.append(s)
        answer = raw_exchange(srv.port, b"GET /_rampart/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        assert srv.client("sts").get_caller_identity()["Account"] == srv.account_id
    finally:
        for s in held:
            s.close()
    assert srv.stop() == 0, srv.logs()


def test_malformed_chunked_body_is_400(server):
    answer = raw_exchange(
        server.port,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nZZ\r\nAction=ListUsers\r\n0\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert b"<Code>IncompleteBody</Code>" in answer, answer[:600]


def test_oversized_body_is_refused_before_it_is_read(server):
    # A declared length beyond the awsQuery bound: answered without the body being sent.
    answer = raw_exchange(
        server.port,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 2000000\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"RequestEntityTooLarge" in answer


def test_errors_do_not_echo_huge_inputs(server):
    # An unknown key with a 600 KB Action: the error names a bounded prefix of it.
    action = "A" * 600_000
    req = query_request(server.endpoint, {"Action": action, "Version": IAM_VERSION})
    sign(req, random_key_id(), random_secret())
    resp = send_request(req)
    assert resp.status == 403 and len(resp.body) < 2_000, (resp.status, len(resp.body))
    req = query_request(server.endpoint, {"Action": action, "Version": IAM_VERSION})
    sign(req, server.access_key_id, server.secret_access_key)
    resp = send_request(req)
    assert resp.status == 400 and len(resp.body) < 2_000, (resp.status, len(resp.body))
    assert action[:300] not in resp.text

    # An unsigned AssumeRoleWithSAML with an oversized assertion: refused without repeating it.
    assertion = "QUJD" * 150_000
    body = urllib.parse.urlencode({
        "Action": "AssumeRoleWithSAML", "Version": STS_VERSION, "RoleArn": "arn:aws:iam::123456789012:role/r",
        "PrincipalArn": "arn:aws:iam::123456789012:saml-provider/p", "SAMLAssertion": assertion,
    })
    resp = send("POST", f"{server.endpoint}/", {"Content-Type": "application/x-www-form-urlencoded"}, body)
    assert resp.status == 400, resp.text[:500]
    assert len(resp.body) < 2_000 and "QUJDQUJD" not in resp.text, resp.text[:500]


def test_malformed_mfa_codes_are_not_echoed(server, sts):
    import botocore.exceptions

    code = "12345x"
    try:
        sts.get_session_token(SerialNumber="arn:aws:iam::123456789012:mfa/nobody", TokenCode=code)
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "ValidationError", e.response
        assert code not in e.response["Error"]["Message"], e.response["Error"]["Message"]
        assert "tokenCode" in e.response["Error"]["Message"]
    else:
        raise AssertionError("a malformed TokenCode was accepted")


def test_a_refused_oversized_call_is_still_recorded(spawn_server):
    """413s are recorded like any call of the service their signature names (issue 16: every
    request that reaches a service has a record)."""
    key = random_key_id()
    srv = spawn_server(account_id="246813579024", access_key_id=key, secret_access_key=random_secret())
    body = '{"KeyId": "alias/x", "Plaintext": "%s"}' % ("A" * 1_200_000)
    req = AWSRequest(method="POST", url=srv.endpoint + "/", data=body.encode(),
                     headers={"X-Amz-Target": "TrentService.Encrypt", "Content-Type": "application/x-amz-json-1.1"})
    sign(req, key, srv.secret_access_key, service="kms")
    resp = send_request(req)
    assert resp.status == 413, (resp.status, resp.body[:300])
    events = srv.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "AccessKeyId", "AttributeValue": key}])["Events"]
    refused = [e for e in events if '"RequestEntityTooLarge"' in e["CloudTrailEvent"]]
    assert [e["EventName"] for e in refused] == ["Encrypt"], events
    assert refused[0]["EventSource"] == "kms.amazonaws.com"
