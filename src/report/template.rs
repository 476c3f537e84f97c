//! The sentences a report definition writes about its data: `{name}` placeholders filled from
//! the block's rows. A template that names something the data does not have (no rows, a
//! missing value) fails as a whole, so a heading never states half a finding.
//!
//! Placeholders: `{area}`, `{term}`, `{period}` (month), `{school_year}`, `{n}` (rows with a
//! value), `{first.COL}`, `{last.COL}`, `{max.COL}`, `{min.COL}`, `{focus.COL}` (COL a column
//! name or `label`, the chart's category; rows picked by the first series), `{trend}`
//! (ökade / minskade / var oförändrad from first to last), `{change}` (that difference in
//! procentenheter), `{rank}` (the focus row's place, highest first), `{above}` and `{below}`
//! (rows above / below the reference line), `{yes.COL}` and `{shown.COL}` (rows where a
//! yes/no column is shown as yes, and where it is shown at all: hidden rows count in neither),
//! `{names.COL}` (the labels of the rows a yes/no column shows as yes, in row order: "A, B och
//! C", the first five and "och 3 till", or "ingen").

use super::{Block, Cell};

pub struct Globals<'a> {
    pub area: &'a str,
    pub term: &'a str,
    pub period: &'a str,
    pub school_year: &'a str,
}

/// Fills a template, or `None` if any placeholder has no value.
pub fn fill(template: &str, block: &Block, g: &Globals) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}')? + start;
        out.push_str(&value(&rest[start + 1..end], block, g)?);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The column the finding is about: the first chart series, else the first numeric column.
fn measure(block: &Block) -> Option<usize> {
    let name = block
        .chart
        .as_ref()
        .and_then(|c| c.series.first().cloned())
        .or_else(|| {
            block
                .columns
                .iter()
                .find(|c| c.numeric())
                .map(|c| c.name.clone())
        })?;
    block.column(&name)
}

/// Row indices with a value in the measure column, in row order.
fn valued(block: &Block, m: usize) -> Vec<usize> {
    (0..block.rows.len())
        .filter(|&r| block.rows[r][m].as_f64().is_some())
        .collect()
}

fn value(key: &str, block: &Block, g: &Globals) -> Option<String> {
    match key {
        "area" => return Some(g.area.to_string()),
        "term" => return Some(g.term.to_string()),
        "period" => return Some(g.period.to_string()),
        "school_year" => return Some(g.school_year.to_string()),
        _ => {}
    }
    // Counts over what is shown, never over hidden rows: `{yes.met} av {shown.met}`.
    if let Some((which, col)) = key.split_once('.')
        && matches!(which, "yes" | "shown")
    {
        let c = block.column(col)?;
        let shown: Vec<&Cell> = block
            .rows
            .iter()
            .map(|r| &r[c])
            .filter(|v| **v != Cell::Null)
            .collect();
        if shown.is_empty() {
            return None;
        }
        let n = match which {
            "yes" => shown
                .iter()
                .filter(|v| matches!(v, Cell::Bool(true)))
                .count(),
            _ => shown.len(),
        };
        return Some(n.to_string());
    }
    // The rows a yes/no column marks (shown as yes), by the chart's category: "A, B och C".
    if let Some(col) = key.strip_prefix("names.") {
        let c = block.column(col)?;
        let label = block.column(&block.chart.as_ref()?.category)?;
        let names: Vec<String> = block
            .rows
            .iter()
            .filter(|r| matches!(r[c], Cell::Bool(true)))
            .map(|r| block.columns[label].display(&r[label]))
            .collect();
        return Some(match names.as_slice() {
            [] => "ingen".to_string(),
            [one] => one.clone(),
            [first @ .., last] if names.len() <= NAMES_LISTED => {
                format!("{} och {last}", first.join(", "))
            }
            _ => format!(
                "{} och {} till",
                names[..NAMES_LISTED].join(", "),
                names.len() - NAMES_LISTED
            ),
        });
    }
    let m = measure(block)?;
    let rows = valued(block, m);
    let num = |r: usize| block.rows[r][m].as_f64().unwrap_or(0.0);
    match key {
        "n" => return Some(rows.len().to_string()),
        "trend" | "change" => {
            let (a, b) = (num(*rows.first()?), num(*rows.last()?));
            if rows.len() < 2 {
                return None;
            }
            let d = b - a;
            return Some(if key == "trend" {
                if d.abs() < 0.05 {
                    "var oförändrad".into()
                } else if d > 0.0 {
                    "ökade".into()
                } else {
                    "minskade".into()
                }
            } else {
                format!("{} procentenheter", super::sv::number(d.abs(), 1))
            });
        }
        "rank" => {
            let f = focus_row(block)?;
            let v = block.rows[f][m].as_f64()?;
            return Some((rows.iter().filter(|&&r| num(r) > v).count() + 1).to_string());
        }
        "above" | "below" => {
            let reference = block.reference_value()?;
            let n = rows
                .iter()
                .filter(|&&r| {
                    if key == "above" {
                        num(r) > reference
                    } else {
                        num(r) < reference
                    }
                })
                .count();
            return Some(n.to_string());
        }
        _ => {}
    }
    let (which, col) = key.split_once('.')?;
    // Highest and lowest only mean something among at least two.
    if matches!(which, "max" | "min") && rows.len() < 2 {
        return None;
    }
    let row = match which {
        "first" => *rows.first()?,
        "last" => *rows.last()?,
        "max" => *rows.iter().max_by(|&&a, &&b| num(a).total_cmp(&num(b)))?,
        "min" => *rows.iter().min_by(|&&a, &&b| num(a).total_cmp(&num(b)))?,
        "focus" => focus_row(block)?,
        _ => return None,
    };
    let c = if col == "label" {
        block.column(&block.chart.as_ref()?.category)?
    } else {
        block.column(col)?
    };
    match &block.rows[row][c] {
        Cell::Null => None,
        cell => Some(block.columns[c].display(cell)),
    }
}

/// How many names `{names.COL}` lists before it counts the rest ("och 3 till").
const NAMES_LISTED: usize = 5;

fn focus_row(block: &Block) -> Option<usize> {
    let f = block.column(block.chart.as_ref()?.focus.as_ref()?)?;
    (0..block.rows.len()).find(|&r| matches!(block.rows[r][f], Cell::Bool(true)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Column;

    /// Targets met are counted over the targets shown: a hidden one counts in neither number,
    /// so "2 av 3" cannot tell whether the hidden target was met.
    #[test]
    fn yes_and_shown_count_only_what_is_shown() {
        let col = Column {
            name: "met".into(),
            label: "Nått".into(),
            format: crate::report::spec::Format::Bool,
            hidden: false,
        };
        let block = Block {
            id: "targets".into(),
            short: String::new(),
            title: String::new(),
            summary: String::new(),
            columns: vec![col],
            rows: vec![
                vec![Cell::Bool(true)],
                vec![Cell::Null],
                vec![Cell::Bool(false)],
                vec![Cell::Bool(true)],
            ],
            marks: Vec::new(),
            footnotes: Vec::new(),
            chart: None,
            grid: None,
        };
        let g = Globals {
            area: "Örebro",
            term: "VT2026",
            period: "2026-03",
            school_year: "2025/26",
        };
        assert_eq!(
            fill(
                "{yes.met} av {shown.met} redovisade mål är nådda",
                &block,
                &g
            )
            .as_deref(),
            Some("2 av 3 redovisade mål är nådda")
        );
        let hidden = Block {
            rows: vec![vec![Cell::Null]],
            ..block
        };
        assert_eq!(fill("{yes.met} av {shown.met}", &hidden, &g), None);
    }

    /// The rows a yes/no column marks, by name; a hidden mark names no one.
    #[test]
    fn names_lists_the_marked_rows_and_counts_the_rest() {
        let column = |name: &str, format| Column {
            name: name.into(),
            label: name.into(),
            format,
            hidden: false,
        };
        let spec: crate::report::spec::ChartSpec = toml::from_str(
            "kind = 'funnel'\ncategory = 'school'\nseries = []\naxis = ''\nsize = 'n'",
        )
        .unwrap();
        let block = |marks: &[Option<bool>]| Block {
            id: "b".into(),
            short: String::new(),
            title: String::new(),
            summary: String::new(),
            columns: vec![
                column("school", crate::report::spec::Format::Text),
                column("outside", crate::report::spec::Format::Bool),
            ],
            rows: marks
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    vec![
                        Cell::Text(format!("Skola {}", i + 1)),
                        m.map_or(Cell::Null, Cell::Bool),
                    ]
                })
                .collect(),
            marks: Vec::new(),
            footnotes: Vec::new(),
            chart: Some(spec.clone()),
            grid: None,
        };
        let g = Globals {
            area: "Örebro",
            term: "VT2026",
            period: "2026-03",
            school_year: "2025/26",
        };
        let names = |marks: &[Option<bool>]| fill("{names.outside}", &block(marks), &g).unwrap();
        assert_eq!(names(&[Some(false), None]), "ingen");
        assert_eq!(names(&[Some(true), None, Some(false)]), "Skola 1");
        assert_eq!(
            names(&[Some(true), Some(true), None, Some(true)]),
            "Skola 1, Skola 2 och Skola 4"
        );
        assert_eq!(
            names(&[Some(true); 8]),
            "Skola 1, Skola 2, Skola 3, Skola 4, Skola 5 och 3 till"
        );
    }
}
