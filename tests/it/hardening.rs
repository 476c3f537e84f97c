//! The upload server under attack, as a hostile school system or an outsider would try it on
//! loopback against a real `narvaro serve`: a register history that reaches into another
//! municipality, files that decode to gigabytes, a reply of a million problems, a lost audit
//! row, slow and stalled clients, and guessed tokens. Each of these once got through.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    ArrayRef, DictionaryArray, Int32Array, Int64Array, LargeStringArray, ListArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Int32Type, Schema};
use arrow::record_batch::RecordBatch;
use http_client::StatusCode;
use narvaro::auth::{Config, ServerConfig};
use narvaro::lake::Lake;
use serde_json::Value;

use crate::api::{PARQUET, client, get, post, serve, setup, uploads_by_school_and_period};
use crate::common::scalar;

/// Changes the server settings in the test's `narvaro.toml` (before `serve` starts).
fn configure(dir: &Path, f: impl FnOnce(&mut ServerConfig)) {
    let path = dir.join("narvaro.toml");
    let mut c = Config::load(&path).unwrap();
    f(&mut c.server);
    c.save(&path).unwrap();
}

/// A register file (UTF-8 CSV) of (school, municipality, from, to) rows.
fn register(rows: &[(&str, &str, &str, &str)]) -> Vec<u8> {
    let mut s = String::from(
        "school_unit_code,school_name,municipality_code,organiser_type,school_types,valid_from,valid_to\n",
    );
    for (code, m, from, to) in rows {
        s.push_str(&format!("{code},Skola {code},{m},KOMMUN,GR,{from},{to}\n"));
    }
    s.into_bytes()
}

/// One school-month of the `.slt` attendance, moved to another school and month.
fn attendance(school: &str, period: &str) -> Vec<u8> {
    let text = String::from_utf8(
        uploads_by_school_and_period()[&("18800101".into(), "2026-01".into())].clone(),
    )
    .unwrap();
    text.replace("18800101,2026-01", &format!("{school},{period}"))
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_register_history_cannot_reach_into_another_municipality() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = setup(dir.path(), 20).await;
    let server = serve(dir.path());
    let url = server.url.clone();
    let csv = "text/csv";
    let forbidden = |s: StatusCode, body: &Value, school: &str| {
        assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
        let e = body["error"].as_str().unwrap();
        assert!(e.contains(school) && e.contains("inget sparades"), "{e}");
    };

    // Each attempt in turn: (token, file, the school refused or None for 201).
    let steps: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        // Örebro's school system gives its own school a Kumla past, then a new school one.
        (
            "orebro",
            register(&[
                ("18800101", "1881", "2000-07-01", "2025-12-31"),
                ("18800101", "1880", "2026-01-01", ""),
            ]),
            Some("18800101"),
        ),
        (
            "orebro",
            register(&[
                ("18809901", "1881", "2024-08-01", "2025-12-31"),
                ("18809901", "1880", "2026-01-01", ""),
            ]),
            Some("18809901"),
        ),
        // Its own school with a history all in Örebro is still its to correct.
        (
            "orebro",
            register(&[
                ("18800101", "1880", "2000-07-01", "2025-12-31"),
                ("18800101", "1880", "2026-01-01", ""),
            ]),
            None,
        ),
        // A school that moved from Nora to Örebro at New Year (the administrator says so):
        // its Nora months are Nora's to send, its Örebro months Örebro's, its history neither's.
        (
            "admin",
            register(&[
                ("18800103", "1884", "2000-07-01", "2025-12-31"),
                ("18800103", "1880", "2026-01-01", ""),
            ]),
            None,
        ),
        (
            "orebro",
            attendance("18800103", "2025-12"),
            Some("18800103"),
        ),
        ("nora", attendance("18800103", "2025-12"), None),
        ("orebro", attendance("18800103", "2026-01"), None),
        ("nora", attendance("18800103", "2026-01"), Some("18800103")),
        (
            "orebro",
            register(&[("18800103", "1880", "2000-07-01", "")]),
            Some("18800103"),
        ),
    ];
    for (i, (token, file, refused)) in steps.into_iter().enumerate() {
        let (s, body, _) = post(&url, Some(&tokens[token]), csv, file).await;
        match refused {
            Some(school) => forbidden(s, &body, school),
            None => assert_eq!(s, StatusCode::CREATED, "step {i}: {body}"),
        }
        if i == 1 {
            let lake = Lake::open(dir.path().join("lake")).await.unwrap();
            let kumla = "SELECT count(*) FROM register WHERE municipality_code = '1881'";
            assert_eq!(scalar(&lake, None, kumla).await, 0, "nothing was stored");
        }
    }
    // A token that may only read is refused before its body is read.
    let (s, body, h) = post(
        &url,
        Some(&tokens["county"]),
        csv,
        attendance("18800101", "2026-01"),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(h["connection"], "close");
}

/// A Parquet file of `batches` (all of one schema), without statistics.
fn parquet(schema: Arc<Schema>, batches: impl IntoIterator<Item = RecordBatch>) -> Vec<u8> {
    let props = parquet::file::properties::WriterProperties::builder()
        .set_statistics_enabled(parquet::file::properties::EnabledStatistics::None)
        .build();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema, Some(props)).unwrap();
    for b in batches {
        w.write(&b).unwrap();
    }
    w.close().unwrap();
    out
}

/// The server process's peak resident memory, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upload_bombs_are_refused_before_they_are_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = setup(dir.path(), 20).await;
    let server = serve(dir.path());
    let url = server.url.clone();
    let admin = Some(tokens["admin"].as_str());
    let refused = |s: StatusCode, body: &Value, code: &str| {
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let codes: Vec<&str> = body["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["code"].as_str().unwrap())
            .collect();
        assert!(codes.contains(&code), "{code} not in {codes:?}");
    };

    // 80 M integers in a few hundred kB: a list column of 80 rows of a million zeros.
    let item = Arc::new(Field::new("item", DataType::Int64, true));
    let schema = Arc::new(Schema::new(vec![Field::new(
        "pct_total",
        DataType::List(item.clone()),
        true,
    )]));
    let million: ArrayRef = Arc::new(Int64Array::from(vec![0i64; 1_000_000]));
    let row = ListArray::new(item, OffsetBuffer::from_lengths([1_000_000]), million, None);
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(row)]).unwrap();
    let ints = parquet(schema, std::iter::repeat_n(batch, 80));
    assert!(ints.len() < 2 * 1024 * 1024, "{} bytes", ints.len());
    let (s, body, _) = post(&url, admin, PARQUET, ints).await;
    refused(s, &body, "file_too_large_decoded");

    // 1.2 M rows of one small column.
    let schema = Arc::new(Schema::new(vec![Field::new(
        "students",
        DataType::Int32,
        true,
    )]));
    let rows = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int32Array::from(vec![5; 1_200_000]))],
    )
    .unwrap();
    let (s, body, _) = post(&url, admin, PARQUET, parquet(schema, [rows])).await;
    refused(s, &body, "too_many_rows");

    // A dictionary string column hinted LargeUtf8: one 4,000-byte value in 150,000 rows
    // decodes to 600 MB (past 2 GiB with more rows, where it used to panic).
    let schema = Arc::new(Schema::new(vec![Field::new(
        "school_name",
        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::LargeUtf8)),
        true,
    )]));
    let dict = DictionaryArray::<Int32Type>::try_new(
        Int32Array::from(vec![0; 150_000]),
        Arc::new(LargeStringArray::from(vec!["x".repeat(4000)])),
    )
    .unwrap();
    let strings = parquet(
        schema.clone(),
        [RecordBatch::try_new(schema, vec![Arc::new(dict)]).unwrap()],
    );
    assert!(strings.len() < 1024 * 1024, "{} bytes", strings.len());
    let (s, body, _) = post(&url, admin, PARQUET, strings).await;
    refused(s, &body, "file_too_large_decoded");

    // A CSV header of a million columns.
    let mut wide = "a,".repeat(1_000_000).into_bytes();
    wide.extend(b"a\n1\n");
    let (s, body, _) = post(&url, admin, "text/csv", wide).await;
    refused(s, &body, "line_too_long");

    // 19 MiB of bad rows: the reply lists the first thousand problems and counts the rest.
    let mut bad = String::from(
        "school_unit_code,period,absence_investigation,report_to_organiser,report_to_social_services,sip,injunction\n",
    );
    while bad.len() < 19 * 1024 * 1024 {
        bad.push_str("1880010x,2026-13,-1,x,1,1,1\n");
    }
    let res = client()
        .post(format!("{url}/api/v1/uploads"))
        .bearer_auth(&tokens["admin"])
        .header("content-type", "text/csv")
        .body(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let reply = res.bytes().await.unwrap();
    assert!(
        reply.len() < 1024 * 1024,
        "a reply of {} bytes",
        reply.len()
    );
    let body: Value = serde_json::from_slice(&reply).unwrap();
    let problems = body["problems"].as_array().unwrap();
    assert_eq!(problems.len(), narvaro::contract::MAX_PROBLEMS + 1);
    let last = problems.last().unwrap();
    assert_eq!(last["code"], "more_problems");
    let more: usize = last["value"].as_str().unwrap().parse().unwrap();
    assert!(more > 1_000_000, "{last}");

    // The server never held the decoded files, and still answers.
    let peak = peak_rss(server.child.id());
    assert!(
        peak < 1024 * 1024 * 1024,
        "peak RSS {} MB",
        peak / 1024 / 1024
    );
    let (s, _) = get(&url, &tokens["admin"], "/healthz").await;
    assert_eq!(s, StatusCode::OK);
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config {
        cases: std::env::var("NARVARO_FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(200),
        failure_persistence: None,
        ..Default::default()
    })]

    /// Contract files with bytes changed, cut short or spliced: every one is read and
    /// validated without a panic, accepted or refused with named problems.
    #[test]
    fn mutated_files_never_panic(
        which in 0usize..3,
        edits in proptest::collection::vec((0usize..1 << 20, proptest::num::u8::ANY), 0..12),
        cut in proptest::option::of(0usize..1 << 20),
    ) {
        let mut bytes = seeds()[which].clone();
        for (at, b) in edits {
            let n = bytes.len();
            bytes[at % n] = b;
        }
        if let Some(c) = cut {
            bytes.truncate(c % (bytes.len() + 1));
        }
        let ctx = narvaro::contract::Context {
            register: Arc::new(narvaro::contract::Register::default()),
            today: chrono::NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
        };
        if let Err(r) = narvaro::contract::validate("fuzz", &bytes, &ctx) {
            proptest::prop_assert!(!r.problems.is_empty());
            proptest::prop_assert!(r.problems.len() <= narvaro::contract::MAX_PROBLEMS + 1);
        }
    }
}

/// The fuzz seeds: a contract Parquet file (list histograms), its CSV, and a register.
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        let csv = std::fs::read(crate::common::fixture("small/attendance.csv")).unwrap();
        let mut register = narvaro::contract::Register::default();
        let day = chrono::NaiveDate::from_ymd_opt(2000, 7, 1).unwrap();
        register.insert("18800101", "1880", day, None);
        let ctx = narvaro::contract::Context {
            register: Arc::new(register),
            today: chrono::NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
        };
        let v = narvaro::contract::validate("seed.csv", &csv, &ctx).unwrap();
        let pq = parquet(v.batch.schema(), [v.batch.clone()]);
        let reg = std::fs::read(crate::common::fixture("slt/register.csv")).unwrap();
        vec![pq, csv, reg]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_audit_row_lost_after_later_uploads_is_restored() {
    let dir = tempfile::tempdir().unwrap();
    let lake = crate::common::slt_lake(dir.path()).await;
    let uploads = uploads_by_school_and_period();
    let now = crate::common::now();
    let mut ids = Vec::new();
    for key in [
        ("18800101", "2026-01"),
        ("18800102", "2026-01"),
        ("18840101", "2026-01"),
    ] {
        let bytes = &uploads[&(key.0.to_string(), key.1.to_string())];
        let r = narvaro::ingest::ingest_bytes(&lake, "x.csv", bytes, now)
            .await
            .unwrap();
        ids.push(r.audit.upload_id);
    }
    drop(lake);
    // The middle upload's audit row goes missing, as when the disk was full at its audit
    // commit; later uploads were audited.
    let mut table = deltalake::open_table(
        url::Url::from_directory_path(dir.path().join("lake/uploads")).unwrap(),
    )
    .await
    .unwrap();
    table = table
        .delete()
        .with_predicate(format!("upload_id = '{}'", ids[1]))
        .await
        .unwrap()
        .0;
    drop(table);
    let lake = Lake::open(dir.path().join("lake")).await.unwrap();
    let audits = lake.audits().await.unwrap();
    let found: Vec<&str> = audits.iter().map(|a| a.upload_id.as_str()).collect();
    for id in &ids {
        assert!(found.contains(&id.as_str()), "{id} not restored: {found:?}");
    }
    let restored = audits.iter().find(|a| a.upload_id == ids[1]).unwrap();
    assert_eq!(restored.schools, ["18800102"]);
}

/// A commit that lands is a 201 even when its audit row cannot be written: the data commit
/// carries the receipt, the row is written after the answer (here it cannot be: pending, shown
/// by the API from memory) and restored when the lake is opened again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_landed_commit_is_a_201_even_when_the_audit_row_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = setup(dir.path(), 20).await;
    let uploads = dir.path().join("lake/uploads");
    let set_mode = |mode: u32| crate::api::set_dir_mode(&uploads, mode);
    let log_entries = |dir: &Path| std::fs::read_dir(dir.join("_delta_log")).unwrap().count();
    let audit_log = log_entries(&uploads);
    set_mode(0o555);
    let server = crate::api::serve_unprivileged(dir.path());
    let body = uploads_by_school_and_period()[&("18800101".into(), "2026-01".into())].clone();
    let (s, receipt, _) = post(&server.url, Some(&tokens["admin"]), "text/csv", body).await;
    assert_eq!(s, StatusCode::CREATED, "{receipt}");
    let id = receipt["upload_id"].as_str().unwrap().to_string();
    let (s, audit) = get(
        &server.url,
        &tokens["admin"],
        &format!("/api/v1/uploads/{id}"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{audit}");
    assert_eq!(
        log_entries(&uploads),
        audit_log,
        "no audit commit was possible"
    );
    drop(server);
    set_mode(0o755);
    let lake = Lake::open(dir.path().join("lake")).await.unwrap();
    let audits = lake.audits().await.unwrap();
    assert!(
        audits.iter().any(|a| a.upload_id == id),
        "not restored on open"
    );
}

/// Reads until the server closes the connection (or `within` passes); the bytes read.
fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(got),
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_stalled_and_surplus_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = setup(dir.path(), 20).await;
    configure(dir.path(), |s| {
        s.header_timeout_secs = 2;
        s.body_timeout_secs = 1;
        s.max_connections = 8;
    });
    let server = serve(dir.path());
    let addr = server.url.trim_start_matches("http://").to_string();
    let patience = Duration::from_secs(20);

    // Slowloris: half a request's headers, then nothing. The server hangs up.
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    assert!(
        read_until_closed(&mut slow, patience).is_some(),
        "slowloris kept"
    );

    // An idle keep-alive connection after one answered request is closed too.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let answer = read_until_closed(&mut idle, patience).expect("idle connection kept");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));

    // A chunked upload that stalls after its first chunk: 408, and the connection ends.
    let mut stalled = TcpStream::connect(&addr).unwrap();
    write!(
        stalled,
        "POST /api/v1/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nschool_unit_code\r\n",
        tokens["admin"]
    )
    .unwrap();
    let answer = read_until_closed(&mut stalled, patience).expect("stalled upload kept");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );

    // Beyond the cap, a connection is closed at once; the others are served meanwhile.
    std::thread::sleep(Duration::from_millis(300));
    let held: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut surplus = TcpStream::connect(&addr).unwrap();
    // (the held ones are accepted first and time out only after two seconds)
    let _ = surplus.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let answer = read_until_closed(&mut surplus, patience).expect("surplus connection kept");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    drop(held);
    // Once they time out, the server takes new connections again.
    std::thread::sleep(Duration::from_secs(2));
    let (s, _) = get(&server.url, &tokens["admin"], "/healthz").await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guessed_tokens_are_slowed_down_and_bad_names_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = setup(dir.path(), 20).await;
    let server = serve(dir.path());
    let url = server.url.clone();
    let body = attendance("18800101", "2026-01");
    let admin = &tokens["admin"];
    let id = admin.split('_').nth(1).unwrap();
    // A file name that would display reversed, or that is not UTF-8, is refused.
    for name in ["evil%E2%80%AEvsc.exe", "bad%FF.csv"] {
        let res = client()
            .post(format!("{url}/api/v1/uploads?filename={name}"))
            .bearer_auth(&tokens["orebro"])
            .header("content-type", "text/csv")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{name}");
    }
    // Known ids with wrong secrets and unknown ids alike: 401 until the limit, then 429.
    let mut statuses = Vec::new();
    for i in 0..narvaro::auth::FAILURES_ALLOWED + 2 {
        let guess = if i % 2 == 0 {
            format!("nvr_{id}_{i:064}")
        } else {
            format!("nvr_{i:016}_{i:064}")
        };
        let (s, _, h) = post(&url, Some(&guess), "text/csv", body.clone()).await;
        if s == StatusCode::UNAUTHORIZED {
            assert_eq!(
                h["connection"], "close",
                "answered before the body was read"
            );
        }
        if s == StatusCode::TOO_MANY_REQUESTS {
            let wait: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&wait), "{wait}");
        }
        statuses.push(s);
    }
    let allowed = narvaro::auth::FAILURES_ALLOWED as usize;
    assert!(
        statuses[..allowed]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert!(
        statuses[allowed..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // A token that passed before is still known, so the guesses do not lock its owner out.
    let (s, _, _) = post(&url, Some(&tokens["orebro"]), "text/csv", body.clone()).await;
    assert_eq!(s, StatusCode::CREATED);
}
