//! Functions over the histograms, so any whole-percent or whole-hour threshold a policy names
//! is computed centrally from the same numbers.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, EmitTo, GroupsAccumulator,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `at_or_above(histogram, band)`: pupils in `band` or above, i.e. the sum of the histogram
/// from index `band` to its end. On `pct_total` band 15 means "at least 15 %"; on
/// `hours_total` band 30 means "at least 30 hours". A null histogram or band gives null.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AtOrAbove {
    name: &'static str,
    signature: Signature,
}

impl AtOrAbove {
    pub fn udf(name: &'static str) -> ScalarUDF {
        ScalarUDF::new_from_impl(AtOrAbove {
            name,
            signature: Signature::any(2, Volatility::Immutable),
        })
    }
}

impl ScalarUDFImpl for AtOrAbove {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let hist = args.args[0].clone().into_array(n)?;
        let band = cast(&args.args[1].clone().into_array(n)?, &DataType::Int64)?;
        let band = band.as_primitive::<Int64Type>();
        // The lake stores List<Int32>, `hist_sum` gives List<Int64>; anything else (e.g. a
        // literal list) is cast to the latter.
        let hist: ArrayRef = match hist.data_type() {
            DataType::List(f) if matches!(f.data_type(), DataType::Int32 | DataType::Int64) => hist,
            _ => cast(&hist, &int64_list())?,
        };
        let list = hist.as_list::<i32>();
        let offsets = list.value_offsets();
        let from = |i: usize| -> Option<(usize, usize)> {
            if list.is_null(i) || band.is_null(i) {
                return None;
            }
            let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
            Some(((start + band.value(i).max(0) as usize).min(end), end))
        };
        // Histograms read from the lake are Int32; sums of them (`hist_sum`) are Int64.
        let out: Int64Array = match list.values().data_type() {
            DataType::Int32 => {
                let values = list.values().as_primitive::<Int32Type>().values();
                (0..n)
                    .map(|i| from(i).map(|(a, b)| values[a..b].iter().map(|v| *v as i64).sum()))
                    .collect()
            }
            _ => {
                let values = list.values().as_primitive::<Int64Type>().values();
                (0..n)
                    .map(|i| from(i).map(|(a, b)| values[a..b].iter().sum()))
                    .collect()
            }
        };
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

fn int64_list() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Int64, true)))
}

/// `hist_sum(histogram)`: the histograms of a group added band by band (a shorter one counts as
/// zeros beyond its end), as `List<Int64>`; null when every histogram is null. Summing first
/// and counting thresholds on the sums (`at_or_above(hist_sum(pct_total), 15)`) gives what
/// summing each row's count gives, without a row per threshold.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HistSum {
    signature: Signature,
}

impl HistSum {
    pub fn udaf() -> AggregateUDF {
        AggregateUDF::new_from_impl(HistSum {
            signature: Signature::any(1, Volatility::Immutable),
        })
    }
}

impl AggregateUDFImpl for HistSum {
    fn name(&self) -> &str {
        "hist_sum"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(int64_list())
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(HistSumAccumulator::default()))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(HistSumGroups::default()))
    }
}

/// Every histogram of `lists` (the input, or partial sums when merging) as `List<Int64>`,
/// with the rows that count (not null, not filtered out), each with its band values.
fn each_histogram(
    lists: &ArrayRef,
    filter: Option<&BooleanArray>,
    mut f: impl FnMut(usize, &[i64]),
) -> Result<()> {
    let lists = match lists.data_type() {
        DataType::List(field) if field.data_type() == &DataType::Int64 => lists.clone(),
        _ => cast(lists, &int64_list())?,
    };
    let list = lists.as_list::<i32>();
    let values = list.values().as_primitive::<Int64Type>().values();
    let offsets = list.value_offsets();
    for i in 0..list.len() {
        if list.is_null(i) || filter.is_some_and(|f| !f.value(i) || f.is_null(i)) {
            continue;
        }
        f(i, &values[offsets[i] as usize..offsets[i + 1] as usize]);
    }
    Ok(())
}

/// Adds `band` into `sums` band by band, starting a group at its first histogram.
fn add_bands(sums: &mut Option<Vec<i64>>, band: &[i64]) {
    let sums = sums.get_or_insert_with(Vec::new);
    if sums.len() < band.len() {
        sums.resize(band.len(), 0);
    }
    sums.iter_mut().zip(band).for_each(|(s, v)| *s += v);
}

fn list_of(sums: &[Option<Vec<i64>>]) -> ArrayRef {
    Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(
        sums.iter()
            .map(|s| s.as_ref().map(|s| s.iter().copied().map(Some))),
    ))
}

/// `hist_sum` for many groups at once (what a `GROUP BY` uses).
#[derive(Debug, Default)]
struct HistSumGroups {
    sums: Vec<Option<Vec<i64>>>,
}

impl HistSumGroups {
    fn add(
        &mut self,
        lists: &ArrayRef,
        groups: &[usize],
        n: usize,
        f: Option<&BooleanArray>,
    ) -> Result<()> {
        self.sums.resize(n, None);
        let sums = &mut self.sums;
        each_histogram(lists, f, |i, band| add_bands(&mut sums[groups[i]], band))
    }
}

impl GroupsAccumulator for HistSumGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.add(&values[0], group_indices, total_num_groups, opt_filter)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.add(&values[0], group_indices, total_num_groups, None)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(list_of(&emit_to.take_needed(&mut self.sums)))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.evaluate(emit_to)?])
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let mut each = vec![None; values[0].len()];
        each_histogram(&values[0], opt_filter, |i, band| {
            add_bands(&mut each[i], band)
        })?;
        Ok(vec![list_of(&each)])
    }

    fn size(&self) -> usize {
        self.sums.capacity() * std::mem::size_of::<Option<Vec<i64>>>()
            + self
                .sums
                .iter()
                .flatten()
                .map(|s| s.capacity() * 8)
                .sum::<usize>()
    }
}

/// The running band sums of one group; `None` until a histogram that is not null arrives.
#[derive(Debug, Default)]
struct HistSumAccumulator {
    sums: Option<Vec<i64>>,
}

impl HistSumAccumulator {
    /// Adds every histogram of `lists` (the input, or partial sums when merging).
    fn add(&mut self, lists: &ArrayRef) -> Result<()> {
        let sums = &mut self.sums;
        each_histogram(lists, None, |_, band| add_bands(sums, band))
    }
}

impl Accumulator for HistSumAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.add(&states[0])
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        ScalarValue::try_from_array(&list_of(std::slice::from_ref(&self.sums)), 0)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.sums.as_ref().map_or(0, |s| s.capacity() * 8)
    }
}

/// `area_code(area_type, school_unit_code, municipality_code, county_code)`: a row's code at one
/// level of `area_types` (the school unit, its municipality, its county, or '00' for the
/// country), so every view that crosses its rows with the levels names areas the same way.
/// Null when the level or the code at it is null; an unknown level is an error.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AreaCode {
    signature: Signature,
}

impl AreaCode {
    pub fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(AreaCode {
            signature: Signature::any(4, Volatility::Immutable),
        })
    }
}

impl ScalarUDFImpl for AreaCode {
    fn name(&self) -> &str {
        "area_code"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let columns = (0..4)
            .map(|i| Ok(cast(&args.args[i].clone().into_array(n)?, &DataType::Utf8)?))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let [level, school, municipality, county] =
            [0, 1, 2, 3].map(|i| columns[i].as_string::<i32>());
        fn value(a: &arrow::array::StringArray, i: usize) -> Option<&str> {
            a.is_valid(i).then(|| a.value(i))
        }
        let mut out = arrow::array::StringBuilder::with_capacity(n, 8 * n);
        for i in 0..n {
            let code = match value(level, i) {
                None => None,
                Some("school") => value(school, i),
                Some("municipality") => value(municipality, i),
                Some("county") => value(county, i),
                Some("country") => Some("00"),
                Some(other) => {
                    return datafusion::common::exec_err!("area_code: unknown area type {other}");
                }
            };
            out.append_option(code);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `funnel_limit_pct(reference_pct, pupils, q)`: the control limit of a funnel plot (Spiegelhalter
/// 2005) for a share, in percent: where a group of `pupils` whose true share is the reference
/// would fall with probability `q` (e.g. 0.975 and 0.025 for the 95 % limits, 0.999 and 0.001
/// for the 99.8 % limits). Null when any argument is null or `pupils` is not positive.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FunnelLimit {
    signature: Signature,
}

impl FunnelLimit {
    pub fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(FunnelLimit {
            signature: Signature::any(3, Volatility::Immutable),
        })
    }
}

impl ScalarUDFImpl for FunnelLimit {
    fn name(&self) -> &str {
        "funnel_limit_pct"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let column = |i: usize, t: &DataType| -> Result<ArrayRef> {
            Ok(cast(&args.args[i].clone().into_array(n)?, t)?)
        };
        let (reference, pupils, q) = (
            column(0, &DataType::Float64)?,
            column(1, &DataType::Int64)?,
            column(2, &DataType::Float64)?,
        );
        let reference = reference.as_primitive::<arrow::datatypes::Float64Type>();
        let pupils = pupils.as_primitive::<Int64Type>();
        let q = q.as_primitive::<arrow::datatypes::Float64Type>();
        let out: arrow::array::Float64Array = (0..n)
            .map(|i| {
                if reference.is_null(i) || pupils.is_null(i) || q.is_null(i) || pupils.value(i) < 1
                {
                    return None;
                }
                let p0 = (reference.value(i) / 100.0).clamp(0.0, 1.0);
                Some(100.0 * binomial_limit(p0, pupils.value(i) as u64, q.value(i)))
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// The exact binomial control limit with Spiegelhalter's interpolation: with `R ~ Bin(n, p0)`
/// and `r` the smallest count with `P(R ≤ r) ≥ q`, the limit is `(r − α) / n`, where
/// `α = (P(R ≤ r) − q) / P(R = r)`; clamped to 0..1. One place computes it: the funnel
/// charts draw it and the report queries flag groups with it.
pub fn binomial_limit(p0: f64, n: u64, q: f64) -> f64 {
    if n == 0 || p0 <= 0.0 || p0 >= 1.0 {
        return p0.clamp(0.0, 1.0);
    }
    let q = q.clamp(0.0, 1.0);
    // log P(R = r), by the recurrence P(r + 1) = P(r) · (n − r)/(r + 1) · p0/(1 − p0).
    let (odds, nf) = ((p0 / (1.0 - p0)).ln(), n as f64);
    let mut log_p = nf * (1.0 - p0).ln();
    let mut cumulative = 0.0;
    for r in 0..=n {
        if r > 0 {
            let rf = r as f64;
            log_p += (nf - rf + 1.0).ln() - rf.ln() + odds;
        }
        let p = log_p.exp();
        cumulative += p;
        if cumulative >= q && p > 0.0 {
            let alpha = ((cumulative - q) / p).clamp(0.0, 1.0);
            return ((r as f64 - alpha) / nf).clamp(0.0, 1.0);
        }
    }
    1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Histograms of different lengths, nulls and partial sums merged: the band sums, and null
    /// for a group with no histogram at all.
    #[test]
    fn hist_sum_adds_band_by_band() {
        let lists = |v: Vec<Option<Vec<Option<i32>>>>| -> ArrayRef {
            Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(v))
        };
        let mut a = HistSumAccumulator::default();
        assert_eq!(
            a.evaluate().unwrap(),
            ScalarValue::try_from(&int64_list()).unwrap()
        );
        a.update_batch(&[lists(vec![Some(vec![Some(1), Some(2)]), None])])
            .unwrap();
        let mut b = HistSumAccumulator::default();
        b.update_batch(&[lists(vec![Some(vec![Some(10), Some(0), Some(5)])])])
            .unwrap();
        let partial = b.state().unwrap()[0].to_array().unwrap();
        a.merge_batch(&[partial]).unwrap();
        let ScalarValue::List(sum) = a.evaluate().unwrap() else {
            panic!("not a list")
        };
        let sum = sum.value(0);
        assert_eq!(sum.as_primitive::<Int64Type>().values(), &[11, 2, 5]);

        // The same per group, with a filtered-out row and a group that saw only nulls.
        let mut g = HistSumGroups::default();
        let input = lists(vec![
            Some(vec![Some(1), Some(2)]),
            Some(vec![Some(7)]),
            None,
            Some(vec![Some(10), Some(0), Some(5)]),
        ]);
        let keep = BooleanArray::from(vec![true, false, true, true]);
        g.update_batch(&[input], &[0, 0, 1, 0], Some(&keep), 2)
            .unwrap();
        let out = g.evaluate(EmitTo::All).unwrap();
        let out = out.as_list::<i32>();
        assert_eq!(
            out.value(0).as_primitive::<Int64Type>().values(),
            &[11, 2, 5]
        );
        assert!(out.is_null(1));
    }

    /// Each level takes its own code, the country '00', a null code stays null, and a level
    /// the function does not know is an error rather than a code.
    #[tokio::test]
    async fn area_code_names_a_row_at_each_level() {
        let ctx = datafusion::prelude::SessionContext::new();
        ctx.register_udf(AreaCode::udf());
        let rows = ctx
            .sql(
                "SELECT area_code(t, '18800101', m, '18') AS code FROM (VALUES \
                 (1, 'school', '1880'), (2, 'municipality', '1880'), (3, 'county', '1880'), \
                 (4, 'country', '1880'), (5, 'municipality', NULL)) AS v(i, t, m) ORDER BY i",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let codes = arrow::compute::concat(
            &rows
                .iter()
                .map(|b| b.column(0).as_ref())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let codes: Vec<Option<&str>> = codes.as_string::<i32>().iter().collect();
        assert_eq!(
            codes,
            [Some("18800101"), Some("1880"), Some("18"), Some("00"), None]
        );
        let unknown = ctx
            .sql("SELECT area_code('region', '18800101', '1880', '18')")
            .await
            .unwrap()
            .collect()
            .await;
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown area type region")
        );
    }

    /// Against a hand computation with exact binomial sums (Python's `fractions` and
    /// `math.comb`), for a small, a school-sized and a large group.
    #[test]
    fn funnel_limits_match_a_hand_computation() {
        for (p0, n, q, want) in [
            (0.1, 100, 0.975, 0.157_718_611_639_126_76),
            (0.1, 100, 0.025, 0.040_380_595_524_393_45),
            (0.1, 20, 0.999, 0.335_171_821_685_282_76),
            (0.1, 20, 0.001, 0.0),
            (0.08, 500, 0.999, 0.118_841_840_464_975_08),
            (0.08, 500, 0.001, 0.044_069_534_514_960_2),
            (0.15, 58, 0.975, 0.238_974_736_209_002_42),
        ] {
            let got = binomial_limit(p0, n, q);
            assert!(
                (got - want).abs() < 1e-9,
                "p0 {p0}, n {n}, q {q}: {got} ≠ {want}"
            );
        }
        // The limits widen as groups get smaller.
        assert!(binomial_limit(0.1, 30, 0.999) > binomial_limit(0.1, 300, 0.999));
        assert_eq!(binomial_limit(0.0, 50, 0.999), 0.0);
    }
}
