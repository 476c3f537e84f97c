//! `narvaro disclosure audit`: protect and audit a county's release from the command line.

use super::*;

/// `narvaro disclosure audit`.
pub(super) async fn disclosure_audit(
    lake: &Path,
    area: &str,
    term: crate::report::Term,
    window: &str,
    cells: Option<&str>,
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
    if let Some(prefix) = cells {
        // What the rules and the Gaussian step alone give, beside the final status: a cell
        // hidden only after them was hidden by the interval repair.
        let gauss = disclosure::suppress(&release, &rules);
        let mut listed: Vec<(&disclosure::Cell, &Status, &Status)> = release
            .cells
            .iter()
            .zip(&status)
            .zip(&gauss)
            .map(|((c, s), g)| (c, s, g))
            .filter(|(c, _, _)| c.key.starts_with(prefix))
            .collect();
        listed.sort_by(|a, b| a.0.key.cmp(&b.0.key));
        println!("celler som börjar med {prefix}:");
        for (c, s, g) in listed {
            let repaired = if s == g {
                String::new()
            } else {
                format!(" (intervallskyddet; efter regler och Gauss: {g:?})")
            };
            println!("  {:<40} {:>7}  {s:?}{repaired}", c.key, c.value);
        }
    }
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
            "FEL: {} kan ringas in till {} – {}{}",
            f.key,
            f.min,
            f.max.unwrap_or(0),
            f.insider
                .as_ref()
                .map(|s| format!(" av den som känner skolenhet {s}s uppgifter"))
                .unwrap_or_default()
        );
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
