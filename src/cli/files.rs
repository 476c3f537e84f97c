//! `narvaro ingest`: files and directories into the lake, one line per file.

use super::*;

/// Ingests files (directories expanded) in dependency order, printing one line per file.
/// Returns how many were refused. Compacts the lake afterwards if small files piled up.
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
