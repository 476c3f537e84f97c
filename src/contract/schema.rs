//! The canonical Arrow schemas of the lake tables, and how an upload's kind is recognised.
//!
//! Delta Lake has no unsigned integers, so counts are `Int32` and minutes `Int64` in the lake;
//! the contract's "uint" is enforced by validation. The three histograms are always list
//! columns in the lake (`pct_total` 101 bands, `pct_invalid` 101, `hours_total` 201), whatever
//! shape the upload had.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

pub const SCHOOL: &str = "school_unit_code";
pub const UPLOAD_ID: &str = "upload_id";

/// The minute columns of an attendance row, in contract order.
pub const MINUTES: [&str; 6] = [
    "offered_minutes",
    "attendance_minutes",
    "valid_absence_minutes",
    "invalid_absence_minutes",
    "other_attendance_minutes",
    "reported_minutes",
];

/// The action counts of an actions row (docs/contract.md).
pub const ACTIONS: [&str; 5] = [
    "absence_investigation",
    "report_to_organiser",
    "report_to_social_services",
    "sip",
    "injunction",
];

/// One of the three histograms: its lake column, the prefix of its wide upload columns, the
/// number of bands and the digits in a wide column's band number.
#[derive(Debug, Clone, Copy)]
pub struct Histogram {
    pub name: &'static str,
    pub bands: usize,
    digits: usize,
}

pub const HISTOGRAMS: [Histogram; 3] = [
    Histogram {
        name: "pct_total",
        bands: 101,
        digits: 2,
    },
    Histogram {
        name: "pct_invalid",
        bands: 101,
        digits: 2,
    },
    Histogram {
        name: "hours_total",
        bands: 201,
        digits: 3,
    },
];

impl Histogram {
    /// The wide upload column of band `b`: `pct_total_00` … `pct_total_100`,
    /// `hours_total_000` … `hours_total_200`.
    pub fn wide_column(&self, b: usize) -> String {
        format!("{}_{:0width$}", self.name, b, width = self.digits)
    }

    /// How users see the whole range of wide columns in a message.
    pub fn wide_range(&self) -> String {
        format!(
            "{}…{}",
            self.wide_column(0),
            self.wide_column(self.bands - 1)
        )
    }

    /// Whether `col` is one of this histogram's wide columns.
    pub fn is_wide_column(&self, col: &str) -> bool {
        col.strip_prefix(self.name)
            .and_then(|r| r.strip_prefix('_'))
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|b| b < self.bands && *col == self.wide_column(b))
    }
}

/// The kinds of file the warehouse accepts, each stored in its own Delta table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Attendance,
    Actions,
    Register,
    Outcomes,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Register,
        Kind::Attendance,
        Kind::Actions,
        Kind::Outcomes,
    ];

    /// The Delta table the kind is stored in.
    pub fn table(self) -> &'static str {
        match self {
            Kind::Attendance => "attendance",
            Kind::Actions => "actions",
            Kind::Register => "register",
            Kind::Outcomes => "outcomes",
        }
    }

    /// Recognises a file by its columns.
    pub fn recognise(columns: &[String]) -> Option<Kind> {
        let has = |c: &str| columns.iter().any(|x| x == c);
        if has("window") || has("students") || has("offered_minutes") {
            Some(Kind::Attendance)
        } else if has("absence_investigation") {
            Some(Kind::Actions)
        } else if has("school_name") || has("municipality_code") {
            Some(Kind::Register)
        } else if has("passed_all_subjects") {
            Some(Kind::Outcomes)
        } else {
            None
        }
    }

    /// The columns whose values identify the rows a file replaces. All but the last are
    /// matched by equality, the last by an `IN` list (see `lake::replace_predicate`).
    pub fn key_columns(self) -> &'static [&'static str] {
        match self {
            Kind::Attendance => &["period", "window", SCHOOL],
            Kind::Actions => &["period", SCHOOL],
            Kind::Register => &[SCHOOL],
            Kind::Outcomes => &["school_year", SCHOOL],
        }
    }

    pub fn partition_columns(self) -> &'static [&'static str] {
        match self {
            // Every indicator query names its period; a month's upload touches one partition.
            Kind::Attendance => &["period"],
            _ => &[],
        }
    }

    /// The lake schema, including the `upload_id` the lake adds to every row.
    pub fn lake_schema(self) -> SchemaRef {
        static SCHEMAS: LazyLock<[SchemaRef; 4]> = LazyLock::new(|| {
            [
                attendance_schema(),
                actions_schema(),
                register_schema(),
                outcomes_schema(),
            ]
        });
        let i = match self {
            Kind::Attendance => 0,
            Kind::Actions => 1,
            Kind::Register => 2,
            Kind::Outcomes => 3,
        };
        SCHEMAS[i].clone()
    }

    /// The lake schema without `upload_id`: what validation produces.
    pub fn validated_schema(self) -> SchemaRef {
        let s = self.lake_schema();
        let fields: Vec<_> = s
            .fields()
            .iter()
            .filter(|f| f.name() != UPLOAD_ID)
            .cloned()
            .collect();
        Arc::new(Schema::new(fields))
    }
}

fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, false)
}

pub fn histogram_type() -> DataType {
    DataType::List(Arc::new(Field::new("element", DataType::Int32, true)))
}

fn attendance_schema() -> SchemaRef {
    let mut f = vec![
        text(SCHOOL),
        text("period"),
        text("window"),
        text("grade"),
        text("gender"),
        Field::new("students", DataType::Int32, false),
    ];
    f.extend(
        MINUTES
            .iter()
            .map(|m| Field::new(*m, DataType::Int64, false)),
    );
    f.extend(
        HISTOGRAMS
            .iter()
            .map(|h| Field::new(h.name, histogram_type(), false)),
    );
    f.push(text(UPLOAD_ID));
    Arc::new(Schema::new(f))
}

fn actions_schema() -> SchemaRef {
    let mut f = vec![text(SCHOOL), text("period")];
    f.extend(
        ACTIONS
            .iter()
            .map(|a| Field::new(*a, DataType::Int32, false)),
    );
    f.push(text(UPLOAD_ID));
    Arc::new(Schema::new(f))
}

fn register_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text(SCHOOL),
        text("school_name"),
        text("municipality_code"),
        text("organiser_type"),
        text("school_types"),
        Field::new("valid_from", DataType::Date32, false),
        Field::new("valid_to", DataType::Date32, true),
        text(UPLOAD_ID),
    ]))
}

fn outcomes_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text(SCHOOL),
        text("school_year"),
        text("gender"),
        Field::new("grade9_students", DataType::Int32, false),
        Field::new("passed_all_subjects", DataType::Int32, false),
        text(UPLOAD_ID),
    ]))
}

/// A list of strings (the audit's lists of upload ids, schools, periods).
fn texts(name: &str, nullable: bool) -> Field {
    let element = Arc::new(Field::new("element", DataType::Utf8, true));
    Field::new(name, DataType::List(element), nullable)
}

/// The audit table: one row per accepted upload.
pub fn uploads_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text(UPLOAD_ID),
        text("table_name"),
        text("source_file"),
        text("sha256"),
        Field::new("rows", DataType::Int64, false),
        Field::new("keys", DataType::Int64, false),
        Field::new("keys_replaced", DataType::Int64, false),
        texts("supersedes", false),
        Field::new(
            "received_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("table_version", DataType::Int64, false),
        // Added with the upload API; rows from older lakes read them as null.
        Field::new("uploader", DataType::Utf8, true),
        texts("schools", true),
        texts("periods", true),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_histogram_columns_are_named_as_in_the_contract() {
        let [pct, _, hours] = HISTOGRAMS;
        assert_eq!(pct.wide_column(0), "pct_total_00");
        assert_eq!(pct.wide_column(100), "pct_total_100");
        assert_eq!(hours.wide_column(7), "hours_total_007");
        assert!(pct.is_wide_column("pct_total_05"));
        assert!(!pct.is_wide_column("pct_total_5"));
        assert!(!pct.is_wide_column("pct_total_101"));
    }
}
