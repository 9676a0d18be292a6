//! `parse_chat_request`: an OpenAI chat-completions request body (JSON bytes or str) read into a
//! [`ChatRequest`] for `count_request_tokens`, the JSON parsed without the GIL.
//!
//! The answer must equal `count_message_tokens(json.loads(body)["messages"], ...)`, so the body
//! is read as `json.loads` reads it and the messages as `extract_chat` reads Python objects:
//!
//! - A body whose messages are all made only of what chat requests are made of (string fields,
//!   `null`s, content lists of text parts or strings, tool calls and function calls with string
//!   `arguments`, values LiteLLM skips) is read in one pass straight into the counter's messages
//!   (`crate::tokens::request`), without the GIL: no JSON value and no Python object is made for
//!   their text.
//! - Any other body is read as JSON values: its plain messages are converted from them as above,
//!   the others (images, documents, tool blocks, search results, non-string arguments, ...) are
//!   turned into the Python objects `json.loads` would give and read by `extract_chat`, so every
//!   rule and error message is the one `count_message_tokens` has (an empty dict holds the place
//!   of each plain message, so an error names the same index).
//! - `tools` / `tool_choice` are always read by `extract_chat` from the Python objects
//!   `json.loads` would give.
//! - A body serde_json refuses or might read differently from `json.loads` (`NaN`, lone
//!   surrogates, a byte-order mark, integers beyond 64 bits, bytes that are not UTF-8) is handed
//!   to Python's `json.loads` itself, whose error, if any, is raised unchanged.
//!
//! serde_json rather than sonic-rs: it is already linked (the `tokenizers` crate needs it), and
//! the parse is a small part of a count. Measured on the 50 KB body of the benchmark (release
//! build, one core): `parse_chat_request` ~47 µs through a `Value` tree, ~35 µs with the
//! one-pass reader, of which most is serde_json's string scanning and unescaping (the body holds
//! an escape every ~25 bytes); counting it takes ~300 µs on one thread.

use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use pyo3::IntoPyObjectExt;
use serde_json::Value;

use super::messages::extract_chat;
use super::{guard, type_name, UnsupportedContentError};
use crate::tokens::messages::{ChatMessage, ChatRequest, PARALLEL_MIN_BYTES};
use crate::tokens::request::{plain_message, read_plain_body, PlainBody};
use crate::tokens::wake_pool;

/// A request body read by `parse_chat_request`, ready to be counted by a tokenizer
/// (`Encoding.count_parsed`, `HfTokenizer.count_parsed`).
#[pyclass(module = "fast_litellm._native", name = "ParsedRequest", frozen)]
pub(crate) struct ParsedRequest {
    request: Arc<ChatRequest>,
    model: Option<String>,
    /// The request holds content only litellm prices (`count_message_tokens` would raise
    /// `UnsupportedContentError` and hand it over): the caller must count the Python objects.
    needs_litellm: bool,
    has_tools: bool,
    /// A string of the body held a lone surrogate (read as tiktoken reads it, which a Hugging
    /// Face tokenizer must refuse).
    repaired: bool,
}

impl ParsedRequest {
    pub(crate) fn request(&self) -> &Arc<ChatRequest> {
        &self.request
    }

    pub(crate) fn repaired(&self) -> bool {
        self.repaired
    }
}

#[pymethods]
impl ParsedRequest {
    /// The body's `model` when it is a string.
    #[getter]
    fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// Whether the body holds content `count_message_tokens` hands to litellm.
    #[getter]
    fn needs_litellm(&self) -> bool {
        self.needs_litellm
    }

    /// Whether the body has `tools` or `tool_choice` (not null).
    #[getter]
    fn has_tools(&self) -> bool {
        self.has_tools
    }

    fn __repr__(&self) -> String {
        format!(
            "<ParsedRequest model={:?} messages={}>",
            self.model,
            self.request.messages.len()
        )
    }
}

/// A JSON value `serde_json` may have read differently from `json.loads` (see module notes).
struct Ambiguous;

/// The Python object `json.loads` gives for `value`.
fn to_py<'py>(
    py: Python<'py>,
    value: &Value,
) -> Result<Bound<'py, PyAny>, Result<Ambiguous, PyErr>> {
    let object = match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => pyo3::types::PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_bound_py_any(py).map_err(Err)?
            } else if let Some(u) = n.as_u64() {
                u.into_bound_py_any(py).map_err(Err)?
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                // An integer literal beyond 64 bits is read as a float by serde_json and as an
                // int by `json.loads`; from the float alone the two cannot be told apart. So is
                // `-0`: a float -0.0 to serde_json, the int 0 to `json.loads` (`-0.0` is -0.0 to
                // both).
                if !f.is_finite()
                    || (f.fract() == 0.0 && f.abs() >= 9.0e15)
                    || (f == 0.0 && f.is_sign_negative())
                {
                    return Err(Ok(Ambiguous));
                }
                pyo3::types::PyFloat::new(py, f).into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?).map_err(Err)?;
            }
            list.into_any()
        }
        Value::Object(fields) => {
            let dict = PyDict::new(py);
            for (key, item) in fields {
                dict.set_item(key, to_py(py, item)?).map_err(Err)?;
            }
            dict.into_any()
        }
    };
    Ok(object)
}

/// What the body says before the messages are read.
struct Body {
    model: Option<String>,
    messages: Vec<Value>,
    tools: Value,
    tool_choice: Value,
}

fn request_fields(body: Value) -> PyResult<Body> {
    let Value::Object(mut fields) = body else {
        return Err(PyValueError::new_err(
            "the request body must be a JSON object (an OpenAI chat-completions request)",
        ));
    };
    let messages = match fields.swap_remove("messages") {
        Some(Value::Array(messages)) => messages,
        None | Some(Value::Null) => {
            return Err(PyValueError::new_err(
                "the request body has no 'messages' list",
            ))
        }
        Some(other) => {
            return Err(PyValueError::new_err(format!(
                "the request body's 'messages' must be a list, not {}",
                json_type(&other)
            )))
        }
    };
    let model = match fields.get("model") {
        Some(Value::String(model)) => Some(model.clone()),
        _ => None,
    };
    Ok(Body {
        model,
        messages,
        tools: fields.swap_remove("tools").unwrap_or(Value::Null),
        tool_choice: fields.swap_remove("tool_choice").unwrap_or(Value::Null),
    })
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The fields of a body `json.loads` read (the Python path for bodies serde_json may misread).
fn request_fields_py<'py>(
    body: &Bound<'py, PyAny>,
) -> PyResult<(Option<String>, [Bound<'py, PyAny>; 3])> {
    let py = body.py();
    let parsed = py.import("json")?.call_method1("loads", (body,))?;
    let Ok(fields) = parsed.cast::<PyDict>() else {
        return Err(PyValueError::new_err(
            "the request body must be a JSON object (an OpenAI chat-completions request)",
        ));
    };
    let messages = match fields.get_item("messages")? {
        Some(m) if m.cast::<PyList>().is_ok() => m,
        Some(m) if !m.is_none() => {
            return Err(PyValueError::new_err(format!(
                "the request body's 'messages' must be a list, not {}",
                py_json_type(&m)
            )))
        }
        _ => {
            return Err(PyValueError::new_err(
                "the request body has no 'messages' list",
            ))
        }
    };
    let model = match fields.get_item("model")? {
        Some(m) => m
            .cast::<PyString>()
            .ok()
            .map(|s| s.to_string_lossy().into_owned()),
        None => None,
    };
    let get = |key: &str| -> PyResult<Bound<'py, PyAny>> {
        Ok(fields
            .get_item(key)?
            .unwrap_or_else(|| py.None().into_bound(py)))
    };
    Ok((model, [messages, get("tools")?, get("tool_choice")?]))
}

fn py_json_type(value: &Bound<'_, PyAny>) -> &'static str {
    if value.is_instance_of::<pyo3::types::PyBool>() {
        "a boolean"
    } else if value.is_instance_of::<PyString>() {
        "a string"
    } else if value.is_instance_of::<PyDict>() {
        "an object"
    } else {
        "a number"
    }
}

/// `extract_chat` over Python objects; `UnsupportedContentError` becomes `needs_litellm`.
fn extract_objects(
    py: Python<'_>,
    model: Option<String>,
    [messages, tools, tool_choice]: [Bound<'_, PyAny>; 3],
) -> PyResult<ParsedRequest> {
    let has_tools = !tools.is_none() || !tool_choice.is_none();
    let tools = (!tools.is_none()).then_some(&tools);
    let tool_choice = (!tool_choice.is_none()).then_some(&tool_choice);
    match extract_chat(py, &messages, tools, tool_choice) {
        Ok(request) => Ok(ParsedRequest {
            request: Arc::new(request),
            model,
            needs_litellm: false,
            has_tools,
            repaired: false,
        }),
        Err(e) if e.is_instance_of::<UnsupportedContentError>(py) => Ok(ParsedRequest {
            request: Arc::default(),
            model,
            needs_litellm: true,
            has_tools,
            repaired: false,
        }),
        Err(e) => Err(e),
    }
}

/// Reads a chat-completions request body (`bytes` or `str` of JSON). Raises `ValueError` for
/// invalid JSON, a body that is not an object, or one without a `messages` list, and the
/// `TypeError`/`ValueError` `count_message_tokens` raises for messages or tools it refuses.
#[pyfunction]
pub(crate) fn parse_chat_request(
    py: Python<'_>,
    body: &Bound<'_, PyAny>,
) -> PyResult<ParsedRequest> {
    let mark = super::repairs_mark();
    let mut parsed = read_chat_request(py, body)?;
    parsed.repaired = super::repairs_since(mark);
    Ok(parsed)
}

fn read_chat_request(py: Python<'_>, body: &Bound<'_, PyAny>) -> PyResult<ParsedRequest> {
    let data: &[u8] = if let Ok(b) = body.cast::<PyBytes>() {
        b.as_bytes()
    } else if let Ok(s) = body.cast::<PyString>() {
        match s.to_str() {
            Ok(s) => s.as_bytes(),
            // Lone surrogates: only `json.loads` can read this.
            Err(_) => &[],
        }
    } else {
        return Err(PyTypeError::new_err(format!(
            "count_request_tokens() argument 'body' must be bytes or str, not {}",
            type_name(body)
        )));
    };
    // A plain body (the common one) is read in one pass, without the GIL; any other is read as
    // a tree of JSON values below. Bytes that are not UTF-8: `json.loads` raises its own error
    // (serde_json would not read them either).
    if data.len() >= PARALLEL_MIN_BYTES {
        // Counted on the pool if its text alone is that large: its threads wake while the body
        // is read.
        wake_pool();
    }
    let plain = guard("request parsing", || {
        Ok(py.detach(|| read_plain_body(std::str::from_utf8(data).ok()?)))
    })?;
    if let Some(plain) = plain {
        let PlainBody {
            model,
            messages,
            tools,
            tool_choice,
        } = plain;
        let converted = (|| -> Result<[Bound<'_, PyAny>; 3], Result<Ambiguous, PyErr>> {
            // The messages are already read: `extract_chat` sees an empty list.
            Ok([
                PyList::empty(py).into_any(),
                to_py(py, &tools)?,
                to_py(py, &tool_choice)?,
            ])
        })();
        let fields = match fields_or_reread(py, body, converted)? {
            Ok(fields) => fields,
            Err(reread) => return Ok(reread),
        };
        let mut parsed = extract_objects(py, model, fields)?;
        if !parsed.needs_litellm {
            if let Some(request) = Arc::get_mut(&mut parsed.request) {
                request.messages = messages;
            }
        }
        return Ok(parsed);
    }
    // Parsed and the plain messages converted without the GIL; `None`: let `json.loads` read it.
    let parsed = guard("request parsing", || {
        Ok(py.detach(|| {
            let value: Value = serde_json::from_slice(data).ok()?;
            Some(request_fields(value).map(|body| {
                let plain: Vec<Option<ChatMessage>> =
                    body.messages.iter().map(plain_message).collect();
                (body, plain)
            }))
        }))
    })?;
    let Some(parsed) = parsed else {
        let (model, fields) = request_fields_py(body)?;
        return extract_objects(py, model, fields);
    };
    let (body_fields, mut plain) = parsed?;
    let Body {
        model,
        messages,
        tools,
        tool_choice,
    } = body_fields;
    let converted = (|| -> Result<[Bound<'_, PyAny>; 3], Result<Ambiguous, PyErr>> {
        // Only the messages not read already become Python objects; an empty dict holds the
        // place of each other one (it counts for nothing and raises nothing), so that
        // `extract_chat` names the same index in its errors.
        let list = PyList::empty(py);
        for (message, plain) in messages.iter().zip(&plain) {
            let item = match plain {
                Some(_) => PyDict::new(py).into_any(),
                None => to_py(py, message)?,
            };
            list.append(item).map_err(Err)?;
        }
        Ok([
            list.into_any(),
            to_py(py, &tools)?,
            to_py(py, &tool_choice)?,
        ])
    })();
    let fields = match fields_or_reread(py, body, converted)? {
        Ok(fields) => fields,
        Err(reread) => return Ok(reread),
    };
    let mut parsed = extract_objects(py, model, fields)?;
    if !parsed.needs_litellm {
        if let Some(request) = Arc::get_mut(&mut parsed.request) {
            for (message, plain) in request.messages.iter_mut().zip(&mut plain) {
                if let Some(plain) = plain.take() {
                    *message = plain;
                }
            }
        }
    }
    Ok(parsed)
}

/// The fields converted to Python objects (`Ok`); where the conversion met a value whose Python
/// form it cannot tell (`Ambiguous`), the request of the body read again by `json.loads` (`Err`),
/// which the caller returns as it is.
fn fields_or_reread<'py>(
    py: Python<'py>,
    body: &Bound<'py, PyAny>,
    converted: Result<[Bound<'py, PyAny>; 3], Result<Ambiguous, PyErr>>,
) -> PyResult<Result<[Bound<'py, PyAny>; 3], ParsedRequest>> {
    match converted {
        Ok(fields) => Ok(Ok(fields)),
        Err(Ok(Ambiguous)) => {
            let (model, fields) = request_fields_py(body)?;
            Ok(Err(extract_objects(py, model, fields)?))
        }
        Err(Err(e)) => Err(e),
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ParsedRequest>()?;
    m.add_function(wrap_pyfunction!(parse_chat_request, m)?)?;
    Ok(())
}
