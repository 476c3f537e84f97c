//! Publications: every report computed once per data version, stored in the lake, and read by
//! every page (DESIGN §13).
//!
//! [`publish`] opens the lake at its latest version, computes the indicator views once
//! ([`Engine::materialize`]), builds every report the index lists (the county report of every
//! county, the committee report of every municipality, the school report of every school unit
//! and its principal's unsuppressed view, for every term with data) and appends them to the
//! `publications` table in one commit, so a publication is complete or invisible. It is
//! incremental twice over: a protected release whose content did not change is taken from the
//! store of earlier publications rather than solved again (by the digest of what it protects),
//! and a report whose content did not change is not written again but carried over. A release
//! whose content changed since an earlier publication of it is protected beside every such
//! publication ([`crate::disclosure::release::History`]), so that no two can be differenced.
//!
//! [`Catalogue`] is what readers load: every publication and, per report, which publication
//! holds its content. [`read_report`] fetches one report's stored content and stamps it with
//! the publication it is served from (data version and publication time).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::disclosure::Protection;
use crate::disclosure::release::{Earlier, History, Protections, Which};
use crate::engine::reads::{self, Read};
use crate::engine::{AsOf, Engine};
use crate::lake::{INDEX, Lake, PublicationRow, READS, RELEASE, SIMILAR, Stored};
use crate::policy::Policies;
use crate::report::{self, Index, Report, Term};
use crate::{Error, Result};

/// Which publication a reader asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pick {
    /// The latest.
    Latest,
    /// The one current at a data version or time.
    AsOf(AsOf),
    /// One by its number: a permanent link shows its figures forever.
    Number(u64),
}

impl From<Option<AsOf>> for Pick {
    fn from(a: Option<AsOf>) -> Pick {
        a.map_or(Pick::Latest, Pick::AsOf)
    }
}

/// A report in a publication: (report id, area code, term, a school's own view).
pub type ReportKey = (String, String, String, bool);

/// One publication: what it read and when it was made current.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    pub number: u64,
    /// The `attendance` table's version: the data version pages name.
    pub data_version: u64,
    /// Every data table's version it read.
    pub table_versions: String,
    /// The digest of what it was computed from besides the data ([`inputs_digest`]; empty
    /// for publications made before it was recorded).
    pub inputs: String,
    pub published_at: DateTime<Utc>,
}

/// A report as one publication wrote it: (publication, content digest or `None` when withdrawn,
/// where the row is stored).
type Held = (u64, Option<String>, Option<Stored>);

/// Every publication in the lake and where each report's content is stored.
#[derive(Debug, Default)]
pub struct Catalogue {
    /// The `publications` table's version this was read at.
    pub version: u64,
    /// Oldest first.
    pub publications: Vec<Publication>,
    /// Per report: the publications that wrote it, oldest first, with its content digest
    /// (`None`: withdrawn) and the data file holding it. A term's similar schools' comparison
    /// is kept here too, as the report `similar` of no area.
    reports: HashMap<ReportKey, Vec<Held>>,
    /// The similar schools' comparisons read so far, by the publication holding them and term.
    similar: std::sync::Mutex<HashMap<(u64, String), Arc<report::similar::Similar>>>,
}

impl Catalogue {
    /// Reads the catalogue at the `publications` table's latest version.
    pub async fn load(lake: &Lake) -> Result<Catalogue> {
        let (version, rows) = lake.publication_catalogue().await?;
        let mut c = Catalogue {
            version,
            ..Default::default()
        };
        let mut publications = BTreeMap::new();
        for r in rows {
            match r.report.as_str() {
                INDEX => {
                    publications.insert(
                        r.publication,
                        Publication {
                            number: r.publication,
                            data_version: r.data_version,
                            table_versions: r.table_versions,
                            inputs: r.digest,
                            published_at: r.published_at,
                        },
                    );
                }
                RELEASE | READS => {}
                _ => {
                    let digest = (!r.digest.is_empty()).then_some(r.digest);
                    c.reports
                        .entry((r.report, r.area_code, r.term, r.own))
                        .or_default()
                        .push((r.publication, digest, r.stored));
                }
            }
        }
        for history in c.reports.values_mut() {
            history.sort_by_key(|(p, _, _)| *p);
        }
        c.publications = publications.into_values().collect();
        Ok(c)
    }

    pub fn latest(&self) -> Option<&Publication> {
        self.publications.last()
    }

    /// The publication current at `as_of`: the latest, the last one of data version `v` or
    /// before, or the last one made current at or before a time.
    pub fn at(&self, as_of: Option<AsOf>) -> Result<&Publication> {
        let Some(latest) = self.latest() else {
            return Err(Error::Unavailable(
                "inga siffror är publicerade ännu: publiceringen körs efter inläsningen, \
                 försök igen om en stund"
                    .into(),
            ));
        };
        let found = match as_of {
            None => Some(latest),
            Some(AsOf::Version(v)) => self.publications.iter().rev().find(|p| p.data_version <= v),
            Some(AsOf::Time(t)) => self.publications.iter().rev().find(|p| p.published_at <= t),
        };
        found.ok_or_else(|| {
            Error::NotFound(format!(
                "ingen publicering fanns vid {}; den första gäller dataversion {} ({})",
                match as_of {
                    Some(AsOf::Version(v)) => format!("dataversion {v}"),
                    Some(AsOf::Time(t)) => t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    None => String::new(),
                },
                self.publications[0].data_version,
                self.publications[0]
                    .published_at
                    .format("%Y-%m-%d %H:%M UTC")
            ))
        })
    }

    /// The publication a reader picks: the latest, the one current at `as_of`, or one by its
    /// number (a permanent link).
    pub fn pick(&self, pick: Pick) -> Result<&Publication> {
        match pick {
            Pick::Latest => self.at(None),
            Pick::AsOf(a) => self.at(Some(a)),
            Pick::Number(n) => {
                self.at(None)?;
                self.publications
                    .iter()
                    .find(|p| p.number == n)
                    .ok_or_else(|| {
                        Error::NotFound(format!(
                            "publicering {n} finns inte; publiceringarna är 1–{}",
                            self.publications.last().map_or(0, |p| p.number)
                        ))
                    })
            }
        }
    }

    /// The publication holding `key`'s content as of publication `at`, with its digest and
    /// where it is stored; `None` when `at` does not publish it.
    pub fn holder(&self, key: &ReportKey, at: u64) -> Option<(u64, &str, Option<&Stored>)> {
        let history = self.reports.get(key)?;
        let (p, digest, stored) = history.iter().rev().find(|(p, _, _)| *p <= at)?;
        digest.as_deref().map(|d| (*p, d, stored.as_ref()))
    }

    /// The terms publication `at` has report `kind` of area `code` for, in order.
    pub fn terms(&self, kind: &str, code: &str, at: u64) -> Vec<Term> {
        let mut terms: Vec<Term> = self
            .reports
            .keys()
            .filter(|(k, c, _, own)| k == kind && c == code && !own)
            .filter(|key| self.holder(key, at).is_some())
            .filter_map(|(_, _, t, _)| t.parse().ok())
            .collect();
        terms.sort();
        terms
    }

    /// Every report publication `at` publishes, in order.
    pub fn reports_held(&self, at: u64) -> Vec<ReportKey> {
        let mut keys: Vec<ReportKey> = self
            .reports_at(at)
            .into_keys()
            .filter(|k| k.0 != SIMILAR)
            .collect();
        keys.sort();
        keys
    }

    /// Every report publication `at` publishes, with its content digest.
    fn reports_at(&self, at: u64) -> HashMap<ReportKey, String> {
        self.reports
            .keys()
            .filter_map(|k| Some((k.clone(), self.holder(k, at)?.1.to_string())))
            .collect()
    }
}

/// Report `key` as publication `at` publishes it, stamped with `at`'s data version and time.
pub async fn read_report(
    lake: &Lake,
    catalogue: &Catalogue,
    key: &ReportKey,
    at: &Publication,
) -> Result<Report> {
    let (kind, area, term, _) = key;
    let missing = || {
        let terms = catalogue.terms(kind, area, at.number);
        let Ok(spec) = report::spec(kind) else {
            return Error::NotFound(format!("rapporten '{kind}' finns inte"));
        };
        if terms.is_empty() {
            return Error::NotFound(format!("det finns {} med kod {area}", spec.area.none()));
        }
        let have: Vec<String> = terms.iter().map(|t| t.to_string()).collect();
        Error::NotFound(format!(
            "det finns inga uppgifter för {} {term}; uppgifter finns för: {}",
            report::area_label(spec.area, area),
            have.join(", ")
        ))
    };
    let body = read_body(lake, catalogue, key, at)
        .await?
        .ok_or_else(missing)?;
    let mut r: Report = serde_json::from_str(&body)?;
    r.data_version = at.data_version;
    r.generated_at = at.published_at;
    if report::similar::wanted(kind) {
        let s = similar(lake, catalogue, term, at).await?;
        report::similar::splice(&mut r, &s)?;
    }
    Ok(r)
}

/// The stored content of `key` as publication `at` publishes it; `None` when `at` does not
/// publish it.
async fn read_body(
    lake: &Lake,
    catalogue: &Catalogue,
    key: &ReportKey,
    at: &Publication,
) -> Result<Option<String>> {
    let (kind, area, term, own) = key;
    let Some((holder, _, stored)) = catalogue.holder(key, at.number) else {
        return Ok(None);
    };
    // The row where the catalogue found it, if it is still there and still this report's;
    // otherwise wherever the table holds it now.
    let direct = match stored {
        Some(at) => lake.publication_row_at(at).await?.filter(|r| {
            (r.publication, &r.report, &r.area_code, &r.term, r.own)
                == (holder, kind, area, term, *own)
        }),
        None => None,
    };
    let rows = match direct {
        Some(row) => vec![row],
        None => {
            lake.publication_rows(Some(holder), kind, Some((area, term, *own)))
                .await?
        }
    };
    Ok(rows.into_iter().find_map(|r| r.body))
}

/// The similar schools' comparison of `term` as publication `at` publishes it (none before
/// publications stored it), read once per catalogue.
async fn similar(
    lake: &Lake,
    catalogue: &Catalogue,
    term: &str,
    at: &Publication,
) -> Result<Arc<report::similar::Similar>> {
    let key = similar_key(term);
    let Some((holder, _, _)) = catalogue.holder(&key, at.number) else {
        return Ok(Arc::default());
    };
    let cached = (holder, term.to_string());
    if let Some(s) = catalogue.similar.lock().expect("similar").get(&cached) {
        return Ok(s.clone());
    }
    let Some(body) = read_body(lake, catalogue, &key, at).await? else {
        return Ok(Arc::default());
    };
    let s: Arc<report::similar::Similar> = Arc::new(serde_json::from_str(&body)?);
    catalogue
        .similar
        .lock()
        .expect("similar")
        .insert(cached, s.clone());
    Ok(s)
}

/// Where a term's similar schools' comparison is kept among the reports.
fn similar_key(term: &str) -> ReportKey {
    (SIMILAR.to_string(), String::new(), term.to_string(), false)
}

/// The index of publication `at`.
pub async fn read_index(lake: &Lake, at: &Publication) -> Result<Index> {
    let rows = lake.publication_rows(Some(at.number), INDEX, None).await?;
    let body = rows.into_iter().find_map(|r| r.body).ok_or_else(|| {
        Error::NotFound(format!("publicering {} saknar sitt register", at.number))
    })?;
    let mut index: Index = serde_json::from_str(&body)?;
    index.data_version = at.data_version;
    Ok(index)
}

/// What one run of [`publish`] did.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Published {
    pub publication: u64,
    pub data_version: u64,
    /// Reports the publication publishes.
    pub reports: usize,
    /// Reports whose content changed, written again.
    pub written: usize,
    /// Reports no longer published.
    pub withdrawn: usize,
    /// Reports built (the rest were carried over: nothing they read had changed).
    #[serde(default)]
    pub built: usize,
    /// Protected releases solved for it (the rest came from earlier publications).
    pub releases_solved: usize,
    pub seconds: f64,
}

/// Publishes the lake's latest version, unless the latest publication already shows it
/// (`None`). One publisher at a time per lake: a second waits for the first (a lock file in
/// the lake's root) and then finds nothing left to do. `protected` is the caller's store of
/// protections (the server keeps one); `progress` is told (areas and terms built, in all; a
/// school's report and its principal's view are built together).
pub async fn publish(
    lake: &Lake,
    policies: &Policies,
    protected: Arc<Protections>,
    now: DateTime<Utc>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Option<Published>> {
    publish_with(lake, policies, protected, now, progress, false).await
}

/// [`publish`], or with `rebuild` every report built again (none carried over because what
/// it read kept its digests) and published even when the latest publication shows the
/// latest version: its `written` counts the reports a publication carried over wrongly.
pub async fn publish_with(
    lake: &Lake,
    policies: &Policies,
    protected: Arc<Protections>,
    now: DateTime<Utc>,
    progress: &(dyn Fn(usize, usize) + Sync),
    rebuild: bool,
) -> Result<Option<Published>> {
    let lock = PublisherLock::acquire(lake).await?;
    let published = publish_locked(lake, policies, protected, now, progress, rebuild).await;
    // The lake's checkpoints are written here, off the upload's path ([`Lake::checkpoint_due`]);
    // the publication stands if one cannot be, and the next publisher tries again.
    if let Err(e) = lake.checkpoint_due().await {
        tracing::warn!(error = %e, "publish: checkpoint not written");
    }
    lock.release().await;
    published
}

async fn publish_locked(
    lake: &Lake,
    policies: &Policies,
    protected: Arc<Protections>,
    now: DateTime<Utc>,
    progress: &(dyn Fn(usize, usize) + Sync),
    rebuild: bool,
) -> Result<Option<Published>> {
    let started = Instant::now();
    let table_versions = lake.table_versions().await?;
    let catalogue = Catalogue::load(lake).await?;
    let inputs = inputs_digest(policies);
    if !rebuild
        && catalogue
            .latest()
            .is_some_and(|p| p.table_versions == table_versions && p.inputs == inputs)
    {
        return Ok(None);
    }
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "publish: catalogue read"
    );
    // The releases earlier publications protected: what did not change is not solved again,
    // and what changed is protected beside every earlier publication of it.
    let stored = lake.publication_rows(None, RELEASE, None).await?;
    let mut earlier: HashMap<Which, Vec<(u64, Earlier)>> = HashMap::new();
    let mut stored_keys: HashSet<(Which, [u8; 32])> = HashSet::new();
    for row in stored {
        let (Some(key), Some(body)) = (digest_bytes(&row.digest), row.body) else {
            continue;
        };
        // Rows of the first publications hold the protection alone, without its release.
        let (protection, content) = match serde_json::from_str::<StoredRelease>(&body) {
            Ok(s) => (Arc::new(s.protection), digest_bytes(&s.content)),
            Err(_) => (Arc::new(serde_json::from_str::<Protection>(&body)?), None),
        };
        protected.insert(key, protection.clone());
        if let (Some(which), Some(content)) =
            (Which::from_stored(&row.area_code, &row.term), content)
        {
            stored_keys.insert((which.clone(), key));
            earlier.entry(which).or_default().push((
                row.publication,
                Earlier {
                    content,
                    key,
                    protection,
                    table_versions: row.table_versions,
                },
            ));
        }
    }
    tracing::debug!(
        releases = earlier.len(),
        ms = started.elapsed().as_millis() as u64,
        "publish: stored releases read"
    );
    let earlier = earlier
        .into_iter()
        .map(|(which, mut e)| {
            e.sort_by_key(|(p, _)| *p);
            (which, e.into_iter().map(|(_, e)| e).collect())
        })
        .collect();
    let history = Arc::new(History::new(lake.root().clone(), policies.clone(), earlier));

    // What the latest publication's reports read, if it was computed from the same
    // definitions by the same program: a report whose reads all kept their digests is
    // carried over without being built.
    let code = program_identity();
    let mut before: HashMap<ReportKey, (Vec<Read>, String)> = HashMap::new();
    if let Some(latest) = catalogue
        .latest()
        .filter(|p| p.inputs == inputs && !rebuild)
    {
        let rows = lake
            .publication_rows(Some(latest.number), READS, None)
            .await?;
        // Reads stored by another program (perhaps in another form) are not used: every
        // report is built.
        let stored = rows.into_iter().find_map(|r| r.body);
        if let Some(stored) = stored.and_then(|b| serde_json::from_str::<StoredReads>(&b).ok())
            && stored.program == code
        {
            for j in stored.jobs {
                let reads = j.reads.iter().map(|&i| stored.reads[i as usize].clone());
                before.insert(
                    (j.kind, j.code, j.term, j.own),
                    (reads.collect(), j.fingerprint),
                );
            }
        }
    }
    let engine = Arc::new(
        Engine::open_with(lake, None, policies)
            .await?
            .sharing(protected.clone())
            .with_history(history.clone()),
    );
    // The releases the latest publication's reports read, found unchanged or protected again
    // from the start (beside the views being computed, which they do not read), one per
    // processor, those the most reports read first: the few an upload changed are then solved
    // side by side instead of one after another as reports come to need them.
    let mut warming = tokio::task::JoinSet::new();
    let mut readers: HashMap<Which, usize> = HashMap::new();
    for which in before
        .values()
        .flat_map(|(reads, _)| reads)
        .filter_map(|r| match r {
            Read::Release(county, term) => Which::from_stored(county, term),
            _ => None,
        })
    {
        *readers.entry(which).or_default() += 1;
    }
    let mut releases: Vec<(Which, usize)> = readers.into_iter().collect();
    releases.sort_by(|(a, n), (b, m)| m.cmp(n).then_with(|| a.cmp(b)));
    for (which, _) in releases {
        let engine = engine.clone();
        warming.spawn(async move {
            // An error is met again, and reported, by the report that needs the release.
            let _ = reads::untracked(crate::disclosure::release::protection(&engine, &which)).await;
        });
    }
    engine.materialize().await?;
    let index = report::index(&engine).await?;
    let jobs = jobs(&index);
    let total = jobs.len();
    progress(0, total);
    let specs: HashMap<&str, &report::ReportSpec> = ["committee", "county", "school", "data"]
        .into_iter()
        .map(|id| Ok((id, report::spec(id)?)))
        .collect::<Result<_>>()?;
    // The reports' queries each read a few rows of the computed views: one partition each,
    // the processors kept busy by building four reports at a time.
    engine
        .ctx
        .state_ref()
        .write()
        .config_mut()
        .options_mut()
        .execution
        .target_partitions = 1;
    let specs = Arc::new(specs);
    let number = catalogue.latest().map_or(1, |p| p.number + 1);
    let rules = &policies.shared.policy.disclosure;
    let rules_digest = hex::encode(Sha256::digest(serde_json::to_vec(rules)?));
    let row =
        |report: &str, area: &str, term: &str, own: bool, digest: String, body| PublicationRow {
            publication: number,
            data_version: engine.snapshot.data_version,
            table_versions: table_versions.clone(),
            published_at: now,
            report: report.into(),
            area_code: area.into(),
            term: term.into(),
            own,
            definition_id: index.definition_id.clone(),
            definition_hash: index.definition_hash.clone(),
            rules_digest: rules_digest.clone(),
            digest,
            body,
            stored: None,
        };
    let previous = catalogue
        .latest()
        .map(|p| catalogue.reports_at(p.number))
        .unwrap_or_default();
    // Rows go to the lake as they are built (only what changed), one commit at the end.
    let mut writer = lake.publication_writer(catalogue.version).await?;
    let fingerprints = Arc::new(Fingerprints::default());
    // Each report is its own task, so that the four being built use every processor.
    let mut stream = futures::stream::iter(jobs)
        .map(|job| {
            let (engine, specs, fingerprints) =
                (engine.clone(), specs.clone(), fingerprints.clone());
            let (kind, code, term, own) = job.clone();
            // A school's report and its principal's view from one run of its queries.
            let readers = if own {
                vec![None, Some(code.clone())]
            } else {
                vec![None]
            };
            let keys: Vec<ReportKey> = readers
                .iter()
                .map(|r| (kind.clone(), code.clone(), term.clone(), r.is_some()))
                .collect();
            // Carried over only when the latest publication holds every one of its reports.
            let earlier = before
                .get(&job)
                .filter(|_| keys.iter().all(|k| previous.contains_key(k)))
                .cloned();
            tokio::spawn(async move {
                if let Some((reads, fingerprint)) = earlier
                    && fingerprints.of(&engine, &reads).await?.as_deref() == Some(&fingerprint)
                {
                    return Ok(Job {
                        job,
                        keys,
                        built: None,
                        reads,
                        fingerprint: Some(fingerprint),
                    });
                }
                let t: Term = term.parse().map_err(Error::usage)?;
                let started = Instant::now();
                let readers: Vec<Option<&str>> = readers.iter().map(|r| r.as_deref()).collect();
                let (reports, read) = reads::tracked(report::build_views(
                    &engine,
                    specs[kind.as_str()],
                    &code,
                    t,
                    DateTime::UNIX_EPOCH,
                    &readers,
                ))
                .await;
                let reports =
                    reports.map_err(|e| Error::usage(format!("{kind} {code} {term}: {e}")))?;
                tracing::debug!(
                    %kind, %code, %term,
                    ms = started.elapsed().as_millis() as u64,
                    "publish: report built"
                );
                let reads = read.inputs();
                let fingerprint = fingerprints.of(&engine, &reads).await?;
                let built = reports
                    .into_iter()
                    .map(normalised)
                    .collect::<Result<Vec<_>>>()?;
                Ok::<_, Error>(Job {
                    job,
                    keys,
                    built: Some(built),
                    reads,
                    fingerprint,
                })
            })
        })
        .buffer_unordered(4);
    let (mut done, mut reports, mut written, mut built) = (0, 0, 0, 0);
    let mut published = std::collections::HashSet::new();
    let mut stored_reads = StoredReads {
        program: code,
        ..Default::default()
    };
    let mut read_ids: HashMap<Read, u32> = HashMap::new();
    while let Some(b) = stream.next().await {
        let b = b.map_err(|e| Error::usage(format!("en rapport kunde inte byggas: {e}")))??;
        if let Some(views) = &b.built {
            built += views.len();
            for (key, (body, digest)) in b.keys.iter().zip(views) {
                if previous.get(key) != Some(digest) {
                    let (kind, area, term, own) = key;
                    writer
                        .push(row(
                            kind,
                            area,
                            term,
                            *own,
                            digest.clone(),
                            Some(body.clone()),
                        ))
                        .await?;
                    written += 1;
                }
            }
        }
        reports += b.keys.len();
        published.extend(b.keys);
        if let Some(fingerprint) = b.fingerprint {
            let (kind, code, term, own) = b.job;
            let ids = b
                .reads
                .into_iter()
                .map(|r| {
                    let next = read_ids.len() as u32;
                    *read_ids.entry(r.clone()).or_insert_with(|| {
                        stored_reads.reads.push(r);
                        next
                    })
                })
                .collect();
            stored_reads.jobs.push(StoredJob {
                kind,
                code,
                term,
                own,
                reads: ids,
                fingerprint,
            });
        }
        done += 1;
        progress(done, total);
    }
    drop(stream);
    warming.shutdown().await;
    // Every term's similar schools' comparison, which the school reports leave to their readers.
    let terms: BTreeSet<Term> = index
        .counties
        .iter()
        .flat_map(|c| &c.municipalities)
        .flat_map(|m| &m.schools)
        .flat_map(|s| s.terms.iter().copied())
        .collect();
    for term in terms {
        let similar = report::similar::Similar::query(&engine, term).await?;
        let body = serde_json::to_string(&similar)?;
        let digest = hex::encode(Sha256::digest(body.as_bytes()));
        let key = similar_key(&term.to_string());
        if previous.get(&key) != Some(&digest) {
            writer
                .push(row(SIMILAR, "", &key.2, false, digest, Some(body)))
                .await?;
        }
        published.insert(key);
    }
    stored_reads.jobs.sort_by(|a, b| {
        (&a.kind, &a.code, &a.term, a.own).cmp(&(&b.kind, &b.code, &b.term, b.own))
    });
    writer
        .push(row(
            READS,
            "",
            "",
            false,
            String::new(),
            Some(serde_json::to_string(&stored_reads)?),
        ))
        .await?;
    let mut withdrawn = 0;
    for (kind, area, term, own) in previous.keys() {
        let key = (kind.clone(), area.clone(), term.clone(), *own);
        if !published.contains(&key) {
            writer
                .push(row(kind, area, term, *own, String::new(), None))
                .await?;
            withdrawn += 1;
        }
    }
    writer
        .push(row(
            INDEX,
            "",
            "",
            false,
            inputs,
            Some(serde_json::to_string(&index)?),
        ))
        .await?;
    let mut releases_solved = 0;
    for used in history.used() {
        releases_solved += usize::from(used.solved);
        if !stored_keys.insert((used.which.clone(), used.key)) {
            continue;
        }
        let body = StoredRelease {
            content: hex::encode(used.content),
            protection: used.protection.as_ref().clone(),
        };
        writer
            .push(row(
                RELEASE,
                &used.which.county,
                &used.which.stored_term(),
                false,
                hex::encode(used.key),
                Some(serde_json::to_string(&body)?),
            ))
            .await?;
    }
    writer.commit().await?;
    Ok(Some(Published {
        publication: number,
        data_version: engine.snapshot.data_version,
        reports,
        written,
        withdrawn,
        built,
        releases_solved,
        seconds: started.elapsed().as_secs_f64(),
    }))
}

/// The digest of what a publication is computed from besides the data: the report
/// definitions and indicator views compiled into this binary and every policy (the disclosure
/// rules and the overview's classes included). A new release of narvaro or a changed policy
/// publishes again even when no data changed; unchanged reports are still carried over.
pub fn inputs_digest(policies: &Policies) -> String {
    let mut h = Sha256::new();
    for (name, text) in report::spec::REPORTS
        .iter()
        .chain(crate::engine::VIEWS.iter())
    {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    h.update(format!("{policies:?}").as_bytes());
    hex::encode(h.finalize())
}

/// Every report the index lists: each county's county report and open data (the tables the
/// indicator APIs serve), each municipality's committee report, each school's report and (`true`) its principal's view, for every term with data.
fn jobs(index: &Index) -> Vec<ReportKey> {
    let mut out = Vec::new();
    let mut add = |kind: &str, code: &str, terms: &[Term], own: bool| {
        for t in terms {
            out.push((kind.to_string(), code.to_string(), t.to_string(), own));
        }
    };
    for c in &index.counties {
        add("county", &c.area.code, &c.area.terms, false);
        add("data", &c.area.code, &c.area.terms, false);
        for m in &c.municipalities {
            add("committee", &m.area.code, &m.area.terms, false);
            for s in &m.schools {
                add("school", &s.code, &s.terms, true);
            }
        }
    }
    out
}

/// Per data table, every version a publication of the lake was computed from: what
/// `narvaro lake vacuum` keeps readable.
pub async fn versions_in_use(lake: &Lake) -> Result<HashMap<String, Vec<u64>>> {
    let catalogue = Catalogue::load(lake).await?;
    let mut out: HashMap<String, BTreeSet<u64>> = HashMap::new();
    for p in &catalogue.publications {
        for (table, v) in Lake::parse_table_versions(&p.table_versions)? {
            out.entry(table.to_string()).or_default().insert(v);
        }
    }
    Ok(out
        .into_iter()
        .map(|(t, v)| (t, v.into_iter().collect()))
        .collect())
}

/// A report's content as stored (without the version and time it is served with) and its
/// digest.
/// One report job's outcome: its reports (`built`, with their bodies and digests) or carried
/// over (`None`), and what it read with their fingerprint (`None`: not all could be told).
struct Job {
    job: ReportKey,
    keys: Vec<ReportKey>,
    built: Option<Vec<(String, String)>>,
    reads: Vec<Read>,
    fingerprint: Option<String>,
}

/// The `reads` row: every report job's reads (ids into `reads`) and their fingerprint.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct StoredReads {
    /// The program that published ([`program_identity`]): another one may build reports
    /// differently from the same reads.
    program: String,
    reads: Vec<Read>,
    jobs: Vec<StoredJob>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredJob {
    kind: String,
    code: String,
    term: String,
    own: bool,
    reads: Vec<u32>,
    fingerprint: String,
}

/// This program: its version, and its executable's size and modification time (a rebuilt
/// binary builds its reports again).
fn program_identity() -> String {
    let exe = std::env::current_exe()
        .and_then(std::fs::metadata)
        .ok()
        .map(|m| {
            let modified = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{}:{modified}", m.len())
        })
        .unwrap_or_default();
    format!("{}:{exe}", env!("CARGO_PKG_VERSION"))
}

/// The fingerprints of report jobs' reads at the publisher's engine, each read's digest
/// computed once (a release's protection solved, or taken from the store, as building would;
/// a policy table collected once, not once a report).
#[derive(Default)]
struct Fingerprints {
    digests: tokio::sync::Mutex<HashMap<Read, Option<[u8; 32]>>>,
}

impl Fingerprints {
    /// The digest of every read's digest (`None` when one cannot be told).
    async fn of(&self, engine: &Engine, reads: &[Read]) -> Result<Option<String>> {
        let mut h = Sha256::new();
        for read in reads {
            let Some(digest) = self.digest(engine, read).await? else {
                tracing::debug!(?read, "publish: a read whose digest cannot be told");
                return Ok(None);
            };
            tracing::trace!(?read, digest = %hex::encode(digest), "publish: read");
            h.update(serde_json::to_vec(read)?);
            h.update(digest);
        }
        Ok(Some(hex::encode(h.finalize())))
    }

    /// One read's digest (the lock is not held while it is computed: a release may take long).
    async fn digest(&self, engine: &Engine, read: &Read) -> Result<Option<[u8; 32]>> {
        if let Some(d) = self.digests.lock().await.get(read) {
            return Ok(*d);
        }
        let digest = match read {
            Read::Release(county, term) => match Which::from_stored(county, term) {
                Some(which) => {
                    let p =
                        reads::untracked(crate::disclosure::release::protection(engine, &which))
                            .await?;
                    let status: BTreeMap<&String, &crate::disclosure::Status> =
                        p.status.iter().collect();
                    let bounds: BTreeMap<&String, &(i64, i64)> = p.bounds.iter().collect();
                    let body = serde_json::to_vec(&(&p.rules, status, bounds))?;
                    Some(Sha256::digest(&body).into())
                }
                None => None,
            },
            _ => engine.read_digest(read).await?,
        };
        self.digests.lock().await.insert(read.clone(), digest);
        Ok(digest)
    }
}

fn normalised(mut r: Report) -> Result<(String, String)> {
    r.data_version = 0;
    r.generated_at = DateTime::UNIX_EPOCH;
    let body = serde_json::to_string(&r)?;
    let digest = hex::encode(Sha256::digest(body.as_bytes()));
    Ok((body, digest))
}

/// A `release` row's content: the protection, and the digest of the release it protects.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredRelease {
    content: String,
    protection: Protection,
}

fn digest_bytes(hex: &str) -> Option<[u8; 32]> {
    hex::decode(hex).ok()?.try_into().ok()
}

/// The lake's publisher lock. On a local lake an OS file lock on `ROOT/.publisher.lock`,
/// released when the guard is dropped or the process ends. In object storage, where several
/// servers share the lake, a lease: the object `_narvaro/publisher.lease` created only if
/// absent (a conditional write), refreshed while the publisher runs and deleted when it ends;
/// a lease not refreshed for [`LEASE`] (its holder died) is taken over.
enum PublisherLock {
    File(std::fs::File),
    Lease {
        store: Arc<dyn deltalake::ObjectStore>,
        refresh: tokio::task::JoinHandle<()>,
    },
}

/// How long a publisher's lease in object storage holds without being refreshed.
const LEASE: std::time::Duration = std::time::Duration::from_secs(60);

fn lease_path() -> deltalake::Path {
    deltalake::Path::from("_narvaro/publisher.lease")
}

impl PublisherLock {
    async fn acquire(lake: &Lake) -> Result<PublisherLock> {
        let Some(root) = lake.root().local() else {
            return Self::lease(lake.store()?).await;
        };
        let path = root.join(".publisher.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(PublisherLock::File(file)),
                Err(std::fs::TryLockError::WouldBlock) => {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
        }
    }

    async fn lease(store: Arc<dyn deltalake::ObjectStore>) -> Result<PublisherLock> {
        use deltalake::ObjectStoreError;
        use deltalake::logstore::object_store::{ObjectStoreExt, PutMode, PutOptions};
        let unavailable = |e: ObjectStoreError| {
            Error::Unavailable(format!("the publisher's lease ({}): {e}", lease_path()))
        };
        let holder = || format!("{} {}\n", std::process::id(), Utc::now().to_rfc3339()).into();
        loop {
            let create = PutOptions::from(PutMode::Create);
            match store.put_opts(&lease_path(), holder(), create).await {
                Ok(_) => break,
                Err(
                    ObjectStoreError::AlreadyExists { .. } | ObjectStoreError::Precondition { .. },
                ) => {
                    match store.head(&lease_path()).await {
                        Ok(meta) => {
                            let age = (Utc::now() - meta.last_modified)
                                .to_std()
                                .unwrap_or_default();
                            if age > LEASE {
                                tracing::warn!(
                                    age_s = age.as_secs(),
                                    "publish: taking over a lapsed lease"
                                );
                                // S3 has no conditional delete: the next create decides
                                // between takers, and should two publishers still overlap,
                                // the second's commit fails (see `publication_writer`).
                                let _ = store.delete(&lease_path()).await;
                                continue;
                            }
                        }
                        Err(ObjectStoreError::NotFound { .. }) => continue,
                        Err(e) => return Err(unavailable(e)),
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                Err(e) => return Err(unavailable(e)),
            }
        }
        let refresh = tokio::spawn({
            let store = store.clone();
            async move {
                loop {
                    tokio::time::sleep(LEASE / 6).await;
                    if let Err(e) = store.put(&lease_path(), holder()).await {
                        tracing::warn!(error = %e, "publish: refreshing the lease");
                    }
                }
            }
        });
        Ok(PublisherLock::Lease { store, refresh })
    }

    /// Ends the lock: a lease is deleted at once (dropped, it lapses after [`LEASE`]).
    async fn release(self) {
        use deltalake::logstore::object_store::ObjectStoreExt;
        if let PublisherLock::Lease { store, refresh } = &self {
            refresh.abort();
            if let Err(e) = store.delete(&lease_path()).await {
                tracing::warn!(error = %e, "publish: deleting the lease");
            }
        }
    }
}

impl Drop for PublisherLock {
    fn drop(&mut self) {
        match self {
            PublisherLock::File(file) => {
                let _ = file.unlock();
            }
            PublisherLock::Lease { refresh, .. } => refresh.abort(),
        }
    }
}
