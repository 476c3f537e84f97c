//! The crate's error type.
//!
//! Validation failures are not "errors" in the usual sense: a refused file carries every
//! [`Problem`](crate::contract::Problem) found in it, so the user can fix them all at once.

use crate::contract::Rejection;

/// Everything that can go wrong in `narvaro`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file broke the data contract; nothing from it was stored.
    #[error("{0}")]
    Rejected(Box<Rejection>),
    /// Several files broke their contract (e.g. `narvaro aggregate`'s inputs); nothing was
    /// produced.
    #[error("{}", .0.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("\n"))]
    Refused(Vec<Rejection>),
    /// The command line or a request asked for something that does not exist or makes no sense.
    #[error("{0}")]
    Usage(String),
    /// Something asked for (an area, a term, a report) does not exist in the lake.
    #[error("{0}")]
    NotFound(String),
    /// No or an unknown token (HTTP 401).
    #[error("{0}")]
    Unauthorized(String),
    /// A valid token without the scope the request needs (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// Too many requests from one client, or too much work at once (HTTP 429 or 503 with
    /// `Retry-After`).
    #[error("{message}")]
    Busy {
        message: String,
        retry_after_secs: u64,
        /// 429 (this client asked too often) rather than 503 (the server is full).
        client: bool,
    },
    /// The lake cannot be written right now (a full disk, no permission); nothing was stored.
    #[error("{0}")]
    Unavailable(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("delta lake: {0}")]
    Delta(#[from] deltalake::DeltaTableError),
    #[error("query: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// An I/O error that names the path it happened on.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }
}

impl From<Rejection> for Error {
    fn from(r: Rejection) -> Self {
        Error::Rejected(Box::new(r))
    }
}

impl Error {
    /// Whether the input was refused (exit code 1) rather than the program failing.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Error::Rejected(_) | Error::Refused(_))
    }
}
