//! Policies (docs/indicators.md): the shared absence definition, the municipalities' local
//! staircases and political targets, loaded from `policies/` into typed definitions.
//!
//! Policies are data, never code: a threshold appears once, in a TOML file. Each file is
//! checked completely (every problem is reported, not only the first) and gets a content hash
//! computed from its parsed meaning, so reformatting or a new comment keeps the hash while any
//! change to a level, step or target changes it. Every figure carries the shared definition's
//! id and hash.
//!
//! Resolution: the histograms have whole-percent and whole-hour bands (floored), so a step
//! written `> 20 %` is counted from band 20 upwards: a pupil at exactly 20.00 % is counted too.
//! That is the closest the bands allow and errs by at most one exact value.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::reference;

/// Built-in copies, used when no policy directory is given and `./policies` does not exist,
/// so the binary works from any directory.
const BUILTIN: [(&str, &str); 7] = [
    ("shared.toml", include_str!("../policies/shared.toml")),
    (
        "local/0162-danderyd.toml",
        include_str!("../policies/local/0162-danderyd.toml"),
    ),
    (
        "local/0488-trosa.toml",
        include_str!("../policies/local/0488-trosa.toml"),
    ),
    (
        "local/2380-ostersund.toml",
        include_str!("../policies/local/2380-ostersund.toml"),
    ),
    (
        "local/18-fnoff-orebro-lan.toml",
        include_str!("../policies/local/18-fnoff-orebro-lan.toml"),
    ),
    (
        "local/timtrappa-finland.toml",
        include_str!("../policies/local/timtrappa-finland.toml"),
    ),
    (
        "targets/18-orebro-lan.toml",
        include_str!("../policies/targets/18-orebro-lan.toml"),
    ),
];

/// A measurement window a threshold applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    Month,
    Term,
    SchoolYear,
}

impl Window {
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Month => "month",
            Window::Term => "term",
            Window::SchoolYear => "school_year",
        }
    }
}

/// What a local step measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Absence as a share of offered time, whole percent.
    Percent,
    /// Absence in whole hours.
    Hours,
    /// The plan sets no number for this step (e.g. it follows after a number of weeks).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparator {
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = ">")]
    Above,
    #[serde(rename = "<")]
    Below,
    #[serde(rename = "<=")]
    AtMost,
}

impl Comparator {
    pub fn symbol(self) -> &'static str {
        match self {
            Comparator::AtLeast => ">=",
            Comparator::Above => ">",
            Comparator::Below => "<",
            Comparator::AtMost => "<=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbsenceKind {
    Valid,
    Invalid,
}

/// A shared level, e.g. 15 % *problematisk*.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    pub id: String,
    pub name: String,
    pub percent: u32,
}

/// The shared definition (`policies/shared.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedDefinition {
    pub id: String,
    pub name: String,
    pub valid_from: NaiveDate,
    #[serde(default)]
    pub description: String,
    pub absence: Vec<AbsenceKind>,
    pub windows: Vec<Window>,
    /// Percent of offered minutes that must be reported for a figure to be certain.
    #[serde(default = "default_min_reporting_rate")]
    pub min_reporting_rate: f64,
    /// Smallest group a school's aggregate may carry; `narvaro aggregate` merges smaller ones.
    /// At least the contract's 5 (the default when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_group: Option<i64>,
    pub levels: Vec<Level>,
    /// What may be published (docs/disclosure.md). Not part of the content hash: it decides which
    /// figures are shown, never their values; a release names these rules itself.
    #[serde(default, skip_serializing)]
    pub disclosure: crate::disclosure::Rules,
    /// The county report's status × change overview. Not part of the content hash either: it
    /// classes figures for the reader, never changes them.
    #[serde(default, skip_serializing)]
    pub overview: Option<Overview>,
}

/// The status × change overview (in the manner of the California School Dashboard): each
/// area's share of pupils at `level` against its change since the same term last year, each in
/// classes, and the grid giving every combination its overall class (1 = best).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overview {
    pub level: String,
    /// Areas with fewer pupils get no class: a small area's share varies too much by chance.
    pub min_students: i64,
    /// Lowest share first; every class but the last has an upper limit (`below`, percent).
    pub status: Vec<Class>,
    /// Largest decrease first; every class but the last has an upper limit (procentenheter).
    pub change: Vec<Class>,
    /// The overall classes' names, best first.
    pub overall: Vec<String>,
    /// One row per status class, one number per change class: its overall class (1 = best).
    pub grid: Vec<Vec<usize>>,
}

/// One class of a value: values from the previous class's limit up to (not including) `below`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Class {
    pub name: String,
    #[serde(default)]
    pub below: Option<f64>,
}

impl Overview {
    fn problems(&self, levels: &[Level]) -> Vec<String> {
        let mut out = Vec::new();
        if !levels.iter().any(|l| l.id == self.level) {
            out.push(format!(
                "overview: nivån {} finns inte bland levels",
                self.level
            ));
        }
        for (what, classes) in [("status", &self.status), ("change", &self.change)] {
            let limits: Vec<Option<f64>> = classes.iter().map(|c| c.below).collect();
            let ordered = limits.len() >= 2
                && limits[..limits.len() - 1].iter().all(Option::is_some)
                && limits[limits.len() - 1].is_none()
                && limits.windows(2).all(|w| match w {
                    [Some(a), Some(b)] => a < b,
                    _ => true,
                });
            if !ordered {
                out.push(format!(
                    "overview.{what}: ange minst två klasser med stigande gränser (below), \
                     den sista utan gräns"
                ));
            }
        }
        let shape_ok = self.grid.len() == self.status.len()
            && self.grid.iter().all(|r| r.len() == self.change.len());
        if !shape_ok {
            out.push(format!(
                "overview.grid: ange {} rader (status) med {} tal var (change)",
                self.status.len(),
                self.change.len()
            ));
        }
        if let Some(v) = self
            .grid
            .iter()
            .flatten()
            .find(|v| !(1..=self.overall.len()).contains(v))
        {
            out.push(format!(
                "overview.grid: {v} är ingen klass i overall (1–{})",
                self.overall.len()
            ));
        }
        out
    }
}

impl SharedDefinition {
    /// The smallest group size `narvaro aggregate` produces.
    pub fn min_group(&self) -> i64 {
        self.min_group
            .unwrap_or(crate::contract::attendance::MIN_GROUP)
    }
}

/// Loads one shared definition file (`narvaro aggregate --policy`), checked.
pub fn load_shared(path: &Path) -> Result<Hashed<SharedDefinition>, PolicyErrors> {
    let file = path.display().to_string();
    let errors = |messages: Vec<String>| {
        PolicyErrors(
            messages
                .into_iter()
                .map(|message| PolicyProblem {
                    file: file.clone(),
                    message,
                })
                .collect(),
        )
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| errors(vec![format!("kan inte läsas: {e}")]))?;
    match parse_shared(&file, &text) {
        (Some(shared), problems) if problems.is_empty() => Ok(shared),
        (_, problems) => Err(errors(problems)),
    }
}

/// A shared definition from its text, hashed, with every problem found in it.
fn parse_shared(file: &str, text: &str) -> (Option<Hashed<SharedDefinition>>, Vec<String>) {
    match toml::from_str::<SharedDefinition>(text) {
        Ok(p) => {
            let problems = check_shared(&p);
            let shared = Hashed {
                file: file.to_string(),
                hash: content_hash(&p),
                policy: p,
            };
            (Some(shared), problems)
        }
        Err(e) => (None, vec![toml_message(&e)]),
    }
}

fn default_min_reporting_rate() -> f64 {
    90.0
}

/// One step of a local staircase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub step: u32,
    pub name: String,
    pub measure: Measure,
    pub window: Option<Window>,
    pub comparator: Option<Comparator>,
    pub threshold: Option<u32>,
    pub who: String,
}

impl Step {
    /// The band from which pupils are counted at this step, if it has a number.
    pub fn band(&self) -> Option<u32> {
        match self.measure {
            Measure::None => None,
            _ => self.threshold,
        }
    }
}

/// A municipality's (or county's) own staircase (`policies/local/*.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalPolicy {
    pub id: String,
    pub name: String,
    pub source: String,
    pub valid_from: NaiveDate,
    pub municipality: Option<String>,
    pub county: Option<String>,
    pub steps: Vec<Step>,
}

/// Indicators a target can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetIndicator {
    AbsenceRate,
    InvalidAbsenceRate,
    ShareAtOrAbove,
    ReportingRate,
}

impl TargetIndicator {
    /// The name SQL uses for it (the `indicator` column of the `targets` table).
    pub fn as_str(self) -> &'static str {
        match self {
            TargetIndicator::AbsenceRate => "absence_rate",
            TargetIndicator::InvalidAbsenceRate => "invalid_absence_rate",
            TargetIndicator::ShareAtOrAbove => "share_at_or_above",
            TargetIndicator::ReportingRate => "reporting_rate",
        }
    }
}

/// A political target (SKR step 2), e.g. share at or above 15 % below 8 % by VT2027.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub municipality: String,
    pub indicator: TargetIndicator,
    /// A shared level id, for `share_at_or_above`.
    pub level: Option<String>,
    pub comparator: Comparator,
    /// Percent.
    pub value: f64,
    pub by_term: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetsFile {
    targets: Vec<Target>,
}

/// A policy with the file it came from and its content hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Hashed<T> {
    pub file: String,
    pub hash: String,
    pub policy: T,
}

/// Every policy, checked.
#[derive(Debug, Clone)]
pub struct Policies {
    pub shared: Hashed<SharedDefinition>,
    pub local: Vec<Hashed<LocalPolicy>>,
    pub targets: Vec<Hashed<Target>>,
}

/// One thing wrong with a policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyProblem {
    pub file: String,
    pub message: String,
}

impl fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

/// Problems found when loading policies; nothing is used until all are fixed.
#[derive(Debug, Clone)]
pub struct PolicyErrors(pub Vec<PolicyProblem>);

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policyfilerna har {} fel", self.0.len())?;
        for p in &self.0 {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

/// The hash of a policy's meaning: SHA-256 of its canonical JSON, first 12 hex digits.
pub fn content_hash<T: Serialize>(policy: &T) -> String {
    let json = serde_json::to_vec(policy).expect("policies serialise");
    hex::encode(Sha256::digest(json))[..12].to_string()
}

/// Where to read policies from: a directory, or the copies compiled into the binary.
#[derive(Debug, Clone)]
pub enum Source {
    Dir(PathBuf),
    Builtin,
}

impl Source {
    /// `dir` if given; else `./policies` if it exists; else the built-in copies.
    pub fn resolve(dir: Option<&Path>) -> Source {
        match dir {
            Some(d) => Source::Dir(d.to_path_buf()),
            None if Path::new("policies/shared.toml").is_file() => Source::Dir("policies".into()),
            None => Source::Builtin,
        }
    }

    /// (relative name, content) of every policy file.
    fn files(&self) -> Result<Vec<(String, String)>, PolicyErrors> {
        match self {
            Source::Builtin => Ok(BUILTIN
                .iter()
                .map(|(n, c)| (n.to_string(), c.to_string()))
                .collect()),
            Source::Dir(dir) => {
                let problem = |file: &Path, message: String| {
                    PolicyErrors(vec![PolicyProblem {
                        file: file.display().to_string(),
                        message,
                    }])
                };
                let mut out = Vec::new();
                let shared = dir.join("shared.toml");
                let text = std::fs::read_to_string(&shared)
                    .map_err(|e| problem(&shared, format!("kan inte läsas: {e}")))?;
                out.push(("shared.toml".to_string(), text));
                for sub in ["local", "targets"] {
                    let d = dir.join(sub);
                    if !d.is_dir() {
                        continue;
                    }
                    let mut names: Vec<PathBuf> = std::fs::read_dir(&d)
                        .map_err(|e| problem(&d, format!("kan inte läsas: {e}")))?
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                        .collect();
                    names.sort();
                    for p in names {
                        let text = std::fs::read_to_string(&p)
                            .map_err(|e| problem(&p, format!("kan inte läsas: {e}")))?;
                        let name = format!(
                            "{sub}/{}",
                            p.file_name().unwrap_or_default().to_string_lossy()
                        );
                        out.push((name, text));
                    }
                }
                Ok(out)
            }
        }
    }

    fn display_name(&self, rel: &str) -> String {
        match self {
            Source::Dir(d) => d.join(rel).display().to_string(),
            Source::Builtin => format!("policies/{rel} (inbyggd)"),
        }
    }
}

impl Policies {
    /// Loads and checks every policy; all problems in all files are reported together.
    pub fn load(source: &Source) -> Result<Policies, PolicyErrors> {
        let files = source.files()?;
        let mut problems = Vec::new();
        let mut shared = None;
        let mut local = Vec::new();
        let mut targets = Vec::new();
        for (rel, text) in &files {
            let file = source.display_name(rel);
            let mut push = |message: String| {
                problems.push(PolicyProblem {
                    file: file.clone(),
                    message,
                })
            };
            if rel == "shared.toml" {
                let (parsed, found) = parse_shared(&file, text);
                found.into_iter().for_each(&mut push);
                shared = parsed.or(shared);
            } else if rel.starts_with("local/") {
                match toml::from_str::<LocalPolicy>(text) {
                    Ok(p) => {
                        check_local(&p).into_iter().for_each(&mut push);
                        local.push(Hashed {
                            file: file.clone(),
                            hash: content_hash(&p),
                            policy: p,
                        });
                    }
                    Err(e) => push(toml_message(&e)),
                }
            } else {
                match toml::from_str::<TargetsFile>(text) {
                    Ok(t) => {
                        for (i, target) in t.targets.into_iter().enumerate() {
                            for m in check_target(
                                &target,
                                shared
                                    .as_ref()
                                    .map(|s: &Hashed<SharedDefinition>| &s.policy),
                            ) {
                                push(format!("mål {}: {m}", i + 1));
                            }
                            targets.push(Hashed {
                                file: file.clone(),
                                hash: content_hash(&target),
                                policy: target,
                            });
                        }
                    }
                    Err(e) => push(toml_message(&e)),
                }
            }
        }
        let mut ids = BTreeMap::new();
        for l in &local {
            if let Some(first) = ids.insert(l.policy.id.clone(), l.file.clone()) {
                problems.push(PolicyProblem {
                    file: l.file.clone(),
                    message: format!("id \"{}\" används redan i {first}", l.policy.id),
                });
            }
        }
        match shared {
            Some(shared) if problems.is_empty() => Ok(Policies {
                shared,
                local,
                targets,
            }),
            _ => Err(PolicyErrors(problems)),
        }
    }

    /// The local staircase that applies to a municipality: its own, else its county's.
    pub fn local_for(&self, municipality: &str) -> Option<&Hashed<LocalPolicy>> {
        let county = reference::municipality(municipality).map(|m| m.county_code.as_str());
        self.local
            .iter()
            .find(|l| l.policy.municipality.as_deref() == Some(municipality))
            .or_else(|| {
                self.local
                    .iter()
                    .find(|l| l.policy.county.is_some() && l.policy.county.as_deref() == county)
            })
    }
}

fn toml_message(e: &toml::de::Error) -> String {
    // The toml message already names the line, the column and the offending key.
    format!("ogiltig TOML: {}", e.to_string().trim())
}

fn check_shared(p: &SharedDefinition) -> Vec<String> {
    let mut out = Vec::new();
    if p.absence.is_empty() {
        out.push("absence: ange minst en frånvarotyp (valid, invalid)".to_string());
    }
    if p.windows.is_empty() {
        out.push("windows: ange minst ett fönster (month, term, school_year)".to_string());
    }
    if let Some(m) = p
        .min_group
        .filter(|m| *m < crate::contract::attendance::MIN_GROUP)
    {
        out.push(format!(
            "min_group: {m} är mindre än kontraktets minsta grupp {}",
            crate::contract::attendance::MIN_GROUP
        ));
    }
    let d = &p.disclosure;
    if d.min_pupils < 1 || d.max_hidden_count < 0 || d.dominance < 0 || d.protection < 0 {
        out.push("disclosure: gränserna får inte vara negativa (min_pupils minst 1)".to_string());
    }
    if !(0.0..=100.0).contains(&p.min_reporting_rate) {
        out.push(format!(
            "min_reporting_rate: {} ligger utanför 0–100 %",
            p.min_reporting_rate
        ));
    }
    if p.levels.is_empty() {
        out.push("levels: ange minst en nivå".to_string());
    }
    if let Some(o) = &p.overview {
        out.extend(o.problems(&p.levels));
    }
    let mut prev: Option<&Level> = None;
    let mut seen = std::collections::HashSet::new();
    for l in &p.levels {
        if !(1..=100).contains(&l.percent) {
            out.push(format!(
                "nivå {}: {} % ligger utanför 1–100 %",
                l.id, l.percent
            ));
        }
        if let Some(q) = prev
            && l.percent <= q.percent
        {
            out.push(format!(
                "nivå {} ({} %) måste vara högre än nivån före, {} ({} %)",
                l.id, l.percent, q.id, q.percent
            ));
        }
        if !seen.insert(l.id.as_str()) {
            out.push(format!("nivå {}: id:t förekommer flera gånger", l.id));
        }
        prev = Some(l);
    }
    out
}

fn check_local(p: &LocalPolicy) -> Vec<String> {
    let mut out = Vec::new();
    match (&p.municipality, &p.county) {
        (Some(m), None) if reference::municipality(m).is_none() => {
            out.push(format!("municipality: okänd kommunkod {m}"));
        }
        (None, Some(c))
            if !reference::municipalities()
                .iter()
                .any(|m| &m.county_code == c) =>
        {
            out.push(format!("county: okänd länskod {c}"));
        }
        (Some(_), Some(_)) => {
            out.push("ange antingen municipality eller county, inte båda".to_string())
        }
        _ => {}
    }
    if p.steps.is_empty() {
        out.push("steps: trappan har inga steg".to_string());
    }
    let mut prev: Option<&Step> = None;
    for (i, s) in p.steps.iter().enumerate() {
        let at = format!("steg {}", s.step);
        if s.step as usize != i + 1 {
            out.push(format!(
                "{at}: stegen ska numreras 1, 2, 3 … i ordning (väntade {})",
                i + 1
            ));
        }
        match s.measure {
            Measure::None => {
                if s.threshold.is_some() || s.window.is_some() || s.comparator.is_some() {
                    out.push(format!(
                        "{at}: measure = \"none\" kan inte ha threshold, window eller comparator"
                    ));
                }
            }
            m => {
                let max = if m == Measure::Percent { 100 } else { 200 };
                match s.threshold {
                    None => out.push(format!("{at}: threshold saknas")),
                    Some(t) if t == 0 || t > max => out.push(format!(
                        "{at}: gränsen {t} ligger utanför 1–{max} {}",
                        if m == Measure::Percent { "%" } else { "timmar" }
                    )),
                    Some(_) => {}
                }
                if s.window.is_none() {
                    out.push(format!(
                        "{at}: window saknas (month, term eller school_year)"
                    ));
                }
                if m == Measure::Hours && s.window.is_some_and(|w| w != Window::SchoolYear) {
                    out.push(format!(
                        "{at}: timgränser mäts över läsåret (window = \"school_year\")"
                    ));
                }
                match s.comparator {
                    None => out.push(format!("{at}: comparator saknas (\">=\" eller \">\")")),
                    Some(Comparator::AtLeast | Comparator::Above) => {}
                    Some(c) => out.push(format!(
                        "{at}: en trappa räknar elever på eller över en gräns, inte \"{}\"",
                        c.symbol()
                    )),
                }
                if let (Some(q), Some(t)) = (prev, s.threshold)
                    && let Some(qt) = q.threshold
                    && q.measure == m
                    && t <= qt
                {
                    out.push(format!(
                        "{at}: gränsen {t} måste vara högre än steg {}:s gräns {qt}; stegen överlappar eller står i fel ordning",
                        q.step
                    ));
                }
                prev = Some(s);
            }
        }
    }
    out
}

fn check_target(t: &Target, shared: Option<&SharedDefinition>) -> Vec<String> {
    let mut out = Vec::new();
    if reference::municipality(&t.municipality).is_none() {
        out.push(format!("municipality: okänd kommunkod {}", t.municipality));
    }
    if !(0.0..=100.0).contains(&t.value) {
        out.push(format!("value: {} ligger utanför 0–100 %", t.value));
    }
    let term_ok = t.by_term.len() == 6
        && (t.by_term.starts_with("HT") || t.by_term.starts_with("VT"))
        && t.by_term[2..].bytes().all(|b| b.is_ascii_digit());
    if !term_ok {
        out.push(format!(
            "by_term: \"{}\" ska skrivas som HT2026 eller VT2027",
            t.by_term
        ));
    }
    match (t.indicator, &t.level) {
        (TargetIndicator::ShareAtOrAbove, None) => {
            out.push("level saknas: ange en av de gemensamma nivåerna".to_string())
        }
        (TargetIndicator::ShareAtOrAbove, Some(l)) => {
            if let Some(s) = shared
                && !s.levels.iter().any(|x| &x.id == l)
            {
                let known: Vec<&str> = s.levels.iter().map(|x| x.id.as_str()).collect();
                out.push(format!(
                    "level: okänd nivå \"{l}\" (kända: {})",
                    known.join(", ")
                ));
            }
        }
        (_, Some(_)) => out.push("level gäller bara indikatorn share_at_or_above".to_string()),
        (_, None) => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_one(dir: &Path, rel: &str, text: &str) -> Vec<String> {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        let errs = Policies::load(&Source::Dir(dir.to_path_buf()))
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        std::fs::remove_file(&path).unwrap();
        errs.into_iter().map(|p| p.message).collect()
    }

    fn with_shared() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("shared.toml"), BUILTIN[0].1).unwrap();
        dir
    }

    #[test]
    fn the_project_policies_load_and_the_builtin_copies_match_them() {
        let builtin = Policies::load(&Source::Builtin).unwrap();
        let dir = Policies::load(&Source::Dir(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
        ))
        .unwrap();
        assert_eq!(builtin.shared.hash, dir.shared.hash);
        assert_eq!(builtin.local.len(), 5);
        assert_eq!(dir.local.len(), 5);
        let levels: Vec<u32> = builtin
            .shared
            .policy
            .levels
            .iter()
            .map(|l| l.percent)
            .collect();
        assert_eq!(levels, [10, 15, 20, 50]);
        assert_eq!(builtin.local_for("0488").unwrap().policy.id, "trosa-0488");
        assert_eq!(
            builtin.local_for("1884").unwrap().policy.id,
            "fnoff-18",
            "Nora falls under the county model"
        );
        assert!(builtin.local_for("0114").is_none());
    }

    #[test]
    fn the_hash_follows_meaning_not_formatting() {
        let a: SharedDefinition = toml::from_str(BUILTIN[0].1).unwrap();
        let reformatted = format!("# a new comment\n{}", BUILTIN[0].1.replace(" = ", "="));
        let b: SharedDefinition = toml::from_str(&reformatted).unwrap();
        assert_eq!(content_hash(&a), content_hash(&b));
        let c: SharedDefinition =
            toml::from_str(&BUILTIN[0].1.replace("percent = 15", "percent = 16")).unwrap();
        assert_ne!(content_hash(&a), content_hash(&c));
    }

    #[test]
    fn bad_policy_files_get_clear_errors() {
        let dir = with_shared();
        let base = BUILTIN[2].1; // Trosa
        let cases = [
            (
                base.replace(
                    "who = \"Mentor kontaktar",
                    "vem = \"x\"\nwho = \"Mentor kontaktar",
                ),
                "unknown field `vem`",
            ),
            (
                base.replace("threshold = 15", "threshold = 150"),
                "utanför 1–100 %",
            ),
            (
                base.replace("threshold = 15", "threshold = 5"),
                "stegen överlappar eller står i fel ordning",
            ),
            (
                base.replace(
                    "window = \"month\"\ncomparator = \">=\"\nthreshold = 10",
                    "window = \"week\"\ncomparator = \">=\"\nthreshold = 10",
                ),
                "unknown variant `week`",
            ),
            (base.replace("step = 2", "step = 3"), "stegen ska numreras"),
            (
                base.replace("municipality = \"0488\"", "municipality = \"9999\""),
                "okänd kommunkod 9999",
            ),
        ];
        for (text, want) in cases {
            let msgs = check_one(dir.path(), "local/x.toml", &text);
            assert!(
                msgs.iter().any(|m| m.contains(want)),
                "{want:?} not in {msgs:?}"
            );
        }
        let msgs = check_one(
            dir.path(),
            "targets/x.toml",
            "[[targets]]\nmunicipality = \"1880\"\nindicator = \"share_at_or_above\"\nlevel = \"extrem\"\ncomparator = \"<\"\nvalue = 8.0\nby_term = \"VT27\"\n",
        );
        assert!(
            msgs.iter().any(|m| m.contains("okänd nivå \"extrem\"")),
            "{msgs:?}"
        );
        assert!(msgs.iter().any(|m| m.contains("by_term")), "{msgs:?}");
    }

    #[test]
    fn a_bad_overview_is_named_in_the_shared_definition() {
        let shared = BUILTIN[0].1;
        for (text, want) in [
            (
                shared.replace("level = \"problematisk\"", "level = \"extrem\""),
                "overview: nivån extrem finns inte",
            ),
            (
                shared.replace("below = 10.0", "below = 4.0"),
                "overview.status: ange minst två klasser med stigande gränser",
            ),
            (
                shared.replace(
                    "  { name = \"Ökat mycket\" },",
                    "  { name = \"Ökat mycket\", below = 9.0 },",
                ),
                "overview.change: ange minst två klasser",
            ),
            (
                shared.replace("  [3, 4, 5, 5, 5],\n", ""),
                "overview.grid: ange 5 rader (status) med 5 tal var",
            ),
            (
                shared.replace("[3, 4, 5, 5, 5]", "[3, 4, 5, 5, 6]"),
                "overview.grid: 6 är ingen klass i overall (1–5)",
            ),
        ] {
            assert_ne!(text, shared, "{want}: the case changes nothing");
            let (_, problems) = parse_shared("shared.toml", &text);
            assert!(
                problems.iter().any(|m| m.contains(want)),
                "{want:?} not in {problems:?}"
            );
        }
        let (_, problems) = parse_shared("shared.toml", shared);
        assert!(problems.is_empty(), "{problems:?}");
    }
}
