//! Report page benchmarks: the committee report (Örebro 1880) and the county report
//! (Örebro län 18) for VT2026, on the county and national bench lakes (see `lakes.rs`), as
//! the server answers them from the stored publication.
//!
//! Setup publishes the lake's latest version once (printing how long that took), as
//! `narvaro ingest` does. Then:
//! - *cold*: a fresh server state, as after a restart: the publications catalogue is read and
//!   the report's stored content fetched from the `publications` table, then rendered;
//! - *warm*: the same page again: the report comes from the server's memory and is rendered to
//!   HTML with its SVG charts;
//! - *pdf*: the report written as the committee pack's PDF/UA-1 document (typst).
//!
//! Run with `cargo bench --bench reports` (`NARVARO_BENCH_COUNTY_ONLY=1`: the county lake
//! alone). The load test against a running `narvaro serve` is `benches/load.sh`. Figures are
//! in docs/performance.md.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use narvaro::disclosure::release::Protections;
use narvaro::fixtures::Scale;
use narvaro::http::{App, router};
use narvaro::lake::Lake;
use narvaro::policy::{self, Policies};
use tower::ServiceExt;

mod lakes;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap()
}

async fn app(dir: &std::path::Path, protected: &Arc<Protections>) -> axum::Router {
    let lake = Lake::open(dir).await.unwrap();
    let policies = Policies::load(&policy::Source::resolve(None)).unwrap();
    let app = App::new(lake, policies, now).with_protections(protected.clone());
    router(Arc::new(app))
}

async fn fetch(app: &axum::Router, uri: &str) -> usize {
    body(app, uri).await.len()
}

async fn body(app: &axum::Router, uri: &str) -> Vec<u8> {
    let res = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert!(res.status().is_success(), "{uri}: {}", res.status());
    axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let county_only = std::env::var_os("NARVARO_BENCH_COUNTY_ONLY").is_some();
    for (scale, name) in [(Scale::County, "county"), (Scale::National, "national")] {
        if county_only && scale == Scale::National {
            continue;
        }
        let dir = lakes::prepare(&rt, scale);
        let protected = Arc::new(Protections::default());
        rt.block_on(async {
            let lake = Lake::open(&dir).await.unwrap();
            let policies = Policies::load(&policy::Source::resolve(None)).unwrap();
            let p =
                narvaro::publish::publish(&lake, &policies, protected.clone(), now(), &|_, _| {})
                    .await
                    .unwrap();
            if let Some(p) = p {
                eprintln!("published {name}: {p:?}");
            }
        });
        let mut g = c.benchmark_group(format!("reports/{name}"));
        g.sample_size(10);
        for (report, uri) in [
            ("committee", "/reports/committee/1880/VT2026"),
            ("county", "/reports/county/18/VT2026"),
        ] {
            // Cold: a new server state per iteration.
            g.bench_function(format!("{report}/cold"), |b| {
                b.iter_custom(|iters| {
                    let mut total = std::time::Duration::ZERO;
                    for _ in 0..iters {
                        let app = rt.block_on(app(&dir, &protected));
                        let t = std::time::Instant::now();
                        rt.block_on(fetch(&app, uri));
                        total += t.elapsed();
                    }
                    total
                })
            });
            let warm = rt.block_on(app(&dir, &protected));
            rt.block_on(fetch(&warm, uri));
            g.bench_function(format!("{report}/warm"), |b| {
                b.to_async(&rt).iter(|| fetch(&warm, uri))
            });
            // The committee pack: the stored report written as PDF/UA-1 (what a first
            // request for `.pdf` costs beside reading the report).
            let json = rt.block_on(body(&warm, &format!("{uri}.json")));
            let stored: narvaro::report::Report = serde_json::from_slice(&json).unwrap();
            // typst memoises layouts: each iteration starts from an empty memo, as the first
            // request for a report does.
            g.bench_function(format!("{report}/pdf"), |b| {
                b.iter_batched(
                    || typst::comemo::evict(0),
                    |_| narvaro::report::pdf::pdf(&stored).unwrap().len(),
                    criterion::BatchSize::PerIteration,
                )
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
