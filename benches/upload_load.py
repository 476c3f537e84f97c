#!/usr/bin/env python3
"""Upload load test: a school year for Örebro county sent in parallel through
`POST /api/v1/uploads` while report pages are read, against `narvaro serve` on loopback.

    benches/upload_load.py [--uploaders 8] [--readers 4] [--year 2025/26]
    benches/upload_load.py --lake LAKE --fixtures FX [--county 18] --readers 32

Each municipality's school system uploads its monthly files with its own token
(`upload:municipality:CODE`), as in production. Prints upload throughput (files/s and rows/s),
p50/p99 latency of uploads and of page reads, every error, and the server's RSS (and the
background publisher's, a process of its own).

Without `--lake` it builds a county lake of its own (the year before ingested and published).
With `--lake` it uploads the county's school year from `--fixtures` into that lake (e.g. the
national bench lake, published: the lake is changed) while readers read that county's and
its municipalities' pages of the year.
Needs only Python's standard library and a release build (`cargo build --release`, which the
script runs). Figures go into README.md with the machine they ran on.
"""

import argparse
import concurrent.futures as cf
import json
import os
import pathlib
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from common import BIN, fresh, percentile, run
# Pages of the school year before, which `ingest` published before the burst.
PAGES = [
    "/reports/committee/1880/VT2025",
    "/reports/county/18/VT2025",
    "/reports/committee/1884/HT2024",
    "/",
]




# The `/healthz` prober, run as a process of its own: one latency in seconds per line.
PROBE = """
import sys, time, urllib.request
while True:
    t = time.perf_counter()
    with urllib.request.urlopen(sys.argv[1] + "/healthz", timeout=300) as r:
        r.read()
    print(time.perf_counter() - t, flush=True)
    time.sleep(0.2)
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uploaders", type=int, default=8)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--year", default="2025/26")
    ap.add_argument("--lake", help="an existing, published lake to upload into (changed)")
    ap.add_argument("--fixtures", help="with --lake: the fixtures its data came from")
    ap.add_argument("--county", default="18", help="with --lake: the county whose year is sent")
    a = ap.parse_args()

    WORK = fresh("upload-load")
    config = WORK / "narvaro.toml"
    start_year = int(a.year[:4])

    def school_year(y):
        return {f"{y}-{m:02d}" for m in range(8, 13)} | {f"{y + 1}-{m:02d}" for m in range(1, 7)}

    months = school_year(start_year)
    if a.lake:
        fx, lake = pathlib.Path(a.fixtures), pathlib.Path(a.lake)
        files = sorted(
            p for p in (fx / "attendance").rglob("*")
            if p.is_file() and p.parent.name in months and p.stem.startswith(a.county)
        )
        terms = [f"HT{start_year}", f"VT{start_year + 1}"]
        pages = [f"/reports/county/{a.county}/{t}" for t in terms] + [
            f"/reports/committee/{m}/{t}" for m in sorted({p.stem for p in files}) for t in terms
        ] + ["/"]
    else:
        fx, lake = WORK / "fx", WORK / "lake"
        run("fixtures", "--out", str(fx), "--scale", "county")
        # The year before, ingested and published as `narvaro ingest` does: what readers read.
        before = sorted(str(d) for d in (fx / "attendance").iterdir() if d.name in school_year(start_year - 1))
        run("ingest", "--lake", str(lake), str(fx / "register.csv"), *before)
        files = sorted(
            p for p in fx.rglob("*") if p.is_file() and p.parent.name in months
        )
        pages = PAGES
    tokens = {}
    for code in sorted({p.stem for p in files}):
        out = run("token", "create", "--config", str(config), "--name", f"skolsystem {code}",
                  "--scope", f"upload:municipality:{code}")
        tokens[code] = out.stdout.strip()

    server = subprocess.Popen(
        [str(BIN), "serve", "--lake", str(lake), "--config", str(config), "--addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        line = server.stdout.readline()
        url = re.search(r"http://[^\s/]+", line).group(0)
        rss_peak = [0]

        publisher_peak = [0]

        def rss(pid=None):
            try:
                with open(f"/proc/{pid or server.pid}/status") as f:
                    for l in f:
                        if l.startswith("VmRSS:"):
                            return int(l.split()[1])
            except OSError:
                pass
            return 0

        def descendants(pid):
            """Every process below `pid`: a child is listed under the thread that spawned it
            (the publisher under a tokio worker), and `nice` execs the publisher in place."""
            found = []
            try:
                tasks = os.listdir(f"/proc/{pid}/task")
            except OSError:
                return found
            for t in tasks:
                try:
                    with open(f"/proc/{pid}/task/{t}/children") as f:
                        kids = [int(c) for c in f.read().split()]
                except OSError:
                    continue
                for k in kids:
                    found.append(k)
                    found.extend(descendants(k))
            return found

        def publisher_rss():
            """The background publisher's RSS (a child process of the server), 0 when idle."""
            return sum(rss(c) for c in descendants(server.pid))

        def upload(path):
            body = path.read_bytes()
            media = "application/vnd.apache.parquet" if path.suffix == ".parquet" else "text/csv"
            req = urllib.request.Request(
                f"{url}/api/v1/uploads?filename={path.parent.name}-{path.name}", data=body,
                method="POST", headers={"Content-Type": media,
                                        "Authorization": f"Bearer {tokens[path.stem]}"})
            t = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=300) as r:
                    receipt = json.load(r)
                    return time.perf_counter() - t, r.status, receipt["rows"], None
            except urllib.error.HTTPError as e:
                return time.perf_counter() - t, e.code, 0, e.read()[:300]

        done = threading.Event()
        page_times, page_errors = [], []

        def reader(i):
            n = i
            while not done.is_set():
                path = pages[n % len(pages)]
                n += 1
                t = time.perf_counter()
                try:
                    with urllib.request.urlopen(f"{url}{path}", timeout=300) as r:
                        r.read()
                    page_times.append(time.perf_counter() - t)
                except urllib.error.HTTPError as e:
                    # A page for a term not uploaded yet is a correct 404, not an error.
                    if e.code != 404:
                        page_errors.append((path, e.code))

        def sampler():
            """The server's and the publisher's RSS every 0.1 s."""
            while not done.is_set():
                rss_peak[0] = max(rss_peak[0], rss())
                publisher_peak[0] = max(publisher_peak[0], publisher_rss())
                time.sleep(0.1)

        # `/healthz` every 0.2 s from a process of its own (a thread here would wait for the
        # readers' threads and time them, not the server), read line by line meanwhile.
        health_times = []
        prober = subprocess.Popen([sys.executable, "-c", PROBE, url], stdout=subprocess.PIPE, text=True)

        def health():
            for line in prober.stdout:
                health_times.append(float(line))

        readers = [threading.Thread(target=reader, args=(i,)) for i in range(a.readers)]
        readers.append(threading.Thread(target=sampler))
        readers.append(threading.Thread(target=health))
        for r in readers:
            r.start()
        t0 = time.perf_counter()
        with cf.ThreadPoolExecutor(a.uploaders) as pool:
            results = list(pool.map(upload, files))
        wall = time.perf_counter() - t0
        # Readers go on until the background publisher has published the burst.
        while True:
            with urllib.request.urlopen(f"{url}/healthz", timeout=300) as r:
                h = json.load(r)
            if not h["waiting"] and (h["published"] or {}).get("data_version") == h["data_version"]:
                break
            time.sleep(0.5)
        published_after = time.perf_counter() - t0 - wall
        done.set()
        prober.terminate()
        for r in readers:
            r.join()

        lat = [r[0] for r in results]
        errors = [(f.name, r[1], r[3]) for f, r in zip(files, results) if r[1] != 201]
        rows = sum(r[2] for r in results)
        print(f"uploads: {len(files)} files ({rows} rows) for {a.year} from {len(tokens)} "
              f"school systems, {a.uploaders} at a time, with {a.readers} page readers")
        print(f"  throughput: {len(files) / wall:.1f} files/s, {rows / wall:.0f} rows/s "
              f"({wall:.1f} s)")
        print(f"  latency: p50 {1000 * percentile(lat, 50):.0f} ms, "
              f"p99 {1000 * percentile(lat, 99):.0f} ms")
        print(f"  errors: {len(errors)}")
        for e in errors[:10]:
            print(f"    {e}")
        print(f"  published {published_after:.1f} s after the last upload was answered")
        print(f"pages read meanwhile (until published): {len(page_times)}, p50 "
              f"{1000 * percentile(page_times, 50):.0f} ms, p99 "
              f"{1000 * percentile(page_times, 99):.0f} ms, errors {len(page_errors)}")
        print(f"/healthz meanwhile: {len(health_times)}, p50 "
              f"{1000 * percentile(health_times, 50):.0f} ms, p99 "
              f"{1000 * percentile(health_times, 99):.0f} ms")
        print(f"server RSS peak: {rss_peak[0] // 1024} MB, "
              f"the background publisher's: {publisher_peak[0] // 1024} MB")
        first = sorted(tokens)[0]
        req = urllib.request.Request(f"{url}/api/v1/uploads?limit=1000",
                                     headers={"Authorization": f"Bearer {tokens[first]}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            seen = len(json.load(r)["uploads"])
        print(f"audit records visible to school system {first}: {seen}")
        return 1 if errors or page_errors else 0
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
