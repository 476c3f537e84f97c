//! Compaction, checkpoints and vacuum.

use std::collections::BTreeMap;

use deltalake::kernel::Action;
use deltalake::kernel::transaction::CommitBuilder;
use deltalake::protocol::DeltaOperation;
use deltalake::table::config::TablePropertiesExt as _;

use super::commit::{self, conform};
use super::*;

impl Lake {
    /// Compacts small files and writes a checkpoint in every table where small files have
    /// piled up (or in all tables when `force`). Returns what it did, per table.
    pub async fn optimize(&self, force: bool) -> Result<Vec<Maintenance>> {
        let mut done = Vec::new();
        for name in TABLES {
            if name == Kind::Attendance.table() {
                done.extend(self.compact_attendance(force).await?);
                continue;
            }
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
            super::checkpoint(&table).await?;
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
    /// Writes a checkpoint (and removes expired log entries, [`super::checkpoint`]) in every
    /// table whose log has grown by its checkpoint interval (Delta's default: 100 commits)
    /// since its last checkpoint. Commits do not write checkpoints themselves
    /// ([`super::commit_properties`]): a checkpoint of `attendance` decodes every file's
    /// statistics, which would land on whichever upload crossed the interval, in the server.
    /// The publisher (also `serve`'s child) and `ingest` call this instead. Returns the tables
    /// checkpointed, with the version.
    pub async fn checkpoint_due(&self) -> Result<Vec<(&'static str, u64)>> {
        let mut done = Vec::new();
        for name in TABLES {
            let table = self.table(name).await?;
            let Some(version) = table.version() else {
                continue;
            };
            let interval = table.snapshot()?.table_config().checkpoint_interval().get();
            let last = last_checkpoint(&table).await?;
            if last.map_or(version + 1, |c| version.saturating_sub(c)) < interval {
                continue;
            }
            super::checkpoint(&table).await?;
            done.push((name, version));
        }
        Ok(done)
    }
}

/// The version of `table`'s last checkpoint, from its `_last_checkpoint` hint (`None`: none
/// written, or a hint that cannot be read, as Delta treats it).
async fn last_checkpoint(table: &DeltaTable) -> Result<Option<u64>> {
    use deltalake::logstore::object_store::ObjectStoreExt;
    let path = deltalake::Path::from("_delta_log/_last_checkpoint");
    let unreadable = |e| Error::Unavailable(format!("{}/{path}: {e}", table.table_url()));
    let bytes = match table.log_store().object_store(None).get(&path).await {
        Ok(got) => got.bytes().await.map_err(unreadable)?,
        Err(deltalake::ObjectStoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(unreadable(e)),
    };
    #[derive(serde::Deserialize)]
    struct Hint {
        version: u64,
    }
    Ok(serde_json::from_slice::<Hint>(&bytes)
        .ok()
        .map(|h| h.version))
}

impl Lake {
    /// Compacts `attendance` one file per municipality and month, the unit schools' uploads
    /// come in: a later upload's commit then reads back only its municipality's month of the
    /// files it replaces keys in (see `Lake::try_commit`), never the whole country's. A
    /// partition is compacted when it holds more files than the register has municipalities
    /// (plus a few), i.e. when uploads came in smaller pieces than municipalities, or always
    /// with `force` (which also lays out a lake compacted the old way, a month per file).
    /// One commit per partition, so at most one month's rows are held at a time; the rows,
    /// their upload ids and every other version are unchanged.
    async fn compact_attendance(&self, force: bool) -> Result<Option<Maintenance>> {
        let kind = Kind::Attendance;
        let _writer = self.writers[kind.table()].lock().await;
        let register = self.register().await?;
        let municipalities = register.municipality_count();
        let mut table = self.table(kind.table()).await?;
        // Each partition's files, and the actions that remove them.
        let mut partitions: BTreeMap<String, (Vec<String>, Vec<Action>)> = BTreeMap::new();
        for file in table.snapshot()?.log_data() {
            let period = file
                .partition_values_map()
                .get("period")
                .cloned()
                .flatten()
                .unwrap_or_default();
            let (files, removes) = partitions.entry(period).or_default();
            files.push(file.path().to_string());
            removes.push(Action::Remove(file.remove_action(false)));
        }
        let files_before = partitions.values().map(|(f, _)| f.len()).sum();
        let (mut removed, mut added) = (0, 0);
        let schema = kind.lake_schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        for (files, mut actions) in partitions.into_values() {
            if !force && files.len() <= municipalities + SMALL_FILES_PER_PARTITION {
                continue;
            }
            let read = self
                .scan_in(&table, Some(files), None, &names)
                .await?
                .iter()
                .map(|b| conform(b, &schema))
                .collect::<Result<Vec<_>>>()?;
            // The partition's rows by municipality, each municipality's in school order,
            // gathered from the batches read (no copy of the whole month).
            let schools: Vec<StringArray> = read.iter().map(|b| string_column(b, 0)).collect();
            let school = |(b, i): (usize, usize)| schools[b].value(i);
            let municipality = |at: (usize, usize)| register.municipality_of(school(at));
            let mut order: Vec<(usize, usize)> = read
                .iter()
                .enumerate()
                .flat_map(|(b, batch)| (0..batch.num_rows()).map(move |i| (b, i)))
                .collect();
            order.sort_by(|&a, &b| (municipality(a), school(a)).cmp(&(municipality(b), school(b))));
            let batches: Vec<&RecordBatch> = read.iter().collect();
            let mut adds = Vec::new();
            for group in order.chunk_by(|&a, &b| municipality(a) == municipality(b)) {
                let batch = arrow::compute::interleave_record_batch(&batches, group)?;
                adds.extend(commit::write_files(&table, vec![batch]).await?);
            }
            drop(read);
            removed += actions.len() as u64;
            added += adds.len() as u64;
            actions.extend(adds.into_iter().map(|mut a| {
                a.data_change = false;
                Action::Add(a)
            }));
            let operation = DeltaOperation::Optimize {
                predicate: None,
                target_size: 0,
            };
            CommitBuilder::from(super::commit_properties())
                .with_actions(actions)
                .build(Some(table.snapshot()?), table.log_store(), operation)
                .await
                .map_err(commit::unavailable)?;
            table = self.table(kind.table()).await?;
        }
        if removed == 0 && !force {
            return Ok(None);
        }
        super::checkpoint(&table).await?;
        Ok(Some(Maintenance {
            table: kind.table().to_string(),
            files_before,
            files_removed: removed,
            files_added: added,
            version: table.version().unwrap_or_default(),
        }))
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
