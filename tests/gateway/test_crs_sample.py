"""Quick CI check of the gateway's detection: replays every 10th test of the OWASP CRS regression
corpus (when ../shared/corpora/crs-regression is present) through `rampart gateway` with the managed
rule groups of bench/gateway/crs-acl.json, and asserts a minimum detection rate and a maximum
false-positive rate. The full replay and the peer comparison are bench/gateway/run.sh."""

import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench" / "gateway"))

import crs_replay  # noqa: E402
import upstream  # noqa: E402

# Measured on the full corpus: 50.0% detection, 12.2% false positives (nginx + ModSecurity + CRS 3.3 PL1:
# 40% / 22%). The floor and ceiling leave room for the sample's noise, not for regressions.
MIN_DETECTION = 0.44
MAX_FALSE_POSITIVES = 0.20


@pytest.fixture(scope="module")
def gateway():
    binary = os.environ.get("RAMPART_BIN") or str(ROOT / "target" / "debug" / "rampart")
    if not os.path.exists(binary):
        pytest.skip(f"no rampart binary at {binary}")
    srv = upstream.Server(("127.0.0.1", 0), upstream.H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    up = f"http://127.0.0.1:{srv.server_address[1]}"
    proc = subprocess.Popen(
        [binary, "gateway", "--listen", "127.0.0.1:0", "--upstream", up, "--web-acl", str(ROOT / "bench" / "gateway" / "crs-acl.json"),
         "--no-auto-mitigation", "--max-connections-per-ip", "0"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "RAMPART_LOG": "info", "NO_COLOR": "1"},
    )
    addr = None
    for line in proc.stderr:
        m = re.search(r"gateway listening addr=(\S+)", re.sub(r"\x1b\[[0-9;]*m", "", line))
        if m:
            addr = m.group(1)
            break
    if addr is None:
        proc.kill()
        pytest.fail("gateway did not start")
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    yield addr
    proc.terminate()
    proc.wait(timeout=10)
    srv.shutdown()


def test_crs_sample_detection_and_false_positives(gateway):
    corpus = crs_replay.find_corpus(os.environ.get("CRS_CORPUS"))
    if not corpus:
        pytest.skip("CRS regression corpus not present")
    tests = crs_replay.load_tests(corpus)[::10]
    res = crs_replay.replay(gateway, tests, workers=4)
    tot = res["total"]
    assert tot["attack"] > 300 and tot["benign"] > 50
    assert tot["detection_rate"] >= MIN_DETECTION, tot
    assert tot["false_positive_rate"] <= MAX_FALSE_POSITIVES, tot
