"""Fixtures for the end-to-end compatibility suite.

One `rampart serve` per session with a temp data dir (`server`), one with --ephemeral
(`ephemeral_server`); tests that need their own process (restart, bootstrap) use `spawn_server`.
Tests are independent: every entity gets a unique name (`unique`), paths isolate list results.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import (
    CREATED_SCHEMAS,
    REGION,
    TEST_STORE,
    drop_schemas,
    RampartServer,
    allow,
    doc,
    make_client,
    policy,
    random_account_id,
    random_key_id,
    random_secret,
    unique,
)

# Clients built in this process must not pick up the developer's ~/.aws or AWS_* variables.
for _k in [k for k in os.environ if k.startswith("AWS_")]:
    del os.environ[_k]
os.environ.update(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_EC2_METADATA_DISABLED="true")


@pytest.fixture(scope="session", autouse=True)
def _drop_test_schemas():
    """Under RAMPART_TEST_STORE, drop the schemas this process's servers used (after they stopped)."""
    yield
    if TEST_STORE:
        drop_schemas(CREATED_SCHEMAS)


def _session_server(tmp_path_factory, name: str, ephemeral: bool) -> RampartServer:
    work = tmp_path_factory.mktemp(name)
    srv = RampartServer(
        work,
        data_dir=None if ephemeral else work / "data",
        ephemeral=ephemeral,
        account_id=random_account_id(),
        access_key_id=random_key_id(),
        secret_access_key=random_secret(),
    )
    return srv.start()


def _stop_cleanly(srv: RampartServer) -> None:
    if srv.proc is None:
        return
    code = srv.stop()
    assert code == 0, f"rampart serve exited with {code} after SIGTERM\n{srv.logs()}"


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The shared server: persistent store in a temp data dir, root credentials from env."""
    srv = _session_server(tmp_path_factory, "server", ephemeral=False)
    yield srv
    _stop_cleanly(srv)


@pytest.fixture(scope="session")
def ephemeral_server(tmp_path_factory):
    srv = _session_server(tmp_path_factory, "ephemeral", ephemeral=True)
    yield srv
    _stop_cleanly(srv)


@pytest.fixture
def spawn_server(tmp_path):
    """Start extra servers for one test; killed at the end if the test left them running."""
    started: list[RampartServer] = []

    def _spawn(start: bool = True, **kwargs) -> RampartServer:
        kwargs.setdefault("data_dir", tmp_path / f"data{len(started)}")
        srv = RampartServer(tmp_path / f"work{len(started)}", **kwargs)
        started.append(srv)
        return srv.start() if start else srv

    yield _spawn
    for srv in started:
        srv.kill()


@pytest.fixture(scope="session")
def account_id(server) -> str:
    return server.account_id


@pytest.fixture(scope="session")
def iam(server):
    """IAM client signed as the account root."""
    return server.client("iam")


@pytest.fixture(scope="session")
def iam_unvalidated(server):
    """Root IAM client that skips botocore's client-side validation, to reach the server's."""
    return server.client("iam", parameter_validation=False)


@pytest.fixture(scope="session")
def sts(server):
    return server.client("sts")


@pytest.fixture
def names():
    """`names("user")` → a fresh unique name."""
    return unique


@dataclass
class IamUser:
    name: str
    arn: str
    user_id: str
    access_key_id: str
    secret_access_key: str
    endpoint: str

    def client(self, service: str, **config):
        return make_client(service, self.endpoint, self.access_key_id, self.secret_access_key, **config)

    @property
    def iam(self):
        return self.client("iam")

    @property
    def sts(self):
        return self.client("sts")


@pytest.fixture
def make_user(server, iam):
    """Create an IAM user with policies and an access key; returns an IamUser with its own clients.

    inline: {policy name: document} or a list of documents; managed: policy ARNs to attach;
    groups: group names to join; boundary: a managed policy ARN used as permissions boundary.
    """

    def _make(inline=None, managed=(), groups=(), boundary=None, path="/", name=None) -> IamUser:
        name = name or unique("user")
        kwargs = {"UserName": name, "Path": path}
        if boundary:
            kwargs["PermissionsBoundary"] = boundary
        user = iam.create_user(**kwargs)["User"]
        if isinstance(inline, list):
            inline = {f"inline{i}": d for i, d in enumerate(inline)}
        for pname, d in (inline or {}).items():
            iam.put_user_policy(UserName=name, PolicyName=pname, PolicyDocument=doc(d))
        for arn in managed:
            iam.attach_user_policy(UserName=name, PolicyArn=arn)
        for g in groups:
            iam.add_user_to_group(GroupName=g, UserName=name)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return IamUser(name, user["Arn"], user["UserId"], key["AccessKeyId"], key["SecretAccessKey"], server.endpoint)

    return _make


@pytest.fixture
def make_group(iam):
    def _make(inline=None, managed=(), path="/") -> str:
        name = unique("group")
        iam.create_group(GroupName=name, Path=path)
        for pname, d in (inline or {}).items():
            iam.put_group_policy(GroupName=name, PolicyName=pname, PolicyDocument=doc(d))
        for arn in managed:
            iam.attach_group_policy(GroupName=name, PolicyArn=arn)
        return name

    return _make


@pytest.fixture
def make_policy(iam):
    """Create a customer managed policy; returns its ARN."""

    def _make(document=None, path="/", name=None) -> str:
        document = document or policy(allow("iam:Get*"))
        return iam.create_policy(PolicyName=name or unique("policy"), Path=path, PolicyDocument=doc(document))[
            "Policy"
        ]["Arn"]

    return _make


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self):
        import json

        return json.loads(self.stdout)


@pytest.fixture(scope="session")
def aws_cli(server):
    """Run the venv's `aws` CLI against the server: aws_cli("iam", "list-users", key=…, secret=…)."""
    exe = Path(sys.executable).parent / "aws"
    if not exe.exists():
        found = shutil.which("aws")
        if not found:
            pytest.skip("aws CLI not installed (pip install -r tests/compat/requirements.txt)")
        exe = Path(found)

    def _run(*args, key=None, secret=None, endpoint_flag=False, check=False, timeout=60) -> CliResult:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RAMPART_"))}
        env.update(
            AWS_ACCESS_KEY_ID=key or server.access_key_id,
            AWS_SECRET_ACCESS_KEY=secret or server.secret_access_key,
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
            AWS_EC2_METADATA_DISABLED="true",
            AWS_PAGER="",
            AWS_MAX_ATTEMPTS="1",
        )
        cmd = [str(exe), *args, "--output", "json"]
        if endpoint_flag:
            cmd += ["--endpoint-url", server.endpoint]
        else:
            env["AWS_ENDPOINT_URL"] = server.endpoint
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        result = CliResult(proc.returncode, proc.stdout, proc.stderr)
        if check:
            assert proc.returncode == 0, f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr}"
        return result

    return _run
