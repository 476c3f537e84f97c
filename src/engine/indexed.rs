//! An in-memory table sorted by its leading key columns, so that a query fixing them
//! (`area_type = 'school' AND area_code = '…' AND period = '…'`) reads only its own rows. The
//! publisher holds every computed view in one: a national view has hundreds of thousands of
//! rows, and each of the ~24,000 reports asks for a handful of them per block.

use std::cmp::Ordering;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::compute::{
    SortColumn, SortOptions, concat_batches, lexsort_to_indices, take_record_batch,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

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

/// Rows per batch handed to a plan.
const BATCH_ROWS: usize = 8192;

/// A table sorted by its key columns, answering a scan with the rows an equality filter on a
/// leading run of them selects (every filter is still applied by the plan above the scan).
#[derive(Debug)]
pub struct IndexedTable {
    schema: SchemaRef,
    rows: RecordBatch,
    /// The key columns' names and their values as text, in the sorted order.
    keys: Vec<(String, StringArray)>,
}

impl IndexedTable {
    /// The table of `batches`, with text held as plain `Utf8`: a slice of string views keeps
    /// every buffer of the whole table, which each plan over it would copy and measure.
    pub fn try_new(schema: SchemaRef, batches: &[RecordBatch]) -> crate::Result<IndexedTable> {
        let schema: SchemaRef = Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| match f.data_type() {
                    DataType::Utf8View | DataType::LargeUtf8 => {
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
        Ok(IndexedTable { schema, rows, keys })
    }

    /// The rows whose leading key columns equal `fixed`, in order (all rows when `fixed` is
    /// empty). Nulls sort first and equal no value.
    fn range(&self, fixed: &[&str]) -> Range<usize> {
        let order = |row: usize| {
            for ((_, k), v) in self.keys.iter().zip(fixed) {
                let o = if k.is_null(row) {
                    Ordering::Less
                } else {
                    k.value(row).cmp(v)
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
                        v.try_as_str().flatten()
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

impl IndexedTable {
    /// The rows the conjunction `filters` can select: the range its equalities on leading
    /// keys fix, or none when they fix none.
    fn fixed_range(&self, filters: &[&Expr]) -> Option<Range<usize>> {
        let fixed: Vec<&str> = self
            .keys
            .iter()
            .map_while(|(name, _)| fixed_value(filters, name))
            .collect();
        (!fixed.is_empty()).then(|| self.range(&fixed))
    }

    /// The rows `e` can select, as sorted disjoint ranges: a disjunction selects its branches'
    /// rows (`(area_type = 'school' AND area_code = …) OR (area_type = 'county' AND …)`), a
    /// conjunction those its fixed keys select; none when `e` restricts no leading key.
    fn ranges(&self, e: &Expr) -> Option<Vec<Range<usize>>> {
        match e {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Or,
                right,
            }) => {
                let mut all = self.ranges(left)?;
                all.extend(self.ranges(right)?);
                all.sort_by_key(|r| r.start);
                let mut merged: Vec<Range<usize>> = Vec::new();
                for r in all.into_iter().filter(|r| !r.is_empty()) {
                    match merged.last_mut() {
                        Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                        _ => merged.push(r),
                    }
                }
                Some(merged)
            }
            e => self.fixed_range(&[e]).map(|r| vec![r]),
        }
    }

    /// The fewest rows that hold every row `filters` (a conjunction) select.
    fn candidates(&self, filters: &[Expr]) -> Vec<Range<usize>> {
        let all: Vec<&Expr> = filters.iter().collect();
        std::iter::once(self.fixed_range(&all).map(|r| vec![r]))
            .chain(filters.iter().map(|f| self.ranges(f)))
            .flatten()
            .min_by_key(|rs| rs.iter().map(|r| r.len()).sum::<usize>())
            .unwrap_or_else(|| std::iter::once(0..self.rows.num_rows()).collect())
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
        let batches: Vec<RecordBatch> = self
            .candidates(filters)
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
        IndexedTable::try_new(schema, &[batch.slice(0, 3), batch.slice(3, 3)]).unwrap()
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
        assert_eq!(t.range(&[]), 0..6);
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
        let rows = |rs: Vec<Range<usize>>| rs.into_iter().map(|r| r.len()).sum::<usize>();
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
