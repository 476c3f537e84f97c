//! Functions over the histograms, so any whole-percent or whole-hour threshold a policy names
//! is computed centrally from the same numbers.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
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
        // The lake stores List<Int32>; anything else (e.g. a literal list) is cast to it.
        let hist: ArrayRef = match hist.data_type() {
            DataType::List(f) if f.data_type() == &DataType::Int32 => hist,
            _ => cast(
                &hist,
                &DataType::List(Arc::new(Field::new("element", DataType::Int32, true))),
            )?,
        };
        let list = hist.as_list::<i32>();
        let values = list.values().as_primitive::<Int32Type>();
        let offsets = list.value_offsets();
        let out: Int64Array = (0..n)
            .map(|i| {
                if list.is_null(i) || band.is_null(i) {
                    return None;
                }
                let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
                let from = (start + band.value(i).max(0) as usize).min(end);
                Some(values.values()[from..end].iter().map(|v| *v as i64).sum())
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
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
    use super::binomial_limit;

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
