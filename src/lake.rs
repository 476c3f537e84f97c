//! The lake: Delta Lake tables under one root directory. The only module that writes them.
//!
//! Tables: `attendance`, `actions`, `register`, `outcomes` (one per [`Kind`]) and `uploads`,
//! the audit of every accepted upload.
//!
//! An accepted upload is exactly one Delta commit to its table: an overwrite whose
//! `replaceWhere` predicate matches precisely the keys the upload carries, e.g. the
//! (school, period, window) keys of an attendance file. Readers see all of it or none of it,
//! and the version before stays readable (time travel). The data commit's own commit info
//! carries the whole audit record, so once it has landed the upload is stored: the audit row
//! then goes to `uploads` in a second commit naming the data version, and if that fails (a
//! full disk) the row stays pending in memory and is restored from the data table's log on
//! the next open, whatever came after it.
//!
//! Two writers racing on the same keys are serialised by Delta's optimistic concurrency; the
//! loser's commit conflicts and is retried from a fresh read of the table, never merged
//! silently.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{Date32Type, Schema};
use chrono::{DateTime, NaiveDate, Utc};
use datafusion::prelude::{Expr, SessionContext, col, lit};
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::contract::schema::{UPLOAD_ID, uploads_schema};
use crate::contract::{KeySet, Kind, Register, Validated};
use crate::{Error, Result};

pub const UPLOADS: &str = "uploads";

/// Every table in the lake, in the order they are created and listed.
pub const TABLES: [&str; 5] = ["register", "attendance", "actions", "outcomes", UPLOADS];

fn schema_of(table: &str) -> Arc<Schema> {
    match table {
        UPLOADS => uploads_schema(),
        t => Kind::ALL
            .into_iter()
            .find(|k| k.table() == t)
            .expect("known table")
            .lake_schema(),
    }
}

fn partitions_of(table: &str) -> &'static [&'static str] {
    Kind::ALL
        .into_iter()
        .find(|k| k.table() == table)
        .map_or(&[], |k| k.partition_columns())
}

/// The audit record of one accepted upload: a row of `uploads`, and also carried in the data
/// commit's own commit info (`narvaro.receipt`), so the row can always be restored from the
/// data table alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Audit {
    pub upload_id: String,
    pub table: String,
    pub source_file: String,
    pub sha256: String,
    pub rows: usize,
    /// Distinct keys (e.g. school × period × window) the upload carries.
    pub keys: usize,
    /// How many of those keys already had rows, now replaced.
    pub keys_replaced: usize,
    /// Uploads whose rows this one replaced.
    pub supersedes: Vec<String>,
    /// The data table's Delta version this upload created.
    pub version: u64,
    pub received_at: DateTime<Utc>,
    /// The name of the token (or `narvaro ingest`) that sent it; unknown in older lakes.
    pub uploader: Option<String>,
    /// The school units it wrote rows for.
    pub schools: Vec<String>,
    /// The months (outcomes: school years) it wrote rows for.
    pub periods: Vec<String>,
}

/// What an accepted upload did: its audit record and what the uploader should know.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Receipt {
    #[serde(flatten)]
    pub audit: Audit,
    pub warnings: Vec<crate::contract::Problem>,
}

/// The lake under one root directory.
pub struct Lake {
    root: PathBuf,
    /// The register as of a `register` table version, so a bulk ingest reads it once.
    register_cache: Mutex<Option<(u64, Arc<Register>)>>,
    /// Latest loaded state per table; brought up to date incrementally (only new log
    /// entries are read), so a stream of uploads does not replay each log from its checkpoint.
    tables: tokio::sync::Mutex<HashMap<String, DeltaTable>>,
    /// One writer per table in this process; writers in other processes are serialised by
    /// Delta's optimistic concurrency and retried (see `commit`).
    writers: HashMap<&'static str, tokio::sync::Mutex<()>>,
    /// Audit rows of committed uploads not yet written to `uploads` (e.g. the disk was full).
    pending: Mutex<Vec<Audit>>,
}

impl Lake {
    /// Opens the lake at `root`, creating the directory and any missing table.
    pub async fn open(root: impl AsRef<Path>) -> Result<Lake> {
        let root = root.as_ref();
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let root = root.canonicalize().map_err(|e| Error::io(root, e))?;
        let lake = Lake {
            root,
            register_cache: Mutex::new(None),
            tables: tokio::sync::Mutex::new(HashMap::new()),
            writers: TABLES
                .iter()
                .map(|t| (*t, tokio::sync::Mutex::new(())))
                .collect(),
            pending: Mutex::new(Vec::new()),
        };
        for t in TABLES {
            lake.create_if_missing(t).await?;
        }
        lake.restore_audit().await?;
        Ok(lake)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn url(&self, table: &str) -> Result<Url> {
        let dir = self.root.join(table);
        Url::from_directory_path(&dir)
            .map_err(|_| Error::usage(format!("lake path is not absolute: {}", dir.display())))
    }

    async fn create_if_missing(&self, table: &str) -> Result<()> {
        let dir = self.root.join(table);
        if dir.join("_delta_log").is_dir() {
            return Ok(());
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let schema: StructType = schema_of(table).as_ref().try_into_kernel()?;
        DeltaTableBuilder::from_url(self.url(table)?)?
            .build()?
            .create()
            .with_table_name(table)
            .with_columns(schema.fields().cloned())
            .with_partition_columns(partitions_of(table).iter().copied())
            .with_save_mode(SaveMode::Ignore)
            .await?;
        Ok(())
    }

    /// The table at its latest version (including commits by other processes).
    pub async fn table(&self, table: &str) -> Result<DeltaTable> {
        let mut cache = self.tables.lock().await;
        if let Some(t) = cache.get_mut(table) {
            t.update_incremental(None).await?;
            return Ok(t.clone());
        }
        let t = deltalake::open_table(self.url(table)?).await?;
        cache.insert(table.to_string(), t.clone());
        Ok(t)
    }

    /// Keeps the state a write returned, so the next `table` call starts from it.
    async fn remember(&self, table: &str, t: &DeltaTable) {
        let mut cache = self.tables.lock().await;
        let newer = cache.get(table).is_none_or(|c| c.version() < t.version());
        if newer {
            cache.insert(table.to_string(), t.clone());
        }
    }

    /// The table as it was at `version`.
    pub async fn table_at(&self, table: &str, version: u64) -> Result<DeltaTable> {
        let t = DeltaTableBuilder::from_url(self.url(table)?)?
            .with_version(version)
            .load()
            .await
            .map_err(|e| match e {
                deltalake::DeltaTableError::InvalidVersion(_) => {
                    Error::usage(format!("version {version} of table {table} does not exist"))
                }
                e => e.into(),
            })?;
        Ok(t)
    }

    /// The table as it was at a point in time (the last commit at or before `at`).
    pub async fn table_as_of_time(&self, table: &str, at: DateTime<Utc>) -> Result<DeltaTable> {
        // Before the table's first commit it held nothing: its first version is empty.
        if at < self.commit_time(table, 0).await? {
            return self.table_at(table, 0).await;
        }
        let mut t = DeltaTableBuilder::from_url(self.url(table)?)?.build()?;
        t.load_with_datetime(at).await?;
        Ok(t)
    }

    /// The data files of the table's current version, as local paths where the lake is local.
    pub async fn files(&self, table: &str) -> Result<Vec<String>> {
        if !TABLES.contains(&table) {
            return Err(Error::usage(format!(
                "okänd tabell '{table}': välj bland {}",
                TABLES.join(", ")
            )));
        }
        let t = self.table(table).await?;
        Ok(t.get_file_uris()?
            .map(|u| u.strip_prefix("file://").map(String::from).unwrap_or(u))
            .collect())
    }

    /// The commit time of `version` of `table`.
    pub async fn commit_time(&self, table: &str, version: u64) -> Result<DateTime<Utc>> {
        // Read exactly that version's log entry: the table's history is read from its newest
        // commit, whatever version is loaded.
        let missing = || Error::usage(format!("version {version} of table {table} does not exist"));
        let log = self.table(table).await?.log_store();
        let entry = log.read_commit_entry(version).await?.ok_or_else(missing)?;
        let ms = String::from_utf8_lossy(&entry)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|a| a["commitInfo"]["timestamp"].as_i64())
            .ok_or_else(|| {
                Error::usage(format!(
                    "version {version} of table {table} has no commit time"
                ))
            })?;
        Ok(DateTime::from_timestamp_millis(ms).unwrap_or_default())
    }

    /// The school unit register as it stands now (cached by register table version).
    pub async fn register(&self) -> Result<Arc<Register>> {
        let table = self.table(Kind::Register.table()).await?;
        let version = table.version().unwrap_or(u64::MAX);
        if let Some((v, r)) = self.register_cache.lock().expect("lock").as_ref()
            && *v == version
        {
            return Ok(r.clone());
        }
        let batches = scan(
            &table,
            None,
            &[
                "school_unit_code",
                "valid_from",
                "valid_to",
                "municipality_code",
            ],
        )
        .await?;
        let mut register = Register::default();
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
        let day = |d: i32| epoch + chrono::Duration::days(d as i64);
        for b in &batches {
            let code = string_column(b, 0);
            let from = b.column(1).as_primitive::<Date32Type>();
            let to = b.column(2).as_primitive::<Date32Type>();
            let municipality = string_column(b, 3);
            for i in 0..b.num_rows() {
                let to = (!to.is_null(i)).then(|| day(to.value(i)));
                register.insert(code.value(i), municipality.value(i), day(from.value(i)), to);
            }
        }
        let register = Arc::new(register);
        *self.register_cache.lock().expect("lock") = Some((version, register.clone()));
        Ok(register)
    }

    /// Commits an accepted upload: one Delta commit replacing exactly the keys it carries,
    /// then its audit row. A commit that loses a race with another process's commit is
    /// retried from a fresh read of the table, so no upload is lost or applied twice.
    pub async fn commit(
        &self,
        upload: Validated,
        source_file: &str,
        sha256: &str,
        uploader: &str,
        received_at: DateTime<Utc>,
    ) -> Result<Receipt> {
        let kind = upload.kind;
        let _writer = self.writers[kind.table()].lock().await;
        // The audit keeps the file's name, not the uploader's local path.
        let source_file = Path::new(source_file)
            .file_name()
            .map_or(source_file.to_string(), |n| {
                n.to_string_lossy().into_owned()
            });
        let mut audit = Audit {
            upload_id: uuid::Uuid::new_v4().to_string(),
            table: kind.table().to_string(),
            source_file,
            sha256: sha256.to_string(),
            rows: upload.batch.num_rows(),
            keys: upload.keys.len(),
            keys_replaced: 0,
            supersedes: Vec::new(),
            version: 0,
            received_at,
            uploader: Some(uploader.to_string()),
            schools: upload.schools(),
            periods: upload.periods(),
        };
        let batch = with_upload_id(&upload.batch, kind, &audit.upload_id)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .try_commit(kind, &upload.keys, &batch, &mut audit)
                .await
            {
                Ok(()) => break,
                Err(e) if is_conflict(&e) && attempt < COMMIT_ATTEMPTS => {
                    tracing::info!(table = kind.table(), attempt, "commit conflict, retrying");
                    let jitter = rand::random::<u64>() % 50;
                    tokio::time::sleep(std::time::Duration::from_millis(
                        20 * attempt as u64 + jitter,
                    ))
                    .await;
                }
                Err(e) => return Err(e),
            }
        }
        // The data commit has landed and carries the receipt: from here on the upload is
        // stored, whatever happens to its audit row. A row that cannot be written now is kept
        // pending (and shown by `audits`) until a later audit write or `open` restores it.
        let mut warnings = upload.warnings;
        let pending = {
            let mut p = self.pending.lock().expect("lock");
            p.push(audit.clone());
            p.clone()
        };
        match self.audit(&pending).await {
            Ok(()) => {
                let mut p = self.pending.lock().expect("lock");
                p.retain(|a| !pending.iter().any(|w| w.upload_id == a.upload_id));
            }
            Err(e) => {
                tracing::warn!(upload_id = %audit.upload_id, error = %e,
                    "upload committed, its audit row is pending");
                warnings.push(crate::contract::Problem::file(
                    "audit_pending",
                    "uppgifterna är sparade, men granskningsraden kunde inte skrivas just nu; \
                     den skrivs vid nästa uppladdning eller när servern startas om",
                ));
            }
        }
        Ok(Receipt { audit, warnings })
    }

    /// One attempt: read which keys exist (and which uploads wrote them), then write.
    async fn try_commit(
        &self,
        kind: Kind,
        keys: &KeySet,
        batch: &RecordBatch,
        audit: &mut Audit,
    ) -> Result<()> {
        let started = std::time::Instant::now();
        let table = self.table(kind.table()).await?;
        let predicate = replace_predicate(kind, keys);
        let key_cols = kind.key_columns();
        let mut cols: Vec<&str> = key_cols.to_vec();
        cols.push(UPLOAD_ID);
        let existing = scan(&table, Some(predicate.clone()), &cols).await?;
        let mut replaced = BTreeSet::new();
        let mut supersedes = BTreeSet::new();
        for b in &existing {
            let keys: Vec<StringArray> = (0..key_cols.len()).map(|c| string_column(b, c)).collect();
            let ids = string_column(b, key_cols.len());
            for i in 0..b.num_rows() {
                replaced.insert(
                    keys.iter()
                        .map(|k| k.value(i).to_string())
                        .collect::<Vec<_>>(),
                );
                supersedes.insert(ids.value(i).to_string());
            }
        }
        audit.keys_replaced = replaced.len();
        audit.supersedes = supersedes.into_iter().collect();
        let scanned = started.elapsed();
        let metadata = [
            (
                "narvaro.upload_id".to_string(),
                serde_json::json!(audit.upload_id),
            ),
            (
                "narvaro.source_file".to_string(),
                serde_json::json!(audit.source_file),
            ),
            (
                "narvaro.sha256".to_string(),
                serde_json::json!(audit.sha256),
            ),
            (RECEIPT_KEY.to_string(), serde_json::to_value(&*audit)?),
        ];
        let table = table
            .write(vec![batch.clone()])
            .with_save_mode(SaveMode::Overwrite)
            .with_replace_where(predicate)
            .with_commit_properties(CommitProperties::default().with_metadata(metadata))
            .await
            .map_err(unavailable)?;
        self.remember(kind.table(), &table).await;
        audit.version = table.version().unwrap_or_default();
        tracing::debug!(
            table = kind.table(),
            rows = audit.rows,
            key_scan_ms = scanned.as_millis() as u64,
            write_ms = (started.elapsed() - scanned).as_millis() as u64,
            "upload committed"
        );
        Ok(())
    }

    async fn audit(&self, records: &[Audit]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let _writer = self.writers[UPLOADS].lock().await;
        let list = |values: &mut dyn Iterator<Item = &Vec<String>>| {
            let mut b = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(
                arrow::datatypes::Field::new("element", arrow::datatypes::DataType::Utf8, true),
            ));
            for v in values {
                for s in v {
                    b.values().append_value(s);
                }
                b.append(true);
            }
            Arc::new(b.finish()) as ArrayRef
        };
        let text = |f: &dyn Fn(&Audit) -> &str| {
            Arc::new(StringArray::from_iter_values(records.iter().map(f))) as ArrayRef
        };
        let int = |f: &dyn Fn(&Audit) -> i64| {
            Arc::new(Int64Array::from_iter_values(records.iter().map(f))) as ArrayRef
        };
        let batch = RecordBatch::try_new(
            uploads_schema(),
            vec![
                text(&|r| &r.upload_id),
                text(&|r| &r.table),
                text(&|r| &r.source_file),
                text(&|r| &r.sha256),
                int(&|r| r.rows as i64),
                int(&|r| r.keys as i64),
                int(&|r| r.keys_replaced as i64),
                list(&mut records.iter().map(|r| &r.supersedes)),
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(
                        records.iter().map(|r| r.received_at.timestamp_micros()),
                    )
                    .with_timezone("UTC"),
                ),
                int(&|r| r.version as i64),
                Arc::new(StringArray::from_iter(
                    records.iter().map(|r| r.uploader.as_deref()),
                )),
                list(&mut records.iter().map(|r| &r.schools)),
                list(&mut records.iter().map(|r| &r.periods)),
            ],
        )?;
        let table = self
            .table(UPLOADS)
            .await?
            .write(vec![batch])
            .with_save_mode(SaveMode::Append)
            // Lakes made before the upload API lack the newest audit columns.
            .with_schema_mode(deltalake::operations::write::SchemaMode::Merge)
            .await
            .map_err(unavailable)?;
        self.remember(UPLOADS, &table).await;
        Ok(())
    }

    /// Every audit record, oldest first, one per upload.
    pub async fn audits(&self) -> Result<Vec<Audit>> {
        let table = self.table(UPLOADS).await?;
        let ctx = SessionContext::new();
        table.update_datafusion_session(&ctx.state())?;
        ctx.register_table(UPLOADS, table.table_provider().await?)?;
        let batches = ctx
            .sql("SELECT * FROM uploads ORDER BY received_at, upload_id")
            .await?
            .collect()
            .await?;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for b in &batches {
            let text = |name: &str| b.column_by_name(name).map(strings);
            let int = |name: &str| {
                b.column_by_name(name)
                    .map(|c| c.as_primitive::<arrow::datatypes::Int64Type>().clone())
            };
            let list = |name: &str| -> Vec<Vec<String>> {
                match b.column_by_name(name) {
                    Some(c) => {
                        let l = c.as_list::<i32>();
                        (0..b.num_rows())
                            .map(|i| {
                                if l.is_null(i) {
                                    Vec::new()
                                } else {
                                    strings(&l.value(i))
                                        .iter()
                                        .flatten()
                                        .map(String::from)
                                        .collect()
                                }
                            })
                            .collect()
                    }
                    None => vec![Vec::new(); b.num_rows()],
                }
            };
            let (id, table, file, sha) = (
                text(UPLOAD_ID).expect("upload_id"),
                text("table_name").expect("table_name"),
                text("source_file").expect("source_file"),
                text("sha256").expect("sha256"),
            );
            let uploader = text("uploader");
            let (rows, keys, replaced, version) = (
                int("rows").expect("rows"),
                int("keys").expect("keys"),
                int("keys_replaced").expect("keys_replaced"),
                int("table_version").expect("table_version"),
            );
            let at = b
                .column_by_name("received_at")
                .expect("received_at")
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .clone();
            let (supersedes, schools, periods) =
                (list("supersedes"), list("schools"), list("periods"));
            for i in 0..b.num_rows() {
                // A restored row may race with the writer's own: one record per upload.
                if !seen.insert(id.value(i).to_string()) {
                    continue;
                }
                out.push(Audit {
                    upload_id: id.value(i).to_string(),
                    table: table.value(i).to_string(),
                    source_file: file.value(i).to_string(),
                    sha256: sha.value(i).to_string(),
                    rows: rows.value(i) as usize,
                    keys: keys.value(i) as usize,
                    keys_replaced: replaced.value(i) as usize,
                    supersedes: supersedes[i].clone(),
                    version: version.value(i) as u64,
                    received_at: DateTime::from_timestamp_micros(at.value(i)).unwrap_or_default(),
                    uploader: uploader
                        .as_ref()
                        .and_then(|u| (!u.is_null(i)).then(|| u.value(i).to_string())),
                    schools: schools[i].clone(),
                    periods: periods[i].clone(),
                });
            }
        }
        for a in self.pending.lock().expect("lock").iter() {
            if seen.insert(a.upload_id.clone()) {
                out.push(a.clone());
            }
        }
        Ok(out)
    }

    /// Restores audit rows that a crash or a full disk between an upload's data commit and
    /// its audit commit left out: every data commit carries its record in its commit info.
    /// Runs on open, so a restart needs no repair step. Every data version without an audit
    /// row is read, whatever came after it (commits that are not uploads, such as compaction,
    /// are read and skipped).
    async fn restore_audit(&self) -> Result<()> {
        let audits = self.audits().await?;
        let known: std::collections::HashSet<&str> =
            audits.iter().map(|a| a.upload_id.as_str()).collect();
        let mut missing = Vec::new();
        for kind in Kind::ALL {
            let name = kind.table();
            let audited: std::collections::HashSet<u64> = audits
                .iter()
                .filter(|a| a.table == name)
                .map(|a| a.version)
                .collect();
            let table = self.table(name).await?;
            let latest = table.version().unwrap_or_default();
            let log = table.log_store();
            for v in (1..=latest).filter(|v| !audited.contains(v)) {
                let Some(entry) = log.read_commit_entry(v).await? else {
                    continue;
                };
                let receipt = String::from_utf8_lossy(&entry)
                    .lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .find_map(|a| a["commitInfo"].get(RECEIPT_KEY).cloned());
                let Some(receipt) = receipt else { continue };
                let mut audit: Audit = serde_json::from_value(receipt)?;
                audit.version = v;
                if !known.contains(audit.upload_id.as_str()) {
                    tracing::warn!(upload_id = %audit.upload_id, table = name, version = v,
                        "restoring the audit row of an upload whose audit commit was lost");
                    missing.push(audit);
                }
            }
        }
        self.audit(&missing).await
    }

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
            let (table, metrics) = table.optimize().await?;
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

/// The commit-info key under which a data commit carries its upload's audit record.
const RECEIPT_KEY: &str = "narvaro.receipt";

/// How often a commit that lost a race with another writer is tried again.
const COMMIT_ATTEMPTS: usize = 10;

/// Whether a commit failed only because another writer committed first (worth a retry).
fn is_conflict(e: &Error) -> bool {
    use deltalake::kernel::transaction::TransactionError as T;
    matches!(
        e,
        Error::Delta(
            deltalake::DeltaTableError::VersionAlreadyExists(_)
                | deltalake::DeltaTableError::Transaction {
                    source: T::CommitConflict(_)
                        | T::VersionAlreadyExists(_)
                        | T::MaxCommitAttempts(_)
                }
        )
    )
}

/// A write that failed because the lake cannot be written (permissions, a full disk, a
/// read-only file system) becomes [`Error::Unavailable`]; nothing was committed.
fn unavailable(e: deltalake::DeltaTableError) -> Error {
    use std::io::ErrorKind as K;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                K::PermissionDenied | K::StorageFull | K::ReadOnlyFilesystem | K::QuotaExceeded
            )
        {
            return Error::Unavailable(format!("lagret går inte att skriva till just nu: {io}"));
        }
        if let Some(os) = s.downcast_ref::<deltalake::ObjectStoreError>()
            && matches!(
                os,
                deltalake::ObjectStoreError::PermissionDenied { .. }
                    | deltalake::ObjectStoreError::Unauthenticated { .. }
            )
        {
            return Error::Unavailable(format!("lagret går inte att skriva till just nu: {os}"));
        }
        source = s.source();
    }
    e.into()
}

/// A string column (any string type) as `Utf8`.
fn strings(a: &ArrayRef) -> StringArray {
    arrow::compute::cast(a, &arrow::datatypes::DataType::Utf8)
        .expect("strings cast to Utf8")
        .as_string::<i32>()
        .clone()
}

/// Files a partition may hold before `Lake::optimize` compacts the table on its own.
pub const SMALL_FILES_PER_PARTITION: usize = 8;

fn partition_count(table: &DeltaTable) -> Result<usize> {
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

/// `(k1 = a AND k2 = b AND last IN (…)) OR …`: exactly the keys an upload carries, grouped by
/// the key prefix so a county month is three disjuncts, not hundreds.
pub fn replace_predicate(kind: Kind, keys: &KeySet) -> Expr {
    let cols = kind.key_columns();
    let (last, prefix) = cols.split_last().expect("tables have keys");
    keys.groups
        .iter()
        .map(|(values, lasts)| {
            let list = lasts.iter().map(|v| lit(v.clone())).collect();
            prefix
                .iter()
                .zip(values)
                .map(|(c, v)| col(*c).eq(lit(v.clone())))
                .fold(col(*last).in_list(list, false), |acc, e| e.and(acc))
        })
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false))
}

fn with_upload_id(batch: &RecordBatch, kind: Kind, upload_id: &str) -> Result<RecordBatch> {
    let ids = StringArray::from(vec![upload_id; batch.num_rows()]);
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(ids));
    Ok(RecordBatch::try_new(kind.lake_schema(), columns)?)
}

/// Column `i` as plain strings (DataFusion may hand out `Utf8View`).
fn string_column(b: &RecordBatch, i: usize) -> StringArray {
    strings(b.column(i))
}

/// Reads `columns` of `table`'s rows matching `filter`, for the lake's own bookkeeping (the
/// engine builds the sessions users query).
async fn scan(
    table: &DeltaTable,
    filter: Option<Expr>,
    columns: &[&str],
) -> Result<Vec<RecordBatch>> {
    let ctx = SessionContext::new();
    table.update_datafusion_session(&ctx.state())?;
    let provider = table.table_provider().await?;
    let mut df = ctx.read_table(provider)?;
    if let Some(f) = filter {
        df = df.filter(f)?;
    }
    let df = df.select_columns(columns)?;
    Ok(df.collect().await?)
}

/// Row counts per table at the latest version (for summaries).
pub async fn row_counts(lake: &Lake) -> Result<HashMap<String, (u64, usize)>> {
    let mut out = HashMap::new();
    for t in TABLES {
        let table = lake.table(t).await?;
        let version = table.version().unwrap_or_default();
        let batches = scan(&table, None, &[schema_of(t).field(0).name().as_str()]).await?;
        out.insert(
            t.to_string(),
            (version, batches.iter().map(|b| b.num_rows()).sum()),
        );
    }
    Ok(out)
}
