#!/usr/bin/env python3
"""The indicator queries in DuckDB over the same Parquet files the warehouse's Delta tables
hold, beside DataFusion's criterion figures from the same run (benches/compare_duckdb.sh).

Reads target/bench-data/{county,national}/duckdb/ (written by `cargo bench --bench
indicators`): the current data files of `attendance` and `register`, and DataFusion's headline
figures, which DuckDB must reproduce exactly before any time is reported.
"""
import csv
import json
import pathlib
import statistics
import sys
import time

import duckdb

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "target" / "bench-data"
CRITERION = ROOT / "target" / "criterion"

# Rows of one term (VT2026 = the term window at June 2026), with the school's municipality and
# county as the register had them that month: the same join as sql/base/school_attendance.sql.
TERM_ROWS = """
  SELECT a.*, r.municipality_code, m.county_code
  FROM attendance a
  JOIN register r
    ON r.school_unit_code = a.school_unit_code
   AND r.valid_from < DATE '2026-07-01'
   AND (r.valid_to IS NULL OR r.valid_to >= DATE '2026-06-01')
  JOIN municipalities m ON m.municipality_code = r.municipality_code
  WHERE a.period = '2026-06' AND a."window" = 'term'
"""

# Share of pupils at or above 15 % in the term, per municipality (bands 15..100 are the
# 1-based list elements 16..101).
HEADLINE = f"""
WITH s AS ({TERM_ROWS})
SELECT municipality_code AS area_code,
       round(100.0 * sum(list_sum(pct_total[16:101])) / sum(students), 6) AS share_pct
FROM s GROUP BY 1 ORDER BY 1
"""

# absence_rate, at_or_above (four levels) and reporting_rate for the county and its
# municipalities, in one query.
CORE_COUNTY = f"""
WITH s AS ({TERM_ROWS}),
areas AS (
  SELECT 'municipality' AS area_type, municipality_code AS area_code, * FROM s
  UNION ALL SELECT 'county' AS area_type, county_code AS area_code, * FROM s
)
SELECT area_type, area_code, count(DISTINCT school_unit_code) AS schools, sum(students) AS students,
       100.0 * sum(valid_absence_minutes + invalid_absence_minutes) / sum(offered_minutes) AS absence_pct,
       100.0 * sum(valid_absence_minutes) / sum(offered_minutes) AS valid_pct,
       100.0 * sum(invalid_absence_minutes) / sum(offered_minutes) AS invalid_pct,
       sum(list_sum(pct_total[11:101])) AS at_10, sum(list_sum(pct_total[16:101])) AS at_15,
       sum(list_sum(pct_total[21:101])) AS at_20, sum(list_sum(pct_total[51:101])) AS at_50,
       100.0 * sum(reported_minutes) / sum(offered_minutes) AS reporting_pct
FROM areas WHERE substr(area_code, 1, 2) = '18'
GROUP BY 1, 2
"""


def connect(scale):
    d = DATA / scale / "duckdb"
    con = duckdb.connect()
    def files(t):
        paths = [l for l in (d / f"{t}.txt").read_text().splitlines() if l]
        return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"

    con.execute(
        f"CREATE VIEW attendance AS SELECT * FROM read_parquet({files('attendance')}, hive_partitioning = true)"
    )
    con.execute(f"CREATE VIEW register AS SELECT * FROM read_parquet({files('register')})")
    ref = str(ROOT / "fixtures" / "reference" / "municipalities.csv").replace("'", "''")
    con.execute(f"CREATE VIEW municipalities AS SELECT * FROM read_csv('{ref}', all_varchar = true)")
    return con


def timed(con, sql, runs=30):
    con.execute(sql).fetchall()  # warm
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        con.execute(sql).fetchall()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def criterion_ms(scale, name):
    f = CRITERION / f"indicators_{scale}" / name / "new" / "estimates.json"
    if not f.exists():
        return None
    return json.loads(f.read_text())["median"]["point_estimate"] / 1e6


def main():
    print(f"DuckDB {duckdb.__version__}")
    print(f"{'scale':<9} {'query':<40} {'DataFusion ms':>14} {'DuckDB ms':>10} {'ratio':>6}")
    for scale in ["county", "national"]:
        if not (DATA / scale / "duckdb").exists():
            sys.exit(f"{DATA / scale / 'duckdb'} is missing: run `cargo bench --bench indicators` first")
        con = connect(scale)
        # DuckDB must compute what DataFusion computed before its time means anything.
        want = list(csv.reader(open(DATA / scale / "duckdb" / "headline_datafusion.csv")))[1:]
        got = [[c, f"{v:.6f}".rstrip("0").rstrip(".")] for c, v in con.execute(HEADLINE).fetchall()]
        want = [[c, f"{float(v):.6f}".rstrip("0").rstrip(".")] for c, v in want]
        if got != want:
            sys.exit(f"{scale}: DuckDB and DataFusion disagree on the headline:\n{got[:5]}\n{want[:5]}")
        for label, sql, bench in [
            ("share >= 15 % per municipality, term", HEADLINE, "headline_share_15_per_municipality"),
            ("core set (rate, levels, reporting), county", CORE_COUNTY, "core_set_county_term"),
        ]:
            duck = timed(con, sql)
            df = criterion_ms(scale, bench)
            ratio = f"{duck / df:.2f}" if df else "-"
            df_s = f"{df:.1f}" if df else "-"
            print(f"{scale:<9} {label:<40} {df_s:>14} {duck:>10.1f} {ratio:>6}")
    print("ratio = DuckDB time / DataFusion time (above 1: DataFusion is faster)")


if __name__ == "__main__":
    main()
