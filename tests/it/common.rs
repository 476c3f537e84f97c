use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use chrono::{DateTime, TimeZone, Utc};
use narvaro::engine::Engine;
use narvaro::lake::Lake;

/// The fixed moment tests pretend to run at (no wall clock in tests).
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap()
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// A fresh lake holding the small hand-made fixtures.
pub async fn small_lake(dir: &Path) -> Lake {
    fixture_lake(dir, "small").await
}

/// A fresh lake holding the `.slt` fixtures: two terms for three schools in Örebro län, one in
/// Östersund and one in Upplands Väsby.
pub async fn slt_lake(dir: &Path) -> Lake {
    fixture_lake(dir, "slt").await
}

/// A fresh lake under `dir/lake` with one fixture set's register, attendance, actions, outcomes.
async fn fixture_lake(dir: &Path, set: &str) -> Lake {
    let lake = Lake::open(dir.join("lake")).await.unwrap();
    for f in [
        "register.csv",
        "attendance.csv",
        "actions.csv",
        "outcomes.csv",
    ] {
        narvaro::ingest::ingest_path(&lake, &fixture(&format!("{set}/{f}")), now())
            .await
            .unwrap_or_else(|e| panic!("{set}/{f}: {e}"));
    }
    lake
}

pub async fn sql(lake: &Lake, as_of: Option<u64>, q: &str) -> Vec<RecordBatch> {
    Engine::open(lake, as_of.map(narvaro::engine::AsOf::Version))
        .await
        .unwrap()
        .sql(q)
        .await
        .unwrap()
}

/// A single integer result.
pub async fn scalar(lake: &Lake, as_of: Option<u64>, q: &str) -> i64 {
    let b = sql(lake, as_of, q).await;
    let col = arrow::compute::cast(b[0].column(0), &arrow::datatypes::DataType::Int64).unwrap();
    arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(&col).value(0)
}

/// Every table's (version, rows), to show that something changed nothing.
pub async fn state(lake: &Lake) -> Vec<(String, u64, usize)> {
    let counts = narvaro::lake::row_counts(lake).await.unwrap();
    let mut v: Vec<_> = counts
        .into_iter()
        .map(|(t, (ver, n))| (t, ver, n))
        .collect();
    v.sort();
    v
}
