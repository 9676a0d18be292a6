//! Request cost: LiteLLM's generic per-token calculator for the usage shapes and price entries
//! `fast_litellm.cost` sends here (input, output, cached and cache-write tokens, reasoning and
//! audio tokens, `_above_<n>_tokens` thresholds), and its calculator for prices passed in a call.
//!
//! Exactness notes. Results must equal LiteLLM's floats bit for bit, so every operation follows
//! LiteLLM's order: a count becomes an `f64` first and is then multiplied by its rate; the parts
//! are added in LiteLLM's order (`((text + cached) + audio) + cache_write`), never regrouped or
//! fused (no `mul_add`: Python rounds the product before the addition). Counts are `i64`
//! (Python ints the caller has checked), so `count as f64` is Python's `float(count)` for every
//! count below 2^53.
//!
//! Which entries and usages reach this table (and which are handed to LiteLLM) is decided in
//! Python, where LiteLLM's own name resolution runs; this core only does the arithmetic.

/// Prices for one `_above_<n>_tokens` threshold, applied when the prompt has more tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Threshold {
    pub above: f64,
    pub input: Option<f64>,
    pub output: Option<f64>,
    pub cache_creation: Option<f64>,
    pub cache_read: Option<f64>,
}

/// The rates of one model, as LiteLLM's `get_model_info` returns them (absent = `None`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Prices {
    pub input: Option<f64>,
    pub output: Option<f64>,
    pub cache_read: Option<f64>,
    pub cache_creation: Option<f64>,
    pub reasoning: Option<f64>,
    pub input_audio: Option<f64>,
    pub output_audio: Option<f64>,
    pub output_image: Option<f64>,
    /// In the order LiteLLM applies them (sorted by threshold, stable).
    pub thresholds: Vec<Threshold>,
}

/// The token counts of one usage. `prompt_details`/`completion_details`: whether the usage has a
/// details object (LiteLLM treats a missing one differently from one with zeros in it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub prompt_details: bool,
    pub cached_tokens: i64,
    pub cache_creation_tokens: i64,
    pub prompt_text_tokens: i64,
    pub prompt_audio_tokens: i64,
    pub completion_details: bool,
    pub completion_text_tokens: i64,
    pub reasoning_tokens: i64,
    pub completion_audio_tokens: i64,
}

/// `(prompt_cost, completion_cost)` in USD.
///
/// The token arithmetic is in `i128`, as Python's ints would do it: the counts are 64-bit, and
/// their sums and differences (up to four of them) must not wrap.
pub fn cost(prices: &Prices, usage: &Usage) -> (f64, f64) {
    let prompt = i128::from(usage.prompt_tokens);
    // Prompt token classes: parse_prompt_tokens_details, then the double-counting rule.
    let (cache_hit, cache_creation, mut text, mut audio) = if usage.prompt_details {
        (
            i128::from(usage.cached_tokens),
            i128::from(usage.cache_creation_tokens),
            i128::from(usage.prompt_text_tokens).max(0),
            i128::from(usage.prompt_audio_tokens).max(0),
        )
    } else {
        (0, 0, prompt, 0)
    };
    let total_details = text + cache_hit + audio + cache_creation;
    if (cache_hit > 0 || cache_creation > 0) && total_details > prompt {
        let budget = (prompt - cache_hit - cache_creation).max(0);
        audio = audio.min(budget);
        text = budget - audio;
    } else if text == 0 {
        text = (prompt - cache_hit - audio - cache_creation).max(0);
    }

    // Base rates; above a threshold every rate it sets replaces the current one.
    let mut input_rate = prices.input.unwrap_or(0.0);
    let mut output_rate = prices.output.unwrap_or(0.0);
    if output_rate == 0.0 {
        if let Some(image) = prices.output_image {
            output_rate = image;
        }
    }
    let mut cache_creation_rate = prices.cache_creation;
    let mut cache_read_rate = prices.cache_read;
    // Python compares an int with a float exactly; so does this (no rounding of `prompt`).
    for t in &prices.thresholds {
        if int_exceeds(prompt, t.above) {
            if let Some(rate) = t.input {
                input_rate = rate;
            }
            if let Some(rate) = t.output {
                output_rate = rate;
            }
            if let Some(rate) = t.cache_creation {
                cache_creation_rate = Some(rate);
            }
            if let Some(rate) = t.cache_read {
                cache_read_rate = Some(rate);
            }
        }
    }
    let cache_read_rate = cache_read_rate.unwrap_or(input_rate);
    let cache_creation_rate = cache_creation_rate.unwrap_or(input_rate);

    let mut prompt_cost = text as f64 * input_rate;
    prompt_cost += cache_hit.max(0) as f64 * cache_read_rate;
    if audio != 0 {
        prompt_cost += audio as f64 * prices.input_audio.unwrap_or(input_rate);
    }
    if cache_creation != 0 {
        prompt_cost += cache_creation as f64 * cache_creation_rate;
    }

    // Output token classes (text_tokens_without_nested_reasoning).
    let completion = i128::from(usage.completion_tokens);
    let (mut out_text, out_audio, reasoning) = if usage.completion_details {
        let reported = i128::from(usage.completion_text_tokens);
        let reasoning = i128::from(usage.reasoning_tokens);
        let out_audio = i128::from(usage.completion_audio_tokens);
        let reported_total = reported + reasoning + out_audio;
        let nested = reasoning
            .min(reported)
            .min((reported_total - completion).max(0));
        (reported - nested, out_audio, reasoning)
    } else {
        (0, 0, 0)
    };
    let mut total_is_text = false;
    if out_text == 0 {
        if out_audio > 0 || reasoning > 0 {
            out_text = (completion - reasoning - out_audio).max(0);
        } else {
            out_text = completion;
            total_is_text = true;
        }
    }
    let mut completion_cost = out_text as f64 * output_rate;
    if !total_is_text && out_audio > 0 {
        completion_cost += out_audio as f64 * prices.output_audio.unwrap_or(output_rate);
    }
    if !total_is_text && reasoning > 0 {
        completion_cost += reasoning as f64 * prices.reasoning.unwrap_or(output_rate);
    }
    (prompt_cost, completion_cost)
}

/// `value > threshold` with Python's exact int/float comparison.
fn int_exceeds(value: i128, threshold: f64) -> bool {
    if threshold.is_nan() {
        return false;
    }
    // Below 2^127 in size the floor of a float is exactly an i128, and for an integer `value`,
    // `value > threshold` is `value > floor(threshold)`; beyond, the sign decides.
    if threshold.abs() < 1.7e38 {
        return value > threshold.floor() as i128;
    }
    threshold < 0.0
}

/// Prices passed in the call (LiteLLM's `_cost_per_token_custom_pricing_helper`): the prompt
/// count includes the cached and cache-written tokens; the caller has checked that the regular
/// part is not negative.
#[allow(clippy::too_many_arguments)]
pub fn custom_cost(
    prompt_tokens: f64,
    completion_tokens: i64,
    cached_tokens: f64,
    cache_creation_tokens: f64,
    input_rate: f64,
    output_rate: f64,
    cache_read_rate: f64,
    cache_creation_rate: f64,
) -> (f64, f64) {
    let regular = prompt_tokens - cached_tokens - cache_creation_tokens;
    let input_cost = regular * input_rate
        + cached_tokens * cache_read_rate
        + cache_creation_tokens * cache_creation_rate;
    (input_cost, completion_tokens as f64 * output_rate)
}

/// Entries added one by one; an index names one. Entries are never changed or removed: a new
/// cost map gets a new table.
#[derive(Debug, Default)]
pub struct CostTable {
    entries: Vec<Prices>,
}

impl CostTable {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, prices: Prices) -> usize {
        self.entries.push(prices);
        self.entries.len() - 1
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&Prices> {
        self.entries.get(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpt4o() -> Prices {
        Prices {
            input: Some(2.5e-06),
            output: Some(1e-05),
            cache_read: Some(1.25e-06),
            ..Prices::default()
        }
    }

    #[test]
    fn plain_usage_is_count_times_rate() {
        let usage = Usage {
            prompt_tokens: 20,
            completion_tokens: 5,
            ..Usage::default()
        };
        assert_eq!(cost(&gpt4o(), &usage), (20.0 * 2.5e-06, 5.0 * 1e-05));
    }

    #[test]
    fn cached_tokens_are_billed_at_the_cache_rate() {
        let usage = Usage {
            prompt_tokens: 1000,
            completion_tokens: 0,
            prompt_details: true,
            cached_tokens: 400,
            ..Usage::default()
        };
        let (prompt, completion) = cost(&gpt4o(), &usage);
        assert_eq!(prompt, 600.0 * 2.5e-06 + 400.0 * 1.25e-06);
        assert_eq!(completion, 0.0);
    }

    #[test]
    fn a_threshold_applies_above_it_only() {
        let mut prices = gpt4o();
        prices.thresholds.push(Threshold {
            above: 200_000.0,
            input: Some(5e-06),
            output: Some(2e-05),
            ..Threshold::default()
        });
        let at = Usage {
            prompt_tokens: 200_000,
            completion_tokens: 1,
            ..Usage::default()
        };
        assert_eq!(cost(&prices, &at), (200_000.0 * 2.5e-06, 1e-05));
        let above = Usage {
            prompt_tokens: 200_001,
            ..at
        };
        assert_eq!(cost(&prices, &above), (200_001.0 * 5e-06, 2e-05));
    }

    #[test]
    fn reasoning_without_its_own_rate_is_billed_as_output() {
        let usage = Usage {
            prompt_tokens: 0,
            completion_tokens: 10,
            completion_details: true,
            reasoning_tokens: 4,
            ..Usage::default()
        };
        assert_eq!(cost(&gpt4o(), &usage).1, 6.0 * 1e-05 + 4.0 * 1e-05);
    }

    #[test]
    fn python_int_float_comparison() {
        assert!(int_exceeds(3, 2.5));
        assert!(!int_exceeds(2, 2.5));
        assert!(!int_exceeds(2, 2.0));
        assert!(int_exceeds(-1, -1.5));
        assert!(!int_exceeds(5, f64::NAN));
    }
}
