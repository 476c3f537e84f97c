#!/usr/bin/env bash
# The indicator benchmark in one run: DataFusion through the warehouse's engine (criterion,
# benches/indicators.rs, which also builds the bench lakes on first use) and then the same
# queries in DuckDB over the same Parquet files (benches/compare_duckdb.py). DuckDB comes from
# PyPI into a virtualenv under target/. Needs python3 with venv.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --bench indicators -- --noplot
python3 -m venv target/bench-venv
target/bench-venv/bin/pip install --quiet --upgrade duckdb
target/bench-venv/bin/python benches/compare_duckdb.py
