//! The `publications` table: what the publisher computed for a data version, read by every
//! page. One append commit per publication, so a publication is complete or invisible.
//!
//! Rows of one publication: its `index` row (always; it marks the publication and carries the
//! index of areas and terms), a `committee`/`county`/`school` row for each report whose content
//! changed since the previous publication (a row with no `body` withdraws a report), and a
//! `release` row for each protected release it used that no earlier publication stored: its
//! county in `area_code`, its period and window in `term` (`2026-03/term`), the key its
//! protection is kept under in `digest`, and as `body` the cells' statuses with the digest of
//! the release's content. A report not written again is carried over from the publication that
//! last wrote it.

use arrow::array::{BooleanArray, StringArray};
use arrow::datatypes::{DataType, Field, SchemaRef, TimeUnit};
use deltalake::Path as ObjectPath;
use futures::TryStreamExt;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, RowSelection, RowSelector,
};
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::WriterProperties;

use deltalake::kernel::transaction::CommitBuilder;
use deltalake::kernel::{Action, Add};
use deltalake::protocol::DeltaOperation;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};

use super::*;

pub const PUBLICATIONS: &str = "publications";

/// What a row holds: `index`, `release`, `reads`, `similar`, or a report's id.
pub const INDEX: &str = "index";
pub const RELEASE: &str = "release";
/// What the publication's reports read (the publisher's, to tell what changed next time).
pub const READS: &str = "reads";
/// A term's similar schools' comparison for every school (carried over like a report while it
/// does not change; [`crate::report::similar`]).
pub const SIMILAR: &str = "similar";

pub fn publications_schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        Field::new("publication", DataType::Int64, false),
        Field::new("data_version", DataType::Int64, false),
        text("table_versions"),
        Field::new(
            "published_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        text("report"),
        text("area_code"),
        text("term"),
        Field::new("own", DataType::Boolean, false),
        text("definition_id"),
        text("definition_hash"),
        text("rules_digest"),
        text("digest"),
        Field::new("body", DataType::Utf8, true),
    ]))
}

/// One row of `publications`.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicationRow {
    pub publication: u64,
    pub data_version: u64,
    /// Every data table's version the publication read, e.g. `attendance=264,register=3`.
    pub table_versions: String,
    pub published_at: DateTime<Utc>,
    pub report: String,
    pub area_code: String,
    pub term: String,
    /// A school's own (unsuppressed) view, for its principal only.
    pub own: bool,
    pub definition_id: String,
    pub definition_hash: String,
    pub rules_digest: String,
    /// The SHA-256 of the content (a report's, without its version and time), or of what a
    /// release protects.
    pub digest: String,
    /// The content as JSON; `None` in the catalogue, and for a withdrawn report.
    pub body: Option<String>,
    /// Where the catalogue found the row (`None` otherwise), so that its body can be read
    /// alone ([`Lake::publication_row_at`]).
    pub stored: Option<Stored>,
}

/// Where a row of `publications` is stored: a data file (as the table lists it) and the row's
/// place in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub file: Arc<str>,
    pub row: usize,
}

/// The catalogue's columns: every column but `body`.
const CATALOGUE: [&str; 12] = [
    "publication",
    "data_version",
    "table_versions",
    "published_at",
    "report",
    "area_code",
    "term",
    "own",
    "definition_id",
    "definition_hash",
    "rules_digest",
    "digest",
];

impl Lake {
    /// The version of every data table, as a publication records what it read.
    pub async fn table_versions(&self) -> Result<String> {
        let mut out = Vec::new();
        for t in ["register", "attendance", "actions", "outcomes"] {
            let v = self.table(t).await?.version().unwrap_or_default();
            out.push(format!("{t}={v}"));
        }
        Ok(out.join(","))
    }

    /// The table versions [`Lake::table_versions`] wrote (`register=3,attendance=264,…`).
    pub fn parse_table_versions(versions: &str) -> Result<Vec<(&str, u64)>> {
        versions
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|part| {
                part.split_once('=')
                    .and_then(|(n, v)| Some((n, v.parse().ok()?)))
                    .ok_or_else(|| Error::usage(format!("not a table version: '{part}'")))
            })
            .collect()
    }

    /// A writer for one publication's rows: they are written to data files as they come (so
    /// a publication is never held in memory whole) and made visible by one commit at the end
    /// ([`PublicationWriter::commit`]). Files of a publication that is never committed are
    /// invisible to every reader.
    ///
    /// `read` is the `publications` version the publication was numbered from: its commit
    /// must be the next one (not retried on top of another), so no two publications ever share
    /// a number, even where two publishers ran at once.
    pub async fn publication_writer(&self, read: u64) -> Result<PublicationWriter<'_>> {
        let table = self.table_at(PUBLICATIONS, read).await?;
        let writer =
            RecordBatchWriter::for_table(&table)?.with_writer_properties(writer_properties());
        Ok(PublicationWriter {
            lake: self,
            table,
            writer,
            rows: Vec::new(),
            adds: Vec::new(),
        })
    }

    /// Every row's catalogue columns (no bodies), at the table's latest version, with that
    /// version. The data files are read directly (a Delta table's files are Parquet and
    /// `publications` has no deletion vectors), each row with its place.
    pub async fn publication_catalogue(&self) -> Result<(u64, Vec<PublicationRow>)> {
        let table = self.table(PUBLICATIONS).await?;
        let version = table.version().unwrap_or_default();
        let files: Vec<String> = table
            .snapshot()?
            .log_data()
            .into_iter()
            .map(|f| f.path().to_string())
            .collect();
        let mut rows = Vec::new();
        for file in files {
            let footer = self.footer(&file).await?;
            let stored: Arc<str> = file.into();
            let read = self.read_file(&stored, footer, &CATALOGUE, None).await?;
            for (row, mut r) in read.into_iter().enumerate() {
                // The row's place in its file.
                r.stored = Some(Stored {
                    file: stored.clone(),
                    row,
                });
                rows.push(r);
            }
        }
        Ok((version, rows))
    }

    /// The row stored at `at`, body included; `None` when its file is gone (removed by a
    /// vacuum after compaction): then [`Lake::publication_rows`] finds it wherever it is now.
    pub async fn publication_row_at(&self, at: &Stored) -> Result<Option<PublicationRow>> {
        let mut columns = CATALOGUE.to_vec();
        columns.push("body");
        let read = async {
            let footer = self.footer(&at.file).await?;
            self.read_file(&at.file, footer, &columns, Some(at.row))
                .await
        };
        match read.await {
            Ok(mut rows) => Ok(rows.pop()),
            Err(Error::Unavailable(e)) if e.starts_with(GONE) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A data file's footer (`file` as the table lists it), parsed once per file (files never
    /// change under their names).
    async fn footer(&self, file: &str) -> Result<ArrowReaderMetadata> {
        if let Some(m) = self.footers.lock().expect("footers").get(file) {
            return Ok(m.clone());
        }
        let mut reader = self.object_reader(file).await?;
        let m = ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new())
            .await
            .map_err(|e| unreadable(file, e))?;
        let mut footers = self.footers.lock().expect("footers");
        if footers.len() >= FOOTERS {
            footers.clear();
        }
        footers.insert(file.to_string(), m.clone());
        Ok(m)
    }

    /// A reader of a `publications` data file in the lake's object store (a local directory
    /// or S3); a file that is not there is an `Unavailable` error starting with [`GONE`].
    async fn object_reader(&self, file: &str) -> Result<ObjectReader> {
        use deltalake::logstore::object_store::ObjectStoreExt;
        let store = self.store()?;
        let path = ObjectPath::from(format!("{PUBLICATIONS}/{file}"));
        let meta = store.head(&path).await.map_err(|e| match e {
            deltalake::ObjectStoreError::NotFound { .. } => {
                Error::Unavailable(format!("{GONE}: {file}"))
            }
            e => Error::Unavailable(format!("{PUBLICATIONS}/{file}: {e}")),
        })?;
        Ok(ObjectReader {
            store,
            path,
            size: meta.size,
        })
    }

    /// The rows of the `publications` data file `file` (with its parsed `footer`), in the
    /// file's order, with `columns` read: every row, or only row `only`.
    async fn read_file(
        &self,
        file: &str,
        footer: ArrowReaderMetadata,
        columns: &[&str],
        only: Option<usize>,
    ) -> Result<Vec<PublicationRow>> {
        let reader = self.object_reader(file).await?;
        let schema = footer.metadata().file_metadata().schema_descr_ptr();
        let mask = ProjectionMask::columns(&schema, columns.iter().copied());
        let mut builder =
            ParquetRecordBatchStreamBuilder::new_with_metadata(reader, footer.clone())
                .with_projection(mask);
        if let Some(row) = only {
            // The row group holding the row, and the row within it.
            let mut start = 0;
            let groups = footer.metadata().row_groups();
            let Some(group) = groups.iter().position(|g| {
                start += g.num_rows() as usize;
                row < start
            }) else {
                return Err(Error::Unavailable(format!(
                    "{PUBLICATIONS}/{file}: no row {row} in this file"
                )));
            };
            let first = start - groups[group].num_rows() as usize;
            builder = builder
                .with_row_groups(vec![group])
                .with_row_selection(RowSelection::from(vec![
                    RowSelector::skip(row - first),
                    RowSelector::select(1),
                ]));
        }
        // Each batch becomes rows as it arrives: a `publications` file has row groups of 8
        // rows, and each 8-row batch's strings sit in buffers of their own (kilobytes for a
        // few short strings), so a national file's batches held together took ~400 MB.
        let mut stream = builder.build().map_err(|e| unreadable(file, e))?;
        let mut rows = Vec::new();
        while let Some(batch) = stream.try_next().await.map_err(|e| unreadable(file, e))? {
            rows.extend(rows_of(std::slice::from_ref(&batch)));
        }
        Ok(rows)
    }

    /// The rows with `report` of publication `publication` (or of all), and, when given,
    /// `area_code`, `term` and `own`; bodies included.
    pub async fn publication_rows(
        &self,
        publication: Option<u64>,
        report: &str,
        key: Option<(&str, &str, bool)>,
    ) -> Result<Vec<PublicationRow>> {
        let table = self.table(PUBLICATIONS).await?;
        let mut filter = col("report").eq(lit(report));
        if let Some(p) = publication {
            filter = filter.and(col("publication").eq(lit(p as i64)));
        }
        if let Some((area, term, own)) = key {
            filter = filter
                .and(col("area_code").eq(lit(area)))
                .and(col("term").eq(lit(term)))
                .and(col("own").eq(lit(own)));
        }
        let mut columns = CATALOGUE.to_vec();
        columns.push("body");
        let batches = self.scan(&table, Some(filter), &columns).await?;
        Ok(rows_of(&batches))
    }
}

/// How many data files' footers a lake keeps parsed.
const FOOTERS: usize = 1024;

/// A Parquet file in an object store (the lake's, or a table's), read by ranges.
pub(super) struct ObjectReader {
    pub(super) store: Arc<dyn deltalake::ObjectStore>,
    pub(super) path: ObjectPath,
    pub(super) size: u64,
}

fn external(e: deltalake::ObjectStoreError) -> parquet::errors::ParquetError {
    parquet::errors::ParquetError::External(Box::new(e))
}

impl AsyncFileReader for ObjectReader {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<bytes::Bytes>> {
        Box::pin(async move {
            use deltalake::logstore::object_store::ObjectStoreExt;
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(external)
        })
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<Vec<bytes::Bytes>>> {
        Box::pin(async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(external)
        })
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> futures::future::BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        Box::pin(async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        })
    }
}

/// How a missing data file is told apart (see [`Lake::publication_row_at`]).
const GONE: &str = "no such file";

fn unreadable(file: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("{PUBLICATIONS}/{file}: {e}"))
}

/// One publication's rows on their way into the lake (see [`Lake::publication_writer`]).
pub struct PublicationWriter<'a> {
    lake: &'a Lake,
    table: DeltaTable,
    writer: RecordBatchWriter,
    rows: Vec<PublicationRow>,
    adds: Vec<Add>,
}

/// Rows buffered before they are encoded, and files written at most this many rows apart.
const ROWS_PER_BATCH: usize = 64;
const ROWS_PER_FILE: usize = 1024;

impl PublicationWriter<'_> {
    pub async fn push(&mut self, row: PublicationRow) -> Result<()> {
        self.rows.push(row);
        if self.rows.len() >= ROWS_PER_BATCH {
            self.encode().await?;
        }
        Ok(())
    }

    async fn encode(&mut self) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let batch = batch_of(&std::mem::take(&mut self.rows))?;
        self.writer
            .write(batch)
            .await
            .map_err(commit::unavailable)?;
        if self.writer.buffered_record_batch_count() * ROWS_PER_BATCH >= ROWS_PER_FILE {
            self.adds
                .extend(self.writer.flush().await.map_err(commit::unavailable)?);
        }
        Ok(())
    }

    /// Makes the publication current: one commit adding every file written for it.
    pub async fn commit(mut self) -> Result<u64> {
        self.encode().await?;
        self.adds
            .extend(self.writer.flush().await.map_err(commit::unavailable)?);
        let _writer = self.lake.writers[PUBLICATIONS].lock().await;
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: None,
            predicate: None,
        };
        let actions = self.adds.into_iter().map(Action::Add).collect();
        let done = CommitBuilder::from(super::commit_properties().with_max_retries(0))
            .with_actions(actions)
            .build(
                Some(self.table.snapshot()?),
                self.table.log_store(),
                operation,
            )
            .await
            .map_err(commit::unavailable)?;
        self.lake.table(PUBLICATIONS).await?;
        Ok(done.version as u64)
    }
}

fn batch_of(rows: &[PublicationRow]) -> Result<RecordBatch> {
    let text = |f: &dyn Fn(&PublicationRow) -> &str| {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f))) as ArrayRef
    };
    let int = |f: &dyn Fn(&PublicationRow) -> u64| {
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| f(r) as i64),
        )) as ArrayRef
    };
    Ok(RecordBatch::try_new(
        publications_schema(),
        vec![
            int(&|r| r.publication),
            int(&|r| r.data_version),
            text(&|r| &r.table_versions),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    rows.iter().map(|r| r.published_at.timestamp_micros()),
                )
                .with_timezone("UTC"),
            ),
            text(&|r| &r.report),
            text(&|r| &r.area_code),
            text(&|r| &r.term),
            Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.own)))),
            text(&|r| &r.definition_id),
            text(&|r| &r.definition_hash),
            text(&|r| &r.rules_digest),
            text(&|r| &r.digest),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| r.body.as_deref()),
            )),
        ],
    )?)
}

/// Small row groups, so that reading one report decodes only its own bytes.
pub(super) fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_max_row_group_row_count(Some(8))
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .build()
}

/// The rows of `batches` (the catalogue's columns first, then `body` when read).
fn rows_of(batches: &[RecordBatch]) -> Vec<PublicationRow> {
    let mut out = Vec::new();
    for b in batches {
        let bodies = b
            .schema()
            .index_of("body")
            .ok()
            .map(|i| string_column(b, i));
        let int = |i: usize| b.column(i).as_primitive::<arrow::datatypes::Int64Type>();
        let text = |i: usize| string_column(b, i);
        let (publication, data_version) = (int(0), int(1));
        let time = b
            .column(3)
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        let own = b.column(7).as_boolean();
        let texts: Vec<StringArray> = [2, 4, 5, 6, 8, 9, 10, 11].map(text).into();
        for r in 0..b.num_rows() {
            let t = |i: usize| texts[i].value(r).to_string();
            out.push(PublicationRow {
                publication: publication.value(r) as u64,
                data_version: data_version.value(r) as u64,
                table_versions: t(0),
                published_at: DateTime::from_timestamp_micros(time.value(r)).unwrap_or_default(),
                report: t(1),
                area_code: t(2),
                term: t(3),
                own: own.value(r),
                definition_id: t(4),
                definition_hash: t(5),
                rules_digest: t(6),
                digest: t(7),
                body: bodies
                    .as_ref()
                    .filter(|a| !a.is_null(r))
                    .map(|a| a.value(r).to_string()),
                stored: None,
            });
        }
    }
    out
}
