//! The smaller inputs: actions per school and month, the school unit register, and grade 9
//! outcomes per school and school year.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Builder, Int32Builder, RecordBatch, StringBuilder};
use chrono::NaiveDate;

use super::schema::{ACTIONS, Kind, SCHOOL};
use super::source::RawTable;
use super::{Context, KeySet, Period, Problem, Problems, Row, missing_columns, unknown_columns};
use crate::reference;

type Parsed = Result<(RecordBatch, KeySet, Vec<Problem>), Vec<Problem>>;

const MAX_COUNT: i64 = 1_000_000;
pub const ORGANISER_TYPES: [&str; 4] = ["KOMMUN", "ENSKILD", "STAT", "REGION"];

/// Runs `row_fn` over every row, collecting problems; the caller gets the rows only if no
/// row had any.
fn rows<T>(
    table: &RawTable,
    required: &[&str],
    mut row_fn: impl FnMut(&mut Row) -> Option<T>,
) -> Result<Vec<T>, Vec<Problem>> {
    let missing = missing_columns(table, required);
    if !missing.is_empty() {
        return Err(missing);
    }
    let mut problems = Problems::default();
    let mut out = Vec::with_capacity(table.nrows);
    for i in 0..table.nrows {
        let mut r = Row {
            table,
            i,
            problems: &mut problems,
        };
        if let Some(v) = row_fn(&mut r) {
            out.push(v);
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems.finish())
    }
}

/// Refuses a second row with the same key, naming the row it repeats.
fn check_unique<K: std::hash::Hash + Eq>(
    keys: impl Iterator<Item = (usize, K, String)>,
    columns: &str,
) -> Problems {
    let mut seen = HashMap::new();
    let mut problems = Problems::default();
    for (row, key, shown) in keys {
        // Every repeat is reported against the key's first row.
        let first = *seen.entry(key).or_insert(row);
        if first != row {
            problems.push(
                Problem::at("duplicate_row", row)
                    .column(columns)
                    .value(shown)
                    .msg(format!("samma nyckel finns redan på rad {first}")),
            );
        }
    }
    problems
}

fn finish(
    schema_kind: Kind,
    columns: Vec<ArrayRef>,
    keys: KeySet,
    warnings: Vec<Problem>,
    problems: Problems,
) -> Parsed {
    if !problems.is_empty() {
        return Err(problems.finish());
    }
    let batch = RecordBatch::try_new(schema_kind.validated_schema(), columns)
        .expect("batch matches its schema");
    Ok((batch, keys, warnings))
}

pub fn parse_actions(table: &RawTable, ctx: &Context) -> Parsed {
    let mut required = vec![SCHOOL, "period"];
    required.extend(ACTIONS);
    let parsed = rows(table, &required, |r| {
        let school = r.school_unit_code();
        let period = r.period(ctx.today);
        let counts: Vec<Option<i64>> = ACTIONS.iter().map(|a| r.count(a, MAX_COUNT)).collect();
        if let (Some(s), Some(p)) = (&school, period) {
            r.check_registered(ctx, s, p);
        }
        let counts: Vec<i64> = counts.into_iter().collect::<Option<_>>()?;
        Some((r.number(), school?, period?, counts))
    })?;
    let problems = check_unique(
        parsed
            .iter()
            .map(|(row, s, p, _)| (*row, (s.clone(), *p), format!("{s} {p}"))),
        "school_unit_code, period",
    );
    let mut school = StringBuilder::new();
    let mut period = StringBuilder::new();
    let mut counts: [Int32Builder; 5] = Default::default();
    let mut keys = KeySet::default();
    for (_, s, p, c) in &parsed {
        school.append_value(s);
        period.append_value(p.to_string());
        for (b, v) in counts.iter_mut().zip(c) {
            b.append_value(*v as i32);
        }
        keys.insert(vec![p.to_string()], s.clone());
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(school.finish()), Arc::new(period.finish())];
    columns.extend(counts.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    let warnings = unknown_columns(table, |c| required.contains(&c));
    finish(Kind::Actions, columns, keys, warnings, problems)
}

fn date(r: &mut Row, col: &str, raw: Option<String>) -> Option<Option<NaiveDate>> {
    let Some(raw) = raw else { return Some(None) };
    match NaiveDate::parse_from_str(&raw, "%Y-%m-%d") {
        Ok(d) => Some(Some(d)),
        Err(_) => {
            let p = r
                .problem("invalid_date", col)
                .value(&raw)
                .msg("datumet ska skrivas ÅÅÅÅ-MM-DD");
            r.push(p);
            None
        }
    }
}

struct RegisterRow {
    row: usize,
    school: String,
    name: String,
    municipality: String,
    organiser: String,
    types: String,
    from: NaiveDate,
    to: Option<NaiveDate>,
}

pub fn parse_register(table: &RawTable) -> Parsed {
    let required = [
        SCHOOL,
        "school_name",
        "municipality_code",
        "organiser_type",
        "school_types",
        "valid_from",
    ];
    let parsed = rows(table, &required, |r| {
        let school = r.school_unit_code();
        let name = r.text("school_name");
        let municipality = r.text("municipality_code").and_then(|m| {
            if reference::municipality(&m).is_some() {
                Some(m)
            } else {
                let p = r
                    .problem("unknown_municipality", "municipality_code")
                    .value(&m)
                    .msg("okänd kommunkod; ange SCB:s fyrsiffriga kommunkod, t.ex. 1880");
                r.push(p);
                None
            }
        });
        let organiser = r.one_of("organiser_type", "invalid_organiser_type", &ORGANISER_TYPES);
        let types = r.text("school_types");
        let raw_from = r.text("valid_from");
        let from = raw_from.map(|f| date(r, "valid_from", Some(f)));
        let raw_to = r.opt_text("valid_to");
        let to = date(r, "valid_to", raw_to.clone());
        let (from, to) = (from??, to?);
        if let (Some(f), Some(t)) = (from, to)
            && t < f
        {
            let p = r
                .problem("invalid_date_range", "valid_to")
                .value(raw_to.unwrap_or_default())
                .msg(format!("slutdatumet ligger före startdatumet {f}"));
            r.push(p);
            return None;
        }
        Some(RegisterRow {
            row: r.number(),
            school: school?,
            name: name?,
            municipality: municipality?,
            organiser: organiser?,
            types: types?,
            from: from?,
            to,
        })
    })?;
    // A school unit may appear more than once only with validity spans that do not overlap.
    let mut problems = Problems::default();
    let mut spans: HashMap<&str, Vec<&RegisterRow>> = HashMap::new();
    for row in &parsed {
        let earlier = spans.entry(&row.school).or_default();
        if let Some(q) = earlier.iter().find(|q| {
            q.from <= row.to.unwrap_or(NaiveDate::MAX) && row.from <= q.to.unwrap_or(NaiveDate::MAX)
        }) {
            problems.push(
                Problem::at("duplicate_row", row.row)
                    .column("school_unit_code, valid_from, valid_to")
                    .value(&row.school)
                    .msg(format!(
                        "skolenheten finns redan på rad {} med en giltighetstid som överlappar",
                        q.row
                    )),
            );
        }
        earlier.push(row);
    }
    let mut text: [StringBuilder; 5] = Default::default();
    let mut from = Date32Builder::new();
    let mut to = Date32Builder::new();
    let mut keys = KeySet::default();
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    for r in &parsed {
        for (b, v) in
            text.iter_mut()
                .zip([&r.school, &r.name, &r.municipality, &r.organiser, &r.types])
        {
            b.append_value(v);
        }
        from.append_value((r.from - epoch).num_days() as i32);
        to.append_option(r.to.map(|t| (t - epoch).num_days() as i32));
        keys.insert(vec![], r.school.clone());
    }
    let mut columns: Vec<ArrayRef> = text
        .iter_mut()
        .map(|b| Arc::new(b.finish()) as ArrayRef)
        .collect();
    columns.push(Arc::new(from.finish()));
    columns.push(Arc::new(to.finish()));
    let warnings = unknown_columns(table, |c| required.contains(&c) || c == "valid_to");
    finish(Kind::Register, columns, keys, warnings, problems)
}

/// `2025/26` → the school year's last spring month, used to check the register.
pub(super) fn school_year(s: &str) -> Option<Period> {
    let (a, b) = s.split_once('/')?;
    let start: i32 = a.parse().ok()?;
    let end: i32 = b.parse().ok()?;
    (a.len() == 4 && b.len() == 2 && (start + 1) % 100 == end).then_some(Period {
        year: start + 1,
        month: 6,
    })
}

pub fn parse_outcomes(table: &RawTable, ctx: &Context) -> Parsed {
    let required = [
        SCHOOL,
        "school_year",
        "gender",
        "grade9_students",
        "passed_all_subjects",
    ];
    let parsed = rows(table, &required, |r| {
        let school = r.school_unit_code();
        let year = r.text("school_year").and_then(|y| {
            if school_year(&y).is_some() {
                Some(y)
            } else {
                let p = r
                    .problem("invalid_school_year", "school_year")
                    .value(&y)
                    .msg("läsåret ska skrivas ÅÅÅÅ/ÅÅ, t.ex. 2025/26");
                r.push(p);
                None
            }
        });
        let gender = r.one_of("gender", "invalid_gender", &["K", "M", "T"]);
        let students = r.count("grade9_students", MAX_COUNT);
        let passed = r.count("passed_all_subjects", MAX_COUNT);
        if let (Some(s), Some(p)) = (&school, year.as_deref().and_then(school_year)) {
            r.check_registered(ctx, s, p);
        }
        if let (Some(n), Some(k)) = (students, passed)
            && k > n
        {
            let p = r
                .problem("passed_exceeds_students", "passed_all_subjects")
                .value(k.to_string())
                .msg(format!("fler godkända ({k}) än elever i årskurs 9 ({n})"));
            r.push(p);
            return None;
        }
        Some((r.number(), school?, year?, gender?, students?, passed?))
    })?;
    let mut problems = check_unique(
        parsed.iter().map(|(row, s, y, g, ..)| {
            (
                *row,
                (s.clone(), y.clone(), g.clone()),
                format!("{s} {y} {g}"),
            )
        }),
        "school_unit_code, school_year, gender",
    );
    // T next to K or M for the same school and year would count the pupils twice.
    let mut genders: HashMap<(&str, &str), Vec<(usize, &str)>> = HashMap::new();
    for (row, s, y, g, ..) in &parsed {
        let seen = genders.entry((s, y)).or_default();
        if let Some((q, qg)) = seen.iter().find(|(_, qg)| (*qg == "T") != (g == "T")) {
            problems.push(
                Problem::at("overlapping_groups", *row)
                    .column("gender")
                    .value(g.as_str())
                    .msg(format!("rad {q} har kön {qg} för samma skolenhet och läsår; eleverna skulle räknas två gånger")),
            );
        }
        seen.push((*row, g));
    }
    let mut text: [StringBuilder; 3] = Default::default();
    let mut students = Int32Builder::new();
    let mut passed = Int32Builder::new();
    let mut keys = KeySet::default();
    for (_, s, y, g, n, k) in &parsed {
        for (b, v) in text.iter_mut().zip([s, y, g]) {
            b.append_value(v);
        }
        students.append_value(*n as i32);
        passed.append_value(*k as i32);
        keys.insert(vec![y.clone()], s.clone());
    }
    let mut columns: Vec<ArrayRef> = text
        .iter_mut()
        .map(|b| Arc::new(b.finish()) as ArrayRef)
        .collect();
    columns.push(Arc::new(students.finish()));
    columns.push(Arc::new(passed.finish()));
    let warnings = unknown_columns(table, |c| required.contains(&c));
    finish(Kind::Outcomes, columns, keys, warnings, problems)
}
