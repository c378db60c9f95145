"""Several stateless nodes on one PostgreSQL store: read-your-writes across nodes, serialized
read-modify-write, no acknowledged write lost to a SIGKILL, `rampart store migrate`.

Runs when PostgreSQL is reachable: $RAMPART_TEST_STORE, else postgres://127.0.0.1:5432/test.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import threading
import uuid

import pytest
from botocore.exceptions import ClientError

from support import (
    UserWriters,
    TEST_STORE,
    RampartServer,
    allow,
    clean_env,
    doc,
    drop_schemas,
    make_client,
    policy,
    random_account_id,
    random_key_id,
    random_secret,
    rampart_bin,
    require_postgres,
    store_base_url,
    store_url,
    unique,
)

BASE_URL = store_base_url(TEST_STORE or "postgres://127.0.0.1:5432/test")


def _reachable() -> bool:
    psql = shutil.which("psql")
    if psql is None:
        return False
    try:
        return subprocess.run([psql, BASE_URL, "-qtAc", "select 1"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(autouse=True)
def _postgres_required():
    """PostgreSQL missing fails these tests (CI must not pass on tests that did not run) unless
    RAMPART_TEST_NO_PG=1 says to skip them."""
    require_postgres(_reachable(), BASE_URL)


@pytest.fixture
def schema():
    name = "rc_" + uuid.uuid4().hex[:20]
    yield name
    drop_schemas([name], BASE_URL)


@pytest.fixture
def cluster(tmp_path, schema):
    """`cluster(n)` → n running nodes on one fresh schema, sharing the first node's master key."""
    nodes: list[RampartServer] = []
    creds = dict(account_id=random_account_id(), access_key_id=random_key_id(), secret_access_key=random_secret())

    def _make(n: int = 2) -> list[RampartServer]:
        for _ in range(n):
            i = len(nodes)
            env = {"RAMPART_STORE": store_url(schema, BASE_URL)}
            if i > 0:
                env["RAMPART_MASTER_KEY_FILE"] = str(nodes[0].data_dir / "master.key")
            # Only the first node is given the root credentials; the others learn them from the database.
            kw = creds if i == 0 else {}
            node = RampartServer(tmp_path / f"node{i}", data_dir=tmp_path / f"node{i}-data", extra_env=env, **kw)
            nodes.append(node.start())
            # Clients sign with the root credentials (set after start: not in the node's environment).
            node.account_id, node.access_key_id, node.secret_access_key = (
                creds["account_id"], creds["access_key_id"], creds["secret_access_key"])
        return nodes

    yield _make
    for n in nodes:
        n.kill()


def error_code(call, *args, **kwargs) -> str:
    with pytest.raises(ClientError) as ei:
        call(*args, **kwargs)
    return ei.value.response["Error"]["Code"]


def test_every_node_serves_the_same_account(cluster):
    a, b = cluster(2)
    assert "store=postgres" in re.sub(r"\x1b\[[0-9;]*m", "", a.stderr()), a.stderr()
    for node in (a, b):
        ident = node.client("sts").get_caller_identity()
        assert ident["Account"] == a.account_id and ident["Arn"].endswith(":root")


def test_iam_changes_hold_on_the_other_node_at_the_next_call(cluster):
    a, b = cluster(2)
    iam_a, iam_b = a.client("iam"), b.client("iam")
    name = unique("user")
    iam_a.create_user(UserName=name)
    assert iam_b.get_user(UserName=name)["User"]["UserName"] == name
    key = iam_b.create_access_key(UserName=name)["AccessKey"]
    user_a = make_client("iam", a.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    user_b = make_client("iam", b.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    assert user_a.meta  # both nodes know the new key at once
    assert make_client("sts", a.endpoint, key["AccessKeyId"], key["SecretAccessKey"]).get_caller_identity()[
        "UserId"] == iam_a.get_user(UserName=name)["User"]["UserId"]

    # No permission yet, on either node.
    assert error_code(user_a.get_user, UserName=name) == "AccessDenied"
    # A policy attached through A allows the call on B, at once.
    arn = iam_a.create_policy(PolicyName=unique("p"), PolicyDocument=doc(policy(allow("iam:GetUser"))))["Policy"]["Arn"]
    iam_a.attach_user_policy(UserName=name, PolicyArn=arn)
    assert user_b.get_user(UserName=name)["User"]["UserName"] == name
    # Detached through B: denied on A at the very next call.
    iam_b.detach_user_policy(UserName=name, PolicyArn=arn)
    assert error_code(user_a.get_user, UserName=name) == "AccessDenied"
    # An inline policy put on B holds on A; deleted on A, gone on B.
    iam_b.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=doc(policy(allow("iam:GetUser"))))
    assert user_a.get_user(UserName=name)["User"]["UserName"] == name
    iam_a.delete_user_policy(UserName=name, PolicyName="inline")
    assert error_code(user_b.get_user, UserName=name) == "AccessDenied"
    # A key deactivated on A is refused by B; deleted on B, unknown to A.
    iam_b.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=doc(policy(allow("iam:GetUser"))))
    assert user_b.get_user(UserName=name)  # warm B's credential cache
    iam_a.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    assert error_code(user_b.get_user, UserName=name) == "InvalidClientTokenId"
    iam_a.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Active")
    assert user_a.get_user(UserName=name) and user_b.get_user(UserName=name)
    iam_b.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    assert error_code(user_a.get_user, UserName=name) == "InvalidClientTokenId"


def test_alternating_writes_and_reads(cluster):
    nodes = cluster(2)
    clients = [n.client("iam") for n in nodes]
    path = f"/{unique('alt')}/"
    names = [unique("u") for _ in range(20)]
    for i, n in enumerate(names):
        clients[i % 2].create_user(UserName=n, Path=path)
        listed = [u["UserName"] for u in clients[(i + 1) % 2].list_users(PathPrefix=path)["Users"]]
        assert sorted(listed) == sorted(names[: i + 1])
        clients[(i + 1) % 2].tag_user(UserName=n, Tags=[{"Key": "i", "Value": str(i)}])
        assert clients[i % 2].list_user_tags(UserName=n)["Tags"] == [{"Key": "i", "Value": str(i)}]


def test_read_modify_write_is_serialized_across_nodes(cluster):
    """AWS allows 5 versions of a managed policy: 8 concurrent CreatePolicyVersion calls spread
    over two nodes must give exactly 4 successes (v2..v5) and 4 LimitExceeded."""
    nodes = cluster(2)
    arn = nodes[0].client("iam").create_policy(PolicyName=unique("p"), PolicyDocument=doc(policy(allow("iam:Get*"))))[
        "Policy"]["Arn"]
    results: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def create(i: int):
        client = nodes[i % 2].client("iam")
        barrier.wait(30)
        try:
            client.create_policy_version(PolicyArn=arn, PolicyDocument=doc(policy(allow(f"iam:List{i}*"))))
            outcome = "ok"
        except ClientError as e:
            outcome = e.response["Error"]["Code"]
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == ["LimitExceeded"] * 4 + ["ok"] * 4, results
    versions = nodes[1].client("iam").list_policy_versions(PolicyArn=arn)["Versions"]
    assert sorted(v["VersionId"] for v in versions) == ["v1", "v2", "v3", "v4", "v5"]


def test_sigkill_mid_write_loses_no_acknowledged_write(cluster):
    a, b = cluster(2)
    path = f"/{unique('kill')}/"
    writers = UserWriters(a, path, threads=4)
    writers.wait_for(40)  # let writes flow before the kill
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(10)
    acked = writers.stop()
    assert len(acked) >= 40
    # The surviving node has every acknowledged write, and keeps serving writes.
    listed = {u["UserName"] for page in b.client("iam").get_paginator("list_users").paginate(PathPrefix=path)
              for u in page["Users"]}
    assert acked <= listed, f"lost {sorted(acked - listed)[:5]}"
    b.client("iam").create_user(UserName=unique("after"), Path=path)
    # The killed node comes back with the same data.
    a.proc = None
    a.start()
    names = {u["UserName"] for page in a.client("iam").get_paginator("list_users").paginate(PathPrefix=path)
             for u in page["Users"]}
    assert acked <= names


def test_node_with_another_master_key_refuses_to_start(cluster, tmp_path, schema):
    cluster(1)
    other = RampartServer(tmp_path / "other", data_dir=tmp_path / "other-data",
                          extra_env={"RAMPART_STORE": store_url(schema, BASE_URL)})
    with pytest.raises(RuntimeError, match="master key"):
        other.start(timeout=20)


def test_store_migrate_from_sqlite(tmp_path, schema):
    creds = dict(account_id=random_account_id(), access_key_id=random_key_id(), secret_access_key=random_secret())
    data = tmp_path / "data"
    old = RampartServer(tmp_path / "old", data_dir=data, extra_env={"RAMPART_STORE": ""}, **creds).start()
    iam = old.client("iam")
    name = unique("user")
    iam.create_user(UserName=name, Tags=[{"Key": "team", "Value": "blue"}])
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=doc(policy(allow("iam:GetUser"))))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    assert old.stop() == 0

    url = store_url(schema, BASE_URL)
    run = lambda: subprocess.run([rampart_bin(), "store", "migrate", "--from", str(data), "--to", url],
                                 capture_output=True, text=True, env=clean_env(), timeout=60)
    first = run()
    assert first.returncode == 0, first.stderr
    assert creds["secret_access_key"] not in first.stdout + first.stderr
    again = run()
    assert again.returncode != 0 and "already holds data" in again.stderr

    # A node on PostgreSQL, without credentials in its environment: the identity came along.
    node = RampartServer(tmp_path / "pg", data_dir=tmp_path / "pg-data",
                         extra_env={"RAMPART_STORE": url, "RAMPART_MASTER_KEY_FILE": str(data / "master.key")})
    node.start()
    node.account_id, node.access_key_id, node.secret_access_key = (
        creds["account_id"], creds["access_key_id"], creds["secret_access_key"])
    try:
        assert node.client("sts").get_caller_identity()["Account"] == creds["account_id"]
        user = make_client("iam", node.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
        got = user.get_user(UserName=name)["User"]
        assert got["UserName"] == name
        assert node.client("iam").list_user_tags(UserName=name)["Tags"] == [{"Key": "team", "Value": "blue"}]
    finally:
        node.kill()


def test_store_migrate_refuses_a_non_data_dir(tmp_path, schema):
    proc = subprocess.run([rampart_bin(), "store", "migrate", "--from", str(tmp_path), "--to",
                           store_url(schema, BASE_URL)], capture_output=True, text=True, env=clean_env(), timeout=60)
    assert proc.returncode != 0 and "not found" in proc.stderr


def test_sts_sessions_work_on_every_node(cluster):
    a, b = cluster(2)
    iam_a, iam_b = a.client("iam"), b.client("iam")
    name = unique("role")
    trust_doc = policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{a.account_id}:root"},
                        "Action": "sts:AssumeRole"})
    arn = iam_a.create_role(RoleName=name, AssumeRolePolicyDocument=doc(trust_doc))["Role"]["Arn"]
    iam_a.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=doc(policy(allow("iam:ListRoles"))))
    creds = b.client("sts").assume_role(RoleArn=arn, RoleSessionName="s1")["Credentials"]
    on_a = [creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]]
    assert make_client("sts", a.endpoint, *on_a).get_caller_identity()["Arn"].endswith(f":assumed-role/{name}/s1")
    make_client("iam", a.endpoint, *on_a).list_roles()
    # The role's policy removed on B: the session is denied on A at the next call.
    iam_b.delete_role_policy(RoleName=name, PolicyName="p")
    assert error_code(make_client("iam", a.endpoint, *on_a).list_roles) == "AccessDenied"
    # The role deleted on B: its session dies on A too.
    iam_b.delete_role(RoleName=name)
    assert error_code(make_client("sts", a.endpoint, *on_a).get_caller_identity) == "InvalidClientTokenId"
