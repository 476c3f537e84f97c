use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use chrono::{DateTime, TimeZone, Utc};
use narvaro::engine::Engine;
use narvaro::lake::Lake;

/// The shared policies with no disclosure rules at all: every figure shown, for tests that
/// compare figures rather than their protection.
pub fn policies_without_disclosure() -> narvaro::policy::Policies {
    let mut p = narvaro::policy::Policies::load(&narvaro::policy::Source::resolve(None)).unwrap();
    p.shared.policy.disclosure = narvaro::disclosure::Rules {
        min_pupils: 1,
        max_hidden_count: 0,
        dominance: 0,
        min_schools: 0,
        protection: 0,
        confidential_organisers: Default::default(),
        insiders: false,
    };
    p
}

/// Runs the `narvaro` binary: (exit code, stdout, stderr).
pub fn narvaro(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_narvaro"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The fixed moment tests pretend to run at (no wall clock in tests).
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap()
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// A fresh lake holding the small hand-made fixtures.
pub async fn small_lake(dir: &Path) -> Lake {
    fixture_lake(dir, "small").await
}

/// A fresh lake holding the `.slt` fixtures: two terms for three schools in Örebro län, one in
/// Östersund and one in Upplands Väsby.
pub async fn slt_lake(dir: &Path) -> Lake {
    fixture_lake(dir, "slt").await
}

/// A fresh lake under `dir/lake` with one municipality of the synthetic county (`narvaro
/// fixtures --municipality CODE`, written under `dir/files`): its register and every month's
/// attendance. Returns the lake and the files' directory.
pub async fn municipality_lake(dir: &Path, code: &str) -> (Lake, PathBuf) {
    let files = dir.join("files");
    narvaro::fixtures::generate(
        &narvaro::fixtures::Options {
            out: files.clone(),
            scale: narvaro::fixtures::Scale::County,
            // As `narvaro fixtures` and `demo` generate it.
            seed: 2025,
            truth: false,
            ss12000: None,
            municipality: Some(code.into()),
        },
        &indicatif::ProgressBar::hidden(),
    )
    .unwrap();
    let lake = Lake::open(dir.join("lake")).await.unwrap();
    ingest_municipality(&lake, &files, code, "csv").await;
    (lake, files)
}

/// Ingests municipality `code` of the fixtures under `files`: the register, then every
/// month's attendance (`attendance/MONTH/CODE.EXT`), oldest first.
pub async fn ingest_municipality(lake: &Lake, files: &Path, code: &str, ext: &str) {
    let mut paths = vec![files.join("register.csv")];
    let mut months: Vec<PathBuf> = std::fs::read_dir(files.join("attendance"))
        .unwrap()
        .map(|e| e.unwrap().path().join(format!("{code}.{ext}")))
        .collect();
    months.sort();
    paths.extend(months);
    for p in paths {
        narvaro::ingest::ingest_path(lake, &p, now())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
}

/// A fresh lake under `dir/lake` with one fixture set's register, attendance, actions, outcomes.
async fn fixture_lake(dir: &Path, set: &str) -> Lake {
    let lake = Lake::open(dir.join("lake")).await.unwrap();
    for f in [
        "register.csv",
        "attendance.csv",
        "actions.csv",
        "outcomes.csv",
    ] {
        narvaro::ingest::ingest_path(&lake, &fixture(&format!("{set}/{f}")), now())
            .await
            .unwrap_or_else(|e| panic!("{set}/{f}: {e}"));
    }
    lake
}

pub async fn sql(lake: &Lake, as_of: Option<u64>, q: &str) -> Vec<RecordBatch> {
    Engine::open(lake, as_of.map(narvaro::engine::AsOf::Version))
        .await
        .unwrap()
        .sql(q)
        .await
        .unwrap()
}

/// A single integer result.
pub async fn scalar(lake: &Lake, as_of: Option<u64>, q: &str) -> i64 {
    let b = sql(lake, as_of, q).await;
    let col = arrow::compute::cast(b[0].column(0), &arrow::datatypes::DataType::Int64).unwrap();
    arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(&col).value(0)
}

/// Every table's (version, rows), to show that something changed nothing.
pub async fn state(lake: &Lake) -> Vec<(String, u64, usize)> {
    let counts = narvaro::lake::row_counts(lake).await.unwrap();
    let mut v: Vec<_> = counts
        .into_iter()
        .map(|(t, (ver, n))| (t, ver, n))
        .collect();
    v.sort();
    v
}

/// A running `narvaro` process that printed its URL; killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub output: String,
}

impl Server {
    pub fn start(args: &[&str], within: Duration) -> Server {
        Server::start_with(env!("CARGO_BIN_EXE_narvaro"), args, within)
    }

    /// [`Server::start`] with environment variables `env` besides the test's.
    pub fn start_env(args: &[&str], env: &[(&str, String)], within: Duration) -> Server {
        Server::spawn(env!("CARGO_BIN_EXE_narvaro"), args, env, within)
    }

    /// Runs `program` (e.g. a wrapper that then runs `narvaro`) until it prints a URL.
    pub fn start_with(program: &str, args: &[&str], within: Duration) -> Server {
        Server::spawn(program, args, &[], within)
    }

    fn spawn(program: &str, args: &[&str], env: &[(&str, String)], within: Duration) -> Server {
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + within;
        let mut output = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    output.push_str(&line);
                    output.push('\n');
                    if let Some(i) = line.find("http://") {
                        let url = line[i..].split_whitespace().next().unwrap();
                        return Server {
                            child,
                            url: url.trim_end_matches('/').to_string(),
                            output,
                        };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("narvaro {args:?} printed no URL:\n{output}");
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
