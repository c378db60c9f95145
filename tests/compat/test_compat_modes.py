"""Drop-in conventions of other emulators: LocalStack's health endpoint and `--dev` defaults, and
moto's server mode (`--compat moto`: account 123456789012, any key is the root until
INITIAL_NO_AUTH_ACTION_COUNT calls are spent, /moto-api/reset and /moto-api/reset-auth)."""

import json

import pytest

from support import aws_error, make_client, random_key_id, random_secret, send, unique

MOTO_ACCOUNT = "123456789012"


@pytest.fixture
def moto(spawn_server, request):
    env = getattr(request, "param", None) or {}
    return spawn_server(data_dir=None, extra_args=["--compat", "moto"], extra_env=env)


def any_client(srv, service):
    # moto's own tests sign with whatever keys they like.
    return make_client(service, srv.endpoint, random_key_id(), random_secret())


def test_localstack_health_lists_services(server):
    resp = send("GET", f"{server.endpoint}/_localstack/health")
    assert resp.status == 200
    body = json.loads(resp.text)
    assert body["services"]["iam"] == "running" and body["services"]["sts"] == "running", body
    assert body["version"].startswith("rampart-")


def test_dev_mode_uses_localstack_account_and_keys(spawn_server):
    srv = spawn_server(data_dir=None, extra_args=["--dev"])
    sts = make_client("sts", srv.endpoint, "test", "test")
    ident = sts.get_caller_identity()
    assert ident["Account"] == "000000000000"
    assert ident["Arn"] == "arn:aws:iam::000000000000:root"
    # Still enforced: a key Rampart does not know is refused.
    with aws_error("InvalidClientTokenId", 403):
        any_client(srv, "sts").get_caller_identity()


def test_dev_mode_account_number_keys_are_account_roots(spawn_server):
    """LocalStack's convention under --dev: an access key ID that is a 12-digit account number is
    the root of that account (secret `test`), so tests reach a second account without
    Organizations (https://docs.localstack.cloud/aws/capabilities/config/credentials)."""
    srv = spawn_server(data_dir=None, extra_args=["--dev"])
    other = "111111111111"
    ident = make_client("sts", srv.endpoint, other, "test").get_caller_identity()
    assert ident == {**ident, "Account": other, "UserId": other, "Arn": f"arn:aws:iam::{other}:root"}
    # Authenticated all the same: the secret is `test`.
    with aws_error("SignatureDoesNotMatch", 403):
        make_client("sts", srv.endpoint, other, "not-test").get_caller_identity()

    # The second account's root creates a role that trusts the first account (000000000000).
    iam_b = make_client("iam", srv.endpoint, other, "test")
    trusting = unique("cross")
    trust_a = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                       "Principal": {"AWS": "arn:aws:iam::000000000000:root"}}]}
    role = iam_b.create_role(RoleName=trusting, AssumeRolePolicyDocument=json.dumps(trust_a))["Role"]
    assert role["Arn"] == f"arn:aws:iam::{other}:role/{trusting}"
    # Each account sees its own roles only.
    with aws_error("NoSuchEntity", 404):
        make_client("iam", srv.endpoint, "test", "test").get_role(RoleName=trusting)

    # Cross-account AssumeRole from the first account's root: allowed by the role's trust policy.
    sts_a = make_client("sts", srv.endpoint, "test", "test")
    got = sts_a.assume_role(RoleArn=role["Arn"], RoleSessionName="s1")["AssumedRoleUser"]
    assert got["Arn"] == f"arn:aws:sts::{other}:assumed-role/{trusting}/s1"

    # A role that trusts another account only: AccessDenied, as AWS answers.
    trust_c = {**trust_a, "Statement": [{**trust_a["Statement"][0], "Principal": {"AWS": "arn:aws:iam::222222222222:root"}}]}
    closed = iam_b.create_role(RoleName=unique("closed"), AssumeRolePolicyDocument=json.dumps(trust_c))["Role"]
    with aws_error("AccessDenied", 403):
        sts_a.assume_role(RoleArn=closed["Arn"], RoleSessionName="s1")
    # ... which the third account's root may assume.
    third = make_client("sts", srv.endpoint, "222222222222", "test")
    assert third.assume_role(RoleArn=closed["Arn"], RoleSessionName="s1")["AssumedRoleUser"]["Arn"].startswith(
        f"arn:aws:sts::{other}:assumed-role/")


def test_account_number_keys_only_under_dev(server):
    """Outside --dev an account number is just an unknown access key."""
    with aws_error("InvalidClientTokenId", 403):
        make_client("sts", server.endpoint, "111111111111", "test").get_caller_identity()


def test_dev_mode_is_in_memory_by_default(spawn_server, tmp_path):
    srv = spawn_server(data_dir=None, extra_args=["--dev"])
    make_client("iam", srv.endpoint, "test", "test").create_user(UserName="dev-user")
    assert not (srv.workdir / "rampart-data").exists()


def test_moto_any_key_is_the_root(moto):
    ident = any_client(moto, "sts").get_caller_identity()
    assert ident["Account"] == MOTO_ACCOUNT
    assert ident["Arn"] == f"arn:aws:iam::{MOTO_ACCOUNT}:root"


def test_moto_index_answers(moto):
    assert send("GET", f"{moto.endpoint}/").status == 200


def test_moto_reset_wipes_state(moto):
    iam = any_client(moto, "iam")
    name = unique("u")
    iam.create_user(UserName=name)
    assert [u["UserName"] for u in iam.list_users()["Users"]] == [name]
    assert send("POST", f"{moto.endpoint}/moto-api/reset").status == 200
    assert iam.list_users()["Users"] == []
    # The account survives the reset.
    assert any_client(moto, "sts").get_caller_identity()["Account"] == MOTO_ACCOUNT


def test_moto_reset_auth_starts_enforcement(moto):
    resp = send("POST", f"{moto.endpoint}/moto-api/reset-auth", body="3")
    assert resp.status == 200
    assert json.loads(resp.text) == {"PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT": "inf"}
    # Three calls without authentication: make a user with a key and no permissions.
    iam = any_client(moto, "iam")
    name = unique("limited")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    iam.put_user_policy(
        UserName=name,
        PolicyName="only-get-user",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"}]}
        ),
    )
    # Now every call is enforced: unknown keys are refused, the user gets only what its policy allows.
    with aws_error("InvalidClientTokenId", 403):
        any_client(moto, "sts").get_caller_identity()
    user_iam = make_client("iam", moto.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    assert user_iam.get_user()["User"]["UserName"] == name
    with aws_error("AccessDenied", 403):
        user_iam.list_users()
    resp = send("POST", f"{moto.endpoint}/moto-api/reset-auth", body="inf")
    assert json.loads(resp.text) == {"PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    assert any_client(moto, "iam").list_users()["Users"]


def test_moto_reset_auth_rejects_garbage(moto):
    assert send("POST", f"{moto.endpoint}/moto-api/reset-auth", body="lots").status == 400


@pytest.mark.parametrize("moto", [{"INITIAL_NO_AUTH_ACTION_COUNT": "0"}], indirect=True)
def test_moto_initial_count_from_environment(moto):
    with aws_error("InvalidClientTokenId", 403):
        any_client(moto, "sts").get_caller_identity()
    # The configured root keys (test/test) still work.
    assert make_client("sts", moto.endpoint, "test", "test").get_caller_identity()["Account"] == MOTO_ACCOUNT


def test_moto_routes_exist_only_in_compat_mode(server):
    assert send("POST", f"{server.endpoint}/moto-api/reset").status in (400, 403)
    assert send("GET", f"{server.endpoint}/").status in (400, 403)


def test_compat_refuses_a_data_dir(spawn_server, tmp_path):
    srv = spawn_server(start=False, data_dir=None, extra_args=["--compat", "moto", "--data-dir", str(tmp_path / "d")])
    with pytest.raises(RuntimeError, match="keeps its state in memory"):
        srv.start(timeout=10)
