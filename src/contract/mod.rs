//! Data contract v1 (docs/contract.md): what a school may upload, and how it is checked.
//!
//! A file is read into a [`source::RawTable`], recognised by its columns as one of four
//! [`Kind`]s, and validated row by row. Validation never stops at the first problem: a refused
//! file comes back as a [`Rejection`] listing *every* problem, each with a stable machine code,
//! the spreadsheet row, the column and the value, and a Swedish message for the person who
//! has to fix it. An accepted file becomes one Arrow batch in the lake's canonical schema.

pub mod attendance;
pub(crate) mod other;
pub mod schema;
pub mod source;
pub mod write;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use arrow::array::{Array, RecordBatch};
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

/// At most this many problems are listed per file; the rest are counted, so a file of bad
/// rows cannot make a reply (or the memory behind it) of any size.
pub const MAX_PROBLEMS: usize = 1000;

/// Problems in one file, capped at [`MAX_PROBLEMS`] listed.
#[derive(Debug, Default)]
pub struct Problems {
    pub list: Vec<Problem>,
    pub more: usize,
}

impl Problems {
    pub fn push(&mut self, p: Problem) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(p);
        } else {
            self.more += 1;
        }
    }

    pub fn extend(&mut self, ps: impl IntoIterator<Item = Problem>) {
        for p in ps {
            self.push(p);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Problems pushed so far, listed or not.
    pub fn count(&self) -> usize {
        self.list.len() + self.more
    }

    /// The listed problems in row order, and a last one counting those not listed.
    pub fn finish(mut self) -> Vec<Problem> {
        self.list.sort_by_key(|p| p.row);
        if self.more > 0 {
            self.list.push(
                Problem::file(
                    "more_problems",
                    format!(
                        "och {} fel till som inte visas; rätta de visade och skicka filen igen",
                        self.more
                    ),
                )
                .value(self.more.to_string()),
            );
        }
        self.list
    }

    /// The rejection of `file`, or `Ok` when nothing was wrong.
    pub fn into_result(self, file: &str) -> Result<(), Rejection> {
        if self.list.is_empty() {
            return Ok(());
        }
        Err(Rejection {
            file: file.to_string(),
            problems: self.finish(),
        })
    }
}

/// The school units known to the register: each validity period of each school, with the
/// municipality it belonged to then (what an upload scope is checked against).
#[derive(Debug, Clone, Default)]
pub struct Register {
    schools: HashMap<String, Vec<Span>>,
}

/// One validity row of a school unit: from, to (open when `None`), municipality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub from: NaiveDate,
    pub to: Option<NaiveDate>,
    pub municipality: String,
}

impl Span {
    fn overlaps(&self, first: NaiveDate, last: NaiveDate) -> bool {
        self.from <= last && self.to.is_none_or(|to| to >= first)
    }
}

impl Register {
    pub fn insert(
        &mut self,
        code: &str,
        municipality: &str,
        from: NaiveDate,
        to: Option<NaiveDate>,
    ) {
        let spans = self.schools.entry(code.to_string()).or_default();
        spans.push(Span {
            from,
            to,
            municipality: municipality.to_string(),
        });
        spans.sort_by_key(|s| s.from);
    }

    /// The municipality code of a registered school: that of its latest validity row.
    pub fn municipality_of(&self, code: &str) -> Option<&str> {
        self.schools
            .get(code)
            .and_then(|s| s.last())
            .map(|s| s.municipality.as_str())
    }

    /// Every validity row of a school, oldest first (empty when unregistered).
    pub fn spans(&self, code: &str) -> &[Span] {
        self.schools.get(code).map_or(&[], Vec::as_slice)
    }

    /// The municipalities a school belonged to at any day from `first` to `last`.
    pub fn municipalities_during(
        &self,
        code: &str,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .spans(code)
            .iter()
            .filter(|s| s.overlaps(first, last))
            .map(|s| s.municipality.as_str())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// How many municipalities the register's schools belong to (by their latest rows).
    pub fn municipality_count(&self) -> usize {
        let all: std::collections::HashSet<&str> = self
            .schools
            .keys()
            .filter_map(|c| self.municipality_of(c))
            .collect();
        all.len()
    }

    pub fn contains(&self, code: &str) -> bool {
        self.schools.contains_key(code)
    }

    /// Whether the school was active at any day of `period`'s month.
    pub fn active_in(&self, code: &str, period: Period) -> bool {
        let (first, last) = (period.first_day(), period.last_day());
        self.spans(code).iter().any(|s| s.overlaps(first, last))
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

    /// A string column of the upload, as text (empty when it has none).
    fn texts(&self, column: &str) -> Vec<Option<String>> {
        let Ok(i) = self.batch.schema().index_of(column) else {
            return Vec::new();
        };
        match arrow::compute::cast(self.batch.column(i), &arrow::datatypes::DataType::Utf8) {
            Ok(a) => arrow::array::AsArray::as_string::<i32>(&a)
                .iter()
                .map(|v| v.map(String::from))
                .collect(),
            Err(_) => vec![None; self.batch.num_rows()],
        }
    }

    /// What the upload writes, as the scope check sees it: for every row, the school and the
    /// days its figures are about, and for a register row the municipality it states. A
    /// register upload replaces a school's whole history, so it also claims every day.
    pub fn claims(&self) -> Vec<Claim> {
        let schools = self.texts(schema::SCHOOL);
        let mut out = Vec::new();
        let days = |first: Period, last: Period| (first.first_day(), last.last_day());
        match self.kind {
            Kind::Register => {
                let municipality = self.texts("municipality_code");
                let dates = |c: &str| -> Vec<Option<NaiveDate>> {
                    let Ok(i) = self.batch.schema().index_of(c) else {
                        return vec![None; self.batch.num_rows()];
                    };
                    let a = self.batch.column(i);
                    match a.as_any().downcast_ref::<arrow::array::Date32Array>() {
                        Some(d) => (0..d.len())
                            .map(|r| d.is_valid(r).then(|| d.value_as_date(r)).flatten())
                            .collect(),
                        None => vec![None; a.len()],
                    }
                };
                let (from, to) = (dates("valid_from"), dates("valid_to"));
                for (r, school) in schools.iter().enumerate() {
                    let Some(school) = school else { continue };
                    out.push(Claim {
                        school: school.clone(),
                        first: from.get(r).copied().flatten().unwrap_or(NaiveDate::MIN),
                        last: to.get(r).copied().flatten().unwrap_or(NaiveDate::MAX),
                        municipality: municipality.get(r).cloned().flatten(),
                    });
                    out.push(Claim {
                        school: school.clone(),
                        first: NaiveDate::MIN,
                        last: NaiveDate::MAX,
                        municipality: None,
                    });
                }
            }
            Kind::Attendance | Kind::Actions | Kind::Outcomes => {
                let outcomes = self.kind == Kind::Outcomes;
                let periods = self.texts(if outcomes { "school_year" } else { "period" });
                for (school, period) in schools.iter().zip(&periods) {
                    let (Some(school), Some(period)) = (school, period) else {
                        continue;
                    };
                    let span = if outcomes {
                        other::school_year(period).map(|june| {
                            days(
                                Period {
                                    year: june.year - 1,
                                    month: 8,
                                },
                                june,
                            )
                        })
                    } else {
                        Period::parse(period).map(|p| days(p, p))
                    };
                    let (first, last) = span.unwrap_or((NaiveDate::MIN, NaiveDate::MAX));
                    out.push(Claim {
                        school: school.clone(),
                        first,
                        last,
                        municipality: None,
                    });
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// One thing an upload writes, for the scope check: rows of `school` about the days `first`
/// to `last`; a register row also states the `municipality` the school belongs to then.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Claim {
    pub school: String,
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub municipality: Option<String>,
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
    pub problems: &'a mut Problems,
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
                // A whole number beyond 64 bits is too large (or too small), not malformed.
                let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                let p = if raw.strip_prefix('-').is_some_and(digits) {
                    self.problem("negative_value", col)
                        .value(raw)
                        .msg("värdet får inte vara negativt")
                } else if digits(raw.strip_prefix('+').unwrap_or(&raw)) {
                    self.problem("value_too_large", col)
                        .value(raw)
                        .msg(format!("värdet är orimligt stort (högst {max})"))
                } else {
                    self.problem("invalid_number", col)
                        .value(raw)
                        .msg("värdet är inte ett heltal")
                };
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
