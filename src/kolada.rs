//! Kolada-shaped series (`/api/kolada/v3/`): the open data indicators as key figures (KPIs)
//! per municipality, county, the whole lake and school unit (`ou`), by term, with values per
//! gender `T`/`K`/`M` and their status apart from the value, in Kolada's paging envelope
//! `{values, count, next_url}`.
//!
//! Areas keep Kolada's codes: a municipality by its four digits, a county as `00` and its two
//! digits (`0018`), the whole lake as `0000`; a school unit by its eight-digit code. A
//! period is a term (`VT2026`); `year` selects the terms of a calendar year. Values come from
//! the PxWeb cubes ([`crate::pxweb::Cube`]) of the publication served, so a hidden value is
//! `null` with status `..` here as everywhere.

use crate::pxweb::Cube;
use crate::report::{Cell, Term};

/// A key figure: which table and content it reads, for which level, and the contents that
/// give its values for girls (`K`) and boys (`M`).
#[derive(Debug, Clone)]
pub struct Kpi {
    pub id: String,
    pub title: String,
    pub description: String,
    pub table: &'static str,
    pub content: &'static str,
    pub level: Option<String>,
    /// (table, content for girls, content for boys).
    pub gender: Option<(&'static str, &'static str, &'static str)>,
}

/// Every key figure, the levels' from the `at_or_above` cube (id, label).
pub fn kpis(levels: &[(String, String)]) -> Vec<Kpi> {
    let kpi = |id: &str, title: &str, description: &str, table, content| Kpi {
        id: id.into(),
        title: title.into(),
        description: description.into(),
        table,
        content,
        level: None,
        gender: None,
    };
    let mut out = vec![
        Kpi {
            gender: Some(("gender_gap", "absence_pct_k", "absence_pct_m")),
            ..kpi(
                "absence_pct",
                "Frånvaro, andel av erbjuden undervisningstid (%)",
                "Frånvarominuter (giltig och ogiltig) delat med erbjudna minuter under terminen, \
                 enligt den gemensamma definitionen; för flickor (K) och pojkar (M) ur grupper med \
                 känt kön.",
                "absence_rate",
                "absence_pct",
            )
        },
        kpi(
            "invalid_absence_pct",
            "Ogiltig frånvaro, andel av erbjuden undervisningstid (%)",
            "Ogiltiga frånvarominuter delat med erbjudna minuter under terminen.",
            "absence_rate",
            "invalid_absence_pct",
        ),
        kpi(
            "reporting_pct",
            "Rapporteringsgrad (%)",
            "Närvarorapporterade minuter delat med erbjudna minuter under terminen.",
            "reporting_rate",
            "reporting_pct",
        ),
    ];
    for (id, label) in levels {
        out.push(Kpi {
            level: Some(id.clone()),
            ..kpi(
                &format!("share_{id}"),
                &format!("Elever med {label} frånvaro, andel (%)"),
                &format!(
                    "Andelen elever vars frånvaro under terminen är {label} av den erbjudna tiden \
                     (den gemensamma nivån {id})."
                ),
                "at_or_above",
                "share_pct",
            )
        });
    }
    out
}

/// Kolada's code of an area: a county `00` + its code, the whole lake `0000`.
pub fn kolada_code(code: &str) -> String {
    match code.len() {
        2 if code == "00" => "0000".into(),
        2 => format!("00{code}"),
        _ => code.to_string(),
    }
}

/// Our code of a Kolada area code.
pub fn our_code(code: &str) -> String {
    match code {
        "0000" => "00".into(),
        c if c.len() == 4 && c.starts_with("00") => c[2..].to_string(),
        c => c.to_string(),
    }
}

/// One gender's value: `{gender, count, value, status, isdeleted}`.
fn value(gender: &str, cell: &Cell) -> serde_json::Value {
    serde_json::json!({
        "gender": gender,
        "count": 1,
        "value": crate::open::json_value(cell),
        "status": crate::open::status(cell).unwrap_or(""),
        "isdeleted": false,
    })
}

/// The cell of `content` for area `code`, level `level` and term `term` in `cube` (`None`
/// when the cube has no such row).
fn cell(cube: &Cube, code: &str, level: Option<&str>, term: &str, content: &str) -> Option<Cell> {
    let mut key = Vec::new();
    for d in &cube.dims {
        let wanted = match d.code {
            "Region" => code,
            "Niva" => level?,
            "Tid" => term,
            _ => content,
        };
        key.push(d.values.iter().position(|v| v.code == wanted)?);
    }
    Some(cube.cell(&key))
}

/// The terms a cube has, oldest first.
pub fn terms(cube: &Cube) -> Vec<String> {
    cube.dims
        .iter()
        .find(|d| d.code == "Tid")
        .map(|d| {
            d.values
                .iter()
                .filter(|v| v.code.parse::<Term>().is_ok())
                .map(|v| v.code.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Kolada's data rows of `kpi` for the areas `codes` (our codes) and `terms`: one per area
/// and term with a value, each with its values per gender; `ou` names the area field.
pub fn rows(
    kpi: &Kpi,
    cube: &Cube,
    genders: Option<&Cube>,
    codes: &[String],
    terms: &[String],
    ou: bool,
) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for code in codes {
        for term in terms {
            let Some(total) = cell(cube, code, kpi.level.as_deref(), term, kpi.content) else {
                continue;
            };
            let mut values = vec![value("T", &total)];
            if let (Some((_, k, m)), Some(g)) = (kpi.gender, genders) {
                for (gender, content) in [("K", k), ("M", m)] {
                    if let Some(c) = cell(g, code, None, term, content) {
                        values.push(value(gender, &c));
                    }
                }
            }
            let mut row = serde_json::json!({
                "kpi": kpi.id,
                "period": term,
                "values": values,
            });
            if ou {
                row["ou"] = code.clone().into();
            } else {
                row["municipality"] = kolada_code(code).into();
            }
            out.push(row);
        }
    }
    out
}
