//! Data contract v1 (DESIGN.md §3): what a school may upload, and how it is checked.
//!
//! A file is read into a [`source::RawTable`], recognised by its columns as one of four
//! [`Kind`]s, and validated row by row. Validation never stops at the first problem: a refused
//! file comes back as a [`Rejection`] listing *every* problem, each with a stable machine code,
//! the spreadsheet row, the column and the value, and a Swedish message for the person who
//! has to fix it. An accepted file becomes one Arrow batch in the lake's canonical schema.

pub mod attendance;
mod other;
pub mod schema;
pub mod source;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use arrow::array::RecordBatch;
use chrono::{Datelike, NaiveDate};
use serde::Serialize;

pub use schema::Kind;

/// One thing wrong with an uploaded file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Stable machine code, e.g. `histogram_sum_mismatch`.
    pub code: &'static str,
    /// Row as a spreadsheet shows it (CSV: the header is row 1); `None` for the whole file.
    pub row: Option<usize>,
    pub column: Option<String>,
    pub value: Option<String>,
    /// What is wrong, in Swedish, for the person who has to fix it.
    pub message: String,
}

impl Problem {
    pub fn file(code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            code,
            row: None,
            column: None,
            value: None,
            message: message.into(),
        }
    }

    pub fn at(code: &'static str, row: usize) -> Self {
        Problem {
            row: Some(row),
            ..Problem::file(code, "")
        }
    }

    pub fn column(mut self, column: impl Into<String>) -> Self {
        self.column = Some(column.into());
        self
    }

    pub fn value(mut self, value: impl Into<String>) -> Self {
        self.value = Some(value.into());
        self
    }

    pub fn msg(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut place = Vec::new();
        if let Some(r) = self.row {
            place.push(format!("rad {r}"));
        }
        if let Some(c) = &self.column {
            place.push(format!("kolumn {c}"));
        }
        if let Some(v) = &self.value {
            place.push(format!("värde \"{v}\""));
        }
        if !place.is_empty() {
            write!(f, "{}: ", place.join(", "))?;
        }
        write!(f, "{} [{}]", self.message, self.code)
    }
}

/// A refused file: nothing from it was stored.
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{}: filen avvisades, inget sparades ({n} fel)",
            self.file
        )?;
        for p in &self.problems {
            write!(f, "\n  {}: {p}", self.file)?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejection {}

/// The school units known to the register, with the dates each was active and the
/// municipality each belongs to (what an upload scope is checked against).
#[derive(Debug, Clone, Default)]
pub struct Register {
    schools: HashMap<String, Vec<(NaiveDate, Option<NaiveDate>)>>,
    municipality: HashMap<String, String>,
}

impl Register {
    pub fn insert(
        &mut self,
        code: &str,
        municipality: &str,
        from: NaiveDate,
        to: Option<NaiveDate>,
    ) {
        self.schools
            .entry(code.to_string())
            .or_default()
            .push((from, to));
        self.municipality
            .insert(code.to_string(), municipality.to_string());
    }

    /// The municipality code of a registered school.
    pub fn municipality_of(&self, code: &str) -> Option<&str> {
        self.municipality.get(code).map(String::as_str)
    }

    pub fn contains(&self, code: &str) -> bool {
        self.schools.contains_key(code)
    }

    /// Whether the school was active at any day of `period`'s month.
    pub fn active_in(&self, code: &str, period: Period) -> bool {
        let (first, last) = (period.first_day(), period.last_day());
        self.schools.get(code).is_some_and(|spans| {
            spans
                .iter()
                .any(|(from, to)| *from <= last && to.is_none_or(|to| to >= first))
        })
    }

    pub fn len(&self) -> usize {
        self.schools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.schools.is_empty()
    }
}

/// What validation checks a file against: the register and the date it arrived.
#[derive(Debug, Clone)]
pub struct Context {
    /// Shared, not copied: one register serves every upload until it changes.
    pub register: std::sync::Arc<Register>,
    /// The day the upload is received; periods after its month are refused as future.
    pub today: NaiveDate,
}

/// A calendar month, as `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    pub year: i32,
    pub month: u32,
}

impl Period {
    pub fn parse(s: &str) -> Option<Period> {
        let b = s.as_bytes();
        if b.len() != 7 || b[4] != b'-' || !s[..4].bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        if !s[5..].bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let year = s[..4].parse().ok()?;
        let month = s[5..].parse().ok()?;
        (1..=12).contains(&month).then_some(Period { year, month })
    }

    pub fn of(date: NaiveDate) -> Period {
        Period {
            year: date.year(),
            month: date.month(),
        }
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("valid month")
    }

    pub fn last_day(self) -> NaiveDate {
        self.next().first_day().pred_opt().expect("valid date")
    }

    pub fn next(self) -> Period {
        if self.month == 12 {
            Period {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Period {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// Teaching months are August to June; July is summer break.
    pub fn is_teaching_month(self) -> bool {
        self.month != 7
    }

    /// The school year's first calendar year: 2025 for any month of 2025/26.
    pub fn school_year_start(self) -> i32 {
        if self.month >= 8 {
            self.year
        } else {
            self.year - 1
        }
    }

    /// The school year as users write it, e.g. `2025/26`.
    pub fn school_year(self) -> String {
        let y = self.school_year_start();
        format!("{y}/{:02}", (y + 1) % 100)
    }

    /// The term as users write it: `HT2025` (Aug–Dec) or `VT2026` (Jan–Jun).
    pub fn term(self) -> String {
        if self.month >= 8 {
            format!("HT{}", self.year)
        } else {
            format!("VT{}", self.year)
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// The rows an accepted file replaces: for each table key prefix (e.g. period and window),
/// the set of values of the last key column (e.g. school units).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    pub groups: BTreeMap<Vec<String>, BTreeSet<String>>,
}

impl KeySet {
    pub fn insert(&mut self, prefix: Vec<String>, last: String) {
        self.groups.entry(prefix).or_default().insert(last);
    }

    /// Number of distinct keys.
    pub fn len(&self) -> usize {
        self.groups.values().map(|s| s.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// An accepted file, ready to be committed.
#[derive(Debug, Clone)]
pub struct Validated {
    pub kind: Kind,
    /// Rows in the lake's schema for `kind`, without the `upload_id` the lake adds.
    pub batch: RecordBatch,
    pub keys: KeySet,
    /// Things worth telling the uploader that did not stop the file (e.g. ignored columns).
    pub warnings: Vec<Problem>,
}

impl Validated {
    /// The distinct values of a string column of the upload, sorted (empty if it has none).
    fn distinct(&self, column: &str) -> Vec<String> {
        let Ok(i) = self.batch.schema().index_of(column) else {
            return Vec::new();
        };
        let Ok(a) = arrow::compute::cast(self.batch.column(i), &arrow::datatypes::DataType::Utf8)
        else {
            return Vec::new();
        };
        let a = arrow::array::AsArray::as_string::<i32>(&a);
        let set: BTreeSet<String> = a.iter().flatten().map(String::from).collect();
        set.into_iter().collect()
    }

    /// The school units the upload writes rows for.
    pub fn schools(&self) -> Vec<String> {
        self.distinct(schema::SCHOOL)
    }

    /// The months (or, for outcomes, school years) the upload writes rows for.
    pub fn periods(&self) -> Vec<String> {
        match self.kind {
            Kind::Outcomes => self.distinct("school_year"),
            Kind::Register => Vec::new(),
            _ => self.distinct("period"),
        }
    }

    /// For a register upload, the municipality each school unit is registered in.
    pub fn registered_municipalities(&self) -> HashMap<String, String> {
        let schema = self.batch.schema();
        let (Ok(s), Ok(m)) = (
            schema.index_of(schema::SCHOOL),
            schema.index_of("municipality_code"),
        ) else {
            return HashMap::new();
        };
        let text = |i: usize| {
            arrow::compute::cast(self.batch.column(i), &arrow::datatypes::DataType::Utf8)
                .expect("strings cast to Utf8")
        };
        let (s, m) = (text(s), text(m));
        let (s, m) = (
            arrow::array::AsArray::as_string::<i32>(&s),
            arrow::array::AsArray::as_string::<i32>(&m),
        );
        s.iter()
            .zip(m.iter())
            .filter_map(|(s, m)| Some((s?.to_string(), m?.to_string())))
            .collect()
    }
}

/// Reads and validates one file. `file` names it in every problem.
pub fn validate(file: &str, bytes: &[u8], ctx: &Context) -> Result<Validated, Rejection> {
    let reject = |problems| Rejection {
        file: file.to_string(),
        problems,
    };
    let table = source::read(bytes).map_err(reject)?;
    let kind = Kind::recognise(&table.columns).ok_or_else(|| {
        reject(vec![Problem::file(
            "unknown_file_kind",
            format!(
                "kolumnerna ({}) passar ingen känd filtyp: närvaro (school_unit_code, period, window, grade, gender, students, …), åtgärder (absence_investigation, …), skolenhetsregister (school_name, municipality_code, …) eller resultat (passed_all_subjects, …)",
                table.columns.join(", ")
            ),
        )])
    })?;
    if table.nrows == 0 {
        return Err(reject(vec![Problem::file(
            "empty_file",
            "filen innehåller inga datarader",
        )]));
    }
    let result = match kind {
        Kind::Attendance => attendance::parse(&table, ctx),
        Kind::Actions => other::parse_actions(&table, ctx),
        Kind::Register => other::parse_register(&table),
        Kind::Outcomes => other::parse_outcomes(&table, ctx),
    };
    match result {
        Ok((batch, keys, warnings)) => Ok(Validated {
            kind,
            batch,
            keys,
            warnings,
        }),
        Err(problems) => Err(reject(problems)),
    }
}

/// Reads the fields of one row, collecting a [`Problem`] for each field that is missing or
/// malformed, so a row reports all its problems at once.
pub(crate) struct Row<'a> {
    pub table: &'a source::RawTable,
    pub i: usize,
    pub problems: &'a mut Vec<Problem>,
}

impl Row<'_> {
    pub fn number(&self) -> usize {
        self.table.row_number(self.i)
    }

    pub fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    pub fn problem(&self, code: &'static str, column: &str) -> Problem {
        Problem::at(code, self.number()).column(column)
    }

    /// A required text cell.
    pub fn text(&mut self, col: &str) -> Option<String> {
        let v = self.table.text(col, self.i);
        if v.is_none() {
            let p = self.problem("missing_value", col).msg("värde saknas");
            self.push(p);
        }
        v
    }

    /// An optional text cell.
    pub fn opt_text(&self, col: &str) -> Option<String> {
        self.table.text(col, self.i)
    }

    /// A required whole number, `0 ..= max`.
    pub fn count(&mut self, col: &str, max: i64) -> Option<i64> {
        match self.table.int(col, self.i) {
            Ok(Some(v)) => self.check_count(col, v, max),
            Ok(None) => {
                let p = self.problem("missing_value", col).msg("värde saknas");
                self.push(p);
                None
            }
            Err(source::BadCell(raw)) => {
                let p = self
                    .problem("invalid_number", col)
                    .value(raw)
                    .msg("värdet är inte ett heltal");
                self.push(p);
                None
            }
        }
    }

    pub fn check_count(&mut self, col: &str, v: i64, max: i64) -> Option<i64> {
        if v < 0 {
            let p = self
                .problem("negative_value", col)
                .value(v.to_string())
                .msg("värdet får inte vara negativt");
            self.push(p);
            None
        } else if v > max {
            let p = self
                .problem("value_too_large", col)
                .value(v.to_string())
                .msg(format!("värdet är orimligt stort (högst {max})"));
            self.push(p);
            None
        } else {
            Some(v)
        }
    }

    /// A required 8-digit school unit code (skolenhetskod).
    pub fn school_unit_code(&mut self) -> Option<String> {
        let v = self.text(schema::SCHOOL)?;
        if v.len() == 8 && v.bytes().all(|b| b.is_ascii_digit()) {
            Some(v)
        } else {
            let p = self
                .problem("invalid_school_unit_code", schema::SCHOOL)
                .value(&v)
                .msg("skolenhetskoden ska vara åtta siffror (Skolverkets skolenhetskod)");
            self.push(p);
            None
        }
    }

    /// A required `YYYY-MM` teaching month that is not in the future.
    pub fn period(&mut self, today: NaiveDate) -> Option<Period> {
        let raw = self.text("period")?;
        let Some(p) = Period::parse(&raw) else {
            let p = self
                .problem("invalid_period", "period")
                .value(&raw)
                .msg("perioden ska skrivas ÅÅÅÅ-MM, t.ex. 2026-03");
            self.push(p);
            return None;
        };
        if !p.is_teaching_month() {
            let pr = self
                .problem("not_teaching_month", "period")
                .value(&raw)
                .msg("juli är inte en undervisningsmånad (läsåret är augusti–juni)");
            self.push(pr);
            return None;
        }
        if p > Period::of(today) {
            let pr = self
                .problem("future_period", "period")
                .value(&raw)
                .msg(format!("perioden ligger i framtiden (i dag är {today})"));
            self.push(pr);
            return None;
        }
        Some(p)
    }

    /// One of `allowed`, or a problem naming them.
    pub fn one_of(&mut self, col: &str, code: &'static str, allowed: &[&str]) -> Option<String> {
        let v = self.text(col)?;
        if allowed.contains(&v.as_str()) {
            Some(v)
        } else {
            let p = self
                .problem(code, col)
                .value(&v)
                .msg(format!("tillåtna värden är {}", allowed.join(", ")));
            self.push(p);
            None
        }
    }

    /// The school must be in the register and active in the period.
    pub fn check_registered(&mut self, ctx: &Context, school: &str, period: Period) {
        if !ctx.register.contains(school) {
            let p = self
                .problem("unknown_school", schema::SCHOOL)
                .value(school)
                .msg("skolenheten finns inte i skolenhetsregistret; läs in registret först");
            self.push(p);
        } else if !ctx.register.active_in(school, period) {
            let p = self
                .problem("school_not_active", schema::SCHOOL)
                .value(school)
                .msg(format!(
                    "skolenheten är inte verksam under {period} enligt registret"
                ));
            self.push(p);
        }
    }
}

/// Problems for the required columns a file lacks; empty when all are there.
pub(crate) fn missing_columns(table: &source::RawTable, required: &[&str]) -> Vec<Problem> {
    required
        .iter()
        .filter(|c| !table.has(c))
        .map(|c| Problem::file("missing_column", "kolumnen saknas").column(*c))
        .collect()
}

/// Warnings for columns the contract does not know; they are ignored, not stored.
pub(crate) fn unknown_columns(
    table: &source::RawTable,
    known: impl Fn(&str) -> bool,
) -> Vec<Problem> {
    table
        .columns
        .iter()
        .filter(|c| !known(c))
        .map(|c| {
            Problem::file(
                "unknown_column",
                "okänd kolumn ignorerades (ingår inte i kontraktet v1)",
            )
            .column(c)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_terms_and_school_years() {
        let p = Period::parse("2026-03").unwrap();
        assert_eq!(p.term(), "VT2026");
        assert_eq!(p.school_year(), "2025/26");
        assert_eq!(Period::parse("2025-08").unwrap().term(), "HT2025");
        assert_eq!(p.last_day(), NaiveDate::from_ymd_opt(2026, 3, 31).unwrap());
        assert!(Period::parse("2026-13").is_none());
        assert!(Period::parse("2026-3").is_none());
        assert!(!Period::parse("2026-07").unwrap().is_teaching_month());
    }

    #[test]
    fn register_activity_spans_months() {
        let mut r = Register::default();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        r.insert("12345678", "1880", d("2025-08-15"), Some(d("2026-01-10")));
        assert_eq!(r.municipality_of("12345678"), Some("1880"));
        assert!(r.active_in("12345678", Period::parse("2025-08").unwrap()));
        assert!(r.active_in("12345678", Period::parse("2026-01").unwrap()));
        assert!(!r.active_in("12345678", Period::parse("2026-02").unwrap()));
        assert!(!r.active_in("87654321", Period::parse("2026-02").unwrap()));
    }
}
