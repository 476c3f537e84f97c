//! `narvaro disclosure audit`: protect and audit a county's release from the command line.

use super::*;

/// `narvaro disclosure audit`.
pub(super) async fn disclosure_audit(
    lake: &Path,
    area: &str,
    term: crate::report::Term,
    window: &str,
) -> Result<ExitCode> {
    use crate::disclosure::{self, Status};
    let lake = open_existing(lake).await?;
    let engine = Engine::open(&lake, None).await?;
    let (county, period) = crate::report::county_period(&engine, area, term).await?;
    let rules = engine.rules;
    let release =
        disclosure::release::county_release(&engine, &county, &period, window, &engine.levels)
            .await?;
    let started = std::time::Instant::now();
    let status = disclosure::protect(&release, &rules);
    let protected = started.elapsed();
    let started = std::time::Instant::now();
    let report = disclosure::audit::audit(&release, &status, &rules);
    let audited = started.elapsed();
    let mut counts: BTreeMap<Status, usize> = BTreeMap::new();
    for s in &status {
        *counts.entry(*s).or_default() += 1;
    }
    println!(
        "röjandekontroll: län {county}, {period} ({window}), {} celler över {} inre celler",
        release.cells.len(),
        release.inner()
    );
    for (s, n) in &counts {
        println!("  {:<11} {n}", format!("{s:?}"));
    }
    println!(
        "skydd {:.1} s, granskning {:.1} s: {} dolda celler, {} för smala intervall",
        protected.as_secs_f64(),
        audited.as_secs_f64(),
        report.hidden,
        report.failures.len()
    );
    let mut narrowest: Vec<&disclosure::audit::Interval> = report.intervals.iter().collect();
    narrowest.sort_by_key(|i| (i.width().unwrap_or(i64::MAX), i.key.clone()));
    println!("snävaste intervallen en angripare kan räkna fram:");
    for i in narrowest.iter().take(10) {
        println!(
            "  {:<40} {} – {}{}",
            i.key,
            i.min,
            i.max.map_or("obegränsat".to_string(), |m| m.to_string()),
            if i.exact { "" } else { " eller vidare" }
        );
    }
    for f in &report.failures {
        println!(
            "FEL: {} kan ringas in till {} – {}",
            f.key,
            f.min,
            f.max.unwrap_or(0)
        );
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
