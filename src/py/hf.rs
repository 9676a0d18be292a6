//! Bindings for `crate::tokens::hf`: `fast_litellm._native.HfTokenizer`.

use std::sync::{Arc, OnceLock};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use super::aio::awaitable;
use super::messages::extract_chat;
use super::request::ParsedRequest;
use super::tokens::{with_batch_texts, DETACH_MIN_BYTES};
use super::{guard, text_arg, TokenizerUnavailableError};
use crate::metrics;
use crate::tokens::hf::{HfError, HfTokenizer};
use crate::tokens::messages::{ChatRequest, CountConfig};

impl From<HfError> for PyErr {
    fn from(err: HfError) -> PyErr {
        match err {
            HfError::Encode(_) => PyValueError::new_err(err.to_string()),
            other => TokenizerUnavailableError::new_err(other.to_string()),
        }
    }
}

/// Python `tokenizers` cannot take a `str` holding a lone surrogate (it raises `TypeError`), so
/// neither can LiteLLM count one with a Hugging Face tokenizer. Reading Python text repairs such
/// a string as tiktoken does (`super::str_utf8`); a Hugging Face count refuses it instead.
fn refuse_repaired<T>(read: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    let mark = super::repairs_mark();
    let value = read()?;
    if super::repairs_since(mark) {
        return Err(lone_surrogate());
    }
    Ok(value)
}

fn lone_surrogate() -> PyErr {
    PyTypeError::new_err(
        "the text holds a lone surrogate (half of a UTF-16 pair), which a Hugging Face \
         tokenizer cannot encode (Python tokenizers raises TypeError too); repair it first, e.g. \
         text.encode('utf-16', 'surrogatepass').decode('utf-16', 'replace')",
    )
}

/// One loaded Hugging Face `tokenizer.json`. Immutable and shared: safe to use from many threads
/// at once.
#[pyclass(module = "fast_litellm._native", name = "HfTokenizer", frozen)]
pub(crate) struct PyHfTokenizer {
    inner: Arc<HfTokenizer>,
}

impl PyHfTokenizer {
    /// `request` as LiteLLM counts it with this tokenizer, without the GIL; a large one on the
    /// counting pool when `parallel`.
    fn count_request(
        &self,
        py: Python<'_>,
        request: &ChatRequest,
        legacy_accounting: bool,
        parallel: bool,
    ) -> PyResult<usize> {
        let tokenizer = &self.inner;
        guard("message token counting", || {
            py.detach(|| {
                count_with(tokenizer, request, legacy_accounting, parallel).map_err(PyErr::from)
            })
        })
    }
}

/// LiteLLM's count of `request` with `tokenizer`: its message arithmetic, no chunks; the texts
/// of a large request counted on the pool when `parallel` (`ChatRequest::count_parallel`).
fn count_with(
    tokenizer: &HfTokenizer,
    request: &ChatRequest,
    legacy_accounting: bool,
    parallel: bool,
) -> Result<usize, HfError> {
    let config = CountConfig::without_chunks();
    // The first error of any text (the counts may run on several threads).
    let failed: OnceLock<HfError> = OnceLock::new();
    let count = |text: &str| {
        tokenizer.count(text).unwrap_or_else(|e| {
            let _ = failed.set(e);
            0
        })
    };
    let total = if parallel {
        request.count_parallel(legacy_accounting, count, &config)
    } else {
        request.count_as(legacy_accounting, count, &config)
    };
    match failed.into_inner() {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

#[pymethods]
impl PyHfTokenizer {
    /// Loads a `tokenizer.json` file; reading and parsing run without the GIL.
    #[staticmethod]
    fn load(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        let loaded = guard("tokenizer loading", || {
            py.detach(|| HfTokenizer::from_file(&path).map_err(PyErr::from))
        })?;
        Ok(Self {
            inner: Arc::new(loaded),
        })
    }

    /// The file the tokenizer was read from.
    #[getter]
    fn source(&self) -> &str {
        self.inner.source()
    }

    /// Whether counts take the fast path (the file's shape is one `hf_bpe` reproduces) rather
    /// than the tokenizer's full encode.
    #[getter]
    fn accelerated(&self) -> bool {
        self.inner.accelerated()
    }

    /// The number of tokens in `text`, as LiteLLM counts it (special tokens the tokenizer adds
    /// included).
    fn count(&self, py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<usize> {
        metrics::timed(metrics::COUNT_TOKENS, || {
            let text = refuse_repaired(|| text_arg(text, "count_tokens", "text"))?;
            let tokenizer = &self.inner;
            guard("token counting", || {
                let text: &str = &text;
                Ok(if text.len() < DETACH_MIN_BYTES {
                    tokenizer.count(text)?
                } else {
                    py.detach(|| tokenizer.count(text))?
                })
            })
        })
    }

    /// Counts of many texts, in order; the work is spread over all cores without the GIL.
    fn count_batch(&self, py: Python<'_>, texts: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
        metrics::timed(metrics::COUNT_TOKENS_BATCH, || {
            let tokenizer = &self.inner;
            let mark = super::repairs_mark();
            with_batch_texts(texts, |texts| {
                if super::repairs_since(mark) {
                    return Err(lone_surrogate());
                }
                guard("batch token counting", || {
                    Ok(py.detach(|| tokenizer.count_batch(texts))?)
                })
            })
        })
    }

    /// The number `litellm.token_counter` gives for a chat request counted with this tokenizer:
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
            let request = refuse_repaired(|| extract_chat(py, messages, tools, tool_choice))?;
            self.count_request(py, &request, legacy_accounting, false)
        })
    }

    /// `count_messages` of a request body read by `parse_chat_request`.
    #[pyo3(signature = (request, *, legacy_accounting=false))]
    fn count_parsed(
        &self,
        py: Python<'_>,
        request: &ParsedRequest,
        legacy_accounting: bool,
    ) -> PyResult<usize> {
        metrics::timed(metrics::COUNT_REQUEST_TOKENS, || {
            if request.repaired() {
                return Err(lone_surrogate());
            }
            self.count_request(py, request.request(), legacy_accounting, true)
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
        if request.repaired() {
            return Err(lone_surrogate());
        }
        let tokenizer = Arc::clone(&self.inner);
        let request = Arc::clone(request.request());
        let count = async move {
            tokio::task::spawn_blocking(move || {
                count_with(&tokenizer, &request, legacy_accounting, true).map_err(PyErr::from)
            })
            .await
            .map_err(|e| super::NativeError::new_err(format!("message token counting: {e}")))?
        };
        awaitable(py, "message token counting", count, |py, n: usize| {
            Ok(n.into_pyobject(py)?.into_any().unbind())
        })
    }

    /// The token ids of `text`.
    fn encode(&self, py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<Vec<u32>> {
        let text = refuse_repaired(|| text_arg(text, "encode", "text"))?;
        let tokenizer = &self.inner;
        guard("encoding", || {
            let text: &str = &text;
            Ok(py.detach(|| tokenizer.encode(text))?)
        })
    }

    fn __repr__(&self) -> String {
        format!("<HfTokenizer {}>", self.inner.source())
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyHfTokenizer>()?;
    Ok(())
}
