//! Report definitions: `reports/*.toml`, compiled into the binary like `sql/`. A definition
//! says which key figures open the report, which sections (the five SKR steps) follow, and for
//! each block which query fills its table, which columns are shown and how, which chart is
//! drawn and the Swedish sentences that state its finding. Rust only runs and renders them.

use serde::Deserialize;

use crate::{Error, Result};

/// The built-in report definitions, by id.
pub const REPORTS: [(&str, &str); 4] = [
    ("committee", include_str!("../../reports/committee.toml")),
    ("county", include_str!("../../reports/county.toml")),
    ("school", include_str!("../../reports/school.toml")),
    ("data", include_str!("../../reports/data.toml")),
];

/// What kind of area a report is about; its code is the report's `$area`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AreaKind {
    School,
    Municipality,
    County,
}

impl AreaKind {
    /// The indicator views' `area_type` of this kind of area.
    pub fn area_type(self) -> &'static str {
        match self {
            AreaKind::School => "school",
            AreaKind::Municipality => "municipality",
            AreaKind::County => "county",
        }
    }

    /// "ingen kommun", "inget län": for messages about an unknown area.
    pub fn none(self) -> &'static str {
        match self {
            AreaKind::School => "ingen skolenhet",
            AreaKind::Municipality => "ingen kommun",
            AreaKind::County => "inget län",
        }
    }

    /// Swedish noun, for messages: "skolenhet", "kommun", "län".
    pub fn noun(self) -> &'static str {
        match self {
            AreaKind::School => "skolenhet",
            AreaKind::Municipality => "kommun",
            AreaKind::County => "län",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    pub id: String,
    /// "Nämndrapport".
    pub title: String,
    pub area: AreaKind,
    /// One paragraph under the title: who the report is for and what it shows.
    pub intro: String,
    pub summary: Vec<FigureSpec>,
    pub sections: Vec<SectionSpec>,
}

/// A key figure in the summary. `sql` returns one row with `value` and optionally `change_pp`
/// (the change since `compared_with`, in procentenheter) and `uncertain` (bool).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FigureSpec {
    pub label: String,
    pub sql: String,
    pub format: Format,
    /// Which direction is an improvement: `lower` (absence) or `higher` (reporting rate).
    #[serde(default)]
    pub better: Option<Better>,
    /// What the change compares with, e.g. "föregående termin".
    #[serde(default)]
    pub compared_with: Option<String>,
    /// The release cells the figure rests on (see [`ColumnSpec::cells`]).
    #[serde(default)]
    pub cells: Vec<String>,
    /// The cells the change rests on besides `cells`: the compared period's, e.g.
    /// `kommun:$area|T|totalt@$previous_term_end`.
    #[serde(default)]
    pub change_cells: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Lower,
    Higher,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectionSpec {
    /// SKR's step, 1–5.
    pub step: u8,
    pub title: String,
    pub intro: String,
    pub blocks: Vec<BlockSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockSpec {
    pub id: String,
    /// A short name (sheet names in XLSX, at most 25 characters).
    pub short: String,
    /// The heading when the data cannot state a finding (no rows, or a value missing).
    pub heading: String,
    /// The heading that states the finding, a template (see `template.rs`).
    pub finding: String,
    /// One sentence that sums up the chart for those who cannot see it, a template.
    pub summary: String,
    pub sql: String,
    pub columns: Vec<ColumnSpec>,
    #[serde(default)]
    pub chart: Option<ChartSpec>,
    /// Notes printed under the table.
    #[serde(default)]
    pub notes: Vec<String>,
    /// The column the query orders the rows by, when that is a value (absence per
    /// municipality, highest first). A row whose value there is hidden would still betray it
    /// by its place, so such rows move below the ranked ones, in the order of their first
    /// column.
    #[serde(default)]
    pub ranked_by: Option<String>,
    /// The columns whose values group the rows that may sum to one another (a municipality's
    /// staircase in one period): a hidden `count` hides the other counts of its column within
    /// its group only. None: the whole table is one group.
    #[serde(default)]
    pub linked_by: Vec<String>,
    /// The row (by its first column's text) and column that show the similar schools' comparison
    /// ([`crate::report::similar`]): its value is filled in when the report is read, from the
    /// comparison its publication computed once for every school, so that a school's report
    /// does not read the schools across the country it is compared with. The query gives the
    /// row a placeholder value, guarded by the cells of its column as any other.
    #[serde(default)]
    pub similar: Option<SimilarRow>,
}

/// Where a block shows the similar schools' comparison: the row whose first column is `row`,
/// the value in `column`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimilarRow {
    pub row: String,
    pub column: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// Column name in the query result.
    pub name: String,
    /// Swedish column heading.
    pub label: String,
    pub format: Format,
    /// A boolean column in the result; where it is true the value gets a footnote mark.
    #[serde(default)]
    pub flag: Option<String>,
    /// The footnote for `flag`.
    #[serde(default)]
    pub flag_note: Option<String>,
    /// Shown only in exports and the data table, not needed for the chart.
    #[serde(default)]
    pub hidden: bool,
    /// The disclosure-control cells the value rests on, as keys of the county's protected
    /// release with `{column}` taken from the row (any column of the query's result) and
    /// `$area`/`$county`/`$municipality` from the report, e.g.
    /// `skolenhet:{school_unit_code}|T|totalt`. The value is shown only when every one of them
    /// is published; else `..` with a footnote saying why. A key lies in the release of the
    /// report's term up to its period, unless it ends in `@PERIOD` (the term up to another
    /// period: `@{period}` for a row's own, `@$last_year_period`) or `@month:PERIOD` (that
    /// month alone): a value of another period is checked against that period's protection.
    /// A template with `{?column}` applies only to rows where that column is not empty (a
    /// staircase step in percent rests on a cell; one in hours on its `count` alone).
    #[serde(default)]
    pub cells: Vec<String>,
    /// A count of pupils that is not a cell of the release (a local staircase's step): a
    /// count from 1 to `max_hidden_count` is hidden, and so is
    /// every other non-zero count in its row and in its column, since the block's rows and
    /// columns may sum to one another.
    #[serde(default)]
    pub count: bool,
    /// Shown only to the report's school's own principal (a `read:school` token); everyone
    /// else sees `..`: detail the public release leaves out, such as a school's actions by
    /// kind.
    #[serde(default)]
    pub own_only: bool,
    /// Likewise only in the rows where this column of the query's result is not empty (a
    /// school's staircase steps in hours, which no release holds).
    #[serde(default)]
    pub own_only_if: Option<String>,
    /// A rate derived from these count columns: hidden when any of them is.
    #[serde(default)]
    pub rate_of: Vec<String>,
    /// The column of the query's result (shown or not) holding the pupils the value rests on
    /// in its own row: below `min_pupils` (or unknown) it is hidden. For a value outside every
    /// release (grade 9 results); a value of another period names that period's cells
    /// (`@{period}`) instead.
    #[serde(default)]
    pub base: Option<String>,
    /// Likewise the column holding the schools an area's value rests on in its row: below
    /// `min_schools` it is hidden (when any organiser type's figures are confidential).
    #[serde(default)]
    pub schools: Option<String>,
    /// The value is a percentage of `base`'s pupils, so with the base it gives a count of
    /// pupils: hidden when that count, or the rest of the base, is 1 to `max_hidden_count`.
    #[serde(default)]
    pub pupil_share: bool,
}

/// How a value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Text as it is.
    Text,
    /// A whole number with thousands grouping.
    Int,
    /// A percentage with one decimal (the label says "%").
    Pct,
    /// A change in procentenheter with sign and one decimal.
    Pp,
    /// A rate with one decimal (e.g. per 100 pupils).
    Dec,
    /// A month `YYYY-MM` written `mars 2026`.
    Month,
    /// A month written as the term it ends, `VT2026`.
    Term,
    /// Ja/Nej.
    Bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChartKind {
    /// Horizontal bars, one group per row, one bar per series.
    Bars,
    /// One line per series over the rows in order (time).
    Lines,
    /// A funnel plot: each row's value (the first series, a share in percent) against its
    /// group size (`size`), with 95 % and 99.8 % binomial control limits around the reference
    /// (Spiegelhalter 2005), so only groups that really stand out fall outside.
    Funnel,
    /// A status × change grid (the county's overview): each row placed in the cell of its
    /// status class (rows of the grid) and change class (columns), the series being the
    /// status, change and overall class numbers; every cell names its overall class, so
    /// colour is never the only sign. The classes' names come from the policy.
    Grid,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChartSpec {
    pub kind: ChartKind,
    /// The column naming each row (bar label or x-axis point).
    pub category: String,
    /// Numeric columns drawn, each a series (legend label = the column's label).
    pub series: Vec<String>,
    /// Axis title for the values, e.g. "Frånvaro, procent av erbjuden tid".
    pub axis: String,
    /// A boolean column marking the report's own area, drawn emphasised and with a marker.
    #[serde(default)]
    pub focus: Option<String>,
    /// A reference line: a column (its first non-null value) or a constant, with a label.
    #[serde(default)]
    pub reference: Option<Reference>,
    /// A funnel plot's group sizes (the x axis): a column of pupils.
    #[serde(default)]
    pub size: Option<String>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    #[serde(default)]
    pub column: Option<String>,
    #[serde(default)]
    pub value: Option<f64>,
    pub label: String,
}

/// Parses every built-in definition and checks that each chart and flag names a column the
/// block shows.
pub fn builtin() -> Result<Vec<ReportSpec>> {
    REPORTS
        .iter()
        .map(|(id, text)| parse(&format!("reports/{id}.toml"), text))
        .collect()
}

pub fn parse(file: &str, text: &str) -> Result<ReportSpec> {
    let spec: ReportSpec =
        toml::from_str(text).map_err(|e| Error::usage(format!("{file}: {e}")))?;
    for s in &spec.sections {
        if !(1..=5).contains(&s.step) {
            return Err(Error::usage(format!(
                "{file}: steg {} finns inte (SKR:s steg är 1–5)",
                s.step
            )));
        }
        for b in &s.blocks {
            let has = |c: &str| b.columns.iter().any(|x| x.name == c);
            let mut needed: Vec<&str> = Vec::new();
            if let Some(c) = &b.chart {
                needed.push(&c.category);
                needed.extend(c.series.iter().map(String::as_str));
                needed.extend(c.size.as_deref());
                if matches!(c.kind, ChartKind::Grid) && c.series.len() != 3 {
                    return Err(Error::usage(format!(
                        "{file}: block {}: ett rutnät behöver tre serier: statusklass, \
                         förändringsklass och samlad klass",
                        b.id
                    )));
                }
                if matches!(c.kind, ChartKind::Funnel)
                    && (c.size.is_none() || c.series.len() != 1 || c.reference.is_none())
                {
                    return Err(Error::usage(format!(
                        "{file}: block {}: ett trattdiagram behöver en serie (andel), size \
                         (antal elever) och reference (jämförelsevärdet)",
                        b.id
                    )));
                }
            }
            for c in &b.columns {
                if let Some(n) = c.rate_of.iter().find(|n| !has(n)) {
                    return Err(Error::usage(format!(
                        "{file}: block {}: kolumnen {} är räknad ur {n}, som inte finns bland columns",
                        b.id, c.name
                    )));
                }
            }
            if let Some(n) = b.linked_by.iter().find(|n| !has(n)) {
                return Err(Error::usage(format!(
                    "{file}: block {}: linked_by nämner {n}, som inte finns bland columns",
                    b.id
                )));
            }
            if let Some(n) = b.ranked_by.as_deref().filter(|n| !has(n)) {
                return Err(Error::usage(format!(
                    "{file}: block {}: ranked_by är {n}, som inte finns bland columns",
                    b.id
                )));
            }
            for n in needed {
                if !has(n) {
                    return Err(Error::usage(format!(
                        "{file}: block {}: diagrammet använder kolumnen {n}, som inte finns bland columns",
                        b.id
                    )));
                }
            }
            if b.short.chars().count() > 25 {
                return Err(Error::usage(format!(
                    "{file}: block {}: short är längre än 25 tecken",
                    b.id
                )));
            }
        }
    }
    Ok(spec)
}
