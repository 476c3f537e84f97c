//! `narvaro ingest`: files and directories into the lake, one line per file.

use super::*;

/// Ingests files (directories expanded) in dependency order, printing one line per file.
/// Returns how many were refused. Afterwards writes the checkpoints due and compacts the lake
/// if small files piled up.
pub async fn ingest_all(lake: &Lake, inputs: &[PathBuf], quiet: bool) -> Result<usize> {
    let mut files = Vec::new();
    for p in inputs {
        if p.is_dir() {
            files.extend(ingest::upload_files(p)?);
        } else {
            files.push(p.clone());
        }
    }
    let files = ingest::dependency_order(&files);
    let pb = progress(files.len() as u64, "läser in");
    let mut refused = 0;
    for f in &files {
        match ingest::ingest_path(lake, f, Utc::now()).await {
            Ok(r) => {
                if !quiet {
                    pb.suspend(|| {
                        println!(
                            "ok    {}: {} rader, {} nycklar ({} ersatta) → {} version {}",
                            f.display(),
                            r.audit.rows,
                            r.audit.keys,
                            r.audit.keys_replaced,
                            r.audit.table,
                            r.audit.version
                        );
                        for w in &r.warnings {
                            println!("      varning: {w}");
                        }
                    });
                }
            }
            Err(Error::Rejected(r)) => {
                refused += 1;
                pb.suspend(|| println!("{r}"));
            }
            Err(e) => return Err(e),
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    lake.checkpoint_due().await?;
    for m in lake.optimize(false).await? {
        if !quiet {
            println!(
                "komprimerade {}: {} små filer till {} (version {})",
                m.table, m.files_removed, m.files_added, m.version
            );
        }
    }
    Ok(refused)
}

/// Publishes the lake's latest version with a progress bar, and says what it did.
pub async fn publish_lake(lake: &Lake, json: bool, rebuild: bool) -> Result<()> {
    let policies =
        Policies::load(&policy::Source::resolve(None)).map_err(|e| Error::usage(e.to_string()))?;
    let pb = if json {
        ProgressBar::hidden()
    } else {
        progress(0, "publicerar")
    };
    let tick = |done: usize, total: usize| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    };
    let published = crate::publish::publish_with(
        lake,
        &policies,
        Default::default(),
        Utc::now(),
        &tick,
        rebuild,
    )
    .await?;
    pb.finish_and_clear();
    match published {
        // What `serve`'s publisher reads: one line, `null` when nothing was new.
        _ if json => println!("{}", serde_json::to_string(&published)?),
        None => println!("publiceringen visar redan den senaste dataversionen"),
        Some(p) => println!(
            "publicerade dataversion {} (publicering {}): {} rapporter ({} byggda, övriga \
             oförändrade underlag), {} nya eller ändrade, {} tillbakadragna; {} skyddade utdrag \
             beräknade; {:.1} s",
            p.data_version,
            p.publication,
            p.reports,
            p.built,
            p.written,
            p.withdrawn,
            p.releases_solved,
            p.seconds
        ),
    }
    Ok(())
}
