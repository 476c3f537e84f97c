#!/usr/bin/env python3
"""One school-month upload, end to end, against `narvaro serve` (release build) on loopback.

    benches/upload_latency.py [--n 40]
    benches/upload_latency.py --lake LAKE --fixtures FX [--month 2026-05] [--n 40]

Generates the county fixtures, ingests the register and August–October 2025 and compacts the
lake (as a server would find it mid-year), starts `narvaro serve` and then, one at a time:
- sends `--n` schools' October rows again (each school's first correction: its keys sit in
  the compacted month's file, whose other rows are written again),
- sends one of them again `--n` times (a repeated correction: its keys sit in its own file), and
- sends `--n` schools' November rows (new keys: the month's first uploads).
Prints p50/p90/max latency of each as the client sees it (token check, validation, scope,
commit, audit). The goal (issue: hardening) is p50 <= 100 ms. Figures go into
docs/performance.md with the machine they ran on.

With `--lake` (e.g. the national bench lake, published; the lake is changed) it sends, one at a
time, the `--n` smallest municipality files of `--month` from `--fixtures` (the fixtures the
lake was built from, or another seed's: every key a replacement), each a school system's
month of one or two schools: a school-month's upload as the national lake sees it.
"""

import argparse
import csv
import io
import pathlib
import re
import subprocess
import time
import urllib.error
import urllib.request

from common import BIN, fresh, percentile, run




def school_files(month_dir):
    """Each school's rows of a month, as its own CSV upload (from the month's CSV files)."""
    out = {}
    for f in sorted(month_dir.glob("*.csv")):
        raw = f.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252")
        sep = ";" if text.split("\n", 1)[0].count(";") > text.split("\n", 1)[0].count(",") else ","
        rows = list(csv.reader(io.StringIO(text), delimiter=sep))
        header, body = rows[0], [r for r in rows[1:] if r]
        for r in body:
            out.setdefault(r[0], [header]).append(r)
    files = {}
    for school, rows in out.items():
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        files[school] = buf.getvalue().encode()
    return files


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--lake", help="an existing lake to upload into (changed)")
    ap.add_argument("--fixtures", help="with --lake: the fixtures whose files are sent")
    ap.add_argument("--month", default="2026-05", help="with --lake: the month sent")
    a = ap.parse_args()
    if a.lake:
        return existing_lake(a)
    WORK = fresh("upload-latency")
    fx, lake, config = WORK / "fx", WORK / "lake", WORK / "narvaro.toml"
    run("fixtures", "--out", str(fx), "--scale", "county", "--seed", "2025")
    att = fx / "attendance"
    run("ingest", "--lake", str(lake), str(fx / "register.csv"),
        *(str(att / m) for m in ["2025-08", "2025-09", "2025-10"]))
    run("lake", "optimize", "--lake", str(lake))
    token = run("token", "create", "--config", str(config), "--name", "bench",
                "--scope", "admin").stdout.strip()
    october, november = school_files(att / "2025-10"), school_files(att / "2025-11")
    server = subprocess.Popen(
        [str(BIN), "serve", "--lake", str(lake), "--config", str(config), "--addr",
         "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = re.search(r"http://[^\s/]+", server.stdout.readline()).group(0)

        def post(body):
            req = urllib.request.Request(
                f"{url}/api/v1/uploads?filename=school.csv", data=body, method="POST",
                headers={"Content-Type": "text/csv", "Authorization": f"Bearer {token}"})
            t = time.perf_counter()
            with urllib.request.urlopen(req, timeout=120) as r:
                r.read()
                assert r.status == 201, r.status
            return (time.perf_counter() - t) * 1000

        schools = sorted(october)
        post(october[schools[-1]])  # the token check's first argon2 hash, and a warm server
        firsts = [post(october[s]) for s in schools[: a.n]]
        school = schools[0]
        repeats = [post(october[school]) for _ in range(a.n)]
        news = [post(november[s]) for s in sorted(november)[: a.n]]
        rows = october[school].count(b"\n") - 1
        for name, xs in [
            ("a school-month's first correction, in the compacted month", firsts),
            (f"the same school-month ({rows} rows) corrected again", repeats),
            ("a new school-month (the month's first uploads)", news),
        ]:
            print(f"{name}: n={len(xs)}, p50 {percentile(xs, 50):.0f} ms, "
                  f"p90 {percentile(xs, 90):.0f} ms, max {max(xs):.0f} ms")
    finally:
        server.terminate()
        server.wait()


def existing_lake(a):
    """The smallest municipality files of a month, sent one at a time into an existing lake."""
    WORK = fresh("upload-latency-lake")
    config = WORK / "narvaro.toml"
    token = run("token", "create", "--config", str(config), "--name", "bench",
                "--scope", "admin").stdout.strip()
    files = sorted((pathlib.Path(a.fixtures) / "attendance" / a.month).iterdir(),
                   key=lambda p: p.stat().st_size)[: a.n + 1]
    server = subprocess.Popen(
        [str(BIN), "serve", "--lake", a.lake, "--config", str(config), "--addr",
         "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = re.search(r"http://[^\s/]+", server.stdout.readline()).group(0)
        times = []
        for i, f in enumerate(files):
            media = "application/vnd.apache.parquet" if f.suffix == ".parquet" else "text/csv"
            req = urllib.request.Request(
                f"{url}/api/v1/uploads?filename={f.name}", data=f.read_bytes(), method="POST",
                headers={"Content-Type": media, "Authorization": f"Bearer {token}"})
            t = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=120) as r:
                    r.read()
            except urllib.error.HTTPError as e:
                raise SystemExit(f"{f}: {e.code} {e.read()[:500]!r}")
            if i > 0:  # the first pays the token check's first argon2 hash
                times.append((time.perf_counter() - t) * 1000)
        print(f"{len(times)} municipality-months of {a.month} ({files[1].stat().st_size // 1024}"
              f"-{files[-1].stat().st_size // 1024} kB), one at a time: p50 "
              f"{percentile(times, 50):.0f} ms, p90 {percentile(times, 90):.0f} ms, "
              f"max {max(times):.0f} ms")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
