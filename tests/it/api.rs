//! The upload API against a real `narvaro serve` on a random loopback port (reqwest): every
//! status, corrections and their audit, concurrent uploads from two server processes, a kill
//! at different moments of an upload, an unwritable lake, and injection attempts.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use arrow::array::AsArray;
use http_client::StatusCode;
use narvaro::auth::{Config, Scope};
use narvaro::lake::Lake;
use serde_json::Value;

use crate::common::{Server, fixture, now};

pub(crate) const PARQUET: &str = "application/vnd.apache.parquet";

/// A lake with the `.slt` fixtures' register, a configuration with one token per role, and
/// the tokens by role.
pub(crate) async fn setup(dir: &Path, max_upload_mb: u64) -> HashMap<&'static str, String> {
    let lake = Lake::open(dir.join("lake")).await.unwrap();
    narvaro::ingest::ingest_path(&lake, &fixture("slt/register.csv"), now())
        .await
        .unwrap();
    let mut config = Config::default();
    config.server.max_upload_mb = max_upload_mb;
    // Tests run beside each other: a niced publisher would wait for them all.
    config.server.publisher_nice = 0;
    let mut tokens = HashMap::new();
    for (role, scope) in [
        ("admin", "admin"),
        ("school", "upload:school:18800101"),
        ("orebro", "upload:municipality:1880"),
        ("nora", "upload:municipality:1884"),
        ("county", "read:county:18"),
        ("jamtland", "read:county:23"),
    ] {
        let scope: Scope = scope.parse().unwrap();
        tokens.insert(role, config.create_token(role, &[scope], now()).unwrap());
    }
    config.save(&dir.join("narvaro.toml")).unwrap();
    tokens
}

/// `narvaro serve` on the test's lake and configuration, on a free loopback port.
fn serve_args(dir: &Path) -> Vec<String> {
    let path = |p: &str| dir.join(p).to_str().unwrap().to_string();
    [
        "serve",
        "--lake",
        &path("lake"),
        "--config",
        &path("narvaro.toml"),
    ]
    .into_iter()
    .map(String::from)
    .chain(["--addr".into(), "127.0.0.1:0".into()])
    .collect()
}

pub(crate) fn serve(dir: &Path) -> Server {
    let args = serve_args(dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&args, Duration::from_secs(120))
}

/// `serve` as a process that meets file permissions like anyone: root ignores permission
/// bits, so as root its capabilities are dropped (setpriv, from util-linux).
pub(crate) fn serve_unprivileged(dir: &Path) -> Server {
    use std::os::unix::fs::MetadataExt;
    let probe = dir.join("probe");
    std::fs::write(&probe, b"").unwrap();
    let root = std::fs::metadata(&probe).unwrap().uid() == 0;
    let args = serve_args(dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if root {
        let mut wrapped = vec!["--bounding-set=-all", "--", env!("CARGO_BIN_EXE_narvaro")];
        wrapped.extend(&args);
        Server::start_with("setpriv", &wrapped, Duration::from_secs(120))
    } else {
        Server::start(&args, Duration::from_secs(120))
    }
}

/// Sets the mode of a directory tree's directories (e.g. read-only: 0o555).
pub(crate) fn set_dir_mode(root: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            }
        }
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

pub(crate) fn client() -> http_client::Client {
    http_client::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap()
}

pub(crate) async fn post(
    url: &str,
    token: Option<&str>,
    media: &str,
    body: Vec<u8>,
) -> (StatusCode, Value, http_client::header::HeaderMap) {
    let mut req = client()
        .post(format!("{url}/api/v1/uploads"))
        .header("content-type", media)
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let text = res.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: {text}"));
    (status, json, headers)
}

pub(crate) async fn get(url: &str, token: &str, path: &str) -> (StatusCode, Value) {
    let res = client()
        .get(format!("{url}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub(crate) fn read(rel: &str) -> Vec<u8> {
    std::fs::read(fixture(rel)).unwrap()
}

/// The `slt` attendance file split into one CSV per (school, period): separate uploads.
pub(crate) fn uploads_by_school_and_period() -> BTreeMap<(String, String), Vec<u8>> {
    let text = String::from_utf8(read("slt/attendance.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let mut out: BTreeMap<(String, String), String> = BTreeMap::new();
    for l in lines {
        let mut f = l.split(',');
        let key = (f.next().unwrap().to_string(), f.next().unwrap().to_string());
        out.entry(key)
            .or_insert_with(|| format!("{header}\n"))
            .push_str(&format!("{l}\n"));
    }
    out.into_iter().map(|(k, v)| (k, v.into_bytes())).collect()
}

/// (school, period, window, upload_id) of every attendance row, read in-process.
pub(crate) async fn attendance_rows(lake: &Lake) -> Vec<(String, String, String, String)> {
    let e = narvaro::engine::Engine::open(lake, None).await.unwrap();
    let b = e
        .sql(
            "SELECT school_unit_code, period, \"window\", upload_id FROM attendance \
             ORDER BY 1, 2, 3, 4",
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    for b in &b {
        let s = |i| arrow::compute::cast(b.column(i), &arrow::datatypes::DataType::Utf8).unwrap();
        let cols = [s(0), s(1), s(2), s(3)];
        let c: Vec<_> = cols.iter().map(|c| c.as_string::<i32>()).collect();
        for i in 0..b.num_rows() {
            out.push((
                c[0].value(i).to_string(),
                c[1].value(i).to_string(),
                c[2].value(i).to_string(),
                c[3].value(i).to_string(),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploads_answer_every_status_and_keep_an_audit() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = setup(dir.path(), 1).await;
    let server = serve(dir.path());
    let url = server.url.clone();
    let csv = "text/csv; charset=utf-8";
    let march = read("small/attendance.csv");

    // 401: no token, an unknown token; the answer says how to authenticate.
    let (s, body, h) = post(&url, None, csv, march.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(h["www-authenticate"], "Bearer");
    assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
    let admin = &tokens["admin"];
    let last = if admin.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &admin[..admin.len() - 1]);
    let (s, _, _) = post(&url, Some(&forged), csv, march.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // 415: a type that is neither Parquet, CSV nor a form.
    let (s, body, _) = post(
        &url,
        Some(&tokens["admin"]),
        "application/json",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        body["error"].as_str().unwrap().contains("text/csv"),
        "{body}"
    );

    // 413: over the configured limit (1 MB here), refused before it is read.
    let big = vec![b'x'; 1024 * 1024 + 1];
    let (s, body, _) = post(&url, Some(&tokens["admin"]), csv, big).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body["error"].as_str().unwrap().contains("1 MB"), "{body}");

    // 422: every problem, with the CLI's codes and Swedish messages, and the file's name.
    let res = client()
        .post(format!("{url}/api/v1/uploads?filename=many_problems.csv"))
        .bearer_auth(&tokens["admin"])
        .header("content-type", "text/csv")
        .body(read("broken/many_problems.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["file"], "many_problems.csv");
    let problems = body["problems"].as_array().unwrap();
    assert!(problems.len() >= 3, "{body}");
    let lake = Lake::open(dir.path().join("lake")).await.unwrap();
    let cli = narvaro::ingest::validate(
        &lake,
        "many_problems.csv",
        read("broken/many_problems.csv").into(),
        chrono::Utc::now(),
    )
    .await
    .unwrap_err();
    let narvaro::Error::Rejected(r) = cli else {
        panic!("{cli}")
    };
    let codes = |p: &[Value]| {
        p.iter()
            .map(|p| p["code"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        codes(problems),
        r.problems
            .iter()
            .map(|p| p.code.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(problems[0]["message"], r.problems[0].message);

    // 403: a school's token may not send another school's rows; the whole file is refused.
    let two_schools = uploads_by_school_and_period();
    let mut mixed = two_schools[&("18800101".into(), "2026-01".into())].clone();
    let other =
        String::from_utf8(two_schools[&("18800102".into(), "2026-01".into())].clone()).unwrap();
    mixed.extend(
        other
            .lines()
            .skip(1)
            .flat_map(|l| format!("{l}\n").into_bytes()),
    );
    let version = |v: &Value| v["data_version"].as_u64().unwrap();
    let before = version(&get(&url, &tokens["admin"], "/healthz").await.1);
    let (s, body, _) = post(&url, Some(&tokens["school"]), csv, mixed.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("18800102"),
        "{body}"
    );
    // Nora's school system may not send Örebro's schools either.
    let (s, _, _) = post(&url, Some(&tokens["nora"]), csv, mixed.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        version(&get(&url, &tokens["admin"], "/healthz").await.1),
        before
    );

    // 201: Örebro's school system sends both schools; the receipt says what happened.
    let (s, first, h) = post(&url, Some(&tokens["orebro"]), csv, mixed.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let first_id = first["upload_id"].as_str().unwrap().to_string();
    assert_eq!(h["location"], format!("/api/v1/uploads/{first_id}"));
    assert_eq!(first["keys_replaced"], 0);
    assert_eq!(first["version"].as_u64().unwrap(), before + 1);
    assert_eq!(first["uploader"], "orebro");
    assert_eq!(
        first["schools"],
        serde_json::json!(["18800101", "18800102"])
    );
    assert_eq!(first["periods"], serde_json::json!(["2026-01"]));
    assert!(first["warnings"].is_array());

    // A correction of the same keys, as Parquet, replaces them in one commit and links back.
    let parquet = to_parquet(&lake, &mixed).await;
    let (s, second, _) = post(&url, Some(&tokens["admin"]), PARQUET, parquet).await;
    assert_eq!(s, StatusCode::CREATED, "{second}");
    assert_eq!(second["keys_replaced"], second["keys"]);
    assert_eq!(second["supersedes"], serde_json::json!([first_id]));
    assert_eq!(second["source_file"], "upload.parquet");
    let (s, audit) = get(
        &url,
        &tokens["admin"],
        &format!("/api/v1/uploads/{first_id}"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        audit["superseded_by"],
        serde_json::json!([second["upload_id"]])
    );
    assert_eq!(audit["sha256"].as_str().unwrap().len(), 64);
    // The older version still holds the first upload's rows.
    let v1 = first["version"].as_u64().unwrap();
    let old = crate::common::scalar(
        &lake,
        Some(v1),
        &format!("SELECT count(*) FROM attendance WHERE upload_id = '{first_id}'"),
    )
    .await;
    assert!(old > 0);
    let now_rows = crate::common::scalar(
        &lake,
        None,
        &format!("SELECT count(*) FROM attendance WHERE upload_id = '{first_id}'"),
    )
    .await;
    assert_eq!(now_rows, 0, "replaced, not duplicated");

    // A Windows-1252, semicolon-separated register from Swedish Excel, as a multipart form.
    let form = http_client::multipart::Form::new().part(
        "file",
        http_client::multipart::Part::bytes(read("small/register.csv"))
            .file_name("Skolenheter Örebro.csv"),
    );
    let res = client()
        .post(format!("{url}/api/v1/uploads"))
        .bearer_auth(&tokens["admin"])
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let reg: Value = res.json().await.unwrap();
    assert_eq!(reg["table"], "register");
    assert_eq!(reg["source_file"], "Skolenheter Örebro.csv");
    // Nora's school system may not move an Örebro school into Nora through the register.
    let register = String::from_utf8(read("slt/register.csv")).unwrap();
    let header = register.lines().next().unwrap();
    let row = register
        .lines()
        .find(|l| l.starts_with("18800102"))
        .unwrap();
    let moved = format!("{header}\n{}\n", row.replacen(",1880,", ",1884,", 1));
    let (s, body, _) = post(&url, Some(&tokens["nora"]), csv, moved.into_bytes()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");

    // The audit: filters, and each token sees only what its scopes cover.
    let list = |v: &Value| -> Vec<String> {
        v["uploads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["upload_id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, all) = get(&url, &tokens["admin"], "/api/v1/uploads").await;
    assert_eq!(
        list(&all)[0],
        reg["upload_id"].as_str().unwrap(),
        "newest first"
    );
    assert!(list(&all).len() >= 4, "{all}");
    let (_, jan) = get(
        &url,
        &tokens["admin"],
        "/api/v1/uploads?school=18800102&period=2026-01",
    )
    .await;
    assert_eq!(
        list(&jan),
        [second["upload_id"].as_str().unwrap(), &first_id]
    );
    let (_, county) = get(&url, &tokens["county"], "/api/v1/uploads?period=2026-01").await;
    assert_eq!(list(&county).len(), 2);
    let (_, jamtland) = get(&url, &tokens["jamtland"], "/api/v1/uploads?period=2026-01").await;
    assert!(list(&jamtland).is_empty(), "{jamtland}");
    let (s, _) = get(
        &url,
        &tokens["jamtland"],
        &format!("/api/v1/uploads/{first_id}"),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "hidden, not forbidden: no hint it exists"
    );
    let (s, _) = get(&url, &tokens["admin"], "/api/v1/uploads?limit=0").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let res = client()
        .get(format!("{url}/api/v1/uploads"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Revoking a token takes effect in the running server.
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_narvaro"))
        .args(["token", "revoke", "orebro", "--config"])
        .arg(dir.path().join("narvaro.toml"))
        .status()
        .unwrap();
    assert!(status.success());
    let (s, _, _) = post(&url, Some(&tokens["orebro"]), csv, mixed).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // The OpenAPI document describes the API.
    let doc: Value = client()
        .get(format!("{url}/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let upload = &doc["paths"]["/api/v1/uploads"]["post"];
    for code in ["201", "401", "403", "413", "415", "422", "503"] {
        assert!(upload["responses"][code].is_object(), "{code} undocumented");
    }
    assert!(doc["paths"]["/api/v1/uploads/{id}"]["get"].is_object());
    assert!(doc["components"]["schemas"]["Receipt"].is_object());
    drop(server);
}

/// The same rows as Parquet, as a school system would send them.
async fn to_parquet(lake: &Lake, csv: &[u8]) -> Vec<u8> {
    let (v, _) = narvaro::ingest::validate(
        lake,
        "x.csv",
        bytes::Bytes::copy_from_slice(csv),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, v.batch.schema(), None).unwrap();
    w.write(&v.batch).unwrap();
    w.close().unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn path_and_header_injection_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = setup(dir.path(), 20).await;
    let server = serve(dir.path());
    let url = server.url.clone();
    let body = uploads_by_school_and_period()[&("18800101".into(), "2026-01".into())].clone();
    let admin = &tokens["admin"];
    for name in [
        "../../etc/passwd",
        "..",
        "a/b.csv",
        "C:\\x.csv",
        ".hidden.csv",
    ] {
        let res = client()
            .post(format!("{url}/api/v1/uploads"))
            .query(&[("filename", name)])
            .bearer_auth(admin)
            .header("content-type", "text/csv")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{name}");
        let v: Value = res.json().await.unwrap();
        assert!(v["error"].as_str().unwrap().contains("filnamnet"), "{v}");
    }
    // A form part whose name smuggles a header line.
    let boundary = "XyZ";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\r\nX-Evil: 1\"\r\nContent-Type: text/csv\r\n\r\n"
    )
    .into_bytes();
    form.extend(&body);
    form.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    let res = client()
        .post(format!("{url}/api/v1/uploads"))
        .bearer_auth(admin)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("x-evil").is_none());
    // Two files in one form are refused, not half-taken.
    let two = http_client::multipart::Form::new()
        .part(
            "a",
            http_client::multipart::Part::bytes(body.clone()).file_name("a.csv"),
        )
        .part(
            "b",
            http_client::multipart::Part::bytes(body.clone()).file_name("b.csv"),
        );
    let res = client()
        .post(format!("{url}/api/v1/uploads"))
        .bearer_auth(admin)
        .multipart(two)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Ids that are not UUIDs, and paths that climb, go nowhere.
    for path in [
        "/api/v1/uploads/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/uploads/1%20OR%201=1",
    ] {
        let (s, _) = get(&url, admin, path).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}");
    }
    let (s, _) = get(&url, admin, "/api/v1/../../etc/passwd").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A token with a header line in it never reaches the server as one.
    let req = client()
        .get(format!("{url}/api/v1/uploads"))
        .header("authorization", format!("Bearer {admin}\r\nX-Evil: 1"))
        .build();
    assert!(
        req.is_err(),
        "the client refuses to send a header with a line break"
    );
    // Nothing above stored anything.
    let (_, all) = get(&url, admin, "/api/v1/uploads").await;
    assert_eq!(
        all["uploads"].as_array().unwrap().len(),
        1,
        "only the register"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_uploads_to_two_servers_land_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = setup(dir.path(), 20).await;
    // Two processes on one lake: their commits race in Delta, not only in one process.
    let a = serve(dir.path());
    let b = serve(dir.path());
    let groups = uploads_by_school_and_period();
    let mut jobs: Vec<((String, String), Vec<u8>)> = groups
        .iter()
        .take(12)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // Four keys twice: the same school at once.
    jobs.extend(groups.iter().take(4).map(|(k, v)| (k.clone(), v.clone())));
    assert_eq!(jobs.len(), 16);
    let mut tasks = Vec::new();
    for (i, (key, body)) in jobs.iter().cloned().enumerate() {
        let url = if i % 2 == 0 {
            a.url.clone()
        } else {
            b.url.clone()
        };
        let token = tokens["admin"].clone();
        tasks.push(tokio::spawn(async move {
            let (s, v, _) = post(&url, Some(&token), "text/csv", body).await;
            (key, s, v)
        }));
    }
    let mut ids = BTreeSet::new();
    for t in tasks {
        let (key, s, v) = t.await.unwrap();
        assert_eq!(s, StatusCode::CREATED, "{key:?}: {v}");
        ids.insert(v["upload_id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 16);
    drop((a, b));

    let lake = Lake::open(dir.path().join("lake")).await.unwrap();
    let rows = attendance_rows(&lake).await;
    // Exactly the rows of the twelve distinct keys, no duplicates, each key from one upload.
    let expected: usize = groups
        .values()
        .take(12)
        .map(|b| String::from_utf8_lossy(b).lines().count() - 1)
        .sum();
    assert_eq!(rows.len(), expected);
    let mut by_key: BTreeMap<(String, String, String), BTreeSet<String>> = BTreeMap::new();
    for (s, p, w, id) in &rows {
        by_key
            .entry((s.clone(), p.clone(), w.clone()))
            .or_default()
            .insert(id.clone());
    }
    assert!(by_key.values().all(|ids| ids.len() == 1), "{by_key:?}");
    // Every upload has one audit record; a twin supersedes the other or was superseded.
    let audits = lake.audits().await.unwrap();
    let audited: BTreeSet<String> = audits
        .iter()
        .filter(|a| a.table == "attendance")
        .map(|a| a.upload_id.clone())
        .collect();
    assert_eq!(audited, ids);
    let superseding = audits.iter().filter(|a| !a.supersedes.is_empty()).count();
    assert_eq!(superseding, 4, "each twin replaced the other once");
}

/// Kills the server (SIGKILL) at different moments of an upload: each time the lake opens
/// without repair, the upload's keys hold all of its rows or none of them, and a present
/// upload has its audit record.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_during_an_upload_leaves_it_whole_or_absent() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = setup(dir.path(), 20).await;
    let groups = uploads_by_school_and_period();
    // The base: every January key, then a correction of them all in one file, killed midway.
    let jan: Vec<&Vec<u8>> = groups
        .iter()
        .filter(|((_, p), _)| p == "2026-01")
        .map(|(_, v)| v)
        .collect();
    let mut correction = String::from_utf8(jan[0].clone()).unwrap();
    for g in &jan[1..] {
        for l in String::from_utf8((*g).clone()).unwrap().lines().skip(1) {
            correction.push_str(l);
            correction.push('\n');
        }
    }
    let expected_rows = correction.lines().count() - 1;
    {
        let server = serve(dir.path());
        let (s, v, _) = post(
            &server.url,
            Some(&tokens["admin"]),
            "text/csv",
            correction.clone().into_bytes(),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let mut landed = 0;
    for delay_ms in [0u64, 5, 15, 30, 60, 100, 150, 250, 400, 700] {
        let mut server = serve(dir.path());
        let url = server.url.clone();
        let token = tokens["admin"].clone();
        let body = correction.clone().into_bytes();
        let upload =
            tokio::spawn(async move { post(&url, Some(&token), "text/csv", body).await.0 });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        let _ = upload.await;

        // Opening is all a restart does: no repair step.
        let lake = Lake::open(dir.path().join("lake")).await.unwrap();
        let rows = attendance_rows(&lake).await;
        let jan_rows: Vec<_> = rows.iter().filter(|r| r.1 == "2026-01").collect();
        assert_eq!(
            jan_rows.len(),
            expected_rows,
            "after a kill at {delay_ms} ms"
        );
        let ids: BTreeSet<&String> = jan_rows.iter().map(|r| &r.3).collect();
        assert_eq!(
            ids.len(),
            1,
            "one upload's rows, never a mix, at {delay_ms} ms"
        );
        let audits = lake.audits().await.unwrap();
        let id = *ids.iter().next().unwrap();
        assert!(
            audits.iter().any(|a| &a.upload_id == id),
            "the rows' upload has its audit record at {delay_ms} ms"
        );
        landed = audits.len();
    }
    assert!(landed >= 2, "the register and the base upload at least");

    // SIGTERM, as a service manager stops it: a graceful stop, exit code 0.
    let mut server = serve(dir.path());
    let pid = server.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "SIGTERM: {exit}");
}

/// A lake the server may not write gives 503 with a clear message; nothing is half-written,
/// and the same upload lands once the lake is writable again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unwritable_lake_is_a_503_and_nothing_is_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = setup(dir.path(), 20).await;
    let table = dir.path().join("lake/attendance");
    let set_mode = |mode: u32| set_dir_mode(&table, mode);
    set_mode(0o555);
    let server = serve_unprivileged(dir.path());
    let lake = dir.path().join("lake");
    let body = uploads_by_school_and_period()[&("18800101".into(), "2026-01".into())].clone();
    let (s, v, _) = post(
        &server.url,
        Some(&tokens["admin"]),
        "text/csv",
        body.clone(),
    )
    .await;
    set_mode(0o755);
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("inget sparades"),
        "{v}"
    );
    let opened = Lake::open(&lake).await.unwrap();
    assert!(attendance_rows(&opened).await.is_empty());
    assert_eq!(opened.audits().await.unwrap().len(), 1, "only the register");
    let (s, v, _) = post(&server.url, Some(&tokens["admin"]), "text/csv", body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

/// The background publisher in a real `serve`: an upload is stored at once (201) but pages
/// keep showing the published version, saying that new data is waiting, until the lake has
/// been quiet for the settle time; then the new version is published and shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_published_in_the_background_once_the_lake_settles() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = setup(dir.path(), 20).await;
    let config_path = dir.path().join("narvaro.toml");
    let mut config = Config::load(&config_path).unwrap();
    config.server.publish_settle_secs = 2;
    config.save(&config_path).unwrap();
    let server = serve(dir.path());
    let url = server.url.clone();
    let health = || async {
        let (s, v) = get(&url, &tokens["county"], "/healthz").await;
        assert_eq!(s, StatusCode::OK);
        v
    };
    let settled = |want: u64| async move {
        let until = std::time::Instant::now() + Duration::from_secs(240);
        loop {
            let v = health().await;
            if v["published"]["data_version"] == want && v["waiting"] == false {
                return v;
            }
            assert!(std::time::Instant::now() < until, "never published: {v}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    // At start the register alone is published: an index without reports.
    settled(0).await;

    let (s, body, _) = post(
        &url,
        Some(&tokens["admin"]),
        "text/csv",
        read("slt/attendance.csv"),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let version = body["version"].as_u64().unwrap();
    let v = health().await;
    assert_eq!(v["data_version"], version, "{v}");
    assert_eq!(v["waiting"], true, "published only once settled: {v}");
    let page = client()
        .get(format!("{url}/reports/committee/1880/VT2026"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        StatusCode::NOT_FOUND,
        "the published version has no attendance yet"
    );

    settled(version).await;
    let page = client()
        .get(format!("{url}/reports/committee/1880/VT2026"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("Dataversion: {version}")), "{html}");
    assert!(!html.contains("publiceras inom kort"));
}
