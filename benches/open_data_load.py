"""Latency of the open data APIs (indicators, PxWeb, Kolada) against a running `narvaro serve`.

Usage: python benches/open_data_load.py http://127.0.0.1:8080 [PID]
First answers after a start (PxWeb and Kolada build their tables once per publication), then
warm answers one at a time, then 32 clients at once; with PID, the server's RSS.
Needs `requests` (target/py has it: .ci/run installs it).
"""
import time, requests, concurrent.futures as cf, sys
base = sys.argv[1].rstrip("/")
def t(url, method="get", **kw):
    s = time.perf_counter(); r = requests.request(method, base + url, **kw); d = (time.perf_counter() - s) * 1000
    assert r.status_code == 200, (url, r.status_code, r.text[:200]); return d, len(r.content)
firsts = {}
for name, url in [
    ("indicators at_or_above, county, cold", "/api/v1/indicators/at_or_above"),
    ("pxweb at_or_above data, cold (cube build)", "/api/pxweb/v2/tables/at_or_above/data?valuecodes[Region]=18*&valuecodes[Tid]=top(2)"),
    ("pxweb absence_rate metadata, cold", "/api/pxweb/v2/tables/absence_rate/metadata"),
    ("kolada absence_pct series, cold", "/api/kolada/v3/data?kpi=absence_pct&municipality=1880,0018"),
]:
    d, n = t(url); print(f"{name}: {d:.0f} ms, {n} bytes")
urls = [
    "/api/v1/indicators/absence_rate?area_type=municipality&window=term",
    "/api/v1/indicators/at_or_above.csv?area_code=1880",
    "/api/pxweb/v2/tables/at_or_above/data?valuecodes[Region]=18*&valuecodes[Tid]=top(2)",
    "/api/pxweb/v2/tables/absence_rate/data",
    "/api/kolada/v3/data?kpi=absence_pct&municipality=1880,0018",
]
for u in urls:
    ds = sorted(t(u)[0] for _ in range(50))
    print(f"warm {u}: p50 {ds[25]:.1f} ms, max {ds[-1]:.1f} ms")
def one(i):
    s = requests.Session(); out = []
    for k in range(40):
        u = urls[(i + k) % len(urls)]
        st = time.perf_counter(); r = s.get(base + u); out.append((time.perf_counter() - st) * 1000); assert r.status_code == 200
    return out
start = time.perf_counter()
with cf.ThreadPoolExecutor(32) as ex:
    all_ = sorted(x for r in ex.map(one, range(32)) for x in r)
el = time.perf_counter() - start
print(f"32 clients x 40 requests over the five: p50 {all_[len(all_)//2]:.1f} ms, p99 {all_[int(len(all_)*0.99)]:.1f} ms, {len(all_)/el:.0f} req/s")
if len(sys.argv) > 2:
    pid = sys.argv[2]
    rss = int([l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0].split()[1]) // 1024
    print(f"server RSS {rss} MB")
