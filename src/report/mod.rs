//! Reports: a definition from `reports/` run against an engine gives a [`Report`] (plain data:
//! key figures, sections by SKR's five steps, blocks of rows), which `html`, `export` and
//! `chart` turn into pages, CSV, XLSX, JSON and SVG. Building runs queries; rendering is pure
//! (no I/O, no clock: the generation time is passed in).

pub mod chart;
pub mod export;
pub mod html;
pub mod pdf;
pub mod similar;
pub mod spec;
pub mod sv;
mod template;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use std::collections::HashMap;
use std::sync::Arc;

use crate::disclosure::release::Which;
use crate::disclosure::view::{Disclose, Rests, link_counts, unrank_hidden};
use crate::disclosure::{Protection, Status};
use crate::engine::Engine;
use crate::{Error, Result, reference};
pub use spec::{AreaKind, Better, ChartSpec, Format, ReportSpec};
pub use sv::Term;

/// One value in a report table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Num(f64),
    Text(String),
    /// A value shown only as a lower bound (disclosure control: nearly all of a group), in
    /// JSON `{"at_least": 95.0}`.
    AtLeast {
        at_least: f64,
    },
}

impl Cell {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Int(i) => Some(*i as f64),
            Cell::Num(f) if f.is_finite() => Some(*f),
            _ => None,
        }
    }
}

/// A column as a report shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub label: String,
    pub format: Format,
    pub hidden: bool,
}

impl Column {
    pub fn numeric(&self) -> bool {
        matches!(
            self.format,
            Format::Int | Format::Pct | Format::Pp | Format::Dec
        )
    }

    /// The value as a Swedish reader sees it (`..` for a missing value).
    pub fn display(&self, cell: &Cell) -> String {
        match (cell, self.format) {
            (Cell::Null, _) => "..".into(),
            (Cell::AtLeast { at_least }, _) => {
                format!("≥ {}", sv::number(*at_least, self.decimals()))
            }
            (Cell::Bool(b), _) => if *b { "Ja" } else { "Nej" }.into(),
            (Cell::Text(s), Format::Month) => sv::month(s),
            (Cell::Text(s), Format::Term) => sv::term_of(s),
            (Cell::Text(s), _) => s.clone(),
            (c, Format::Pp) => sv::signed(c.as_f64().unwrap_or(0.0), 1),
            (c, Format::Int) => sv::number(c.as_f64().unwrap_or(0.0), 0),
            (c, _) => sv::number(c.as_f64().unwrap_or(0.0), 1),
        }
    }

    /// Decimals a number is shown with.
    pub fn decimals(&self) -> usize {
        if self.format == Format::Int { 0 } else { 1 }
    }
}

/// A table (and maybe a chart) stating one finding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Block {
    pub id: String,
    pub short: String,
    /// The heading: the finding, or the definition's neutral heading when there is none.
    pub title: String,
    pub summary: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    /// Footnote marks per cell (same shape as `rows`; empty string for none).
    pub marks: Vec<Vec<String>>,
    pub footnotes: Vec<String>,
    pub chart: Option<ChartSpec>,
    /// A grid chart's classes, from the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<Grid>,
}

/// The classes of a status × change grid (`policies/shared.toml` [overview]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// The status classes' names, lowest first (the grid's rows).
    pub status: Vec<String>,
    /// The change classes' names, largest decrease first (the grid's columns).
    pub change: Vec<String>,
    /// Per status and change class: the overall class (1 = best) and its name.
    pub overall: Vec<Vec<(i64, String)>>,
}

impl Block {
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The reference line's value: a constant, or the first value of its column.
    pub fn reference_value(&self) -> Option<f64> {
        let r = self.chart.as_ref()?.reference.as_ref()?;
        if let Some(v) = r.value {
            return Some(v);
        }
        let c = self.column(r.column.as_deref()?)?;
        self.rows.iter().find_map(|row| row[c].as_f64())
    }
}

/// A key figure in the summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figure {
    pub label: String,
    pub format: Format,
    pub value: Option<f64>,
    /// The value is only a lower bound (nearly all of the group; see `note`).
    pub at_least: bool,
    pub change_pp: Option<f64>,
    pub compared_with: Option<String>,
    pub better: Option<Better>,
    pub uncertain: bool,
    /// Why the value is not shown (disclosure control), in Swedish.
    pub note: Option<String>,
}

impl Figure {
    /// ↗, ↘ or → for the change (a change under 0,05 procentenheter is none).
    pub fn arrow(&self) -> Option<&'static str> {
        let c = self.change_pp?;
        Some(if c >= 0.05 {
            "↗"
        } else if c <= -0.05 {
            "↘"
        } else {
            "→"
        })
    }

    /// "förbättring" / "försämring" / "oförändrat", when the definition says which way is better.
    pub fn verdict(&self) -> Option<&'static str> {
        let c = self.change_pp?;
        if c.abs() < 0.05 {
            return Some("oförändrat");
        }
        let up_is_good = self.better? == Better::Higher;
        Some(if (c > 0.0) == up_is_good {
            "förbättring"
        } else {
            "försämring"
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Section {
    pub step: u8,
    pub title: String,
    pub intro: String,
    pub blocks: Vec<Block>,
}

/// The area a report is about.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Area {
    pub kind: AreaKind,
    pub code: String,
    pub name: String,
    pub municipality_code: Option<String>,
    pub county_code: String,
    pub county_name: String,
}

/// A rendered-to-data report: everything every format shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub report: String,
    pub title: String,
    pub intro: String,
    pub area: Area,
    pub term: String,
    pub school_year: String,
    /// The last month with data in the term: the term window is read up to it.
    pub period: String,
    pub definition_id: String,
    pub definition_hash: String,
    pub data_version: u64,
    pub generated_at: DateTime<Utc>,
    pub summary: Vec<Figure>,
    pub sections: Vec<Section>,
}

impl Report {
    /// `Nämndrapport: Örebro (1880), VT2026`.
    pub fn heading(&self) -> String {
        format!(
            "{}: {} ({}), {}",
            self.title, self.area.name, self.area.code, self.term
        )
    }

    /// The page's path, e.g. `/reports/committee/1880/VT2026`.
    pub fn path(&self) -> String {
        format!("/reports/{}/{}/{}", self.report, self.area.code, self.term)
    }
}

/// A report's `$name` parameters, bound into its queries and cell templates.
pub fn params(area: &Area, term: Term, period: &str) -> Vec<(&'static str, String)> {
    let (term_start, term_end) = term.months();
    let previous = Term {
        year: if term.autumn {
            term.year
        } else {
            term.year - 1
        },
        autumn: !term.autumn,
    };
    vec![
        ("$area", area.code.clone()),
        (
            "$municipality",
            area.municipality_code.clone().unwrap_or_default(),
        ),
        ("$county", area.county_code.clone()),
        ("$period", period.to_string()),
        ("$term_start", term_start),
        ("$term_end", term_end),
        ("$previous_term_end", previous.months().1),
        ("$last_year_period", last_year(period)),
    ]
}

/// `$schools` in a report's query: the school units of the report's municipality with rows in
/// the term's window at its period, as a list of text literals (`('18800101', '18800108')`;
/// `(NULL)` when there are none). A query that lists the municipality's schools with
/// `area_code IN $schools` reads only their rows of a computed view, so a report built by the
/// publisher depends on those schools and not on every school in the country.
const SCHOOLS: &str = "$schools";

/// The literal list `$schools` stands for: the schools of `municipality` at `period`.
async fn school_list(engine: &Engine, municipality: &str, period: &str) -> Result<String> {
    // Both are codes or a YYYY-MM from the lake: digits and '-' only.
    debug_assert!(
        (municipality.to_string() + period)
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'-')
    );
    let batches = engine
        .sql(&format!(
            "SELECT DISTINCT school_unit_code FROM school_periods \
             WHERE municipality_code = '{municipality}' AND period = '{period}' \
             AND \"window\" = 'term' ORDER BY school_unit_code"
        ))
        .await?;
    let mut codes = Vec::new();
    for b in &batches {
        let column = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8)?;
        let column = column.as_string::<i32>();
        for code in column.iter().flatten() {
            // Codes in the lake were validated as digits on upload.
            if !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::usage(format!(
                    "skolenhetskoden {code:?} är inte siffror"
                )));
            }
            codes.push(format!("'{code}'"));
        }
    }
    Ok(match codes.is_empty() {
        true => "(NULL)".to_string(),
        false => format!("({})", codes.join(", ")),
    })
}

/// The built-in definition of a report (`committee`, `county`, `school`).
pub fn spec(id: &str) -> Result<&'static ReportSpec> {
    let (_, parsed) = SPECS.iter().find(|(k, _)| *k == id).ok_or_else(|| {
        Error::NotFound(format!(
            "rapporten '{id}' finns inte; välj committee, county, school eller data"
        ))
    })?;
    parsed.as_ref().map_err(|e| Error::usage(e.clone()))
}

/// The built-in report definitions, parsed once: they are compiled in, and every page asks
/// for its report's area kind.
static SPECS: std::sync::LazyLock<Vec<(&str, std::result::Result<ReportSpec, String>)>> =
    std::sync::LazyLock::new(|| {
        spec::REPORTS
            .iter()
            .map(|(id, text)| {
                let parsed = spec::parse(&format!("reports/{id}.toml"), text);
                (*id, parsed.map_err(|e| e.to_string()))
            })
            .collect()
    });

/// Builds a report for an area and term from the engine's snapshot of the lake.
pub async fn build(
    engine: &Engine,
    spec: &ReportSpec,
    code: &str,
    term: Term,
    generated_at: DateTime<Utc>,
    own_school: Option<&str>,
) -> Result<Report> {
    let mut r = build_views(engine, spec, code, term, generated_at, &[own_school]).await?;
    let mut r = r.remove(0);
    if similar::wanted(&spec.id) {
        similar::splice(&mut r, &similar::Similar::query(engine, term).await?)?;
    }
    Ok(r)
}

/// [`build`] for several readers at once (the public view, `None`, and a school's own
/// principal's, `Some(code)`): the queries run once, disclosure control once per reader. The
/// similar schools' comparison is left for [`similar::splice`].
pub async fn build_views(
    engine: &Engine,
    spec: &ReportSpec,
    code: &str,
    term: Term,
    generated_at: DateTime<Utc>,
    readers: &[Option<&str>],
) -> Result<Vec<Report>> {
    let area = resolve_area(engine, spec.area, code).await?;
    let period = report_period(engine, &area, term).await?;
    let params = params(&area, term, &period);
    let lists_schools = spec
        .summary
        .iter()
        .map(|f| &f.sql)
        .chain(spec.sections.iter().flat_map(|s| &s.blocks).map(|b| &b.sql));
    let schools = match lists_schools.into_iter().any(|s| s.contains(SCHOOLS)) {
        true => {
            let municipality = area.municipality_code.as_deref().unwrap_or_default();
            Some(school_list(engine, municipality, &period).await?)
        }
        false => None,
    };
    let bind = |sql: &str| {
        let mut s = sql.to_string();
        if let Some(list) = &schools {
            s = s.replace(SCHOOLS, list);
        }
        for (k, v) in &params {
            // Every value is a code or a YYYY-MM checked above: digits and '-' only.
            debug_assert!(v.bytes().all(|b| b.is_ascii_digit() || b == b'-'));
            s = s.replace(k, &format!("'{v}'"));
        }
        s
    };
    let file = format!("reports/{}.toml", spec.id);

    // Every query first; then the releases their values rest on, each protected once.
    let run = |sql: &str, what: &str| {
        let (sql, what, file) = (bind(sql), what.to_string(), &file);
        async move {
            let started = std::time::Instant::now();
            let out = engine
                .sql(&sql)
                .await
                .map_err(|e| query_error(file, &what, e));
            tracing::debug!(
                file,
                what,
                ms = started.elapsed().as_millis() as u64,
                "query"
            );
            out
        }
    };
    let figure_batches =
        futures::future::try_join_all(spec.summary.iter().map(|f| run(&f.sql, &f.label))).await?;
    let block_specs: Vec<&spec::BlockSpec> = spec.sections.iter().flat_map(|s| &s.blocks).collect();
    let block_batches =
        futures::future::try_join_all(block_specs.iter().map(|b| run(&b.sql, &b.id))).await?;
    let own_release = Which::term(&area.county_code, &period);
    let mut wanted = std::collections::BTreeSet::from([own_release.clone()]);
    {
        let disclose = Disclose {
            releases: &HashMap::new(),
            own_release: &own_release,
            rules: engine.rules,
            params: &params,
            own_school: None,
        };
        for (f, batches) in spec.summary.iter().zip(&figure_batches) {
            let field = |n: &str| first_row_field(batches, n);
            disclose.wanted(f.cells.iter().chain(&f.change_cells), field, &mut wanted);
        }
        for (b, batches) in block_specs.iter().zip(&block_batches) {
            for batch in batches {
                for r in 0..batch.num_rows() {
                    for c in &b.columns {
                        disclose.wanted(&c.cells, |n| text_field(batch, r, n), &mut wanted);
                    }
                }
            }
        }
    }
    let releases: HashMap<Which, Arc<Protection>> =
        futures::future::try_join_all(wanted.into_iter().map(|w| async move {
            // Shared by every report that rests on it: recorded as the release it is.
            use crate::engine::reads;
            reads::record(reads::Read::Release(w.county.clone(), w.stored_term()));
            let p = reads::untracked(crate::disclosure::release::protection(engine, &w)).await?;
            Ok::<_, Error>((w, p))
        }))
        .await?
        .into_iter()
        .collect();
    let (definition_id, definition_hash) = definition(engine).await?;
    let is_grid = |b: &spec::BlockSpec| {
        b.chart
            .as_ref()
            .is_some_and(|c| c.kind == spec::ChartKind::Grid)
    };
    let grid = match block_specs.iter().any(|b| is_grid(b)) {
        true => Some(grid(engine).await?),
        false => None,
    };
    let assemble = |own_school: Option<&str>| -> Result<Report> {
        let disclose = Disclose {
            releases: &releases,
            own_release: &own_release,
            rules: engine.rules,
            params: &params,
            own_school,
        };
        let disclose = &disclose;

        let figures: Vec<Figure> = spec
            .summary
            .iter()
            .zip(&figure_batches)
            .map(|(f, batches)| {
                let first = |name: &str, format: Format| -> Option<Cell> {
                    let b = batches.iter().find(|b| b.num_rows() > 0)?;
                    let i = b.schema().index_of(name).ok()?;
                    cell(b.column(i), 0, format).ok()
                };
                let field = |n: &str| first_row_field(batches, n);
                let status = disclose.status(&f.cells, field);
                let shown = status.published();
                let bound = match status {
                    Status::Bound => at_least(f.format, disclose.bound(&f.cells, field)),
                    _ => None,
                };
                let note = match bound {
                    Some(_) => Some(Status::bound_note(&disclose.rules)),
                    None => disclose.footnote(status),
                };
                // A change also rests on the period it is compared with.
                let change_shown = shown && disclose.note(&f.change_cells, field).is_none();
                Figure {
                    label: f.label.clone(),
                    format: f.format,
                    value: first("value", Format::Dec)
                        .and_then(|c| c.as_f64())
                        .filter(|_| shown)
                        .or(bound),
                    at_least: bound.is_some(),
                    change_pp: first("change_pp", Format::Dec)
                        .and_then(|c| c.as_f64())
                        .filter(|_| change_shown),
                    compared_with: f.compared_with.clone(),
                    better: f.better,
                    uncertain: matches!(first("uncertain", Format::Bool), Some(Cell::Bool(true))),
                    note,
                }
            })
            .collect();
        let mut built = block_specs
            .iter()
            .zip(&block_batches)
            .map(|(b, batches)| {
                let mut built = block(&file, b, batches, disclose)?;
                if is_grid(b) {
                    built.grid = grid.clone();
                }
                Ok(built)
            })
            .collect::<Result<Vec<Block>>>()?
            .into_iter();

        let globals_term = term.to_string();
        let school_year = term.school_year();
        let period_label = sv::month(&period);
        let globals = template::Globals {
            area: &area.name,
            term: &globals_term,
            period: &period_label,
            school_year: &school_year,
        };
        let mut sections = Vec::new();
        for s in &spec.sections {
            let blocks: Vec<Block> = built.by_ref().take(s.blocks.len()).collect();
            let blocks = blocks
                .into_iter()
                .zip(&s.blocks)
                .map(|(mut blk, bs)| {
                    state_finding(&mut blk, bs, &globals);
                    blk
                })
                .collect();
            sections.push(Section {
                step: s.step,
                title: s.title.clone(),
                intro: s.intro.clone(),
                blocks,
            });
        }
        Ok(Report {
            report: spec.id.clone(),
            title: spec.title.clone(),
            intro: spec.intro.clone(),
            area: area.clone(),
            term: term.to_string(),
            school_year,
            period: period.clone(),
            definition_id: definition_id.clone(),
            definition_hash: definition_hash.clone(),
            data_version: engine.snapshot.data_version,
            generated_at,
            summary: figures,
            sections,
        })
    };
    readers.iter().map(|own| assemble(*own)).collect()
}

/// A block's heading and summary: its finding and summary templates filled from its rows, or
/// the neutral heading when the rows cannot state them.
fn state_finding(blk: &mut Block, bs: &spec::BlockSpec, globals: &template::Globals) {
    match (
        template::fill(&bs.finding, blk, globals),
        template::fill(&bs.summary, blk, globals),
    ) {
        (Some(t), Some(s)) => {
            blk.title = t;
            blk.summary = s;
        }
        _ => {
            blk.title = bs.heading.clone();
            blk.summary = if blk.rows.is_empty() {
                format!("Det finns inga uppgifter att visa för {}.", globals.term)
            } else {
                "Uppgifterna räcker inte för en sammanfattning; se tabellen.".into()
            };
        }
    }
}

/// The definition id and hash every figure of a session carries.
async fn definition(engine: &Engine) -> Result<(String, String)> {
    let b = engine
        .sql("SELECT definition_id, definition_hash FROM definition")
        .await?;
    let text = |c: usize| match b.first().map(|b| cell(b.column(c), 0, Format::Text)) {
        Some(Ok(Cell::Text(s))) => s,
        _ => String::new(),
    };
    Ok((text(0), text(1)))
}

/// The overview grid's classes, from the policy tables.
async fn grid(engine: &Engine) -> Result<Grid> {
    let number = |b: &RecordBatch, r: usize, name: &str| {
        let i = b.schema().index_of(name).ok()?;
        cell(b.column(i), r, Format::Int).ok()?.as_f64()
    };
    let mut g = Grid {
        status: Vec::new(),
        change: Vec::new(),
        overall: Vec::new(),
    };
    let classes = engine
        .sql("SELECT dimension, class_name FROM overview_classes ORDER BY dimension, class_order")
        .await?;
    for b in &classes {
        for r in 0..b.num_rows() {
            let name = text_field(b, r, "class_name").unwrap_or_default();
            match text_field(b, r, "dimension").as_deref() {
                Some("status") => g.status.push(name),
                Some("change") => g.change.push(name),
                _ => {}
            }
        }
    }
    let cells = engine
        .sql(
            "SELECT status_order, overall_order, overall_name FROM overview_grid \
             ORDER BY status_order, change_order",
        )
        .await?;
    for b in &cells {
        for r in 0..b.num_rows() {
            let row = number(b, r, "status_order").unwrap_or(0.0) as usize;
            if g.overall.len() < row {
                g.overall.push(Vec::new());
            }
            if let Some(last) = g.overall.last_mut() {
                last.push((
                    number(b, r, "overall_order").unwrap_or(0.0) as i64,
                    text_field(b, r, "overall_name").unwrap_or_default(),
                ));
            }
        }
    }
    Ok(g)
}

fn query_error(file: &str, what: &str, e: Error) -> Error {
    Error::usage(format!("{file}: {what}: {e}"))
}

/// Codes are digits of a fixed length: 8 for a school unit, 4 for a municipality, 2 for a county.
pub fn check_code(kind: AreaKind, code: &str) -> Result<()> {
    let len = match kind {
        AreaKind::School => 8,
        AreaKind::Municipality => 4,
        AreaKind::County => 2,
    };
    if code.len() != len || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::usage(format!(
            "'{code}' är ingen {}kod: den ska vara {len} siffror",
            kind.noun()
        )));
    }
    Ok(())
}

/// A municipality's or county's area from the reference data (a school's is in the register).
fn reference_area(kind: AreaKind, code: &str) -> Option<Area> {
    let (name, municipality_code, m) = match kind {
        AreaKind::Municipality => {
            let m = reference::municipality(code)?;
            (m.name.clone(), Some(code.to_string()), m)
        }
        AreaKind::County => {
            let m = reference::municipalities()
                .iter()
                .find(|m| m.county_code == code)?;
            (m.county_name.clone(), None, m)
        }
        AreaKind::School => return None,
    };
    Some(Area {
        kind,
        code: code.into(),
        name,
        municipality_code,
        county_code: m.county_code.clone(),
        county_name: m.county_name.clone(),
    })
}

/// `Örebro (1880)` for a municipality or county, the code alone for a school unit: how
/// messages name an area without a session.
pub fn area_label(kind: AreaKind, code: &str) -> String {
    match reference_area(kind, code) {
        Some(a) => format!("{} ({code})", a.name),
        None => code.to_string(),
    }
}

async fn resolve_area(engine: &Engine, kind: AreaKind, code: &str) -> Result<Area> {
    check_code(kind, code)?;
    let unknown = || Error::NotFound(format!("det finns {} med kod {code}", kind.none()));
    match kind {
        AreaKind::Municipality | AreaKind::County => reference_area(kind, code).ok_or_else(unknown),
        AreaKind::School => {
            let b = engine
                .sql(&format!(
                    "SELECT school_name, municipality_code FROM register \
                     WHERE school_unit_code = '{code}' ORDER BY valid_from DESC LIMIT 1"
                ))
                .await?;
            let b = b.iter().find(|b| b.num_rows() > 0).ok_or_else(unknown)?;
            let text = |i: usize| match cell(b.column(i), 0, Format::Text) {
                Ok(Cell::Text(s)) => s,
                _ => String::new(),
            };
            let (name, mcode) = (text(0), text(1));
            let m = reference::municipality(&mcode).ok_or_else(unknown)?;
            Ok(Area {
                kind,
                code: code.into(),
                name,
                municipality_code: Some(mcode),
                county_code: m.county_code.clone(),
                county_name: m.county_name.clone(),
            })
        }
    }
}

/// The county of a county (2 digits) or municipality (4 digits) code, and the last month of
/// `term` with data for it: what `narvaro disclosure audit` audits.
pub async fn county_period(engine: &Engine, code: &str, term: Term) -> Result<(String, String)> {
    let kind = match code.len() {
        2 => AreaKind::County,
        4 => AreaKind::Municipality,
        _ => {
            return Err(Error::usage(format!(
                "'{code}' är ingen läns- eller kommunkod (2 eller 4 siffror)"
            )));
        }
    };
    let area = resolve_area(engine, kind, code).await?;
    let county = resolve_area(engine, AreaKind::County, &area.county_code).await?;
    let period = report_period(engine, &county, term).await?;
    Ok((county.code, period))
}

/// The last month of the term with data for the area; a clear 404 naming the terms that do
/// have data otherwise.
async fn report_period(engine: &Engine, area: &Area, term: Term) -> Result<String> {
    let batches = engine
        .sql(&format!(
            "SELECT DISTINCT period FROM absence_rate WHERE area_type = '{}' AND area_code = '{}' \
             AND \"window\" = 'term' ORDER BY period",
            area.kind.area_type(),
            area.code
        ))
        .await?;
    let periods: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            let col = arrow::compute::cast(b.column(0), &DataType::Utf8).expect("period as text");
            let s = col.as_string::<i32>().clone();
            (0..s.len())
                .filter(|&i| s.is_valid(i))
                .map(|i| s.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    if let Some(p) = periods
        .iter()
        .filter(|p| Term::of_period(p) == Some(term))
        .max()
    {
        return Ok(p.clone());
    }
    let mut terms: Vec<Term> = periods.iter().filter_map(|p| Term::of_period(p)).collect();
    terms.dedup();
    let have = if terms.is_empty() {
        "ingen termin ännu".to_string()
    } else {
        terms
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(Error::NotFound(format!(
        "det finns inga uppgifter för {} ({}) {term}; uppgifter finns för: {have}",
        area.name, area.code
    )))
}

/// A value of the query's result as text, for a cell key (`None`: no such column, or null).
fn text_field(b: &RecordBatch, r: usize, name: &str) -> Option<String> {
    let i = b.schema().index_of(name).ok()?;
    match cell(b.column(i), r, Format::Text) {
        Ok(Cell::Text(s)) => Some(s),
        _ => None,
    }
}

/// How a value resting on a bound cell (`fewest` of `group` pupils) is shown: a count as
/// `fewest`, a share as the percentage it is at least (rounded down, so the statement stays
/// true); other values (a change, a rate of something else) are hidden.
fn at_least(format: Format, bound: Option<(i64, i64)>) -> Option<f64> {
    let (fewest, group) = bound?;
    match format {
        Format::Int => Some(fewest as f64),
        Format::Pct if group > 0 => Some((fewest * 1000 / group) as f64 / 10.0),
        _ => None,
    }
}

/// A key figure's value as text from its query's first row.
fn first_row_field(batches: &[RecordBatch], name: &str) -> Option<String> {
    let b = batches.iter().find(|b| b.num_rows() > 0)?;
    text_field(b, 0, name)
}

/// The same month a year earlier: `2026-02` → `2025-02`.
fn last_year(period: &str) -> String {
    match period.split_once('-') {
        Some((y, m)) => match y.parse::<i32>() {
            Ok(y) => format!("{}-{m}", y - 1),
            Err(_) => period.into(),
        },
        None => period.into(),
    }
}

fn block(
    file: &str,
    spec: &spec::BlockSpec,
    batches: &[RecordBatch],
    disclose: &Disclose,
) -> Result<Block> {
    let columns: Vec<Column> = spec
        .columns
        .iter()
        .map(|c| Column {
            name: c.name.clone(),
            label: c.label.clone(),
            format: c.format,
            hidden: c.hidden,
        })
        .collect();
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    let mut marks = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    // Each value's disclosure status, from the release cells it rests on.
    let mut status: Vec<Vec<Status>> = Vec::new();
    // For a value resting on a cell shown as a bound: that cell's fewest pupils and group.
    let mut bounds: Vec<Vec<Option<(i64, i64)>>> = Vec::new();
    // Whether the count rule guards a value (a `count` column's value with no release cell).
    let mut counted: Vec<Vec<bool>> = Vec::new();
    for b in batches {
        let schema = b.schema();
        let index = |name: &str| {
            schema.index_of(name).map_err(|_| {
                Error::usage(format!(
                    "{file}: block {}: kolumnen {name} saknas i frågans resultat",
                    spec.id
                ))
            })
        };
        let idx: Vec<usize> = spec
            .columns
            .iter()
            .map(|c| index(&c.name))
            .collect::<Result<_>>()?;
        let flags: Vec<Option<usize>> = spec
            .columns
            .iter()
            .map(|c| c.flag.as_deref().map(index).transpose())
            .collect::<Result<_>>()?;
        for r in 0..b.num_rows() {
            let mut row = Vec::with_capacity(idx.len());
            let mut mrow = Vec::with_capacity(idx.len());
            let mut srow = Vec::with_capacity(idx.len());
            let mut brow = Vec::with_capacity(idx.len());
            let mut crow = Vec::with_capacity(idx.len());
            let field = |name: &str| text_field(b, r, name);
            for (k, c) in spec.columns.iter().enumerate() {
                let v = cell(b.column(idx[k]), r, c.format)?;
                let number = |name: &Option<String>| -> Result<Option<Option<f64>>> {
                    name.as_deref()
                        .map(|n| Ok(cell(b.column(index(n)?), r, Format::Dec)?.as_f64()))
                        .transpose()
                };
                let rests = Rests {
                    cells: &c.cells,
                    count: c.count,
                    own_only: c.own_only
                        || c.own_only_if.as_deref().is_some_and(|f| field(f).is_some()),
                    pupils: number(&c.base)?,
                    schools: number(&c.schools)?,
                    pupil_share: c.pupil_share,
                };
                let (st, counts) = disclose.value(&rests, v.as_f64(), field);
                crow.push(counts);
                srow.push(st);
                brow.push(disclose.bound(&c.cells, field));
                row.push(v);
                let flagged = flags[k]
                    .map(|f| matches!(cell(b.column(f), r, Format::Bool), Ok(Cell::Bool(true))))
                    .unwrap_or(false);
                let mark = if flagged {
                    let note = c
                        .flag_note
                        .clone()
                        .unwrap_or_else(|| "Osäker uppgift.".into());
                    let n = match notes.iter().position(|x| *x == note) {
                        Some(n) => n,
                        None => {
                            notes.push(note);
                            notes.len() - 1
                        }
                    };
                    "*".repeat(n + 1)
                } else {
                    String::new()
                };
                mrow.push(mark);
            }
            rows.push(row);
            marks.push(mrow);
            status.push(srow);
            bounds.push(brow);
            counted.push(crow);
        }
    }
    let counts: Vec<usize> = (0..spec.columns.len())
        .filter(|&k| spec.columns[k].count)
        .collect();
    let rate_of: Vec<Vec<usize>> = spec
        .columns
        .iter()
        .map(|c| {
            c.rate_of
                .iter()
                .filter_map(|src| spec.columns.iter().position(|x| &x.name == src))
                .collect()
        })
        .collect();
    let nonzero = |r: usize, k: usize| rows[r][k].as_f64().is_some_and(|v| v != 0.0);
    let group: Vec<usize> = spec
        .linked_by
        .iter()
        .filter_map(|n| spec.columns.iter().position(|c| &c.name == n))
        .collect();
    let linked = |r: usize, r2: usize| group.iter().all(|&k| rows[r][k] == rows[r2][k]);
    link_counts(&counts, &rate_of, nonzero, linked, &mut status, &counted);
    // Suppressed values become `..` with their reason; the marks of a hidden value go too.
    let mut suppressed: Vec<String> = Vec::new();
    let mut any_null = false;
    for (((row, mrow), srow), brow) in rows.iter_mut().zip(&mut marks).zip(&status).zip(&bounds) {
        for (k, c) in spec.columns.iter().enumerate() {
            if row[k] == Cell::Null {
                any_null |= !c.hidden;
            } else if let (Status::Bound, Some(at_least)) = (srow[k], at_least(c.format, brow[k])) {
                // Nearly all of the group: shown as the fewest it can be, the rest hidden.
                row[k] = Cell::AtLeast { at_least };
                mrow[k].clear();
                let note = Status::bound_note(&disclose.rules);
                if !suppressed.contains(&note) {
                    suppressed.push(note);
                }
            } else if let Some(note) = disclose.footnote(srow[k]) {
                row[k] = Cell::Null;
                mrow[k].clear();
                if !suppressed.contains(&note) {
                    suppressed.push(note);
                }
            }
        }
    }
    if let Some(j) = spec
        .ranked_by
        .as_deref()
        .and_then(|n| spec.columns.iter().position(|c| c.name == n))
    {
        let mut all: Vec<_> = std::mem::take(&mut rows)
            .into_iter()
            .zip(std::mem::take(&mut marks))
            .zip(&status)
            .collect();
        let name = |((row, _), _): &((Vec<Cell>, Vec<String>), &Vec<Status>)| match &row[0] {
            Cell::Text(t) => sv::collation_key(t),
            _ => Vec::new(),
        };
        unrank_hidden(&mut all, |(_, s)| !s[j].published(), name);
        (rows, marks) = all.into_iter().map(|(rm, _)| rm).unzip();
    }
    let mut footnotes: Vec<String> = notes
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{} {n}", "*".repeat(i + 1)))
        .collect();
    footnotes.extend(suppressed);
    if any_null {
        footnotes.push(MISSING_NOTE.into());
    }
    footnotes.extend(spec.notes.iter().cloned());
    Ok(Block {
        id: spec.id.clone(),
        short: spec.short.clone(),
        title: spec.heading.clone(),
        summary: String::new(),
        columns,
        rows,
        marks,
        footnotes,
        chart: spec.chart.clone(),
        grid: None,
    })
}

/// The footnote of a block with a missing value.
const MISSING_NOTE: &str = ".. Uppgift saknas: ingen jämförelseperiod, ingen numerisk gräns eller inga rapporterade uppgifter.";

/// One value of an Arrow column as a report cell of the given format.
fn cell(col: &dyn Array, row: usize, format: Format) -> Result<Cell> {
    if col.is_null(row) {
        return Ok(Cell::Null);
    }
    let one = col.slice(row, 1);
    Ok(match format {
        Format::Text | Format::Month | Format::Term => {
            let s = arrow::compute::cast(&one, &DataType::Utf8)?;
            Cell::Text(s.as_string::<i32>().value(0).to_string())
        }
        Format::Int => {
            let s = arrow::compute::cast(&one, &DataType::Int64)?;
            Cell::Int(s.as_primitive::<Int64Type>().value(0))
        }
        Format::Bool => {
            let s = arrow::compute::cast(&one, &DataType::Boolean)?;
            Cell::Bool(s.as_boolean().value(0))
        }
        Format::Pct | Format::Pp | Format::Dec => {
            let s = arrow::compute::cast(&one, &DataType::Float64)?;
            let v = s.as_primitive::<Float64Type>().value(0);
            if v.is_finite() {
                Cell::Num(v)
            } else {
                Cell::Null
            }
        }
    })
}

/// One area in the index, with the terms that have data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexArea {
    pub code: String,
    pub name: String,
    pub terms: Vec<Term>,
}

/// A municipality in the index, with its schools.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexMunicipality {
    #[serde(flatten)]
    pub area: IndexArea,
    pub schools: Vec<IndexArea>,
}

/// A county in the index, with its municipalities.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexCounty {
    #[serde(flatten)]
    pub area: IndexArea,
    pub municipalities: Vec<IndexMunicipality>,
}

/// Every area with data and its terms: what the index page lists.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Index {
    pub definition_id: String,
    pub definition_hash: String,
    pub data_version: u64,
    pub counties: Vec<IndexCounty>,
}

/// Lists every county, municipality and school unit with term-window data, by term.
pub async fn index(engine: &Engine) -> Result<Index> {
    use std::collections::{BTreeMap, BTreeSet};
    let batches = engine
        .sql(
            "SELECT DISTINCT s.county_code, s.municipality_code, s.school_unit_code, s.period, \
             n.school_name FROM school_attendance s \
             LEFT JOIN (SELECT school_unit_code, max(school_name) AS school_name FROM register GROUP BY school_unit_code) n \
               ON n.school_unit_code = s.school_unit_code \
             WHERE s.\"window\" = 'term'",
        )
        .await?;
    type Terms = BTreeSet<Term>;
    let mut counties: BTreeMap<String, Terms> = BTreeMap::new();
    let mut munis: BTreeMap<String, Terms> = BTreeMap::new();
    let mut schools: BTreeMap<(String, String), (String, Terms)> = BTreeMap::new();
    for b in &batches {
        let text = |c: usize, r: usize| match cell(b.column(c), r, Format::Text) {
            Ok(Cell::Text(s)) => s,
            _ => String::new(),
        };
        for r in 0..b.num_rows() {
            let (county, muni, school, period, name) =
                (text(0, r), text(1, r), text(2, r), text(3, r), text(4, r));
            let Some(t) = Term::of_period(&period) else {
                continue;
            };
            counties.entry(county).or_default().insert(t);
            munis.entry(muni.clone()).or_default().insert(t);
            schools
                .entry((muni, school))
                .or_insert_with(|| (name, Terms::new()))
                .1
                .insert(t);
        }
    }
    let (definition_id, definition_hash) = definition(engine).await?;
    let counties = counties
        .into_iter()
        .map(|(code, terms)| {
            let name = reference::municipalities()
                .iter()
                .find(|m| m.county_code == code)
                .map(|m| m.county_name.clone())
                .unwrap_or_else(|| code.clone());
            let municipalities = munis
                .iter()
                .filter_map(|(m, terms)| {
                    let r = reference::municipality(m)?;
                    (r.county_code == code).then(|| IndexMunicipality {
                        area: IndexArea {
                            code: m.clone(),
                            name: r.name.clone(),
                            terms: terms.iter().copied().collect(),
                        },
                        schools: schools
                            .range((m.clone(), String::new())..)
                            .take_while(|((mm, _), _)| mm == m)
                            .map(|((_, s), (n, t))| IndexArea {
                                code: s.clone(),
                                name: n.clone(),
                                terms: t.iter().copied().collect(),
                            })
                            .collect(),
                    })
                })
                .collect();
            IndexCounty {
                area: IndexArea {
                    code,
                    name,
                    terms: terms.into_iter().collect(),
                },
                municipalities,
            }
        })
        .collect();
    Ok(Index {
        definition_id,
        definition_hash,
        data_version: engine.snapshot.data_version,
        counties,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disclosure::Rules;

    /// Disclosure under the default rules, for a block's tests.
    fn disclosing<'a>(
        releases: &'a HashMap<Which, Arc<Protection>>,
        own_release: &'a Which,
        params: &'a [(&'a str, String)],
        own_school: Option<&'a str>,
    ) -> Disclose<'a> {
        Disclose {
            releases,
            own_release,
            rules: Rules::default(),
            params,
            own_school,
        }
    }

    /// The default rules with independent schools' figures confidential, which holds every
    /// area row to the rule of three schools.
    fn guarded(mut d: Disclose<'_>) -> Disclose<'_> {
        d.rules.confidential_organisers = serde_json::from_str(r#"["ENSKILD"]"#).unwrap();
        d
    }
    use std::sync::Arc;

    /// A block definition with these `columns` (TOML inline tables, one per line).
    fn block_spec(columns: &str) -> spec::BlockSpec {
        toml::from_str(&format!(
            "id = \"t\"\nshort = \"t\"\nheading = \"h\"\nfinding = \"f\"\nsummary = \"s\"\n\
             sql = \"\"\ncolumns = [\n{columns}]\n"
        ))
        .unwrap()
    }

    /// Rows of other periods than the report's rest on their own groups: a month of 6 pupils
    /// is hidden though the term's cell is published; a principal sees the school's own month,
    /// never the municipality's.
    #[test]
    fn each_row_is_checked_against_its_own_pupils_and_schools() {
        use arrow::array::{Float64Array, Int64Array, StringArray};
        let spec = block_spec(
            r#"
  { name = "period", label = "Månad", format = "month" },
  { name = "school_pct", label = "Skolan %", format = "pct", cells = ["skolenhet:$area|T|totalt"], base = "school_students" },
  { name = "municipality_pct", label = "Kommunen %", format = "pct", cells = ["kommun:$municipality|T|totalt"], base = "municipality_students", schools = "municipality_schools" },
"#,
        );
        let batch = RecordBatch::try_from_iter([
            (
                "period",
                Arc::new(StringArray::from(vec!["2026-01", "2026-02", "2026-03"])) as _,
            ),
            (
                "school_pct",
                Arc::new(Float64Array::from(vec![5.0, 6.0, 7.0])) as _,
            ),
            (
                "school_students",
                Arc::new(Int64Array::from(vec![6, 25, 25])) as _,
            ),
            (
                "municipality_pct",
                Arc::new(Float64Array::from(vec![4.0, 4.5, 5.0])) as _,
            ),
            (
                "municipality_students",
                Arc::new(Int64Array::from(vec![400, 400, 400])) as _,
            ),
            (
                "municipality_schools",
                Arc::new(Int64Array::from(vec![9, 2, 9])) as _,
            ),
        ])
        .unwrap();
        let own_release = Which::term("18", "2026-03");
        let protection = crate::disclosure::Protection {
            rules: crate::disclosure::Rules::default(),
            status: [
                ("skolenhet:18800101|T|totalt".to_string(), Status::Published),
                ("kommun:1880|T|totalt".to_string(), Status::Published),
            ]
            .into(),
            ..Default::default()
        };
        let releases = HashMap::from([(own_release.clone(), Arc::new(protection))]);
        let params = [
            ("$area", "18800101".to_string()),
            ("$municipality", "1880".to_string()),
        ];
        let values = |own_school: Option<&str>, confidential: bool| -> Vec<Vec<Cell>> {
            let mut disclose = disclosing(&releases, &own_release, &params, own_school);
            if confidential {
                disclose = guarded(disclose);
            }
            block("t", &spec, std::slice::from_ref(&batch), &disclose)
                .unwrap()
                .rows
        };
        let public = values(None, true);
        assert_eq!(public[0][1], Cell::Null, "6 pupils that month");
        assert_eq!(public[1][1], Cell::Num(6.0));
        assert_eq!(public[0][2], Cell::Num(4.0));
        assert_eq!(public[1][2], Cell::Null, "2 schools that month");
        assert_eq!(public[2][2], Cell::Num(5.0));
        // No school's figures confidential: two schools are enough.
        assert_eq!(values(None, false)[1][2], Cell::Num(4.5));
        let principal = values(Some("18800101"), true);
        assert_eq!(principal[0][1], Cell::Num(5.0), "the school's own month");
        assert_eq!(principal[1][2], Cell::Null, "not the municipality's");
    }

    /// A share of pupils with its base is a count: 6,90 % of 58 pupils is 4 pupils, hidden as
    /// a count of 1–4 would be; so is 94,83 % of 58 (all but 3). An area's share from two
    /// schools is hidden by the three-school rule when schools' figures can be confidential;
    /// one school's figure is guarded by its own cells instead. A principal sees their own
    /// school's.
    #[test]
    fn shares_of_pupils_are_counts_and_areas_need_three_schools() {
        use arrow::array::{Float64Array, Int64Array, StringArray};
        let spec = block_spec(
            r#"
  { name = "school_year", label = "Läsår", format = "text" },
  { name = "cell", label = "Cell", format = "text", hidden = true },
  { name = "share_pct", label = "Problematisk frånvaro %", format = "pct", cells = ["{cell}"], base = "students", schools = "schools", pupil_share = true },
  { name = "students", label = "Elever", format = "int", hidden = true },
  { name = "schools", label = "Skolenheter", format = "int", hidden = true },
"#,
        );
        let (school, municipality) = ("skolenhet:18800101|T|totalt", "kommun:1880|T|totalt");
        let batch = RecordBatch::try_from_iter([
            (
                "school_year",
                Arc::new(StringArray::from(vec!["a", "b", "c", "d", "e"])) as _,
            ),
            (
                "cell",
                Arc::new(StringArray::from(vec![
                    municipality,
                    municipality,
                    municipality,
                    municipality,
                    school,
                ])) as _,
            ),
            (
                "share_pct",
                Arc::new(Float64Array::from(vec![
                    6.896_551_7,
                    94.827_586,
                    50.0,
                    50.0,
                    50.0,
                ])) as _,
            ),
            (
                "students",
                Arc::new(Int64Array::from(vec![58, 58, 58, 400, 58])) as _,
            ),
            (
                "schools",
                Arc::new(Int64Array::from(vec![3, 3, 3, 2, 1])) as _,
            ),
        ])
        .unwrap();
        let own_release = Which::term("18", "2026-03");
        let protection = crate::disclosure::Protection {
            rules: Rules::default(),
            status: [
                (school.to_string(), Status::Published),
                (municipality.to_string(), Status::Published),
            ]
            .into(),
            ..Default::default()
        };
        let releases = HashMap::from([(own_release.clone(), Arc::new(protection))]);
        let params = [("$area", "18800101".to_string())];
        let values = |own_school: Option<&str>, confidential: bool| -> Vec<Cell> {
            let mut disclose = disclosing(&releases, &own_release, &params, own_school);
            if confidential {
                disclose = guarded(disclose);
            }
            let b = block("t", &spec, std::slice::from_ref(&batch), &disclose).unwrap();
            let k = b.column("share_pct").unwrap();
            b.rows.iter().map(|r| r[k].clone()).collect()
        };
        let public = values(None, true);
        assert_eq!(public[0], Cell::Null, "4 pupils");
        assert_eq!(public[1], Cell::Null, "all but 3 pupils");
        assert_eq!(public[2], Cell::Num(50.0));
        assert_eq!(public[3], Cell::Null, "2 schools");
        assert_eq!(public[4], Cell::Num(50.0), "one school, its cell published");
        assert_eq!(
            values(None, false)[3],
            Cell::Num(50.0),
            "no school confidential"
        );
        // The principal's own school: a share of 4 of its 58 pupils shown to them alone.
        let cells = Arc::new(StringArray::from(vec![school; 5])) as _;
        let own_rows = RecordBatch::try_new(
            batch.schema(),
            [
                vec![batch.column(0).clone(), cells],
                batch.columns()[2..].to_vec(),
            ]
            .concat(),
        )
        .unwrap();
        let share = |own_school: Option<&str>| -> Cell {
            let disclose = guarded(disclosing(&releases, &own_release, &params, own_school));
            let b = block("t", &spec, std::slice::from_ref(&own_rows), &disclose).unwrap();
            b.rows[0][b.column("share_pct").unwrap()].clone()
        };
        assert_eq!(
            share(Some("18800101")),
            Cell::Num(6.896_551_7),
            "the school's own"
        );
        assert_eq!(
            share(None),
            Cell::Null,
            "4 of the school's pupils, to anyone else"
        );
    }

    #[test]
    fn rows_of_other_periods_are_checked_against_their_own_release() {
        use arrow::array::{Float64Array, StringArray};
        let spec = block_spec(
            r#"
  { name = "period", label = "Månad", format = "month" },
  { name = "school_pct", label = "Skolan %", format = "pct", cells = ["skolenhet:$area|T|totalt@month:{period}"] },
  { name = "municipality_pct", label = "Kommunen %", format = "pct", cells = ["kommun:$municipality|T|totalt@month:{period}"] },
  { name = "term_pct", label = "Terminen %", format = "pct", cells = ["kommun:$municipality|T|totalt"] },
"#,
        );
        let batch = RecordBatch::try_from_iter([
            (
                "period",
                Arc::new(StringArray::from(vec!["2026-01", "2026-02"])) as _,
            ),
            (
                "school_pct",
                Arc::new(Float64Array::from(vec![5.0, 6.0])) as _,
            ),
            (
                "municipality_pct",
                Arc::new(Float64Array::from(vec![4.0, 4.5])) as _,
            ),
            (
                "term_pct",
                Arc::new(Float64Array::from(vec![4.2, 4.2])) as _,
            ),
        ])
        .unwrap();
        let protection = |school: Status, municipality: Status| {
            Arc::new(crate::disclosure::Protection {
                rules: Rules::default(),
                status: [
                    ("skolenhet:18800101|T|totalt".to_string(), school),
                    ("kommun:1880|T|totalt".to_string(), municipality),
                ]
                .into(),
                ..Default::default()
            })
        };
        let own_release = Which::term("18", "2026-02");
        let month = |m: &str| Which {
            county: "18".into(),
            period: m.into(),
            window: "month".into(),
        };
        // January: the school hidden by secondary suppression in January's release; February:
        // the municipality hidden in February's; the term's release publishes both.
        let releases = HashMap::from([
            (
                own_release.clone(),
                protection(Status::Published, Status::Published),
            ),
            (
                month("2026-01"),
                protection(Status::Secondary, Status::Published),
            ),
            (
                month("2026-02"),
                protection(Status::Published, Status::FewSchools),
            ),
        ]);
        let params = [
            ("$area", "18800101".to_string()),
            ("$municipality", "1880".to_string()),
        ];
        let disclose = disclosing(&releases, &own_release, &params, None);
        let mut wanted = std::collections::BTreeSet::new();
        for r in 0..batch.num_rows() {
            for c in &spec.columns {
                disclose.wanted(&c.cells, |n| text_field(&batch, r, n), &mut wanted);
            }
        }
        assert_eq!(
            wanted.into_iter().collect::<Vec<_>>(),
            [month("2026-01"), month("2026-02"), own_release.clone()]
        );
        let b = block("t", &spec, std::slice::from_ref(&batch), &disclose).unwrap();
        assert_eq!(
            b.rows[0][1],
            Cell::Null,
            "January's release hides the school"
        );
        assert_eq!(b.rows[0][2], Cell::Num(4.0));
        assert_eq!(b.rows[1][1], Cell::Num(6.0));
        assert_eq!(
            b.rows[1][2],
            Cell::Null,
            "February's hides the municipality"
        );
        assert_eq!(b.rows[0][3], Cell::Num(4.2), "the term's publishes it");
        assert!(
            b.footnotes.iter().any(|n| n.contains("räknas fram"))
                && b.footnotes.iter().any(|n| n.contains("skolenheter")),
            "{:?}",
            b.footnotes
        );
        assert_eq!(last_year("2026-02"), "2025-02");
    }

    #[test]
    fn nearly_all_of_a_group_is_shown_as_a_bound() {
        use arrow::array::{Float64Array, Int64Array};
        let spec = block_spec(
            r#"
  { name = "pupils", label = "Elever", format = "int", cells = ["skolenhet:$area|T|minst10"] },
  { name = "share_pct", label = "Andel %", format = "pct", cells = ["skolenhet:$area|T|minst10"] },
  { name = "change_pp", label = "Förändring", format = "pp", cells = ["skolenhet:$area|T|minst10"] },
  { name = "high", label = "Minst 15 %", format = "int", cells = ["skolenhet:$area|T|minst15"] },
"#,
        );
        // 78 of 80 pupils at or above 10 %, 77 at or above 15 %.
        let batch = RecordBatch::try_from_iter([
            ("pupils", Arc::new(Int64Array::from(vec![78])) as _),
            ("share_pct", Arc::new(Float64Array::from(vec![97.5])) as _),
            ("change_pp", Arc::new(Float64Array::from(vec![1.5])) as _),
            ("high", Arc::new(Int64Array::from(vec![77])) as _),
        ])
        .unwrap();
        let own_release = Which::term("18", "2026-02");
        let protection = crate::disclosure::Protection {
            rules: Rules::default(),
            status: [
                ("skolenhet:18800101|T|minst10".to_string(), Status::Bound),
                (
                    "skolenhet:18800101|T|minst15".to_string(),
                    Status::Dominance,
                ),
            ]
            .into(),
            bounds: [("skolenhet:18800101|T|minst10".to_string(), (76, 80))].into(),
        };
        let releases = HashMap::from([(own_release.clone(), Arc::new(protection))]);
        let params = [("$area", "18800101".to_string())];
        let disclose = disclosing(&releases, &own_release, &params, None);
        let b = block("t", &spec, std::slice::from_ref(&batch), &disclose).unwrap();
        assert_eq!(b.rows[0][0], Cell::AtLeast { at_least: 76.0 });
        assert_eq!(b.rows[0][1], Cell::AtLeast { at_least: 95.0 });
        assert_eq!(b.rows[0][2], Cell::Null, "a change is no bound");
        assert_eq!(b.rows[0][3], Cell::Null, "the rest of the group");
        assert_eq!(b.columns[0].display(&b.rows[0][0]), "≥ 76");
        assert_eq!(b.columns[1].display(&b.rows[0][1]), "≥ 95,0");
        assert_eq!(
            serde_json::to_string(&b.rows[0][1]).unwrap(),
            r#"{"at_least":95.0}"#
        );
        assert!(
            b.footnotes.iter().any(|n| n.starts_with("≥ Nästan alla")),
            "{:?}",
            b.footnotes
        );
        assert!(b.footnotes.iter().any(|n| n.starts_with(".. ")));
        assert_eq!(
            at_least(Format::Pct, Some((76, 81))),
            Some(93.8),
            "rounded down"
        );
    }

    #[test]
    fn an_optional_field_applies_a_cell_only_where_it_is_set() {
        use arrow::array::{Int64Array, StringArray};
        let spec = block_spec(
            r#"
  { name = "pupils", label = "Elever", format = "int", cells = ["kommun:$area|T|minst{?percent_band}@{release_window}:2026-02"] },
  { name = "at_school", label = "På skolan", format = "int", own_only_if = "hours_band" },
"#,
        );
        // A step at 15 % in the month (a hidden cell), and one in hours (no cell).
        let batch = RecordBatch::try_from_iter([
            ("pupils", Arc::new(Int64Array::from(vec![3, 30])) as _),
            (
                "percent_band",
                Arc::new(Int64Array::from(vec![Some(15), None])) as _,
            ),
            (
                "release_window",
                Arc::new(StringArray::from(vec!["month", "school_year"])) as _,
            ),
            ("at_school", Arc::new(Int64Array::from(vec![2, 12])) as _),
            (
                "hours_band",
                Arc::new(Int64Array::from(vec![None, Some(30)])) as _,
            ),
        ])
        .unwrap();
        let own_release = Which::term("18", "2026-02");
        let month = Which {
            window: "month".into(),
            ..own_release.clone()
        };
        let protection = crate::disclosure::Protection {
            rules: Rules::default(),
            status: [("kommun:1880|T|minst15".to_string(), Status::SmallCount)].into(),
            ..Default::default()
        };
        let releases = HashMap::from([(month.clone(), Arc::new(protection))]);
        let params = [("$area", "1880".to_string())];
        let disclose = disclosing(&releases, &own_release, &params, None);
        let mut wanted = std::collections::BTreeSet::new();
        for r in 0..2 {
            disclose.wanted(
                &spec.columns[0].cells,
                |n| text_field(&batch, r, n),
                &mut wanted,
            );
        }
        assert_eq!(wanted.into_iter().collect::<Vec<_>>(), [month]);
        let b = block("t", &spec, std::slice::from_ref(&batch), &disclose).unwrap();
        assert_eq!(b.rows[0][0], Cell::Null);
        assert_eq!(b.rows[1][0], Cell::Int(30));
        // A school's step in hours is for its own principal only.
        assert_eq!(b.rows[0][1], Cell::Int(2));
        assert_eq!(b.rows[1][1], Cell::Null);
        assert!(b.footnotes.iter().any(|n| n.contains("egen inloggning")));
    }
}
