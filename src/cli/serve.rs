//! `narvaro serve` and `narvaro demo`: the report server, and the demo that fills a lake
//! and serves it.

use super::*;

/// The environment variable that sets how long mimalloc keeps memory a thread freed before it
/// gives it back to the system (milliseconds; 1,000 by default).
const PURGE_DELAY: &str = "MIMALLOC_PURGE_DELAY";

/// Starts `narvaro serve` again in this process with [`PURGE_DELAY`] at 0, unless it is set.
///
/// The server's work is spread over many threads in turn (requests, uploads, log reads), and
/// mimalloc purges a thread's freed pages only after the delay and only when that thread
/// allocates again: on the national lake, during a county's upload burst, the server held
/// 1.1 GB against 0.6 GB with the delay at 0. mimalloc reads its options when the process
/// starts, so the only way to set it from here (the crate has no unsafe code) is to exec the
/// same command with the variable set. Call before anything else runs; returns only if the
/// exec failed, to go on with the default.
pub(super) fn purge_freed_memory_at_once() {
    if std::env::var_os(PURGE_DELAY).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    use std::os::unix::process::CommandExt;
    let e = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(PURGE_DELAY, "0")
        .exec();
    tracing::warn!(error = %e, "could not start again with {PURGE_DELAY}=0: serving with mimalloc's default");
}

/// Serves the lake with the tokens of `config`, printing the URL once the server listens.
pub(super) async fn serve(lake: Lake, config: &Path, addr: &str) -> Result<()> {
    let policies =
        Policies::load(&policy::Source::resolve(None)).map_err(|e| Error::usage(e.to_string()))?;
    let tokens = crate::auth::Tokens::open(Some(config))?;
    if !config.exists() {
        eprintln!(
            "{} finns inte: inga token, så uppladdningar avvisas (skapa ett med narvaro token create)",
            config.display()
        );
    }
    let root = lake.root().to_string();
    crate::http::serve(lake, policies, tokens, addr, |local| {
        println!("Närvarolagret serverar sjön {root} på http://{local}/ (avsluta med Ctrl-C)");
        use std::io::Write;
        let _ = std::io::stdout().flush();
    })
    .await
}

pub(super) async fn demo(dir: &Path, addr: &str) -> Result<ExitCode> {
    let fixtures_dir = dir.join("fixtures");
    let lake_dir = dir.join("lake");
    for d in [&fixtures_dir, &lake_dir] {
        if d.exists() {
            std::fs::remove_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
    }
    println!("Närvarolagret demo: Örebro län, läsåren 2024/25 och 2025/26");
    let opts = fixtures::Options {
        out: fixtures_dir.clone(),
        scale: Scale::County,
        seed: 2025,
        truth: false,
        ss12000: None,
        municipality: None,
    };
    let pb = progress(0, "genererar");
    let s = fixtures::generate(&opts, &pb)?;
    pb.finish_and_clear();
    println!(
        "genererade {} kommuner, {} skolenheter, {} elever: {} filer i {}",
        s.municipalities,
        s.schools,
        s.pupils,
        s.files.len(),
        fixtures_dir.display()
    );
    let lake = Lake::open(&lake_dir).await?;
    let refused = ingest_all(&lake, &[fixtures_dir], true).await?;
    publish_lake(&lake, false, false).await?;
    println!();
    print_lake_info(&lake).await?;
    let engine = Engine::open(&lake, None).await?;
    let batches = engine.sql(DEMO_SQL).await?;
    println!("\nFrånvaro per kommun, HT2025 (terminen t.o.m. december), grundskolan:");
    println!("{}", output::render(&batches, Format::Table)?);
    println!(
        "\nFrågor mot sjön: cargo run --release -- query --lake {} \"SELECT ...\"",
        lake_dir.display()
    );
    if refused > 0 {
        return Ok(ExitCode::from(1));
    }
    println!("Rapporterna, t.ex. nämndrapporten för Örebro: /reports/committee/1880/VT2026");
    serve(lake, Path::new(crate::auth::DEFAULT_CONFIG), addr).await?;
    Ok(ExitCode::SUCCESS)
}

/// Pupils, schools and absence per municipality for the autumn term 2025, from the shared
/// definition's `absence_rate` view. Percentages in whole tenths with a decimal comma.
const DEMO_SQL: &str = r#"
SELECT m.municipality_name AS kommun, r.area_code AS kod, r.schools AS skolenheter,
       r.students AS elever,
       replace(CAST(round(r.absence_pct, 1) AS VARCHAR), '.', ',') AS "frånvaro %",
       replace(CAST(round(r.invalid_absence_pct, 1) AS VARCHAR), '.', ',') AS "ogiltig %"
FROM absence_rate r JOIN municipalities m ON m.municipality_code = r.area_code
WHERE r.area_type = 'municipality' AND r.period = '2025-12' AND r."window" = 'term'
ORDER BY kod
"#;
