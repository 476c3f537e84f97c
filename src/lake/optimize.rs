//! Compaction, checkpoints and vacuum.

use super::*;

impl Lake {
    /// Compacts small files and writes a checkpoint in every table where small files have
    /// piled up (or in all tables when `force`). Returns what it did, per table.
    pub async fn optimize(&self, force: bool) -> Result<Vec<Maintenance>> {
        let mut done = Vec::new();
        for name in TABLES {
            let table = self.table(name).await?;
            let files = table.get_file_uris()?.count();
            let partitions = partition_count(&table)?;
            // A month's uploads from every school land as one file each; once a partition
            // holds more than a handful, reading it costs more than compacting it.
            if !force && files <= SMALL_FILES_PER_PARTITION * partitions.max(1) {
                continue;
            }
            let mut optimize = table.optimize();
            if name == PUBLICATIONS {
                optimize = optimize.with_writer_properties(publications::writer_properties());
            }
            let (table, metrics) = optimize.await?;
            deltalake::checkpoints::create_checkpoint(&table, None).await?;
            self.remember(name, &table).await;
            done.push(Maintenance {
                table: name.to_string(),
                files_before: files,
                files_removed: metrics.num_files_removed,
                files_added: metrics.num_files_added,
                version: table.version().unwrap_or_default(),
            });
        }
        Ok(done)
    }
}

impl Lake {
    /// Deletes the data files no version worth keeping reads: files a table stopped reading
    /// (after a compaction, a correction or a replaced upload) more than `retain` ago, except
    /// those any of `keep`'s versions of that table still reads (the versions publications
    /// were computed from, which permanent links, `as_of` and the publisher's protection of a
    /// correction read). Files never committed (a publisher stopped midway) are left alone.
    /// With `dry_run` nothing is deleted; the answer lists what would be.
    pub async fn vacuum(
        &self,
        keep: &HashMap<String, Vec<u64>>,
        retain: chrono::Duration,
        dry_run: bool,
    ) -> Result<Vec<Vacuumed>> {
        let mut done = Vec::new();
        for name in TABLES {
            let table = self.table(name).await?;
            let versions: Vec<deltalake::kernel::Version> = keep
                .get(name)
                .into_iter()
                .flatten()
                .map(|&v| v as _)
                .collect();
            let mut vacuum = table
                .vacuum()
                .with_retention_period(retain)
                .with_enforce_retention_duration(false)
                .with_dry_run(dry_run);
            if !versions.is_empty() {
                vacuum = vacuum.with_keep_versions(&versions);
            }
            let (table, metrics) = vacuum.await?;
            self.remember(name, &table).await;
            done.push(Vacuumed {
                table: name.to_string(),
                files: metrics.files_deleted,
                kept_versions: versions.len(),
            });
        }
        Ok(done)
    }
}

/// What `Lake::vacuum` did to one table.
#[derive(Debug, Clone, Serialize)]
pub struct Vacuumed {
    pub table: String,
    /// The files deleted (with `dry_run`: that would be).
    pub files: Vec<String>,
    /// How many of its versions were kept readable.
    pub kept_versions: usize,
}

/// Files a partition may hold before `Lake::optimize` compacts the table on its own.
pub const SMALL_FILES_PER_PARTITION: usize = 8;

pub(super) fn partition_count(table: &DeltaTable) -> Result<usize> {
    let parts: std::collections::HashSet<String> = table
        .get_file_uris()?
        .map(|u| {
            u.rsplit_once('/')
                .map_or(String::new(), |(dir, _)| dir.to_string())
        })
        .collect();
    Ok(parts.len())
}

/// What `Lake::optimize` did to one table.
#[derive(Debug, Clone, Serialize)]
pub struct Maintenance {
    pub table: String,
    pub files_before: usize,
    pub files_removed: u64,
    pub files_added: u64,
    pub version: u64,
}
