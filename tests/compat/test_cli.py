"""The aws CLI end to end, including the README's worked example."""

import json

from support import allow, doc, policy, unique, unique_path


def test_sts_get_caller_identity(aws_cli, account_id):
    out = aws_cli("sts", "get-caller-identity", check=True).json()
    assert out["Account"] == account_id
    assert out["Arn"] == f"arn:aws:iam::{account_id}:root"
    assert out["UserId"] == account_id


def test_endpoint_url_flag(aws_cli, account_id):
    out = aws_cli("sts", "get-caller-identity", endpoint_flag=True, check=True).json()
    assert out["Account"] == account_id


def test_create_get_list_users(aws_cli, account_id):
    name, path = unique("cli"), unique_path()
    created = aws_cli("iam", "create-user", "--user-name", name, "--path", path, check=True).json()["User"]
    assert created["UserName"] == name
    assert created["Arn"] == f"arn:aws:iam::{account_id}:user{path}{name}"
    got = aws_cli("iam", "get-user", "--user-name", name, check=True).json()["User"]
    assert got["UserId"] == created["UserId"]
    listed = aws_cli("iam", "list-users", "--path-prefix", path, check=True).json()["Users"]
    assert [u["UserName"] for u in listed] == [name]


def test_cli_auto_pagination(aws_cli, iam):
    path = unique_path()
    names = sorted(unique("page") for _ in range(5))
    for n in names:
        iam.create_user(UserName=n, Path=path)
    out = aws_cli("iam", "list-users", "--path-prefix", path, "--page-size", "2", check=True).json()
    assert sorted(u["UserName"] for u in out["Users"]) == names


def test_cli_error_output(aws_cli):
    name = unique("nobody")
    res = aws_cli("iam", "get-user", "--user-name", name)
    assert res.returncode != 0
    assert "An error occurred (NoSuchEntity) when calling the GetUser operation: " \
           f"The user with name {name} cannot be found." in res.stderr


def test_cli_policy_from_file(aws_cli, iam, tmp_path):
    name = unique("cli")
    iam.create_user(UserName=name)
    d = policy(allow("s3:GetObject", "arn:aws:s3:::bucket/*"))
    f = tmp_path / "policy.json"
    f.write_text(json.dumps(d, indent=2))
    aws_cli("iam", "put-user-policy", "--user-name", name, "--policy-name", "p", "--policy-document", f"file://{f}",
            check=True)
    got = aws_cli("iam", "get-user-policy", "--user-name", name, "--policy-name", "p", check=True).json()
    assert got["PolicyDocument"] == d


def test_cli_simulate_custom_policy(aws_cli):
    """The AWS CLI documentation's simulate-custom-policy example, verbatim."""
    out = aws_cli(
        "iam", "simulate-custom-policy",
        "--policy-input-list",
        '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*",'
        '"Condition":{"DateGreaterThan":{"aws:CurrentTime":"2018-08-16T12:00:00Z"}}}}',
        "--action-names", "dynamodb:CreateBackup",
        "--context-entries", "ContextKeyName='aws:CurrentTime',ContextKeyValues='2019-04-25T11:00:00Z',ContextKeyType=date",
        check=True,
    ).json()
    [r] = out["EvaluationResults"]
    assert r["EvalActionName"] == "dynamodb:CreateBackup"
    assert r["EvalResourceName"] == "*"
    assert r["EvalDecision"] == "allowed"


def test_readme_worked_example(aws_cli, account_id):
    alice = unique("alice")
    aws_cli("iam", "create-user", "--user-name", alice, check=True)
    key = aws_cli("iam", "create-access-key", "--user-name", alice, check=True).json()["AccessKey"]
    as_alice = dict(key=key["AccessKeyId"], secret=key["SecretAccessKey"])

    me = aws_cli("sts", "get-caller-identity", check=True, **as_alice).json()
    assert me["Arn"] == f"arn:aws:iam::{account_id}:user/{alice}"

    denied = aws_cli("iam", "list-users", **as_alice)
    assert denied.returncode != 0
    expected = (
        f"An error occurred (AccessDenied) when calling the ListUsers operation: "
        f"User: arn:aws:iam::{account_id}:user/{alice} is not authorized to perform: iam:ListUsers "
        f"on resource: arn:aws:iam::{account_id}:user/ because no identity-based policy allows the "
        f"iam:ListUsers action"
    )
    assert expected in denied.stderr, denied.stderr

    aws_cli("iam", "attach-user-policy", "--user-name", alice, "--policy-arn",
            "arn:aws:iam::aws:policy/IAMReadOnlyAccess", check=True)
    users = aws_cli("iam", "list-users", check=True, **as_alice).json()["Users"]
    assert alice in [u["UserName"] for u in users]
    denied = aws_cli("iam", "create-user", "--user-name", unique("nope"), **as_alice)
    assert denied.returncode != 0 and "(AccessDenied)" in denied.stderr
