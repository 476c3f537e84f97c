//! An in-memory table sorted by its leading key columns, so that a query fixing them
//! (`area_type = 'school' AND area_code = '…' AND period = '…'`) reads only its own rows. The
//! publisher holds every computed view in one: a national view has hundreds of thousands of
//! rows, and each of the ~24,000 reports asks for a handful of them per block.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::compute::{
    SortColumn, SortOptions, concat_batches, lexsort_to_indices, take_record_batch,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::row::{RowConverter, SortField};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::ScalarValue;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use sha2::{Digest, Sha256};

/// The columns that can lead a view as its key, in any order: a view is sorted by its longest
/// leading run of them.
const KEYS: [&str; 7] = [
    "area_type",
    "area_code",
    "school_unit_code",
    "municipality_code",
    "period",
    "window",
    "level_id",
];

/// Rows as a read names them: the leading key values of a range, the comparisons
/// (`("period <=", "2026-06")`) every row of it that a query keeps meets, and the columns
/// taken (every column when empty).
type Selection = (Vec<String>, Vec<(String, String)>, Vec<String>);

/// Rows per batch handed to a plan.
const BATCH_ROWS: usize = 8192;

/// A table sorted by its key columns, answering a scan with the rows an equality filter on a
/// leading run of them selects (every filter is still applied by the plan above the scan).
#[derive(Debug)]
pub struct IndexedTable {
    /// The view's name, as reads are recorded ([`super::reads`]).
    name: String,
    schema: SchemaRef,
    rows: RecordBatch,
    /// The key columns' names and their values as text, in the sorted order.
    keys: Vec<(String, StringArray)>,
    /// Digests of the rows asked for so far, by their selection.
    digests: Mutex<HashMap<Selection, [u8; 32]>>,
}

impl IndexedTable {
    /// The table of `batches`, with text held as plain `Utf8`: a slice of string views keeps
    /// every buffer of the whole table, which each plan over it would copy and measure.
    pub fn try_new(
        name: &str,
        schema: SchemaRef,
        batches: &[RecordBatch],
    ) -> crate::Result<IndexedTable> {
        let schema: SchemaRef = Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| match f.data_type() {
                    DataType::Utf8View | DataType::LargeUtf8 => {
                        f.as_ref().clone().with_data_type(DataType::Utf8)
                    }
                    // A partition column (`period`) comes dictionary-encoded.
                    DataType::Dictionary(_, v)
                        if matches!(
                            v.as_ref(),
                            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
                        ) =>
                    {
                        f.as_ref().clone().with_data_type(DataType::Utf8)
                    }
                    _ => f.as_ref().clone(),
                })
                .collect::<Vec<Field>>(),
        ));
        let batches = batches
            .iter()
            .map(|b| crate::lake::conform(b, &schema))
            .collect::<crate::Result<Vec<_>>>()?;
        let rows = concat_batches(&schema, &batches)?;
        let names: Vec<usize> = schema
            .fields()
            .iter()
            .take_while(|f| KEYS.contains(&f.name().as_str()) && f.data_type() == &DataType::Utf8)
            .enumerate()
            .map(|(i, _)| i)
            .collect();
        let rows = if names.is_empty() || rows.num_rows() == 0 {
            rows
        } else {
            let columns: Vec<SortColumn> = names
                .iter()
                .map(|&i| SortColumn {
                    values: rows.column(i).clone(),
                    options: Some(SortOptions {
                        descending: false,
                        nulls_first: true,
                    }),
                })
                .collect();
            take_record_batch(&rows, &lexsort_to_indices(&columns, None)?)?
        };
        let keys = names
            .iter()
            .map(|&i| {
                let text = rows.column(i).as_string::<i32>().clone();
                (schema.field(i).name().clone(), text)
            })
            .collect();
        Ok(IndexedTable {
            name: name.to_string(),
            schema,
            rows,
            keys,
            digests: Default::default(),
        })
    }

    /// The rows whose leading key columns equal `fixed`, in order (all rows when `fixed` is
    /// empty). Nulls sort first and equal no value.
    fn range<S: AsRef<str>>(&self, fixed: &[S]) -> Range<usize> {
        let order = |row: usize| {
            for ((_, k), v) in self.keys.iter().zip(fixed) {
                let o = if k.is_null(row) {
                    Ordering::Less
                } else {
                    k.value(row).cmp(v.as_ref())
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        };
        let n = self.rows.num_rows();
        let start = partition_point(n, |r| order(r) == Ordering::Less);
        let end = start + partition_point(n - start, |r| order(start + r) != Ordering::Greater);
        start..end
    }
}

/// The first index in `0..n` for which `before` is false (`before` is true on a prefix).
fn partition_point(n: usize, before: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// A text literal's value (also dictionary-encoded).
fn text(v: &ScalarValue) -> Option<&str> {
    match v {
        ScalarValue::Dictionary(_, inner) => text(inner),
        v => v.try_as_str().flatten(),
    }
}

/// The text value the conjunction `filters` fixes column `name` to, if one of its terms is
/// `name = 'value'`.
fn fixed_value<'a>(filters: &[&'a Expr], name: &str) -> Option<&'a str> {
    fn find<'a>(e: &'a Expr, name: &str) -> Option<&'a str> {
        match e {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
                Operator::And => find(left, name).or_else(|| find(right, name)),
                Operator::Eq => match (left.as_ref(), right.as_ref()) {
                    (Expr::Column(c), Expr::Literal(v, _))
                    | (Expr::Literal(v, _), Expr::Column(c))
                        if c.name == name =>
                    {
                        text(v)
                    }
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        }
    }
    filters.iter().find_map(|f| find(f, name))
}

/// The text values the conjunction `filters` lists for column `name` in a term
/// `name IN ('a', 'b', …)` or `name = 'a' OR name = 'b' …`, if it has one (a null in the list
/// matches no row and is left out).
fn listed_values<'a>(filters: &[&'a Expr], name: &str) -> Option<Vec<&'a str>> {
    fn find<'a>(e: &'a Expr, name: &str) -> Option<Vec<&'a str>> {
        match e {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::And,
                right,
            }) => find(left, name).or_else(|| find(right, name)),
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Or,
                right,
            }) => {
                // Every row either side keeps has one of its values (a side that restricts
                // more columns keeps fewer rows; the filters above the scan still apply).
                let mut values = find(left, name)?;
                values.extend(find(right, name)?);
                Some(values)
            }
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) => match (left.as_ref(), right.as_ref()) {
                (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c))
                    if c.name == name =>
                {
                    text(v).map(|v| vec![v])
                }
                _ => None,
            },
            Expr::InList(datafusion::logical_expr::expr::InList {
                expr,
                list,
                negated: false,
            }) if matches!(expr.as_ref(), Expr::Column(c) if c.name == name) => list
                .iter()
                .filter_map(|v| match v {
                    Expr::Literal(v, _) if v.is_null() => None,
                    Expr::Literal(v, _) => Some(text(v).ok_or(())),
                    _ => Some(Err(())),
                })
                .collect::<std::result::Result<_, ()>>()
                .ok(),
            _ => None,
        }
    }
    filters.iter().find_map(|f| find(f, name))
}

/// At most this many ranges from the lists of one conjunction; beyond it the leading keys
/// fixed so far select the rows (more rows, never fewer).
const MAX_LISTED_RANGES: usize = 10_000;

impl IndexedTable {
    /// The key values of the ranges the conjunction `filters` selects on a leading run of
    /// keys, if it restricts the first: a key equal to a value extends every range, a key
    /// `IN` a list of values multiplies them (no range when the list is empty).
    fn fixed(&self, filters: &[&Expr]) -> Option<Vec<Vec<String>>> {
        let mut fixes: Vec<Vec<String>> = vec![Vec::new()];
        for (name, _) in &self.keys {
            let values = match fixed_value(filters, name) {
                Some(v) => vec![v],
                None => match listed_values(filters, name) {
                    Some(v) if fixes.len() * v.len() <= MAX_LISTED_RANGES => v,
                    _ => break,
                },
            };
            fixes = fixes
                .iter()
                .flat_map(|f| {
                    values.iter().map(move |v| {
                        let mut f = f.clone();
                        f.push(v.to_string());
                        f
                    })
                })
                .collect();
            if fixes.is_empty() {
                return Some(fixes);
            }
        }
        (!fixes[0].is_empty()).then_some(fixes)
    }

    /// The key values of the ranges `e` can select: a disjunction selects its branches'
    /// rows (`(area_type = 'school' AND area_code = …) OR (area_type = 'county' AND …)`), a
    /// conjunction those its fixed keys select; none when `e` restricts no leading key.
    fn fixes(&self, e: &Expr) -> Option<Vec<Vec<String>>> {
        match e {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Or,
                right,
            }) => {
                let mut all = self.fixes(left)?;
                all.extend(self.fixes(right)?);
                Some(all)
            }
            e => self.fixed(&[e]),
        }
    }

    /// The key values of the fewest rows that hold every row `filters` (a conjunction)
    /// select; one empty set of values (every row) when they fix no leading key.
    fn candidates(&self, filters: &[Expr]) -> Vec<Vec<String>> {
        let all: Vec<&Expr> = filters.iter().collect();
        let rows = |f: &Vec<Vec<String>>| f.iter().map(|f| self.range(f).len()).sum::<usize>();
        let mut fixes: Vec<Vec<String>> = std::iter::once(self.fixed(&all))
            .chain(filters.iter().map(|f| self.fixes(f)))
            .flatten()
            .min_by_key(rows)
            .unwrap_or_else(|| vec![Vec::new()]);
        fixes.sort();
        fixes.dedup();
        fixes
    }

    /// Sorted disjoint ranges of rows covering every range of `fixes`.
    fn ranges(&self, fixes: &[Vec<String>]) -> Vec<Range<usize>> {
        let mut all: Vec<Range<usize>> = fixes
            .iter()
            .map(|f| self.range(f))
            .filter(|r| !r.is_empty())
            .collect();
        all.sort_by_key(|r| r.start);
        let mut merged: Vec<Range<usize>> = Vec::new();
        for r in all {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        merged
    }

    /// The comparisons (column, `=`/`<`/`<=`/`>`/`>=`, value) of a text column with a text
    /// literal that the conjunction `filters` holds: every row a plan keeps meets them,
    /// whatever range its scan read.
    fn comparisons(&self, filters: &[Expr]) -> Vec<(String, String)> {
        fn walk(e: &Expr, out: &mut Vec<(String, Operator, String)>) {
            if let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e {
                if *op == Operator::And {
                    walk(left, out);
                    walk(right, out);
                    return;
                }
                let (column, op, value) = match (left.as_ref(), right.as_ref()) {
                    (Expr::Column(c), Expr::Literal(v, _)) => (c, *op, v),
                    (Expr::Literal(v, _), Expr::Column(c)) => match op.swap() {
                        Some(op) => (c, op, v),
                        None => return,
                    },
                    _ => return,
                };
                let compares = matches!(
                    op,
                    Operator::Eq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
                );
                if let (true, Some(v)) = (compares, text(value)) {
                    out.push((column.name.clone(), op, v.to_string()));
                }
            }
        }
        let mut out = Vec::new();
        for f in filters {
            walk(f, &mut out);
        }
        out.into_iter()
            .filter(|(c, _, _)| {
                self.schema
                    .field_with_name(c)
                    .is_ok_and(|f| f.data_type() == &DataType::Utf8)
            })
            .map(|(c, op, v)| (format!("{c} {op}"), v))
            .collect()
    }

    /// The digest of the rows whose leading keys equal `fixed` (every row when empty) and
    /// that meet the comparisons `equal` (`("period <=", "2026-06")`, as
    /// [`IndexedTable::comparisons`] names them), over their `columns` (every column when
    /// empty): the same for the same rows in any order. A `data_version` column is left out:
    /// every view carries it and no report shows it.
    pub fn digest(
        &self,
        fixed: &[String],
        equal: &[(String, String)],
        columns: &[String],
    ) -> crate::Result<[u8; 32]> {
        let selection = (fixed.to_vec(), equal.to_vec(), columns.to_vec());
        if let Some(d) = self.digests.lock().expect("digests").get(&selection) {
            return Ok(*d);
        }
        let range = self.range(fixed);
        let mut rows = self.rows.slice(range.start, range.len());
        for (comparison, value) in equal {
            use arrow::compute::kernels::cmp;
            let (column, op) = comparison.split_once(' ').unwrap_or((comparison, ""));
            let Ok(i) = rows.schema().index_of(column) else {
                continue;
            };
            let (c, v) = (rows.column(i), &StringArray::new_scalar(value.as_str()));
            let keep = match op {
                "=" => cmp::eq(c, v)?,
                "<" => cmp::lt(c, v)?,
                "<=" => cmp::lt_eq(c, v)?,
                ">" => cmp::gt(c, v)?,
                ">=" => cmp::gt_eq(c, v)?,
                _ => continue,
            };
            rows = arrow::compute::filter_record_batch(&rows, &keep)?;
        }
        let mut h = Sha256::new();
        h.update(self.name.as_bytes());
        let (fields, values): (Vec<SortField>, Vec<ArrayRef>) = rows
            .schema()
            .fields()
            .iter()
            .zip(rows.columns())
            .filter(|(f, _)| f.name() != "data_version")
            .filter(|(f, _)| columns.is_empty() || columns.contains(f.name()))
            .map(|(f, c)| {
                h.update(f.name().as_bytes());
                h.update(f.data_type().to_string().as_bytes());
                (SortField::new(f.data_type().clone()), c.clone())
            })
            .unzip();
        let mut sum: u128 = 0;
        if !fields.is_empty() {
            let converted = RowConverter::new(fields)?.convert_columns(&values)?;
            for row in converted.iter() {
                let h = Sha256::digest(row.as_ref());
                sum = sum.wrapping_add(u128::from_le_bytes(h[..16].try_into().expect("16 bytes")));
            }
        }
        h.update((rows.num_rows() as u64).to_le_bytes());
        h.update(sum.to_le_bytes());
        let d: [u8; 32] = h.finalize().into();
        self.digests.lock().expect("digests").insert(selection, d);
        Ok(d)
    }
}

#[async_trait]
impl TableProvider for IndexedTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let fixes = self.candidates(filters);
        if super::reads::active() {
            let comparisons = self.comparisons(filters);
            // The columns the query takes from the rows (every column: none named).
            let columns: Vec<String> = projection.map_or_else(Vec::new, |p| {
                p.iter()
                    .map(|&i| self.schema.field(i).name().clone())
                    .collect()
            });
            for f in &fixes {
                // Equalities on the leading keys are in the range already.
                let equal = comparisons
                    .iter()
                    .filter(|(c, _)| {
                        !self
                            .keys
                            .iter()
                            .take(f.len())
                            .any(|(k, _)| *c == format!("{k} ="))
                    })
                    .cloned()
                    .collect();
                let read =
                    super::reads::Read::Range(self.name.clone(), f.clone(), equal, columns.clone());
                super::reads::record(read);
            }
        }
        let batches: Vec<RecordBatch> = self
            .ranges(&fixes)
            .into_iter()
            .flat_map(|rows| {
                let end = rows.end;
                rows.step_by(BATCH_ROWS)
                    .map(move |at| self.rows.slice(at, BATCH_ROWS.min(end - at)))
            })
            .collect();
        Ok(MemorySourceConfig::try_new_exec(
            &[batches],
            self.schema.clone(),
            projection.cloned(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use datafusion::prelude::SessionContext;

    fn table() -> IndexedTable {
        let schema = Arc::new(Schema::new(vec![
            Field::new("area_type", DataType::Utf8, true),
            Field::new("area_code", DataType::Utf8View, true),
            Field::new("value", DataType::Int64, false),
        ]));
        let types = [
            "school",
            "municipality",
            "school",
            "school",
            "county",
            "school",
        ];
        let codes = [Some("b"), Some("m"), Some("a"), None, Some("c"), Some("a")];
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(types.map(Some).to_vec())),
                Arc::new(arrow::array::StringViewArray::from(codes.to_vec())),
                Arc::new(Int64Array::from((0..6).collect::<Vec<i64>>())),
            ],
        )
        .unwrap();
        IndexedTable::try_new("t", schema, &[batch.slice(0, 3), batch.slice(3, 3)]).unwrap()
    }

    #[test]
    fn ranges_select_the_rows_a_leading_key_fixes() {
        let t = table();
        let values = |r: Range<usize>| {
            let v = t
                .rows
                .column(2)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            let mut v: Vec<i64> = r.map(|i| v.value(i)).collect();
            v.sort_unstable();
            v
        };
        assert_eq!(values(t.range(&["school", "a"])), [2, 5]);
        assert_eq!(values(t.range(&["school"])), [0, 2, 3, 5]);
        assert_eq!(values(t.range(&["municipality", "m"])), [1]);
        assert!(t.range(&["school", "z"]).is_empty());
        assert!(t.range(&["nothing"]).is_empty());
        assert_eq!(t.range::<&str>(&[]), 0..6);
    }

    #[test]
    fn equality_filters_fix_keys() {
        use datafusion::prelude::{col, lit};
        let filters = [
            col("value").gt(lit(2)),
            lit("school")
                .eq(col("area_type"))
                .and(col("area_code").eq(lit("a"))),
            col("period").lt_eq(lit("2026-06")),
        ];
        let filters: Vec<&Expr> = filters.iter().collect();
        assert_eq!(fixed_value(&filters, "area_type"), Some("school"));
        assert_eq!(fixed_value(&filters, "area_code"), Some("a"));
        assert_eq!(fixed_value(&filters, "period"), None);
        let either = col("area_type")
            .eq(lit("school"))
            .or(col("area_type").eq(lit("county")));
        assert_eq!(fixed_value(&[&either], "area_type"), None);
        // A disjunction selects its branches' rows; the narrowest restriction is taken.
        let t = table();
        let rows = |f: Vec<Vec<String>>| t.ranges(&f).into_iter().map(|r| r.len()).sum::<usize>();
        assert_eq!(rows(t.candidates(std::slice::from_ref(&either))), 5);
        let school_a = col("area_type")
            .eq(lit("school"))
            .and(col("area_code").eq(lit("a")));
        let county = col("area_type").eq(lit("county"));
        assert_eq!(
            rows(t.candidates(&[school_a.clone().or(county.clone())])),
            3
        );
        assert_eq!(
            rows(t.candidates(&[either, school_a.clone().or(school_a)])),
            2
        );
        assert_eq!(rows(t.candidates(&[county.or(col("value").gt(lit(2)))])), 6);
    }

    /// A key `IN` a list (or equal to one of several values) after the fixed keys selects one
    /// range per value; an empty list none; a list on a key before which nothing is fixed
    /// restricts nothing.
    #[test]
    fn listed_values_select_a_range_each() {
        use datafusion::prelude::{col, lit};
        let t = table();
        let rows = |f: Vec<Vec<String>>| t.ranges(&f).into_iter().map(|r| r.len()).sum::<usize>();
        let school = col("area_type").eq(lit("school"));
        let listed = col("area_code").in_list(vec![lit("a"), lit("b"), lit("z")], false);
        let fixes = t.candidates(&[school.clone(), listed.clone()]);
        assert_eq!(fixes.len(), 3);
        assert_eq!(rows(fixes), 3);
        let either = col("area_code")
            .eq(lit("b"))
            .or(col("area_code").eq(lit("z")));
        assert_eq!(rows(t.candidates(&[school.clone(), either])), 1);
        let none = col("area_code").in_list(vec![lit(ScalarValue::Utf8(None))], false);
        assert!(t.candidates(&[school.clone(), none]).is_empty());
        let not_in = col("area_code").in_list(vec![lit("a")], true);
        assert_eq!(rows(t.candidates(&[school, not_in])), 4);
        assert_eq!(rows(t.candidates(&[listed])), 6);
    }

    #[test]
    fn a_range_digest_follows_its_rows_not_their_order() {
        let t = table();
        let school = ["school".to_string()];
        let a = t.digest(&school, &[], &[]).unwrap();
        assert_eq!(t.digest(&school, &[], &[]).unwrap(), a);
        assert_ne!(t.digest(&["county".to_string()], &[], &[]).unwrap(), a);
        assert_ne!(t.digest(&[], &[], &[]).unwrap(), a);
        // The same rows in another order: the same digest; one value changed: another.
        let b = &t.rows;
        let reversed: Vec<u32> = (0..b.num_rows() as u32).rev().collect();
        let reversed = take_record_batch(b, &arrow::array::UInt32Array::from(reversed)).unwrap();
        let again = IndexedTable::try_new("t", t.schema.clone(), &[reversed]).unwrap();
        assert_eq!(again.digest(&school, &[], &[]).unwrap(), a);
        let mut values: Vec<i64> = b
            .column(2)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .values()
            .to_vec();
        values[0] += 1;
        let mut columns = b.columns().to_vec();
        columns[2] = Arc::new(Int64Array::from(values));
        let changed = RecordBatch::try_new(b.schema(), columns).unwrap();
        let changed = IndexedTable::try_new("t", t.schema.clone(), &[changed]).unwrap();
        let differs = ["school", "county", "municipality"].iter().any(|k| {
            changed.digest(&[k.to_string()], &[], &[]).unwrap()
                != t.digest(&[k.to_string()], &[], &[]).unwrap()
        });
        assert!(differs);
    }

    #[tokio::test]
    async fn queries_answer_as_over_every_row() {
        let ctx = SessionContext::new();
        ctx.register_table("t", Arc::new(table())).unwrap();
        let sum = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                let b = ctx.sql(sql).await.unwrap().collect().await.unwrap();
                let v = b[0]
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap();
                (v.is_valid(0)).then(|| v.value(0))
            }
        };
        // Fixed leading keys, a key fixed out of order, one fixed by another filter's side,
        // and a filter that is not on a key: every answer as a full scan would give.
        assert_eq!(
            sum("SELECT sum(value) FROM t WHERE area_type = 'school' AND area_code = 'a'").await,
            Some(7)
        );
        assert_eq!(
            sum("SELECT sum(value) FROM t WHERE area_code = 'a'").await,
            Some(7)
        );
        assert_eq!(
            sum("SELECT sum(value) FROM t WHERE 'school' = area_type AND value > 2").await,
            Some(8)
        );
        assert_eq!(
            sum("SELECT sum(value) FROM t WHERE area_type = 'school' OR area_code = 'c'").await,
            Some(14)
        );
        assert_eq!(
            sum("SELECT sum(value) FROM t WHERE area_type = 'x'").await,
            None
        );
    }
}
