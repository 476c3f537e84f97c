//! Disclosure control benchmarks (issue 6): for a county's release of VT2026 (the term window
//! at 2026-06; pupils in total, by gender and at or above each shared level, for every school,
//! municipality and the county), the time to
//!
//! - *protect*: primary suppression, Gaussian-elimination secondary suppression and the
//!   interval repair loop (`disclosure::protect`), what a report server computes once per data
//!   version and county;
//! - *audit*: the full linear-programming audit of the protected release
//!   (`disclosure::audit::audit`), what `narvaro disclosure audit` runs.
//!
//! Örebro län on the county bench lake is measured by criterion; the national release, every
//! county of the national bench lake, is one timed pass printed per county (a pass takes
//! minutes, too long for criterion's samples). Run with `cargo bench --bench disclosure`
//! (`NARVARO_BENCH_COUNTY_ONLY=1` for Örebro län alone, also the protection of its June release
//! with the schools' reported actions). Figures are in README.md.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use narvaro::disclosure::{self, Release, Rules, Status, audit};
use narvaro::engine::Engine;
use narvaro::fixtures::Scale;
use narvaro::lake::Lake;

mod lakes;

const PERIOD: &str = "2026-06";

/// The rules of the lake's engine and the releases of `counties` from the lake at `dir`, in
/// `window` (`term`, or `month`: the month's release, with the schools' reported actions).
fn releases(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    counties: &[String],
    window: &str,
) -> (Rules, Vec<(String, Release)>) {
    rt.block_on(async {
        let lake = Lake::open(dir).await.unwrap();
        let engine = Engine::open(&lake, None).await.unwrap();
        let mut out = Vec::new();
        for c in counties {
            let r = disclosure::release::county_release(&engine, c, PERIOD, window)
                .await
                .unwrap();
            if !r.cells.is_empty() {
                out.push((c.clone(), r));
            }
        }
        (engine.rules, out)
    })
}

fn hidden(status: &[Status]) -> usize {
    status.iter().filter(|s| !s.published()).count()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = lakes::prepare(&rt, Scale::County);
    let (_, mut month) = releases(&rt, &dir, &["18".to_string()], "month");
    let (_, month) = month.pop().expect("Örebro län in the county bench lake");
    let (rules, mut orebro) = releases(&rt, &dir, &["18".to_string()], "term");
    let (_, orebro) = orebro.pop().expect("Örebro län in the county bench lake");
    let status = disclosure::protect(&orebro, &rules);
    eprintln!(
        "Örebro län: {} cells over {} inner cells, {} hidden",
        orebro.cells.len(),
        orebro.inner(),
        hidden(&status)
    );
    let mut g = c.benchmark_group("disclosure/county");
    g.sample_size(10);
    g.bench_function("protect", |b| {
        b.iter(|| disclosure::protect(&orebro, &rules))
    });
    g.bench_function("audit", |b| {
        b.iter(|| {
            let report = audit::audit(&orebro, &status, &rules);
            assert!(report.passed());
        })
    });
    let month_status = disclosure::protect(&month, &rules);
    eprintln!(
        "Örebro län, June 2026 with its actions: {} cells over {} inner cells, {} hidden",
        month.cells.len(),
        month.inner(),
        hidden(&month_status)
    );
    g.bench_function("protect month", |b| {
        b.iter(|| disclosure::protect(&month, &rules))
    });
    g.finish();
    if std::env::var_os("NARVARO_BENCH_COUNTY_ONLY").is_some() {
        return;
    }

    let dir = lakes::prepare(&rt, Scale::National);
    let mut counties: Vec<String> = narvaro::reference::municipalities()
        .iter()
        .map(|m| m.county_code.clone())
        .collect();
    counties.sort();
    counties.dedup();
    let (_, all) = releases(&rt, &dir, &counties, "term");
    let (mut protect_total, mut audit_total) = (Duration::ZERO, Duration::ZERO);
    let (mut cells, mut hidden_total) = (0, 0);
    eprintln!("national release, one pass: county, cells, hidden, protect s, audit s");
    for (county, release) in &all {
        let t = Instant::now();
        let status = disclosure::protect(release, &rules);
        let p = t.elapsed();
        let t = Instant::now();
        let report = audit::audit(release, &status, &rules);
        let a = t.elapsed();
        assert!(report.passed(), "county {county}: the audit fails");
        eprintln!(
            "  {county}: {:>6} {:>5} {:>8.2} {:>8.2}",
            release.cells.len(),
            hidden(&status),
            p.as_secs_f64(),
            a.as_secs_f64()
        );
        protect_total += p;
        audit_total += a;
        cells += release.cells.len();
        hidden_total += hidden(&status);
    }
    eprintln!(
        "national: {} counties, {cells} cells, {hidden_total} hidden; protect {:.1} s, audit {:.1} s",
        all.len(),
        protect_total.as_secs_f64(),
        audit_total.as_secs_f64()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
