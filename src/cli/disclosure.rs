//! `narvaro disclosure audit`: protect and audit a county's release from the command line.

use super::*;

/// `narvaro disclosure audit`.
pub(super) async fn disclosure_audit(
    lake: &lake::Location,
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
    let release = disclosure::release::county_release(&engine, &county, &period, window).await?;
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
            "  {:<40} {}{}",
            i.key,
            range(i),
            if i.exact { "" } else { " eller vidare" }
        );
    }
    for f in &report.failures {
        println!(
            "FEL: {} kan ringas in till {}{}",
            f.key,
            range(f),
            by_insider(f)
        );
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `narvaro disclosure attack`.
pub(super) async fn disclosure_attack(
    lake: &lake::Location,
    scenarios: &[String],
) -> Result<ExitCode> {
    use crate::attack::{self, Scenario};
    let scenarios: Vec<Scenario> = if scenarios.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        scenarios
            .iter()
            .map(|s| s.parse().map_err(Error::usage))
            .collect::<Result<_>>()?
    };
    let policies =
        Policies::load(&policy::Source::resolve(None)).map_err(|e| Error::usage(e.to_string()))?;
    let lake = open_existing(lake).await?;
    let started = std::time::Instant::now();
    let found = attack::attack(&lake, &policies, &scenarios).await?;
    let rules = policies.shared.policy.disclosure;
    println!(
        "angrepp på det publicerade: {} publiceringar, {} rapporter, {} tal, varav {} knutna till en cell ({:.1} s)",
        found.publications,
        found.reports,
        found.numbers,
        found.tied,
        started.elapsed().as_secs_f64()
    );
    for (at, n) in &found.not_counts {
        println!("  {at}: {n} tal som inte är cellens antal (används inte)");
    }
    for (p, which, what) in &found.leaks {
        println!(
            "FEL: publicering {p}, län {} {} ({}): {what}",
            which.county, which.period, which.window
        );
    }
    for o in &found.outcomes {
        println!(
            "{}: {} utgåvor, {} dolda celler, {} för smala intervall (minst ±{} krävs)",
            o.scenario.label(),
            o.releases,
            o.hidden,
            o.failures.len(),
            rules.protection
        );
        if let Some((p, which, i)) = &o.narrowest {
            println!(
                "  snävast: {} i publicering {p}, {} ({}): {}{}",
                i.key,
                which.period,
                which.window,
                range(i),
                if i.exact { "" } else { " eller vidare" }
            );
        }
        for (p, which, f) in &o.failures {
            println!(
                "FEL: {} i publicering {p}, {} ({}) kan ringas in till {}{}",
                f.key,
                which.period,
                which.window,
                range(f),
                by_insider(f)
            );
        }
    }
    Ok(if found.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// An attacker's interval as the commands write it: `3 – 12`, `3 – obegränsat`.
fn range(i: &crate::disclosure::audit::Interval) -> String {
    format!(
        "{} – {}",
        i.min,
        i.max.map_or("obegränsat".to_string(), |m| m.to_string())
    )
}

/// Who can narrow a failing cell, when it is an insider.
fn by_insider(i: &crate::disclosure::audit::Interval) -> String {
    i.insider
        .as_ref()
        .map(|s| format!(" av den som känner skolenhet {s}s uppgifter"))
        .unwrap_or_default()
}
