//! Python -> Rust conversion of a chat request (`messages`, `tools`, `tool_choice`) for
//! `crate::tokens::messages`.
//!
//! The conversion follows `python/fast_litellm/_fallback/messages.py` (the reference, which follows
//! LiteLLM) rule for rule, and raises the same errors with the same paths (`messages[2].content[0]`).
//! Dicts and strings are read directly; Python is called back only where LiteLLM itself runs Python
//! on the value, so the text is byte-for-byte what LiteLLM counts:
//! - `str(x)` for non-string tool-call arguments, text-part `text`, `thinking`, `tool_name`,
//!   dict fields of `tool_use`, the tool-choice name (one call per non-string value; strings are
//!   taken as they are);
//! - `model_dump(exclude_none=True)` for pydantic messages;
//! - `format_function_definitions(tools)` once per request when `tools` is non-empty (LiteLLM's
//!   renderer, ported in the fallback module);
//! - `search_results_text(value)` for a tool message's `search_results` list (uses `json.dumps`);
//! - `high_detail_image_tokens(url)` for `detail="high"` images (decodes data URLs; raises
//!   `UnsupportedContentError` for http(s) URLs, which LiteLLM would download).
//!
//! Strings holding lone surrogates are repaired as tiktoken repairs them before counting.

use std::fmt;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyMapping, PyString, PyTuple, PyType};

use crate::tokens::messages::{
    ChatMessage, ChatRequest, ContentPart, ImageTokens, MessageError, ToolCall, ToolChoice,
};

use super::{type_name, UnsupportedContentError};

const FALLBACK_MODULE: &str = "fast_litellm._fallback.messages";
const PDF_PREFIX: &str = "data:application/pdf;base64,";

static FORMAT_TOOLS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static SEARCH_RESULTS_TEXT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static HIGH_DETAIL_TOKENS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn fallback_fn<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyAny>>,
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let f = cell.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py.import(FALLBACK_MODULE)?.getattr(name)?.unbind())
    })?;
    Ok(f.bind(py).clone())
}

/// Map a core error onto the Python exception the fallback raises for the same input.
pub(crate) fn message_error_to_py(err: MessageError) -> PyErr {
    match err {
        MessageError::Type(m) => PyTypeError::new_err(m),
        MessageError::Value(m) => PyValueError::new_err(m),
        MessageError::Unsupported(m) => UnsupportedContentError::new_err(m),
    }
}

// ---- error paths --------------------------------------------------------------------------------

/// `messages[3].content[1].source` built on the stack, rendered only when an error is raised.
#[derive(Clone, Copy)]
enum Seg<'a> {
    Root(&'a str),
    Index(usize),
    Field(&'a str),
}

#[derive(Clone, Copy)]
struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    seg: Seg<'a>,
}

impl<'a> Path<'a> {
    fn root(name: &'a str) -> Self {
        Path {
            parent: None,
            seg: Seg::Root(name),
        }
    }
    fn index(&'a self, i: usize) -> Path<'a> {
        Path {
            parent: Some(self),
            seg: Seg::Index(i),
        }
    }
    fn field(&'a self, f: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            seg: Seg::Field(f),
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.parent {
            p.fmt(f)?;
        }
        match self.seg {
            Seg::Root(n) => f.write_str(n),
            Seg::Index(i) => write!(f, "[{i}]"),
            Seg::Field(n) => write!(f, ".{n}"),
        }
    }
}

fn value_err(msg: String) -> PyErr {
    PyValueError::new_err(msg)
}

fn type_err(msg: String) -> PyErr {
    PyTypeError::new_err(msg)
}

// ---- small Python helpers -----------------------------------------------------------------------

/// The UTF-8 text of a Python `str` (subclasses included); lone surrogates are handled as
/// tiktoken handles them (see `super::str_utf8`).
fn str_text(s: &Bound<'_, PyString>) -> PyResult<String> {
    Ok(super::str_utf8(s)?.into_owned())
}

/// Python's `str(obj)`, without a call for objects that already are strings.
fn py_str(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = obj.cast::<PyString>() {
        return str_text(s);
    }
    str_text(&obj.str()?)
}

fn is_mapping(obj: &Bound<'_, PyAny>) -> bool {
    obj.cast::<PyDict>().is_ok() || obj.cast::<PyMapping>().is_ok()
}

/// `key in obj` for a mapping.
fn has_key(obj: &Bound<'_, PyAny>, key: &Bound<'_, PyString>) -> PyResult<bool> {
    match obj.cast::<PyDict>() {
        Ok(d) => d.contains(key),
        Err(_) => obj.contains(key),
    }
}

/// `obj.get(key)` for a mapping (`None` when missing or None).
fn get<'py>(
    obj: &Bound<'py, PyAny>,
    key: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let value = match obj.cast::<PyDict>() {
        Ok(d) => d.get_item(key)?,
        Err(_) => Some(obj.call_method1(intern!(obj.py(), "get"), (key,))?),
    };
    Ok(value.filter(|v| !v.is_none()))
}

/// `obj.get(key, default)` rendered with `str()`, as LiteLLM's `str(c.get(key, default))`.
fn get_str_or(
    obj: &Bound<'_, PyAny>,
    key: &Bound<'_, PyString>,
    default: &str,
) -> PyResult<String> {
    let value = match obj.cast::<PyDict>() {
        Ok(d) => d.get_item(key)?,
        Err(_) => {
            if obj.contains(key)? {
                Some(obj.get_item(key)?)
            } else {
                None
            }
        }
    };
    match value {
        None => Ok(default.to_owned()),
        Some(v) => py_str(&v), // a present None is str(None) == "None", as in LiteLLM
    }
}

fn str_eq(obj: &Bound<'_, PyAny>, expected: &str) -> bool {
    obj.cast::<PyString>()
        .ok()
        .and_then(|s| s.to_str().ok())
        .is_some_and(|s| s == expected)
}

// ---- extraction ---------------------------------------------------------------------------------

/// Convert `messages`, `tools`, `tool_choice` into a [`ChatRequest`]. `legacy_accounting` is left
/// `false`; the caller sets it from the model (`_models.uses_legacy_message_accounting`).
pub(crate) fn extract_chat(
    py: Python<'_>,
    messages: &Bound<'_, PyAny>,
    tools: Option<&Bound<'_, PyAny>>,
    tool_choice: Option<&Bound<'_, PyAny>>,
) -> PyResult<ChatRequest> {
    let items: Vec<Bound<'_, PyAny>> = if let Ok(list) = messages.cast::<PyList>() {
        list.iter().collect()
    } else if let Ok(tuple) = messages.cast::<PyTuple>() {
        tuple.iter().collect()
    } else {
        return Err(type_err(format!(
            "messages must be a list of dicts, not {}",
            type_name(messages)
        )));
    };
    let tools = tools.filter(|t| !t.is_none());
    if let Some(t) = tools {
        if t.cast::<PyList>().is_err() && t.cast::<PyTuple>().is_err() {
            return Err(type_err(format!(
                "tools must be a list of tool definitions, not {}",
                type_name(t)
            )));
        }
    }

    let root = Path::root("messages");
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = root.index(i);
        let dict = as_message_dict(py, item, i)?;
        out.push(extract_message(py, &dict, &path)?);
    }

    let tools_text = match tools {
        Some(t) if t.is_truthy()? => Some(py_str(
            &fallback_fn(py, &FORMAT_TOOLS, "format_function_definitions")?.call1((t,))?,
        )?),
        _ => None,
    };
    let tool_choice = match tool_choice {
        None => ToolChoice::Unpriced,
        Some(tc) => extract_tool_choice(py, tc)?,
    };
    Ok(ChatRequest {
        messages: out,
        tools_text,
        tool_choice,
        legacy_accounting: false,
    })
}

fn as_message_dict<'py>(
    py: Python<'py>,
    item: &Bound<'py, PyAny>,
    i: usize,
) -> PyResult<Bound<'py, PyDict>> {
    if let Ok(d) = item.cast::<PyDict>() {
        return Ok(d.clone());
    }
    if let Ok(m) = item.cast::<PyMapping>() {
        let d = PyDict::new(py);
        for entry in m.items()?.iter() {
            let (k, v): (Bound<'py, PyAny>, Bound<'py, PyAny>) = entry.extract()?;
            d.set_item(k, v)?;
        }
        return Ok(d);
    }
    if item.cast::<PyType>().is_err() {
        if let Ok(model_dump) = item.getattr(intern!(py, "model_dump")) {
            if model_dump.is_callable() {
                let kwargs = PyDict::new(py);
                kwargs.set_item(intern!(py, "exclude_none"), true)?;
                let dumped = model_dump.call((), Some(&kwargs))?;
                if let Ok(d) = dumped.cast_into::<PyDict>() {
                    return Ok(d);
                }
            }
        }
    }
    Err(type_err(format!(
        "messages[{i}] must be a dict, not {}",
        type_name(item)
    )))
}

fn extract_message(
    py: Python<'_>,
    dict: &Bound<'_, PyDict>,
    path: &Path<'_>,
) -> PyResult<ChatMessage> {
    let mut m = ChatMessage::default();
    for (key, value) in dict.iter() {
        if value.is_none() {
            continue;
        }
        let key_str = key
            .cast::<PyString>()
            .ok()
            .and_then(|k| k.to_str().ok().map(str::to_owned));
        let key_ref = key_str.as_deref();
        match key_ref {
            Some("tool_calls") => {
                extract_tool_calls(py, &value, &path.field("tool_calls"), &mut m.tool_calls)?;
                continue;
            }
            Some("function_call") => {
                if !is_mapping(&value) {
                    return Err(value_err(format!(
                        "{}.function_call must be an object, not {}",
                        path,
                        type_name(&value)
                    )));
                }
                let arguments = get_str_or(&value, intern!(py, "arguments"), "")?;
                m.function_call = Some(ToolCall { arguments });
                continue;
            }
            _ => {}
        }
        if let Ok(s) = value.cast::<PyString>() {
            let text = str_text(s)?;
            if key_ref == Some("role") && text == "system" {
                m.is_system = true;
            }
            if key_ref == Some("name") {
                m.name = Some(text);
            } else {
                m.text_fields.push(text);
            }
        } else if let Ok(list) = value.cast::<PyList>() {
            match key_ref {
                Some("content") => {
                    let p = path.field("content");
                    extract_parts_list(py, list, &p, &mut m.content_parts)?;
                }
                Some("search_results") => {
                    let text = fallback_fn(py, &SEARCH_RESULTS_TEXT, "search_results_text")?
                        .call1((list,))?;
                    m.search_results = Some(py_str(&text)?);
                }
                _ => {}
            }
        }
    }
    Ok(m)
}

fn extract_tool_calls(
    py: Python<'_>,
    value: &Bound<'_, PyAny>,
    path: &Path<'_>,
    out: &mut Vec<ToolCall>,
) -> PyResult<()> {
    let list = value
        .cast::<PyList>()
        .map_err(|_| value_err(format!("{} must be a list, not {}", path, type_name(value))))?;
    let function_key = intern!(py, "function");
    for (j, call) in list.iter().enumerate() {
        let call_path = path.index(j);
        let is_dict = call.cast::<PyDict>().is_ok();
        let acceptable = is_dict
            || (!call.is_instance_of::<PyString>()
                && !call.is_instance_of::<pyo3::types::PyBytes>()
                && (is_mapping(&call)
                    || (call.hasattr(intern!(py, "__contains__"))?
                        && call.hasattr(intern!(py, "__getitem__"))?)));
        if !acceptable {
            return Err(type_err(format!(
                "{} must be an object with a 'function' key, not {}",
                call_path,
                type_name(&call)
            )));
        }
        let function = match call.cast::<PyDict>() {
            Ok(d) => d.get_item(function_key)?,
            Err(_) => {
                if call.contains(function_key)? {
                    Some(call.get_item(function_key)?)
                } else {
                    None
                }
            }
        };
        let Some(function) = function else {
            return Err(value_err(format!(
                "{call_path} must contain a 'function' key"
            )));
        };
        let arguments = if let Ok(fd) = function.cast::<PyDict>() {
            match fd.get_item(intern!(py, "arguments"))? {
                None => String::new(),
                Some(a) => py_str(&a)?,
            }
        } else {
            let getter = function
                .getattr(intern!(py, "get"))
                .ok()
                .filter(|g| g.is_callable());
            let Some(getter) = getter else {
                return Err(type_err(format!(
                    "{}.function must be an object, not {}",
                    call_path,
                    type_name(&function)
                )));
            };
            py_str(&getter.call1((intern!(py, "arguments"), intern!(py, "")))?)?
        };
        out.push(ToolCall { arguments });
    }
    Ok(())
}

fn extract_parts_list(
    py: Python<'_>,
    list: &Bound<'_, PyList>,
    path: &Path<'_>,
    out: &mut Vec<ContentPart>,
) -> PyResult<()> {
    for (j, part) in list.iter().enumerate() {
        extract_part(py, &part, &path.index(j), out)?;
    }
    Ok(())
}

fn extract_parts_seq(
    py: Python<'_>,
    seq: &Bound<'_, PyAny>,
    path: &Path<'_>,
    out: &mut Vec<ContentPart>,
) -> PyResult<()> {
    if let Ok(list) = seq.cast::<PyList>() {
        return extract_parts_list(py, list, path, out);
    }
    let tuple = seq.cast::<PyTuple>()?;
    for (j, part) in tuple.iter().enumerate() {
        extract_part(py, &part, &path.index(j), out)?;
    }
    Ok(())
}

fn extract_part(
    py: Python<'_>,
    part: &Bound<'_, PyAny>,
    path: &Path<'_>,
    out: &mut Vec<ContentPart>,
) -> PyResult<()> {
    if let Ok(s) = part.cast::<PyString>() {
        out.push(ContentPart::Text(str_text(s)?));
        return Ok(());
    }
    if !is_mapping(part) {
        return Err(value_err(format!(
            "{} must be a str or an object with a 'type' key, not {}",
            path,
            type_name(part)
        )));
    }
    let type_key = intern!(py, "type");
    if !has_key(part, type_key)? {
        return Err(value_err(format!("{path} is missing the 'type' key")));
    }
    let kind_obj = part.get_item(type_key)?;
    let kind = kind_obj
        .cast::<PyString>()
        .ok()
        .and_then(|k| k.to_str().ok().map(str::to_owned));
    match kind.as_deref() {
        Some("text") => out.push(ContentPart::Text(get_str_or(
            part,
            intern!(py, "text"),
            "",
        )?)),
        Some("image_url") => {
            let value = get(part, intern!(py, "image_url"))?;
            out.push(ContentPart::Image(extract_image_url(
                py,
                value.as_ref(),
                &path.field("image_url"),
            )?));
        }
        Some("image") => {
            let source_key = intern!(py, "source");
            if !has_key(part, source_key)? {
                return Err(value_err(format!("{path} is missing the 'source' key")));
            }
            source_data(
                py,
                &part.get_item(source_key)?,
                &path.field("source"),
                false,
            )?;
            out.push(ContentPart::Image(ImageTokens::Base));
        }
        Some("document") => extract_document(py, part, path, out)?,
        Some("file") => {
            let file = get(part, intern!(py, "file"))?;
            if let Some(file) = file.filter(is_mapping) {
                let p = path.field("file");
                if let Some(name) = get(&file, intern!(py, "filename"))? {
                    if let Ok(s) = name.cast::<PyString>() {
                        out.push(ContentPart::Text(str_text(s)?));
                    }
                }
                if let Some(data) = get(&file, intern!(py, "file_data"))? {
                    if let Ok(s) = data.cast::<PyString>() {
                        let text = str_text(s)?;
                        if !text.is_empty() {
                            out.push(ContentPart::Image(opaque_document(
                                &text,
                                &p.field("file_data"),
                            )?));
                        }
                    }
                }
            }
        }
        Some(k @ ("tool_use" | "tool_result")) => {
            let fields: &[&str] = if k == "tool_use" {
                &["name", "input", "caller"]
            } else {
                // litellm up to 1.106 rejected a tool_result without `tool_use_id`; later
                // versions count its content like any other, and so do we.
                &["content"]
            };
            for field in fields {
                let Some(value) = get(part, &PyString::new(py, field))? else {
                    continue;
                };
                if let Ok(s) = value.cast::<PyString>() {
                    out.push(ContentPart::Text(str_text(s)?));
                } else if let Ok(list) = value.cast::<PyList>() {
                    let mut inner = Vec::new();
                    extract_parts_list(py, list, &path.field(field), &mut inner)?;
                    out.push(ContentPart::Parts(inner));
                } else if value.cast::<PyDict>().is_ok() {
                    out.push(ContentPart::Text(str_text(&value.str()?)?));
                }
            }
        }
        Some("thinking" | "redacted_thinking") => {
            out.push(ContentPart::Text(get_str_or(
                part,
                intern!(py, "thinking"),
                "",
            )?));
        }
        Some("tool_reference") => {
            if let Some(name) = get(part, intern!(py, "tool_name"))? {
                if name.is_truthy()? {
                    out.push(ContentPart::Text(py_str(&name)?));
                }
            }
        }
        _ => {
            let shown = kind_obj.repr().map(|r| r.to_string()).unwrap_or_default();
            return Err(value_err(format!(
                "{path}: invalid content part type {shown}; expected text, image_url, image, document, file, \
                 tool_use, tool_result, thinking, redacted_thinking or tool_reference"
            )));
        }
    }
    Ok(())
}

fn extract_image_url(
    py: Python<'_>,
    value: Option<&Bound<'_, PyAny>>,
    path: &Path<'_>,
) -> PyResult<ImageTokens> {
    let Some(value) = value else {
        return Err(value_err(format!(
            "{path} must be a str or a dict with 'url', not NoneType"
        )));
    };
    if let Ok(d) = value.cast::<PyDict>() {
        let high = match d.get_item(intern!(py, "detail"))? {
            None => false,
            Some(detail) if str_eq(&detail, "low") || str_eq(&detail, "auto") => false,
            Some(detail) if str_eq(&detail, "high") => true,
            Some(detail) => {
                let shown = detail.repr().map(|r| r.to_string()).unwrap_or_default();
                return Err(value_err(format!(
                    "{path}.detail must be 'low', 'high' or 'auto', not {shown}"
                )));
            }
        };
        let url = d.get_item(intern!(py, "url"))?;
        let url = match url {
            Some(u) if u.is_truthy()? => u,
            _ => return Err(value_err(format!("{path} is missing 'url'"))),
        };
        if high {
            let tokens = fallback_fn(py, &HIGH_DETAIL_TOKENS, "high_detail_image_tokens")?
                .call1((url,))
                .map_err(|e| {
                    if e.is_instance_of::<UnsupportedContentError>(py) {
                        e
                    } else {
                        value_err(format!("{path}: {}", e.value(py)))
                    }
                })?;
            return Ok(ImageTokens::Fixed(tokens.extract()?));
        }
        return Ok(ImageTokens::Base);
    }
    if let Ok(s) = value.cast::<PyString>() {
        // Python's str.strip() whitespace: Unicode White_Space plus the separators U+001C..U+001F.
        if s.to_cow()?
            .trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
            .is_empty()
        {
            return Err(value_err(format!("{path} must not be an empty string")));
        }
        return Ok(ImageTokens::Base);
    }
    Err(value_err(format!(
        "{} must be a str or a dict with 'url', not {}",
        path,
        type_name(value)
    )))
}

/// LiteLLM's `_anthropic_image_source_data`, reduced to what matters for pricing: the
/// data URL / URL text when it could be a PDF, else `None`.
fn source_data(
    py: Python<'_>,
    source: &Bound<'_, PyAny>,
    path: &Path<'_>,
    for_document: bool,
) -> PyResult<Option<String>> {
    if !is_mapping(source) {
        return Err(value_err(format!(
            "{} must be an object with a 'type' key, not {}",
            path,
            type_name(source)
        )));
    }
    let type_key = intern!(py, "type");
    if !has_key(source, type_key)? {
        return Err(value_err(format!("{path} is missing the 'type' key")));
    }
    let kind = source.get_item(type_key)?;
    if str_eq(&kind, "base64") {
        let Some(data) =
            get(source, intern!(py, "data"))?.filter(|d| d.is_truthy().unwrap_or(true))
        else {
            return Ok(Some(String::new()));
        };
        let media = match get(source, intern!(py, "media_type"))? {
            Some(m) if m.is_truthy()? => py_str(&m)?,
            _ => "image/png".to_owned(),
        };
        let mut head = format!("data:{media};base64,");
        if head.len() < PDF_PREFIX.len() {
            // Only the start of the data can matter for the PDF prefix test.
            let data = py_str(&data)?;
            head.extend(data.chars().take(PDF_PREFIX.len()));
        }
        return Ok(Some(head));
    }
    if str_eq(&kind, "url") {
        return match get(source, intern!(py, "url"))? {
            Some(u) if u.is_truthy()? => match u.cast::<PyString>() {
                Ok(s) => Ok(Some(str_text(s)?)),
                // LiteLLM fails on `url.startswith(...)` later, for documents only.
                Err(_) if !for_document => Ok(None),
                Err(_) => Err(value_err(format!(
                    "{}.url must be a str, not {}",
                    path,
                    type_name(&u)
                ))),
            },
            _ => Ok(Some(String::new())),
        };
    }
    Ok(Some(String::new()))
}

fn opaque_document(data_url: &str, path: &Path<'_>) -> PyResult<ImageTokens> {
    if data_url.starts_with(PDF_PREFIX) {
        return Err(UnsupportedContentError::new_err(format!(
            "{path}: litellm prices inline PDF documents page by page with pypdf; count with litellm"
        )));
    }
    Ok(ImageTokens::Base)
}

fn extract_document(
    py: Python<'_>,
    part: &Bound<'_, PyAny>,
    path: &Path<'_>,
    out: &mut Vec<ContentPart>,
) -> PyResult<()> {
    let source_key = intern!(py, "source");
    if !has_key(part, source_key)? {
        return Err(value_err(format!("{path} is missing the 'source' key")));
    }
    let source = part.get_item(source_key)?;
    for key in ["title", "context"] {
        if let Some(v) = get(part, &PyString::new(py, key))? {
            if v.is_truthy()? {
                let s = v.cast::<PyString>().map_err(|_| {
                    value_err(format!(
                        "{}.{} must be a str, not {}",
                        path,
                        key,
                        type_name(&v)
                    ))
                })?;
                out.push(ContentPart::Text(str_text(s)?));
            }
        }
    }
    let source_path = path.field("source");
    if !is_mapping(&source) {
        return Err(value_err(format!(
            "{} must be an object, not {}",
            source_path,
            type_name(&source)
        )));
    }
    let type_key = intern!(py, "type");
    if !has_key(&source, type_key)? {
        return Err(value_err(format!(
            "{source_path} is missing the 'type' key"
        )));
    }
    let kind = source.get_item(type_key)?;
    if str_eq(&kind, "text") {
        let data_key = intern!(py, "data");
        if !has_key(&source, data_key)? {
            return Err(value_err(format!(
                "{source_path} is missing the 'data' key"
            )));
        }
        let data = source.get_item(data_key)?;
        let s = data.cast::<PyString>().map_err(|_| {
            value_err(format!(
                "{}.data must be a str, not {}",
                source_path,
                type_name(&data)
            ))
        })?;
        out.push(ContentPart::Text(str_text(s)?));
        return Ok(());
    }
    if str_eq(&kind, "content") {
        let content_key = intern!(py, "content");
        if !has_key(&source, content_key)? {
            return Err(value_err(format!(
                "{source_path} is missing the 'content' key"
            )));
        }
        let content = source.get_item(content_key)?;
        if let Ok(s) = content.cast::<PyString>() {
            out.push(ContentPart::Text(str_text(s)?));
            return Ok(());
        }
        if content.cast::<PyList>().is_err() && content.cast::<PyTuple>().is_err() {
            return Err(value_err(format!(
                "{}.content must be a str or a list, not {}",
                source_path,
                type_name(&content)
            )));
        }
        let mut inner = Vec::new();
        extract_parts_seq(py, &content, &source_path.field("content"), &mut inner)?;
        out.push(ContentPart::Parts(inner));
        return Ok(());
    }
    let data_url = source_data(py, &source, &source_path, true)?.unwrap_or_default();
    out.push(ContentPart::Image(opaque_document(
        &data_url,
        &source_path,
    )?));
    Ok(())
}

fn extract_tool_choice(py: Python<'_>, tc: &Bound<'_, PyAny>) -> PyResult<ToolChoice> {
    if tc.is_none() {
        return Ok(ToolChoice::Unpriced);
    }
    if let Ok(s) = tc.cast::<PyString>() {
        return Ok(if s.to_cow()? == "none" {
            ToolChoice::NoTool
        } else {
            ToolChoice::Unpriced
        });
    }
    if let Ok(d) = tc.cast::<PyDict>() {
        let invalid = || {
            value_err(
                "tool_choice must be 'none', 'auto', 'required' or {'type': 'function', 'function': {'name': ...}}"
                    .to_owned(),
            )
        };
        let function = d.get_item(intern!(py, "function"))?.ok_or_else(invalid)?;
        if !is_mapping(&function) {
            return Err(invalid());
        }
        let name_key = intern!(py, "name");
        if !has_key(&function, name_key)? {
            return Err(invalid());
        }
        let name = py_str(&function.get_item(name_key)?)?;
        return Ok(ToolChoice::Function { name });
    }
    Ok(ToolChoice::Unpriced)
}
