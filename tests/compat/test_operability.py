"""Operating `rampart serve`: `GET /metrics`, `--config FILE`, `rampart backup` while serving, JSON logs."""

import json
import os
import re
import signal
import stat
import subprocess
import threading
import time

import pytest
import urllib3

from support import (
    random_key_id,
    random_secret,
    TEST_STORE,
    clean_env,
    doc,
    free_port,
    make_client,
    policy,
    deny,
    random_account_id,
    random_key_id,
    random_secret,
    rampart_bin,
    unique,
)

_HTTP = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=30))


def env_creds():
    return dict(account_id=random_account_id(), access_key_id=random_key_id(), secret_access_key=random_secret())


def scrape(srv) -> dict[str, float]:
    """`GET /metrics` as {series with labels: value}."""
    resp = _HTTP.request("GET", f"{srv.endpoint}/metrics")
    assert resp.status == 200, resp.data[:300]
    assert resp.headers["content-type"].startswith("application/openmetrics-text"), resp.headers
    text = resp.data.decode()
    assert text.endswith("# EOF\n"), text[-200:]
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            samples[series] = float(value)
    return samples


def test_metrics_count_calls_decisions_and_refusals(spawn_server):
    srv = spawn_server(**env_creds())
    iam = srv.client("iam")
    name = unique("metrics")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="deny", PolicyDocument=doc(policy(deny("*"))))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    for _ in range(4):
        iam.list_users()
    denied = make_client("iam", srv.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    with pytest.raises(Exception, match="explicit deny"):
        denied.list_users()
    wrong = make_client("iam", srv.endpoint, srv.access_key_id, random_secret())
    with pytest.raises(Exception, match="SignatureDoesNotMatch"):
        wrong.list_users()
    srv.client("kms").list_keys()

    m = scrape(srv)
    assert m['rampart_calls_total{service="iam",operation="ListUsers",status="200"}'] == 4, m
    assert m['rampart_calls_total{service="iam",operation="ListUsers",status="403"}'] == 1, m
    # Refused before authentication: the operation was never decoded.
    assert m['rampart_calls_total{service="iam",operation="unknown",status="403"}'] == 1, m
    assert m['rampart_calls_total{service="kms",operation="ListKeys",status="200"}'] == 1, m
    assert m['rampart_authorization_decisions_total{service="iam",decision="allow"}'] == 7, m
    assert m['rampart_authorization_decisions_total{service="iam",decision="explicit_deny"}'] == 1, m
    assert m['rampart_requests_refused_total{reason="bad_signature"}'] == 1, m
    assert m['rampart_call_duration_seconds_count{service="iam",operation="ListUsers"}'] == 5, m
    assert m["rampart_audit_commit_duration_seconds_count"] == 10, m
    assert m["rampart_audit_dropped_total"] == 0, m
    backend = "postgres" if TEST_STORE else "sqlite"
    assert m[f'rampart_store_size_bytes{{backend="{backend}"}}'] > 0, m


def wait_healthy(proc, port: int, stderr_path) -> None:
    """Poll the health endpoint until it answers (the condition), failing if the process exits."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"rampart serve exited with {proc.returncode}\n{stderr_path.read_text()}"
        try:
            if _HTTP.request("GET", f"http://127.0.0.1:{port}/_rampart/health", timeout=1.0).status == 200:
                return
        except (urllib3.exceptions.HTTPError, OSError):
            pass
        time.sleep(0.02)  # poll interval of a condition wait, not synchronisation by sleeping
    proc.kill()
    raise AssertionError(f"not healthy after 30 s\n{stderr_path.read_text()}")


def test_config_file_sets_listen_data_dir_threads_and_json_logs(tmp_path):
    port = free_port()
    data = tmp_path / "from-config"
    creds = env_creds()
    cfg = tmp_path / "rampart.toml"
    cfg.write_text(
        f'listen = "127.0.0.1:{port}"\n'
        f'data-dir = "{data}"\n'
        "threads = 3\n"
        'log-format = "json"\n'
        f'account-id = "{creds["account_id"]}"\n'
    )
    stderr = tmp_path / "server-1.stderr"
    with open(tmp_path / "server-1.stdout", "wb") as out, open(stderr, "wb") as err:
        proc = subprocess.Popen([rampart_bin(), "serve", "--config", str(cfg)], stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, env=clean_env(), cwd=tmp_path)
    try:
        wait_healthy(proc, port, stderr)
        assert (data / "rampart.sqlite").exists() and (data / "account.json").exists()
        account = json.loads((data / "account.json").read_text())
        assert account["account_id"] == creds["account_id"]
        # The generated root credentials are printed once at first start (account.json seals the secret).
        printed = dict(line.strip().split("=", 1) for line in (tmp_path / "server-1.stdout").read_text().splitlines()
                       if line.strip().startswith("AWS_"))
        account["root_secret_access_key"] = printed["AWS_SECRET_ACCESS_KEY"]
        sts = make_client("sts", f"http://127.0.0.1:{port}", printed["AWS_ACCESS_KEY_ID"],
                          printed["AWS_SECRET_ACCESS_KEY"])
        assert sts.get_caller_identity()["Account"] == creds["account_id"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    lines = [json.loads(line) for line in stderr.read_text().splitlines() if line.strip()]
    ready = [entry for entry in lines if entry.get("message") == "rampart serve ready"]
    assert ready and ready[0]["threads"] == 3 and ready[0]["address"] == f"127.0.0.1:{port}", lines
    assert account["root_secret_access_key"] not in stderr.read_text()


def test_flags_and_environment_override_the_config_file(spawn_server, tmp_path):
    cfg = tmp_path / "rampart.toml"
    cfg.write_text(f'listen = "127.0.0.1:1"\ndata-dir = "{tmp_path / "ignored"}"\nthreads = 3\n')
    data = tmp_path / "flag-data"
    # RampartServer passes --listen and --data-dir as flags: they win over the file's.
    srv = spawn_server(data_dir=data, extra_args=["--config", str(cfg)],
                       extra_env={"RAMPART_THREADS": "2"}, **env_creds())
    assert srv.health()[0] == 200
    assert (data / "master.key").exists() and not (tmp_path / "ignored").exists()
    assert "threads=2" in srv.stderr(), srv.logs()


def test_unknown_config_key_fails_startup_naming_it(tmp_path):
    cfg = tmp_path / "rampart.toml"
    cfg.write_text('listen = "127.0.0.1:0"\nephemeral = true\ndatadir = "/tmp/x"\n')
    r = subprocess.run([rampart_bin(), "serve", "--config", str(cfg)], capture_output=True, text=True,
                       env=clean_env(), timeout=30)
    assert r.returncode != 0
    assert "unknown field `datadir`" in r.stderr and str(cfg) in r.stderr, r.stderr
    # A key whose value has the wrong type is refused as well, naming it.
    cfg.write_text('threads = "many"\nephemeral = true\n')
    r = subprocess.run([rampart_bin(), "serve", "--config", str(cfg)], capture_output=True, text=True,
                       env=clean_env(), timeout=30)
    assert r.returncode != 0 and "threads" in r.stderr, r.stderr


def test_json_logs_are_json_lines_without_secrets(spawn_server):
    creds = env_creds()
    srv = spawn_server(extra_env={"RAMPART_LOG_FORMAT": "json"}, **creds)
    srv.client("iam").create_user(UserName=unique("jsonlog"))
    assert srv.stop() == 0
    text = srv.stderr()
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) >= 3, text
    entries = [json.loads(line) for line in lines]
    assert {"timestamp", "level", "message"} <= set(entries[0]), entries[0]
    assert any(e["message"] == "rampart serve stopped" for e in entries), entries
    assert creds["secret_access_key"] not in text


def test_backup_while_serving_then_restore(spawn_server, tmp_path):
    # SQLite (the backup command's store) even when the suite runs on PostgreSQL.
    srv = spawn_server(extra_env={"RAMPART_STORE": ""}, access_key_id=random_key_id(), secret_access_key=random_secret())
    root = (srv.access_key_id, srv.secret_access_key)
    account = json.loads((srv.data_dir / "account.json").read_text())
    iam = make_client("iam", srv.endpoint, *root)
    prefix = unique("bk")
    acknowledged: list[str] = []
    reached, backup_started = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def writer():
        try:
            for i in range(400):
                iam.create_user(UserName=f"{prefix}-{i}", Path=f"/{prefix}/")
                acknowledged.append(f"{prefix}-{i}")
                if i == 20:
                    reached.set()
                    backup_started.wait(30)
        except BaseException as e:  # reported below
            errors.append(e)
            reached.set()

    t = threading.Thread(target=writer)
    t.start()
    assert reached.wait(60), "the writer did not get going"
    before = list(acknowledged)
    dest = tmp_path / "backup"
    backup_started.set()
    # The writer keeps committing while the backup runs.
    r = subprocess.run([rampart_bin(), "backup", "--data-dir", str(srv.data_dir), "--to", str(dest)],
                       capture_output=True, text=True, env=clean_env(), timeout=120)
    t.join(120)
    assert not errors, errors
    assert r.returncode == 0, r.stderr
    assert "Restore: rampart serve --data-dir" in r.stdout
    for f in ("master.key", "account.json"):
        assert stat.S_IMODE(os.stat(dest / f).st_mode) == 0o600, f
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o700
    assert srv.stop() == 0

    # Restore: a server on the copy serves the same account with the data acknowledged before it.
    restored = spawn_server(data_dir=dest, extra_env={"RAMPART_STORE": ""})
    riam = make_client("iam", restored.endpoint, *root)
    names = {u["UserName"] for p in riam.get_paginator("list_users").paginate(PathPrefix=f"/{prefix}/")
             for u in p["Users"]}
    assert set(before) <= names, sorted(set(before) - names)
    assert names <= set(acknowledged)
    sts = make_client("sts", restored.endpoint, *root)
    assert sts.get_caller_identity()["Account"] == account["account_id"]

    # A second backup into the same place is refused; nothing is overwritten.
    r = subprocess.run([rampart_bin(), "backup", "--data-dir", str(restored.data_dir), "--to", str(dest)],
                       capture_output=True, text=True, env=clean_env(), timeout=60)
    assert r.returncode != 0 and "already exists" in r.stderr, r.stderr


def test_backup_of_a_postgres_store_points_to_pg_dump(tmp_path):
    r = subprocess.run([rampart_bin(), "backup", "--data-dir", str(tmp_path), "--to", str(tmp_path / "b"),
                        "--store", "postgres://u@localhost/db"], capture_output=True, text=True, env=clean_env(),
                       timeout=30)
    assert r.returncode == 2 and "pg_dump" in r.stderr, r.stderr
    assert not (tmp_path / "b").exists()


def test_metrics_survive_a_moto_reset(spawn_server):
    srv = spawn_server(data_dir=None, extra_args=["--compat", "moto"], extra_env={"RAMPART_STORE": ""})
    sts = make_client("sts", srv.endpoint, "test", "test")
    sts.get_caller_identity()
    assert _HTTP.request("POST", f"{srv.endpoint}/moto-api/reset").status == 200
    sts.get_caller_identity()
    m = scrape(srv)
    assert m['rampart_calls_total{service="sts",operation="GetCallerIdentity",status="200"}'] == 2, m
    assert m['rampart_store_size_bytes{backend="memory"}'] > 0, m
    assert m["process_resident_memory_bytes"] > 0, m
