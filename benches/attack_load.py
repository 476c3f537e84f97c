#!/usr/bin/env python3
"""The upload server under attack: `/healthz` latency and the server's memory while hostile
clients do their worst, against `narvaro serve` (release build) on loopback.

    pip install pyarrow            # writes the Parquet bombs
    benches/attack_load.py [--seconds 30]

At the same time, for `--seconds`:
- 300 slowloris sockets (half a request's headers, one more header line now and then),
- 40 chunked uploads that stall after their first chunk,
- 2 clients sending upload bombs in turn: 80 M integers in a Parquet list column, a
  dictionary string column decoding to 2.4 GB, a CSV header of a million columns and 19 MiB
  of bad rows,
- 8 clients sending tokens with wrong secrets (known ids and unknown ones),
while one client asks for `/healthz` every 20 ms. Prints `/healthz` p50/p99/max, how often it
failed, the answers the attackers got, and the server's RSS (peak and at the end). The goals
(issue: hardening) are RSS <= 1 GB and `/healthz` p99 <= 100 ms. Figures go into README.md with
the machine they ran on.
"""

import argparse
import collections
import http.client
import io
import re
import socket
import subprocess
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq

from common import BIN, ROOT, fresh, percentile, run




def parquet(table):
    out = io.BytesIO()
    pq.write_table(table, out, write_statistics=False)
    return out.getvalue()


def bombs():
    ints = pa.table({"pct_total": pa.array([[0] * 1_000_000] * 80, type=pa.list_(pa.int64()))})
    strings = pa.table({"school_name": pa.DictionaryArray.from_arrays(
        pa.array([0] * 600_000, type=pa.int32()), pa.array(["x" * 4000], type=pa.large_string()))})
    bad = ["school_unit_code,period,absence_investigation,report_to_organiser,"
           "report_to_social_services,sip,injunction\n"]
    size = len(bad[0])
    while size < 19 * 1024 * 1024:
        bad.append("1880010x,2026-13,-1,x,1,1,1\n")
        size += len(bad[-1])
    return [
        ("parquet 80 M integers", "application/vnd.apache.parquet", parquet(ints)),
        ("parquet 2.4 GB of strings", "application/vnd.apache.parquet", parquet(strings)),
        ("csv 1 M columns", "text/csv", ("a," * 1_000_000 + "a\n1\n").encode()),
        ("csv 19 MiB of bad rows", "text/csv", "".join(bad).encode()),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=30)
    a = ap.parse_args()
    WORK = fresh("attack-load")
    lake, config = WORK / "lake", WORK / "narvaro.toml"
    run("ingest", "--lake", str(lake), str(ROOT / "fixtures" / "slt" / "register.csv"))
    token = run("token", "create", "--config", str(config), "--name", "admin",
                "--scope", "admin").stdout.strip()
    token_id = token.split("_")[1]
    payloads = bombs()
    print("bombs:", ", ".join(f"{n} ({len(b) / 1024:.0f} kB)" for n, _, b in payloads))

    server = subprocess.Popen(
        [str(BIN), "serve", "--lake", str(lake), "--config", str(config), "--addr",
         "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = re.search(r"http://[^\s/]+", server.stdout.readline()).group(0)
        host, port = url[len("http://"):].split(":")
        port = int(port)
        stop = threading.Event()
        answers = collections.Counter()
        lock = threading.Lock()

        def note(what):
            with lock:
                answers[what] += 1

        def rss(field):
            with open(f"/proc/{server.pid}/status") as f:
                for line in f:
                    if line.startswith(field):
                        return int(line.split()[1]) * 1024
            return 0

        def slowloris():
            socks = []
            for _ in range(300):
                try:
                    s = socket.create_connection((host, port), timeout=5)
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                    socks.append(s)
                except OSError:
                    note("slowloris: connect refused")
            while not stop.wait(1):
                for i, s in enumerate(socks):
                    try:
                        s.sendall(b"X-a: b\r\n")
                    except OSError:
                        note("slowloris: closed by server")
                        try:
                            socks[i] = socket.create_connection((host, port), timeout=5)
                            socks[i].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                        except OSError:
                            pass
            for s in socks:
                s.close()

        def stalled():
            while not stop.is_set():
                try:
                    s = socket.create_connection((host, port), timeout=120)
                    s.sendall((f"POST /api/v1/uploads HTTP/1.1\r\nHost: x\r\n"
                               f"Authorization: Bearer {token}\r\nContent-Type: text/csv\r\n"
                               f"Transfer-Encoding: chunked\r\n\r\n"
                               f"100000\r\n").encode() + b"x" * 0x80000)
                    reply = s.recv(200)
                    note("stalled upload: " + reply.split(b"\r\n")[0].decode(errors="replace"))
                    s.close()
                except OSError as e:
                    note(f"stalled upload: {type(e).__name__}")

        def bomber(i):
            n = i
            while not stop.is_set():
                name, media, body = payloads[n % len(payloads)]
                n += 1
                c = http.client.HTTPConnection(host, port, timeout=300)
                try:
                    c.request("POST", "/api/v1/uploads", body=body, headers={
                        "Content-Type": media, "Authorization": f"Bearer {token}"})
                    r = c.getresponse()
                    size = len(r.read())
                    note(f"{name}: {r.status} ({size // 1024} kB reply)")
                except OSError as e:
                    note(f"{name}: {type(e).__name__}")
                finally:
                    c.close()

        def guesser(i):
            n = 0
            while not stop.is_set():
                n += 1
                guess = (f"nvr_{token_id}_{n:064x}" if n % 2 else f"nvr_{n:016x}_{n:064x}")
                c = http.client.HTTPConnection(host, port, timeout=60)
                try:
                    c.request("GET", "/api/v1/uploads", headers={"Authorization": f"Bearer {guess}"})
                    r = c.getresponse()
                    r.read()
                    note(f"wrong token: {r.status}")
                except OSError as e:
                    note(f"wrong token: {type(e).__name__}")
                finally:
                    c.close()

        health, failures, peak = [], [0], [0]

        def prober():
            while not stop.wait(0.02):
                t = time.perf_counter()
                try:
                    c = http.client.HTTPConnection(host, port, timeout=10)
                    c.request("GET", "/healthz")
                    r = c.getresponse()
                    r.read()
                    c.close()
                    if r.status == 200:
                        health.append(time.perf_counter() - t)
                    else:
                        failures[0] += 1
                except OSError:
                    failures[0] += 1
                peak[0] = max(peak[0], rss("VmRSS:"))

        threads = [threading.Thread(target=slowloris)]
        threads += [threading.Thread(target=stalled) for _ in range(40)]
        threads += [threading.Thread(target=bomber, args=(i,)) for i in range(2)]
        threads += [threading.Thread(target=guesser, args=(i,)) for i in range(8)]
        threads += [threading.Thread(target=prober)]
        for t in threads:
            t.daemon = True
            t.start()
        time.sleep(a.seconds)
        stop.set()
        time.sleep(2)
        ms = [h * 1000 for h in health]
        print(f"/healthz under attack for {a.seconds} s: {len(ms)} answers, "
              f"p50 {percentile(ms, 50):.1f} ms, p99 {percentile(ms, 99):.1f} ms, "
              f"max {max(ms) if ms else float('nan'):.1f} ms, {failures[0]} failed")
        print(f"server RSS: peak {rss('VmHWM:') / 2**20:.0f} MB "
              f"(sampled {peak[0] / 2**20:.0f} MB), now {rss('VmRSS:') / 2**20:.0f} MB")
        for what, n in sorted(answers.items()):
            print(f"  {n:6d} × {what}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
