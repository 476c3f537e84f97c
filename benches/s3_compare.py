#!/usr/bin/env python3
"""One upload and one report page on a lake in S3-compatible storage and on local disk, in one
run, against `narvaro serve` (release build) on loopback.

    benches/s3_compare.py [--n 30]

Starts moto's S3 server (`target/py/bin/moto_server`, which `.ci/run` installs; or MOTO=PATH)
on a free loopback port, generates the county fixtures, and builds two lakes from the same
files: `s3://bench/lake` and a local directory (register, August-October 2025, published). Then,
for each lake, with `narvaro serve` on it:
- `--n` schools' November rows, one upload at a time (new keys: one Delta commit each),
- `--n` school reports read for the first time after a restart (the report read from the
  publication in the lake, rendered once), and
- one committee page asked for `--n` times (warm: the rendered page from memory).
Prints p50/p90/max of each as the client sees it. moto keeps its objects in memory in the same
machine, so the S3 figures count the protocol's round trips (signing, HTTP, conditional writes,
listing the log), not a network's latency. Figures go into docs/performance.md with the machine.
"""

import argparse
import os
import re
import socket
import subprocess
import time
import urllib.request

from common import BIN, ROOT, fresh, percentile, run
from upload_latency import school_files


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto():
    exe = os.environ.get("MOTO", str(ROOT / "target" / "py" / "bin" / "moto_server"))
    port = free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    req = urllib.request.Request(f"{endpoint}/bench", method="PUT", headers={
        "Authorization": "AWS4-HMAC-SHA256 Credential=bench/20261201/us-east-1/s3/aws4_request,"
                         " SignedHeaders=host, Signature=0"})
    urllib.request.urlopen(req).read()
    return proc, endpoint


def timed(f):
    t = time.perf_counter()
    f()
    return (time.perf_counter() - t) * 1000


def measure(name, lake, config, token, november, schools, n, env):
    server = subprocess.Popen(
        [str(BIN), "serve", "--lake", lake, "--config", str(config), "--addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        url = re.search(r"http://[^\s/]+", server.stdout.readline()).group(0)

        def get(path):
            with urllib.request.urlopen(f"{url}{path}", timeout=120) as r:
                r.read()
                assert r.status == 200, (path, r.status)

        def post(body):
            req = urllib.request.Request(
                f"{url}/api/v1/uploads?filename=school.csv", data=body, method="POST",
                headers={"Content-Type": "text/csv", "Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, timeout=120) as r:
                r.read()
                assert r.status == 201, r.status

        # Reports first, before uploads make uploads wait for a publication.
        cold = [timed(lambda s=s: get(f"/reports/school/{s}/HT2025")) for s in schools[:n]]
        get("/reports/committee/1880/HT2025")
        warm = [timed(lambda: get("/reports/committee/1880/HT2025")) for _ in range(n)]
        post(november[sorted(november)[-1]])  # the first argon2 hash and a warm writer
        uploads = [timed(lambda s=s: post(november[s])) for s in sorted(november)[:n]]
        for what, xs in [("upload of a new school-month", uploads),
                         ("school report, first read after a start", cold),
                         ("committee page, warm", warm)]:
            print(f"{name:<6} {what}: n={len(xs)}, p50 {percentile(xs, 50):.1f} ms, "
                  f"p90 {percentile(xs, 90):.1f} ms, max {max(xs):.1f} ms", flush=True)
    finally:
        server.terminate()
        server.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30)
    a = ap.parse_args()
    work = fresh("s3-compare")
    moto, endpoint = start_moto()
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench",
               AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1", AWS_ALLOW_HTTP="true")
    try:
        fx, config = work / "fx", work / "narvaro.toml"
        run("fixtures", "--out", str(fx), "--scale", "county", "--seed", "2025")
        att = fx / "attendance"
        files = [str(fx / "register.csv"), *(str(att / m) for m in ["2025-08", "2025-09", "2025-10"])]
        lakes = [("s3", "s3://bench/lake"), ("local", str(work / "lake"))]
        for name, lake in lakes:
            t = time.perf_counter()
            run("ingest", "--lake", lake, *files, env=env)
            print(f"{name:<6} ingest and publish of the register and three months: "
                  f"{time.perf_counter() - t:.1f} s", flush=True)
        # A long settle time: the background publisher stays out of the measurement.
        config.write_text("[server]\npublish_settle_secs = 3600\npublish_max_wait_secs = 3600\n")
        token = run("token", "create", "--config", str(config), "--name", "bench",
                    "--scope", "admin").stdout.strip()
        november = school_files(att / "2025-11")
        schools = sorted(school_files(att / "2025-10"))
        for name, lake in lakes:
            measure(name, lake, config, token, november, schools, a.n, env)
    finally:
        moto.terminate()
        moto.wait()


if __name__ == "__main__":
    main()
