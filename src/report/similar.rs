//! The similar schools' comparison in a school's report (`benchmark`: schools across the
//! whole lake with the same school types and between half and double the pupils).
//!
//! It is the one figure of a school's report that reads beyond its own school, municipality
//! and county: every upload anywhere moves some school's comparison, so a report holding it
//! would be built again after nearly every upload. So a report holds a placeholder in the row
//! its block names (`similar` in `reports/*.toml`), guarded by disclosure control as any
//! value, and the value is filled in ([`splice`]) from the comparison of every school computed
//! once per term and publication ([`Similar::query`]): by [`crate::publish::read_report`] for
//! what a publication serves, by [`super::build`] for a report built directly.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use serde::{Deserialize, Serialize};

use super::{Cell, MISSING_NOTE, Report, Term, spec, state_finding, sv, template};
use crate::Result;
use crate::engine::Engine;

/// Every school's similar schools in one term, for every month of it (the term window up to
/// the month): by `school|period`, how many schools and their absence in percent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Similar(pub BTreeMap<String, (i64, Option<f64>)>);

impl Similar {
    /// The comparison of every school in `term`, from the `benchmark` view.
    pub async fn query(engine: &Engine, term: Term) -> Result<Similar> {
        let (start, end) = term.months();
        let batches = engine
            .sql(&format!(
                "SELECT school_unit_code, period, similar_schools, similar_absence_pct \
                 FROM benchmark WHERE \"window\" = 'term' AND period >= '{start}' AND period <= '{end}'"
            ))
            .await?;
        let mut out = BTreeMap::new();
        for b in &batches {
            let text = |i: usize| arrow::compute::cast(b.column(i), &DataType::Utf8);
            let (school, period) = (text(0)?, text(1)?);
            let n = arrow::compute::cast(b.column(2), &DataType::Int64)?;
            let pct = arrow::compute::cast(b.column(3), &DataType::Float64)?;
            let (school, period) = (school.as_string::<i32>(), period.as_string::<i32>());
            let (n, pct) = (
                n.as_primitive::<Int64Type>(),
                pct.as_primitive::<Float64Type>(),
            );
            for r in 0..b.num_rows() {
                if school.is_null(r) || period.is_null(r) {
                    continue;
                }
                let n = if n.is_null(r) { 0 } else { n.value(r) };
                let pct = (!pct.is_null(r)).then(|| pct.value(r));
                out.insert(format!("{}|{}", school.value(r), period.value(r)), (n, pct));
            }
        }
        Ok(Similar(out))
    }
}

/// Fills the similar schools' row of every block of `report` that names one: the number of
/// schools into its label (`Liknande skolor (12 st)`), their absence into its value unless
/// disclosure control hid the value; then the block's finding and summary, which may rank it.
pub fn splice(report: &mut Report, similar: &Similar) -> Result<()> {
    let spec = super::spec(&report.report)?;
    let period = sv::month(&report.period);
    let globals = template::Globals {
        area: &report.area.name,
        term: &report.term,
        period: &period,
        school_year: &report.school_year,
    };
    let key = format!("{}|{}", report.area.code, report.period);
    let (n, pct) = similar.0.get(&key).copied().unwrap_or((0, None));
    for (section, ss) in report.sections.iter_mut().zip(&spec.sections) {
        for (blk, bs) in section.blocks.iter_mut().zip(&ss.blocks) {
            let Some(row_spec) = &bs.similar else {
                continue;
            };
            let Some(k) = blk.column(&row_spec.column) else {
                continue;
            };
            let mut missing = false;
            for row in &mut blk.rows {
                if row.first() != Some(&Cell::Text(row_spec.row.clone())) {
                    continue;
                }
                row[0] = Cell::Text(format!("{} ({n} st)", row_spec.row));
                if row[k] != Cell::Null {
                    row[k] = pct.map_or(Cell::Null, Cell::Num);
                    missing |= pct.is_none();
                }
            }
            if missing && !blk.footnotes.iter().any(|f| f == MISSING_NOTE) {
                // Where the block puts it: before the notes its definition adds.
                let at = blk.footnotes.len().saturating_sub(bs.notes.len());
                blk.footnotes.insert(at, MISSING_NOTE.into());
            }
            state_finding(blk, bs, &globals);
        }
    }
    Ok(())
}

/// Whether a report of this kind has a similar schools' row to fill.
pub fn wanted(kind: &str) -> bool {
    super::spec(kind).is_ok_and(|s: &spec::ReportSpec| {
        s.sections
            .iter()
            .flat_map(|s| &s.blocks)
            .any(|b| b.similar.is_some())
    })
}
