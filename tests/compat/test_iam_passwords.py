"""Console passwords: login profiles (Create/Get/Update/DeleteLoginProfile), ChangePassword, the
account password policy (Update/Get/DeleteAccountPasswordPolicy) and its enforcement on every
password set (PasswordPolicyViolation, reuse prevention), DeleteUser conflicts.

The password policy is account-wide, so these tests run against a server of their own.
"""

import pytest

from support import (
    RampartServer,
    allow,
    aws_error,
    deny,
    doc,
    make_client,
    policy,
    random_account_id,
    random_key_id,
    random_secret,
    recent,
    unique,
)

GOOD = "Str0ng-Passw0rd!"


@pytest.fixture(scope="module")
def pw_server(tmp_path_factory):
    srv = RampartServer(
        tmp_path_factory.mktemp("passwords"),
        ephemeral=True,
        account_id=random_account_id(),
        access_key_id=random_key_id(),
        secret_access_key=random_secret(),
    ).start()
    yield srv
    srv.stop()


@pytest.fixture
def iam(pw_server):
    client = pw_server.client("iam")
    yield client
    # Leave no policy behind for the next test.
    try:
        client.delete_account_password_policy()
    except client.exceptions.NoSuchEntityException:
        pass


def new_user(iam, inline=None, key=False):
    name = unique("user")
    iam.create_user(UserName=name)
    for i, d in enumerate(inline or []):
        iam.put_user_policy(UserName=name, PolicyName=f"p{i}", PolicyDocument=doc(d))
    if not key:
        return name, None
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return name, (k["AccessKeyId"], k["SecretAccessKey"])


def user_iam(pw_server, creds):
    return make_client("iam", pw_server.endpoint, *creds)


def test_login_profile_lifecycle(iam):
    user, _ = new_user(iam)
    with aws_error("NoSuchEntity", 404, message=f"Login Profile for User {user} cannot be found."):
        iam.get_login_profile(UserName=user)
    created = iam.create_login_profile(UserName=user, Password=GOOD, PasswordResetRequired=True)["LoginProfile"]
    assert created["UserName"] == user and created["PasswordResetRequired"] is True and recent(created["CreateDate"])
    got = iam.get_login_profile(UserName=user)["LoginProfile"]
    assert got == created
    with aws_error("EntityAlreadyExists", 409, message=f"Login Profile for user {user} already exists."):
        iam.create_login_profile(UserName=user, Password=GOOD)
    iam.update_login_profile(UserName=user, PasswordResetRequired=False)
    assert iam.get_login_profile(UserName=user)["LoginProfile"]["PasswordResetRequired"] is False
    iam.update_login_profile(UserName=user, Password="An0ther-Passw0rd!")
    with aws_error("DeleteConflict", 409, message="Cannot delete entity, must delete login profile first."):
        iam.delete_user(UserName=user)
    iam.delete_login_profile(UserName=user)
    with aws_error("NoSuchEntity", 404):
        iam.delete_login_profile(UserName=user)
    iam.delete_user(UserName=user)
    with aws_error("NoSuchEntity", 404, message="The user with name nobody-y cannot be found."):
        iam.create_login_profile(UserName="nobody-y", Password=GOOD)


def test_no_policy_means_aws_default(iam):
    with aws_error("NoSuchEntity", 404, match="The Password Policy with domain name \\d{12} cannot be found."):
        iam.get_account_password_policy()
    user, _ = new_user(iam)
    with aws_error("PasswordPolicyViolation", 400, message="Password should have a minimum length of 8"):
        iam.create_login_profile(UserName=user, Password="Ab1!")
    with aws_error("PasswordPolicyViolation", 400, match="at least three of the following character types"):
        iam.create_login_profile(UserName=user, Password="alllowercase1")
    iam.create_login_profile(UserName=user, Password="Lower-and-UPPER")


def test_policy_round_trip_and_defaults(iam):
    iam.update_account_password_policy(
        MinimumPasswordLength=12, RequireSymbols=True, RequireNumbers=True, RequireUppercaseCharacters=True,
        RequireLowercaseCharacters=True, AllowUsersToChangePassword=True, MaxPasswordAge=90,
        PasswordReusePrevention=5, HardExpiry=True,
    )
    assert iam.get_account_password_policy()["PasswordPolicy"] == {
        "MinimumPasswordLength": 12,
        "RequireSymbols": True,
        "RequireNumbers": True,
        "RequireUppercaseCharacters": True,
        "RequireLowercaseCharacters": True,
        "AllowUsersToChangePassword": True,
        "ExpirePasswords": True,
        "MaxPasswordAge": 90,
        "PasswordReusePrevention": 5,
        "HardExpiry": True,
    }
    # No partial updates: omitted members revert to their defaults.
    iam.update_account_password_policy(RequireNumbers=True)
    assert iam.get_account_password_policy()["PasswordPolicy"] == {
        "MinimumPasswordLength": 6,
        "RequireSymbols": False,
        "RequireNumbers": True,
        "RequireUppercaseCharacters": False,
        "RequireLowercaseCharacters": False,
        "AllowUsersToChangePassword": False,
        "ExpirePasswords": False,
        "HardExpiry": False,
    }
    iam.delete_account_password_policy()
    with aws_error("NoSuchEntity", 404):
        iam.delete_account_password_policy()


def test_policy_limits_are_validated(pw_server):
    raw = pw_server.client("iam", parameter_validation=False)
    with aws_error("ValidationError", 400, match="'minimumPasswordLength' failed to satisfy constraint: Member must have value greater than or equal to 6"):
        raw.update_account_password_policy(MinimumPasswordLength=5)
    with aws_error("ValidationError", 400, match="'passwordReusePrevention' .* less than or equal to 24"):
        raw.update_account_password_policy(PasswordReusePrevention=25)
    with aws_error("ValidationError", 400, match="'maxPasswordAge' .* less than or equal to 1095"):
        raw.update_account_password_policy(MaxPasswordAge=1096)
    # Passwords are never echoed in validation messages.
    long_pw = "x" * 129
    with aws_error("ValidationError", 400, match="Value at 'password' failed to satisfy constraint: Member must have length less than or equal to 128") as ei:
        raw.create_login_profile(UserName="someone", Password=long_pw)
    assert long_pw not in ei.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    "password,message",
    [
        ("Sh0rt!", "Password should have a minimum length of 10"),
        ("no-upper-case-1", "Password should have at least one uppercase letter"),
        ("NO-LOWER-CASE-1", "Password should have at least one lowercase letter"),
        ("No-Numbers-Here", "Password should have at least one number"),
        ("NoSymbols12345", "Password should have at least one symbol"),
    ],
)
def test_policy_violations(iam, password, message):
    iam.update_account_password_policy(
        MinimumPasswordLength=10, RequireSymbols=True, RequireNumbers=True, RequireUppercaseCharacters=True,
        RequireLowercaseCharacters=True,
    )
    user, _ = new_user(iam)
    with aws_error("PasswordPolicyViolation", 400, message=message):
        iam.create_login_profile(UserName=user, Password=password)
    iam.create_login_profile(UserName=user, Password="Good-Passw0rd")
    with aws_error("PasswordPolicyViolation", 400, message=message):
        iam.update_login_profile(UserName=user, Password=password)


def test_reuse_prevention(iam):
    iam.update_account_password_policy(MinimumPasswordLength=8, PasswordReusePrevention=2)
    user, _ = new_user(iam)
    iam.create_login_profile(UserName=user, Password="first-pass")
    msg = "Password should not be one of the previous 2 passwords"
    with aws_error("PasswordPolicyViolation", 400, message=msg):
        iam.update_login_profile(UserName=user, Password="first-pass")
    iam.update_login_profile(UserName=user, Password="second-pass")
    with aws_error("PasswordPolicyViolation", 400, message=msg):
        iam.update_login_profile(UserName=user, Password="first-pass")
    iam.update_login_profile(UserName=user, Password="third-pass")
    # first-pass is now three passwords back: allowed again.
    iam.update_login_profile(UserName=user, Password="first-pass")


def test_change_password(pw_server, iam):
    user, creds = new_user(iam, inline=[policy(allow("iam:ChangePassword", "arn:aws:iam::*:user/${aws:username}"))], key=True)
    mine = user_iam(pw_server, creds)
    iam.update_account_password_policy(MinimumPasswordLength=8, PasswordReusePrevention=1)
    with aws_error("NoSuchEntity", 404, message=f"Login Profile for User {user} cannot be found."):
        mine.change_password(OldPassword="whatever1", NewPassword="whatever2")
    iam.create_login_profile(UserName=user, Password="old-password", PasswordResetRequired=True)
    with aws_error("AccessDenied", 403):
        mine.change_password(OldPassword="not-the-password", NewPassword="new-password")
    with aws_error("PasswordPolicyViolation", 400, message="Password should have a minimum length of 8"):
        mine.change_password(OldPassword="old-password", NewPassword="short")
    with aws_error("PasswordPolicyViolation", 400, message="Password should not be one of the previous 1 passwords"):
        mine.change_password(OldPassword="old-password", NewPassword="old-password")
    mine.change_password(OldPassword="old-password", NewPassword="new-password")
    # The reset flag clears once the user has chosen a password; the old one no longer works.
    assert iam.get_login_profile(UserName=user)["LoginProfile"]["PasswordResetRequired"] is False
    with aws_error("AccessDenied", 403):
        mine.change_password(OldPassword="old-password", NewPassword="newer-password")
    mine.change_password(OldPassword="new-password", NewPassword="newer-password")


def test_change_password_needs_permission_unless_policy_allows(pw_server, iam):
    user, creds = new_user(iam, key=True)
    mine = user_iam(pw_server, creds)
    iam.create_login_profile(UserName=user, Password="Orig-passw0rd")
    with aws_error("AccessDenied", 403, match="iam:ChangePassword"):
        mine.change_password(OldPassword="Orig-passw0rd", NewPassword="Next-passw0rd")
    with aws_error("AccessDenied", 403, match="iam:GetAccountPasswordPolicy"):
        mine.get_account_password_policy()
    # AllowUsersToChangePassword grants both at the account level.
    iam.update_account_password_policy(AllowUsersToChangePassword=True)
    mine.change_password(OldPassword="Orig-passw0rd", NewPassword="Next-passw0rd")
    assert mine.get_account_password_policy()["PasswordPolicy"]["AllowUsersToChangePassword"] is True


def test_change_password_is_for_iam_users_only(iam):
    with aws_error("InvalidUserType", 400):
        iam.change_password(OldPassword="a-password", NewPassword="b-password")


def test_login_profile_authorization(pw_server, iam):
    user, creds = new_user(iam, inline=[policy(allow("iam:*LoginProfile", "arn:aws:iam::*:user/${aws:username}"),
                                               deny("iam:DeleteLoginProfile"))], key=True)
    mine = user_iam(pw_server, creds)
    # Without UserName, the call is about the caller.
    mine.create_login_profile(Password=GOOD)
    assert mine.get_login_profile()["LoginProfile"]["UserName"] == user
    other, _ = new_user(iam)
    with aws_error("AccessDenied", 403, match=f"user/{other}"):
        mine.create_login_profile(UserName=other, Password=GOOD)
    with aws_error("AccessDenied", 403, match="explicit deny"):
        mine.delete_login_profile()
    iam.delete_login_profile(UserName=user)


def test_rename_user_keeps_login_profile(iam):
    user, renamed = unique("user"), unique("user")
    iam.create_user(UserName=user)
    iam.create_login_profile(UserName=user, Password=GOOD)
    iam.update_user(UserName=user, NewUserName=renamed)
    assert iam.get_login_profile(UserName=renamed)["LoginProfile"]["UserName"] == renamed
    with aws_error("NoSuchEntity", 404):
        iam.get_login_profile(UserName=user)


def test_cli(pw_server, iam):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "aws"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RAMPART_"))}
    env.update(AWS_ACCESS_KEY_ID=pw_server.access_key_id, AWS_SECRET_ACCESS_KEY=pw_server.secret_access_key,
               AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=pw_server.endpoint, AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_PAGER="", AWS_MAX_ATTEMPTS="1")

    def cli(*args):
        return subprocess.run([str(exe), "iam", *args, "--output", "json"], env=env, capture_output=True, text=True,
                              timeout=60)

    assert cli("update-account-password-policy", "--minimum-password-length", "14", "--require-symbols").returncode == 0
    got = json.loads(cli("get-account-password-policy").stdout)["PasswordPolicy"]
    assert got["MinimumPasswordLength"] == 14 and got["RequireSymbols"] is True
    user, _ = new_user(iam)
    r = cli("create-login-profile", "--user-name", user, "--password", "only-fourteen!")
    assert r.returncode == 0, r.stderr
    r = cli("update-login-profile", "--user-name", user, "--password", "too-short!")
    assert r.returncode != 0 and "PasswordPolicyViolation" in r.stderr
    assert "Password should have a minimum length of 14" in r.stderr
