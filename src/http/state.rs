//! The server's state: the lake, the policies, the tokens, and the engines and built reports
//! cached per data version.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::auth::Tokens;
use crate::disclosure::release::Protections;
use crate::engine::{AsOf, Engine};
use crate::lake::Lake;
use crate::policy::Policies;
use crate::report::{self, Report, Term};
use crate::{Error, Result};

/// How many built reports and engines are kept.
const REPORT_CACHE: usize = 512;
const ENGINE_CACHE: usize = 4;

/// (report, area, term, data version, read by the school's own principal).
type ReportKey = (String, String, Term, u64, bool);

/// The server's state: the lake, the policies, and caches keyed by data version.
pub struct App {
    pub(super) lake: Lake,
    pub(super) policies: Policies,
    pub(super) clock: fn() -> DateTime<Utc>,
    pub(super) tokens: Tokens,
    /// Uploads being received and checked (`max_concurrent_uploads`).
    pub(super) uploads: Arc<tokio::sync::Semaphore>,
    pub(super) engines: Mutex<Vec<(u64, Arc<Engine>)>>,
    /// Protected releases by content, shared by every engine this server opens, so a new
    /// data version reuses what the upload did not change.
    pub(super) protected: Arc<Protections>,
    pub(super) reports: Mutex<HashMap<ReportKey, Arc<Report>>>,
}

impl App {
    /// `clock` gives the generation time printed on pages and the time uploads are received
    /// (tests pass a fixed one). Without [`App::with_tokens`] no token is valid.
    pub fn new(lake: Lake, policies: Policies, clock: fn() -> DateTime<Utc>) -> App {
        App {
            lake,
            policies,
            clock,
            tokens: Tokens::open(None).expect("no configuration file to read"),
            uploads: Arc::new(tokio::sync::Semaphore::new(
                crate::auth::ServerConfig::default().max_concurrent_uploads,
            )),
            engines: Mutex::new(Vec::new()),
            protected: Default::default(),
            reports: Mutex::new(HashMap::new()),
        }
    }

    /// Shares `protected` with this server: another state on the same lake (a benchmark's
    /// fresh state per request) reuses what it computed.
    pub fn with_protections(mut self, protected: Arc<Protections>) -> App {
        self.protected = protected;
        self
    }

    /// The tokens (and server settings) uploads are checked against.
    pub fn with_tokens(mut self, tokens: Tokens) -> App {
        self.uploads = Arc::new(tokio::sync::Semaphore::new(
            tokens.server().max_concurrent_uploads.max(1),
        ));
        self.tokens = tokens;
        self
    }

    /// The engine for a request's `as_of` (or the latest version).
    pub(super) async fn engine(&self, as_of: Option<AsOf>) -> Result<Arc<Engine>> {
        let latest = self
            .lake
            .table("attendance")
            .await?
            .version()
            .unwrap_or_default();
        let version = match as_of {
            None => Some(latest),
            Some(AsOf::Version(v)) if v > latest => {
                return Err(Error::NotFound(format!(
                    "dataversion {v} finns inte; den senaste är {latest}"
                )));
            }
            Some(AsOf::Version(v)) => Some(v),
            Some(AsOf::Time(_)) => None,
        };
        if let Some(v) = version
            && let Some((_, e)) = self
                .engines
                .lock()
                .expect("cache")
                .iter()
                .find(|(k, _)| *k == v)
        {
            return Ok(e.clone());
        }
        let as_of = match version {
            Some(v) if v == latest => None,
            Some(v) => Some(AsOf::Version(v)),
            None => as_of,
        };
        let engine = Engine::open_with(&self.lake, as_of, &self.policies).await?;
        let engine = Arc::new(engine.sharing(self.protected.clone()));
        let v = engine.snapshot.data_version;
        let mut cache = self.engines.lock().expect("cache");
        if !cache.iter().any(|(k, _)| *k == v) {
            if cache.len() >= ENGINE_CACHE {
                cache.remove(0);
            }
            cache.push((v, engine.clone()));
        }
        Ok(engine)
    }

    /// A built report, from the cache when this version's was built before.
    pub async fn report(
        &self,
        kind: &str,
        code: &str,
        term: Term,
        as_of: Option<AsOf>,
        own_school: Option<&str>,
    ) -> Result<Arc<Report>> {
        let spec = report::spec(kind)?;
        let engine = self.engine(as_of).await?;
        let key = (
            kind.to_string(),
            code.to_string(),
            term,
            engine.snapshot.data_version,
            own_school.is_some(),
        );
        if let Some(r) = self.reports.lock().expect("cache").get(&key) {
            return Ok(r.clone());
        }
        let r =
            Arc::new(report::build(&engine, &spec, code, term, (self.clock)(), own_school).await?);
        let mut cache = self.reports.lock().expect("cache");
        if cache.len() >= REPORT_CACHE {
            cache.clear();
        }
        cache.insert(key, r.clone());
        Ok(r)
    }
}
