//! Ingest benchmarks: one school-month upload validated and committed, a bulk ingest of a
//! whole county month (12 municipality files in every upload format), and the school side:
//! `narvaro aggregate` over a large municipality's school year of SS 12000 records.
//!
//! Run with `cargo bench --bench ingest`. The figures and the machine they were measured on are
//! in README.md ("Performance").

use std::path::Path;
use std::sync::Arc;

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use narvaro::fixtures::{self, Scale};
use narvaro::ingest;
use narvaro::lake::Lake;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
}

/// The rows of the first school in a municipality's month file, as a Parquet upload.
fn one_school_month(file: &Path) -> Vec<u8> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let schools = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
    let schools = schools.as_string::<i32>();
    let first = schools.value(0).to_string();
    let keep = BooleanArray::from_iter(schools.iter().map(|s| Some(s == Some(first.as_str()))));
    let one = filter_record_batch(&batch, &keep).unwrap();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, one.schema(), None).unwrap();
    w.write(&one).unwrap();
    w.close().unwrap();
    out
}

fn bench(c: &mut Criterion) {
    // `RUST_LOG=narvaro=debug` shows where each commit spends its time.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fx = dir.path().join("fx");
    let opts = fixtures::Options {
        out: fx.clone(),
        scale: Scale::County,
        seed: 2025,
        truth: false,
        ss12000: None,
        municipality: None,
    };
    fixtures::generate(&opts, &indicatif::ProgressBar::hidden()).unwrap();
    let month = |p: &str| ingest::upload_files(&fx.join("attendance").join(p)).unwrap();

    // A lake with the register and a school year's first months, compacted, as a school
    // would find it mid-year.
    let lake = Arc::new(rt.block_on(Lake::open(dir.path().join("lake"))).unwrap());
    rt.block_on(async {
        ingest::ingest_path(&lake, &fx.join("register.csv"), now())
            .await
            .unwrap();
        for p in ["2025-08", "2025-09", "2025-10"] {
            for f in month(p) {
                ingest::ingest_path(&lake, &f, now()).await.unwrap();
            }
        }
        lake.optimize(true).await.unwrap();
    });

    let upload = one_school_month(&fx.join("attendance/2025-10/1880.parquet"));
    c.bench_function("ingest/one_school_month", |b| {
        b.to_async(&rt).iter(|| async {
            ingest::ingest_bytes(&lake, "school.parquet", &upload, now())
                .await
                .unwrap()
        })
    });

    let files = month("2025-11");
    let mut group = c.benchmark_group("ingest");
    group.sample_size(10);
    group.bench_function("county_month_12_files", |b| {
        b.to_async(&rt).iter(|| async {
            for f in &files {
                ingest::ingest_path(&lake, f, now()).await.unwrap();
            }
        })
    });
    group.finish();
}

/// The school side: Örebro's school year (18,656 pupils, August to June, six activities a
/// pupil and month: 1.23 million `AggregatedAttendance` records in 11 monthly JSON files of
/// every shape) parsed, checked and aggregated into the June upload.
fn aggregate(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let fx = dir.path().join("fx");
    let opts = fixtures::Options {
        out: fx.clone(),
        scale: Scale::County,
        seed: 2025,
        truth: false,
        ss12000: Some(fixtures::Ss12000 {
            period: narvaro::contract::Period::parse("2026-06").unwrap(),
            activities: 6,
        }),
        municipality: Some("1880".into()),
    };
    fixtures::generate(&opts, &indicatif::ProgressBar::hidden()).unwrap();
    let src = fx.join("ss12000/1880");
    let mut files: Vec<_> = std::fs::read_dir(src.join("attendance"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let bytes: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| (f.display().to_string(), std::fs::read(f).unwrap()))
        .collect();
    let roster_path = ["roster.json", "roster.csv"]
        .iter()
        .map(|r| src.join(r))
        .find(|p| p.exists())
        .unwrap();
    let roster = std::fs::read(&roster_path).unwrap();
    let total: usize = bytes.iter().map(|(_, b)| b.len()).sum();
    eprintln!(
        "aggregate: {} files, {} MB of SS 12000 JSON, roster {}",
        bytes.len(),
        total / 1_000_000,
        roster_path.display()
    );
    let mut group = c.benchmark_group("aggregate");
    group.sample_size(10);
    group.bench_function("orebro_school_year_ss12000", |b| {
        b.iter(|| {
            let inputs: Vec<narvaro::aggregate::Input> = bytes
                .iter()
                .map(|(name, b)| narvaro::aggregate::Input { name, bytes: b })
                .collect();
            let (rows, summary) = narvaro::aggregate::from_ss12000(
                &inputs,
                narvaro::aggregate::Input {
                    name: "roster",
                    bytes: &roster,
                },
                narvaro::contract::Period::parse("2026-06").unwrap(),
                5,
            )
            .unwrap();
            assert_eq!(summary.records, 18_656 * 11 * 6);
            rows
        })
    });
    group.finish();
}

criterion_group!(benches, bench, aggregate);
criterion_main!(benches);
