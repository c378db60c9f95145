"""Secrets Manager benchmark: Rampart vs moto's server, the same boto3 load in the same run.

For each server: CreateSecret, PutSecretValue and GetSecretValue, COUNT calls each over THREADS
client threads; reports calls/s and the server's CPU time per call (utime+stime from /proc, before
and after the measured calls), which is the fair comparison when the Python client shares the
machine. Rampart does real work per call (SigV4 verification, IAM policy evaluation, AES-GCM
envelope encryption, a durable SQLite commit per write); moto accepts any call and keeps memory.

    bench/secrets/run.sh                  # builds release, prepares moto, prints a Markdown table
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

COUNT = int(os.environ.get("COUNT", "2000"))
THREADS = int(os.environ.get("THREADS", "4"))
ACCOUNT, KEY, SECRET = "123456789012", "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TCK


def rss_mib(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} did not become healthy")


def client(endpoint: str):
    return boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id=KEY,
                        aws_secret_access_key=SECRET,
                        config=Config(retries={"max_attempts": 1}, max_pool_connections=THREADS * 2))


def run(pid: int, fn, n: int) -> dict:
    before, t0 = cpu_s(pid), time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(fn, range(n)))
    elapsed, after = time.perf_counter() - t0, cpu_s(pid)
    return {"calls_per_s": n / elapsed, "cpu_us_per_call": (after - before) / n * 1e6}


def measure(name: str, cmd: list[str], env: dict, health: str, port: int) -> dict:
    log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
    try:
        wait_healthy(f"http://127.0.0.1:{port}{health}")
        sm = client(f"http://127.0.0.1:{port}")
        prefix = f"bench-{os.getpid()}"
        # Warm-up (connections, lazy initialisation).
        for i in range(50):
            sm.create_secret(Name=f"{prefix}-warm-{i}", SecretString="w")
            sm.get_secret_value(SecretId=f"{prefix}-warm-{i}")
        out = {"server": name, "idle_rss_mib": rss_mib(proc.pid)}
        out["CreateSecret"] = run(proc.pid, lambda i: sm.create_secret(Name=f"{prefix}-{i}", SecretString=f"value-{i}"), COUNT)
        out["PutSecretValue"] = run(proc.pid, lambda i: sm.put_secret_value(SecretId=f"{prefix}-{i}", SecretString=f"v2-{i}"), COUNT)
        out["GetSecretValue"] = run(proc.pid, lambda i: sm.get_secret_value(SecretId=f"{prefix}-{i % COUNT}"), COUNT)
        out["rss_after_mib"] = rss_mib(proc.pid)
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    rampart_bin, moto_server = sys.argv[1], sys.argv[2]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RAMPART_"))}
    rp, mp = free_port(), free_port()
    results = [
        measure("rampart", [rampart_bin, "serve", "--ephemeral", "--listen", f"127.0.0.1:{rp}"],
                dict(base, RAMPART_ACCOUNT_ID=ACCOUNT, RAMPART_ROOT_ACCESS_KEY_ID=KEY,
                     RAMPART_ROOT_SECRET_ACCESS_KEY=SECRET, RAMPART_LOG="warn"), "/_rampart/health", rp),
        measure("moto", [moto_server, "-H", "127.0.0.1", "-p", str(mp)], base, "/moto-api/data.json", mp),
    ]
    for r in results:
        print(json.dumps(r), file=sys.stderr)
    r, m = results
    print(f"\n{COUNT} boto3 calls per operation, {THREADS} client threads, loopback, {os.cpu_count()} cores\n")
    print("| operation | Rampart calls/s | moto calls/s | Rampart CPU/call | moto CPU/call | CPU ratio (moto/Rampart) |")
    print("|---|---:|---:|---:|---:|---:|")
    for op in ("CreateSecret", "PutSecretValue", "GetSecretValue"):
        a, b = r[op], m[op]
        ratio = b["cpu_us_per_call"] / a["cpu_us_per_call"] if a["cpu_us_per_call"] else float("inf")
        print(f"| secretsmanager:{op} | {a['calls_per_s']:,.0f} | {b['calls_per_s']:,.0f} | "
              f"{a['cpu_us_per_call']:.0f} µs | {b['cpu_us_per_call']:.0f} µs | {ratio:.1f}× |")
    print(f"\nRSS idle / after: Rampart {r['idle_rss_mib']:.1f} / {r['rss_after_mib']:.1f} MiB, "
          f"moto {m['idle_rss_mib']:.1f} / {m['rss_after_mib']:.1f} MiB")


if __name__ == "__main__":
    main()
