//! Bindings for `crate::tokens`: `fast_litellm._native.Encoding`.

use std::borrow::Cow;
use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::aio::awaitable;
use super::messages::extract_chat;
use super::request::ParsedRequest;
use super::{guard, text_arg, type_name, TokenizerUnavailableError};
use crate::metrics;
use crate::tokens::messages::CountConfig;
use crate::tokens::{Encoding, EncodingName, TokenError};

/// Below this many bytes a count runs with the GIL held: releasing and re-taking it costs more
/// (~0.2 µs) than counting a short text, and a short text blocks no other thread for long.
pub(crate) const DETACH_MIN_BYTES: usize = 2048;

impl From<TokenError> for PyErr {
    fn from(err: TokenError) -> PyErr {
        match err {
            TokenError::UnknownEncoding { .. } => PyValueError::new_err(err.to_string()),
            other => TokenizerUnavailableError::new_err(other.to_string()),
        }
    }
}

/// One loaded BPE vocabulary. Immutable and shared: safe to use from many threads at once.
#[pyclass(module = "fast_litellm._native", name = "Encoding", frozen)]
pub(crate) struct PyEncoding {
    inner: Arc<Encoding>,
}

#[pymethods]
impl PyEncoding {
    /// Loads `name`: without `path`, from the tables built with this library out of the
    /// shipped vocabulary (microseconds, nothing read); with one, by parsing that `.tiktoken`
    /// file (reading and parsing run without the GIL).
    #[staticmethod]
    #[pyo3(signature = (name, path=None))]
    fn load(py: Python<'_>, name: &str, path: Option<std::path::PathBuf>) -> PyResult<Self> {
        let encoding_name = EncodingName::parse(name)?;
        let Some(path) = path else {
            let loaded = guard("vocabulary loading", || {
                Encoding::builtin(encoding_name).map_err(PyErr::from)
            })?;
            return Ok(Self {
                inner: Arc::new(loaded),
            });
        };
        let loaded = guard("vocabulary loading", || {
            py.detach(move || {
                let data = std::fs::read(&path).map_err(|e| {
                    TokenizerUnavailableError::new_err(format!(
                        "cannot read the {} vocabulary at {}: {e}",
                        encoding_name.as_str(),
                        path.display()
                    ))
                })?;
                Encoding::from_tiktoken(encoding_name, &data).map_err(PyErr::from)
            })
        })?;
        Ok(Self {
            inner: Arc::new(loaded),
        })
    }

    #[getter]
    fn name(&self) -> &'static str {
        self.inner.name().as_str()
    }

    /// The number of tokens in `text`, special-token text counted as ordinary text.
    fn count(&self, py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<usize> {
        metrics::timed(metrics::COUNT_TOKENS, || {
            let text = text_arg(text, "count_tokens", "text")?;
            guard("token counting", || {
                let encoding = &self.inner;
                Ok(if text.len() < DETACH_MIN_BYTES {
                    encoding.count(&text)
                } else {
                    let text: &str = &text;
                    py.detach(|| encoding.count(text))
                })
            })
        })
    }

    /// Counts of many texts, in order; the work is spread over all cores without the GIL.
    fn count_batch(&self, py: Python<'_>, texts: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
        metrics::timed(metrics::COUNT_TOKENS_BATCH, || {
            let encoding = &self.inner;
            with_batch_texts(texts, |texts| {
                guard("batch token counting", || {
                    Ok(py.detach(|| encoding.count_batch(texts)))
                })
            })
        })
    }

    /// The number `litellm.token_counter` gives for a chat request (see `tokens::messages`):
    /// the request is read from Python objects first, then counted without the GIL.
    #[pyo3(signature = (messages, tools=None, tool_choice=None, *, legacy_accounting=false))]
    fn count_messages(
        &self,
        py: Python<'_>,
        messages: &Bound<'_, PyAny>,
        tools: Option<&Bound<'_, PyAny>>,
        tool_choice: Option<&Bound<'_, PyAny>>,
        legacy_accounting: bool,
    ) -> PyResult<usize> {
        metrics::timed(metrics::COUNT_MESSAGE_TOKENS, || {
            self.count_messages_inner(py, messages, tools, tool_choice, legacy_accounting)
        })
    }

    /// `count_messages` of a request body read by `parse_chat_request`, without the GIL.
    #[pyo3(signature = (request, *, legacy_accounting=false))]
    fn count_parsed(
        &self,
        py: Python<'_>,
        request: &ParsedRequest,
        legacy_accounting: bool,
    ) -> PyResult<usize> {
        metrics::timed(metrics::COUNT_REQUEST_TOKENS, || {
            let encoding = &self.inner;
            let config = CountConfig::from_env();
            let request = request.request();
            guard("message token counting", || {
                Ok(py.detach(|| {
                    request.count_parallel(legacy_accounting, |text| encoding.count(text), &config)
                }))
            })
        })
    }

    /// `count_parsed` as an awaitable: the count runs on a thread of the shared runtime.
    #[pyo3(signature = (request, *, legacy_accounting=false))]
    fn acount_parsed<'py>(
        &self,
        py: Python<'py>,
        request: &ParsedRequest,
        legacy_accounting: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let encoding = Arc::clone(&self.inner);
        let request = Arc::clone(request.request());
        let config = CountConfig::from_env();
        let count = async move {
            tokio::task::spawn_blocking(move || {
                request.count_parallel(legacy_accounting, |text| encoding.count(text), &config)
            })
            .await
            .map_err(|e| super::NativeError::new_err(format!("message token counting: {e}")))
        };
        awaitable(py, "message token counting", count, |py, n: usize| {
            Ok(n.into_pyobject(py)?.into_any().unbind())
        })
    }

    /// The token ids of `text` (special-token text encoded as ordinary text).
    fn encode(&self, py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<Vec<u32>> {
        let text = text_arg(text, "encode", "text")?;
        let encoding = &self.inner;
        guard("encoding", || {
            let text: &str = &text;
            Ok(py.detach(|| encoding.encode(text)))
        })
    }

    fn __repr__(&self) -> String {
        format!("<Encoding {}>", self.inner.name().as_str())
    }
}

impl PyEncoding {
    /// The number `litellm.token_counter` gives for a chat request (see `tokens::messages`):
    /// the request is read from Python objects first, then counted without the GIL.
    fn count_messages_inner(
        &self,
        py: Python<'_>,
        messages: &Bound<'_, PyAny>,
        tools: Option<&Bound<'_, PyAny>>,
        tool_choice: Option<&Bound<'_, PyAny>>,
        legacy_accounting: bool,
    ) -> PyResult<usize> {
        let mut request = extract_chat(py, messages, tools, tool_choice)?;
        request.legacy_accounting = legacy_accounting;
        let encoding = &self.inner;
        let config = CountConfig::from_env();
        guard("message token counting", || {
            Ok(py.detach(|| request.count(|text| encoding.count(text), &config)))
        })
    }
}

/// `count` applied to the texts of a `count_tokens_batch` argument (`Encoding.count_batch`,
/// `HfTokenizer.count_batch`): any iterable of `str` except a single `str` (or `bytes`), which
/// would otherwise be taken for a sequence of one-character texts.
///
/// The items stay referenced while `count` runs, so the UTF-8 buffers borrowed from them stay
/// valid while it releases the GIL, even if another thread mutates the caller's list meanwhile.
pub(crate) fn with_batch_texts<R>(
    texts: &Bound<'_, PyAny>,
    count: impl FnOnce(&[&str]) -> PyResult<R>,
) -> PyResult<R> {
    let items = batch_items(texts)?;
    let owned = items
        .iter()
        .enumerate()
        .map(|(index, item)| item_text(item, index))
        .collect::<PyResult<Vec<_>>>()?;
    let borrowed: Vec<&str> = owned.iter().map(|t| t.as_ref()).collect();
    count(&borrowed)
}

fn batch_items<'py>(texts: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if texts.is_instance_of::<PyString>() || texts.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(format!(
            "count_tokens_batch() argument 'texts' must be a list of str, not a single {}",
            type_name(texts)
        )));
    }
    let iter = texts.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "count_tokens_batch() argument 'texts' must be an iterable of str, not {}",
            type_name(texts)
        ))
    })?;
    iter.collect()
}

fn item_text<'a>(item: &'a Bound<'_, PyAny>, index: usize) -> PyResult<Cow<'a, str>> {
    if !item.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "count_tokens_batch() argument 'texts' must hold only str; item {index} is {}",
            type_name(item)
        )));
    }
    text_arg(item, "count_tokens_batch", "texts")
}

/// The message counter's knobs as LiteLLM read them (by Python's `int()`), from the Python
/// layer at import; `False` when a count had already read them.
#[pyfunction]
fn _set_count_config(chunk_chars: usize, max_exact_chars: usize) -> PyResult<bool> {
    if chunk_chars == 0 || max_exact_chars == 0 {
        return Err(PyValueError::new_err(
            "the counter's knobs must be at least 1",
        ));
    }
    Ok(crate::tokens::messages::set_config(CountConfig {
        chunk_chars,
        max_exact_chars,
    }))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_set_count_config, m)?)?;
    m.add_class::<PyEncoding>()?;
    let names: Vec<&str> = EncodingName::ALL.iter().map(|n| n.as_str()).collect();
    m.add("ENCODING_NAMES", names)?;
    Ok(())
}
