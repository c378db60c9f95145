"""STS temporary credentials through boto3 and the aws CLI: AssumeRole (trust policies, conditions,
session policies, tags, source identity, chaining, durations), GetSessionToken, GetFederationToken,
GetAccessKeyInfo, and denial explanations via DecodeAuthorizationMessage."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from botocore.exceptions import ClientError

from support import (
    access_denied_message,
    allow,
    aws_error,
    deny,
    doc,
    make_client,
    policy,
    random_account_id,
    random_key_id,
    random_secret,
    unique,
)


def trust_of(*principals: str, actions=("sts:AssumeRole",), condition=None) -> dict:
    st = {"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": list(actions)}
    if condition:
        st["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [st]}


@pytest.fixture
def make_role(iam):
    """Create a role with a trust policy and inline permissions; returns its ARN."""

    def _make(trust: dict, inline=None, max_session=None, tags=None, name=None) -> str:
        name = name or unique("role")
        kwargs = {"RoleName": name, "AssumeRolePolicyDocument": doc(trust)}
        if max_session:
            kwargs["MaxSessionDuration"] = max_session
        if tags:
            kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        arn = iam.create_role(**kwargs)["Role"]["Arn"]
        for i, d in enumerate(inline or []):
            iam.put_role_policy(RoleName=name, PolicyName=f"p{i}", PolicyDocument=doc(d))
        return arn

    return _make


def session_client(server, creds: dict, service: str = "sts"):
    return make_client(service, server.endpoint, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])


def role_name(arn: str) -> str:
    return arn.rsplit("/", 1)[1]


# -- AssumeRole ------------------------------------------------------------------------------------


def test_assume_role_identity_and_credentials(server, make_user, make_role, account_id):
    user = make_user()
    arn = make_role(trust_of(user.arn), inline=[policy(allow("iam:ListUsers"))])
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    r = user.sts.assume_role(RoleArn=arn, RoleSessionName="alice-session", DurationSeconds=1800)
    after = dt.datetime.now(dt.timezone.utc)
    creds = r["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["AccessKeyId"]) == 20
    assert len(creds["SecretAccessKey"]) == 40 and len(creds["SessionToken"]) > 100
    # Expiration is exactly the request time + DurationSeconds (to the second).
    exp = creds["Expiration"]
    assert before + dt.timedelta(seconds=1800) <= exp <= after + dt.timedelta(seconds=1800)
    session_arn = f"arn:aws:sts::{account_id}:assumed-role/{role_name(arn)}/alice-session"
    assert r["AssumedRoleUser"]["Arn"] == session_arn
    role_id = server.client("iam").get_role(RoleName=role_name(arn))["Role"]["RoleId"]
    assert r["AssumedRoleUser"]["AssumedRoleId"] == f"{role_id}:alice-session"
    assert "PackedPolicySize" not in r

    who = session_client(server, creds).get_caller_identity()
    assert who["Arn"] == session_arn
    assert who["UserId"] == f"{role_id}:alice-session"
    assert who["Account"] == account_id
    # The session has the role's permissions: ListUsers yes, GetUser no.
    s_iam = session_client(server, creds, "iam")
    s_iam.list_users()
    with aws_error("AccessDenied", 403) as e:
        s_iam.get_role(RoleName=role_name(arn))
    assert e.value.response["Error"]["Message"] == access_denied_message(
        session_arn, "iam:GetRole", arn
    )
    # RoleLastUsed was recorded.
    last = server.client("iam").get_role(RoleName=role_name(arn))["Role"]["RoleLastUsed"]
    assert last["Region"] == "us-east-1"


def test_untrusted_principal_is_denied(make_user, make_role):
    trusted, other = make_user(), make_user(inline=[policy(allow("sts:AssumeRole"))])
    arn = make_role(trust_of(trusted.arn))
    with aws_error("AccessDenied", 403) as e:
        other.sts.assume_role(RoleArn=arn, RoleSessionName="s1")
    msg = e.value.response["Error"]["Message"]
    assert msg.startswith(f"User: {other.arn} is not authorized to perform: sts:AssumeRole on resource: {arn}")
    # A role that does not exist answers the same way (no existence oracle).
    missing = arn + "-nope"
    with aws_error("AccessDenied", 403) as e2:
        other.sts.assume_role(RoleArn=missing, RoleSessionName="s1")
    assert e2.value.response["Error"]["Message"] == msg.replace(arn, missing)


def test_trusting_the_account_needs_identity_permission(make_user, make_role, account_id):
    arn = make_role(trust_of(f"arn:aws:iam::{account_id}:root"))
    without = make_user()
    with aws_error("AccessDenied", 403) as e:
        without.sts.assume_role(RoleArn=arn, RoleSessionName="s1")
    assert "because no identity-based policy allows the sts:AssumeRole action" in e.value.response["Error"]["Message"]
    with_perm = make_user(inline=[policy(allow("sts:AssumeRole", arn))])
    assert with_perm.sts.assume_role(RoleArn=arn, RoleSessionName="s1")["Credentials"]["AccessKeyId"]
    # An explicit deny in the caller's policies wins over the trust policy naming the account.
    denied = make_user(inline=[policy(allow("sts:AssumeRole", arn), deny("sts:AssumeRole", arn))])
    with aws_error("AccessDenied", 403) as e:
        denied.sts.assume_role(RoleArn=arn, RoleSessionName="s1")
    assert "with an explicit deny in an identity-based policy" in e.value.response["Error"]["Message"]


def test_external_id_condition(make_user, make_role):
    user = make_user()
    arn = make_role(trust_of(user.arn, condition={"StringEquals": {"sts:ExternalId": "opensesame-42"}}))
    with aws_error("AccessDenied", 403):
        user.sts.assume_role(RoleArn=arn, RoleSessionName="s1")
    with aws_error("AccessDenied", 403):
        user.sts.assume_role(RoleArn=arn, RoleSessionName="s1", ExternalId="wrong-id")
    assert user.sts.assume_role(RoleArn=arn, RoleSessionName="s1", ExternalId="opensesame-42")["Credentials"]


def test_source_ip_and_mfa_conditions_in_trust(make_user, make_role):
    user = make_user()
    ok = make_role(trust_of(user.arn, condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}))
    far = make_role(trust_of(user.arn, condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}))
    assert user.sts.assume_role(RoleArn=ok, RoleSessionName="s1")["Credentials"]
    with aws_error("AccessDenied", 403):
        user.sts.assume_role(RoleArn=far, RoleSessionName="s1")
    mfa = make_role(trust_of(user.arn, condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}))
    with aws_error("AccessDenied", 403):
        user.sts.assume_role(RoleArn=mfa, RoleSessionName="s1")
    # A code that does not verify is refused before the trust policy is consulted.
    with aws_error("AccessDenied", 403, match="MultiFactorAuthentication failed"):
        user.sts.assume_role(
            RoleArn=mfa, RoleSessionName="s1", SerialNumber=f"arn:aws:iam::{user.arn.split(':')[4]}:mfa/x",
            TokenCode="123456",
        )


def test_role_session_name_and_duration_validation(make_user, make_role, iam):
    user = make_user()
    arn = make_role(trust_of(user.arn))
    sts = make_client("sts", user_endpoint(user), user.access_key_id, user.secret_access_key,
                      parameter_validation=False)
    with aws_error("ValidationError", 400, match="roleSessionName"):
        sts.assume_role(RoleArn=arn, RoleSessionName="has space")
    with aws_error("ValidationError", 400, match="roleSessionName"):
        sts.assume_role(RoleArn=arn, RoleSessionName="x")
    with aws_error("ValidationError", 400, match="durationSeconds"):
        sts.assume_role(RoleArn=arn, RoleSessionName="s1", DurationSeconds=899)
    with aws_error("ValidationError", 400, message="The requested DurationSeconds exceeds the MaxSessionDuration set for this role."):
        user.sts.assume_role(RoleArn=arn, RoleSessionName="s1", DurationSeconds=3601)
    iam.update_role(RoleName=role_name(arn), MaxSessionDuration=7200)
    assert user.sts.assume_role(RoleArn=arn, RoleSessionName="s1", DurationSeconds=7200)["Credentials"]


def user_endpoint(user) -> str:
    return user.endpoint


def test_session_policy_narrows_the_role(server, make_user, make_role, make_policy):
    user = make_user()
    arn = make_role(trust_of(user.arn), inline=[policy(allow(["iam:ListUsers", "iam:ListRoles", "iam:GetRole"]))])
    r = user.sts.assume_role(
        RoleArn=arn, RoleSessionName="narrow", Policy=doc(policy(allow(["iam:ListUsers", "iam:CreateUser"])))
    )
    assert 0 < r["PackedPolicySize"] <= 100
    s_iam = session_client(server, r["Credentials"], "iam")
    s_iam.list_users()
    session_arn = r["AssumedRoleUser"]["Arn"]
    with aws_error("AccessDenied", 403) as e:
        s_iam.list_roles()
    account = session_arn.split(":")[4]
    assert e.value.response["Error"]["Message"] == (
        f"User: {session_arn} is not authorized to perform: iam:ListRoles on resource: "
        f"arn:aws:iam::{account}:role/ because no session policy allows the iam:ListRoles action"
    )
    # The session policy cannot grant what the role lacks.
    with aws_error("AccessDenied", 403) as e:
        s_iam.create_user(UserName=unique("u"))
    assert "because no identity-based policy allows the iam:CreateUser action" in e.value.response["Error"]["Message"]

    # Managed session policies (PolicyArns).
    managed = make_policy(policy(allow("iam:ListRoles")))
    r = user.sts.assume_role(RoleArn=arn, RoleSessionName="managed", PolicyArns=[{"arn": managed}])
    s_iam = session_client(server, r["Credentials"], "iam")
    s_iam.list_roles()
    with aws_error("AccessDenied", 403, match="no session policy allows"):
        s_iam.list_users()
    # A malformed inline session policy, or a missing managed one, is refused.
    with aws_error("MalformedPolicyDocument", 400):
        user.sts.assume_role(RoleArn=arn, RoleSessionName="bad", Policy='{"Statement": 3}')
    with aws_error("InvalidParameterValue", 400):
        user.sts.assume_role(RoleArn=arn, RoleSessionName="bad",
                             PolicyArns=[{"arn": managed + "-missing"}])


def test_deleted_role_invalidates_its_sessions(server, make_user, make_role, iam):
    user = make_user()
    name = unique("role")
    arn = make_role(trust_of(user.arn), inline=[policy(allow("iam:ListUsers"))], name=name)
    creds = user.sts.assume_role(RoleArn=arn, RoleSessionName="doomed")["Credentials"]
    s = session_client(server, creds)
    s.get_caller_identity()
    iam.delete_role_policy(RoleName=name, PolicyName="p0")
    iam.delete_role(RoleName=name)
    with aws_error("InvalidClientTokenId", 403):
        s.get_caller_identity()
    # A new role with the same name does not revive the old sessions.
    make_role(trust_of(user.arn), name=name)
    with aws_error("InvalidClientTokenId", 403):
        s.get_caller_identity()


def test_tampered_or_missing_session_token(server, make_user, make_role):
    user = make_user()
    arn = make_role(trust_of(user.arn))
    c = user.sts.assume_role(RoleArn=arn, RoleSessionName="s1")["Credentials"]
    bad = dict(c, SessionToken=c["SessionToken"][:-4] + "AAAA")
    with aws_error("InvalidClientTokenId", 403):
        session_client(server, bad).get_caller_identity()
    with aws_error("InvalidClientTokenId", 403):
        make_client("sts", server.endpoint, c["AccessKeyId"], c["SecretAccessKey"]).get_caller_identity()
    wrong_secret = dict(c, SecretAccessKey="x" * 40)
    with aws_error("SignatureDoesNotMatch", 403):
        session_client(server, wrong_secret).get_caller_identity()


def test_role_chaining_is_capped_at_one_hour(server, make_user, make_role, account_id):
    user = make_user()
    second = make_role(trust_of(f"arn:aws:iam::{account_id}:root"), max_session=43200)
    first = make_role(trust_of(user.arn), inline=[policy(allow("sts:AssumeRole", second))], max_session=43200)
    c1 = user.sts.assume_role(RoleArn=first, RoleSessionName="hop1", DurationSeconds=7200)["Credentials"]
    s1 = session_client(server, c1)
    with aws_error(
        "ValidationError", 400,
        message="The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
    ):
        s1.assume_role(RoleArn=second, RoleSessionName="hop2", DurationSeconds=3601)
    r = s1.assume_role(RoleArn=second, RoleSessionName="hop2")
    assert session_client(server, r["Credentials"]).get_caller_identity()["Arn"].endswith(
        f"assumed-role/{role_name(second)}/hop2"
    )


def test_session_tags_are_principal_tags(server, make_user, make_role):
    user = make_user()
    tag_trust = trust_of(user.arn, actions=("sts:AssumeRole", "sts:TagSession"))
    perms = policy(allow("iam:ListUsers", Condition={"StringEquals": {"aws:PrincipalTag/team": "red"}}))
    arn = make_role(tag_trust, inline=[perms], tags={"team": "blue"})
    # The role's own tag (blue) does not match…
    c = user.sts.assume_role(RoleArn=arn, RoleSessionName="plain")["Credentials"]
    with aws_error("AccessDenied", 403):
        session_client(server, c, "iam").list_users()
    # …a session tag overrides it.
    r = user.sts.assume_role(RoleArn=arn, RoleSessionName="tagged", Tags=[{"Key": "team", "Value": "red"}])
    assert r["PackedPolicySize"] >= 1
    session_client(server, r["Credentials"], "iam").list_users()
    # Passing tags needs sts:TagSession in the trust policy.
    no_tag = make_role(trust_of(user.arn), inline=[perms])
    with aws_error("AccessDenied", 403, match="sts:TagSession"):
        user.sts.assume_role(RoleArn=no_tag, RoleSessionName="tt", Tags=[{"Key": "team", "Value": "red"}])
    # Tag rules: no aws: prefix, no duplicate keys, transitive keys must be passed tags.
    with aws_error("InvalidParameterValue", 400):
        user.sts.assume_role(RoleArn=arn, RoleSessionName="tt", Tags=[{"Key": "team", "Value": "red"}],
                             TransitiveTagKeys=["other"])


def test_transitive_tags_flow_through_a_role_chain(server, make_user, make_role, account_id):
    user = make_user()
    perms = policy(allow("iam:ListUsers", Condition={"StringEquals": {"aws:PrincipalTag/project": "apollo"}}))
    second = make_role(trust_of(f"arn:aws:iam::{account_id}:root", actions=("sts:AssumeRole", "sts:TagSession")),
                       inline=[perms])
    first = make_role(trust_of(user.arn, actions=("sts:AssumeRole", "sts:TagSession")),
                      inline=[policy(allow(["sts:AssumeRole", "sts:TagSession"], second))])
    c1 = user.sts.assume_role(
        RoleArn=first, RoleSessionName="one", Tags=[{"Key": "project", "Value": "apollo"}, {"Key": "x", "Value": "y"}],
        TransitiveTagKeys=["project"],
    )["Credentials"]
    s1 = session_client(server, c1)
    c2 = s1.assume_role(RoleArn=second, RoleSessionName="two")["Credentials"]
    session_client(server, c2, "iam").list_users()
    # An inherited transitive tag cannot be overridden down the chain.
    with aws_error("InvalidParameterValue", 400):
        s1.assume_role(RoleArn=second, RoleSessionName="two", Tags=[{"Key": "project", "Value": "gemini"}])


def test_source_identity(server, make_user, make_role):
    user = make_user()
    trust = trust_of(user.arn, actions=("sts:AssumeRole", "sts:SetSourceIdentity"))
    perms = policy(allow("iam:ListUsers", Condition={"StringEquals": {"aws:SourceIdentity": "alice"}}))
    arn = make_role(trust, inline=[perms])
    r = user.sts.assume_role(RoleArn=arn, RoleSessionName="s1", SourceIdentity="alice")
    assert r["SourceIdentity"] == "alice"
    session_client(server, r["Credentials"], "iam").list_users()
    plain = make_role(trust_of(user.arn), inline=[perms])
    with aws_error("AccessDenied", 403, match="sts:SetSourceIdentity"):
        user.sts.assume_role(RoleArn=plain, RoleSessionName="s1", SourceIdentity="alice")


def test_principal_arn_of_a_role_session_is_the_role(server, make_user, make_role):
    user = make_user()
    name = unique("role")
    arn = make_role(trust_of(user.arn), name=name)
    server.client("iam").put_role_policy(
        RoleName=name, PolicyName="p", PolicyDocument=doc(policy(
            allow("iam:ListUsers", Condition={"StringEquals": {"aws:PrincipalArn": arn,
                                                               "aws:PrincipalType": "AssumedRole"}}))),
    )
    c = user.sts.assume_role(RoleArn=arn, RoleSessionName="s1")["Credentials"]
    session_client(server, c, "iam").list_users()


# -- GetSessionToken / GetFederationToken ------------------------------------------------------------


def test_get_session_token(server, make_user):
    user = make_user(inline=[policy(allow("iam:ListUsers"))])
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    c = user.sts.get_session_token(DurationSeconds=900)["Credentials"]
    assert c["AccessKeyId"].startswith("ASIA")
    assert before + dt.timedelta(seconds=900) <= c["Expiration"] <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(
        seconds=900
    )
    s = session_client(server, c)
    assert s.get_caller_identity()["Arn"] == user.arn
    session_client(server, c, "iam").list_users()
    with aws_error("AccessDenied", 403, message="Cannot call GetSessionToken with session credentials"):
        s.get_session_token()
    # Default 12 hours for users.
    c = user.sts.get_session_token()["Credentials"]
    assert c["Expiration"] >= before + dt.timedelta(seconds=43200)
    # An MFA code that does not verify is refused.
    with aws_error("AccessDenied", 403, match="MultiFactorAuthentication failed"):
        user.sts.get_session_token(SerialNumber=f"arn:aws:iam::{user.arn.split(':')[4]}:mfa/none",
                                   TokenCode="000000")


def test_root_session_token_is_capped_at_one_hour(sts):
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    c = sts.get_session_token(DurationSeconds=7200)["Credentials"]
    assert c["Expiration"] <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=3600)
    assert c["Expiration"] >= before + dt.timedelta(seconds=3600)


def test_get_federation_token(server, make_user, account_id):
    user = make_user(inline=[policy(allow(["sts:GetFederationToken", "iam:ListUsers", "iam:ListRoles"]))])
    r = user.sts.get_federation_token(Name="fed-bob", Policy=doc(policy(allow("iam:ListUsers"))))
    assert r["FederatedUser"]["Arn"] == f"arn:aws:sts::{account_id}:federated-user/fed-bob"
    assert r["FederatedUser"]["FederatedUserId"] == f"{account_id}:fed-bob"
    s = session_client(server, r["Credentials"])
    assert s.get_caller_identity()["Arn"] == r["FederatedUser"]["Arn"]
    s_iam = session_client(server, r["Credentials"], "iam")
    s_iam.list_users()
    with aws_error("AccessDenied", 403, match="no session policy allows the iam:ListRoles action"):
        s_iam.list_roles()
    # Without a policy a federated user can do nothing.
    r = user.sts.get_federation_token(Name="fed-none")
    with aws_error("AccessDenied", 403):
        session_client(server, r["Credentials"], "iam").list_users()
    # A user without sts:GetFederationToken is denied; session credentials cannot federate.
    with aws_error("AccessDenied", 403):
        make_user().sts.get_federation_token(Name="fed-x")
    with aws_error("AccessDenied", 403, message="Cannot call GetFederationToken with session credentials"):
        s.get_federation_token(Name="fed-y")


# -- GetAccessKeyInfo / DecodeAuthorizationMessage ------------------------------------------------------


def test_get_access_key_info(server, sts, make_user, make_role, account_id):
    user = make_user()
    assert sts.get_access_key_info(AccessKeyId=user.access_key_id)["Account"] == account_id
    arn = make_role(trust_of(user.arn))
    c = user.sts.assume_role(RoleArn=arn, RoleSessionName="s1")["Credentials"]
    assert sts.get_access_key_info(AccessKeyId=c["AccessKeyId"])["Account"] == account_id
    with aws_error("AccessDenied", 403):
        user.sts.get_access_key_info(AccessKeyId=user.access_key_id)


def test_denied_requests_are_explained_to_the_admin(server, sts, make_user, make_role):
    user = make_user(inline=[policy(allow("iam:ListUsers"), deny("iam:ListRoles"))])
    try:
        user.iam.list_roles()
        raise AssertionError("expected AccessDenied")
    except ClientError as e:
        request_id = e.response["ResponseMetadata"]["RequestId"]
        assert "with an explicit deny in an identity-based policy" in e.response["Error"]["Message"]
    decoded = json.loads(sts.decode_authorization_message(EncodedMessage=request_id)["DecodedMessage"])
    assert decoded["allowed"] is False and decoded["explicitDeny"] is True
    assert decoded["context"]["action"] == "iam:ListRoles"
    assert decoded["context"]["principal"]["arn"] == user.arn
    keys = {c["key"] for c in decoded["context"]["conditions"]["items"]}
    assert {"aws:sourceip", "aws:username", "aws:principalarn", "aws:currenttime"} <= keys
    # Long-term keys carry no MFA key (exactly as AWS).
    assert "aws:multifactorauthpresent" not in keys
    assert decoded["rampart"]["denyingPolicyType"] == "identity-based policy"
    assert decoded["matchedStatements"]["items"][0]["effect"] == "DENY"
    # The user itself may not read explanations without sts:DecodeAuthorizationMessage; an
    # administrator of the account may.
    with aws_error("AccessDenied", 403):
        user.sts.decode_authorization_message(EncodedMessage=request_id)
    admin = make_user(managed=["arn:aws:iam::aws:policy/AdministratorAccess"])
    again = json.loads(admin.sts.decode_authorization_message(EncodedMessage=request_id)["DecodedMessage"])
    assert again["context"]["action"] == "iam:ListRoles"
    with aws_error("InvalidAuthorizationMessageException", 400):
        sts.decode_authorization_message(EncodedMessage="00000000-0000-4000-0000-000000000000")

    # A role session's denial shows the session keys.
    role = make_role(trust_of(user.arn))
    c = user.sts.assume_role(RoleArn=role, RoleSessionName="s1")["Credentials"]
    try:
        session_client(server, c, "iam").list_users()
        raise AssertionError("expected AccessDenied")
    except ClientError as e:
        request_id = e.response["ResponseMetadata"]["RequestId"]
    decoded = json.loads(sts.decode_authorization_message(EncodedMessage=request_id)["DecodedMessage"])
    cond = {c["key"]: c["values"]["items"][0]["value"] for c in decoded["context"]["conditions"]["items"]}
    assert cond["aws:multifactorauthpresent"] == "false"
    assert cond["aws:principalarn"] == role
    assert cond["aws:principaltype"] == "AssumedRole"
    assert "aws:tokenissuetime" in cond


def test_explanations_survive_restart(spawn_server):
    srv = spawn_server(account_id=random_account_id(), access_key_id=random_key_id(),
                       secret_access_key=random_secret())
    iam = srv.client("iam")
    name = unique("user")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    try:
        make_client("iam", srv.endpoint, key["AccessKeyId"], key["SecretAccessKey"]).list_users()
        raise AssertionError("expected AccessDenied")
    except ClientError as e:
        request_id = e.response["ResponseMetadata"]["RequestId"]
    srv.restart()
    decoded = json.loads(srv.client("sts").decode_authorization_message(EncodedMessage=request_id)["DecodedMessage"])
    assert decoded["rampart"]["denyingPolicyType"] == "identity-based policy"
    assert decoded["explicitDeny"] is False


# -- aws CLI ---------------------------------------------------------------------------------------------


def test_cli_assume_role(aws_cli, make_user, make_role):
    user = make_user()
    arn = make_role(trust_of(user.arn))
    out = aws_cli("sts", "assume-role", "--role-arn", arn, "--role-session-name", "cli-session",
                  "--duration-seconds", "900", key=user.access_key_id, secret=user.secret_access_key, check=True).json()
    assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
    assert out["AssumedRoleUser"]["Arn"].endswith(f"/{role_name(arn)}/cli-session")
    bad = aws_cli("sts", "assume-role", "--role-arn", arn, "--role-session-name", "bad name",
                  key=user.access_key_id, secret=user.secret_access_key)
    assert bad.returncode != 0 and "ValidationError" in bad.stderr
    res = aws_cli("iam", "list-users", key=user.access_key_id, secret=user.secret_access_key)
    assert res.returncode != 0 and "AccessDenied" in res.stderr


def test_root_federation_is_bounded_by_its_session_policy(server, sts, account_id):
    r = sts.get_federation_token(Name="root-fed", Policy=doc(policy(allow("iam:ListUsers"))), DurationSeconds=7200)
    # The root's federation sessions last at most an hour.
    assert r["Credentials"]["Expiration"] <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=3600)
    s_iam = session_client(server, r["Credentials"], "iam")
    s_iam.list_users()
    with aws_error("AccessDenied", 403, match="no session policy allows the iam:ListRoles action"):
        s_iam.list_roles()


def test_cli_session_token_and_decode(aws_cli, make_user):
    user = make_user(inline=[policy(allow("iam:ListUsers"))])
    out = aws_cli("sts", "get-session-token", "--duration-seconds", "900",
                  key=user.access_key_id, secret=user.secret_access_key, check=True).json()
    assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
    try:
        user.iam.list_roles()
        raise AssertionError("expected AccessDenied")
    except ClientError as e:
        rid = e.response["ResponseMetadata"]["RequestId"]
    out = aws_cli("sts", "decode-authorization-message", "--encoded-message", rid, check=True).json()
    decoded = json.loads(out["DecodedMessage"])
    assert decoded["context"]["action"] == "iam:ListRoles"
    assert decoded["rampart"]["denyingPolicyType"] == "identity-based policy"


def test_deleted_user_invalidates_its_sessions(server, iam, make_user):
    user = make_user()
    creds = user.sts.get_session_token()["Credentials"]
    s = session_client(server, creds)
    assert s.get_caller_identity()["Arn"] == user.arn
    iam.delete_access_key(UserName=user.name, AccessKeyId=user.access_key_id)
    iam.delete_user(UserName=user.name)
    with aws_error("InvalidClientTokenId", 403):
        s.get_caller_identity()
    # A new user with the same name does not revive them.
    iam.create_user(UserName=user.name)
    with aws_error("InvalidClientTokenId", 403):
        s.get_caller_identity()


def test_get_access_key_info_of_keys_rampart_does_not_hold(sts):
    # AWS answers for any well-formed key ID: the account is encoded in the key ID itself.
    assert sts.get_access_key_info(AccessKeyId="ASIAY34FZKBOKMUTVV7A")["Account"] == "609629065308"
    assert sts.get_access_key_info(AccessKeyId="AKIAIOSFODNN7EXAMPLE")["Account"] == "581039954779"
    with aws_error("InvalidParameterValue", 400):
        sts.get_access_key_info(AccessKeyId="AKIA0000000000000000")


# -- Partitions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "region,partition",
    [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"), ("us-iso-east-1", "aws-iso"),
     ("us-isob-east-1", "aws-iso-b")],
)
def test_arns_follow_the_partition_of_the_signing_region(server, account_id, region, partition):
    iam = server.client("iam", region=region)
    sts = server.client("sts", region=region)
    assert sts.get_caller_identity()["Arn"] == f"arn:{partition}:iam::{account_id}:root"
    user_name, role = unique("user"), unique("role")
    role_arn = f"arn:{partition}:iam::{account_id}:role/{role}"
    user = iam.create_user(UserName=user_name)["User"]
    assert user["Arn"] == f"arn:{partition}:iam::{account_id}:user/{user_name}"
    # Policies written in the partition's ARNs name what they mean, and read back the same.
    iam.put_user_policy(UserName=user_name, PolicyName="p", PolicyDocument=doc(policy(allow("sts:AssumeRole", role_arn))))
    created = iam.create_role(RoleName=role, AssumeRolePolicyDocument=doc(trust_of(user["Arn"])))["Role"]
    assert created["Arn"] == role_arn
    got = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    assert got["Statement"][0]["Principal"]["AWS"] == [user["Arn"]]
    key = iam.create_access_key(UserName=user_name)["AccessKey"]
    user_sts = make_client("sts", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"], region=region)
    assert user_sts.get_caller_identity()["Arn"] == user["Arn"]
    out = user_sts.assume_role(RoleArn=role_arn, RoleSessionName="s1")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:{partition}:sts::{account_id}:assumed-role/{role}/s1"
    session = make_client("sts", server.endpoint, out["Credentials"]["AccessKeyId"],
                          out["Credentials"]["SecretAccessKey"], out["Credentials"]["SessionToken"], region=region)
    assert session.get_caller_identity()["Arn"] == out["AssumedRoleUser"]["Arn"]
    # Denials name the caller in the partition too.
    with aws_error("AccessDenied", 403, match="^User: " + re.escape(user["Arn"]) + " is not authorized"):
        make_client("iam", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"], region=region).list_users()
    # Through a region of the aws partition the same objects have aws ARNs.
    assert server.client("iam").get_user(UserName=user_name)["User"]["Arn"].startswith("arn:aws:iam::")
    # A policy written through the partition's region in its ARNs grants what it names...
    user_iam = make_client("iam", server.endpoint, key["AccessKeyId"], key["SecretAccessKey"], region=region)
    iam.put_user_policy(UserName=user_name, PolicyName="q", PolicyDocument=doc(policy(allow("iam:GetUser", user["Arn"]))))
    assert user_iam.get_user(UserName=user_name)["User"]["Arn"] == user["Arn"]
    # ...while the same text written through an aws-partition region names another partition's user.
    server.client("iam").put_user_policy(
        UserName=user_name, PolicyName="q", PolicyDocument=doc(policy(allow("iam:GetUser", user["Arn"])))
    )
    with aws_error("AccessDenied", 403):
        user_iam.get_user(UserName=user_name)
