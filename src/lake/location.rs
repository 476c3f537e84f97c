//! Where a lake lives: a local directory or a prefix in S3-compatible object storage.
//!
//! `--lake DIR` and `--lake s3://bucket/prefix` (also `lake = "…"` in `narvaro.toml`) name a
//! [`Location`]. Object storage goes through deltalake's own S3 support: endpoint, region and
//! credentials come from the standard AWS environment variables (`AWS_ENDPOINT_URL`,
//! `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, and `AWS_ALLOW_HTTP=true` for a
//! plain-HTTP endpoint), and commits are made with conditional writes (`If-None-Match`), so no
//! lock table is needed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use deltalake::ObjectStore;
use url::Url;

use crate::{Error, Result};

/// A lake's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory on this machine (absolute once the lake is open).
    Local(PathBuf),
    /// A prefix in an S3-compatible bucket, `s3://bucket/prefix/` (always ending in `/`), and
    /// storage options beside the environment's (deltalake's and object_store's keys, e.g.
    /// `aws_endpoint`; given ones win).
    S3(Url, BTreeMap<String, String>),
}

impl Location {
    /// The local directory, where the lake is local.
    pub fn local(&self) -> Option<&Path> {
        match self {
            Location::Local(p) => Some(p),
            Location::S3(..) => None,
        }
    }

    /// The root as a URL ending in `/` (`file:///…/` or `s3://bucket/prefix/`).
    pub fn url(&self) -> Result<Url> {
        match self {
            Location::Local(p) => Url::from_directory_path(p)
                .map_err(|_| Error::usage(format!("lake path is not absolute: {}", p.display()))),
            Location::S3(u, _) => Ok(u.clone()),
        }
    }

    /// The root of table `table`, ending in `/`.
    pub fn table_url(&self, table: &str) -> Result<Url> {
        let root = self.url()?;
        root.join(&format!("{table}/"))
            .map_err(|e| Error::usage(format!("{root}: {e}")))
    }

    /// The storage options given beside the environment's.
    pub fn options(&self) -> BTreeMap<String, String> {
        match self {
            Location::Local(_) => BTreeMap::new(),
            Location::S3(_, o) => o.clone(),
        }
    }

    /// With storage option `key` set to `value` (an S3 location; a local one has none).
    pub fn with_option(mut self, key: &str, value: &str) -> Location {
        if let Location::S3(_, o) = &mut self {
            o.insert(key.to_string(), value.to_string());
        }
        self
    }

    /// An object store rooted at the lake (paths relative to it, e.g.
    /// `publications/part-….parquet`). deltalake registers its S3 handlers when the program
    /// starts.
    pub fn store(&self) -> Result<Arc<dyn ObjectStore>> {
        Ok(deltalake::logstore::store_for(
            &self.url()?,
            self.options(),
        )?)
    }
}

impl FromStr for Location {
    type Err = Error;

    /// `s3://bucket/prefix` (or `s3a://`), `file:///dir`, or a path.
    fn from_str(s: &str) -> Result<Location> {
        let Some((scheme, _)) = s.split_once("://") else {
            return Ok(Location::Local(PathBuf::from(s)));
        };
        let bad = |why: &str| Error::usage(format!("--lake {s}: {why}"));
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                let url = Url::parse(s).map_err(|e| bad(&e.to_string()))?;
                let path = url.to_file_path().map_err(|_| bad("ingen lokal sökväg"))?;
                Ok(Location::Local(path))
            }
            "s3" | "s3a" => {
                let mut url = Url::parse(s).map_err(|e| bad(&e.to_string()))?;
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(bad("ange en bucket: s3://BUCKET/PREFIX"));
                }
                if url.query().is_some() || url.fragment().is_some() {
                    return Err(bad("en sjö i S3 anges utan ? och #"));
                }
                if !url.path().ends_with('/') {
                    let path = format!("{}/", url.path());
                    url.set_path(&path);
                }
                Ok(Location::S3(url, BTreeMap::new()))
            }
            other => Err(bad(&format!(
                "lagringen {other}:// stöds inte (en katalog eller s3://BUCKET/PREFIX)"
            ))),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3(u, _) => write!(f, "{}", u.as_str().trim_end_matches('/')),
        }
    }
}

impl From<&Path> for Location {
    fn from(p: &Path) -> Location {
        Location::Local(p.to_path_buf())
    }
}

impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Location {
        Location::Local(p)
    }
}

impl From<&PathBuf> for Location {
    fn from(p: &PathBuf) -> Location {
        Location::Local(p.clone())
    }
}

impl From<&Location> for Location {
    fn from(l: &Location) -> Location {
        l.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lake_is_a_directory_or_an_s3_prefix() {
        assert_eq!(
            "data/lake".parse::<Location>().unwrap(),
            Location::Local("data/lake".into())
        );
        let s3: Location = "s3://skolor/narvaro/lake".parse().unwrap();
        assert_eq!(s3.url().unwrap().as_str(), "s3://skolor/narvaro/lake/");
        assert_eq!(
            s3.table_url("attendance").unwrap().as_str(),
            "s3://skolor/narvaro/lake/attendance/"
        );
        assert_eq!(s3.to_string(), "s3://skolor/narvaro/lake");
        let bucket: Location = "s3://skolor".parse().unwrap();
        assert_eq!(
            bucket.table_url("uploads").unwrap().as_str(),
            "s3://skolor/uploads/"
        );
        assert_eq!(
            "file:///tmp/lake".parse::<Location>().unwrap(),
            Location::Local("/tmp/lake".into())
        );
        for (bad, says) in [
            ("gs://skolor/lake", "gs:// stöds inte"),
            ("s3:///lake", "ange en bucket"),
            ("s3://skolor/lake?x=1", "utan ? och #"),
        ] {
            let e = bad.parse::<Location>().unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
