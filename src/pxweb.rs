//! PxWeb API v2 tables (`/api/pxweb/v2/`, PxTools' PxAPI-2 specification) over the open data:
//! one table per indicator, its dimensions `Region` (school units, municipalities, counties
//! and the whole lake), `Niva` (the shared levels) or `Steg` (the staircases' steps) where the
//! indicator has them, `Tid` (months `2026M03`, terms `VT2026`, the term up to its last month
//! with data, and school years `2024/25`) and `ContentsCode` (the indicator's measures, with
//! units and decimals).
//!
//! A [`Cube`] is built from the counties' published `data` reports ([`crate::open`]), so a
//! value hidden in a report is `null` with status `..` here; a bound is `null` with status
//! `≥` and the bound in the dataset's notes. This module is pure: selection, JSON-stat 2.0,
//! CSV, XLSX and PX are computed from the cube; HTTP lives in `http/pxweb.rs`.

use std::collections::HashMap;

use crate::open::{self, Indicator};
use crate::report::{Cell, Format, Report, Term, sv};
use crate::{Error, Result};

/// The most data cells one answer may hold.
pub const MAX_DATA_CELLS: usize = 150_000;

/// One value of a dimension: its code and its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub code: String,
    pub label: String,
}

/// A dimension (a PxWeb variable).
#[derive(Debug, Clone)]
pub struct Dim {
    pub code: &'static str,
    pub label: &'static str,
    pub values: Vec<Value>,
    /// Per content value: its unit and decimals (`ContentsCode` only).
    pub units: Vec<(String, usize)>,
}

impl Dim {
    fn position(&self, code: &str) -> Option<usize> {
        self.values.iter().position(|v| v.code == code)
    }
}

/// An indicator's published values as a table of dimensions.
#[derive(Debug, Clone)]
pub struct Cube {
    pub indicator: Indicator,
    /// In the order of the data's index: `Region`, (`Niva` or `Steg`), `Tid`, `ContentsCode`.
    pub dims: Vec<Dim>,
    /// Every combination's value, row-major over `dims` (the last dimension fastest): dense,
    /// so a national table of millions of cells takes 9 bytes a cell.
    values: Vec<f64>,
    /// Per value: [`SHOWN`], [`HIDDEN`] (also: no such row) or [`BOUND`] (the value is the
    /// lower bound).
    status: Vec<u8>,
    pub footnotes: Vec<String>,
    pub updated: chrono::DateTime<chrono::Utc>,
    pub definition: String,
    /// The publication it shows (set by whoever read it; 0 when unknown).
    pub publication: u64,
}

const SHOWN: u8 = 0;
const HIDDEN: u8 = 1;
const BOUND: u8 = 2;

/// The time code of a row: `2026M03` for a month, `VT2026` for the term, `2025/26` for the
/// school year (each up to the row's month).
fn time_code(period: &str, window: &str) -> Option<String> {
    match window {
        "month" => Some(period.replacen('-', "M", 1)),
        "term" => Term::of_period(period).map(|t| t.to_string()),
        "school_year" => Term::of_period(period).map(|t| t.school_year()),
        _ => None,
    }
}

/// A table's dimension between region and time, where its rows have one.
pub struct Category {
    /// The column holding a row's value code.
    column: &'static str,
    /// The column holding its label (none: `minst {order} %`).
    label_column: Option<&'static str>,
    /// The column whose number orders the values.
    order: &'static str,
    pub code: &'static str,
    pub label: &'static str,
}

/// The shared levels and the staircases' steps.
const CATEGORIES: [Category; 2] = [
    Category {
        column: "level_id",
        label_column: None,
        order: "level_percent",
        code: "Niva",
        label: "frånvaronivå",
    },
    Category {
        column: "step_id",
        label_column: Some("step_label"),
        order: "step_order",
        code: "Steg",
        label: "åtgärdstrappans steg",
    },
];

/// Numeric columns that describe a row rather than measure anything: not contents.
const DESCRIPTIVE: [&str; 6] = [
    "level_percent",
    "min_reporting_rate",
    "step",
    "step_order",
    "band",
    "percent_band",
];

/// The category of a table whose columns `has` names, if it has one.
pub fn category(has: impl Fn(&str) -> bool) -> Option<&'static Category> {
    CATEGORIES.iter().find(|c| has(c.column))
}

/// The variables of indicator `name`'s table, in the order of its data.
pub fn variables(name: &str) -> Result<Vec<&'static str>> {
    let spec = crate::report::spec(open::DATA_REPORT)?;
    let block = spec
        .sections
        .iter()
        .flat_map(|s| &s.blocks)
        .find(|b| b.id == name)
        .ok_or_else(|| Error::NotFound(format!("tabellen '{name}' finns inte")))?;
    let mut out = vec!["Region"];
    out.extend(category(|n| block.columns.iter().any(|c| c.name == n)).map(|c| c.code));
    out.extend(["Tid", "ContentsCode"]);
    Ok(out)
}

fn time_label(code: &str) -> String {
    if code.contains('/') {
        return format!("läsår {code}");
    }
    match code.split_once('M') {
        Some((y, m)) => sv::month(&format!("{y}-{m}")),
        None => code.to_string(),
    }
}

/// The sort key of a time code: months, terms and school years in time order, a term after
/// its months and a school year after its spring term.
fn time_order(code: &str) -> (String, u8) {
    if let Some((start, _)) = code.split_once('/') {
        return (
            format!("{}-06", start.parse::<i32>().unwrap_or_default() + 1),
            2,
        );
    }
    match code.split_once('M') {
        Some((y, m)) => (format!("{y}-{m}"), 0),
        None => {
            let t: Option<Term> = code.parse().ok();
            (t.map(|t| t.months().1).unwrap_or_default(), 1)
        }
    }
}

/// Builds indicator `name`'s cube from `reports` (the `data` reports of every county and term
/// of one publication).
pub fn cube(
    name: &str,
    reports: &[&Report],
    updated: chrono::DateTime<chrono::Utc>,
    definition: &str,
) -> Result<Cube> {
    let table = open::table(name, reports, &open::Filter::default())?;
    let col = |n: &str| table.columns.iter().position(|c| c.name == n);
    let (Some(area_type), Some(area_code), Some(area_name), Some(period), Some(window)) = (
        col("area_type"),
        col("area_code"),
        col("area_name"),
        col("period"),
        col("window"),
    ) else {
        return Err(Error::usage(format!("{name}: saknar område eller period")));
    };
    let category = category(|n| col(n).is_some());
    let level = category.and_then(|c| col(c.column));
    let contents: Vec<usize> = table
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.numeric() && !DESCRIPTIVE.contains(&c.name.as_str()))
        .map(|(i, _)| i)
        .collect();
    let text = |row: &[Cell], i: usize| match &row[i] {
        Cell::Text(t) => t.clone(),
        _ => String::new(),
    };
    // Regions: the whole lake, counties, municipalities, schools, each by code.
    let mut regions: Vec<(u8, String, String)> = Vec::new();
    let mut levels: Vec<(i64, String, String)> = Vec::new();
    let mut times: Vec<String> = Vec::new();
    let mut rows: Vec<(String, Option<String>, String, &Vec<Cell>)> = Vec::new();
    let (mut seen_regions, mut seen_levels, mut seen_times) = (
        std::collections::HashSet::new(),
        std::collections::HashSet::new(),
        std::collections::HashSet::new(),
    );
    for row in &table.rows {
        let Some(t) = time_code(&text(row, period), &text(row, window)) else {
            continue;
        };
        let code = text(row, area_code);
        let rank = match text(row, area_type).as_str() {
            "country" => 0,
            "county" => 1,
            "municipality" => 2,
            _ => 3,
        };
        if seen_regions.insert(code.clone()) {
            let name = text(row, area_name);
            regions.push((rank, code.clone(), name));
        }
        let lv = level.map(|l| text(row, l));
        if let (Some(l), Some(c)) = (&lv, category)
            && seen_levels.insert(l.clone())
        {
            let order = col(c.order)
                .and_then(|p| row[p].as_f64())
                .unwrap_or_default() as i64;
            let label = match c.label_column.and_then(&col) {
                Some(k) => text(row, k),
                None => format!("minst {order} %"),
            };
            levels.push((order, l.clone(), label));
        }
        if seen_times.insert(t.clone()) {
            times.push(t.clone());
        }
        rows.push((code, lv, t, row));
    }
    regions.sort();
    levels.sort();
    times.sort_by_key(|t| time_order(t));
    let mut dims = vec![Dim {
        code: "Region",
        label: "region",
        values: regions
            .into_iter()
            .map(|(_, code, label)| Value { code, label })
            .collect(),
        units: Vec::new(),
    }];
    if let (Some(_), Some(c)) = (level, category) {
        dims.push(Dim {
            code: c.code,
            label: c.label,
            values: levels
                .into_iter()
                .map(|(_, code, label)| Value { code, label })
                .collect(),
            units: Vec::new(),
        });
    }
    dims.push(Dim {
        code: "Tid",
        label: "tid",
        values: times
            .iter()
            .map(|t| Value {
                code: t.clone(),
                label: time_label(t),
            })
            .collect(),
        units: Vec::new(),
    });
    dims.push(Dim {
        code: "ContentsCode",
        label: "tabellinnehåll",
        values: contents
            .iter()
            .map(|&i| Value {
                code: table.columns[i].name.clone(),
                label: table.columns[i].label.clone(),
            })
            .collect(),
        units: contents
            .iter()
            .map(|&i| {
                let c = &table.columns[i];
                let unit = match c.format {
                    Format::Pct => "procent",
                    Format::Pp => "procentenheter",
                    Format::Int => "antal",
                    _ => "värde",
                };
                (unit.to_string(), c.decimals())
            })
            .collect(),
    });
    let index: Vec<HashMap<&str, usize>> = dims
        .iter()
        .map(|d| {
            d.values
                .iter()
                .enumerate()
                .map(|(i, v)| (v.code.as_str(), i))
                .collect()
        })
        .collect();
    let size: usize = dims.iter().map(|d| d.values.len()).product();
    let (mut values, mut status) = (vec![f64::NAN; size], vec![HIDDEN; size]);
    let mut filled = vec![false; size];
    let last = dims.len() - 1;
    let strides = strides(&dims);
    for (code, lv, t, row) in &rows {
        let mut at = index[0][code.as_str()] * strides[0];
        if let Some(l) = lv {
            at += index[1][l.as_str()] * strides[1];
        }
        at += index[last - 1][t.as_str()] * strides[last - 1];
        for (k, &c) in contents.iter().enumerate() {
            // The first row of a combination stands (the whole lake's term, which every
            // county's report carries, up to the county's own last month).
            if filled[at + k] {
                continue;
            }
            filled[at + k] = true;
            (values[at + k], status[at + k]) = match &row[c] {
                Cell::AtLeast { at_least } => (*at_least, BOUND),
                c => match c.as_f64() {
                    Some(v) => (v, SHOWN),
                    None => (f64::NAN, HIDDEN),
                },
            };
        }
    }
    Ok(Cube {
        indicator: table.indicator,
        dims,
        values,
        status,
        footnotes: table.footnotes,
        updated,
        definition: definition.to_string(),
        publication: 0,
    })
}

/// How far apart consecutive values of each dimension lie in the dense value list.
fn strides(dims: &[Dim]) -> Vec<usize> {
    let mut out = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        out[i] = out[i + 1] * dims[i + 1].values.len();
    }
    out
}

/// Which values of each dimension an answer holds (positions, in the dimension's order).
pub type Selection = Vec<Vec<usize>>;

impl Cube {
    /// The selection of `asked` (variable code → value codes or expressions: `*`, `18*`,
    /// `*01`, `*M*`, `top(n)`, `bottom(n)`, `from(x)`, `to(x)`, `range(a,b)`); a variable not asked
    /// for takes its default (the latest time, every region but school units (all of them in a
    /// table of school units alone), every level
    /// and content).
    pub fn select(&self, asked: &[(String, Vec<String>)]) -> Result<Selection> {
        for (var, _) in asked {
            if !self.dims.iter().any(|d| d.code.eq_ignore_ascii_case(var)) {
                return Err(Error::usage(format!(
                    "variabeln '{var}' finns inte i tabellen {}; den har {}",
                    self.indicator.name,
                    self.dims
                        .iter()
                        .map(|d| d.code)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        let mut out = Vec::new();
        for d in &self.dims {
            let all: Vec<usize> = (0..d.values.len()).collect();
            let chosen = match asked.iter().find(|(v, _)| d.code.eq_ignore_ascii_case(v)) {
                Some((_, codes)) => {
                    let mut picked: Vec<usize> = Vec::new();
                    for expr in codes {
                        for p in self.expression(d, expr)? {
                            if !picked.contains(&p) {
                                picked.push(p);
                            }
                        }
                    }
                    picked
                }
                None => match d.code {
                    "Tid" => all.last().copied().into_iter().collect(),
                    // Every area but school units; a table of school units alone, all.
                    "Region" if d.values.iter().any(|v| v.code.len() <= 4) => all
                        .into_iter()
                        .filter(|&i| d.values[i].code.len() <= 4)
                        .collect(),
                    _ => all,
                },
            };
            if chosen.is_empty() {
                return Err(Error::usage(format!(
                    "inga värden valda för variabeln {}",
                    d.code
                )));
            }
            out.push(chosen);
        }
        let cells: usize = out.iter().map(Vec::len).product();
        if cells > MAX_DATA_CELLS {
            return Err(Error::Forbidden(format!(
                "urvalet ger {cells} dataceller; högst {MAX_DATA_CELLS} får hämtas per anrop \
                 (maxDataCells), dela upp urvalet"
            )));
        }
        Ok(out)
    }

    fn expression(&self, d: &Dim, expr: &str) -> Result<Vec<usize>> {
        let expr = expr.trim();
        let n = d.values.len();
        let lower = expr.to_ascii_lowercase();
        let arg = |prefix: &str| -> Option<&str> {
            lower
                .starts_with(prefix)
                .then(|| &expr[prefix.len()..expr.len().saturating_sub(1)])
                .filter(|_| expr.ends_with(')'))
        };
        let count = |a: &str| -> Result<usize> {
            a.split(',')
                .next()
                .unwrap_or_default()
                .trim()
                .parse::<usize>()
                .map_err(|_| Error::usage(format!("{}: '{expr}' är inget antal", d.code)))
        };
        let at = |code: &str| -> Result<usize> {
            d.position(code.trim()).ok_or_else(|| {
                Error::usage(format!(
                    "värdet '{}' finns inte för variabeln {}",
                    code.trim(),
                    d.code
                ))
            })
        };
        // Time counts from its latest value, everything else from its first.
        let from_end = d.code == "Tid";
        Ok(if expr == "*" {
            (0..n).collect()
        } else if let Some(a) = arg("top(") {
            let k = count(a)?.min(n);
            if from_end {
                ((n - k)..n).rev().collect()
            } else {
                (0..k).collect()
            }
        } else if let Some(a) = arg("bottom(") {
            let k = count(a)?.min(n);
            if from_end {
                (0..k).collect()
            } else {
                ((n - k)..n).collect()
            }
        } else if let Some(a) = arg("from(") {
            (at(a)?..n).collect()
        } else if let Some(a) = arg("to(") {
            (0..=at(a)?).collect()
        } else if let Some(a) = arg("range(") {
            let (x, y) = a.split_once(',').ok_or_else(|| {
                Error::usage(format!("{}: range behöver två värden: '{expr}'", d.code))
            })?;
            let (x, y) = (at(x)?, at(y)?);
            (x.min(y)..=x.max(y)).collect()
        } else if let Some(inner) = expr.strip_prefix('*').and_then(|e| e.strip_suffix('*')) {
            (0..n)
                .filter(|&i| d.values[i].code.contains(inner))
                .collect()
        } else if let Some(prefix) = expr.strip_suffix('*') {
            let m: Vec<usize> = (0..n)
                .filter(|&i| d.values[i].code.starts_with(prefix))
                .collect();
            m
        } else if let Some(suffix) = expr.strip_prefix('*') {
            (0..n)
                .filter(|&i| d.values[i].code.ends_with(suffix))
                .collect()
        } else {
            vec![at(expr)?]
        })
    }

    /// Every combination of `sel`, the last dimension fastest (JSON-stat's row-major order).
    fn combinations(sel: &Selection) -> Vec<Vec<usize>> {
        let mut out: Vec<Vec<usize>> = vec![Vec::new()];
        for positions in sel {
            out = out
                .into_iter()
                .flat_map(|prefix| {
                    positions.iter().map(move |&p| {
                        let mut k = prefix.clone();
                        k.push(p);
                        k
                    })
                })
                .collect();
        }
        out
    }

    /// The value at a position in every dimension, as a report cell (a count of the
    /// contents' integers as an integer).
    pub fn cell(&self, key: &[usize]) -> Cell {
        let at: usize = key
            .iter()
            .zip(strides(&self.dims))
            .map(|(k, s)| k * s)
            .sum();
        let v = self.values[at];
        let decimals = key
            .last()
            .and_then(|&c| self.dims.last()?.units.get(c))
            .map_or(1, |(_, d)| *d);
        match self.status[at] {
            SHOWN if decimals == 0 && v.fract() == 0.0 => Cell::Int(v as i64),
            SHOWN => Cell::Num(v),
            BOUND => Cell::AtLeast { at_least: v },
            _ => Cell::Null,
        }
    }

    /// A dimension's label in the answer's language.
    fn dim_label(d: &Dim, en: bool) -> String {
        if !en {
            return d.label.to_string();
        }
        match d.code {
            "Region" => "region",
            "Niva" => "absence level",
            "Steg" => "staircase step",
            "Tid" => "time",
            _ => "contents",
        }
        .to_string()
    }

    /// A value's label in the answer's language: in English the levels, times, contents and
    /// the whole lake (names of places, schools and staircases stay as they are).
    fn value_label(d: &Dim, p: usize, en: bool) -> String {
        let v = &d.values[p];
        if !en {
            return v.label.clone();
        }
        match d.code {
            "Region" if v.code == "00" => "All areas in the data".into(),
            "Niva" => v.label.replace("minst", "at least"),
            "Tid" => {
                if v.code.contains('/') {
                    format!("school year {}", v.code)
                } else if let Some((y, m)) = v.code.split_once('M') {
                    let months = [
                        "January",
                        "February",
                        "March",
                        "April",
                        "May",
                        "June",
                        "July",
                        "August",
                        "September",
                        "October",
                        "November",
                        "December",
                    ];
                    let m: usize = m.parse().unwrap_or(1);
                    format!("{} {y}", months[m.clamp(1, 12) - 1])
                } else if let Some(y) = v.code.strip_prefix("HT") {
                    format!("autumn term {y}")
                } else if let Some(y) = v.code.strip_prefix("VT") {
                    format!("spring term {y}")
                } else {
                    v.code.clone()
                }
            }
            "ContentsCode" => v.code.replace('_', " "),
            _ => v.label.clone(),
        }
    }

    /// A content's unit in the answer's language.
    fn unit_label(unit: &str, en: bool) -> String {
        if !en {
            return unit.to_string();
        }
        match unit {
            "procent" => "percent",
            "procentenheter" => "percentage points",
            "antal" => "number",
            _ => "value",
        }
        .to_string()
    }

    /// JSON-stat 2.0: the dataset of `sel` (`None`: the metadata, every value listed and no
    /// data, as PxWeb's `/metadata` answers).
    pub fn json_stat(&self, sel: Option<&Selection>, lang_en: bool) -> serde_json::Value {
        use serde_json::{Map, Value as J, json};
        let all: Selection;
        let chosen = match sel {
            Some(s) => s,
            None => {
                all = self
                    .dims
                    .iter()
                    .map(|d| (0..d.values.len()).collect())
                    .collect();
                &all
            }
        };
        let mut dimension = Map::new();
        for (d, positions) in self.dims.iter().zip(chosen) {
            let (mut index, mut label) = (Map::new(), Map::new());
            for (i, &p) in positions.iter().enumerate() {
                index.insert(d.values[p].code.clone(), i.into());
                label.insert(
                    d.values[p].code.clone(),
                    Self::value_label(d, p, lang_en).into(),
                );
            }
            let mut category = json!({ "index": index, "label": label });
            if d.code == "ContentsCode" {
                let mut unit = Map::new();
                for &p in positions {
                    let (u, decimals) = &d.units[p];
                    unit.insert(
                        d.values[p].code.clone(),
                        json!({ "label": Self::unit_label(u, lang_en), "decimals": decimals }),
                    );
                }
                category["unit"] = unit.into();
            }
            dimension.insert(
                d.code.into(),
                json!({
                    "label": Self::dim_label(d, lang_en),
                    "category": category,
                    "extension": {
                        "elimination": false,
                        "show": if d.code == "Region" { "code_value" } else { "value" },
                        "codeLists": [],
                    },
                }),
            );
        }
        let (values, status) = match sel {
            None => (Vec::new(), Map::new()),
            Some(s) => {
                let mut status = Map::new();
                let values: Vec<J> = Self::combinations(s)
                    .iter()
                    .enumerate()
                    .map(|(i, key)| {
                        let c = self.cell(key);
                        if let Some(st) = open::status(&c) {
                            status.insert(i.to_string(), st.into());
                        }
                        open::json_value(&c)
                    })
                    .collect();
                (values, status)
            }
        };
        let mut notes = vec![self.indicator.description.clone()];
        notes.extend(self.footnotes.iter().cloned());
        notes.push(format!("Definition: {}.", self.definition));
        let mut out = json!({
            "version": "2.0",
            "class": "dataset",
            "label": if lang_en { self.indicator.name.clone() } else { self.indicator.title.clone() },
            "source": "Närvarolagret",
            "updated": self.updated.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "id": self.dims.iter().map(|d| d.code).collect::<Vec<_>>(),
            "size": chosen.iter().map(Vec::len).collect::<Vec<_>>(),
            "role": { "geo": ["Region"], "time": ["Tid"], "metric": ["ContentsCode"] },
            "dimension": dimension,
            "value": values,
            "note": notes,
            "extension": {
                "px": {
                    "tableid": self.indicator.name,
                    "decimals": 1,
                    "official-statistics": false,
                    "contents": self.indicator.title,
                },
                "definition": self.definition,
                "unit": self.indicator.unit,
                "policy": self.indicator.policy,
            },
        });
        if !status.is_empty() {
            out["status"] = status.into();
        }
        out
    }

    /// The answer as rows: each dimension but `ContentsCode` as a column, one column per
    /// content, in `sel`'s order.
    fn rows(&self, sel: &Selection, en: bool) -> (Vec<String>, Vec<Vec<String>>, Vec<Vec<Cell>>) {
        let last = self.dims.len() - 1;
        let heads: Vec<String> = self.dims[..last]
            .iter()
            .map(|d| Self::dim_label(d, en))
            .chain(
                sel[last]
                    .iter()
                    .map(|&p| Self::value_label(&self.dims[last], p, en)),
            )
            .collect();
        let (mut labels, mut values) = (Vec::new(), Vec::new());
        for key in Self::combinations(&sel[..last].to_vec()) {
            labels.push(
                key.iter()
                    .enumerate()
                    .map(|(d, &p)| Self::value_label(&self.dims[d], p, en))
                    .collect(),
            );
            values.push(
                sel[last]
                    .iter()
                    .map(|&c| {
                        let mut full = key.clone();
                        full.push(c);
                        self.cell(&full)
                    })
                    .collect(),
            );
        }
        (heads, labels, values)
    }

    /// CSV: Swedish (`;`, decimal comma, UTF-8 with BOM) for `sv`, else `,` and a point;
    /// `..` for a hidden value, `≥N` for a bound.
    pub fn csv(&self, sel: &Selection, swedish: bool) -> Result<String> {
        let last = self.dims.len() - 1;
        let formats: Vec<usize> = sel[last]
            .iter()
            .map(|&p| self.dims[last].units[p].1)
            .collect();
        let (heads, labels, values) = self.rows(sel, !swedish);
        let mut w = ::csv::WriterBuilder::new()
            .delimiter(if swedish { b';' } else { b',' })
            .from_writer(Vec::new());
        let err = |e: ::csv::Error| Error::usage(format!("csv: {e}"));
        w.write_record(&heads).map_err(err)?;
        for (l, v) in labels.iter().zip(&values) {
            let number = |f: f64, decimals: usize| match swedish {
                true => sv::plain(f, decimals),
                false => format!("{f:.decimals$}"),
            };
            let cells = v.iter().zip(&formats).map(|(c, &decimals)| match c {
                Cell::AtLeast { at_least } => format!("≥{}", number(*at_least, decimals)),
                c => c
                    .as_f64()
                    .map(|f| number(f, decimals))
                    .unwrap_or_else(|| "..".into()),
            });
            w.write_record(l.iter().cloned().chain(cells))
                .map_err(err)?;
        }
        let body = String::from_utf8(w.into_inner().map_err(|e| Error::usage(e.to_string()))?)
            .map_err(|e| Error::usage(e.to_string()))?;
        Ok(if swedish {
            format!("\u{FEFF}{body}")
        } else {
            body
        })
    }

    /// XLSX: one sheet, the table with numbers as numbers and `..` where hidden, then the notes.
    pub fn xlsx(&self, sel: &Selection, en: bool) -> Result<Vec<u8>> {
        let err = |e: rust_xlsxwriter::XlsxError| Error::usage(format!("xlsx: {e}"));
        let (heads, labels, values) = self.rows(sel, en);
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        let bold = rust_xlsxwriter::Format::new().set_bold();
        ws.write_string_with_format(0, 0, &self.indicator.title, &bold)
            .map_err(err)?;
        for (c, h) in heads.iter().enumerate() {
            ws.write_string_with_format(2, c as u16, h, &bold)
                .map_err(err)?;
        }
        let mut r = 2u32;
        for (l, v) in labels.iter().zip(&values) {
            r += 1;
            for (c, s) in l.iter().enumerate() {
                ws.write_string(r, c as u16, s).map_err(err)?;
            }
            for (k, cell) in v.iter().enumerate() {
                let c = (l.len() + k) as u16;
                match cell.as_f64() {
                    Some(f) => ws.write_number(r, c, f),
                    None => ws.write_string(r, c, open::status(cell).unwrap_or("..")),
                }
                .map_err(err)?;
            }
        }
        for n in self.footnotes.iter().chain([&self.indicator.description]) {
            r += 2;
            ws.write_string(r, 0, n).map_err(err)?;
        }
        wb.save_to_buffer().map_err(err)
    }

    /// PX, the PC-Axis file format: keywords, then the values in the stub/heading order with
    /// `".."` for a hidden value.
    pub fn px(&self, sel: &Selection) -> String {
        let q = |s: &str| format!("\"{}\"", s.replace('"', "'"));
        let list = |v: Vec<String>| v.iter().map(|s| q(s)).collect::<Vec<_>>().join(",");
        let last = self.dims.len() - 1;
        let mut out = String::new();
        out.push_str(
            "CHARSET=\"ANSI\";\nAXIS-VERSION=\"2013\";\nCODEPAGE=\"utf-8\";\nLANGUAGE=\"sv\";\n",
        );
        out.push_str(&format!(
            "DECIMALS=1;\nSHOWDECIMALS=1;\nMATRIX={};\nSUBJECT-CODE=\"NV\";\nSUBJECT-AREA=\"Skolfrånvaro\";\n",
            q(&self.indicator.name)
        ));
        out.push_str(&format!(
            "TITLE={};\nCONTENTS={};\nUNITS={};\n",
            q(&self.indicator.title),
            q(&self.indicator.title),
            q(&self.indicator.unit)
        ));
        let stub: Vec<String> = self.dims[..last]
            .iter()
            .map(|d| d.label.to_string())
            .collect();
        out.push_str(&format!(
            "STUB={};\nHEADING={};\n",
            list(stub),
            q(self.dims[last].label)
        ));
        for (d, positions) in self.dims.iter().zip(sel) {
            out.push_str(&format!(
                "VALUES({})={};\nCODES({})={};\n",
                q(d.label),
                list(
                    positions
                        .iter()
                        .map(|&p| d.values[p].label.clone())
                        .collect()
                ),
                q(d.label),
                list(
                    positions
                        .iter()
                        .map(|&p| d.values[p].code.clone())
                        .collect()
                )
            ));
        }
        out.push_str(&format!(
            "LAST-UPDATED={};\nSOURCE=\"Närvarolagret\";\nNOTE={};\nDATA=\n",
            q(&self.updated.format("%Y%m%d %H:%M").to_string()),
            q(&self.indicator.description)
        ));
        let (_, _, values) = self.rows(sel, false);
        for v in values {
            let line: Vec<String> = v
                .iter()
                .map(|c| match c.as_f64() {
                    Some(f) => format!("{f:.3}"),
                    None => "\"..\"".into(),
                })
                .collect();
            out.push_str(&line.join(" "));
            out.push('\n');
        }
        out.push_str(";\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dim(code: &'static str, codes: &[&str]) -> Dim {
        Dim {
            code,
            label: code,
            values: codes
                .iter()
                .map(|c| Value {
                    code: c.to_string(),
                    label: c.to_string(),
                })
                .collect(),
            units: Vec::new(),
        }
    }

    fn cube(regions: Vec<String>) -> Cube {
        let regions: Vec<&str> = regions.iter().map(String::as_str).collect();
        let mut contents = dim("ContentsCode", &["students", "absence_pct"]);
        contents.units = vec![("antal".into(), 0), ("procent".into(), 1)];
        let dims = vec![
            dim("Region", &regions),
            dim("Tid", &["2025M12", "HT2025", "2026M01", "VT2026"]),
            contents,
        ];
        let size = dims.iter().map(|d| d.values.len()).product();
        Cube {
            indicator: Indicator {
                name: "absence_rate".into(),
                title: "Frånvaro".into(),
                description: String::new(),
                unit: String::new(),
                policy: String::new(),
            },
            dims,
            values: (0..size).map(|i| i as f64).collect(),
            status: (0..size).map(|i| (i % 3) as u8).collect(),
            footnotes: Vec::new(),
            updated: chrono::DateTime::UNIX_EPOCH,
            definition: String::new(),
            publication: 0,
        }
    }

    fn codes(c: &Cube, sel: &Selection, d: usize) -> Vec<String> {
        sel[d]
            .iter()
            .map(|&p| c.dims[d].values[p].code.clone())
            .collect()
    }

    #[test]
    fn english_answers_label_times_contents_units_and_the_whole_lake_in_english() {
        let c = cube(vec!["00".into(), "1880".into()]);
        let en = c.json_stat(None, true);
        let sv = c.json_stat(None, false);
        let label = |j: &serde_json::Value, d: &str, v: &str| {
            j["dimension"][d]["category"]["label"][v]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(label(&en, "Tid", "VT2026"), "spring term 2026");
        assert_eq!(label(&en, "Tid", "HT2025"), "autumn term 2025");
        assert_eq!(label(&en, "Tid", "2025M12"), "December 2025");
        assert_eq!(label(&en, "Region", "00"), "All areas in the data");
        assert_eq!(label(&en, "ContentsCode", "absence_pct"), "absence pct");
        assert_eq!(en["dimension"]["Tid"]["label"], "time");
        assert_eq!(
            en["dimension"]["ContentsCode"]["category"]["unit"]["absence_pct"]["label"],
            "percent"
        );
        assert_eq!(label(&sv, "Tid", "VT2026"), "VT2026");
        assert_eq!(
            sv["dimension"]["ContentsCode"]["category"]["unit"]["absence_pct"]["label"],
            "procent"
        );
        let csv = c.csv(&c.select(&[]).unwrap(), false).unwrap();
        assert!(csv.contains("spring term 2026"), "{csv}");
    }

    #[test]
    fn selections_pick_what_pxweb_clients_ask_for() {
        let c = cube(vec![
            "00".into(),
            "18".into(),
            "1880".into(),
            "18800101".into(),
        ]);
        let ask =
            |v: &str, e: &[&str]| vec![(v.to_string(), e.iter().map(|s| s.to_string()).collect())];
        let tid = |e: &[&str]| codes(&c, &c.select(&ask("Tid", e)).unwrap(), 1);
        assert_eq!(
            tid(&["top(2)"]),
            ["VT2026", "2026M01"],
            "time counts from the latest"
        );
        assert_eq!(tid(&["bottom(1)"]), ["2025M12"]);
        assert_eq!(tid(&["from(HT2025)"]), ["HT2025", "2026M01", "VT2026"]);
        assert_eq!(tid(&["to(HT2025)"]), ["2025M12", "HT2025"]);
        assert_eq!(tid(&["range(2026M01,HT2025)"]), ["HT2025", "2026M01"]);
        assert_eq!(tid(&["*M*"]), ["2025M12", "2026M01"]);
        let region = |e: &[&str]| codes(&c, &c.select(&ask("region", e)).unwrap(), 0);
        assert_eq!(region(&["18*"]), ["18", "1880", "18800101"]);
        assert_eq!(region(&["*01"]), ["18800101"]);
        assert_eq!(region(&["1880", "1880", "00"]), ["1880", "00"]);
        // The default: the latest time, every region but school units, every content.
        let d = c.select(&[]).unwrap();
        assert_eq!(codes(&c, &d, 0), ["00", "18", "1880"]);
        assert_eq!(codes(&c, &d, 1), ["VT2026"]);
        assert_eq!(codes(&c, &d, 2), ["students", "absence_pct"]);
        for (v, e, says) in [
            ("Kön", "K", "Kön"),
            ("Tid", "VT1999", "VT1999"),
            ("Tid", "top(x)", "antal"),
            ("Tid", "range(VT2026)", "range"),
        ] {
            let err = c.select(&ask(v, &[e])).unwrap_err().to_string();
            assert!(err.contains(says), "{e}: {err}");
        }
        // Statuses: shown (an integer content as an integer), hidden, a bound.
        assert_eq!(c.cell(&[0, 0, 0]), Cell::Int(0));
        assert_eq!(c.cell(&[0, 0, 1]), Cell::Null);
        assert_eq!(c.cell(&[0, 1, 0]), Cell::AtLeast { at_least: 2.0 });
        assert_eq!(c.cell(&[0, 1, 1]), Cell::Num(3.0));
    }

    #[test]
    fn more_cells_than_max_data_cells_are_refused() {
        let c = cube((0..MAX_DATA_CELLS / 4).map(|i| format!("{i:08}")).collect());
        let all = vec![
            ("Region".to_string(), vec!["*".to_string()]),
            ("Tid".to_string(), vec!["*".to_string()]),
        ];
        let e = c.select(&all).unwrap_err();
        assert!(matches!(e, Error::Forbidden(_)), "{e}");
        assert!(e.to_string().contains("maxDataCells"));
        assert!(c.select(&all[..1]).is_ok(), "one time: within the limit");
    }
}
