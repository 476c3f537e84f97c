//! An upload's one data commit: replacing exactly its keys, retried on a conflict.

use super::*;

impl Lake {
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
    pub(super) async fn try_commit(
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
}

/// The commit-info key under which a data commit carries its upload's audit record.
pub(super) const RECEIPT_KEY: &str = "narvaro.receipt";

/// How often a commit that lost a race with another writer is tried again.
pub(super) const COMMIT_ATTEMPTS: usize = 10;

/// Whether a commit failed only because another writer committed first (worth a retry).
pub(super) fn is_conflict(e: &Error) -> bool {
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
pub(super) fn unavailable(e: deltalake::DeltaTableError) -> Error {
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

pub(super) fn with_upload_id(
    batch: &RecordBatch,
    kind: Kind,
    upload_id: &str,
) -> Result<RecordBatch> {
    let ids = StringArray::from(vec![upload_id; batch.num_rows()]);
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(ids));
    Ok(RecordBatch::try_new(kind.lake_schema(), columns)?)
}
