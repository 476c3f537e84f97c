//! The server's state: the lake, the policies, the tokens, the publications catalogue and the
//! reports read from it, and the background publisher.
//!
//! Pages read only publications: a request never runs an indicator query or a protection.
//! After an upload the publisher waits until the lake has been quiet for the settle time (or
//! at most `publish_max_wait_secs` after the first waiting upload), then publishes the new
//! version in the background; until then pages show the previous publication and say that
//! uploads are waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::Result;
use crate::auth::Tokens;
use crate::disclosure::release::Protections;
use crate::lake::{Lake, PUBLICATIONS};
use crate::policy::Policies;
use crate::publish::{self, Catalogue, Pick, Publication, ReportKey};
use crate::report::{Index, Report, Term};

/// How many reports read from publications are kept in memory.
const REPORT_CACHE: usize = 512;

/// (publication, report, format extension, the links' query, uploads waiting).
type RenderedKey = (u64, ReportKey, &'static str, String, bool);

/// How often a server on a lake in object storage looks for publications other servers
/// committed, and how old what `/healthz` reports may get before it is brought up to date.
const FOLLOW: Duration = Duration::from_secs(1);

/// How many PxWeb tables of publications older than the newest a server keeps built.
const OLDER_CUBES: usize = 16;

/// The server's state: the lake, the policies, and what it serves from the publications.
pub struct App {
    pub(super) lake: Lake,
    pub(super) policies: Policies,
    pub(super) clock: fn() -> DateTime<Utc>,
    pub(super) tokens: Tokens,
    /// Uploads being received and checked (`max_concurrent_uploads`).
    pub(super) uploads: Arc<tokio::sync::Semaphore>,
    /// Protected releases by content, kept by the publisher between publications.
    pub(super) protected: Arc<Protections>,
    catalogue: Mutex<Option<Arc<Catalogue>>>,
    /// When the `publications` log was last looked at (a lake in object storage).
    log_looked: Mutex<Option<Instant>>,
    /// Set while `/healthz` brings what it reports up to date in the background.
    following: std::sync::atomic::AtomicBool,
    /// Held while the `publications` log is looked at and the catalogue read, so that one
    /// request does it and the others wait for it (when there is none yet) or keep serving the
    /// one they have.
    catalogue_read: tokio::sync::Mutex<()>,
    /// Reports by (publication served, report).
    reports: Mutex<HashMap<(u64, ReportKey), Arc<Report>>>,
    /// Rendered answers by (publication served, report, format and links): rendering is
    /// pure, so a page is rendered once per publication.
    rendered: Mutex<HashMap<RenderedKey, axum::body::Bytes>>,
    /// The index of the publication last asked for (every API answer reads it).
    index: Mutex<Option<(u64, Arc<Index>)>>,
    /// PxWeb tables by (publication, table id), built once per publication.
    cubes: Mutex<HashMap<(u64, String), Arc<crate::pxweb::Cube>>>,
    /// The tables of older publications in `cubes`, the oldest built first.
    older_cubes: Mutex<std::collections::VecDeque<(u64, String)>>,
    /// Renders running on blocking threads (a PDF takes a processor for a while): one per
    /// processor, the rest wait their turn.
    render_slots: tokio::sync::Semaphore,
    /// When the oldest upload not yet published landed (`None`: nothing waiting).
    waiting_since: Mutex<Option<Instant>>,
    /// When the latest upload landed.
    last_upload: Mutex<Option<Instant>>,
    /// Wakes the publisher.
    pub(super) publish_now: tokio::sync::Notify,
    /// The `narvaro` executable the publisher runs as a child process, and its niceness
    /// (`None`: it publishes in this process).
    publisher: Option<(std::path::PathBuf, u8)>,
}

impl App {
    /// `clock` gives the publication time and the time uploads are received (tests pass a
    /// fixed one). Without [`App::with_tokens`] no token is valid.
    pub fn new(lake: Lake, policies: Policies, clock: fn() -> DateTime<Utc>) -> App {
        App {
            lake,
            policies,
            clock,
            tokens: Tokens::open(None).expect("no configuration file to read"),
            uploads: Arc::new(tokio::sync::Semaphore::new(
                crate::auth::ServerConfig::default().max_concurrent_uploads,
            )),
            protected: Default::default(),
            catalogue: Mutex::new(None),
            log_looked: Mutex::new(None),
            following: std::sync::atomic::AtomicBool::new(false),
            catalogue_read: tokio::sync::Mutex::new(()),
            reports: Mutex::new(HashMap::new()),
            rendered: Mutex::new(HashMap::new()),
            cubes: Mutex::new(HashMap::new()),
            older_cubes: Mutex::new(Default::default()),
            index: Mutex::new(None),
            render_slots: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            waiting_since: Mutex::new(None),
            last_upload: Mutex::new(None),
            publish_now: tokio::sync::Notify::new(),
            publisher: None,
        }
    }

    /// Publishes by running `exe publish` as a child process at niceness `nice` (what
    /// `serve` does): a publication needs a county's releases and every report in memory for
    /// minutes, which the server neither holds nor waits for, and pages keep the processor
    /// first while it runs. The child stamps its publication with its own clock, not `clock`.
    pub fn with_publisher_process(mut self, exe: std::path::PathBuf, nice: u8) -> App {
        self.publisher = Some((exe, nice));
        self
    }

    /// Shares `protected` with this server: another state on the same lake reuses what it
    /// computed.
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

    /// The catalogue at the `publications` table's latest version. It is read again when a
    /// publication has been committed (by this server or another) by one request at a time;
    /// meanwhile the others serve the catalogue they have. This server's publisher reads it
    /// before it reports a publication done ([`App::refresh_catalogue`]), so its readers never
    /// wait for it. Whether another has committed one is looked up in the table's log on every
    /// request where the lake is local (a directory listing), and at most every [`FOLLOW`]
    /// in object storage (a listing there is a request to the store); one request at a time
    /// looks, and those that come meanwhile serve the catalogue held (32 readers queueing for
    /// the table's log one behind the other spent most of a page's time there).
    pub(super) async fn catalogue(&self) -> Result<Arc<Catalogue>> {
        let held = self.catalogue.lock().expect("cache").clone();
        let _reading = match &held {
            Some(c) => {
                if self.lake.root().local().is_none() {
                    let mut looked = self.log_looked.lock().expect("lock");
                    if looked.is_some_and(|t| t.elapsed() < FOLLOW) {
                        return Ok(c.clone());
                    }
                    *looked = Some(Instant::now());
                }
                match self.catalogue_read.try_lock() {
                    Ok(guard) => guard,
                    Err(_) => return Ok(c.clone()),
                }
            }
            None => self.catalogue_read.lock().await,
        };
        let version = self
            .lake
            .table(PUBLICATIONS)
            .await?
            .version()
            .unwrap_or_default();
        // Another request may have read it while this one waited.
        if let Some(c) = self.catalogue.lock().expect("cache").as_ref()
            && c.version >= version
        {
            return Ok(c.clone());
        }
        self.read_catalogue().await
    }

    /// What `/healthz` reports, without waiting for the lake: the latest `attendance` version
    /// and the catalogue this server holds. When they were last brought up to date more than
    /// [`FOLLOW`] ago, a background task does so for the next answer (one at a time), so a
    /// health check never queues behind log reads while the server is busy. Before anything
    /// was read, they are read now.
    pub(super) async fn health(self: &Arc<Self>) -> Result<(u64, Arc<Catalogue>)> {
        use std::sync::atomic::Ordering;
        let held = self.catalogue.lock().expect("cache").clone();
        match (self.lake.seen_version("attendance"), held) {
            (Some((version, age)), Some(catalogue)) => {
                if age > FOLLOW && !self.following.swap(true, Ordering::AcqRel) {
                    let app = self.clone();
                    tokio::spawn(async move {
                        let _ = app.lake.table("attendance").await;
                        let _ = app.catalogue().await;
                        app.following.store(false, Ordering::Release);
                    });
                }
                Ok((version, catalogue))
            }
            _ => {
                let version = self
                    .lake
                    .table("attendance")
                    .await?
                    .version()
                    .unwrap_or_default();
                Ok((version, self.catalogue().await?))
            }
        }
    }

    /// Reads the catalogue now if a publication has been committed since it was read (what
    /// `serve` does before it accepts connections, and the publisher after each publication).
    pub async fn refresh_catalogue(&self) -> Result<()> {
        let _reading = self.catalogue_read.lock().await;
        self.read_catalogue().await.map(|_| ())
    }

    /// Reads the catalogue and keeps it, unless a newer one is kept already.
    async fn read_catalogue(&self) -> Result<Arc<Catalogue>> {
        let c = Arc::new(Catalogue::load(&self.lake).await?);
        let mut cache = self.catalogue.lock().expect("cache");
        if cache.as_ref().is_none_or(|old| old.version < c.version) {
            *cache = Some(c.clone());
        }
        Ok(c)
    }

    /// The publication a request reads (`as_of`, or the latest).
    pub(super) async fn publication(
        &self,
        pick: impl Into<Pick>,
    ) -> Result<(Arc<Catalogue>, Publication)> {
        let catalogue = self.catalogue().await?;
        let p = catalogue.pick(pick.into())?.clone();
        Ok((catalogue, p))
    }

    /// The index of the publication at `as_of`.
    pub(super) async fn index(&self, pick: impl Into<Pick>) -> Result<Arc<Index>> {
        let (_, p) = self.publication(pick).await?;
        if let Some((n, i)) = self.index.lock().expect("cache").as_ref()
            && *n == p.number
        {
            return Ok(i.clone());
        }
        let i = Arc::new(publish::read_index(&self.lake, &p).await?);
        *self.index.lock().expect("cache") = Some((p.number, i.clone()));
        Ok(i)
    }

    /// A report as the publication at `as_of` publishes it (a school's own view when
    /// `own_school`), from memory when it was read before; with the publication's number.
    pub async fn report(
        &self,
        kind: &str,
        code: &str,
        term: Term,
        pick: impl Into<Pick>,
        own_school: Option<&str>,
    ) -> Result<(u64, Arc<Report>)> {
        crate::report::check_code(crate::report::spec(kind)?.area, code)?;
        let (catalogue, p) = self.publication(pick).await?;
        let key: ReportKey = (
            kind.to_string(),
            code.to_string(),
            term.to_string(),
            own_school.is_some(),
        );
        let cache_key = (p.number, key);
        if let Some(r) = self.reports.lock().expect("cache").get(&cache_key) {
            super::metrics::cache("report", true);
            return Ok((p.number, r.clone()));
        }
        super::metrics::cache("report", false);
        let r = Arc::new(publish::read_report(&self.lake, &catalogue, &cache_key.1, &p).await?);
        let mut cache = self.reports.lock().expect("cache");
        if cache.len() >= REPORT_CACHE {
            cache.clear();
        }
        cache.insert(cache_key, r.clone());
        Ok((p.number, r))
    }

    /// `render`'s answer for a report of publication `publication`, rendered once, on a
    /// blocking thread.
    pub(super) async fn rendered(
        &self,
        key: RenderedKey,
        render: impl FnOnce() -> Result<Vec<u8>> + Send + 'static,
    ) -> Result<axum::body::Bytes> {
        if let Some(b) = self.rendered.lock().expect("cache").get(&key) {
            super::metrics::cache("rendered", true);
            return Ok(b.clone());
        }
        super::metrics::cache("rendered", false);
        let body = {
            let _slot = self.render_slots.acquire().await.expect("never closed");
            tokio::task::spawn_blocking(render)
                .await
                .map_err(|e| crate::Error::usage(format!("sidan kunde inte skrivas: {e}")))??
        };
        let body = axum::body::Bytes::from(body);
        let mut cache = self.rendered.lock().expect("cache");
        if cache.len() >= REPORT_CACHE {
            cache.clear();
        }
        cache.insert(key, body.clone());
        Ok(body)
    }

    /// The PxWeb table `id` of publication `publication`, if built.
    pub(super) fn cube(&self, publication: u64, id: &str) -> Option<Arc<crate::pxweb::Cube>> {
        let hit = self
            .cubes
            .lock()
            .expect("cache")
            .get(&(publication, id.to_string()))
            .cloned();
        super::metrics::cache("pxweb", hit.is_some());
        hit
    }

    /// Keeps a built PxWeb table: every table of the newest publication, and of older ones
    /// (permanent links) the [`OLDER_CUBES`] built last.
    pub(super) fn keep_cube(&self, publication: u64, id: &str, cube: Arc<crate::pxweb::Cube>) {
        let mut cubes = self.cubes.lock().expect("cache");
        let newest = cubes
            .keys()
            .map(|(p, _)| *p)
            .max()
            .unwrap_or(0)
            .max(publication);
        cubes.insert((publication, id.to_string()), cube);
        let mut older = self.older_cubes.lock().expect("cache");
        if publication < newest {
            older.push_back((publication, id.to_string()));
        }
        older.retain(|k| k.0 < newest && cubes.contains_key(k));
        cubes.retain(|k, _| k.0 == newest || older.contains(k));
        while older.len() > OLDER_CUBES {
            if let Some(k) = older.pop_front() {
                cubes.remove(&k);
            }
        }
    }

    /// Whether uploads have landed that no publication shows yet.
    pub fn waiting(&self) -> bool {
        self.waiting_since.lock().expect("lock").is_some()
    }

    /// An upload landed: the publisher publishes it once the lake has settled.
    pub(super) fn uploaded(&self) {
        let now = Instant::now();
        self.waiting_since.lock().expect("lock").get_or_insert(now);
        *self.last_upload.lock().expect("lock") = Some(now);
        self.publish_now.notify_one();
    }

    /// Publishes the lake's latest version now (what the background publisher does once the
    /// lake has settled; tests call it directly).
    pub async fn publish(&self) -> Result<Option<publish::Published>> {
        let started = Instant::now();
        let published = match &self.publisher {
            Some((exe, nice)) => publish_in_child(exe, *nice, self.lake.root()).await?,
            None => {
                publish::publish(
                    &self.lake,
                    &self.policies,
                    self.protected.clone(),
                    (self.clock)(),
                    &|_, _| {},
                )
                .await?
            }
        };
        if published.is_some() {
            self.refresh_catalogue().await?;
        }
        // Uploads that landed after this publication started still wait for the next.
        let mut waiting = self.waiting_since.lock().expect("lock");
        let last = *self.last_upload.lock().expect("lock");
        if last.is_none_or(|t| t <= started) {
            *waiting = None;
        }
        Ok(published)
    }

    /// The background publisher: publishes at start when the lake has unpublished data, then
    /// after uploads once nothing has landed for `settle` (or `max_wait` after the first
    /// waiting upload). A failed publication is logged and tried again after the next upload or
    /// `settle`.
    pub async fn run_publisher(self: Arc<Self>, settle: Duration, max_wait: Duration) {
        if let Err(e) = self.publish_logged().await {
            tracing::error!(error = %e, "publication failed");
        }
        loop {
            self.publish_now.notified().await;
            loop {
                let (first, last) = (
                    *self.waiting_since.lock().expect("lock"),
                    *self.last_upload.lock().expect("lock"),
                );
                let (Some(first), Some(last)) = (first, last) else {
                    break;
                };
                let due = (last + settle).min(first + max_wait);
                let now = Instant::now();
                if now >= due {
                    if let Err(e) = self.publish_logged().await {
                        tracing::error!(error = %e, "publication failed; retrying");
                        tokio::time::sleep(settle.max(Duration::from_secs(1))).await;
                        continue;
                    }
                    if !self.waiting() {
                        break;
                    }
                    continue;
                }
                tokio::select! {
                    _ = tokio::time::sleep(due - now) => {}
                    _ = self.publish_now.notified() => {}
                }
            }
        }
    }

    async fn publish_logged(&self) -> Result<()> {
        match self.publish().await? {
            Some(p) => {
                super::metrics::publication(p.seconds);
                tracing::info!(
                    publication = p.publication,
                    data_version = p.data_version,
                    reports = p.reports,
                    written = p.written,
                    built = p.built,
                    releases_solved = p.releases_solved,
                    seconds = p.seconds,
                    "published"
                )
            }
            None => tracing::debug!("nothing new to publish"),
        }
        Ok(())
    }
}

/// Runs `exe publish --lake ROOT --json` under `nice -n NICE` (unless 0, or there is no
/// `nice`) and reads what it published. Its errors and logs go to the server's standard
/// error; it is killed when the server stops (a publication it had not committed stays
/// invisible).
async fn publish_in_child(
    exe: &std::path::Path,
    nice: u8,
    root: &crate::lake::Location,
) -> Result<Option<publish::Published>> {
    let nice_exe = ["/usr/bin/nice", "/bin/nice"]
        .into_iter()
        .find(|p| nice > 0 && std::path::Path::new(p).exists());
    let mut command = match nice_exe {
        Some(nice_exe) => {
            let mut c = tokio::process::Command::new(nice_exe);
            c.arg("-n").arg(nice.to_string()).arg(exe);
            c
        }
        None => tokio::process::Command::new(exe),
    };
    command
        .arg("publish")
        .arg("--lake")
        .arg(root.to_string())
        .arg("--json")
        // The server purges freed memory at once (`narvaro serve`); the publisher, a short
        // batch job, keeps mimalloc's default, which its figures were measured with.
        .env_remove("MIMALLOC_PURGE_DELAY")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true);
    let out = command
        .output()
        .await
        .map_err(|e| crate::Error::io(exe, e))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // Its reason went to standard error, which the server shares.
        return Err(crate::Error::Unavailable(format!(
            "publiceringen avbröts ({}); orsaken står i loggen ovanför",
            out.status
        )));
    }
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).map_err(|e| {
        crate::Error::Unavailable(format!("publiceringen svarade oväntat ({e}): {last}"))
    })
}
