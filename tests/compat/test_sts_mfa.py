"""MFA-authenticated STS sessions: GetSessionToken and AssumeRole with SerialNumber + TokenCode of
a virtual MFA device (codes computed here from the device seed, RFC 6238), and the
aws:MultiFactorAuthPresent / aws:MultiFactorAuthAge keys such sessions carry."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
import time

from botocore.exceptions import ClientError

from support import allow, aws_error, doc, make_client, policy, unique


def totp(seed_b32: str, step: int) -> str:
    mac = hmac.new(base64.b32decode(seed_b32), struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return f"{(struct.unpack('>I', mac[off:off + 4])[0] & 0x7FFFFFFF) % 10**6:06d}"


def now_step() -> int:
    return int(time.time()) // 30


def user_with_device(iam, make_user, inline=None):
    """A user with an enabled virtual MFA device; returns (user, serial, seed). The enabling codes
    use the previous and current steps, so the next acceptable code is the next step's."""
    user = make_user(inline=inline)
    dev = iam.create_virtual_mfa_device(VirtualMFADeviceName=unique("mfa"))["VirtualMFADevice"]
    serial, seed = dev["SerialNumber"], dev["Base32StringSeed"].decode()
    s = now_step()
    iam.enable_mfa_device(UserName=user.name, SerialNumber=serial, AuthenticationCode1=totp(seed, s - 1),
                          AuthenticationCode2=totp(seed, s))
    return user, serial, seed


def session(server, creds, service):
    return make_client(service, server.endpoint, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])


MFA_ONLY = policy(allow(["iam:ListUsers"], Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}))


def test_get_session_token_with_mfa(server, iam, make_user):
    user, serial, seed = user_with_device(iam, make_user, inline=[MFA_ONLY])
    # Long-term keys carry no MFA: denied.
    with aws_error("AccessDenied", 403):
        user.iam.list_users()
    # A session without MFA: MultiFactorAuthPresent is false, denied.
    plain = user.sts.get_session_token()["Credentials"]
    with aws_error("AccessDenied", 403):
        session(server, plain, "iam").list_users()
    # A wrong code is refused.
    wrong = f"{(int(totp(seed, now_step() + 1)) + 1) % 10**6:06d}"
    with aws_error("AccessDenied", 403, match="MultiFactorAuthentication failed"):
        user.sts.get_session_token(SerialNumber=serial, TokenCode=wrong)
    code = totp(seed, now_step() + 1)
    creds = user.sts.get_session_token(SerialNumber=serial, TokenCode=code, DurationSeconds=900)["Credentials"]
    session(server, creds, "iam").list_users()
    # The same code cannot be used twice.
    with aws_error("AccessDenied", 403, match="MultiFactorAuthentication failed"):
        user.sts.get_session_token(SerialNumber=serial, TokenCode=code)
    # Another user's device does not verify for this user.
    other, other_serial, other_seed = user_with_device(iam, make_user)
    with aws_error("AccessDenied", 403, match="MultiFactorAuthentication failed"):
        user.sts.get_session_token(SerialNumber=other_serial, TokenCode=totp(other_seed, now_step() + 1))

    # The MFA keys as a denied request of the session shows them.
    try:
        session(server, creds, "iam").list_roles()
        raise AssertionError("expected AccessDenied")
    except ClientError as e:
        rid = e.response["ResponseMetadata"]["RequestId"]
    decoded = json.loads(server.client("sts").decode_authorization_message(EncodedMessage=rid)["DecodedMessage"])
    cond = {c["key"]: c["values"]["items"][0]["value"] for c in decoded["context"]["conditions"]["items"]}
    assert cond["aws:multifactorauthpresent"] == "true"
    assert 0 <= int(cond["aws:multifactorauthage"]) < 120


def test_assume_role_requiring_mfa(server, iam, make_user):
    user, serial, seed = user_with_device(iam, make_user)
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": user.arn}, "Action": "sts:AssumeRole",
        "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
    }]}
    name = unique("mfarole")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=doc(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=doc(MFA_ONLY))
    with aws_error("AccessDenied", 403):
        user.sts.assume_role(RoleArn=arn, RoleSessionName="nomfa")
    r = user.sts.assume_role(RoleArn=arn, RoleSessionName="withmfa", SerialNumber=serial,
                             TokenCode=totp(seed, now_step() + 1))
    # The role session is MFA-authenticated too.
    session(server, r["Credentials"], "iam").list_users()
