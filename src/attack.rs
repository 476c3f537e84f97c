//! The attacker: disclosure control audited against what is actually published, not against
//! the model it was computed in.
//!
//! Every report of every publication is read as readers are served it (the page, its charts,
//! CSV, XLSX, JSON, PDF and the open data APIs all render one stored report, so its numbers are
//! theirs). Each number a column ties to one release cell (the report definitions' `cells`)
//! becomes what an attacker knows of that cell: its count, a bound, or a share of a shown
//! total that pins the count. A cell no view shows is unknown. The release's structure (the
//! register: which groups sum to which school, municipality and county) is public; the
//! lake's truth is used only to judge the answers. Then, per scenario, every hidden cell's
//! interval is solved with the audit's linear programmes (their optima are whole numbers):
//!
//! - **anonymous**: each publication alone (every version `?as_of=` and permanent links serve);
//! - **versions**: each release with every earlier publication of it whose figures differ, as
//!   one system (a correction differenced against what was published before it);
//! - **principal**: the latest publication by an attacker who knows any one school's true
//!   figures (its principal, whose own view is unsuppressed).
//!
//! A shown figure that the rules hide (a count of 1–4, a group under 10, a bound's rest) is
//! a leak in itself, and so is the country's figure shown where a county's is hidden.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::disclosure::release::{COUNTRY, Which, county_release};
use crate::disclosure::view::{Key, fill};
use crate::disclosure::{self, Protection, Release, Rules, Status, audit, key};
use crate::engine::Engine;
use crate::lake::Lake;
use crate::policy::Policies;
use crate::publish::{Catalogue, Publication, read_report};
use crate::report::spec::Format;
use crate::report::{self, Cell, Report, Term};
use crate::{Error, Result};

/// The attacks to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scenario {
    Anonymous,
    Versions,
    Principal,
}

impl Scenario {
    pub const ALL: [Scenario; 3] = [Scenario::Anonymous, Scenario::Versions, Scenario::Principal];

    /// How the scenario is written on the command line.
    pub fn id(self) -> &'static str {
        match self {
            Scenario::Anonymous => "anonymous",
            Scenario::Versions => "versions",
            Scenario::Principal => "principal",
        }
    }

    /// The scenario in Swedish, for the report.
    pub fn label(self) -> &'static str {
        match self {
            Scenario::Anonymous => "anonym läsare, varje publicering för sig",
            Scenario::Versions => "anonym läsare med alla tidigare publiceringar av samma period",
            Scenario::Principal => "en rektor som känner sin egen skolas uppgifter",
        }
    }
}

impl std::str::FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Scenario, String> {
        Scenario::ALL
            .into_iter()
            .find(|x| x.id() == s)
            .ok_or_else(|| format!("okänt scenario '{s}': anonymous, versions eller principal"))
    }
}

/// What one scenario found.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub scenario: Scenario,
    /// Releases attacked (a release per publication, or per chain of publications).
    pub releases: usize,
    /// Hidden cells audited.
    pub hidden: usize,
    /// The narrowest interval found for a cell hidden by a rule: (publication, release, the
    /// interval), an exact one if any (a cell proved safe locally has an interval at least as
    /// wide as the one found).
    pub narrowest: Option<(u64, Which, audit::Interval)>,
    /// Hidden cells narrowed more than the rules allow.
    pub failures: Vec<(u64, Which, audit::Interval)>,
}

/// Everything the attacker did and found.
#[derive(Debug, Clone, Default)]
pub struct Attack {
    pub publications: usize,
    pub reports: usize,
    /// Numbers the reports show (not `..`).
    pub numbers: usize,
    /// Of them, those tied to one release cell, as a count, a bound or a share.
    pub tied: usize,
    /// Columns whose numbers are declared as resting on one cell but are not its count (a
    /// rate, a count of something else): `report/block/column` and how many.
    pub not_counts: BTreeMap<String, usize>,
    /// Shown figures the rules hide: publication, release and what.
    pub leaks: Vec<(u64, Which, String)>,
    pub outcomes: Vec<Outcome>,
}

impl Attack {
    pub fn passed(&self) -> bool {
        self.leaks.is_empty() && self.outcomes.iter().all(|o| o.failures.is_empty())
    }
}

/// What a view showed of one cell.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fact {
    Value(i64),
    AtLeast,
    /// A percentage of the cell's group: with the group's total shown, it is the count within
    /// rounding.
    Share(f64),
}

/// What one publication shows, per release and cell key.
type Shown = BTreeMap<Which, HashMap<String, Vec<(Fact, String)>>>;

/// A release as a publication's views show it: its truth and each cell's status.
type Seen = (Which, Arc<Release>, Vec<Status>);

/// Runs `scenarios` against every publication of the lake (the attack reads `policies` for the
/// rules it judges by: the ones the publications were made with).
pub async fn attack(lake: &Lake, policies: &Policies, scenarios: &[Scenario]) -> Result<Attack> {
    let catalogue = Catalogue::load(lake).await?;
    if catalogue.publications.is_empty() {
        return Err(Error::NotFound(
            "sjön har ingen publicering att angripa; kör narvaro publish".into(),
        ));
    }
    let rules = policies.shared.policy.disclosure;
    let mut attack = Attack {
        publications: catalogue.publications.len(),
        ..Default::default()
    };
    let mut engines: HashMap<String, Arc<Engine>> = HashMap::new();
    // Per publication: each release's truth and the statuses its views give it.
    let mut seen: Vec<(&Publication, Vec<Seen>)> = Vec::new();
    let mut releases: HashMap<(String, Which), Arc<Release>> = HashMap::new();
    for p in &catalogue.publications {
        let mut shown = Shown::new();
        for key in catalogue.reports_held(p.number) {
            if key.3 {
                continue; // a principal's own view: the principal scenario's knowledge
            }
            let report = read_report(lake, &catalogue, &key, p).await?;
            attack.reports += 1;
            collect(p.number, &report, &rules, &mut shown, &mut attack);
        }
        let engine = match engines.get(&p.table_versions) {
            Some(e) => e.clone(),
            None => {
                let e =
                    Arc::new(Engine::open_at_versions(lake, &p.table_versions, policies).await?);
                engines.insert(p.table_versions.clone(), e.clone());
                e
            }
        };
        let mut statuses = Vec::new();
        for (which, cells) in shown.iter().filter(|(w, _)| w.county != COUNTRY) {
            let release = release_of(&engine, &p.table_versions, which, &mut releases).await?;
            let status = statuses_of(
                &release,
                cells,
                &rules,
                |what| attack.leaks.push((p.number, which.clone(), what)),
                &mut attack.not_counts,
            );
            statuses.push((which.clone(), release, status));
        }
        // Every county's release of each period the country's figures are shown for, even
        // where no view shows the county's own.
        let counties: BTreeSet<String> =
            statuses.iter().map(|(w, _, _)| w.county.clone()).collect();
        let periods: Vec<Which> = shown
            .keys()
            .filter(|w| w.county == COUNTRY)
            .cloned()
            .collect();
        for w in periods.iter().flat_map(|w| {
            counties.iter().map(move |c| Which {
                county: c.clone(),
                ..w.clone()
            })
        }) {
            if statuses.iter().any(|(x, _, _)| *x == w) {
                continue;
            }
            let release = release_of(&engine, &p.table_versions, &w, &mut releases).await?;
            let status = statuses_of(
                &release,
                &HashMap::new(),
                &rules,
                |_| {},
                &mut attack.not_counts,
            );
            statuses.push((w, release, status));
        }
        fold_country(p.number, &shown, &mut statuses, &rules, &mut attack.leaks);
        seen.push((p, statuses));
    }

    for &scenario in scenarios {
        let mut outcome = Outcome {
            scenario,
            releases: 0,
            hidden: 0,
            narrowest: None,
            failures: Vec::new(),
        };
        let add = |number: u64, which: &Which, r: audit::Report, o: &mut Outcome| {
            o.releases += 1;
            o.hidden += r.hidden;
            // An exact interval before a wider one proved safe locally (whose width is only a
            // lower bound), the narrowest first.
            let rank = |i: &audit::Interval| (!i.exact, i.width());
            for i in r.intervals.iter().filter(|i| i.max.is_some()) {
                if o.narrowest
                    .as_ref()
                    .is_none_or(|(_, _, n)| rank(i) < rank(n))
                {
                    o.narrowest = Some((number, which.clone(), i.clone()));
                }
            }
            o.failures
                .extend(r.failures.into_iter().map(|f| (number, which.clone(), f)));
        };
        match scenario {
            Scenario::Anonymous | Scenario::Principal => {
                // An outsider reads every publication; a principal is tried on the latest.
                let principal = scenario == Scenario::Principal;
                let rules = Rules {
                    insiders: principal,
                    ..rules
                };
                let from = if principal {
                    seen.len().saturating_sub(1)
                } else {
                    0
                };
                for (p, statuses) in &seen[from..] {
                    for (which, release, status) in statuses {
                        let r = solve(release.clone(), status.clone(), rules, None).await?;
                        add(p.number, which, r, &mut outcome);
                    }
                }
            }
            Scenario::Versions => {
                let rules = Rules {
                    insiders: false,
                    ..rules
                };
                // Each release's publications, oldest first, one per distinct content.
                let mut chains: BTreeMap<&Which, Vec<(u64, &Seen)>> = BTreeMap::new();
                for (p, statuses) in &seen {
                    for seen in statuses {
                        let chain = chains.entry(&seen.0).or_default();
                        let same = chain.last().is_some_and(|(_, (_, r, s))| {
                            r.values == seen.1.values && r.cells == seen.1.cells && *s == seen.2
                        });
                        if !same {
                            chain.push((p.number, seen));
                        }
                    }
                }
                for (which, chain) in chains.into_iter().filter(|(_, c)| c.len() > 1) {
                    for k in 1..chain.len() {
                        let (number, (_, release, status)) = chain[k];
                        let earlier: Vec<(Arc<Release>, Protection)> = chain[..k]
                            .iter()
                            .map(|(_, (_, r, s))| {
                                (r.clone(), Protection::from_statuses(r, &rules, s.clone()))
                            })
                            .collect();
                        let r =
                            solve(release.clone(), status.clone(), rules, Some(earlier)).await?;
                        add(number, which, r, &mut outcome);
                    }
                }
            }
        }
        // One line per cell, release and insider (the audit may find a cell twice).
        outcome.failures.sort_by(|a, b| {
            (a.2.width(), a.0, &a.1, &a.2.key, &a.2.insider).cmp(&(
                b.2.width(),
                b.0,
                &b.1,
                &b.2.key,
                &b.2.insider,
            ))
        });
        outcome.failures.dedup_by(|a, b| {
            (a.0, &a.1, &a.2.key, &a.2.insider) == (b.0, &b.1, &b.2.key, &b.2.insider)
        });
        attack.outcomes.push(outcome);
    }
    Ok(attack)
}

/// Release `which` at the data tables' `versions` (`engine`), built once per attack.
async fn release_of(
    engine: &Engine,
    versions: &str,
    which: &Which,
    built: &mut HashMap<(String, Which), Arc<Release>>,
) -> Result<Arc<Release>> {
    let memo = (versions.to_string(), which.clone());
    if let Some(r) = built.get(&memo) {
        return Ok(r.clone());
    }
    let r = Arc::new(county_release(engine, &which.county, &which.period, &which.window).await?);
    built.insert(memo, r.clone());
    Ok(r)
}

/// The audit of a release as its views show it (beside `earlier` publications of it), on a
/// blocking thread.
async fn solve(
    release: Arc<Release>,
    status: Vec<Status>,
    rules: Rules,
    earlier: Option<Vec<(Arc<Release>, Protection)>>,
) -> Result<audit::Report> {
    tokio::task::spawn_blocking(move || match earlier {
        None => audit::audit(&release, &status, &rules),
        Some(earlier) => {
            let pairs: Vec<(&Release, &Protection)> =
                earlier.iter().map(|(r, p)| (r.as_ref(), p)).collect();
            let now = Protection::from_statuses(&release, &rules, status);
            disclosure::audit_beside(&release, &pairs, &now, &rules, audit::Depth::Whole)
        }
    })
    .await
    .map_err(|e| Error::Unavailable(format!("angreppet avbröts: {e}")))
}

/// Adds what `report` (of publication `number`) shows of release cells to `shown`; a count
/// outside the releases that the count rule hides is a leak.
fn collect(number: u64, report: &Report, rules: &Rules, shown: &mut Shown, attack: &mut Attack) {
    let Ok(spec) = report::spec(&report.report) else {
        return;
    };
    let Ok(term) = report.term.parse::<Term>() else {
        return;
    };
    let params = report::params(&report.area, term, &report.period);
    let own = Which::term(&report.area.county_code, &report.period);
    let specs: HashMap<&str, &report::spec::BlockSpec> = spec
        .sections
        .iter()
        .flat_map(|s| &s.blocks)
        .map(|b| (b.id.as_str(), b))
        .collect();
    for block in report.sections.iter().flat_map(|s| &s.blocks) {
        let Some(bs) = specs.get(block.id.as_str()) else {
            continue;
        };
        for row in &block.rows {
            let field = |name: &str| block.column(name).and_then(|i| text(&row[i]));
            for (column, value) in block.columns.iter().zip(row) {
                if !column.numeric() || matches!(value, Cell::Null) {
                    continue;
                }
                attack.numbers += 1;
                let Some(cs) = bs.columns.iter().find(|c| c.name == column.name) else {
                    continue;
                };
                // A count outside the releases is guarded by the count rule alone.
                let n = value.as_f64().unwrap_or(0.0);
                if cs.count && n >= 1.0 && n <= rules.max_hidden_count as f64 {
                    attack.leaks.push((
                        number,
                        own.clone(),
                        format!(
                            "{}/{}/{} visar {n} i {} {}",
                            report.report, block.id, column.name, report.area.code, report.term
                        ),
                    ));
                }
                let keys: Vec<String> = cs
                    .cells
                    .iter()
                    .filter_map(|t| match fill(t, &params, field) {
                        Key::Cell(k) => Some(k),
                        Key::Skip | Key::Missing => None,
                    })
                    .collect();
                // The cell a number counts: its one cell, or its one band among several (a
                // staircase step in percent rests on the total and its band).
                let is_band = |k: &String| {
                    let (cell, _) = key::locate(k, &own);
                    key::CellKey::parse(cell).is_some_and(|c| c.measure.contains("|minst"))
                };
                let bands: Vec<&String> = keys.iter().filter(|k| is_band(k)).collect();
                let k = match (keys.as_slice(), bands.as_slice()) {
                    (_, [band]) => *band,
                    ([one], []) => one,
                    _ => continue,
                };
                let (cell, which) = key::locate(k, &own);
                let band = is_band(k);
                let fact = match (column.format, value) {
                    (_, Cell::AtLeast { .. }) => Fact::AtLeast,
                    (Format::Int, v) => match v.as_f64() {
                        Some(n) if n.fract() == 0.0 => Fact::Value(n as i64),
                        _ => continue,
                    },
                    (Format::Pct, v) if band => match v.as_f64() {
                        Some(s) => Fact::Share(s),
                        None => continue,
                    },
                    _ => continue,
                };
                attack.tied += 1;
                let at = format!("{}/{}/{}", report.report, block.id, column.name);
                shown
                    .entry(which)
                    .or_default()
                    .entry(cell.to_string())
                    .or_default()
                    .push((fact, at));
            }
        }
    }
}

/// A row's field as text, for a cell template.
fn text(c: &Cell) -> Option<String> {
    match c {
        Cell::Text(s) if !s.is_empty() => Some(s.clone()),
        Cell::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// Each cell's status as the views show it: published where a view shows its count (or a
/// share of a shown total that pins it), a bound where one shows it as a bound, hidden
/// otherwise (with the rule that hides it, for the audit's target, or secondary). A shown
/// cell that a rule hides is reported to `leak`; a number that is not its cell's count is
/// counted in `not_counts` and not used.
fn statuses_of(
    release: &Release,
    shown: &HashMap<String, Vec<(Fact, String)>>,
    rules: &Rules,
    mut leak: impl FnMut(String),
    not_counts: &mut BTreeMap<String, usize>,
) -> Vec<Status> {
    let primary = disclosure::primary(release, rules);
    let index: HashMap<&str, usize> = release
        .cells
        .iter()
        .enumerate()
        .map(|(i, c)| (c.key.as_str(), i))
        .collect();
    // The counts shown as their cell's true count (a number tied to a cell it does not count
    // is not the attacker's knowledge of it), and the totals among them, to read shares of
    // them as counts.
    let counted = |key: &str| -> bool {
        index.get(key).is_some_and(|&i| {
            shown[key]
                .iter()
                .any(|(f, _)| *f == Fact::Value(release.cells[i].value))
        })
    };
    let total = |key: &str| -> Option<i64> {
        let total = format!("{}|totalt", key::group(key));
        (shown.contains_key(&total) && counted(&total))
            .then(|| release.cells[index[total.as_str()]].value)
    };
    let mut status: Vec<Status> = primary
        .iter()
        .map(|p| match p {
            Status::Published | Status::Bound => Status::Secondary,
            other => *other,
        })
        .collect();
    for (key, facts) in shown {
        let Some(&i) = index.get(key.as_str()) else {
            continue; // a cell of no group in the release: nothing to know
        };
        let truth = release.cells[i].value;
        for (fact, at) in facts {
            let count = match *fact {
                Fact::Value(n) => Some((n, n)),
                Fact::Share(s) => total(key).map(|base| {
                    let b = base as f64 / 100.0;
                    (
                        ((s - 0.05) * b - 1e-9).ceil().max(0.0) as i64,
                        ((s + 0.05) * b + 1e-9).floor() as i64,
                    )
                }),
                Fact::AtLeast => None,
            };
            match (fact, count) {
                (Fact::AtLeast, _) => {
                    if status[i] != Status::Published {
                        status[i] = Status::Bound;
                    }
                    if primary[i] != Status::Bound && !primary[i].published() {
                        leak(format!(
                            "{key} visas som gräns ({at}) fast regeln döljer den ({:?})",
                            primary[i]
                        ));
                    }
                }
                (_, Some((lo, hi))) if lo <= truth && truth <= hi => {
                    if lo < hi {
                        continue; // a share that does not pin the count
                    }
                    status[i] = Status::Published;
                    if !primary[i].published() {
                        leak(format!(
                            "{key} = {truth} kan läsas i {at} fast regeln döljer den ({:?})",
                            primary[i]
                        ));
                    }
                }
                (_, Some(_)) => *not_counts.entry(at.clone()).or_default() += 1,
                (_, None) => {}
            }
        }
    }
    status
}

/// The country's figures are sums of the counties': one shown where exactly one county's
/// figure is not gives that county's away (it counts as published; a leak if a rule hides
/// it), and one shown where several counties' are not breaks the rule that publishes it only
/// where every county's is. `statuses` holds every county's release of the periods the
/// country's figures are shown for.
fn fold_country(
    number: u64,
    shown: &Shown,
    statuses: &mut [Seen],
    rules: &Rules,
    leaks: &mut Vec<(u64, Which, String)>,
) {
    for (which, cells) in shown.iter().filter(|(w, _)| w.county == COUNTRY) {
        for (key, facts) in cells {
            if !facts.iter().any(|(f, _)| matches!(f, Fact::Value(_))) {
                continue;
            }
            let Some(measure) = key::CellKey::parse(key).map(|k| k.measure) else {
                continue;
            };
            let mut hidden = Vec::new();
            for (k, (w, release, status)) in statuses.iter().enumerate() {
                if w.period != which.period || w.window != which.window {
                    continue;
                }
                let county = key::Area::new(key::Level::County, &w.county).cell(measure);
                if let Some(i) = release.cells.iter().position(|c| c.key == county)
                    && !status[i].published()
                {
                    hidden.push((k, i, county));
                }
            }
            match hidden.as_slice() {
                [] => {}
                [(k, i, county)] => {
                    let (w, release, status) = &mut statuses[*k];
                    status[*i] = Status::Published;
                    let rule = disclosure::primary(release, rules)[*i];
                    if !rule.published() {
                        leaks.push((
                            number,
                            w.clone(),
                            format!(
                                "{county} = {} kan räknas ur {key} fast regeln döljer den ({rule:?})",
                                release.cells[*i].value
                            ),
                        ));
                    }
                }
                several => leaks.push((
                    number,
                    which.clone(),
                    format!("{key} visas fast {} län har sin siffra dold", several.len()),
                )),
            }
        }
    }
}
