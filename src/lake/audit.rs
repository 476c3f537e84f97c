//! The audit: the `uploads` table, its pending rows, and rows restored from the data commits.

use super::*;

impl Lake {
    /// Writes the pending audit rows (of uploads committed in this process, or restored) to
    /// `uploads` in one append. Uploads call it after answering; a row that cannot be written
    /// now (a full disk) stays pending, shown by [`Lake::audits`], until a later call or the
    /// next `open` restores it from its data commit.
    pub async fn write_audits(&self) -> Result<()> {
        let _writer = self.writers[UPLOADS].lock().await;
        let records = self.pending.lock().expect("lock").clone();
        if records.is_empty() {
            return Ok(());
        }
        self.append_audits(&records).await?;
        self.pending
            .lock()
            .expect("lock")
            .retain(|a| !records.iter().any(|w| w.upload_id == a.upload_id));
        Ok(())
    }

    /// Appends `records` to `uploads` (the caller holds its writer lock).
    async fn append_audits(&self, records: &[Audit]) -> Result<()> {
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
            .with_commit_properties(super::commit_properties())
            // Lakes made before the upload API lack the newest audit columns.
            .with_schema_mode(deltalake::operations::write::SchemaMode::Merge)
            .await
            .map_err(unavailable)?;
        self.remember(UPLOADS, &table).await;
        Ok(())
    }

    /// Every audit record, oldest first, one per upload.
    pub async fn audits(&self) -> Result<Vec<Audit>> {
        // The pending rows before the table: a row written in between is then in the table
        // (read after it was written) or in this copy, never in neither.
        let pending = self.pending.lock().expect("lock").clone();
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
        for a in pending {
            if seen.insert(a.upload_id.clone()) {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Restores audit rows that a crash or a full disk between an upload's data commit and
    /// its audit commit left out: every data commit carries its record in its commit info.
    /// Runs on open, so a restart needs no repair step. Every data version without an audit
    /// row is read, whatever came after it (commits that are not uploads, such as compaction,
    /// are read and skipped).
    pub(super) async fn restore_audit(&self) -> Result<()> {
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
        self.pending.lock().expect("lock").extend(missing);
        self.write_audits().await
    }
}
