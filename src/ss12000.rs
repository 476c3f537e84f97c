//! Reading what school systems export by SS 12000 (docs/contract.md): `AggregatedAttendance`
//! records as JSON, and the roster that maps a pupil to school unit, grade and gender (SS 12000
//! persons with enrolments as JSON, or a CSV).
//!
//! Nothing identifying leaves this module in a message: a problem names the file, the record
//! or row number, the field and (for dates, minutes and codes) the value, never a pupil's id,
//! name, civic number or birth date.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::aggregate::Gender;
use crate::contract::{Problem, Problems, Rejection, Row, source};

/// A reference to another object: SS 12000 writes `{"id": "…", "displayName": "…"}`; a bare
/// id string is accepted too.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Ref {
    pub id: String,
    /// Written by the fixture generator as expanded exports do; never read.
    #[serde(rename = "displayName", skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

impl<'de> Deserialize<'de> for Ref {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ref;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object with an id, or an id string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Ref, E> {
                Ok(Ref {
                    id: v.to_string(),
                    display_name: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ref, A::Error> {
                let mut id = None;
                while let Some(k) = map.next_key::<std::borrow::Cow<str>>()? {
                    if k == "id" {
                        id = Some(map.next_value::<String>()?);
                    } else {
                        map.next_value::<de::IgnoredAny>()?;
                    }
                }
                id.map(|id| Ref {
                    id,
                    display_name: None,
                })
                .ok_or_else(|| de::Error::missing_field("id"))
            }
        }
        d.deserialize_any(V)
    }
}

/// One JSON value of an attendance file: an `AggregatedAttendance` record, or a page of them
/// (`{"data": [...], "pageToken": …}`).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RawRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Vec<RawRecord>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attendance_sum: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_absence_sum: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_absence_sum: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_attendance_sum: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_sum: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_sum: Option<i64>,
}

/// The SS 12000 names of the minute sums, in the order of [`Record::sums`].
pub const SUM_FIELDS: [&str; 6] = [
    "offeredSum",
    "attendanceSum",
    "validAbsenceSum",
    "invalidAbsenceSum",
    "otherAttendanceSum",
    "reportedSum",
];

/// One pupil × one activity over a date range, checked for shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 1-based position in its file (pages flattened): how messages name it.
    pub number: usize,
    pub student: String,
    pub activity: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// In the order of [`SUM_FIELDS`]; `None` where the record left the field out.
    pub sums: [Option<i64>; 6],
}

/// A problem with record `n` of an attendance file.
pub fn record_problem(code: &'static str, n: usize, field: &str, msg: String) -> Problem {
    Problem::file(code, format!("post {n}: {msg}")).column(field)
}

/// serde_json's message without any quoted text (a mistyped field could hold a name).
fn redact(e: &serde_json::Error) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in e.to_string().chars() {
        if c == '"' {
            if !quoted {
                out.push_str("\"…\"");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    // Date-times are accepted; their date part is the day.
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

/// Reads an attendance file: a JSON array of records, one page `{"data": [...]}`, or JSON lines
/// of records or pages.
pub fn read_attendance(file: &str, bytes: &[u8]) -> Result<Vec<Record>, Rejection> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut problems = Problems::default();
    let mut raw: Vec<RawRecord> = Vec::new();
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let parsed = match first {
        None => Err("filen är tom".to_string()),
        Some(b'[') => serde_json::from_slice::<Vec<RawRecord>>(bytes)
            .map(|v| raw = v)
            .map_err(|e| redact(&e)),
        Some(b'{') => serde_json::Deserializer::from_slice(bytes)
            .into_iter::<RawRecord>()
            .try_for_each(|r| {
                raw.push(r?);
                Ok(())
            })
            .map_err(|e: serde_json::Error| redact(&e)),
        Some(_) => Err(
            "filen är inte JSON (väntade en lista med AggregatedAttendance-poster, en sida {\"data\": [...]} eller JSON-rader)".to_string(),
        ),
    };
    if let Err(msg) = parsed {
        problems.push(Problem::file("invalid_json", msg));
        return Err(problems.into_result(file).unwrap_err());
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut n = 0;
    for item in raw {
        match item.data {
            Some(page) => {
                for r in page {
                    n += 1;
                    if r.data.is_some() {
                        problems.push(record_problem(
                            "nested_page",
                            n,
                            "data",
                            "en sida inuti en sida".into(),
                        ));
                        continue;
                    }
                    if let Some(r) = check_record(n, r, &mut problems) {
                        out.push(r);
                    }
                }
            }
            None => {
                n += 1;
                if let Some(r) = check_record(n, item, &mut problems) {
                    out.push(r);
                }
            }
        }
    }
    problems.into_result(file)?;
    Ok(out)
}

fn check_record(n: usize, r: RawRecord, problems: &mut Problems) -> Option<Record> {
    let before = problems.count();
    let missing = |field: &str, problems: &mut Problems| {
        problems.push(record_problem(
            "missing_value",
            n,
            field,
            "värde saknas".into(),
        ));
    };
    let student = r.student.map(|s| s.id);
    if student.is_none() {
        missing("student", problems);
    }
    let activity = r.activity.map(|a| a.id);
    if activity.is_none() {
        missing("activity", problems);
    }
    if r.attendance_sum.is_none() {
        missing("attendanceSum", problems);
    }
    let date = |field: &str, v: Option<String>, problems: &mut Problems| match v {
        None => {
            missing(field, problems);
            None
        }
        Some(s) => {
            let d = parse_date(&s);
            if d.is_none() {
                problems.push(
                    record_problem(
                        "invalid_date",
                        n,
                        field,
                        "datumet ska skrivas ÅÅÅÅ-MM-DD".into(),
                    )
                    .value(s),
                );
            }
            d
        }
    };
    let start = date("startDate", r.start_date, problems);
    let end = date("endDate", r.end_date, problems);
    let sums = [
        r.offered_sum,
        r.attendance_sum,
        r.valid_absence_sum,
        r.invalid_absence_sum,
        r.other_attendance_sum,
        r.reported_sum,
    ];
    for (field, v) in SUM_FIELDS.iter().zip(sums) {
        if let Some(v) = v.filter(|v| *v < 0) {
            problems.push(
                record_problem(
                    "negative_value",
                    n,
                    field,
                    "minuter får inte vara negativa".into(),
                )
                .value(v.to_string()),
            );
        }
    }
    if let (Some(start), Some(end)) = (start, end)
        && end < start
    {
        problems.push(
            record_problem(
                "end_before_start",
                n,
                "endDate",
                format!("slutar före startDate {start}"),
            )
            .value(end.to_string()),
        );
    }
    let absence = sums[2].unwrap_or(0) + sums[3].unwrap_or(0);
    let accounted = sums[1].unwrap_or(0) + absence + sums[4].unwrap_or(0);
    if let Some(off) = sums[0].filter(|o| *o >= 0) {
        let over = |field: &str, what: &str, v: i64, problems: &mut Problems| {
            problems.push(
                record_problem(
                    "exceeds_offered",
                    n,
                    field,
                    format!("{what} ({v} min) är mer än erbjuden tid ({off} min)"),
                )
                .value(v.to_string()),
            );
        };
        if absence > off {
            over("validAbsenceSum", "frånvaron", absence, problems);
        } else if accounted > off {
            over(
                "attendanceSum",
                "närvaro, frånvaro och annan närvaro tillsammans",
                accounted,
                problems,
            );
        }
        if let Some(rep) = sums[5].filter(|r| *r > off) {
            over("reportedSum", "rapporterad tid", rep, problems);
        }
    }
    if problems.count() > before {
        return None;
    }
    Some(Record {
        number: n,
        student: student?,
        activity: activity?,
        start: start?,
        end: end?,
        sums,
    })
}

/// Where a pupil belongs for the period aggregated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterPupil {
    pub school: String,
    /// F = 0, 1 … 9.
    pub grade: usize,
    pub gender: Gender,
    /// The row or person number it came from (for messages).
    pub row: usize,
}

/// Pupil id → where the pupil belongs.
pub type Roster = HashMap<String, RosterPupil>;

fn gender_of(v: Option<&str>) -> Option<Gender> {
    match v.map(str::trim).unwrap_or("") {
        "K" | "k" | "Kvinna" | "kvinna" | "F" => Some(Gender::K),
        "M" | "m" | "Man" | "man" => Some(Gender::M),
        "" | "Okänt" | "okänt" | "T" | "U" => Some(Gender::Unknown),
        _ => None,
    }
}

/// The grade index of `F`, `FK`, `0` … `9`.
fn grade_of(v: &str) -> Option<usize> {
    match v.trim() {
        "F" | "FK" | "Fklass" | "0" => Some(0),
        g => g.parse::<usize>().ok().filter(|g| (1..=9).contains(g)),
    }
}

/// Reads a roster: SS 12000 JSON (`{"persons" | "data": [...], "organisations": [...]}` or an
/// array of persons) or a table (CSV or Parquet) with the columns `student`,
/// `school_unit_code`, `grade` and `gender`. For JSON, each person's enrolment in a compulsory
/// school that covers `on` is the one used (`from` … `on` is the school year to date).
pub fn read_roster(
    file: &str,
    bytes: &[u8],
    from: NaiveDate,
    on: NaiveDate,
) -> Result<Roster, Rejection> {
    let trimmed = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match trimmed.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') | Some(b'{') => read_roster_json(file, trimmed, from, on),
        _ => read_roster_table(file, bytes),
    }
}

fn read_roster_table(file: &str, bytes: &[u8]) -> Result<Roster, Rejection> {
    let table = source::read(bytes).map_err(|problems| Rejection {
        file: file.to_string(),
        problems,
    })?;
    let alias = |names: &[&'static str]| names.iter().copied().find(|c| table.has(c));
    let mut problems = Problems::default();
    let cols = [
        ("student", alias(&["student", "id", "person"])),
        (
            "school_unit_code",
            alias(&["school_unit_code", "schoolunitcode", "skolenhetskod"]),
        ),
        ("grade", alias(&["grade", "schoolyear", "årskurs"])),
        ("gender", alias(&["gender", "sex", "kön"])),
    ];
    for (name, col) in &cols {
        if col.is_none() && *name != "gender" {
            problems.push(Problem::file("missing_column", "kolumnen saknas").column(*name));
        }
    }
    if !problems.is_empty() {
        return Err(problems.into_result(file).unwrap_err());
    }
    let [student, school, grade, gender] = cols.map(|(_, c)| c.unwrap_or("gender"));
    let mut roster = Roster::new();
    for i in 0..table.nrows {
        let mut row = Row {
            table: &table,
            i,
            problems: &mut problems,
        };
        let n = row.number();
        let id = row.text(student);
        let code = row.text(school);
        let school_ok = code
            .as_deref()
            .is_some_and(|c| c.len() == 8 && c.bytes().all(|b| b.is_ascii_digit()));
        if let (Some(c), false) = (&code, school_ok) {
            let p = row
                .problem("invalid_school_unit_code", school)
                .value(c)
                .msg("skolenhetskoden ska vara 8 siffror");
            row.push(p);
        }
        let g = row.text(grade);
        let gi = g.as_deref().and_then(grade_of);
        if let (Some(g), None) = (&g, gi) {
            let p = row
                .problem("unknown_grade", grade)
                .value(g)
                .msg("okänd årskurs (F eller 0–9 i grundskolan)");
            row.push(p);
        }
        let s = row.opt_text(gender);
        let sex = gender_of(s.as_deref());
        if sex.is_none() {
            let p = row
                .problem("unknown_gender", gender)
                .value(s.unwrap_or_default())
                .msg("okänt kön (K, M, Kvinna, Man eller Okänt)");
            row.push(p);
        }
        if let (Some(id), Some(code), true, Some(gi), Some(sex)) = (id, code, school_ok, gi, sex) {
            let pupil = RosterPupil {
                school: code,
                grade: gi,
                gender: sex,
                row: n,
            };
            if let Some(first) = roster.insert(id, pupil) {
                row.push(
                    row.problem("duplicate_pupil", student)
                        .msg(format!("eleven finns redan på rad {}", first.row)),
                );
            }
        }
    }
    problems.into_result(file)?;
    Ok(roster)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PersonsFile {
    #[serde(alias = "data")]
    persons: Vec<Person>,
    #[serde(default)]
    organisations: Vec<Organisation>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RosterJson {
    File(PersonsFile),
    Persons(Vec<Person>),
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub id: String,
    #[serde(default)]
    pub sex: Option<String>,
    #[serde(default)]
    pub enrolments: Vec<Enrolment>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrolment {
    pub enroled_at: OrgRef,
    #[serde(default)]
    pub school_year: Option<i64>,
    #[serde(default)]
    pub school_type: Option<String>,
    #[serde(default)]
    pub start_date: Option<String>,
    #[serde(default)]
    pub end_date: Option<String>,
}

/// An enrolment's organisation: a reference resolved through `organisations`, or one that
/// carries its `schoolUnitCode` itself.
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgRef {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school_unit_code: Option<String>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Organisation {
    pub id: String,
    #[serde(default)]
    pub school_unit_code: Option<String>,
    #[serde(default)]
    pub organisation_type: Option<String>,
}

/// School types whose pupils are counted: grundskola, anpassad grundskola (GRS), förskoleklass,
/// specialskola and sameskola.
const SCHOOL_TYPES: [&str; 5] = ["GR", "GRS", "FKLASS", "SP", "SAM"];

fn read_roster_json(
    file: &str,
    bytes: &[u8],
    from: NaiveDate,
    on: NaiveDate,
) -> Result<Roster, Rejection> {
    let mut problems = Problems::default();
    let persons = match serde_json::from_slice::<RosterJson>(bytes) {
        Ok(RosterJson::File(f)) => (f.persons, f.organisations),
        Ok(RosterJson::Persons(p)) => (p, Vec::new()),
        Err(e) => {
            problems.push(Problem::file(
                "invalid_json",
                format!(
                    "elevlistan ska vara SS 12000-personer med inskrivningar ({}): {}",
                    "{\"persons\": [...], \"organisations\": [...]}",
                    redact(&e)
                ),
            ));
            return Err(problems.into_result(file).unwrap_err());
        }
    };
    let (persons, orgs) = persons;
    let codes: HashMap<&str, &str> = orgs
        .iter()
        .filter_map(|o| Some((o.id.as_str(), o.school_unit_code.as_deref()?)))
        .collect();
    let mut roster = Roster::new();
    for (i, p) in persons.iter().enumerate() {
        let n = i + 1;
        let at = |msg: String| Problem::file("invalid_enrolment", format!("person {n}: {msg}"));
        // Enrolments in a compulsory school that overlap the school year to date; the one
        // covering the period's last day, else the latest.
        let mut found: Vec<(NaiveDate, &Enrolment)> = Vec::new();
        for e in &p.enrolments {
            if e.school_type
                .as_deref()
                .is_some_and(|t| !SCHOOL_TYPES.contains(&t))
            {
                continue;
            }
            let start = e.start_date.as_deref().and_then(parse_date);
            let end = e.end_date.as_deref().and_then(parse_date);
            if e.start_date.is_some() && start.is_none() {
                problems.push(
                    at("startDate ska skrivas ÅÅÅÅ-MM-DD".into())
                        .column("enrolments.startDate")
                        .value(e.start_date.clone().unwrap_or_default()),
                );
                continue;
            }
            if e.end_date.is_some() && end.is_none() {
                problems.push(
                    at("endDate ska skrivas ÅÅÅÅ-MM-DD".into())
                        .column("enrolments.endDate")
                        .value(e.end_date.clone().unwrap_or_default()),
                );
                continue;
            }
            let start = start.unwrap_or(NaiveDate::MIN);
            if start <= on && end.is_none_or(|end| end >= from) {
                found.push((start, e));
            }
        }
        let covering: Vec<&(NaiveDate, &Enrolment)> = found
            .iter()
            .filter(|(_, e)| {
                e.end_date
                    .as_deref()
                    .and_then(parse_date)
                    .is_none_or(|end| end >= on)
            })
            .collect();
        if covering.len() > 1 {
            problems.push(at(
                "har flera samtidiga inskrivningar i grundskolan den sista dagen i perioden".into(),
            ));
            continue;
        }
        let Some((_, e)) = covering
            .first()
            .copied()
            .or_else(|| found.iter().max_by_key(|(s, _)| *s))
        else {
            // Not enrolled in a compulsory school this school year: not on the roster.
            continue;
        };
        let code = e.enroled_at.school_unit_code.as_deref().or_else(|| {
            e.enroled_at
                .id
                .as_deref()
                .and_then(|id| codes.get(id).copied())
        });
        let Some(code) = code.filter(|c| c.len() == 8 && c.bytes().all(|b| b.is_ascii_digit()))
        else {
            problems.push(
                at(
                    "inskrivningens skolenhet har ingen skolenhetskod (8 siffror) i organisations"
                        .into(),
                )
                .column("enrolments.enroledAt"),
            );
            continue;
        };
        let grade = match e.school_year {
            Some(y @ 0..=9) => y as usize,
            other => {
                problems.push(
                    at("okänd årskurs (0–9 i grundskolan)".into())
                        .column("enrolments.schoolYear")
                        .value(other.map(|y| y.to_string()).unwrap_or_default()),
                );
                continue;
            }
        };
        let Some(gender) = gender_of(p.sex.as_deref()) else {
            problems.push(
                at("okänt kön (Kvinna, Man eller Okänt)".into())
                    .column("sex")
                    .value(p.sex.clone().unwrap_or_default()),
            );
            continue;
        };
        let pupil = RosterPupil {
            school: code.to_string(),
            grade,
            gender,
            row: n,
        };
        if let Some(first) = roster.insert(p.id.clone(), pupil) {
            problems.push(at(format!("samma elev som person {}", first.row)).column("id"));
        }
    }
    problems.into_result(file)?;
    Ok(roster)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_json_shape_reads_the_same_records() {
        let rec = r#"{"student":{"id":"a","displayName":"Anna"},"activity":{"id":"x"},"startDate":"2025-09-01","endDate":"2025-09-30","attendanceSum":100,"offeredSum":120,"validAbsenceSum":20}"#;
        let bare = r#"{"student":"b","activity":"x","startDate":"2025-09-01T00:00:00","endDate":"2025-09-30","attendanceSum":60}"#;
        let array = format!("[{rec},{bare}]");
        let page = format!("{{\"data\":[{rec},{bare}],\"pageToken\":null}}");
        let lines = format!("{rec}\n{bare}\n");
        let pages = format!("{{\"data\":[{rec}]}}\n{{\"data\":[{bare}]}}");
        let want = read_attendance("a.json", array.as_bytes()).unwrap();
        assert_eq!(want.len(), 2);
        assert_eq!(
            want[0].sums,
            [Some(120), Some(100), Some(20), None, None, None]
        );
        assert_eq!(want[1].student, "b");
        for text in [page, lines, pages] {
            assert_eq!(read_attendance("a.json", text.as_bytes()).unwrap(), want);
        }
    }

    #[test]
    fn messages_never_carry_what_a_field_held() {
        let bad = r#"[{"student":{"id":"a"},"activity":{"id":"x"},"startDate":"2025-09-01","endDate":"2025-09-30","attendanceSum":"Anna Andersson"}]"#;
        let e = read_attendance("a.json", bad.as_bytes()).unwrap_err();
        let text = e.to_string();
        assert!(!text.contains("Anna"), "{text}");
        assert!(
            text.contains("invalid_json") && text.contains("line 1"),
            "{text}"
        );
    }
}
