"""The credential report: GenerateCredentialReport (STARTED, then COMPLETE while a report is fresh)
and GetCredentialReport (ReportNotPresent before one exists), with AWS's CSV columns and values.

Reports are per account and reused for four hours, so each test runs its own server.
"""

import base64
import csv
import hashlib
import hmac
import io
import re
import struct
import time

import pytest

from support import aws_error, make_client, random_account_id, random_key_id, random_secret, recent, unique

COLUMNS = (
    "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,"
    "mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,"
    "access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,"
    "access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,"
    "cert_1_last_rotated,cert_2_active,cert_2_last_rotated"
)
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")


@pytest.fixture
def fresh(spawn_server):
    return spawn_server(
        data_dir=None, ephemeral=True, account_id=random_account_id(), access_key_id=random_key_id(),
        secret_access_key=random_secret(),
    )


def totp(seed_b32: str, step: int) -> str:
    mac = hmac.new(base64.b32decode(seed_b32), struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return f"{(struct.unpack('>I', mac[off:off + 4])[0] & 0x7FFFFFFF) % 10**6:06d}"


def report(iam) -> tuple[str, list[dict]]:
    r = iam.get_credential_report()
    assert r["ReportFormat"] == "text/csv"
    assert recent(r["GeneratedTime"])
    text = r["Content"].decode()
    return text, list(csv.DictReader(io.StringIO(text)))


def test_not_present_then_started_then_complete(fresh):
    iam = fresh.client("iam")
    with aws_error("ReportNotPresent", 410):
        iam.get_credential_report()
    first = iam.generate_credential_report()
    assert first["State"] == "STARTED"
    assert first["Description"] == "No report exists. Starting a new report generation task"
    assert iam.generate_credential_report()["State"] == "COMPLETE"
    text, rows = report(iam)
    assert text.splitlines()[0] == COLUMNS
    root = rows[0]
    assert root["user"] == "<root_account>"
    assert root["arn"] == f"arn:aws:iam::{fresh.account_id}:root"
    assert TIME.match(root["user_creation_time"])
    assert (root["password_enabled"], root["password_last_changed"], root["password_next_rotation"]) == (
        "not_supported", "not_supported", "not_supported")
    assert root["mfa_active"] == "false"
    # The bootstrap root key, which signed the calls above.
    assert root["access_key_1_active"] == "true" and TIME.match(root["access_key_1_last_rotated"])
    assert TIME.match(root["access_key_1_last_used_date"])
    assert root["access_key_1_last_used_region"] == "us-east-1"
    assert root["access_key_1_last_used_service"] == "iam"
    assert [root[c] for c in ("access_key_2_active", "access_key_2_last_rotated", "access_key_2_last_used_date",
                              "access_key_2_last_used_region", "access_key_2_last_used_service")] == ["false"] + ["N/A"] * 4
    assert [root[c] for c in ("cert_1_active", "cert_1_last_rotated", "cert_2_active", "cert_2_last_rotated")] == [
        "false", "N/A", "false", "N/A"]


def test_user_rows(fresh):
    iam = fresh.client("iam")
    iam.update_account_password_policy(MinimumPasswordLength=8, MaxPasswordAge=30)
    plain, full = unique("a-plain"), unique("b-full")
    created = iam.create_user(UserName=plain)["User"]
    iam.create_user(UserName=full)
    iam.create_login_profile(UserName=full, Password="Passw0rd-long")
    k1 = iam.create_access_key(UserName=full)["AccessKey"]
    k2 = iam.create_access_key(UserName=full)["AccessKey"]
    iam.update_access_key(UserName=full, AccessKeyId=k2["AccessKeyId"], Status="Inactive")
    make_client("sts", fresh.endpoint, k1["AccessKeyId"], k1["SecretAccessKey"]).get_caller_identity()
    dev = iam.create_virtual_mfa_device(VirtualMFADeviceName=unique("mfa"))["VirtualMFADevice"]
    seed = dev["Base32StringSeed"].decode()
    s = int(time.time()) // 30 - 1
    iam.enable_mfa_device(UserName=full, SerialNumber=dev["SerialNumber"], AuthenticationCode1=totp(seed, s),
                          AuthenticationCode2=totp(seed, s + 1))

    iam.generate_credential_report()
    _, rows = report(iam)
    by_user = {r["user"]: r for r in rows}
    assert [r["user"] for r in rows] == ["<root_account>", plain, full]

    p = by_user[plain]
    assert p["arn"] == created["Arn"]
    assert TIME.match(p["user_creation_time"])
    assert [p[c] for c in COLUMNS.split(",")[3:]] == (
        ["false", "N/A", "N/A", "N/A", "false"] + ["false", "N/A", "N/A", "N/A", "N/A"] * 2 + ["false", "N/A"] * 2
    )

    f = by_user[full]
    assert f["password_enabled"] == "true"
    assert f["password_last_used"] == "no_information"
    assert TIME.match(f["password_last_changed"]) and TIME.match(f["password_next_rotation"])
    assert f["password_next_rotation"] > f["password_last_changed"]
    assert f["mfa_active"] == "true"
    assert f["access_key_1_active"] == "true" and TIME.match(f["access_key_1_last_rotated"])
    assert TIME.match(f["access_key_1_last_used_date"])
    assert (f["access_key_1_last_used_region"], f["access_key_1_last_used_service"]) == ("us-east-1", "sts")
    assert f["access_key_2_active"] == "false" and TIME.match(f["access_key_2_last_rotated"])
    assert f["access_key_2_last_used_date"] == "N/A"


def test_report_is_reused_for_four_hours(fresh):
    iam = fresh.client("iam")
    assert iam.generate_credential_report()["State"] == "STARTED"
    later = unique("late")
    iam.create_user(UserName=later)
    assert iam.generate_credential_report()["State"] == "COMPLETE"
    _, rows = report(iam)
    assert later not in [r["user"] for r in rows]


def test_permissions(fresh):
    iam = fresh.client("iam")
    iam.generate_credential_report()
    user = unique("user")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    theirs = make_client("iam", fresh.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    with aws_error("AccessDenied", 403, match="iam:GenerateCredentialReport on resource: \\*"):
        theirs.generate_credential_report()
    with aws_error("AccessDenied", 403, match="iam:GetCredentialReport"):
        theirs.get_credential_report()


def test_cli(fresh):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "aws"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RAMPART_"))}
    env.update(AWS_ACCESS_KEY_ID=fresh.access_key_id, AWS_SECRET_ACCESS_KEY=fresh.secret_access_key,
               AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=fresh.endpoint, AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_PAGER="", AWS_MAX_ATTEMPTS="1")

    def cli(*args):
        return subprocess.run([str(exe), "iam", *args, "--output", "json"], env=env, capture_output=True, text=True,
                              timeout=60)

    r = cli("get-credential-report")
    assert r.returncode != 0 and "ReportNotPresent" in r.stderr
    assert json.loads(cli("generate-credential-report").stdout)["State"] == "STARTED"
    got = json.loads(cli("get-credential-report").stdout)
    assert base64.b64decode(got["Content"]).decode().splitlines()[0] == COLUMNS
