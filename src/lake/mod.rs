//! The lake: Delta Lake tables under one root, a local directory or a prefix in S3-compatible
//! object storage ([`Location`]). The only module that writes them.
//!
//! Tables: `attendance`, `actions`, `register`, `outcomes` (one per [`Kind`]), `uploads`,
//! the audit of every accepted upload, and `publications`, what the publisher computed
//! (`publications.rs`).
//!
//! An accepted upload is exactly one Delta commit to its table: an overwrite that replaces
//! precisely the keys the upload carries, e.g. the (school, period, window) keys of an
//! attendance file (the files holding them are removed, and rows of other keys in those files
//! written again). Readers see all of it or none of it, and the version before stays readable
//! (time travel). The data commit's own commit info carries the whole audit record, so once
//! it has landed the upload is stored: the audit row goes to `uploads` afterwards
//! ([`Lake::write_audits`], after the server has answered), and until then, or if that fails
//! (a full disk), the row stays pending in memory and is restored from the data table's log
//! on the next open, whatever came after it.
//!
//! Two writers racing on the same keys are serialised by Delta's optimistic concurrency; the
//! loser's commit conflicts and is retried from a fresh read of the table, never merged
//! silently.
//!
//! This file opens the lake and reads it (tables, time travel, the register); `commit.rs` the
//! upload's data commit, `audit.rs` the audit rows, `optimize.rs` compaction.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
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

use crate::contract::schema::{UPLOAD_ID, uploads_schema};
use crate::contract::{KeySet, Kind, Register, Validated};
use crate::{Error, Result};

mod audit;
mod commit;
mod local_store;
mod location;
mod optimize;
mod publications;

pub(crate) use commit::conform;
pub use commit::replace_predicate;
use commit::{RECEIPT_KEY, unavailable};
pub use location::Location;
pub use optimize::{Maintenance, SMALL_FILES_PER_PARTITION, Vacuumed};
pub use publications::{
    INDEX, PUBLICATIONS, PublicationRow, READS, RELEASE, SIMILAR, Stored, publications_schema,
};

pub const UPLOADS: &str = "uploads";

/// The properties of every commit to the lake. Delta removes expired log entries after a
/// commit by listing the table's whole log (on the national lake 3,700 entries, a third of an
/// upload's time), and writes a checkpoint every 100 commits (on the national lake's
/// `attendance` the server's memory peak); the lake's commits leave both to maintenance
/// ([`Lake::checkpoint_due`], [`checkpoint`]).
pub(crate) fn commit_properties() -> CommitProperties {
    CommitProperties::default()
        .with_cleanup_expired_logs(Some(false))
        .with_create_checkpoint(false)
}

/// Writes a checkpoint of `table` at its version and removes the log entries before it that
/// are older than the table's log retention (Delta's default: 30 days), as a commit would.
pub(crate) async fn checkpoint(table: &DeltaTable) -> Result<()> {
    deltalake::checkpoints::create_checkpoint(table, None).await?;
    deltalake::checkpoints::cleanup_metadata(table, None).await?;
    Ok(())
}

/// Every table in the lake, in the order they are created and listed.
pub const TABLES: [&str; 6] = [
    "register",
    "attendance",
    "actions",
    "outcomes",
    UPLOADS,
    PUBLICATIONS,
];

fn schema_of(table: &str) -> Arc<Schema> {
    match table {
        UPLOADS => uploads_schema(),
        PUBLICATIONS => publications_schema(),
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

/// The lake under one root.
pub struct Lake {
    root: Location,
    /// The object store rooted at the lake (made on first use).
    store: std::sync::OnceLock<Arc<dyn deltalake::ObjectStore>>,
    /// A local lake's store rooted at `/`, its tables' (see [`Lake::builder`]).
    local_store: std::sync::OnceLock<Arc<dyn deltalake::ObjectStore>>,
    /// The register as of a `register` table version, so a bulk ingest reads it once.
    register_cache: Mutex<Option<(u64, Arc<Register>)>>,
    /// Latest loaded state per table; brought up to date incrementally (only new log
    /// entries are read), so a stream of uploads does not replay each log from its checkpoint.
    /// One lock per table, so bringing `attendance` up to date after an upload does not hold
    /// up a page reading `publications`.
    tables: HashMap<&'static str, tokio::sync::Mutex<Option<DeltaTable>>>,
    /// The latest version each table was seen at, and when it was last brought up to date:
    /// readable without waiting for any I/O.
    seen: Mutex<HashMap<&'static str, (u64, std::time::Instant)>>,
    /// One writer per table in this process; writers in other processes are serialised by
    /// Delta's optimistic concurrency and retried (see `commit`).
    writers: HashMap<&'static str, tokio::sync::Mutex<()>>,
    /// Audit rows of committed uploads not yet written to `uploads` (e.g. the disk was full).
    pending: Mutex<Vec<Audit>>,
    /// The DataFusion runtime of the lake's own scans (see [`Lake::scan`]).
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    /// Parsed footers of the `publications` files read directly, by path.
    footers: Mutex<HashMap<String, parquet::arrow::arrow_reader::ArrowReaderMetadata>>,
}

impl Lake {
    /// Opens the lake at `root` (a directory, or an S3 prefix), creating the directory and any
    /// missing table.
    pub async fn open(root: impl Into<Location>) -> Result<Lake> {
        let root = match root.into() {
            Location::Local(root) => {
                std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
                Location::Local(root.canonicalize().map_err(|e| Error::io(&root, e))?)
            }
            remote => remote,
        };
        let lake = Lake::reader(root);
        for t in TABLES {
            lake.create_if_missing(t).await?;
        }
        lake.restore_audit().await?;
        Ok(lake)
    }

    /// A second handle on the lake at `root` (absolute) that creates and restores nothing:
    /// for reading earlier versions beside the handle that writes.
    pub fn reader(root: Location) -> Lake {
        Lake {
            root,
            store: std::sync::OnceLock::new(),
            local_store: std::sync::OnceLock::new(),
            register_cache: Mutex::new(None),
            tables: TABLES
                .iter()
                .map(|t| (*t, tokio::sync::Mutex::new(None)))
                .collect(),
            seen: Mutex::new(HashMap::new()),
            writers: TABLES
                .iter()
                .map(|t| (*t, tokio::sync::Mutex::new(())))
                .collect(),
            pending: Mutex::new(Vec::new()),
            runtime: Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default()),
            footers: Mutex::new(HashMap::new()),
        }
    }

    pub fn root(&self) -> &Location {
        &self.root
    }

    /// The object store rooted at the lake: paths in it are relative to the lake's root.
    pub fn store(&self) -> Result<Arc<dyn deltalake::ObjectStore>> {
        if let Some(s) = self.store.get() {
            return Ok(s.clone());
        }
        let store = self.root.store()?;
        Ok(self.store.get_or_init(|| store).clone())
    }

    /// A builder of `table` at the lake's location: in S3 with the lake's storage options, on
    /// disk on the store that lists a directory without reading every entry's metadata
    /// (`local_store.rs`).
    fn builder(&self, table: &str) -> Result<DeltaTableBuilder> {
        let url = self.root.table_url(table)?;
        let builder = DeltaTableBuilder::from_url(url.clone())?;
        Ok(match &self.root {
            Location::Local(_) => builder.with_storage_backend(self.root_store(), url),
            Location::S3(..) => {
                builder.with_storage_options(self.root.options().into_iter().collect())
            }
        })
    }

    /// The store rooted at `/` that a local lake's tables are opened with.
    fn root_store(&self) -> Arc<dyn deltalake::ObjectStore> {
        self.local_store
            .get_or_init(|| Arc::new(local_store::LocalStore::new()))
            .clone()
    }

    /// Whether `table` exists: its log has an entry.
    pub async fn exists(&self, table: &str) -> Result<bool> {
        if let Location::Local(root) = &self.root {
            return Ok(root.join(table).join("_delta_log").is_dir());
        }
        let log = deltalake::Path::from(format!("{table}/_delta_log/"));
        let mut list = self.store()?.list(Some(&log));
        match futures::StreamExt::next(&mut list).await {
            None => Ok(false),
            Some(Ok(_)) => Ok(true),
            Some(Err(e)) => Err(Error::Unavailable(format!("{}: {e}", self.root))),
        }
    }

    pub(super) async fn create_if_missing(&self, table: &str) -> Result<()> {
        if self.exists(table).await? {
            return Ok(());
        }
        if let Location::Local(root) = &self.root {
            let dir = root.join(table);
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        let schema: StructType = schema_of(table).as_ref().try_into_kernel()?;
        self.builder(table)?
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
        let Some((name, cache)) = self.tables.get_key_value(table) else {
            return Ok(self.builder(table)?.load().await?);
        };
        let mut cache = cache.lock().await;
        let t = match cache.as_mut() {
            Some(t) => {
                t.update_incremental(None).await?;
                t.clone()
            }
            None => cache.insert(self.builder(table)?.load().await?).clone(),
        };
        self.saw(name, &t);
        Ok(t)
    }

    /// The latest version of `table` this handle has seen, and how long ago it was brought up
    /// to date (read, committed to, or found unchanged); `None` before it was read. No I/O:
    /// what `/healthz` reports.
    pub fn seen_version(&self, table: &str) -> Option<(u64, std::time::Duration)> {
        self.seen
            .lock()
            .expect("lock")
            .get(table)
            .map(|(v, at)| (*v, at.elapsed()))
    }

    fn saw(&self, name: &'static str, t: &DeltaTable) {
        if let Some(v) = t.version() {
            let mut seen = self.seen.lock().expect("lock");
            let now = std::time::Instant::now();
            let at = seen.entry(name).or_insert((v, now));
            *at = (at.0.max(v), now);
        }
    }

    /// Keeps the state a write returned, so the next `table` call starts from it.
    pub(super) async fn remember(&self, table: &str, t: &DeltaTable) {
        let Some((name, cache)) = self.tables.get_key_value(table) else {
            return;
        };
        let mut cache = cache.lock().await;
        if cache.as_ref().is_none_or(|c| c.version() < t.version()) {
            *cache = Some(t.clone());
        }
        self.saw(name, t);
    }

    /// The table as it was at `version`.
    pub async fn table_at(&self, table: &str, version: u64) -> Result<DeltaTable> {
        let t = self
            .builder(table)?
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
        let mut t = self.builder(table)?.build()?;
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
        let batches = self
            .scan(
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
}

/// A string column (any string type) as `Utf8`.
fn strings(a: &ArrayRef) -> StringArray {
    arrow::compute::cast(a, &arrow::datatypes::DataType::Utf8)
        .expect("strings cast to Utf8")
        .as_string::<i32>()
        .clone()
}

/// Column `i` as plain strings (DataFusion may hand out `Utf8View`).
fn string_column(b: &RecordBatch, i: usize) -> StringArray {
    strings(b.column(i))
}

impl Lake {
    /// Reads `columns` of `table`'s rows matching `filter`, for the lake's own bookkeeping (the
    /// engine builds the sessions users query).
    async fn scan(
        &self,
        table: &DeltaTable,
        filter: Option<Expr>,
        columns: &[&str],
    ) -> Result<Vec<RecordBatch>> {
        self.scan_in(table, None, filter, columns).await
    }

    /// [`Lake::scan`] over the data files `files` only (paths as the table lists them), or all.
    async fn scan_in(
        &self,
        table: &DeltaTable,
        files: Option<Vec<String>>,
        filter: Option<Expr>,
        columns: &[&str],
    ) -> Result<Vec<RecordBatch>> {
        Ok(self
            .scan_frame(table, files, filter, columns)
            .await?
            .collect()
            .await?)
    }

    async fn scan_frame(
        &self,
        table: &DeltaTable,
        files: Option<Vec<String>>,
        filter: Option<Expr>,
        columns: &[&str],
    ) -> Result<datafusion::dataframe::DataFrame> {
        // One runtime for every scan of the lake: its cache keeps the data files' footers
        // (files never change under their names), so a report read does not parse them again.
        let ctx = SessionContext::new_with_config_rt(
            datafusion::prelude::SessionConfig::new(),
            self.runtime.clone(),
        );
        table.update_datafusion_session(&ctx.state())?;
        let mut provider = table.table_provider();
        if let Some(files) = files {
            provider = provider.with_file_paths(files);
        }
        let mut df = ctx.read_table(provider.await?)?;
        if let Some(f) = filter {
            df = df.filter(f)?;
        }
        Ok(df.select_columns(columns)?)
    }
}

/// Row counts per table at the latest version (for summaries).
pub async fn row_counts(lake: &Lake) -> Result<HashMap<String, (u64, usize)>> {
    let mut out = HashMap::new();
    for t in TABLES {
        let table = lake.table(t).await?;
        let version = table.version().unwrap_or_default();
        let batches = lake
            .scan(&table, None, &[schema_of(t).field(0).name().as_str()])
            .await?;
        out.insert(
            t.to_string(),
            (version, batches.iter().map(|b| b.num_rows()).sum()),
        );
    }
    Ok(out)
}
