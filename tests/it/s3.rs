//! A lake in S3-compatible object storage: moto's server from PyPI (which honours
//! `If-None-Match`, as S3 does) on a loopback port. Every command on `s3://`, two `serve`
//! replicas on one bucket taking uploads at once (checked with Delta's own Python reader), a
//! replica killed mid-upload, and a deterministic commit conflict.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http_client::StatusCode;
use narvaro::auth::{Config, Scope};
use narvaro::lake::{Lake, Location};

use crate::api::{attendance_rows, post, uploads_by_school_and_period};
use crate::common::{Server, fixture, now};
use crate::http::python;

/// moto's S3 server, stopped when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Moto {
        let exe = python().with_file_name("moto_server");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (.ci/run installs moto[server])", exe.display()));
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Creates bucket `name` (moto checks no signature).
    async fn bucket(&self, name: &str) {
        let r = http_client::Client::new()
            .put(format!("{}/{name}", self.endpoint))
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=test/20261201/us-east-1/s3/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }

    /// The standard AWS environment a `narvaro` process finds the server by.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// The same, as storage options of a lake opened in this process.
    fn location(&self, url: &str) -> Location {
        let mut l: Location = url.parse().unwrap();
        for (k, v) in self.env() {
            l = l.with_option(&k.to_ascii_lowercase(), &v);
        }
        l
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `narvaro` with `env`: (exit code, stdout, stderr).
fn narvaro_env(args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_narvaro"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Reads table `table` of the lake at `uri` with Delta's Python reader and runs `sql` over
/// it (as `t`); the first row's values.
fn delta_python(moto: &Moto, uri: &str, table: &str, sql: &str) -> Vec<serde_json::Value> {
    let script = r#"
import json, sys
from deltalake import DeltaTable, QueryBuilder
uri, endpoint, sql = sys.argv[1], sys.argv[2], sys.argv[3]
opts = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
t = QueryBuilder().register("t", DeltaTable(uri, storage_options=opts)).execute(sql).read_all()
print(json.dumps([c[0].as_py() for c in t.columns]))
"#;
    let out = Command::new(python())
        .args(["-c", script, &format!("{uri}/{table}"), &moto.endpoint, sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_works_on_a_lake_in_s3() {
    let moto = Moto::start();
    moto.bucket("skolor").await;
    let env = moto.env();
    let dir = tempfile::tempdir().unwrap();
    let s3 = "s3://skolor/narvaro/lake";
    let local = dir.path().join("lake");
    let local = local.to_str().unwrap();
    let files = fixture("slt");
    let files = files.to_str().unwrap();

    // The same files ingested (and published) into both.
    for lake in [s3, local] {
        let (code, out, err) = narvaro_env(&["ingest", "--lake", lake, files], &env);
        assert_eq!(code, 0, "{lake}: {out}{err}");
    }
    let q = "SELECT area_code, period, \"window\", students, absence_pct FROM absence_rate \
             ORDER BY 1, 2, 3";
    let query = |lake: &str| {
        let (code, out, err) = narvaro_env(&["query", "--lake", lake, "--format", "csv", q], &env);
        assert_eq!(code, 0, "{err}");
        out
    };
    let figures = query(s3);
    assert!(figures.lines().count() > 10, "{figures}");
    assert_eq!(figures, query(local));

    // The published report, written from the publication in S3, equals the local one.
    for lake in [s3, local] {
        let out = dir.path().join(format!("{}.csv", lake.len()));
        let args = [
            "report",
            "--lake",
            lake,
            "committee",
            "1880",
            "VT2026",
            "--out",
            out.to_str().unwrap(),
        ];
        let (code, stdout, err) = narvaro_env(&args, &env);
        assert_eq!(code, 0, "{lake}: {stdout}{err}");
    }
    // Equal but for the minute each was published in (the two publications ran one
    // after the other, possibly either side of a minute's turn).
    let report = |lake: &str| {
        let csv = std::fs::read_to_string(dir.path().join(format!("{}.csv", lake.len()))).unwrap();
        let published = csv.lines().filter(|l| l.starts_with("Publicerad;")).count();
        assert_eq!(published, 1, "{csv}");
        csv.lines()
            .filter(|l| !l.starts_with("Publicerad;"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(report(s3), report(local));

    // Nothing new to publish; the lake's housekeeping runs there too.
    for args in [
        vec!["publish", "--lake", s3],
        vec!["lake", "optimize", "--lake", s3],
        vec!["lake", "vacuum", "--lake", s3, "--dry-run"],
    ] {
        let (code, out, err) = narvaro_env(&args, &env);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
    }
    let (code, info, err) = narvaro_env(&["lake", "info", "--lake", s3], &env);
    assert_eq!(code, 0, "{err}");
    assert!(info.contains("sjö: s3://skolor/narvaro/lake"), "{info}");
    let (code, listed, err) = narvaro_env(&["lake", "files", "--lake", s3, "attendance"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(
        listed
            .lines()
            .all(|l| l.starts_with("s3://skolor/narvaro/lake/attendance/")),
        "{listed}"
    );

    // Delta's own reader finds every row narvaro's query counts.
    let (_, counted, _) = narvaro_env(
        &[
            "query",
            "--lake",
            s3,
            "--format",
            "csv",
            "SELECT count(*) AS n FROM attendance",
        ],
        &env,
    );
    let rows = delta_python(&moto, s3, "attendance", "SELECT count(*) FROM t");
    assert_eq!(counted.lines().nth(1).unwrap(), rows[0].to_string());

    // A bucket that does not exist, and a lake where there is none: clear errors.
    let (code, _, err) = narvaro_env(&["publish", "--lake", "s3://skolor/ingen"], &env);
    assert_eq!(code, 2);
    assert!(
        err.contains("s3://skolor/ingen: här finns ingen sjö"),
        "{err}"
    );
}

/// A configuration with an admin token whose `[server] lake` is `lake`.
fn config(dir: &Path, lake: &str) -> String {
    let mut config = Config::default();
    config.server.lake = Some(lake.to_string());
    config.server.publisher_nice = 0;
    config.server.publish_settle_secs = 1;
    let token = config
        .create_token("admin", &["admin".parse::<Scope>().unwrap()], now())
        .unwrap();
    config.save(&dir.join("narvaro.toml")).unwrap();
    token
}

fn replica(dir: &Path, moto: &Moto) -> Server {
    let config = dir.join("narvaro.toml");
    let args = [
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
    ];
    Server::start_env(&args, &moto.env(), Duration::from_secs(120))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_one_bucket_take_uploads_once_and_serve_the_same_publication() {
    let moto = Moto::start();
    moto.bucket("skolor").await;
    let dir = tempfile::tempdir().unwrap();
    let s3 = "s3://skolor/lan18";
    let register = fixture("slt/register.csv");
    let (code, out, err) = narvaro_env(
        &["ingest", "--lake", s3, register.to_str().unwrap()],
        &moto.env(),
    );
    assert_eq!(code, 0, "{out}{err}");
    // The replicas find the lake in the configuration file, not on the command line.
    let token = config(dir.path(), s3);
    let a = replica(dir.path(), &moto);
    let b = replica(dir.path(), &moto);
    assert!(a.output.contains(s3), "{}", a.output);

    let groups = uploads_by_school_and_period();
    let mut jobs: Vec<Vec<u8>> = groups.values().take(12).cloned().collect();
    // Four keys twice: the same school at once, through both replicas.
    jobs.extend(groups.values().take(4).cloned());
    let mut tasks = Vec::new();
    for (i, body) in jobs.into_iter().enumerate() {
        let url = [&a.url, &b.url][i % 2].clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            post(&url, Some(&token), "text/csv", body).await
        }));
    }
    let mut ids = BTreeSet::new();
    for t in tasks {
        let (s, v, _) = t.await.unwrap();
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.insert(v["upload_id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 16);

    // Delta's Python reader: the rows of the twelve keys, each key from one upload.
    let expected: usize = groups
        .values()
        .take(12)
        .map(|b| String::from_utf8_lossy(b).lines().count() - 1)
        .sum();
    let found = delta_python(
        &moto,
        s3,
        "attendance",
        "SELECT count(*), count(DISTINCT school_unit_code || period || \"window\"), \
         count(DISTINCT upload_id) FROM t",
    );
    let keys = groups
        .keys()
        .take(12)
        .map(|(s, p)| (s.clone(), p.clone()))
        .collect::<BTreeSet<_>>()
        .len();
    assert_eq!(found[0], expected, "rows");
    let lake = Lake::open(moto.location(s3)).await.unwrap();
    let rows = attendance_rows(&lake).await;
    assert_eq!(rows.len(), expected);
    let mut by_key: BTreeMap<(String, String, String), BTreeSet<String>> = BTreeMap::new();
    for (s, p, w, id) in &rows {
        by_key
            .entry((s.clone(), p.clone(), w.clone()))
            .or_default()
            .insert(id.clone());
    }
    assert!(by_key.values().all(|ids| ids.len() == 1), "{by_key:?}");
    assert_eq!(by_key.len(), found[1], "keys");
    assert!(keys <= by_key.len());
    // Each replica writes its audit rows after answering (and opening the lake above restored
    // those not yet written: readers of the audit take each upload id once).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let audited = delta_python(
            &moto,
            s3,
            "uploads",
            "SELECT count(DISTINCT upload_id) FROM t WHERE table_name = 'attendance'",
        );
        if audited[0] == 16 {
            break;
        }
        assert!(Instant::now() < deadline, "audited: {audited:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Both replicas' publishers run once the lake settles; one publishes at a time, and both
    // serve the publication of the latest data within seconds of its commit.
    let data_version = lake.table("attendance").await.unwrap().version().unwrap();
    let client = http_client::Client::new();
    let path = "/api/v1/indicators/absence_rate?area_code=1880";
    let deadline = Instant::now() + Duration::from_secs(300);
    let answers = loop {
        let mut answers = Vec::new();
        for url in [&a.url, &b.url] {
            let r = client.get(format!("{url}{path}")).send().await.unwrap();
            let v: serde_json::Value = if r.status().is_success() {
                r.json().await.unwrap()
            } else {
                serde_json::Value::Null
            };
            answers.push(v);
        }
        if answers.iter().all(|v| v["data_version"] == data_version) {
            break answers;
        }
        assert!(Instant::now() < deadline, "not published: {answers:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(answers[0], answers[1]);
    assert!(answers[0]["rows"].as_array().is_some_and(|r| !r.is_empty()));
    let numbers = delta_python(
        &moto,
        s3,
        "publications",
        "SELECT count(*), count(DISTINCT publication) FROM t WHERE report = 'index'",
    );
    assert_eq!(numbers[0], numbers[1], "no two publications share a number");

    // A replica killed mid-upload leaves the lake consistent: the other takes the same key.
    let mut a = a;
    let body = groups.values().next().unwrap().clone();
    let (url, t) = (a.url.clone(), token.clone());
    let upload = tokio::spawn(async move { post(&url, Some(&t), "text/csv", body).await.0 });
    tokio::time::sleep(Duration::from_millis(30)).await;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let _ = upload.await;
    let body = groups.values().next().unwrap().clone();
    let (s, v, _) = post(&b.url, Some(&token), "text/csv", body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let lake = Lake::open(moto.location(s3)).await.unwrap();
    let rows = attendance_rows(&lake).await;
    assert_eq!(
        rows.len(),
        expected,
        "the key replaced whole, never doubled"
    );
}

/// Writer A holds version N; writer B commits N + 1; A's commit built on N is refused by the
/// store (`If-None-Match`), never written over B's, and narvaro's upload retries it from a
/// fresh read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_on_a_stale_version_is_retried_and_never_overwrites() {
    use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
    use deltalake::protocol::{DeltaOperation, SaveMode};

    let moto = Moto::start();
    moto.bucket("skolor").await;
    let at = moto.location("s3://skolor/konflikt");
    let a = Lake::open(&at).await.unwrap();
    let b = Lake::open(&at).await.unwrap();
    narvaro::ingest::ingest_path(&a, &fixture("slt/register.csv"), now())
        .await
        .unwrap();
    let groups = uploads_by_school_and_period();
    let mut files = groups.values();
    let tmp = tempfile::tempdir().unwrap();
    let mut written = 0;
    let mut upload = |body: Vec<u8>| {
        written += 1;
        let p = tmp.path().join(format!("upload-{written}.csv"));
        std::fs::write(&p, body).unwrap();
        p
    };
    let first = upload(files.next().unwrap().clone());
    narvaro::ingest::ingest_path(&a, &first, now())
        .await
        .unwrap();
    let held = a.table("attendance").await.unwrap();
    let n = held.version().unwrap();

    let second = upload(files.next().unwrap().clone());
    narvaro::ingest::ingest_path(&b, &second, now())
        .await
        .unwrap();
    let log = b.table("attendance").await.unwrap().log_store();
    let b_entry = log.read_commit_entry(n + 1).await.unwrap().unwrap();

    // A commits on N without retrying: refused, and B's entry stands.
    let refused = CommitBuilder::from(CommitProperties::default().with_max_retries(0))
        .with_actions(vec![])
        .build(
            Some(held.snapshot().unwrap()),
            held.log_store(),
            DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by: None,
                predicate: None,
            },
        )
        .await;
    assert!(refused.is_err(), "a commit on a stale version was accepted");
    assert_eq!(
        log.read_commit_entry(n + 1).await.unwrap().unwrap(),
        b_entry
    );

    // Through narvaro, A's next upload lands after B's: every row of all three uploads.
    let third = upload(files.next().unwrap().clone());
    narvaro::ingest::ingest_path(&a, &third, now())
        .await
        .unwrap();
    let rows = attendance_rows(&a).await;
    let expected: usize = groups
        .values()
        .take(3)
        .map(|b| String::from_utf8_lossy(b).lines().count() - 1)
        .sum();
    assert_eq!(rows.len(), expected);
    assert_eq!(
        a.table("attendance").await.unwrap().version().unwrap(),
        n + 2
    );
}

/// Two servers' publishers on one bucket at once: one publishes, the other waits for its
/// lease and then finds nothing left to do; the lease is gone afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publisher_at_a_time_across_servers_on_one_bucket() {
    use deltalake::logstore::object_store::ObjectStoreExt;
    use narvaro::http::App;

    let moto = Moto::start();
    moto.bucket("skolor").await;
    let at = moto.location("s3://skolor/publicering");
    let lake = Lake::open(&at).await.unwrap();
    for f in ["register.csv", "attendance.csv"] {
        narvaro::ingest::ingest_path(&lake, &fixture(&format!("slt/{f}")), now())
            .await
            .unwrap();
    }
    let policies =
        || narvaro::policy::Policies::load(&narvaro::policy::Source::resolve(None)).unwrap();
    let one = App::new(lake, policies(), now);
    let two = App::new(Lake::open(&at).await.unwrap(), policies(), now);
    let (a, b) = tokio::join!(one.publish(), two.publish());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        a.is_some() != b.is_some(),
        "exactly one publishes: {a:?} {b:?}"
    );
    let published = a.or(b).unwrap();
    assert_eq!(published.publication, 1);
    let store = Lake::open(&at).await.unwrap().store().unwrap();
    let lease = store
        .head(&deltalake::Path::from("_narvaro/publisher.lease"))
        .await;
    assert!(
        matches!(lease, Err(deltalake::ObjectStoreError::NotFound { .. })),
        "{lease:?}"
    );
}
