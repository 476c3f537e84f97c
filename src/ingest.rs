//! Ingest: a file's bytes → validation against the lake's register → the scope check →
//! one commit.
//!
//! [`upload`] is the one path for `narvaro ingest` and `POST /api/v1/uploads`: the register is
//! read once, the file is read and validated on a blocking thread (at most
//! [`MAX_PARALLEL_VALIDATIONS`] at a time, so the async workers stay free), every row's scope
//! is checked by [`Principal::authorise`], and only then is anything written.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::auth::{Principal, Scope};
use crate::contract::{self, Context, Kind, Validated};
use crate::lake::{Lake, Receipt};
use crate::{Error, Result};

/// The uploader the audit names for files ingested from the command line.
pub const CLI_UPLOADER: &str = "narvaro ingest";

/// Files read and validated at the same time in this process; more wait their turn. Reading
/// is bounded per file (see `contract::source`), so this bounds the memory uploads can take.
pub const MAX_PARALLEL_VALIDATIONS: usize = 2;

static VALIDATIONS: Semaphore = Semaphore::const_new(MAX_PARALLEL_VALIDATIONS);

/// The command line's principal: the operator, who may write anything.
pub fn operator() -> Principal {
    Principal {
        name: CLI_UPLOADER.to_string(),
        scopes: vec![Scope::Admin],
    }
}

/// Validates `bytes` (named `file` in every message) against the lake's register, on a
/// blocking thread. A refused file returns [`Error::Rejected`] with the problems found.
pub async fn validate(
    lake: &Lake,
    file: &str,
    bytes: bytes::Bytes,
    now: DateTime<Utc>,
) -> Result<(Validated, std::sync::Arc<contract::Register>)> {
    let register = lake.register().await?;
    let ctx = Context {
        register: register.clone(),
        today: now.date_naive(),
    };
    let _turn = VALIDATIONS
        .acquire()
        .await
        .map_err(|_| Error::Unavailable("valideringen är avstängd".into()))?;
    let name = file.to_string();
    let validated = tokio::task::spawn_blocking(move || contract::validate(&name, &bytes, &ctx))
        .await
        .map_err(|e| Error::Unavailable(format!("valideringen avbröts: {e}")))??;
    Ok((validated, register))
}

/// The one upload path: validate, check that `who` may write every row, commit. A refused
/// file (contract or scope) changes nothing.
pub async fn upload(
    lake: &Lake,
    who: &Principal,
    file: &str,
    bytes: bytes::Bytes,
    now: DateTime<Utc>,
) -> Result<Receipt> {
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let (validated, register) = validate(lake, file, bytes, now).await?;
    who.authorise(&validated.claims(), &register)?;
    lake.commit(validated, file, &sha256, &who.name, now).await
}

/// Validates and commits `bytes` as `narvaro ingest` does, and writes its audit row before
/// returning (the server writes it after answering). A refused file changes nothing.
pub async fn ingest_bytes(
    lake: &Lake,
    file: &str,
    bytes: &[u8],
    now: DateTime<Utc>,
) -> Result<Receipt> {
    let mut receipt = upload(
        lake,
        &operator(),
        file,
        bytes::Bytes::copy_from_slice(bytes),
        now,
    )
    .await?;
    if let Err(e) = lake.write_audits().await {
        tracing::warn!(upload_id = %receipt.audit.upload_id, error = %e,
            "upload committed, its audit row is pending");
        receipt.warnings.push(contract::Problem::file(
            "audit_pending",
            "uppgifterna är sparade, men granskningsraden kunde inte skrivas just nu; \
             den skrivs vid nästa uppladdning eller när lagret öppnas igen",
        ));
    }
    Ok(receipt)
}

/// Reads and ingests one file from disk.
pub async fn ingest_path(lake: &Lake, path: &Path, now: DateTime<Utc>) -> Result<Receipt> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    ingest_bytes(lake, &path.display().to_string(), &bytes, now).await
}

/// The kind of a file from its header alone (CSV header row or Parquet footer), so a batch
/// of files can be put in dependency order: the register before what refers to it.
pub fn peek_kind(path: &Path) -> Option<Kind> {
    use std::io::{BufRead, Read};
    let mut f = std::fs::File::open(path).ok()?;
    let mut magic = [0u8; 4];
    if f.read_exact(&mut magic).is_ok() && &magic == b"PAR1" {
        let file = std::fs::File::open(path).ok()?;
        let builder =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).ok()?;
        let cols: Vec<String> = builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().trim().to_lowercase())
            .collect();
        return Kind::recognise(&cols);
    }
    let mut line = Vec::new();
    std::io::BufReader::new(std::fs::File::open(path).ok()?)
        .read_until(b'\n', &mut line)
        .ok()?;
    let cols = contract::source::csv_columns(&contract::source::decode_text(&line));
    Kind::recognise(&cols)
}

/// Orders files so the register comes first, then attendance, actions and outcomes; files of
/// unknown kind go last (they will be refused with a clear message).
pub fn dependency_order(paths: &[PathBuf]) -> Vec<PathBuf> {
    let rank = |p: &PathBuf| match peek_kind(p) {
        Some(k) => Kind::ALL.iter().position(|x| *x == k).unwrap_or(9),
        None => 9,
    };
    let mut ranked: Vec<(usize, &PathBuf)> = paths.iter().map(|p| (rank(p), p)).collect();
    ranked.sort_by_key(|(r, _)| *r);
    ranked.into_iter().map(|(_, p)| p.clone()).collect()
}

/// Every file under `dir` that `narvaro fixtures` writes as an upload (not `truth/`), sorted.
pub fn upload_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            let p = e.map_err(|e| Error::io(&d, e))?.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "truth") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "csv" || x == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}
