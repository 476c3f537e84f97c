//! Indicator query benchmarks: the full indicator set for one municipality-term (Örebro 1880,
//! VT2026) and for the whole county (Örebro län 18), on county and national fixtures, plus the
//! headline query (share at or above 15 % per municipality in one term) that
//! `benches/compare_duckdb.sh` also runs in DuckDB over the same Parquet files.
//!
//! The lakes are built on first run under `target/bench-data/{county,national}` (fixtures with
//! seed 2025; register, the attendance of 2025-06, 2025-12 and 2026-06, actions and outcomes)
//! and reused afterwards; building the national lake takes a few minutes. Run with
//! `cargo bench --bench indicators` or `benches/compare_duckdb.sh`. Figures are in README.md.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use narvaro::engine::Engine;
use narvaro::fixtures::Scale;
use narvaro::lake::Lake;

mod lakes;
use lakes::prepare;

/// The term: VT2026 is the term window at June 2026.
const PERIOD: &str = "2026-06";

/// The full indicator set for an area scope: one query per indicator view.
fn indicator_set(scope: &str) -> Vec<String> {
    // `area` filters views with area_type/area_code, `muni` those keyed by municipality.
    let (area, muni) = match scope {
        "municipality" => (
            "area_type = 'municipality' AND area_code = '1880'".to_string(),
            "municipality_code = '1880'".to_string(),
        ),
        _ => (
            "area_type IN ('municipality', 'county') AND substr(area_code, 1, 2) = '18'"
                .to_string(),
            "substr(municipality_code, 1, 2) = '18'".to_string(),
        ),
    };
    let term = format!("period = '{PERIOD}' AND \"window\" = 'term'");
    vec![
        format!("SELECT * FROM absence_rate WHERE {area} AND {term}"),
        format!("SELECT * FROM at_or_above WHERE {area} AND {term}"),
        format!("SELECT * FROM reporting_rate WHERE {area} AND {term}"),
        format!("SELECT * FROM gender_gap WHERE {area} AND {term}"),
        format!("SELECT * FROM coverage WHERE {area} AND period = '{PERIOD}'"),
        format!("SELECT * FROM escalation WHERE {area} AND period = '{PERIOD}'"),
        format!("SELECT * FROM change WHERE {area} AND period = '{PERIOD}'"),
        format!("SELECT * FROM attainment WHERE {area} AND school_year = '2025/26'"),
        format!("SELECT * FROM harmonisation WHERE {muni} AND {term}"),
        format!("SELECT * FROM target_progress WHERE {muni} AND period = '{PERIOD}'"),
        format!("SELECT * FROM benchmark WHERE {muni} AND {term}"),
    ]
}

/// The headline query, as `benches/compare_duckdb.py` runs it in DuckDB.
pub const HEADLINE: &str = "SELECT area_code, share_pct FROM at_or_above
    WHERE area_type = 'municipality' AND period = '2026-06' AND \"window\" = 'term'
      AND level_id = 'problematisk'";

/// For `benches/compare_duckdb.py`: the current Parquet files of the tables DuckDB reads, and
/// the headline figures as DataFusion computes them (DuckDB must agree).
fn export_for_duckdb(rt: &tokio::runtime::Runtime, lake: &Lake, engine: &Engine, dir: &Path) {
    let out = dir.with_file_name("duckdb");
    std::fs::create_dir_all(&out).unwrap();
    for table in ["attendance", "register"] {
        let files = rt.block_on(lake.files(table)).unwrap();
        std::fs::write(out.join(format!("{table}.txt")), files.join("\n") + "\n").unwrap();
    }
    let sql = format!("SELECT area_code, round(share_pct, 6) FROM ({HEADLINE}) ORDER BY 1");
    let batches = rt.block_on(engine.sql(&sql)).unwrap();
    let csv = narvaro::output::render(&batches, narvaro::output::Format::Csv).unwrap();
    std::fs::write(out.join("headline_datafusion.csv"), csv).unwrap();
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for scale in [Scale::County, Scale::National] {
        let lake_dir = prepare(&rt, scale);
        let name = format!("{scale:?}").to_lowercase();
        let lake = rt.block_on(Lake::open(&lake_dir)).unwrap();
        let mut g = c.benchmark_group(format!("indicators/{name}"));
        g.sample_size(20);
        g.bench_function("open_engine", |b| {
            b.to_async(&rt)
                .iter(|| async { Engine::open(&lake, None).await.unwrap() })
        });
        let engine = rt.block_on(Engine::open(&lake, None)).unwrap();
        export_for_duckdb(&rt, &lake, &engine, &lake_dir);
        // Where the full set spends its time: each view once warm, the best of three.
        for q in indicator_set("county") {
            let best = (0..3)
                .map(|_| {
                    let t = std::time::Instant::now();
                    rt.block_on(engine.sql(&q)).unwrap();
                    t.elapsed()
                })
                .min()
                .unwrap();
            let view = q.split_whitespace().nth(3).unwrap_or("?");
            eprintln!(
                "{name} county {view:<16} {:>8.1} ms",
                best.as_secs_f64() * 1e3
            );
        }
        let run = |queries: Vec<String>| {
            let engine = &engine;
            move || {
                let queries = queries.clone();
                async move {
                    let mut rows = 0;
                    for q in &queries {
                        for b in engine.sql(q).await.unwrap() {
                            rows += b.num_rows();
                        }
                    }
                    rows
                }
            }
        };
        g.bench_function("headline_share_15_per_municipality", |b| {
            b.to_async(&rt).iter(run(vec![HEADLINE.to_string()]))
        });
        g.bench_function("core_set_county_term", |b| {
            b.to_async(&rt)
                .iter(run(indicator_set("county")[..3].to_vec()))
        });
        for scope in ["municipality", "county"] {
            g.bench_function(format!("full_set_{scope}_term"), |b| {
                b.to_async(&rt).iter(run(indicator_set(scope)))
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
