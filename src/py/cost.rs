//! Bindings for `crate::cost`: `fast_litellm._native.CostTable` and `cost_custom`.
//!
//! A cost is tens of nanoseconds of arithmetic: the GIL stays held (releasing it would cost more).

use parking_lot::RwLock;
use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;

use super::guard;
use crate::cost::{self, CostTable, Prices, Threshold, Usage};

type ThresholdTuple = (f64, Option<f64>, Option<f64>, Option<f64>, Option<f64>);

/// Price entries of the models resolved so far (see `fast_litellm.cost`).
#[pyclass(module = "fast_litellm._native", name = "CostTable", frozen)]
pub(crate) struct PyCostTable {
    inner: RwLock<CostTable>,
}

#[pymethods]
impl PyCostTable {
    #[new]
    fn new() -> Self {
        Self {
            inner: RwLock::new(CostTable::new()),
        }
    }

    fn __len__(&self) -> usize {
        self.inner.read().len()
    }

    /// Adds one entry (rates as LiteLLM's model info has them, `None` when absent); returns its
    /// index.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (input, output, cache_read, cache_creation, reasoning, input_audio, output_audio, output_image, thresholds))]
    fn add(
        &self,
        input: Option<f64>,
        output: Option<f64>,
        cache_read: Option<f64>,
        cache_creation: Option<f64>,
        reasoning: Option<f64>,
        input_audio: Option<f64>,
        output_audio: Option<f64>,
        output_image: Option<f64>,
        thresholds: Vec<ThresholdTuple>,
    ) -> usize {
        let prices = Prices {
            input,
            output,
            cache_read,
            cache_creation,
            reasoning,
            input_audio,
            output_audio,
            output_image,
            thresholds: thresholds
                .into_iter()
                .map(
                    |(above, input, output, cache_creation, cache_read)| Threshold {
                        above,
                        input,
                        output,
                        cache_creation,
                        cache_read,
                    },
                )
                .collect(),
        };
        self.inner.write().add(prices)
    }

    /// `(prompt_cost, completion_cost)` of a usage priced with entry `index`.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (index, prompt_tokens, completion_tokens, prompt_details, cached_tokens, cache_creation_tokens, prompt_text_tokens, prompt_audio_tokens, completion_details, completion_text_tokens, reasoning_tokens, completion_audio_tokens))]
    fn cost(
        &self,
        index: usize,
        prompt_tokens: i64,
        completion_tokens: i64,
        prompt_details: bool,
        cached_tokens: i64,
        cache_creation_tokens: i64,
        prompt_text_tokens: i64,
        prompt_audio_tokens: i64,
        completion_details: bool,
        completion_text_tokens: i64,
        reasoning_tokens: i64,
        completion_audio_tokens: i64,
    ) -> PyResult<(f64, f64)> {
        let usage = Usage {
            prompt_tokens,
            completion_tokens,
            prompt_details,
            cached_tokens,
            cache_creation_tokens,
            prompt_text_tokens,
            prompt_audio_tokens,
            completion_details,
            completion_text_tokens,
            reasoning_tokens,
            completion_audio_tokens,
        };
        guard("cost", || {
            let table = self.inner.read();
            let prices = table
                .get(index)
                .ok_or_else(|| PyIndexError::new_err(format!("no cost entry {index}")))?;
            Ok(cost::cost(prices, &usage))
        })
    }
}

/// Prices passed in the call: `(prompt_cost, completion_cost)`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn cost_custom(
    prompt_tokens: f64,
    completion_tokens: i64,
    cached_tokens: f64,
    cache_creation_tokens: f64,
    input_rate: f64,
    output_rate: f64,
    cache_read_rate: f64,
    cache_creation_rate: f64,
) -> (f64, f64) {
    cost::custom_cost(
        prompt_tokens,
        completion_tokens,
        cached_tokens,
        cache_creation_tokens,
        input_rate,
        output_rate,
        cache_read_rate,
        cache_creation_rate,
    )
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCostTable>()?;
    m.add_function(wrap_pyfunction!(cost_custom, m)?)?;
    Ok(())
}
