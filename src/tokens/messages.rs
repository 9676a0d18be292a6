//! Chat-message token counting with LiteLLM's exact rules (the core: no PyO3 here).
//!
//! The algorithm is documented in full in `python/fast_litellm/_fallback/messages.py`, its
//! pure-Python twin; this module is the same arithmetic over already-extracted Rust types. In short:
//!
//! ```text
//! total = Σ_messages ( tokens_per_message                      // 3 (4 for gpt-3.5-turbo-0301)
//!                      + Σ count(every string-valued field)    // role, content, tool_call_id, any key
//!                      + tokens_per_name if "name" is a str    // 1 (-1 for gpt-3.5-turbo-0301)
//!                      + Σ count(str(tool_call.function.arguments))
//!                      + count(str(function_call.arguments))
//!                      + content parts (text, priced images, ...)
//!                      + count(compaction summaries)
//!                      + count(search_results text) )
//!       + 3                                                     // reply priming
//!       + [tools]  count(rendered tool definitions) + 9 - (4 if any role == "system")
//!       + [tool_choice "none" or {"type": "none"}] 1
//!       + [tool_choice names a function by a str] 7 + count(name)
//! ```
//!
//! `count` is LiteLLM's text counter, not the exact one: the text is cut into chunks of
//! [`CountConfig::chunk_chars`] characters (code points) that are encoded separately, and texts longer
//! than [`CountConfig::max_exact_chars`] are extrapolated from 16 samples
//! ([`count_text_like_litellm`]). The caller supplies the exact counter
//! (`len(encoding.encode(s, disallowed_special=()))`, i.e. `Encoding::count`).
//!
//! What the extraction layer must prepare (the binding in `src/py/messages.rs` does this):
//! - every field whose value LiteLLM passes through Python's `str()` arrives here already as that
//!   string: tool-call / function-call `arguments` (a dict counts as its repr, `None` as "None"),
//!   text-block fields (`str(text or "")`), `tool_name`, dict fields of tool blocks;
//! - the tool definitions arrive rendered ([`super::tools`]), only when `tools` is truthy;
//! - `search_results` arrive as the text LiteLLM builds ([`super::search_results`]);
//! - images arrive priced ([`super::image`]); content the binding cannot price offline
//!   (high-detail http(s) images, PDF documents) is rejected there with `UnsupportedContentError`.

use std::sync::OnceLock;

pub use super::image::BASE_IMAGE_TOKENS;

/// Reply priming added once per request (`<|start|>assistant<|message|>`).
pub const REPLY_PRIMING_TOKENS: i64 = 3;
/// Added with the rendered tool definitions.
pub const TOOLS_OVERHEAD_TOKENS: i64 = 9;
/// Subtracted when tools are present and some message has `role == "system"`.
pub const SYSTEM_WITH_TOOLS_DISCOUNT: i64 = 4;
/// Added for `tool_choice == "none"`.
pub const TOOL_CHOICE_NONE_TOKENS: i64 = 1;
/// Added (plus the function name) for a dict `tool_choice`.
pub const TOOL_CHOICE_FUNCTION_TOKENS: i64 = 7;
/// Number of samples LiteLLM extrapolates very long texts from.
pub const EXTRAPOLATION_SAMPLES: usize = 16;

/// Errors of the counting core. The binding maps `ImageNeedsDownload` to
/// `UnsupportedContentError` (the caller may hand the request to litellm) and the others to
/// `ValueError`, as LiteLLM fails on the same input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error(
        "litellm downloads high-detail images given by http(s) URL to measure them; pass \
         detail='low'/'auto', a data: URL, or count with litellm"
    )]
    ImageNeedsDownload,
    #[error("cannot read the image size from the data URL: {0}")]
    UnreadableImage(String),
    /// Where in the request the error happened (`messages[2].content[0].image_url`).
    #[error("{path}: {source}")]
    At {
        path: String,
        #[source]
        source: Box<MessageError>,
    },
}

impl MessageError {
    /// The same error, located at `path` in the request.
    pub fn at(self, path: impl Into<String>) -> MessageError {
        MessageError::At {
            path: path.into(),
            source: Box::new(self),
        }
    }

    /// The error behind any location.
    pub fn kind(&self) -> &MessageError {
        match self {
            MessageError::At { source, .. } => source.kind(),
            other => other,
        }
    }
}

/// This process's knobs (see `CountConfig::from_env`).
static CONFIG: OnceLock<CountConfig> = OnceLock::new();

/// Sets this process's knobs before the first count reads them; `false` once they are set.
pub fn set_config(config: CountConfig) -> bool {
    CONFIG.set(config).is_ok()
}

/// LiteLLM's text-counter knobs (`TIKTOKEN_ENCODE_CHUNK_SIZE_CHARS`, `TOKEN_COUNTER_MAX_EXACT_CHARS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountConfig {
    pub chunk_chars: usize,
    pub max_exact_chars: usize,
}

impl Default for CountConfig {
    fn default() -> Self {
        CountConfig {
            chunk_chars: 1024,
            max_exact_chars: 4_000_000,
        }
    }
}

fn env_int_in_range(name: &str, default: usize, min: usize, max: usize) -> usize {
    // litellm: int(raw.strip()), falling back to the default when unparsable or out of range.
    match std::env::var(name) {
        Ok(raw) => match raw.trim().parse::<i128>() {
            Ok(v) if v >= min as i128 && v <= max as i128 => v as usize,
            _ => default,
        },
        Err(_) => default,
    }
}

impl CountConfig {
    /// LiteLLM's knobs for a Hugging Face tokenizer: the same extrapolation, no chunks (LiteLLM
    /// chunks only its tiktoken counter).
    pub fn without_chunks() -> CountConfig {
        CountConfig {
            chunk_chars: usize::MAX,
            ..CountConfig::from_env()
        }
    }

    /// The values LiteLLM reads from the environment, read once per process (as LiteLLM does at
    /// import): the ones the binding layer gave (`set_config`), read by Python's `int()` as
    /// LiteLLM reads them ("2_048", full-width digits), else parsed here (plain digits).
    pub fn from_env() -> CountConfig {
        *CONFIG.get_or_init(|| CountConfig {
            chunk_chars: env_int_in_range("TIKTOKEN_ENCODE_CHUNK_SIZE_CHARS", 1024, 1, 4096),
            max_exact_chars: env_int_in_range(
                "TOKEN_COUNTER_MAX_EXACT_CHARS",
                4_000_000,
                1,
                1_000_000_000,
            ),
        })
    }
}

/// One priced item of a content list. LiteLLM's part types map onto these:
/// - `str` item, `text` (`str(text)`), `thinking`/`redacted_thinking` (`str(thinking)`),
///   `tool_reference` (`str(tool_name or "")`), document `title`/`context`/text data, file
///   `filename`, `tool_use` `name` and dict `input`/`caller` (`str(dict)`), `tool_result` string
///   content -> [`ContentPart::Text`];
/// - `image_url`, `image`, non-PDF opaque documents and file data -> [`ContentPart::Image`],
///   already priced ([`super::image`]);
/// - nested lists (`tool_result.content`, `tool_use` list fields, document `content` sources) ->
///   [`ContentPart::Parts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentPart {
    Text(String),
    /// The tokens LiteLLM charges for one image or opaque document.
    Image(usize),
    Parts(Vec<ContentPart>),
}

/// The part of a tool call LiteLLM counts: `str(function.get("arguments", ""))`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolCall {
    pub arguments: String,
}

/// One message, reduced to what LiteLLM counts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChatMessage {
    /// `message.get("role") == "system"`.
    pub is_system: bool,
    /// Every string value of the message except `name`, `tool_calls` and `function_call` (so `role`,
    /// string `content`, `tool_call_id`, unknown keys...).
    pub text_fields: Vec<String>,
    /// A string `name` (counted, plus `tokens_per_name`).
    pub name: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub function_call: Option<ToolCall>,
    /// `content` given as a list.
    pub content_parts: Vec<ContentPart>,
    /// The text LiteLLM builds from a `search_results` list (counted when non-empty).
    pub search_results: Option<String>,
}

/// `tool_choice` as LiteLLM distinguishes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ToolChoice {
    /// `None`, "auto", "required", or anything below that names no function: adds nothing.
    #[default]
    Unpriced,
    /// "none" or `{"type": "none"}`: adds 1.
    NoTool,
    /// A mapping naming a function by a str (`{"function": {"name": ...}}` or `{"name": ...}`):
    /// adds 7 + count(name).
    Function { name: String },
}

/// A whole `token_counter(messages=..., tools=..., tool_choice=...)` request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    /// The rendered tool definitions; `Some` exactly when `tools` is truthy (non-empty).
    pub tools_text: Option<String>,
    pub tool_choice: ToolChoice,
    /// The `gpt-3.5-turbo-0301` constants (4 per message, -1 per name) instead of 3 and 1.
    pub legacy_accounting: bool,
}

/// The texts to count and the constant part of the total, so a caller can count the texts in a
/// batch (in parallel) and add: `total = overhead + Σ count_text_like_litellm(text)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountPlan<'a> {
    pub texts: Vec<&'a str>,
    pub overhead: i64,
}

fn collect_parts<'a>(parts: &'a [ContentPart], plan: &mut CountPlan<'a>) {
    for part in parts {
        match part {
            ContentPart::Text(t) => plan.texts.push(t),
            ContentPart::Image(tokens) => plan.overhead += *tokens as i64,
            ContentPart::Parts(inner) => collect_parts(inner, plan),
        }
    }
}

impl ChatRequest {
    /// Split the request into texts to count and a constant overhead.
    pub fn plan(&self) -> CountPlan<'_> {
        self.plan_as(self.legacy_accounting)
    }

    /// [`ChatRequest::plan`] with the message constants of `legacy_accounting`, whatever the
    /// request says (a request read before its model was known).
    pub fn plan_as(&self, legacy_accounting: bool) -> CountPlan<'_> {
        let (per_message, per_name) = if legacy_accounting {
            (4i64, -1i64)
        } else {
            (3, 1)
        };
        let mut plan = CountPlan {
            texts: Vec::new(),
            overhead: 0,
        };
        let mut has_system = false;
        for m in &self.messages {
            plan.overhead += per_message;
            has_system |= m.is_system;
            plan.texts.extend(m.text_fields.iter().map(String::as_str));
            if let Some(name) = &m.name {
                plan.texts.push(name);
                plan.overhead += per_name;
            }
            plan.texts
                .extend(m.tool_calls.iter().map(|c| c.arguments.as_str()));
            if let Some(fc) = &m.function_call {
                plan.texts.push(&fc.arguments);
            }
            collect_parts(&m.content_parts, &mut plan);
            if let Some(sr) = &m.search_results {
                plan.texts.push(sr);
            }
        }
        plan.overhead += REPLY_PRIMING_TOKENS;
        if let Some(tools) = &self.tools_text {
            plan.texts.push(tools);
            plan.overhead += TOOLS_OVERHEAD_TOKENS;
            if has_system {
                plan.overhead -= SYSTEM_WITH_TOOLS_DISCOUNT;
            }
        }
        match &self.tool_choice {
            ToolChoice::Unpriced => {}
            ToolChoice::NoTool => plan.overhead += TOOL_CHOICE_NONE_TOKENS,
            ToolChoice::Function { name } => {
                plan.overhead += TOOL_CHOICE_FUNCTION_TOKENS;
                plan.texts.push(name);
            }
        }
        plan
    }

    /// What `litellm.token_counter` returns for this request, given the exact counter of the
    /// model's encoding.
    pub fn count<F: Fn(&str) -> usize>(&self, count_exact: F, config: &CountConfig) -> usize {
        self.count_as(self.legacy_accounting, count_exact, config)
    }

    /// [`ChatRequest::count`] with the message constants of `legacy_accounting`.
    pub fn count_as<F: Fn(&str) -> usize>(
        &self,
        legacy_accounting: bool,
        count_exact: F,
        config: &CountConfig,
    ) -> usize {
        count_plan(&self.plan_as(legacy_accounting), count_exact, config)
    }

    /// [`ChatRequest::count_as`], with the texts of a large request (at least
    /// [`PARALLEL_MIN_BYTES`] in all) counted on the process's pool. The same number: the texts
    /// are cut into LiteLLM's own chunks and the exact counts of the chunks are summed, as
    /// LiteLLM sums them, only not in order.
    pub fn count_parallel<F: Fn(&str) -> usize + Sync>(
        &self,
        legacy_accounting: bool,
        count_exact: F,
        config: &CountConfig,
    ) -> usize {
        let plan = self.plan_as(legacy_accounting);
        let bytes: usize = plan.texts.iter().map(|t| t.len()).sum();
        if bytes < PARALLEL_MIN_BYTES {
            return count_plan(&plan, count_exact, config);
        }
        let mut units = Vec::with_capacity(plan.texts.len() + bytes / config.chunk_chars.max(1));
        for text in &plan.texts {
            if text.len() <= config.max_exact_chars {
                units.extend(chunks(text, config.chunk_chars).map(Unit::Exact));
            } else {
                units.push(Unit::Text(text));
            }
        }
        let texts = super::pool::sum(&units, |unit| match unit {
            Unit::Exact(chunk) => count_exact(chunk),
            Unit::Text(text) => count_text_like_litellm(text, &count_exact, config),
        });
        (plan.overhead + texts as i64).max(0) as usize
    }
}

/// The count of `plan` on the calling thread, its texts one after another.
fn count_plan<F: Fn(&str) -> usize>(
    plan: &CountPlan<'_>,
    count_exact: F,
    config: &CountConfig,
) -> usize {
    let texts: i64 = plan
        .texts
        .iter()
        .map(|t| count_text_like_litellm(t, &count_exact, config) as i64)
        .sum();
    (plan.overhead + texts).max(0) as usize
}

/// Below this many bytes of text a request is counted on the calling thread. Measured on 2
/// idle cores (release build, the benchmark's English chat, o200k): from ~8 KB of text the pool
/// is faster (8 KB ~26 -> ~21 µs, 12 KB ~42 -> ~27 µs, 16 KB ~63 -> ~35 µs, 50 KB ~271 ->
/// ~147 µs); below, waking its threads costs more than it saves. The threshold stays above
/// that point because on a busy machine the pool's threads wait for a core.
pub const PARALLEL_MIN_BYTES: usize = 16 * 1024;

/// A piece of work of [`ChatRequest::count_parallel`].
enum Unit<'a> {
    /// A chunk counted exactly.
    Exact(&'a str),
    /// A text long enough to be extrapolated: counted whole ([`count_text_like_litellm`]).
    Text(&'a str),
}

/// The chunks of `chunk_chars` characters (code points) `text` is counted in; none for "".
fn chunks(text: &str, chunk_chars: usize) -> impl Iterator<Item = &str> {
    let chunk_chars = chunk_chars.max(1);
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        // A text of at most `chunk_chars` bytes has at most that many characters: one chunk.
        // ASCII has a character per byte: the walk over the characters (~8% of counting 50 KB of
        // English before this check) is left to the other texts.
        let end = if rest.len() <= chunk_chars {
            rest.len()
        } else if rest.as_bytes()[..chunk_chars].is_ascii() {
            chunk_chars
        } else {
            rest.char_indices()
                .nth(chunk_chars)
                .map_or(rest.len(), |(i, _)| i)
        };
        let (chunk, tail) = rest.split_at(end);
        rest = tail;
        Some(chunk)
    })
}

/// Sum of exact counts over consecutive chunks of `chunk_chars` characters.
fn count_chunked<F: Fn(&str) -> usize>(text: &str, count_exact: &F, chunk_chars: usize) -> usize {
    chunks(text, chunk_chars).map(count_exact).sum()
}

/// LiteLLM's per-string count (`_get_extrapolating_count_function` over
/// `_get_tiktoken_count_function`): exact counts of `chunk_chars`-character chunks summed, and for
/// texts longer than `max_exact_chars` characters, 16 evenly spaced samples of
/// `max_exact_chars / 16` characters counted that way and scaled by `len / sampled_chars`, rounded
/// half to even. The scaling is exact while `sample_tokens * len(text) < 2**53`.
pub fn count_text_like_litellm<F: Fn(&str) -> usize>(
    text: &str,
    count_exact: &F,
    config: &CountConfig,
) -> usize {
    let max_exact = config.max_exact_chars.max(1);
    // Cheap path: a text of at most max_exact bytes has at most max_exact chars.
    if text.len() <= max_exact {
        return count_chunked(text, count_exact, config.chunk_chars);
    }
    let len = text.chars().count();
    if len <= max_exact {
        return count_chunked(text, count_exact, config.chunk_chars);
    }
    let sample_count = EXTRAPOLATION_SAMPLES.min(max_exact);
    let sample_chars = max_exact / sample_count;
    let last_start = len - sample_chars;
    let denom = (sample_count - 1).max(1);
    let starts: Vec<usize> = (0..sample_count).map(|i| last_start * i / denom).collect();
    // Map the needed character positions to byte offsets in one pass.
    let mut wanted: Vec<usize> = starts.iter().flat_map(|&s| [s, s + sample_chars]).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut offsets = std::collections::HashMap::with_capacity(wanted.len());
    let mut next = 0;
    for (ci, (bi, _)) in text.char_indices().enumerate() {
        while next < wanted.len() && wanted[next] == ci {
            offsets.insert(ci, bi);
            next += 1;
        }
        if next == wanted.len() {
            break;
        }
    }
    while next < wanted.len() {
        offsets.insert(wanted[next], text.len());
        next += 1;
    }
    let mut sampled_tokens: u128 = 0;
    for &s in &starts {
        let sample = &text[offsets[&s]..offsets[&(s + sample_chars)]];
        sampled_tokens += count_chunked(sample, count_exact, config.chunk_chars) as u128;
    }
    let sampled_chars = (sample_count * sample_chars) as f64;
    let scaled = (sampled_tokens * len as u128) as f64 / sampled_chars;
    scaled.round_ties_even() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy exact counter: whitespace-separated words (chunk boundaries change the result).
    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    fn cfg() -> CountConfig {
        CountConfig::default()
    }

    fn msg(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            is_system: role == "system",
            text_fields: vec![role.to_string(), content.to_string()],
            ..Default::default()
        }
    }

    #[test]
    fn empty_request_is_reply_priming() {
        assert_eq!(ChatRequest::default().count(words, &cfg()), 3);
    }

    #[test]
    fn per_message_and_name() {
        let mut m = msg("user", "hello there");
        m.name = Some("bob".into());
        let req = ChatRequest {
            messages: vec![m.clone()],
            ..Default::default()
        };
        // 3 + role(1) + content(2) + name(1) + 1 + priming 3
        assert_eq!(req.count(words, &cfg()), 11);
        let legacy = ChatRequest {
            messages: vec![m],
            legacy_accounting: true,
            ..Default::default()
        };
        // 4 + 1 + 2 + 1 - 1 + 3
        assert_eq!(legacy.count(words, &cfg()), 10);
    }

    #[test]
    fn tools_and_tool_choice() {
        let tools = Some(
            "namespace functions {\n\ntype f = () => any;\n\n} // namespace functions".to_string(),
        );
        let base = ChatRequest {
            messages: vec![msg("user", "hi")],
            tools_text: tools.clone(),
            ..Default::default()
        };
        let tool_words = words(tools.as_deref().unwrap());
        assert_eq!(base.count(words, &cfg()), 3 + 2 + 3 + tool_words + 9);
        let with_system = ChatRequest {
            messages: vec![msg("system", "s"), msg("user", "hi")],
            tools_text: tools,
            ..Default::default()
        };
        assert_eq!(
            with_system.count(words, &cfg()),
            3 + 2 + 3 + 2 + 3 + tool_words + 9 - 4
        );
        let none = ChatRequest {
            tool_choice: ToolChoice::NoTool,
            ..Default::default()
        };
        assert_eq!(none.count(words, &cfg()), 4);
        let func = ChatRequest {
            tool_choice: ToolChoice::Function {
                name: "get weather".into(),
            },
            ..Default::default()
        };
        assert_eq!(func.count(words, &cfg()), 3 + 7 + 2);
    }

    #[test]
    fn tool_calls_and_parts() {
        let m = ChatMessage {
            text_fields: vec!["assistant".into()],
            tool_calls: vec![
                ToolCall {
                    arguments: "{'a': 1}".into(),
                },
                ToolCall {
                    arguments: "None".into(),
                },
            ],
            function_call: Some(ToolCall {
                arguments: "x y".into(),
            }),
            content_parts: vec![
                ContentPart::Text("one two".into()),
                ContentPart::Image(BASE_IMAGE_TOKENS),
                ContentPart::Parts(vec![
                    ContentPart::Text("three".into()),
                    ContentPart::Image(7),
                ]),
                ContentPart::Image(765),
            ],
            search_results: Some("a b c".into()),
            ..Default::default()
        };
        let req = ChatRequest {
            messages: vec![m],
            ..Default::default()
        };
        let expected = 3 + 1 + 2 + 1 + 2 + 2 + 85 + 1 + 7 + 765 + 3 + 3;
        assert_eq!(req.count(words, &cfg()), expected);
    }

    #[test]
    fn chunking_is_by_characters() {
        let config = CountConfig {
            chunk_chars: 10,
            max_exact_chars: 1000,
        };
        let text = "ab ".repeat(100);
        assert_eq!(count_text_like_litellm(&text, &words, &config), 110);
        let config = CountConfig {
            chunk_chars: 7,
            max_exact_chars: 100,
        };
        let text = "héllo wörld ".repeat(50);
        assert_eq!(count_text_like_litellm(&text, &words, &config), 175);
        assert_eq!(count_text_like_litellm("", &words, &config), 0);
    }

    #[test]
    fn extrapolation_matches_python() {
        let config = CountConfig {
            chunk_chars: 10,
            max_exact_chars: 160,
        };
        let text = "ab ".repeat(100);
        assert_eq!(count_text_like_litellm(&text, &words, &config), 109);
    }

    #[test]
    fn parallel_count_equals_the_count() {
        // Texts of one to many chunks, with multi-byte characters, where the word counter gives
        // a different total for different cuts; above and below the parallel threshold; chunked
        // as the tiktoken counter is, whole as the Hugging Face one is, and extrapolated.
        let long = "héllo wörld, 日本語 ".repeat(200);
        let texts = ["", "a", "ab cd", &long[..1500], &long];
        for messages in [1, 2, 7, 40] {
            let request = ChatRequest {
                messages: (0..messages)
                    .map(|i| {
                        let mut m = msg(["system", "user"][i % 2], texts[i % texts.len()]);
                        m.name = (i % 3 == 0).then(|| texts[(i + 1) % texts.len()].to_owned());
                        m.content_parts = vec![ContentPart::Text(long.clone())];
                        m
                    })
                    .collect(),
                tools_text: Some("tools ".repeat(300)),
                tool_choice: ToolChoice::Function { name: "f".into() },
                legacy_accounting: false,
            };
            let bytes: usize = request.plan().texts.iter().map(|t| t.len()).sum();
            if messages == 1 || messages == 40 {
                assert_eq!(bytes >= PARALLEL_MIN_BYTES, messages == 40, "{bytes}");
            }
            for config in [
                cfg(),
                CountConfig {
                    chunk_chars: 7,
                    max_exact_chars: 1_000_000,
                },
                CountConfig {
                    chunk_chars: usize::MAX,
                    max_exact_chars: 1_000_000,
                },
                CountConfig {
                    chunk_chars: 10,
                    max_exact_chars: 1000,
                },
            ] {
                for legacy in [false, true] {
                    assert_eq!(
                        request.count_parallel(legacy, words, &config),
                        request.count_as(legacy, words, &config),
                        "{messages} messages, {config:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn chunks_are_litellms() {
        let text = "añb日c".repeat(5);
        for size in [1, 2, 3, 5, 24, 25, 26, 1000] {
            let cut: Vec<&str> = chunks(&text, size).collect();
            assert_eq!(cut.concat(), text);
            assert!(
                cut.iter().all(|c| c.chars().count() == size) || {
                    let (last, full) = cut.split_last().unwrap();
                    full.iter().all(|c| c.chars().count() == size)
                        && (1..=size).contains(&last.chars().count())
                }
            );
        }
        assert_eq!(chunks("", 3).count(), 0);
    }

    #[test]
    fn chunked_exact_equals_whole_for_short_text() {
        let config = cfg();
        assert_eq!(count_text_like_litellm("a b c", &words, &config), 3);
    }
}
