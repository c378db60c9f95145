"""Rotation through configured rotators: a webhook (a Lambda-like HTTP endpoint started by the test
on loopback), a local command, and the built-in PostgreSQL single-user rotator against a real
server. Rotation runs in the background as in AWS; tests poll DescribeSecret with a timeout."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from secrets_lambda import rotation_step
from support import REGION, RampartServer, aws_error, make_client, random_account_id, random_key_id, random_secret, \
    require_postgres, unique, wait_until

ROTATION_TIMEOUT = 30.0


def lambda_arn(account_id: str, name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{account_id}:function:{name}"


class Hook:
    """A webhook rotator: receives {Step, SecretId, ClientRequestToken}, answers 200 or 500."""

    def __init__(self):
        self.events: list[dict] = []
        self.sm = None
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                hook.events.append(body)
                fail = "testSecret" if "fail" in body["SecretId"] else None
                try:
                    rotation_step(hook.sm, body, fail)
                    code = 200
                except Exception:  # noqa: BLE001 - any failure is a failed step, as for a Lambda
                    code = 500
                self.send_response(code)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/rotate"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


COMMAND = r'''
import json, os, sys
sys.path.insert(0, os.environ["ROT_TESTS_DIR"])
import boto3
from secrets_lambda import rotation_step
event = json.load(sys.stdin)
assert event["Step"] == os.environ["RAMPART_ROTATION_STEP"]
sm = boto3.client("secretsmanager", region_name=os.environ["ROT_REGION"], endpoint_url=os.environ["ROT_ENDPOINT"],
                  aws_access_key_id=os.environ["ROT_KEY"], aws_secret_access_key=os.environ["ROT_SECRET"])
try:
    rotation_step(sm, event, "setSecret" if "fail" in event["SecretId"] else None)
except Exception as e:
    print(f"step failed: {type(e).__name__}", file=sys.stderr)
    sys.exit(3)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def rot(tmp_path_factory):
    """A server with three rotators: webhook `hook`, command `script`, built-in `pg`."""
    work = tmp_path_factory.mktemp("rotation")
    hook = Hook()
    account, key, secret = random_account_id(), random_key_id(), random_secret()
    port = free_port()
    script = work / "rotate.py"
    script.write_text(COMMAND)
    from pathlib import Path

    config = {"rotators": {
        "hook": {"type": "webhook", "url": hook.url, "timeout_seconds": 20},
        "script": {"type": "command", "command": [sys.executable, str(script)], "timeout_seconds": 30, "env": {
            "ROT_TESTS_DIR": str(Path(__file__).parent), "ROT_REGION": REGION,
            "ROT_ENDPOINT": f"http://127.0.0.1:{port}", "ROT_KEY": key, "ROT_SECRET": secret,
            "PATH": "/usr/bin:/bin", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true"}},
        "pg": {"type": "postgres", "timeout_seconds": 10},
    }}
    (work / "rotators.json").write_text(json.dumps(config))
    srv = RampartServer(work, data_dir=work / "data", account_id=account, access_key_id=key, secret_access_key=secret,
                        extra_env={"RAMPART_SECRETS_ROTATORS": str(work / "rotators.json")})
    # The command rotator calls back on a known port: pin it.
    import support

    orig = support.free_port
    support.free_port = lambda: port
    try:
        srv.start()
    finally:
        support.free_port = orig
    sm = srv.client("secretsmanager")
    hook.sm = sm
    yield srv, sm, hook
    srv.stop()
    hook.httpd.shutdown()


def raw_describe(sm, sid) -> dict:
    """DescribeSecret's JSON as sent (Rampart's RampartRotationStatus is not in botocore's model)."""
    captured = {}

    def grab(http_response, **_):
        captured["body"] = http_response.content

    sm.meta.events.register("after-call.secrets-manager.DescribeSecret", grab)
    try:
        sm.describe_secret(SecretId=sid)
    finally:
        sm.meta.events.unregister("after-call.secrets-manager.DescribeSecret", grab)
    return json.loads(captured["body"])


def wait_rotated(sm, sid, token):
    # Done = the rotator's finishSecret moved AWSCURRENT and Rampart then removed AWSPENDING.
    ok = wait_until(lambda: sm.describe_secret(SecretId=sid)["VersionIdsToStages"].get(token) == ["AWSCURRENT"],
                    timeout=ROTATION_TIMEOUT)
    assert ok, f"rotation did not finish: {raw_describe(sm, sid)}"


def wait_failed(sm, sid):
    status = wait_until(lambda: raw_describe(sm, sid).get("RampartRotationStatus"), timeout=ROTATION_TIMEOUT)
    assert status, "rotation failure was not reported"
    return status


def test_webhook_rotation_success(rot):
    srv, sm, hook = rot
    name = unique("rot-ok")
    v1 = str(uuid.uuid4())
    sm.create_secret(Name=name, SecretString="initial", ClientRequestToken=v1)
    out = sm.rotate_secret(SecretId=name, RotationLambdaARN=lambda_arn(srv.account_id, "hook"),
                           RotationRules={"AutomaticallyAfterDays": 30})
    token = out["VersionId"]
    wait_rotated(sm, name, token)
    d = sm.describe_secret(SecretId=name)
    assert d["VersionIdsToStages"] == {v1: ["AWSPREVIOUS"], token: ["AWSCURRENT"]}
    assert d["RotationEnabled"] is True and d["RotationLambdaARN"] == lambda_arn(srv.account_id, "hook")
    assert d["RotationRules"]["AutomaticallyAfterDays"] == 30
    assert "LastRotatedDate" in d and "NextRotationDate" in d
    assert (d["NextRotationDate"] - d["LastRotatedDate"]).days == 30
    assert sm.get_secret_value(SecretId=name)["SecretString"] != "initial"
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "initial"
    steps = [e["Step"] for e in hook.events if e["ClientRequestToken"] == token]
    assert steps == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    ev = next(e for e in hook.events if e["ClientRequestToken"] == token)
    assert ev["SecretId"] == d["ARN"]
    # Rotating again (the Lambda's ClientRequestToken idempotency: a given token is honoured).
    t2 = str(uuid.uuid4())
    assert sm.rotate_secret(SecretId=name, ClientRequestToken=t2)["VersionId"] == t2
    wait_rotated(sm, name, t2)
    assert sm.describe_secret(SecretId=name)["VersionIdsToStages"] == {token: ["AWSPREVIOUS"], t2: ["AWSCURRENT"]}


def test_webhook_rotation_failure_keeps_current(rot):
    srv, sm, hook = rot
    name = unique("rot-fail")
    v1 = str(uuid.uuid4())
    sm.create_secret(Name=name, SecretString="keep-me", ClientRequestToken=v1)
    token = sm.rotate_secret(SecretId=name, RotationLambdaARN=lambda_arn(srv.account_id, "hook"))["VersionId"]
    status = wait_failed(sm, name)
    assert status["Step"] == "testSecret" and status["VersionId"] == token and "HTTP 500" in status["Message"]
    d = sm.describe_secret(SecretId=name)
    assert d["VersionIdsToStages"] == {v1: ["AWSCURRENT"], token: ["AWSPENDING"]}
    assert "LastRotatedDate" not in d
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "keep-me"
    with aws_error("InvalidRequestException", 400, "A previous rotation isn't complete. That rotation will be reattempted."):
        sm.rotate_secret(SecretId=name)
    assert "keep-me" not in srv.logs()


def test_rotate_errors(rot):
    srv, sm, _ = rot
    name = unique("rot-err")
    sm.create_secret(Name=name, SecretString="x")
    with aws_error("AccessDeniedException", 400, match="cannot invoke the specified Lambda function"):
        sm.rotate_secret(SecretId=name, RotationLambdaARN=lambda_arn(srv.account_id, "not-registered"))
    with aws_error("InvalidRequestException", 400):
        sm.rotate_secret(SecretId=name)
    with aws_error("InvalidParameterException", 400):
        sm.rotate_secret(SecretId=name, RotationLambdaARN=lambda_arn(srv.account_id, "hook"),
                         RotationRules={"AutomaticallyAfterDays": 2, "ScheduleExpression": "rate(2 days)"})
    with aws_error("InvalidParameterException", 400):
        sm.rotate_secret(SecretId=name, RotationLambdaARN=lambda_arn(srv.account_id, "hook"),
                         RotationRules={"ScheduleExpression": "rate(1 hours)"})


def test_schedule_without_immediate_rotation_and_cancel(rot):
    srv, sm, hook = rot
    name = unique("rot-sched")
    v1 = str(uuid.uuid4())
    sm.create_secret(Name=name, SecretString="x", ClientRequestToken=v1)
    out = sm.rotate_secret(SecretId=name, RotationLambdaARN=lambda_arn(srv.account_id, "hook"), RotateImmediately=False,
                           RotationRules={"ScheduleExpression": "cron(0 16 1,15 * ? *)", "Duration": "2h"})
    assert "VersionId" not in out
    d = sm.describe_secret(SecretId=name)
    assert d["RotationEnabled"] is True and d["VersionIdsToStages"] == {v1: ["AWSCURRENT"]}
    assert d["RotationRules"] == {"ScheduleExpression": "cron(0 16 1,15 * ? *)", "Duration": "2h"}
    nxt = d["NextRotationDate"]
    assert nxt.day in (1, 15) and (nxt.hour, nxt.minute) == (16, 0)
    sm.cancel_rotate_secret(SecretId=name)
    d = sm.describe_secret(SecretId=name)
    assert d["RotationEnabled"] is False and "NextRotationDate" not in d


def test_command_rotation_success_and_failure(rot):
    srv, sm, _ = rot
    name = unique("rot-cmd")
    sm.create_secret(Name=name, SecretString="before")
    token = sm.rotate_secret(SecretId=name, RotationLambdaARN=lambda_arn(srv.account_id, "script"))["VersionId"]
    wait_rotated(sm, name, token)
    assert sm.get_secret_value(SecretId=name)["SecretString"] != "before"

    failing = unique("rot-cmd-fail")
    sm.create_secret(Name=failing, SecretString="before")
    token = sm.rotate_secret(SecretId=failing, RotationLambdaARN=lambda_arn(srv.account_id, "script"))["VersionId"]
    status = wait_failed(sm, failing)
    assert status["Step"] == "setSecret" and "exit status: 3" in status["Message"]
    assert sm.get_secret_value(SecretId=failing)["SecretString"] == "before"
    assert sm.describe_secret(SecretId=failing)["VersionIdsToStages"][token] == ["AWSPENDING"]


# -- PostgreSQL -------------------------------------------------------------------------------------
PG = {"host": "127.0.0.1", "port": 5432, "dbname": "test"}


def psql(sql: str) -> str:
    out = subprocess.run(["psql", "-h", PG["host"], "-p", str(PG["port"]), "-U", "postgres", "-d", PG["dbname"],
                          "-v", "ON_ERROR_STOP=1", "-Atc", sql], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def pg_available() -> bool:
    try:
        with socket.create_connection((PG["host"], PG["port"]), timeout=1):
            pass
        psql("SELECT 1")
        return True
    except Exception:  # noqa: BLE001
        return False


def password_matches(stored: str, username: str, password: str) -> bool:
    """Whether pg_authid.rolpassword is the verifier of `password` (SCRAM-SHA-256 or md5).

    The test server trusts loopback connections, so logging in with a password proves nothing;
    the stored verifier does: it is derived from the password and nothing else (plus its salt)."""
    if stored.startswith("SCRAM-SHA-256$"):
        iters_salt, keys = stored[len("SCRAM-SHA-256$"):].split("$")
        iterations, salt = iters_salt.split(":")
        stored_key, server_key = keys.split(":")
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        return (base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored_key
                and base64.b64encode(hmac.new(salted, b"Server Key", hashlib.sha256).digest()).decode() == server_key)
    if stored.startswith("md5"):
        return stored == "md5" + hashlib.md5((password + username).encode()).hexdigest()
    return False


def test_postgres_rotation_changes_the_password(rot):
    require_postgres(pg_available(), "127.0.0.1:5432 (database test)")
    srv, sm, _ = rot
    role = "rot_" + uuid.uuid4().hex[:12]
    initial = "Initial-" + uuid.uuid4().hex
    psql(f"CREATE ROLE {role} LOGIN PASSWORD '{initial}'")
    try:
        stored0 = psql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'")
        assert password_matches(stored0, role, initial)
        name = unique("pg")
        secret = {"engine": "postgres", "username": role, "password": initial, **PG}
        sm.create_secret(Name=name, SecretString=json.dumps(secret))
        token = sm.rotate_secret(SecretId=name, RotationLambdaARN=lambda_arn(srv.account_id, "pg"))["VersionId"]
        wait_rotated(sm, name, token)
        new = json.loads(sm.get_secret_value(SecretId=name)["SecretString"])
        assert new["password"] != initial and {k: v for k, v in new.items() if k != "password"} == \
            {k: v for k, v in secret.items() if k != "password"}
        stored1 = psql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'")
        assert stored1 != stored0
        assert password_matches(stored1, role, new["password"])
        assert not password_matches(stored1, role, initial)
        prev = json.loads(sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"])
        assert prev["password"] == initial
        assert new["password"] not in srv.logs()
    finally:
        psql(f"DROP ROLE IF EXISTS {role}")


def test_postgres_rotation_failure_leaves_current(rot):
    require_postgres(pg_available(), "127.0.0.1:5432 (database test)")
    srv, sm, _ = rot
    name = unique("pgbad")
    secret = {"engine": "postgres", "username": "no_such_role_" + uuid.uuid4().hex[:8], "password": "x", **PG}
    sm.create_secret(Name=name, SecretString=json.dumps(secret))
    token = sm.rotate_secret(SecretId=name, RotationLambdaARN=lambda_arn(srv.account_id, "pg"))["VersionId"]
    status = wait_failed(sm, name)
    assert status["Step"] == "setSecret" and status["VersionId"] == token
    assert json.loads(sm.get_secret_value(SecretId=name)["SecretString"]) == secret
