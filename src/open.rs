//! Open data: a publication's indicators as tables analysts fetch (`/api/v1/indicators`).
//!
//! The publisher builds, for every county and term, the `data` report (`reports/data.toml`):
//! one block per indicator view with the view's rows for every school unit, municipality, the
//! county and the whole lake, month by month and for the term, every value through the same
//! disclosure control as the reports. This module turns those blocks into one table per
//! indicator: the rows of the counties asked for, filtered, the whole lake's rows once. It
//! reads nothing itself: the caller passes the published reports, so every answer shows
//! exactly what its publication shows.

use crate::report::{self, Cell, Column, Report, sv};
use crate::{Error, Result};

/// The report the open data tables come from.
pub const DATA_REPORT: &str = "data";

/// What an indicator is, from its view's leading comment in `sql/` and the block that
/// publishes it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Indicator {
    /// The view's name (`absence_rate`).
    pub name: String,
    /// Its heading in Swedish.
    pub title: String,
    /// The definition, in Swedish (the view's leading comment).
    pub description: String,
    /// The unit of its values.
    pub unit: String,
    /// The policy its thresholds come from.
    pub policy: String,
}

/// Every indicator published as open data, in the order of `reports/data.toml`.
pub fn indicators() -> Result<Vec<Indicator>> {
    let spec = report::spec(DATA_REPORT)?;
    Ok(spec
        .sections
        .iter()
        .flat_map(|s| &s.blocks)
        .map(|b| {
            let sql = crate::engine::VIEWS
                .iter()
                .find(|(n, _)| *n == b.id)
                .map_or("", |(_, sql)| *sql);
            let (mut description, mut unit, mut policy) =
                (Vec::new(), String::new(), String::new());
            for line in sql.lines().map_while(|l| l.strip_prefix("--")) {
                let line = line.trim();
                if let Some(rest) = line.strip_prefix("Unit:") {
                    // `Unit: percent of offered minutes. Policy: policies/shared.toml.`
                    let (u, p) = rest.split_once("Policy:").unwrap_or((rest, ""));
                    unit = u.trim().trim_end_matches('.').to_string();
                    policy = p.trim().trim_end_matches('.').to_string();
                } else if let Some(p) = line.strip_prefix("Policy:") {
                    policy = p.trim().trim_end_matches('.').to_string();
                } else if !line.is_empty() {
                    description.push(line.to_string());
                }
            }
            Indicator {
                name: b.id.clone(),
                title: b.heading.clone(),
                description: description.join(" "),
                unit,
                policy,
            }
        })
        .collect())
}

/// Which rows of an indicator a reader asks for; `None` is any.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub area_type: Option<String>,
    pub area_code: Option<String>,
    pub period: Option<String>,
    pub window: Option<String>,
}

impl Filter {
    /// Checks every given value's form, so that a typo is a clear error rather than an empty
    /// table.
    pub fn check(&self) -> Result<()> {
        if let Some(t) = &self.area_type
            && !["school", "municipality", "county", "country"].contains(&t.as_str())
        {
            return Err(Error::usage(format!(
                "area_type: '{t}' finns inte; välj school, municipality, county eller country"
            )));
        }
        if let Some(c) = &self.area_code
            && !(c.bytes().all(|b| b.is_ascii_digit()) && [2, 4, 8].contains(&c.len()))
        {
            return Err(Error::usage(format!(
                "area_code: '{c}' är ingen kod; en skolenhet har 8 siffror, en kommun 4, ett län 2 (riket 00)"
            )));
        }
        if let Some(p) = &self.period
            && sv::Term::of_period(p).is_none()
        {
            return Err(Error::usage(format!(
                "period: '{p}' är ingen månad i en termin; skriv ÅÅÅÅ-MM, t.ex. 2026-03"
            )));
        }
        if let Some(w) = &self.window
            && !["month", "term", "school_year"].contains(&w.as_str())
        {
            return Err(Error::usage(format!(
                "window: '{w}' finns inte; välj month, term eller school_year"
            )));
        }
        Ok(())
    }

    fn keeps(&self, column: &str, cell: &Cell) -> bool {
        let wanted = match column {
            "area_type" => &self.area_type,
            "area_code" => &self.area_code,
            "period" => &self.period,
            "window" => &self.window,
            _ => return true,
        };
        match (wanted, cell) {
            (None, _) => true,
            (Some(w), Cell::Text(t)) => w == t,
            _ => false,
        }
    }
}

/// One indicator's rows from some counties' published `data` reports.
#[derive(Debug, Clone)]
pub struct Table {
    pub indicator: Indicator,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    /// What `..` and `≥` mean in it, from the blocks' footnotes.
    pub footnotes: Vec<String>,
}

/// The rows of `indicator` in `reports` (the `data` reports of one term, one per county) that
/// `filter` keeps; the whole lake's rows, which every county's report carries, once.
pub fn table(name: &str, reports: &[&Report], filter: &Filter) -> Result<Table> {
    let indicator = indicators()?
        .into_iter()
        .find(|i| i.name == name)
        .ok_or_else(|| {
            let names: Vec<String> = indicators()
                .unwrap_or_default()
                .into_iter()
                .map(|i| i.name)
                .collect();
            Error::NotFound(format!(
                "indikatorn '{name}' finns inte som öppna data; välj bland: {}",
                names.join(", ")
            ))
        })?;
    let mut columns: Vec<Column> = Vec::new();
    let mut rows = Vec::new();
    let mut footnotes: Vec<String> = Vec::new();
    // The whole lake's rows, which every county's report carries: once each.
    let mut country_rows: std::collections::HashSet<Vec<String>> = Default::default();
    for r in reports {
        let Some(block) = r
            .sections
            .iter()
            .flat_map(|s| &s.blocks)
            .find(|b| b.id == name)
        else {
            continue;
        };
        if columns.is_empty() {
            columns = block.columns.clone();
        }
        let at = |c: &str| block.column(c);
        let country = at("area_type");
        let mut any = false;
        for row in &block.rows {
            let is_country = country.is_some_and(|i| row[i] == Cell::Text("country".into()));
            if is_country {
                let key: Vec<String> = row
                    .iter()
                    .filter_map(|c| match c {
                        Cell::Text(t) => Some(t.clone()),
                        _ => None,
                    })
                    .collect();
                if !country_rows.insert(key) {
                    continue;
                }
            }
            let kept = block
                .columns
                .iter()
                .zip(row)
                .all(|(c, v)| filter.keeps(&c.name, v));
            if kept {
                rows.push(row.clone());
                any = true;
            }
        }
        if any {
            for n in &block.footnotes {
                if !footnotes.contains(n) {
                    footnotes.push(n.clone());
                }
            }
        }
    }
    Ok(Table {
        indicator,
        columns,
        rows,
        footnotes,
    })
}

/// How a value is published: `..` hidden or not available, `≥` a lower bound only.
pub fn status(cell: &Cell) -> Option<&'static str> {
    match cell {
        Cell::Null => Some(".."),
        Cell::AtLeast { .. } => Some("≥"),
        _ => None,
    }
}

/// A value as JSON: numbers, text and truth values as they are; hidden or missing values and
/// bounds as `null` (their status says which).
pub fn json_value(cell: &Cell) -> serde_json::Value {
    match cell {
        Cell::Null | Cell::AtLeast { .. } => serde_json::Value::Null,
        Cell::Bool(b) => (*b).into(),
        Cell::Int(i) => (*i).into(),
        Cell::Num(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Cell::Text(t) => t.clone().into(),
    }
}

/// The table as rows of objects: each value under its column's name, and for a value not
/// published as it is, `status` (`..` or `≥`) and for a bound `at_least`.
pub fn json_rows(t: &Table) -> Vec<serde_json::Value> {
    t.rows
        .iter()
        .map(|row| {
            let mut o = serde_json::Map::new();
            let (mut status_of, mut bounds) = (serde_json::Map::new(), serde_json::Map::new());
            for (c, v) in t.columns.iter().zip(row) {
                o.insert(c.name.clone(), json_value(v));
                if let Some(s) = status(v) {
                    status_of.insert(c.name.clone(), s.into());
                }
                if let Cell::AtLeast { at_least } = v {
                    bounds.insert(c.name.clone(), (*at_least).into());
                }
            }
            if !status_of.is_empty() {
                o.insert("status".into(), status_of.into());
            }
            if !bounds.is_empty() {
                o.insert("at_least".into(), bounds.into());
            }
            o.into()
        })
        .collect()
}

/// The table as CSV that opens right in Swedish Excel (`;`, decimal comma, UTF-8 with BOM),
/// a header of the columns' names and `..` or `≥N` where a value is not published as it is;
/// every row ends with the definition and data version it comes from.
pub fn csv(t: &Table, definition: &str, data_version: u64) -> Result<String> {
    let mut w = ::csv::WriterBuilder::new()
        .delimiter(b';')
        .from_writer(Vec::new());
    let err = |e: ::csv::Error| Error::usage(format!("csv: {e}"));
    w.write_record(
        t.columns
            .iter()
            .map(|c| c.name.as_str())
            .chain(["definition", "data_version"]),
    )
    .map_err(err)?;
    let version = data_version.to_string();
    for row in &t.rows {
        w.write_record(
            t.columns
                .iter()
                .zip(row)
                .map(|(c, v)| report::export::csv_cell(c.format, v))
                .chain([definition.to_string(), version.clone()]),
        )
        .map_err(err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::usage(format!("csv: {e}")))?;
    let body = String::from_utf8(bytes).map_err(|e| Error::usage(format!("csv: {e}")))?;
    Ok(format!("\u{FEFF}{body}"))
}
