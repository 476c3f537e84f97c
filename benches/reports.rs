//! Report rendering benchmarks: the committee report (Örebro 1880) and the county report
//! (Örebro län 18) for VT2026, on the county and national bench lakes (see `lakes.rs`).
//!
//! - *cold*: a fresh server state, as after a restart or a new upload: the engine for the data
//!   version is opened and every query of the report runs;
//! - *warm*: the same page again, as the server answers a repeated request: the report built
//!   for this data version comes from the cache and is rendered to HTML with its SVG charts.
//!
//! A report's protected releases are kept by their content, in one store the fresh states
//! share (`App::with_protections`), so after the first iteration a cold page reuses them, as a
//! server does after an upload that left the county's earlier months alone.
//!
//! Run with `cargo bench --bench reports` (`NARVARO_BENCH_COUNTY_ONLY=1`: the county lake
//! alone). The load test against a running `narvaro serve` is `benches/load.sh`. Figures are
//! in README.md.

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
    let res = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert!(res.status().is_success(), "{uri}: {}", res.status());
    axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap()
        .len()
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
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
