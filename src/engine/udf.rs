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
