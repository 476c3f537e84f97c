//! A county's release for one period and window, built from the lake: the pupil counts the
//! reports publish (pupils in total and by gender, pupils at or above each shared level and
//! each staircase step in percent of the window) for every school, municipality and the
//! county, all as sums of the uploaded groups' band counts (the inner cells); a month's
//! release also holds the actions the schools reported that month. The whole lake's statuses
//! follow from every county's.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Int64Type};

use std::sync::{Arc, Mutex};

use super::key::{Area, CellKey, Level};
use super::{Cell, Kind, Protection, Release, Rules};
use crate::Result;
use crate::engine::Engine;

/// One uploaded group's row: where it belongs and its band counts.
#[derive(Debug, Clone)]
pub struct Row {
    pub school: String,
    pub municipality: String,
    pub grade: String,
    pub gender: String,
    pub bands: Vec<i64>,
    /// Whether the school's figures are confidential ([`Rules::confidential_organisers`]).
    pub confidential: bool,
}

/// The bands between the shared levels' thresholds, e.g. `0-9`, `10-14`, `15-19`, `20-49`,
/// `50-100` for 10, 15, 20 and 50 %.
pub fn band_edges(levels: &[u32]) -> Vec<(u32, u32)> {
    let mut edges: Vec<u32> = levels.iter().copied().filter(|l| *l > 0).collect();
    edges.sort_unstable();
    edges.dedup();
    let mut out = Vec::new();
    let mut from = 0;
    for e in edges {
        out.push((from, e - 1));
        from = e;
    }
    out.push((from, 100));
    out
}

/// Builds the release of county `county` for `period` and `window` from the engine, its
/// period's groups read for every county at once ([`Groups`]).
pub async fn county_release(
    engine: &Engine,
    county: &str,
    period: &str,
    window: &str,
) -> Result<Release> {
    release_of(engine, county, period, window, true).await
}

/// The release of `county`, its groups read for every county or for it alone.
async fn release_of(
    engine: &Engine,
    county: &str,
    period: &str,
    window: &str,
    every_county: bool,
) -> Result<Release> {
    for v in [county, period, window] {
        debug_assert!(
            v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
    // The staircases' steps in percent for this window are published beside the shared
    // levels (`kommun:CODE|T|minst12`), so their thresholds are band edges too.
    let steps = engine
        .sql(&format!(
            "SELECT DISTINCT CAST(band AS BIGINT) FROM local_steps WHERE measure = 'percent' \
             AND \"window\" = '{window}' AND band IS NOT NULL \
             AND (county_code = '{county}' OR (municipality_code IS NULL AND county_code IS NULL) \
                  OR municipality_code IN \
                     (SELECT municipality_code FROM municipalities WHERE county_code = '{county}'))"
        ))
        .await?;
    let edges = band_edges(&with_steps(&engine.levels, &steps));
    let (fine, rows) = if every_county {
        engine.groups.take(engine, county, period, window).await?
    } else {
        alone(engine, county, period, window).await?
    };
    let rows = coarsened(rows, &fine, &edges);
    let mut release = build(&rows, county, &edges);
    if window == "month" {
        let actions = month_actions(engine, period, &rows).await?;
        let high = engine
            .sql("SELECT CAST(percent AS BIGINT) FROM levels WHERE level_id = 'hog'")
            .await?;
        let high = high
            .iter()
            .find(|b| b.num_rows() > 0)
            .map(|b| b.column(0).as_primitive::<Int64Type>().value(0) as u32);
        if let Some(high) = high {
            add_actions(&mut release, &rows, &actions, county, &edges, high);
        }
    }
    Ok(release)
}

/// The shared levels and the steps (one `BIGINT` column), as band edges in percent.
fn with_steps(levels: &[u32], steps: &[arrow::record_batch::RecordBatch]) -> Vec<u32> {
    let mut levels = levels.to_vec();
    for b in steps {
        let a = b.column(0).as_primitive::<Int64Type>();
        levels.extend((0..b.num_rows()).map(|i| a.value(i).clamp(0, 100) as u32));
    }
    levels
}

/// `rows` counted in the bands `fine` with their counts summed into the wider bands `edges`
/// (each of whose lower edges is one of `fine`'s).
fn coarsened(rows: Vec<Row>, fine: &[(u32, u32)], edges: &[(u32, u32)]) -> Vec<Row> {
    if fine == edges {
        return rows;
    }
    // The wide band each fine band lies in.
    let into: Vec<usize> = fine
        .iter()
        .map(|(lo, _)| edges.iter().rposition(|(e, _)| e <= lo).unwrap_or(0))
        .collect();
    debug_assert!(
        edges
            .iter()
            .all(|(e, _)| fine.iter().any(|(lo, _)| lo == e))
    );
    rows.into_iter()
        .map(|mut r| {
            let mut bands = vec![0; edges.len()];
            for (b, n) in r.bands.iter().enumerate() {
                bands[into[b]] += n;
            }
            r.bands = bands;
            r
        })
        .collect()
}

/// The uploaded groups of periods and windows, each read once for every county's release
/// of it: a county's groups are found by the register (the county is not in `attendance`),
/// so reading one county's reads the whole period's histograms, and a national publication
/// builds the same period's release for 21 counties. Each county's groups are held until its
/// release takes them; one taken again (rare: an operator's audit) is read again alone.
#[derive(Default)]
pub struct Groups {
    periods: Mutex<HashMap<(String, String), Arc<PeriodCell>>>,
}

/// A period and window's groups, read by the first release that needs them.
type PeriodCell = tokio::sync::OnceCell<Mutex<PeriodGroups>>;

/// One period and window's groups.
struct PeriodGroups {
    /// The bands they are counted in: between every shared level and every staircase step
    /// in percent of the window, in any county.
    edges: Vec<(u32, u32)>,
    /// Each county's groups, by school, grade and gender, until its release takes them.
    counties: HashMap<String, Vec<Row>>,
    taken: BTreeSet<String>,
}

impl Groups {
    /// County `county`'s groups in `period` and `window`, with the bands they are counted in.
    async fn take(
        &self,
        engine: &Engine,
        county: &str,
        period: &str,
        window: &str,
    ) -> Result<(Vec<(u32, u32)>, Vec<Row>)> {
        let cell = self
            .periods
            .lock()
            .expect("groups")
            .entry((period.into(), window.into()))
            .or_default()
            .clone();
        let all = cell
            .get_or_try_init(|| async {
                read_groups(engine, None, period, window)
                    .await
                    .map(Mutex::new)
            })
            .await?;
        {
            let mut all = all.lock().expect("groups");
            if all.taken.insert(county.into()) {
                let rows = all.counties.remove(county).unwrap_or_default();
                return Ok((all.edges.clone(), rows));
            }
        }
        alone(engine, county, period, window).await
    }
}

/// County `county`'s groups in `period` and `window`, read for it alone.
async fn alone(
    engine: &Engine,
    county: &str,
    period: &str,
    window: &str,
) -> Result<(Vec<(u32, u32)>, Vec<Row>)> {
    let mut one = read_groups(engine, Some(county), period, window).await?;
    let rows = one.counties.remove(county).unwrap_or_default();
    Ok((one.edges, rows))
}

/// The groups of `period` and `window` in every county, or in `county` alone.
async fn read_groups(
    engine: &Engine,
    county: Option<&str>,
    period: &str,
    window: &str,
) -> Result<PeriodGroups> {
    let only = county.map_or(String::new(), |c| format!("AND county_code = '{c}'"));
    let batches = engine
        .sql(&format!(
            "SELECT county_code, school_unit_code, municipality_code, grade, gender, pct_total, \
             organiser_type FROM school_attendance WHERE period = '{period}' \
             AND \"window\" = '{window}' {only} \
             ORDER BY county_code, school_unit_code, grade, gender"
        ))
        .await?;
    let steps = engine
        .sql(&format!(
            "SELECT DISTINCT CAST(band AS BIGINT) FROM local_steps WHERE measure = 'percent' \
             AND \"window\" = '{window}' AND band IS NOT NULL"
        ))
        .await?;
    let edges = band_edges(&with_steps(&engine.levels, &steps));
    let mut counties: HashMap<String, Vec<Row>> = HashMap::new();
    for b in &batches {
        let text = |c: usize| {
            let a = arrow::compute::cast(b.column(c), &DataType::Utf8).expect("text");
            a.as_string::<i32>().clone()
        };
        let (county_of, school, muni, grade, gender) =
            (text(0), text(1), text(2), text(3), text(4));
        let organiser = text(6);
        let hist = b.column(5).as_list::<i32>();
        for r in 0..b.num_rows() {
            let h = arrow::compute::cast(&hist.value(r), &DataType::Int64)?;
            let h = h.as_primitive::<Int64Type>();
            let bands = edges
                .iter()
                .map(|(lo, hi)| (*lo..=*hi).map(|p| h.value(p as usize)).sum())
                .collect();
            let row = Row {
                school: school.value(r).to_string(),
                municipality: muni.value(r).to_string(),
                grade: grade.value(r).to_string(),
                gender: gender.value(r).to_string(),
                bands,
                confidential: engine
                    .rules
                    .confidential_organisers
                    .contains(organiser.value(r)),
            };
            match counties.get_mut(county_of.value(r)) {
                Some(rows) => rows.push(row),
                None => {
                    counties.insert(county_of.value(r).to_string(), vec![row]);
                }
            }
        }
    }
    Ok(PeriodGroups {
        edges,
        counties,
        taken: BTreeSet::new(),
    })
}

/// The actions the schools of `rows` reported for the month `period`.
async fn month_actions(engine: &Engine, period: &str, rows: &[Row]) -> Result<Vec<Actions>> {
    let kinds = crate::contract::schema::ACTIONS
        .iter()
        .map(|a| format!("CAST({a} AS BIGINT)"))
        .collect::<Vec<_>>()
        .join(", ");
    let batches = engine
        .sql(&format!(
            "SELECT school_unit_code, {kinds} FROM actions WHERE period = '{period}' \
             ORDER BY school_unit_code"
        ))
        .await?;
    let municipality: BTreeMap<&str, &str> = rows
        .iter()
        .map(|r| (r.school.as_str(), r.municipality.as_str()))
        .collect();
    let mut out = Vec::new();
    for b in &batches {
        let school = arrow::compute::cast(b.column(0), &DataType::Utf8)?;
        let school = school.as_string::<i32>();
        for r in 0..b.num_rows() {
            // As in the `escalation` view: a school's actions count with its attendance.
            let Some(m) = municipality.get(school.value(r)) else {
                continue;
            };
            let mut counts = [0; ACTION_KINDS];
            for (k, c) in counts.iter_mut().enumerate() {
                *c = b.column(k + 1).as_primitive::<Int64Type>().value(r);
            }
            out.push(Actions {
                school: school.value(r).to_string(),
                municipality: m.to_string(),
                counts,
            });
        }
    }
    Ok(out)
}

const ACTION_KINDS: usize = crate::contract::schema::ACTIONS.len();

/// One school's reported actions for a month, by kind in the order of
/// [`crate::contract::schema::ACTIONS`].
#[derive(Debug, Clone)]
pub struct Actions {
    pub school: String,
    pub municipality: String,
    pub counts: [i64; ACTION_KINDS],
}

/// Adds a month's reported actions to that month's release: each school's count of each kind
/// (new inner cells), summed per municipality and county by kind (`kommun:CODE|åtgärd|sip`)
/// and per school, municipality and county over every kind (`…|åtgärd|alla`), and the pupils
/// at or above the high level `high` in the schools that reported (`kommun:CODE|R|minst20`),
/// which actions per 100 pupils rest on.
pub fn add_actions(
    release: &mut Release,
    rows: &[Row],
    actions: &[Actions],
    county: &str,
    edges: &[(u32, u32)],
    high: u32,
) {
    let nb = edges.len();
    let Some(from) = edges.iter().position(|(lo, _)| *lo == high) else {
        return;
    };
    // Each school's and municipality's locality id, as `build` gave them.
    let ids = |level: usize, name: fn(&Row) -> &str| -> BTreeMap<String, u32> {
        rows.iter()
            .enumerate()
            .map(|(i, r)| (name(r).to_string(), release.localities[level][i * nb]))
            .collect()
    };
    let (school_id, muni_id) = (ids(0, |r| &r.school), ids(1, |r| &r.municipality));
    let first = release.values.len();
    for a in actions {
        release.values.extend(a.counts);
        for kind in crate::contract::schema::ACTIONS {
            release.names.push(format!("{}|åtgärd|{kind}", a.school));
            release.localities[0].push(school_id[&a.school]);
            release.localities[1].push(muni_id[&a.municipality]);
        }
    }
    let areas = areas(
        actions
            .iter()
            .map(|a| (a.school.as_str(), a.municipality.as_str())),
        county,
    );
    for (area, members) in &areas {
        let is_area = area.level != Level::School;
        let schools = members.len();
        // The reporting schools' groups: the pupils the actions are set against.
        let in_area: BTreeSet<&str> = members
            .iter()
            .map(|&m| actions[m].school.as_str())
            .collect();
        let groups: Vec<usize> = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| in_area.contains(r.school.as_str()))
            .map(|(i, _)| i)
            .collect();
        let confidential = schools_of(rows, &groups).1;
        let base: i64 = groups
            .iter()
            .map(|&i| rows[i].bands.iter().sum::<i64>())
            .sum();
        let (value, inner) = at_or_above(rows, &groups, from, nb);
        release.cells.push(Cell {
            key: area.cell(format_args!("R|minst{high}")),
            kind: Kind::Band,
            value,
            base,
            schools,
            confidential,
            area: is_area,
            inner,
        });
        // A school's actions by kind are not published: with its total and the areas' counts
        // by kind both out, the many small counts would pin each other and take the areas'
        // figures with them. Its own principal sees them (`own_only` in a report).
        let by_kind = crate::contract::schema::ACTIONS
            .iter()
            .enumerate()
            .map(|(k, name)| (*name, vec![k]))
            .filter(|_| is_area);
        let kinds = [("alla", (0..ACTION_KINDS).collect())]
            .into_iter()
            .chain(by_kind);
        for (name, ks) in kinds {
            let inner: Vec<usize> = members
                .iter()
                .flat_map(|&m| ks.iter().map(move |&k| first + m * ACTION_KINDS + k))
                .collect();
            release.cells.push(Cell {
                key: area.cell(format_args!("åtgärd|{name}")),
                kind: Kind::Count,
                value: inner.iter().map(|&i| release.values[i]).sum(),
                base,
                schools,
                confidential,
                area: is_area,
                inner,
            });
        }
    }
}

/// Protections already computed, by a digest of the release and rules they protect:
/// protection is a function of those alone, so a county whose release an upload did not
/// change (another county's school, a later month) keeps its protection across data versions.
/// The digest (SHA-256) keeps an entry small: the release itself is megabytes for a large
/// county, and a county report over ten years needs hundreds of releases. One owner keeps
/// it: the server's state shares one with every engine it opens
/// ([`crate::engine::Engine::sharing`]); a command's engine has its own.
#[derive(Debug, Default)]
pub struct Protections {
    entries: Mutex<Vec<([u8; 32], Arc<Protection>)>>,
}

impl Protections {
    fn get(&self, key: &[u8; 32]) -> Option<Arc<Protection>> {
        let entries = self.entries.lock().expect("cache");
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, p)| p.clone())
    }

    /// Every protection kept, with its digest (the publisher stores them).
    pub fn entries(&self) -> Vec<([u8; 32], Arc<Protection>)> {
        self.entries.lock().expect("cache").clone()
    }

    /// Adds a stored protection under its digest, unless one is kept already.
    pub fn insert(&self, key: [u8; 32], p: Arc<Protection>) {
        if self.get(&key).is_none() {
            self.keep(key, p);
        }
    }

    /// Keeps `p` under `key`, forgetting the oldest beyond [`KEEP`].
    fn keep(&self, key: [u8; 32], p: Arc<Protection>) {
        let mut entries = self.entries.lock().expect("cache");
        if entries.len() >= KEEP {
            entries.remove(0);
        }
        entries.push((key, p));
    }
}

/// How many protections [`Protections`] keeps, the most recently computed.
const KEEP: usize = 2048;

/// The digest of everything a protection depends on, but [`Rules::insiders`]: left out on
/// purpose, so that turning it on (the default since 2026-12-07) leaves a release whose content
/// stands with the statuses it was published with. What it showed is known; hiding more of it
/// now would protect nothing and cost a whole publication's solving.
fn digest(release: &Release, rules: &Rules) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let int = |h: &mut Sha256, x: i64| h.update(x.to_le_bytes());
    for x in [
        rules.min_pupils,
        rules.max_hidden_count,
        rules.dominance,
        rules.min_schools as i64,
        rules.protection,
        i64::from(rules.confidential_organisers.bits()),
    ] {
        int(&mut h, x);
    }
    int(&mut h, release.values.len() as i64);
    for v in &release.values {
        int(&mut h, *v);
    }
    for level in &release.localities {
        int(&mut h, level.len() as i64);
        for id in level {
            int(&mut h, i64::from(*id));
        }
    }
    int(&mut h, release.cells.len() as i64);
    for c in &release.cells {
        int(&mut h, c.key.len() as i64);
        h.update(c.key.as_bytes());
        for x in [
            c.kind as i64,
            c.value,
            c.base,
            c.schools as i64,
            c.confidential as i64,
            i64::from(c.area),
            c.inner.len() as i64,
        ] {
            int(&mut h, x);
        }
        for i in &c.inner {
            int(&mut h, *i as i64);
        }
    }
    h.finalize().into()
}

/// Which release a cell lies in: its county's figures for one period in one window
/// (`term`, cumulative from the term's start, or `month`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Which {
    pub county: String,
    pub period: String,
    pub window: String,
}

impl Which {
    /// The term window of `county` up to `period`.
    pub fn term(county: &str, period: &str) -> Which {
        Which {
            county: county.into(),
            period: period.into(),
            window: "term".into(),
        }
    }

    /// Its period and window as a `release` row of `publications` names them
    /// (`2026-03/term`, beside the county in `area_code`).
    pub fn stored_term(&self) -> String {
        format!("{}/{}", self.period, self.window)
    }

    /// The release a `release` row is of, from its `area_code` and `term`.
    pub fn from_stored(county: &str, term: &str) -> Option<Which> {
        let (period, window) = term.split_once('/')?;
        (!county.is_empty()).then(|| Which {
            county: county.into(),
            period: period.into(),
            window: window.into(),
        })
    }
}

/// The code [`Which::county`] takes for the whole lake (every county in it), whose cells are
/// `riket:00|…`.
pub const COUNTRY: &str = "00";

/// The protected release `which` at the engine's data version, computed once per session
/// (reports that ask for it while it is being computed wait for that one), and once per owner
/// of the engine's [`Protections`] for the same release. The solving runs on a blocking
/// thread, so a large county does not hold up the server's other requests.
pub async fn protection(engine: &Engine, which: &Which) -> Result<Arc<Protection>> {
    if which.county == COUNTRY {
        once(engine, which, country(engine, which)).await
    } else {
        once(engine, which, county(engine, which)).await
    }
}

/// `which`'s protection from the engine's session cache, computed by `compute` unless it
/// is there or being computed.
async fn once(
    engine: &Engine,
    which: &Which,
    compute: impl std::future::Future<Output = Result<Arc<Protection>>>,
) -> Result<Arc<Protection>> {
    let cell = engine
        .protections
        .lock()
        .expect("cache")
        .entry(which.clone())
        .or_default()
        .clone();
    cell.get_or_try_init(|| compute).await.cloned()
}

/// The country's figures are the sums of the counties' (`riket:00|T|minst15` of every
/// `län:C|T|minst15`): published only when every county's is, so no county's hidden figure is
/// the country's less the others'.
async fn country(engine: &Engine, which: &Which) -> Result<Arc<Protection>> {
    let batches = engine
        .sql(&format!(
            "SELECT DISTINCT county_code FROM school_attendance WHERE period = '{}' \
             AND \"window\" = '{}' ORDER BY county_code",
            which.period, which.window
        ))
        .await?;
    let mut codes = Vec::new();
    for b in &batches {
        let a = arrow::compute::cast(b.column(0), &DataType::Utf8)?;
        let a = a.as_string::<i32>();
        codes.extend((0..b.num_rows()).map(|i| a.value(i).to_string()));
    }
    let counties = futures::future::try_join_all(codes.iter().map(|c| {
        let w = Which {
            county: c.clone(),
            ..which.clone()
        };
        async move {
            once(engine, &w, county(engine, &w))
                .await
                .map(|p| (c.as_str(), p))
        }
    }))
    .await?;
    Ok(Arc::new(sum_of_counties(&counties, &engine.rules)))
}

/// The country's statuses from its counties': `riket:00|M` is published when every county's
/// `län:C|M` is, and hidden (secondary) otherwise.
pub fn sum_of_counties<C: AsRef<str>>(
    counties: &[(C, Arc<Protection>)],
    rules: &Rules,
) -> Protection {
    let mut status: std::collections::HashMap<String, super::Status> = Default::default();
    let country = Area::new(Level::Country, COUNTRY);
    for (code, p) in counties {
        for (key, s) in &p.status {
            let Some(k) = CellKey::parse(key) else {
                continue;
            };
            if k.level == Level::County && k.code == code.as_ref() {
                let c = status
                    .entry(country.cell(k.measure))
                    .or_insert(super::Status::Published);
                if !s.published() {
                    *c = super::Status::Secondary;
                }
            }
        }
    }
    Protection {
        rules: *rules,
        status,
        ..Default::default()
    }
}

/// One county's protected release: protected alone, or beside what earlier publications
/// published of it when the engine has a [`History`].
async fn county(engine: &Engine, which: &Which) -> Result<Arc<Protection>> {
    let _permit = engine
        .solving
        .acquire()
        .await
        .map_err(|_| crate::Error::Unavailable("servern stängs av".into()))?;
    let release = county_release(engine, &which.county, &which.period, &which.window).await?;
    let rules = engine.rules;
    let content = digest(&release, &rules);
    let earlier: &[Earlier] = engine.history.as_deref().map_or(&[], |h| h.of(which));
    // Unchanged since the last publication: its statuses stand (they were solved beside every
    // publication before it). Changed: solved beside every earlier publication.
    let (key, stored) = match earlier.last() {
        None => (content, None),
        Some(last) if last.content == content => (last.key, Some(last.protection.clone())),
        Some(_) => (beside_key(&content, earlier), None),
    };
    let found = stored.or_else(|| engine.protected.get(&key));
    let solved = found.is_none();
    let p = match found {
        Some(p) => p,
        None => {
            let started = std::time::Instant::now();
            let mut before = Vec::new();
            if let Some(history) = &engine.history {
                for e in earlier {
                    before.push((history.release(which, e).await?, e.protection.clone()));
                }
            }
            let earlier_ms = started.elapsed().as_millis() as u64;
            let cells = release.cells.len();
            let p = tokio::task::spawn_blocking(move || {
                let pairs: Vec<(&Release, &Protection)> =
                    before.iter().map(|(r, p)| (r, p.as_ref())).collect();
                Arc::new(if pairs.is_empty() {
                    Protection::new(&release, &rules)
                } else {
                    Protection::after(&release, &pairs, &rules)
                })
            })
            .await
            .map_err(|e| match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => crate::Error::Unavailable("servern stängs av".into()),
            })?;
            tracing::debug!(
                county = %which.county, period = %which.period, window = %which.window,
                beside = earlier.len(),
                earlier_ms,
                cells,
                ms = started.elapsed().as_millis() as u64,
                "disclosure: release protected"
            );
            p
        }
    };
    engine.protected.insert(key, p.clone());
    if let Some(history) = &engine.history {
        history.used.lock().expect("history").push(Used {
            which: which.clone(),
            content,
            key,
            protection: p.clone(),
            solved,
        });
    }
    Ok(p)
}

/// The key a release's protection beside earlier publications is kept under: its content
/// and every earlier protection's key.
fn beside_key(content: &[u8; 32], earlier: &[Earlier]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"beside");
    h.update(content);
    for e in earlier {
        h.update(e.key);
    }
    h.finalize().into()
}

/// What one earlier publication published of a release.
#[derive(Debug, Clone)]
pub struct Earlier {
    /// The digest of the release's content then.
    pub content: [u8; 32],
    /// The key its protection is stored under.
    pub key: [u8; 32],
    pub protection: Arc<Protection>,
    /// The data tables' versions it was built from, to build it again.
    pub table_versions: String,
}

/// A release a publication used: whether it was solved for it or taken from the store.
#[derive(Debug, Clone)]
pub struct Used {
    pub which: Which,
    pub content: [u8; 32],
    pub key: [u8; 32],
    pub protection: Arc<Protection>,
    pub solved: bool,
}

/// What earlier publications published of each release, for the publisher's engine: a
/// correction must not let anyone difference two publications of the same period, so a
/// release whose content changed is protected beside every earlier publication of it
/// ([`Protection::after`]). The earlier releases are built again from the lake at the table
/// versions their publication read.
pub struct History {
    earlier: std::collections::HashMap<Which, Vec<Earlier>>,
    lake: crate::lake::Lake,
    policies: crate::policy::Policies,
    engines: tokio::sync::Mutex<std::collections::HashMap<String, Arc<Engine>>>,
    used: Mutex<Vec<Used>>,
}

impl History {
    /// `earlier`: per release, its earlier publications, oldest first.
    pub fn new(
        root: crate::lake::Location,
        policies: crate::policy::Policies,
        earlier: std::collections::HashMap<Which, Vec<Earlier>>,
    ) -> History {
        History {
            earlier,
            lake: crate::lake::Lake::reader(root),
            policies,
            engines: Default::default(),
            used: Default::default(),
        }
    }

    fn of(&self, which: &Which) -> &[Earlier] {
        self.earlier.get(which).map_or(&[], Vec::as_slice)
    }

    /// The releases used so far, in the order they were first needed.
    pub fn used(&self) -> Vec<Used> {
        self.used.lock().expect("history").clone()
    }

    /// Release `which` as an earlier publication built it.
    async fn release(&self, which: &Which, e: &Earlier) -> Result<Release> {
        let engine = {
            let mut engines = self.engines.lock().await;
            match engines.get(&e.table_versions) {
                Some(engine) => engine.clone(),
                None => {
                    let engine = Arc::new(
                        Engine::open_at_versions(&self.lake, &e.table_versions, &self.policies)
                            .await?,
                    );
                    engines.insert(e.table_versions.clone(), engine.clone());
                    engine
                }
            }
        };
        // Alone: another county's earlier publication is seldom built from the same versions.
        let release =
            release_of(&engine, &which.county, &which.period, &which.window, false).await?;
        if digest(&release, &engine.rules) != e.content {
            tracing::warn!(
                county = %which.county, period = %which.period, window = %which.window,
                "an earlier release built again differs from what was published (policies changed?)"
            );
        }
        Ok(release)
    }
}

/// The pupils of the groups `members` of `rows` in band `from` and above (`nb` bands a
/// group), and the inner cells they are.
fn at_or_above(rows: &[Row], members: &[usize], from: usize, nb: usize) -> (i64, Vec<usize>) {
    let mut inner: Vec<usize> = members
        .iter()
        .flat_map(|&i| (from..nb).map(move |b| i * nb + b))
        .collect();
    inner.sort_unstable();
    let value = members
        .iter()
        .map(|&i| rows[i].bands[from..].iter().sum::<i64>())
        .sum();
    (value, inner)
}

/// The distinct schools of the groups `parts` of `rows`, and how many of them are confidential.
fn schools_of(rows: &[Row], parts: &[usize]) -> (usize, usize) {
    let schools: BTreeMap<&str, bool> = parts
        .iter()
        .map(|&i| (rows[i].school.as_str(), rows[i].confidential))
        .collect();
    (schools.len(), schools.values().filter(|c| **c).count())
}

/// The items (by index) of each school, municipality and the county, by area
/// in the order of their keys, from each item's school and municipality.
fn areas<'a>(
    items: impl Iterator<Item = (&'a str, &'a str)>,
    county: &str,
) -> BTreeMap<Area, Vec<usize>> {
    let mut areas: BTreeMap<Area, Vec<usize>> = BTreeMap::new();
    for (i, (school, municipality)) in items.enumerate() {
        for area in [
            Area::new(Level::School, school),
            Area::new(Level::Municipality, municipality),
            Area::new(Level::County, county),
        ] {
            areas.entry(area).or_default().push(i);
        }
    }
    areas
}

/// The release over `rows` (one county's uploaded groups), the tables the reports publish:
/// for every school, municipality and the county, its pupils in total and by gender
/// (`skolenhet:CODE|T|totalt`, `…|K|totalt`, `…|M|totalt`), and its pupils at or above each
/// band's lower edge but the first (`…|T|minst15`: the share at or above a shared level).
pub fn build(rows: &[Row], county: &str, edges: &[(u32, u32)]) -> Release {
    let nb = edges.len();
    let areas = areas(
        rows.iter()
            .map(|r| (r.school.as_str(), r.municipality.as_str())),
        county,
    );
    let mut cells = Vec::new();
    for (area, members) in &areas {
        let is_area = area.level != Level::School;
        let (schools, confidential) = schools_of(rows, members);
        let base = |parts: &[usize]| -> i64 {
            parts
                .iter()
                .map(|&i| rows[i].bands.iter().sum::<i64>())
                .sum()
        };
        let total = base(members);
        for gender in ["T", "K", "M"] {
            let parts: Vec<usize> = members
                .iter()
                .copied()
                .filter(|&i| gender == "T" || rows[i].gender == gender)
                .collect();
            if parts.is_empty() {
                continue;
            }
            let value = base(&parts);
            let mut inner: Vec<usize> = parts
                .iter()
                .flat_map(|&i| (0..nb).map(move |b| i * nb + b))
                .collect();
            inner.sort_unstable();
            let (schools, confidential) = schools_of(rows, &parts);
            cells.push(Cell {
                key: area.cell(format_args!("{gender}|totalt")),
                kind: Kind::Total,
                value,
                base: value,
                schools,
                confidential,
                area: is_area,
                inner,
            });
        }
        for (from, (lo, _)) in edges.iter().enumerate().skip(1) {
            let (value, inner) = at_or_above(rows, members, from, nb);
            cells.push(Cell {
                key: area.cell(format_args!("T|minst{lo}")),
                kind: Kind::Band,
                value,
                base: total,
                schools,
                confidential,
                area: is_area,
                inner,
            });
        }
    }
    // Each inner cell (a group's band) lies in its school and its municipality.
    let locality = |name: fn(&Row) -> &str| -> Vec<u32> {
        let mut ids: BTreeMap<&str, u32> = BTreeMap::new();
        rows.iter()
            .flat_map(|r| {
                let n = ids.len() as u32;
                std::iter::repeat_n(*ids.entry(name(r)).or_insert(n), nb)
            })
            .collect()
    };
    Release {
        values: rows.iter().flat_map(|r| r.bands.iter().copied()).collect(),
        localities: vec![locality(|r| &r.school), locality(|r| &r.municipality)],
        names: rows
            .iter()
            .flat_map(|r| {
                edges
                    .iter()
                    .map(move |(lo, hi)| format!("{}|{}|{}|{lo}-{hi}", r.school, r.grade, r.gender))
            })
            .collect(),
        cells,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A group with one pupil at each percent from 0 to 100.
    fn counted(edges: &[(u32, u32)]) -> Row {
        Row {
            school: "18800101".into(),
            municipality: "1880".into(),
            grade: "7".into(),
            gender: "K".into(),
            bands: edges
                .iter()
                .map(|(lo, hi)| i64::from(hi - lo + 1))
                .collect(),
            confidential: false,
        }
    }

    #[test]
    fn groups_counted_in_finer_bands_sum_into_a_countys_bands() {
        let fine = band_edges(&[10, 12, 15, 20, 30, 50]);
        let county = band_edges(&[10, 15, 20, 50]);
        let rows = coarsened(vec![counted(&fine)], &fine, &county);
        assert_eq!(rows[0].bands, counted(&county).bands);
        assert_eq!(rows[0].bands, vec![10, 5, 5, 30, 51]);
        // The same bands are left as they are.
        let same = coarsened(vec![counted(&county)], &county, &county);
        assert_eq!(same[0].bands, vec![10, 5, 5, 30, 51]);
    }
}
