"""`rampart serve` itself: health, persistence across restarts with --data-dir, generated root
credentials (printed once, kept with mode 0600), stable account ID, --ephemeral, clean shutdown,
serving threads sharing one port."""

import re
import signal
import stat
import subprocess
import threading

import pytest

from support import (
    ADMIN,
    TEST_STORE,
    RampartServer,
    clean_env,
    doc,
    make_client,
    random_account_id,
    random_key_id,
    random_secret,
    rampart_bin,
    unique,
)

KEY_RE = re.compile(r"\b(AKIA[A-Z0-9]{16})\b")
SECRET_RE = re.compile(r"(?<![A-Za-z0-9/+])([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])")


def env_creds():
    return dict(account_id=random_account_id(), access_key_id=random_key_id(), secret_access_key=random_secret())


def printed_credentials(text: str):
    keys = KEY_RE.findall(text)
    secrets = SECRET_RE.findall(text)
    assert keys, f"no access key ID printed on first start:\n{text}"
    assert secrets, f"no secret access key printed on first start:\n{text}"
    return keys[0], secrets[0]


def test_health(server):
    status, body = server.health()
    assert status == 200
    assert isinstance(body.get("version"), str) and body["version"]
    services = body.get("services")
    assert services and "iam" in services and "sts" in services, body


def test_health_version_matches_binary(server):
    import subprocess

    from support import rampart_bin

    out = subprocess.run([rampart_bin(), "--version"], capture_output=True, text=True, timeout=30).stdout
    assert server.health()[1]["version"] in out, out


def test_health_needs_no_credentials(server):
    # Plain GET, no signature: the health endpoint is for load balancers and orchestrators.
    status, _ = server.health()
    assert status == 200


def test_session_servers_answer(server, ephemeral_server):
    for srv in (server, ephemeral_server):
        ident = srv.client("sts").get_caller_identity()
        assert ident["Account"] == srv.account_id
        assert ident["Arn"] == f"arn:aws:iam::{srv.account_id}:root"


def test_ephemeral_server_serves_iam(ephemeral_server):
    iam = ephemeral_server.client("iam")
    name = unique("eph")
    user = iam.create_user(UserName=name)["User"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    ident = make_client("sts", ephemeral_server.endpoint, key["AccessKeyId"], key["SecretAccessKey"]).get_caller_identity()
    assert ident["Arn"] == user["Arn"]
    with pytest.raises(Exception) as ei:
        make_client("iam", ephemeral_server.endpoint, key["AccessKeyId"], key["SecretAccessKey"]).list_users()
    assert ei.value.response["Error"]["Code"] == "AccessDenied"


def test_data_persists_across_restart(spawn_server):
    srv = spawn_server(**env_creds())
    iam = srv.client("iam")
    name, group = unique("durable"), unique("group")
    created = iam.create_user(UserName=name, Path="/kept/", Tags=[{"Key": "k", "Value": "v"}])["User"]
    iam.create_group(GroupName=group)
    iam.add_user_to_group(GroupName=group, UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=doc(ADMIN))
    pol = iam.create_policy(PolicyName=unique("policy"), PolicyDocument=doc(ADMIN))["Policy"]["Arn"]
    iam.create_policy_version(PolicyArn=pol, PolicyDocument=doc(ADMIN), SetAsDefault=True)
    key = iam.create_access_key(UserName=name)["AccessKey"]

    assert srv.stop(signal.SIGTERM) == 0, srv.logs()
    srv.start()

    iam = srv.client("iam")
    got = iam.get_user(UserName=name)["User"]
    assert got["UserId"] == created["UserId"] and got["Arn"] == created["Arn"]
    assert got["Tags"] == [{"Key": "k", "Value": "v"}]
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName=name)["Groups"]] == [group]
    assert iam.get_user_policy(UserName=name, PolicyName="p")["PolicyDocument"] == ADMIN
    assert iam.get_policy(PolicyArn=pol)["Policy"]["DefaultVersionId"] == "v2"
    # The access key's secret survived (sealed at rest) and still signs.
    ident = make_client("sts", srv.endpoint, key["AccessKeyId"], key["SecretAccessKey"]).get_caller_identity()
    assert ident["Arn"] == created["Arn"]


def test_concurrent_acknowledged_writes_survive_restart(spawn_server):
    srv = spawn_server(**env_creds())
    clients = [srv.client("iam") for _ in range(4)]
    names = [[unique("burst") for _ in range(8)] for _ in clients]
    errors = []

    def work(client, batch):
        try:
            for n in batch:
                client.create_user(UserName=n)
        except Exception as e:  # reported below; a thread can't fail the test itself
            errors.append(e)

    threads = [threading.Thread(target=work, args=(c, b)) for c, b in zip(clients, names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert srv.stop() == 0
    srv.start()
    listed = {u["UserName"] for page in srv.client("iam").get_paginator("list_users").paginate() for u in page["Users"]}
    assert {n for batch in names for n in batch} <= listed


def test_generated_root_credentials(spawn_server):
    srv = spawn_server()
    key, secret = printed_credentials(srv.stdout())
    ident = make_client("sts", srv.endpoint, key, secret).get_caller_identity()
    account = ident["Account"]
    assert re.fullmatch(r"\d{12}", account)
    assert ident["Arn"] == f"arn:aws:iam::{account}:root"

    # Nowhere on disk in plaintext: sealed with the master key (in account.json with the SQLite
    # store, in the database with PostgreSQL); the files that keep it are readable only by the owner.
    holders = [p for p in srv.data_dir.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert holders == [], f"the secret is in plaintext in {holders}"
    holders = [srv.data_dir / "master.key"]
    if not TEST_STORE:
        holders.append(srv.data_dir / "account.json")
    for p in holders:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode & 0o077 == 0, f"{p} has mode {oct(mode)}; expected 0600"

    make_client("iam", srv.endpoint, key, secret).create_user(UserName="after-bootstrap")
    assert srv.stop() == 0
    srv.start()
    # Printed once: not again on the next start; same credentials and account afterwards.
    assert secret not in srv.stdout() and secret not in srv.stderr()
    ident2 = make_client("sts", srv.endpoint, key, secret).get_caller_identity()
    assert ident2["Account"] == account
    make_client("iam", srv.endpoint, key, secret).get_user(UserName="after-bootstrap")


def test_secret_never_logged_to_stderr(spawn_server):
    creds = env_creds()
    srv = spawn_server(**creds)
    srv.client("iam").list_users()
    assert creds["secret_access_key"] not in srv.stdout() + srv.stderr()


def test_account_id_from_env(spawn_server):
    creds = env_creds()
    srv = spawn_server(**creds)
    assert srv.client("sts").get_caller_identity()["Account"] == creds["account_id"]
    user = srv.client("iam").create_user(UserName=unique("user"))["User"]
    assert user["Arn"].startswith(f"arn:aws:iam::{creds['account_id']}:user/")


def test_generated_account_id_is_stable(spawn_server):
    creds = dict(access_key_id=random_key_id(), secret_access_key=random_secret())
    srv = spawn_server(**creds)
    first = srv.client("sts").get_caller_identity()["Account"]
    assert re.fullmatch(r"\d{12}", first)
    srv.restart()
    assert srv.client("sts").get_caller_identity()["Account"] == first


def test_invalid_account_id_refused(tmp_path):
    srv = RampartServer(tmp_path / "bad", data_dir=tmp_path / "bad-data", account_id="12345",
                        access_key_id=random_key_id(), secret_access_key=random_secret())
    with pytest.raises(RuntimeError, match="exited"):
        srv.start(timeout=15)


def test_ephemeral_keeps_nothing(spawn_server):
    srv = spawn_server(data_dir=None, ephemeral=True, **env_creds())
    # spawn_server picks its own workdir; the process runs there, so that is what must stay clean.
    name = unique("transient")
    srv.client("iam").create_user(UserName=name)
    assert srv.stop() == 0
    leftovers = [p.name for p in srv.workdir.iterdir() if not re.fullmatch(r"server-\d+\.std(out|err)", p.name)]
    assert leftovers == [], f"--ephemeral wrote {leftovers}"
    srv.start()
    with pytest.raises(Exception) as ei:
        srv.client("iam").get_user(UserName=name)
    assert ei.value.response["Error"]["Code"] == "NoSuchEntity"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_clean_shutdown(spawn_server, sig):
    srv = spawn_server(**env_creds())
    srv.client("iam").list_users()
    assert srv.stop(sig) == 0, srv.logs()


def test_calls_spread_over_serving_threads(spawn_server):
    # Thread per core: four listening sockets share the port; many connections, all answered.
    creds = env_creds()
    srv = spawn_server(**creds, extra_args=["--threads", "4"])
    clients = [srv.client("sts") for _ in range(16)]
    errors = []

    def work(client):
        try:
            for _ in range(5):
                assert client.get_caller_identity()["Account"] == creds["account_id"]
        except Exception as e:  # reported below; a thread can't fail the test itself
            errors.append(e)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert "threads=4" in re.sub(r"\x1b\[[0-9;]*m", "", srv.logs())  # the log is colored
    assert srv.stop() == 0, srv.logs()


def test_port_in_use_is_refused(spawn_server, tmp_path):
    # SO_REUSEPORT groups only one server's own sockets: a second server on a taken port fails.
    creds = env_creds()
    srv = spawn_server(**creds)
    second = subprocess.run(
        [rampart_bin(), "serve", "--ephemeral", "--listen", f"127.0.0.1:{srv.port}"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        env=clean_env({}),
    )
    assert second.returncode != 0
    assert "cannot listen" in second.stderr, second.stderr
    assert srv.client("sts").get_caller_identity()["Account"] == creds["account_id"]
