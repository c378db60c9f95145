"""Helpers shared by the compat tests: the server process, clients, raw signed requests, assertions.

Everything here talks to `rampart serve` only through its public interfaces (the CLI flags and env
vars of DESIGN.md "Interfaces", the AWS wire protocols, `GET /_rampart/health`).
"""

from __future__ import annotations

import threading

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from unittest import mock

import boto3
import botocore.auth
import pytest
import urllib3
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
IAM_VERSION = "2010-05-08"
STS_VERSION = "2011-06-15"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0

# Fail fast, never retry: a retry would hide the first answer, which is what we assert on.
CLIENT_CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30)

# One botocore session for every client: loading service models once keeps the suite fast.
_SESSION = boto3.session.Session()
_HTTP = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=30))


# RAMPART_TEST_STORE=postgres://…: every server with a data directory keeps its store in PostgreSQL
# instead, each in a fresh schema named after its data directory (a restart finds its data again).
TEST_STORE = os.environ.get("RAMPART_TEST_STORE", "")
CREATED_SCHEMAS: set[str] = set()


def require_postgres(reachable: bool, where: str) -> None:
    """Tests that need PostgreSQL fail when it is missing (CI must not pass on tests that did not
    run); RAMPART_TEST_NO_PG=1 skips them instead, on a machine without one."""
    if reachable:
        return
    if os.environ.get("RAMPART_TEST_NO_PG") == "1":
        pytest.skip(f"RAMPART_TEST_NO_PG=1: PostgreSQL at {where} not used")
    pytest.fail(f"PostgreSQL is not reachable at {where}: start it (.ci/run does) or set RAMPART_TEST_NO_PG=1 "
                "to skip the tests that need it")


def store_base_url(url: str = TEST_STORE) -> str:
    """`url` without Rampart's own `schema=` / `pool_size=` parameters (what psql understands)."""
    base, _, query = url.partition("?")
    rest = [p for p in query.split("&") if p and not p.startswith(("schema=", "pool_size="))]
    return base + ("?" + "&".join(rest) if rest else "")


def store_url(schema: str, url: str = TEST_STORE) -> str:
    base = store_base_url(url)
    return f"{base}{'&' if '?' in base else '?'}schema={schema}"


def schema_for(data_dir: Path) -> str:
    name = "rt_" + hashlib.sha1(str(Path(data_dir).resolve()).encode()).hexdigest()[:24]
    CREATED_SCHEMAS.add(name)
    return name


def drop_schemas(names, url: str = TEST_STORE) -> None:
    """Drop test schemas with psql (best effort: leftovers only cost space in the test database)."""
    names = sorted(names)
    psql = shutil.which("psql")
    if not names or not url or not psql:
        return
    for i in range(0, len(names), 50):
        sql = "DROP SCHEMA IF EXISTS " + ", ".join(f'"{n}"' for n in names[i : i + 50]) + " CASCADE"
        subprocess.run([psql, store_base_url(url), "-q", "-c", sql], capture_output=True, timeout=60)


def rampart_bin() -> str:
    path = os.environ.get("RAMPART_BIN") or str(REPO / "target" / "debug" / "rampart")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.exit(
            f"rampart binary not found at {path}: build it first (`cargo build --bin rampart`) "
            "or point RAMPART_BIN at it",
            returncode=2,
        )
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_account_id() -> str:
    return str(secrets.randbelow(9 * 10**11) + 10**11)


def random_key_id(prefix: str = "AKIA") -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(16))


def random_secret() -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    return "".join(secrets.choice(alphabet) for _ in range(40))


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for child processes: nothing from the caller's AWS / RAMPART setup leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RAMPART_"))}
    env.update(
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_EC2_METADATA_DISABLED="true",
    )
    if extra:
        env.update(extra)
    return env


class RampartServer:
    """One `rampart serve` process on a free loopback port."""

    def __init__(
        self,
        workdir: Path,
        *,
        data_dir: Path | None = None,
        ephemeral: bool = False,
        account_id: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        extra_env: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
    ):
        assert data_dir is not None or ephemeral or extra_args
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.ephemeral = ephemeral
        self.account_id = account_id
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.extra_env = extra_env or {}
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.starts = 0
        self._stdout_path: Path | None = None
        self._stderr_path: Path | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [rampart_bin(), "serve", "--listen", f"127.0.0.1:{self.port}"]
        if self.ephemeral:
            cmd.append("--ephemeral")
        elif self.data_dir is not None:
            cmd += ["--data-dir", str(self.data_dir)]
        return cmd + self.extra_args

    def env(self) -> dict[str, str]:
        extra = dict(self.extra_env)
        if self.account_id:
            extra["RAMPART_ACCOUNT_ID"] = self.account_id
        if self.access_key_id:
            extra["RAMPART_ROOT_ACCESS_KEY_ID"] = self.access_key_id
            extra["RAMPART_ROOT_SECRET_ACCESS_KEY"] = self.secret_access_key or ""
        if TEST_STORE and not self.ephemeral and self.data_dir is not None and "RAMPART_STORE" not in extra:
            extra["RAMPART_STORE"] = store_url(schema_for(self.data_dir))
        return clean_env(extra)

    def start(self, timeout: float = START_TIMEOUT) -> "RampartServer":
        assert self.proc is None, "already running"
        self.starts += 1
        self.port = free_port()
        self._stdout_path = self.workdir / f"server-{self.starts}.stdout"
        self._stderr_path = self.workdir / f"server-{self.starts}.stderr"
        with open(self._stdout_path, "wb") as out, open(self._stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.command(), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=self.env(), cwd=self.workdir
            )
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"rampart serve exited with {self.proc.returncode} before becoming healthy\n{self.logs()}"
                )
            try:
                resp = _HTTP.request("GET", f"{self.endpoint}/_rampart/health", timeout=1.0)
                if resp.status == 200:
                    return json.loads(resp.data)
                last_error = RuntimeError(f"health answered {resp.status}: {resp.data[:200]!r}")
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as e:
                last_error = e
            time.sleep(0.02)  # poll interval of a condition wait, not synchronisation by sleeping
        self.kill()
        raise RuntimeError(f"rampart serve not healthy after {timeout}s ({last_error})\n{self.logs()}")

    def health(self) -> tuple[int, dict]:
        resp = _HTTP.request("GET", f"{self.endpoint}/_rampart/health")
        return resp.status, json.loads(resp.data)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Signal the server and wait for it to exit; returns its exit code."""
        assert self.proc is not None, "not running"
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"rampart serve did not exit within {timeout}s of signal {sig}\n{self.logs()}")
        self.proc = None
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> "RampartServer":
        code = self.stop()
        assert code == 0, f"rampart serve exited with {code} on SIGTERM\n{self.logs()}"
        return self.start()

    def stdout(self, start: int | None = None) -> str:
        path = self.workdir / f"server-{start or self.starts}.stdout"
        return path.read_text(errors="replace") if path.exists() else ""

    def stderr(self, start: int | None = None) -> str:
        path = self.workdir / f"server-{start or self.starts}.stderr"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return f"--- stdout ---\n{self.stdout()[-4000:]}\n--- stderr ---\n{self.stderr()[-4000:]}"

    # -- clients -------------------------------------------------------------------------------
    def client(self, service: str, key: str | None = None, secret: str | None = None, token: str | None = None,
               region: str = REGION, **config):
        return make_client(
            service, self.endpoint, key or self.access_key_id, secret or self.secret_access_key, token, region,
            **config,
        )


def make_client(service: str, endpoint: str, key: str, secret: str, token: str | None = None, region: str = REGION,
                **config):
    cfg = CLIENT_CONFIG.merge(Config(**config)) if config else CLIENT_CONFIG
    return _SESSION.client(
        service,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=cfg,
    )


# -- names -----------------------------------------------------------------------------------------
_counter = 0


def unique(prefix: str = "t") -> str:
    """A name no other test uses: valid for users, groups, roles, policies, instance profiles."""
    global _counter
    _counter += 1
    return f"{prefix}-{_counter}-{uuid.uuid4().hex[:8]}"


def unique_path() -> str:
    return f"/compat/{uuid.uuid4().hex[:10]}/"


# -- policy documents ------------------------------------------------------------------------------
def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action, resource="*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource="*", **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def doc(d: dict) -> str:
    return json.dumps(d)


def trust(service: str = "ec2.amazonaws.com") -> dict:
    return policy({"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"})


ADMIN = policy(allow("*"))
ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
IAM_READ_ONLY_ARN = "arn:aws:iam::aws:policy/IAMReadOnlyAccess"


# -- assertions ------------------------------------------------------------------------------------
@contextlib.contextmanager
def aws_error(code: str, status: int | None = None, message: str | None = None, match: str | None = None,
              codes: tuple[str, ...] = ()) -> Iterator[pytest.ExceptionInfo]:
    """Expect a ClientError with this AWS error code (or one of `codes`), HTTP status and message."""
    with pytest.raises(ClientError) as ei:
        yield ei
    resp = ei.value.response
    err = resp.get("Error", {})
    allowed = (code, *codes)
    assert err.get("Code") in allowed, f"expected {allowed}, got {err!r} (HTTP {resp['ResponseMetadata'].get('HTTPStatusCode')})"
    if status is not None:
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == status, f"{err!r}: HTTP {resp['ResponseMetadata']['HTTPStatusCode']}"
    if message is not None:
        assert err.get("Message") == message, f"message {err.get('Message')!r} != {message!r}"
    if match is not None:
        assert re.search(match, err.get("Message", "")), f"message {err.get('Message')!r} !~ {match!r}"
    assert resp["ResponseMetadata"].get("RequestId"), "error responses carry a RequestId"


def error_of(e: ClientError) -> tuple[str, int, str]:
    return (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Message"])


def recent(ts: dt.datetime, within: float = 300) -> bool:
    now = dt.datetime.now(dt.timezone.utc)
    return abs((now - ts).total_seconds()) <= within


def access_denied_message(principal_arn: str, action: str, resource: str, reason: str = "identity") -> str:
    """AWS's implicit-deny message ("because no <type> policy allows the <action> action")."""
    kind = {"identity": "identity-based policy", "boundary": "permissions boundary"}[reason]
    return (
        f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} "
        f"because no {kind} allows the {action} action"
    )


def explicit_deny_prefix(principal_arn: str, action: str, resource: str) -> str:
    return (
        f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} "
        "with an explicit deny in an identity-based policy"
    )


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.05):
    """Poll a condition until it holds (for state AWS documents as asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def collect_pages(call, key: str, max_items: int, **params) -> tuple[list, int]:
    """Follow Marker/IsTruncated by hand; returns (all items, number of pages)."""
    items, pages, marker = [], 0, None
    while True:
        kwargs = dict(params, MaxItems=max_items)
        if marker:
            kwargs["Marker"] = marker
        resp = call(**kwargs)
        pages += 1
        page = resp[key]
        assert len(page) <= max_items, f"page of {len(page)} > MaxItems {max_items}"
        items.extend(page)
        if not resp.get("IsTruncated"):
            assert "Marker" not in resp or not resp["Marker"], "no Marker on the last page"
            return items, pages
        assert resp.get("Marker"), "IsTruncated=true must come with a Marker"
        marker = resp["Marker"]
        assert pages < 1000, "pagination does not terminate"


# -- raw signed requests ---------------------------------------------------------------------------
@dataclass
class RawResponse:
    status: int
    headers: dict
    body: bytes
    _xml: ET.Element | None = field(default=None, repr=False)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def xml(self) -> ET.Element:
        if self._xml is None:
            self._xml = ET.fromstring(self.body)
        return self._xml

    def find(self, path: str) -> ET.Element | None:
        """Find by local names, ignoring namespaces: 'Error/Code'."""
        node = self.xml
        for part in path.split("/"):
            node = next((c for c in node if local(c.tag) == part), None)
            if node is None:
                return None
        return node

    def findtext(self, path: str) -> str | None:
        node = self.find(path)
        return None if node is None else (node.text or "")

    @property
    def error_code(self) -> str | None:
        return self.findtext("Error/Code")

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def send(method: str, url: str, headers: dict | None = None, body: bytes | str | None = None) -> RawResponse:
    if isinstance(body, str):
        body = body.encode()
    resp = _HTTP.request(method, url, headers=headers or {}, body=body, redirect=False)
    return RawResponse(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.data)


def sign(request: AWSRequest, key: str, secret: str, service: str = "iam", region: str = REGION,
         token: str | None = None, when: dt.datetime | None = None) -> AWSRequest:
    """SigV4-sign with botocore's signer; `when` patches the signer's clock (naive UTC)."""
    signer = botocore.auth.SigV4Auth(Credentials(key, secret, token), service, region)
    if when is None:
        signer.add_auth(request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            signer.add_auth(request)
    return request


def query_request(endpoint: str, params: dict, method: str = "POST", headers: dict | None = None) -> AWSRequest:
    """An awsQuery request: form body for POST, query string for GET."""
    body = urllib.parse.urlencode(params)
    if method == "GET":
        return AWSRequest(method="GET", url=f"{endpoint}/?{body}", headers=dict(headers or {}))
    hdrs = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", **(headers or {})}
    return AWSRequest(method="POST", url=f"{endpoint}/", data=body.encode(), headers=hdrs)


def send_request(req: AWSRequest) -> RawResponse:
    prepared = req.prepare()
    return send(prepared.method, prepared.url, dict(prepared.headers.items()), prepared.body)


def signed_query(server: RampartServer, params: dict, *, method: str = "POST", service: str = "iam",
                 key: str | None = None, secret: str | None = None, when: dt.datetime | None = None,
                 headers: dict | None = None) -> RawResponse:
    req = query_request(server.endpoint, params, method=method, headers=headers)
    sign(req, key or server.access_key_id, secret or server.secret_access_key, service=service, when=when)
    return send_request(req)


def utcnow_naive() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class UserWriters:
    """Threads creating users under `path` until stopped or their server dies (a kill test's load):
    `acknowledged` holds every name whose CreateUser was answered with success."""

    def __init__(self, server: "RampartServer", path: str, threads: int):
        self.server, self.path = server, path
        self.acknowledged: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._progress = threading.Semaphore(0)
        self._threads = [threading.Thread(target=self._write, args=(w,)) for w in range(threads)]
        for t in self._threads:
            t.start()

    def _write(self, w: int) -> None:
        client = self.server.client("iam")
        i = 0
        while not self._stop.is_set():
            name = f"k{w}-{i}-{uuid.uuid4().hex[:6]}"
            i += 1
            try:
                client.create_user(UserName=name, Path=self.path)
            except Exception:  # the server died under us: unacknowledged, may or may not exist
                return
            with self._lock:
                self.acknowledged.append(name)
            self._progress.release()

    def wait_for(self, writes: int) -> None:
        """Block until `writes` more users were acknowledged."""
        for _ in range(writes):
            assert self._progress.acquire(timeout=30), "writes stalled"

    def stop(self) -> set[str]:
        """Stop (after the server died, or to end the load); the acknowledged names."""
        self._stop.set()
        for t in self._threads:
            t.join(30)
        with self._lock:
            return set(self.acknowledged)
