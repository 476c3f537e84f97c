//! The lake: corrections replace exactly their keys, old versions stay readable, Windows-1252
//! text survives, and the tables are plain Delta that a reader of the protocol alone can read.

use std::collections::HashSet;

use arrow::array::AsArray;
use narvaro::ingest::ingest_path;

use crate::common::{fixture, now, scalar, small_lake, sql};
use narvaro::lake::Lake;

#[tokio::test]
async fn a_correction_replaces_its_keys_and_the_old_version_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let lake = small_lake(dir.path()).await;
    let first = lake.table("attendance").await.unwrap().version().unwrap();
    let reported = "SELECT sum(reported_minutes) FROM attendance";
    let old_sum = scalar(&lake, None, reported).await;

    let receipt = ingest_path(&lake, &fixture("small/attendance_corrected.csv"), now())
        .await
        .unwrap();
    assert_eq!(receipt.audit.version, first + 1, "one commit");
    assert_eq!(
        (receipt.audit.keys, receipt.audit.keys_replaced),
        (2, 2),
        "school × month, term"
    );
    assert_eq!(receipt.audit.supersedes.len(), 1);

    assert_eq!(
        scalar(&lake, None, "SELECT count(*) FROM attendance").await,
        6,
        "no duplicates"
    );
    assert_eq!(
        scalar(&lake, None, reported).await,
        old_sum - 600,
        "the new rows"
    );
    assert_eq!(
        scalar(&lake, Some(first), reported).await,
        old_sum,
        "the old rows at the old version"
    );
    assert_eq!(
        scalar(&lake, Some(first), "SELECT count(*) FROM attendance").await,
        6
    );
    // At the old version the audit shows that version's upload but not the correction.
    let audit = "SELECT count(*) FROM uploads WHERE table_name = 'attendance'";
    assert_eq!(scalar(&lake, Some(first), audit).await, 1);
    assert_eq!(scalar(&lake, None, audit).await, 2);

    // The audit links the correction to the upload it superseded.
    let b = sql(
        &lake,
        None,
        &format!(
            "SELECT a.source_file FROM uploads a WHERE a.upload_id = '{}'",
            receipt.audit.supersedes[0]
        ),
    )
    .await;
    let name = arrow::compute::cast(b[0].column(0), &arrow::datatypes::DataType::Utf8).unwrap();
    assert_eq!(name.as_string::<i32>().value(0), "attendance.csv");
}

#[tokio::test]
async fn windows_1252_names_are_stored_as_unicode() {
    let dir = tempfile::tempdir().unwrap();
    let lake = small_lake(dir.path()).await;
    let n = scalar(
        &lake,
        None,
        "SELECT count(*) FROM register WHERE school_name IN ('Ängsskolan', 'Åsbackeskolan')",
    )
    .await;
    assert_eq!(n, 2);
}

#[tokio::test]
async fn an_unknown_version_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let lake = small_lake(dir.path()).await;
    let err = narvaro::engine::Engine::open(&lake, Some(narvaro::engine::AsOf::Version(999)))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("version 999"), "{err}");
}

/// Reads a Delta table with nothing but the protocol: replay `_delta_log/*.json` for the live
/// `add` paths and read those Parquet files with the `parquet` crate.
pub fn read_delta_by_protocol(table_dir: &std::path::Path) -> (usize, HashSet<String>) {
    let mut logs: Vec<_> = std::fs::read_dir(table_dir.join("_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    logs.sort();
    let mut live = HashSet::new();
    for log in logs {
        for line in std::fs::read_to_string(log).unwrap().lines() {
            let action: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(p) = action["add"]["path"].as_str() {
                live.insert(p.to_string());
            }
            if let Some(p) = action["remove"]["path"].as_str() {
                live.remove(p);
            }
        }
    }
    let mut rows = 0;
    let mut columns = HashSet::new();
    for p in &live {
        let path = table_dir.join(urlencoding_decode(p));
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        columns.extend(reader.schema().fields().iter().map(|f| f.name().clone()));
        rows += reader
            .build()
            .unwrap()
            .map(|b| b.unwrap().num_rows())
            .sum::<usize>();
    }
    (rows, columns)
}

fn urlencoding_decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn tables_are_standard_delta_readable_without_delta_rs() {
    let dir = tempfile::tempdir().unwrap();
    let lake = small_lake(dir.path()).await;
    ingest_path(&lake, &fixture("small/attendance_corrected.csv"), now())
        .await
        .unwrap();
    let (rows, columns) = read_delta_by_protocol(&lake.root().local().unwrap().join("attendance"));
    assert_eq!(rows, 6);
    for c in [
        "pct_total",
        "pct_invalid",
        "hours_total",
        "school_unit_code",
        "upload_id",
    ] {
        assert!(columns.contains(c), "{c} missing from {columns:?}");
    }
    let (register_rows, _) = read_delta_by_protocol(&lake.root().local().unwrap().join("register"));
    assert_eq!(register_rows, 3);
}

/// Regression: `as_of` once took the time of the newest commit instead of the version's own,
/// so at any version but the second-newest the other tables showed later uploads.
#[tokio::test]
async fn as_of_an_older_version_reads_the_other_tables_at_that_version() {
    let dir = tempfile::tempdir().unwrap();
    let lake = small_lake(dir.path()).await;
    let first = lake.table("attendance").await.unwrap().version().unwrap();
    for f in ["attendance_corrected.csv", "attendance.csv"] {
        ingest_path(&lake, &fixture(&format!("small/{f}")), now())
            .await
            .unwrap();
    }
    let audit = "SELECT count(*) FROM uploads WHERE table_name = 'attendance'";
    assert_eq!(scalar(&lake, Some(first), audit).await, 1);
    assert_eq!(scalar(&lake, Some(first + 1), audit).await, 2);
    assert_eq!(scalar(&lake, None, audit).await, 3);
}

#[tokio::test]
async fn as_of_a_time_reads_the_lake_as_it_was_then() {
    use narvaro::engine::AsOf;
    let dir = tempfile::tempdir().unwrap();
    let before_anything = chrono::Utc::now() - chrono::Duration::seconds(1);
    let lake = small_lake(dir.path()).await;
    let first = lake.table("attendance").await.unwrap().version().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let between = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    ingest_path(&lake, &fixture("small/attendance_corrected.csv"), now())
        .await
        .unwrap();
    assert_eq!(
        at(&lake, between).await,
        (first, 1),
        "between the uploads: the first"
    );
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    assert_eq!(
        at(&lake, later).await,
        (first + 1, 2),
        "in the future: the latest"
    );
    assert_eq!(
        at(&lake, before_anything).await.1,
        0,
        "before the first commit: nothing"
    );
    // The same through the command line's parser: a date is the end of that day.
    assert_eq!(
        "2026-03-15".parse::<AsOf>().unwrap(),
        AsOf::Time("2026-03-15T23:59:59.999Z".parse().unwrap())
    );
    assert_eq!("7".parse::<AsOf>().unwrap(), AsOf::Version(7));
    let err = "förra veckan".parse::<AsOf>().unwrap_err();
    assert!(err.contains("förra veckan"), "{err}");
}

/// (data version, audit rows for attendance) as of time `t`.
async fn at(lake: &narvaro::lake::Lake, t: chrono::DateTime<chrono::Utc>) -> (u64, i64) {
    let e = narvaro::engine::Engine::open(lake, Some(narvaro::engine::AsOf::Time(t)))
        .await
        .unwrap();
    let b = e
        .sql("SELECT count(*) FROM uploads WHERE table_name = 'attendance'")
        .await
        .unwrap();
    let n = arrow::compute::cast(b[0].column(0), &arrow::datatypes::DataType::Int64).unwrap();
    (
        e.snapshot.data_version,
        arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(&n).value(0),
    )
}

/// A crash between an upload's data commit and its audit commit: the audit commit is gone
/// (its log entry removed, as if never written). Opening the lake restores the row from the
/// data commit's own commit info, once, with the same content.
#[tokio::test]
async fn a_lost_audit_row_is_restored_when_the_lake_opens() {
    let dir = tempfile::tempdir().unwrap();
    let lake = small_lake(dir.path()).await;
    let receipt = ingest_path(&lake, &fixture("small/attendance_corrected.csv"), now())
        .await
        .unwrap();
    let before = lake.audits().await.unwrap();
    assert!(before.contains(&receipt.audit));
    let uploads = lake.table("uploads").await.unwrap().version().unwrap();
    drop(lake);
    let log = dir
        .path()
        .join(format!("lake/uploads/_delta_log/{uploads:020}.json"));
    std::fs::remove_file(&log).unwrap();

    let lake = narvaro::lake::Lake::open(dir.path().join("lake"))
        .await
        .unwrap();
    let after = lake.audits().await.unwrap();
    assert_eq!(after.len(), before.len(), "restored once");
    let restored = after
        .iter()
        .find(|a| a.upload_id == receipt.audit.upload_id)
        .expect("restored");
    assert_eq!(restored, &receipt.audit);
    // Opening again restores nothing more.
    drop(lake);
    let lake = narvaro::lake::Lake::open(dir.path().join("lake"))
        .await
        .unwrap();
    assert_eq!(lake.audits().await.unwrap().len(), before.len());
}

/// Compaction lays attendance out one file per municipality and month, changing no row; a
/// correction of one school-month in a compacted partition keeps every other row of its
/// municipality's file (they are written again beside the new rows) and replaces only its keys;
/// a second correction of the same keys removes the first one's file outright.
#[tokio::test]
async fn a_correction_inside_a_compacted_file_keeps_every_other_row() {
    let dir = tempfile::tempdir().unwrap();
    let lake = crate::common::slt_lake(dir.path()).await;
    let before = key_sums(&lake).await;
    let before_rows = scalar(&lake, None, "SELECT count(*) FROM attendance").await;
    lake.optimize(true).await.unwrap();
    assert_eq!(key_sums(&lake).await, before, "compaction changes no row");
    // One file per municipality and month, so a correction reads back only its own
    // municipality's month of the file it replaces keys in.
    let register = lake.register().await.unwrap();
    let mut seen = HashSet::new();
    let files: Vec<String> = lake
        .table("attendance")
        .await
        .unwrap()
        .get_file_uris()
        .unwrap()
        .collect();
    let mut rows = 0;
    for uri in &files {
        let path = uri.strip_prefix("file://").unwrap_or(uri);
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(path).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        let mut held = HashSet::new();
        for b in reader {
            let b = b.unwrap();
            rows += b.num_rows() as i64;
            let schools = b
                .column_by_name("school_unit_code")
                .unwrap()
                .as_string::<i32>();
            for s in schools.iter().flatten() {
                held.insert(register.municipality_of(s).unwrap().to_string());
            }
        }
        assert_eq!(held.len(), 1, "{uri} holds {held:?}");
        let period = uri
            .split("period=")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        let municipality = held.into_iter().next().unwrap();
        assert!(seen.insert((period.to_string(), municipality)), "{uri}");
    }
    assert_eq!(rows, before_rows);
    assert!(
        seen.iter().map(|(_, m)| m).collect::<HashSet<_>>().len() > 1,
        "the lake holds several municipalities: {seen:?}"
    );
    let uploads = crate::api::uploads_by_school_and_period();
    let (key, body) = uploads.iter().next().unwrap();
    // The same school-month with an hour of attendance become valid absence on every row.
    let text = String::from_utf8(body.clone()).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let column = |name: &str| header.split(',').position(|c| c == name).unwrap();
    let (present, absent) = (
        column("attendance_minutes"),
        column("valid_absence_minutes"),
    );
    let mut corrected = format!("{header}\n");
    for l in lines {
        let mut f: Vec<i64> = Vec::new();
        let mut cells: Vec<String> = l.split(',').map(String::from).collect();
        for at in [present, absent] {
            f.push(cells[at].parse().unwrap());
        }
        cells[present] = (f[0] - 60).to_string();
        cells[absent] = (f[1] + 60).to_string();
        corrected.push_str(&(cells.join(",") + "\n"));
    }
    for round in 0..2 {
        let r = narvaro::ingest::ingest_bytes(&lake, "fix.csv", corrected.as_bytes(), now())
            .await
            .unwrap();
        assert!(r.audit.keys_replaced > 0, "round {round}: {r:?}");
        let after = key_sums(&lake).await;
        let keys = |v: &[(String, i64)]| v.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(
            keys(&after),
            keys(&before),
            "round {round}: no key lost or added"
        );
        for ((k, old), (_, new)) in before.iter().zip(&after) {
            if k.starts_with(&format!("{}/{}/", key.0, key.1)) {
                assert!(
                    new > old,
                    "round {round}: {k} not corrected: {old} -> {new}"
                );
            } else {
                assert_eq!(new, old, "round {round}: {k} changed");
            }
        }
    }
    assert_eq!(
        scalar(&lake, None, "SELECT count(*) FROM attendance").await,
        before_rows,
        "as many rows as before"
    );
}

/// `school/period/window` → its valid absence in minutes, for every attendance key.
async fn key_sums(lake: &Lake) -> Vec<(String, i64)> {
    let b = sql(
        lake,
        None,
        "SELECT school_unit_code || '/' || period || '/' || \"window\", \
         sum(valid_absence_minutes) FROM attendance GROUP BY 1 ORDER BY 1",
    )
    .await;
    let mut out = Vec::new();
    for b in &b {
        let k = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
        let v = arrow::compute::cast(b.column(1), &arrow::datatypes::DataType::Int64).unwrap();
        let v = v.as_primitive::<arrow::datatypes::Int64Type>();
        for i in 0..b.num_rows() {
            out.push((k.as_string::<i32>().value(i).to_string(), v.value(i)));
        }
    }
    out
}

/// Commits never write a checkpoint (in the server one would land on whichever upload crossed
/// the interval); `Lake::checkpoint_due`, which the publisher and `ingest` call, writes one in
/// every table that has grown by the interval since its last, and the lake opens from it.
#[tokio::test]
async fn checkpoints_are_written_by_maintenance_not_by_commits() {
    let dir = tempfile::tempdir().unwrap();
    let lake = small_lake(dir.path()).await;
    let log = dir.path().join("lake/attendance/_delta_log");
    let checkpoints = || {
        let mut v: Vec<String> = std::fs::read_dir(&log)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".checkpoint.parquet"))
            .collect();
        v.sort();
        v
    };
    let before = checkpoints();
    let correction = fixture("small/attendance_corrected.csv");
    let mut version = 0;
    while version < 105 {
        version = ingest_path(&lake, &correction, now())
            .await
            .unwrap()
            .audit
            .version;
    }
    assert_eq!(
        checkpoints(),
        before,
        "an upload's commit wrote a checkpoint"
    );
    let rows = scalar(&lake, None, "SELECT count(*) FROM attendance").await;

    let done = lake.checkpoint_due().await.unwrap();
    let tables: Vec<&str> = done.iter().map(|(t, _)| *t).collect();
    assert!(tables.contains(&"attendance"), "{done:?}");
    assert!(tables.contains(&"uploads"), "{done:?}");
    assert!(!tables.contains(&"register"), "{done:?}");
    let expected = format!("{version:020}.checkpoint.parquet");
    assert!(checkpoints().contains(&expected), "{:?}", checkpoints());
    let hint = std::fs::read_to_string(log.join("_last_checkpoint")).unwrap();
    assert!(hint.contains(&format!("\"version\":{version}")), "{hint}");
    assert!(
        lake.checkpoint_due().await.unwrap().is_empty(),
        "nothing due twice"
    );

    // A fresh handle reads the table from the checkpoint, with the same rows.
    let reopened = Lake::open(dir.path().join("lake")).await.unwrap();
    let table = reopened.table("attendance").await.unwrap();
    assert_eq!(table.version(), Some(version));
    assert_eq!(
        scalar(&reopened, None, "SELECT count(*) FROM attendance").await,
        rows
    );
}
