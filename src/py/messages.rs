//! Python -> Rust conversion of a chat request (`messages`, `tools`, `tool_choice`) for
//! `crate::tokens::messages`.
//!
//! The conversion follows LiteLLM's `token_counter` rule for rule (the pure-Python twin is
//! `python/fast_litellm/_fallback/messages.py`) and raises the same errors with the same paths
//! (`messages[2].content[0]`). Dicts and strings are read directly; Python runs only where LiteLLM
//! itself runs Python on the value, so the text is byte-for-byte what LiteLLM counts: `str(x)` of
//! non-string values LiteLLM formats, `x or y` truthiness, `key in required` of tool schemas,
//! `int.__repr__` of JSON citations, and `model_dump(exclude_none=True)` for pydantic messages.
//! Rendering tools, search results and image prices are the core's (`crate::tokens::{tools,
//! search_results, image}`); nothing here calls back into the Python package.
//!
//! Nesting is bounded while reading, so no request can exhaust the native stack: a tool schema
//! or JSON citations deeper than LiteLLM can render raise `RecursionError` as LiteLLM does, and
//! content lists nested deeper than [`MAX_CONTENT_NESTING`] raise `ValueError` (LiteLLM wraps its
//! own `RecursionError` there into a `ValueError`).
//!
//! Strings holding lone surrogates are repaired as tiktoken repairs them before counting.

use std::fmt;

use pyo3::exceptions::{PyRecursionError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple, PyType,
};

use crate::tokens::image::{
    auto_detail_tokens, high_detail_url_tokens, Base64Padding, BASE_IMAGE_TOKENS,
};
use crate::tokens::messages::{
    ChatMessage, ChatRequest, ContentPart, MessageError, ToolCall, ToolChoice,
};
use crate::tokens::search_results::{
    json_float, search_results_text, JsonValue, SearchResult, MAX_JSON_NESTING,
};
use crate::tokens::tools::{
    render_function_definitions, FunctionDefinition, Member, SchemaType, MAX_SCHEMA_NESTING,
};

use super::{type_name, UnsupportedContentError};

const PDF_PREFIX: &str = "data:application/pdf;base64,";
/// Deepest nesting of content lists (`tool_result` content holding content...) read. LiteLLM
/// recurses two Python frames per level and fails, as a `ValueError`, at about 490 levels; the
/// bound sits well below so that the pure-Python twin (three frames per level) reaches it under
/// the default recursion limit and both paths fail alike.
const MAX_CONTENT_NESTING: usize = 200;

impl From<MessageError> for PyErr {
    fn from(err: MessageError) -> PyErr {
        match err.kind() {
            MessageError::ImageNeedsDownload => UnsupportedContentError::new_err(err.to_string()),
            _ => PyValueError::new_err(err.to_string()),
        }
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

/// An image URL's text. A URL is priced, never tokenized, so a lone surrogate in it (which
/// `json.loads` lets through) is not the repair of counted text: it becomes U+FFFD, which every
/// pricing rule treats as it treats the surrogate (one character that is not ASCII).
fn url_text<'a>(s: &'a Bound<'_, PyString>) -> std::borrow::Cow<'a, str> {
    s.to_string_lossy()
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
    let mark = super::paired_mark();
    let request = extract_chat_objects(py, messages, tools, tool_choice)?;
    if super::paired_since(mark) {
        return Err(super::FallbackNeeded::new_err(
            "a text holds a surrogate pair as two characters (see paired_since)",
        ));
    }
    Ok(request)
}

fn extract_chat_objects(
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
        Some(t) if t.is_truthy()? => Some(render_function_definitions(&extract_tools(py, t)?)),
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
    // LiteLLM takes a dict or a pydantic model (as its `model_dump`), and refuses other
    // mappings and objects that merely have a `model_dump`. A pydantic model's class imported
    // pydantic: without it loaded, nothing is one.
    let modules = py
        .import(intern!(py, "sys"))?
        .getattr(intern!(py, "modules"))?;
    if let Ok(pydantic) = modules.get_item(intern!(py, "pydantic")) {
        if let Ok(base_model) = pydantic.getattr(intern!(py, "BaseModel")) {
            if base_model.cast::<PyType>().is_ok() && item.is_instance(&base_model)? {
                let kwargs = PyDict::new(py);
                kwargs.set_item(intern!(py, "exclude_none"), true)?;
                let dumped = item
                    .getattr(intern!(py, "model_dump"))?
                    .call((), Some(&kwargs))?;
                if let Ok(d) = dumped.cast_into::<PyDict>() {
                    return Ok(d);
                }
            }
        }
    }
    Err(type_err(format!(
        "messages[{i}] must be a dict or a pydantic model, not {}",
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
                    extract_parts_list(py, list, &p, 0, &mut m.content_parts)?;
                }
                Some("search_results") => {
                    let results = extract_search_results(py, list, path)?;
                    let text = search_results_text(&results);
                    m.search_results = (!text.is_empty()).then_some(text);
                }
                _ => {}
            }
        } else if key_ref == Some("provider_specific_fields") && is_mapping(&value) {
            m.text_fields.extend(compaction_summaries(py, &value)?);
        }
    }
    Ok(m)
}

/// LiteLLM's `_compaction_summaries`: the non-empty string `content` of each mapping of type
/// "compaction" in a list `compaction_blocks`.
fn compaction_summaries(py: Python<'_>, fields: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let mut out = Vec::new();
    let Some(blocks) = get(fields, intern!(py, "compaction_blocks"))? else {
        return Ok(out);
    };
    let Ok(blocks) = blocks.cast::<PyList>() else {
        return Ok(out);
    };
    for block in blocks.iter().filter(is_mapping) {
        let is_compaction =
            get(&block, intern!(py, "type"))?.is_some_and(|kind| str_eq(&kind, "compaction"));
        if let Some(content) = get(&block, intern!(py, "content"))?.filter(|_| is_compaction) {
            if let Ok(content) = content.cast::<PyString>() {
                let text = str_text(content)?;
                if !text.is_empty() {
                    out.push(text);
                }
            }
        }
    }
    Ok(out)
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
    nesting: usize,
    out: &mut Vec<ContentPart>,
) -> PyResult<()> {
    extract_parts(py, list.iter(), path, nesting, out)
}

/// The parts of one content list; `nesting` counts the content lists around it.
fn extract_parts<'py>(
    py: Python<'py>,
    parts: impl Iterator<Item = Bound<'py, PyAny>>,
    path: &Path<'_>,
    nesting: usize,
    out: &mut Vec<ContentPart>,
) -> PyResult<()> {
    if nesting > MAX_CONTENT_NESTING {
        return Err(value_err(format!(
            "{path}: content lists nested more than {MAX_CONTENT_NESTING} levels deep"
        )));
    }
    for (j, part) in parts.enumerate() {
        extract_part(py, &part, &path.index(j), nesting, out)?;
    }
    Ok(())
}

/// `str(block.get(field) or "")` of a text-like block, counted when not empty.
fn push_block_text(
    part: &Bound<'_, PyAny>,
    field: &Bound<'_, PyString>,
    out: &mut Vec<ContentPart>,
) -> PyResult<()> {
    if let Some(value) = get_truthy(part, field)? {
        let text = py_str(&value)?;
        if !text.is_empty() {
            out.push(ContentPart::Text(text));
        }
    }
    Ok(())
}

/// Prices an image in auto mode (base64 checked as this Python checks it), without the GIL for a
/// large inline image.
fn auto_image(py: Python<'_>, url: &str) -> PyResult<usize> {
    const DETACH_MIN_BYTES: usize = 64 * 1024;
    let version = py.version_info();
    let padding = Base64Padding::for_python(version.major, version.minor);
    let priced = if url.len() < DETACH_MIN_BYTES {
        auto_detail_tokens(url, padding)
    } else {
        py.detach(|| auto_detail_tokens(url, padding))
    };
    Ok(priced?)
}

fn extract_part(
    py: Python<'_>,
    part: &Bound<'_, PyAny>,
    path: &Path<'_>,
    nesting: usize,
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
        Some("text") => push_block_text(part, intern!(py, "text"), out)?,
        Some("thinking" | "redacted_thinking") => {
            push_block_text(part, intern!(py, "thinking"), out)?
        }
        Some("compaction") => push_block_text(part, intern!(py, "content"), out)?,
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
            let data = source_data(py, &part.get_item(source_key)?, &path.field("source"))?;
            out.push(ContentPart::Image(auto_image(py, &data)?));
        }
        Some("document") => extract_document(py, part, path, nesting, out)?,
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
                                py,
                                &text,
                                &p.field("file_data"),
                            )?));
                        }
                    }
                }
            }
        }
        Some(k) if tool_block_fields(k).is_some() => {
            extract_tool_block(py, part, path, nesting, 0, out)?
        }
        Some("tool_reference") => push_block_text(part, intern!(py, "tool_name"), out)?,
        _ => {
            let shown = kind_obj.repr().map(|r| r.to_string()).unwrap_or_default();
            return Err(value_err(format!(
                "{path}: invalid content part type {shown}; expected text, image_url, image, document, file, \
                 tool_use, tool_result, search_result, thinking, redacted_thinking, compaction, \
                 tool_reference or an Anthropic server-tool block"
            )));
        }
    }
    Ok(())
}

/// Anthropic server-tool blocks and the fields LiteLLM counts in each
/// (`_ANTHROPIC_SERVER_TOOL_FIELDS`).
const SERVER_TOOL_FIELDS: [(&str, &[&str]); 23] = [
    ("server_tool_use", &["name", "input"]),
    ("mcp_tool_use", &["name", "input"]),
    ("web_search_tool_result", &["content"]),
    ("web_fetch_tool_result", &["content"]),
    ("code_execution_tool_result", &["content"]),
    ("bash_code_execution_tool_result", &["content"]),
    ("text_editor_code_execution_tool_result", &["content"]),
    ("mcp_tool_result", &["content"]),
    ("web_search_result", &["url", "title", "snippet"]),
    ("web_fetch_result", &["url", "content"]),
    ("code_execution_result", &["stdout", "stderr", "content"]),
    (
        "bash_code_execution_result",
        &["stdout", "stderr", "content"],
    ),
    ("text_editor_code_execution_view_result", &["content"]),
    ("text_editor_code_execution_str_replace_result", &["lines"]),
    ("text_editor_code_execution_create_result", &[]),
    ("encrypted_code_execution_result", &["stderr", "content"]),
    ("code_execution_output", &[]),
    ("bash_code_execution_output", &[]),
    ("web_search_tool_result_error", &["error_code"]),
    ("web_fetch_tool_result_error", &["error_code"]),
    ("code_execution_tool_result_error", &["error_code"]),
    ("bash_code_execution_tool_result_error", &["error_code"]),
    (
        "text_editor_code_execution_tool_result_error",
        &["error_code", "error_message"],
    ),
];
/// How deep the dict `content` of server-tool results may nest (LiteLLM's
/// `DEFAULT_MAX_RECURSE_DEPTH`).
const MAX_TOOL_CONTENT_DEPTH: usize = 100;

/// The fields LiteLLM counts in an Anthropic tool block, and whether it is a server-tool block
/// (whose dict `content` is itself a block).
fn tool_block_fields(kind: &str) -> Option<(&'static [&'static str], bool)> {
    match kind {
        // litellm up to 1.106 rejected a tool_result without `tool_use_id`; later versions count
        // its content like any other, and so do we.
        "tool_use" => Some((&["name", "input", "caller"], false)),
        "tool_result" => Some((&["content"], false)),
        "search_result" => Some((&["source", "title", "content"], false)),
        _ => SERVER_TOOL_FIELDS
            .iter()
            .find(|(name, _)| *name == kind)
            .map(|(_, fields)| (*fields, true)),
    }
}

/// LiteLLM's `_count_anthropic_content`: string fields count as text, list fields as content
/// lists, dict fields as their `str()`, except the dict `content` of a server-tool block, which
/// is a block of its own (`depth` counts those).
fn extract_tool_block(
    py: Python<'_>,
    block: &Bound<'_, PyAny>,
    path: &Path<'_>,
    nesting: usize,
    depth: usize,
    out: &mut Vec<ContentPart>,
) -> PyResult<()> {
    if depth >= MAX_TOOL_CONTENT_DEPTH {
        return Err(value_err(format!(
            "{path}: Anthropic tool content nesting exceeds the token counter limit"
        )));
    }
    let kind = get(block, intern!(py, "type"))?;
    let kind_text = kind
        .as_ref()
        .and_then(|k| k.cast::<PyString>().ok())
        .and_then(|k| k.to_str().ok().map(str::to_owned));
    if kind_text.as_deref() == Some("document") {
        return extract_document(py, block, path, nesting, out);
    }
    let Some((fields, server)) = kind_text.as_deref().and_then(tool_block_fields) else {
        let shown = match &kind {
            Some(k) => py_str(k)?,
            None => "None".to_owned(),
        };
        return Err(value_err(format!(
            "{path}: Unknown Anthropic content type: '{shown}'"
        )));
    };
    for field in fields {
        let Some(value) = get(block, &PyString::new(py, field))? else {
            continue;
        };
        let field_path = path.field(field);
        if let Ok(s) = value.cast::<PyString>() {
            out.push(ContentPart::Text(str_text(s)?));
        } else if let Ok(list) = value.cast::<PyList>() {
            let mut inner = Vec::new();
            extract_parts_list(py, list, &field_path, nesting + 1, &mut inner)?;
            out.push(ContentPart::Parts(inner));
        } else if value.cast::<PyDict>().is_ok() {
            if server && *field == "content" {
                extract_tool_block(py, &value, &field_path, nesting, depth + 1, out)?;
            } else {
                out.push(ContentPart::Text(str_text(&value.str()?)?));
            }
        }
    }
    Ok(())
}

/// LiteLLM's `_count_image_tokens`: a dict with `url` and `detail` (low, high, auto; default
/// auto), or a URL string (auto).
fn extract_image_url(
    py: Python<'_>,
    value: Option<&Bound<'_, PyAny>>,
    path: &Path<'_>,
) -> PyResult<usize> {
    let Some(value) = value else {
        return Err(value_err(format!(
            "{path}: Invalid image_url type: NoneType. Expected str or dict with 'url' field."
        )));
    };
    if let Ok(d) = value.cast::<PyDict>() {
        let detail = match d.get_item(intern!(py, "detail"))? {
            None => "auto",
            Some(detail) if str_eq(&detail, "low") => "low",
            Some(detail) if str_eq(&detail, "auto") => "auto",
            Some(detail) if str_eq(&detail, "high") => "high",
            Some(detail) => {
                return Err(value_err(format!(
                    "{path}.detail: Invalid detail value: {}. Expected 'low', 'high', or 'auto'.",
                    py_str(&detail)?
                )));
            }
        };
        let url = match d.get_item(intern!(py, "url"))? {
            Some(u) if u.is_truthy()? => u,
            _ => {
                return Err(value_err(format!(
                    "{path}: Missing required key 'url' in image_url dict."
                )))
            }
        };
        if detail == "low" {
            return Ok(BASE_IMAGE_TOKENS);
        }
        let url = url.cast::<PyString>().map_err(|_| {
            value_err(format!(
                "{}.url must be a str, not {}",
                path,
                type_name(&url)
            ))
        })?;
        let url = url_text(url);
        if detail == "high" {
            return high_detail_url_tokens(&url).map_err(|e| e.at(path.to_string()).into());
        }
        return auto_image(py, &url);
    }
    if let Ok(s) = value.cast::<PyString>() {
        let url = url_text(s);
        // Python's str.strip() whitespace: Unicode White_Space plus the separators U+001C..U+001F.
        if url
            .trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
            .is_empty()
        {
            return Err(value_err(format!(
                "{path}: Empty image_url string is not valid."
            )));
        }
        return auto_image(py, &url);
    }
    Err(value_err(format!(
        "{}: Invalid image_url type: {}. Expected str or dict with 'url' field.",
        path,
        type_name(value)
    )))
}

/// LiteLLM's `_anthropic_image_source_data`: the data URL of a base64 source, the URL of a url
/// source, else "".
fn source_data(py: Python<'_>, source: &Bound<'_, PyAny>, path: &Path<'_>) -> PyResult<String> {
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
        let Some(data) = get_truthy(source, intern!(py, "data"))? else {
            return Ok(String::new());
        };
        let media = match get_truthy(source, intern!(py, "media_type"))? {
            Some(m) => py_str(&m)?,
            None => "image/png".to_owned(),
        };
        return Ok(format!("data:{media};base64,{}", py_str(&data)?));
    }
    if str_eq(&kind, "url") {
        return match get_truthy(source, intern!(py, "url"))? {
            None => Ok(String::new()),
            Some(u) => match u.cast::<PyString>() {
                Ok(s) => str_text(s),
                Err(_) => Err(value_err(format!(
                    "{}.url must be a str, not {}",
                    path,
                    type_name(&u)
                ))),
            },
        };
    }
    Ok(String::new())
}

/// A document or file LiteLLM does not read as text: a PDF (read page by page with pypdf, which
/// we leave to litellm) or an image priced in auto mode.
fn opaque_document(py: Python<'_>, data_url: &str, path: &Path<'_>) -> PyResult<usize> {
    if data_url.starts_with(PDF_PREFIX) {
        return Err(UnsupportedContentError::new_err(format!(
            "{path}: litellm prices inline PDF documents page by page with pypdf; count with litellm"
        )));
    }
    auto_image(py, data_url)
}

fn extract_document(
    py: Python<'_>,
    part: &Bound<'_, PyAny>,
    path: &Path<'_>,
    nesting: usize,
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
        let content_path = source_path.field("content");
        let mut inner = Vec::new();
        if let Ok(list) = content.cast::<PyList>() {
            extract_parts_list(py, list, &content_path, nesting + 1, &mut inner)?;
        } else if let Ok(tuple) = content.cast::<PyTuple>() {
            extract_parts(py, tuple.iter(), &content_path, nesting + 1, &mut inner)?;
        } else {
            return Err(value_err(format!(
                "{}.content must be a str or a list, not {}",
                source_path,
                type_name(&content)
            )));
        }
        out.push(ContentPart::Parts(inner));
        return Ok(());
    }
    let data_url = source_data(py, &source, &source_path)?;
    out.push(ContentPart::Image(opaque_document(
        py,
        &data_url,
        &source_path,
    )?));
    Ok(())
}

/// LiteLLM's `_count_tool_choice`: "none" or `{"type": "none"}` adds 1; a mapping naming a
/// function by a `str` (`{"function": {"name": ...}}`, else `{"name": ...}`) adds 7 and the name;
/// anything else adds nothing.
fn extract_tool_choice(py: Python<'_>, tc: &Bound<'_, PyAny>) -> PyResult<ToolChoice> {
    if let Ok(s) = tc.cast::<PyString>() {
        return Ok(if s.to_cow()? == "none" {
            ToolChoice::NoTool
        } else {
            ToolChoice::Unpriced
        });
    }
    if !is_mapping(tc) {
        return Ok(ToolChoice::Unpriced);
    }
    let name_key = intern!(py, "name");
    let str_name = |obj: &Bound<'_, PyAny>| -> PyResult<Option<String>> {
        if !has_key(obj, name_key)? {
            return Ok(None);
        }
        match obj.get_item(name_key)?.cast::<PyString>() {
            Ok(name) => Ok(Some(str_text(name)?)),
            Err(_) => Ok(None),
        }
    };
    let function_key = intern!(py, "function");
    if has_key(tc, function_key)? {
        let function = tc.get_item(function_key)?;
        if is_mapping(&function) {
            if let Some(name) = str_name(&function)? {
                return Ok(ToolChoice::Function { name });
            }
        }
    }
    let type_key = intern!(py, "type");
    if has_key(tc, type_key)? && str_eq(&tc.get_item(type_key)?, "none") {
        return Ok(ToolChoice::NoTool);
    }
    Ok(match str_name(tc)? {
        Some(name) => ToolChoice::Function { name },
        None => ToolChoice::Unpriced,
    })
}

// ---- tool definitions ---------------------------------------------------------------------------

/// `mapping.get(key)` with LiteLLM's `a or b` in mind: `None` when missing or `None`.
fn get_truthy<'py>(
    obj: &Bound<'py, PyAny>,
    key: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    match get(obj, key)? {
        Some(v) if v.is_truthy()? => Ok(Some(v)),
        _ => Ok(None),
    }
}

fn too_deep(what: &str, limit: usize) -> PyErr {
    PyRecursionError::new_err(format!(
        "maximum recursion depth exceeded: {what} nested more than {limit} levels deep"
    ))
}

/// The functions LiteLLM renders for `tools` (`_function_definitions`): per mapping tool, its
/// OpenAI `function`, its Gemini `function_declarations`, or the tool itself (Anthropic style:
/// `input_schema`, else `parameters`, with the tool's unmapped keys merged into it).
fn extract_tools<'py>(
    py: Python<'py>,
    tools: &Bound<'py, PyAny>,
) -> PyResult<Vec<FunctionDefinition>> {
    let mut out = Vec::new();
    for tool in tools.try_iter()? {
        let tool = tool?;
        if !is_mapping(&tool) {
            continue;
        }
        if let Some(function) = get(&tool, intern!(py, "function"))?.filter(is_mapping) {
            push_function(py, &function, &mut out)?;
            continue;
        }
        let declarations = match get_truthy(&tool, intern!(py, "function_declarations"))? {
            Some(d) => Some(d),
            None => get(&tool, intern!(py, "functionDeclarations"))?,
        };
        if let Some(list) = declarations.as_ref().and_then(|d| d.cast::<PyList>().ok()) {
            for declaration in list.iter() {
                if is_mapping(&declaration) {
                    push_function(py, &declaration, &mut out)?;
                }
            }
            continue;
        }
        let Some(name) = get_truthy(&tool, intern!(py, "name"))? else {
            continue;
        };
        let input_schema = get(&tool, intern!(py, "input_schema"))?;
        let parameters = match input_schema
            .as_ref()
            .filter(|s| s.is_truthy().unwrap_or(false))
        {
            Some(schema) => Some(schema.clone()),
            None => get_truthy(&tool, intern!(py, "parameters"))?,
        }
        .filter(is_mapping);
        // With an `input_schema`, the tool's keys LiteLLM does not map onto the function (all but
        // name, input_schema, description, cache_control, strict, type, eager_input_streaming
        // and custom) are merged into the parameters and win over the schema's own
        // (`{**parameters, **unmapped}`); of those only `properties` and `required` are read.
        let lookup = |key: &Bound<'py, PyString>| -> PyResult<Option<Bound<'py, PyAny>>> {
            if input_schema.is_some() && has_key(&tool, key)? {
                return get(&tool, key);
            }
            match &parameters {
                Some(p) => get(p, key),
                None => Ok(None),
            }
        };
        let properties = lookup(intern!(py, "properties"))?;
        let required = lookup(intern!(py, "required"))?;
        out.push(FunctionDefinition {
            name: py_str(&name)?,
            description: get_truthy(&tool, intern!(py, "description"))?
                .map(|d| py_str(&d))
                .transpose()?,
            parameters: members(py, properties.as_ref(), required.as_ref(), 1)?,
        });
    }
    Ok(out)
}

/// `_format_single_function_definition` of one function mapping.
fn push_function(
    py: Python<'_>,
    function: &Bound<'_, PyAny>,
    out: &mut Vec<FunctionDefinition>,
) -> PyResult<()> {
    let Some(name) = get_truthy(function, intern!(py, "name"))? else {
        return Ok(());
    };
    let parameters = get_truthy(function, intern!(py, "parameters"))?.filter(is_mapping);
    let (properties, required) = match &parameters {
        Some(p) => (
            get(p, intern!(py, "properties"))?,
            get(p, intern!(py, "required"))?,
        ),
        None => (None, None),
    };
    out.push(FunctionDefinition {
        name: py_str(&name)?,
        description: get_truthy(function, intern!(py, "description"))?
            .map(|d| py_str(&d))
            .transpose()?,
        parameters: members(py, properties.as_ref(), required.as_ref(), 1)?,
    });
    Ok(())
}

/// `_format_object_parameters`: the members of a mapping `properties` (none when it is missing,
/// empty or not a mapping); a key is required when `required` is a list holding it. `calls` counts
/// LiteLLM's nested renderer calls so far (see `MAX_SCHEMA_NESTING`).
fn members(
    py: Python<'_>,
    properties: Option<&Bound<'_, PyAny>>,
    required: Option<&Bound<'_, PyAny>>,
    calls: usize,
) -> PyResult<Vec<Member>> {
    if calls > MAX_SCHEMA_NESTING {
        return Err(too_deep("a tool schema", MAX_SCHEMA_NESTING));
    }
    let Some(properties) = properties.filter(|p| is_mapping(p)) else {
        return Ok(Vec::new());
    };
    if !properties.is_truthy()? {
        return Ok(Vec::new());
    }
    let required = required.and_then(|r| r.cast::<PyList>().ok());
    let entries: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)> = match properties.cast::<PyDict>() {
        Ok(d) => d.iter().collect(),
        Err(_) => properties
            .call_method0(intern!(py, "items"))?
            .try_iter()?
            .map(|item| item?.extract())
            .collect::<PyResult<_>>()?,
    };
    let mut out = Vec::with_capacity(entries.len());
    for (key, schema) in entries {
        let description = if is_mapping(&schema) {
            get_truthy(&schema, intern!(py, "description"))?
                .map(|d| py_str(&d))
                .transpose()?
        } else {
            None
        };
        let is_required = match required {
            Some(list) if !list.is_empty() => list.contains(&key)?,
            _ => false,
        };
        out.push(Member {
            key: py_str(&key)?,
            description,
            required: is_required,
            schema: schema_type(py, &schema, calls + 1)?,
        });
    }
    Ok(out)
}

/// `_format_type` of one schema value.
fn schema_type(py: Python<'_>, schema: &Bound<'_, PyAny>, calls: usize) -> PyResult<SchemaType> {
    if calls > MAX_SCHEMA_NESTING {
        return Err(too_deep("a tool schema", MAX_SCHEMA_NESTING));
    }
    if !is_mapping(schema) {
        return Ok(SchemaType::Any);
    }
    let kind = get(schema, intern!(py, "type"))?;
    let kind = kind
        .as_ref()
        .and_then(|k| k.cast::<PyString>().ok())
        .and_then(|k| k.to_str().ok().map(str::to_owned));
    let enum_values = || -> PyResult<Option<Vec<String>>> {
        match get(schema, intern!(py, "enum"))? {
            Some(values) => match values.cast::<PyList>() {
                Ok(list) => Ok(Some(
                    list.iter().map(|v| py_str(&v)).collect::<PyResult<_>>()?,
                )),
                Err(_) => Ok(None),
            },
            None => Ok(None),
        }
    };
    Ok(match kind.as_deref() {
        Some("string") => enum_values()?.map_or(SchemaType::String, SchemaType::Enum),
        Some("integer" | "number") => enum_values()?.map_or(SchemaType::Number, SchemaType::Enum),
        Some("array") => {
            let items = get(schema, intern!(py, "items"))?;
            SchemaType::Array(Box::new(match items {
                Some(items) => schema_type(py, &items, calls + 1)?,
                None => schema_type(py, py.None().bind(py), calls + 1)?,
            }))
        }
        Some("object") => SchemaType::Object(members(
            py,
            get(schema, intern!(py, "properties"))?.as_ref(),
            get(schema, intern!(py, "required"))?.as_ref(),
            calls + 1,
        )?),
        Some("boolean") => SchemaType::Boolean,
        Some("null") => SchemaType::Null,
        _ => SchemaType::Any,
    })
}

// ---- search results -----------------------------------------------------------------------------

/// LiteLLM's `extract_search_results_text` inputs: dict results' string `source`, `title`, the
/// string `text` of dict blocks of a list `content`, and `citations` for `json.dumps`.
fn extract_search_results(
    py: Python<'_>,
    list: &Bound<'_, PyList>,
    path: &Path<'_>,
) -> PyResult<Vec<SearchResult>> {
    let string = |v: Option<Bound<'_, PyAny>>| -> PyResult<Option<String>> {
        match v {
            Some(v) => match v.cast::<PyString>() {
                Ok(s) => Ok(Some(str_text(s)?)),
                Err(_) => Ok(None),
            },
            None => Ok(None),
        }
    };
    let mut out = Vec::new();
    for result in list.iter() {
        let Ok(result) = result.cast::<PyDict>() else {
            continue;
        };
        let mut texts = Vec::new();
        if let Some(content) = result.get_item(intern!(py, "content"))? {
            if let Ok(blocks) = content.cast::<PyList>() {
                for block in blocks.iter() {
                    if let Ok(block) = block.cast::<PyDict>() {
                        texts.extend(string(block.get_item(intern!(py, "text"))?)?);
                    }
                }
            }
        }
        let citations = match result.get_item(intern!(py, "citations"))? {
            Some(c) if !c.is_none() => {
                let mut open = Vec::new();
                Some(json_value(&c, &mut open).map_err(|e| {
                    if e.is_instance_of::<PyTypeError>(py) {
                        type_err(format!(
                            "{path}.search_results: citations are not JSON: {}",
                            e.value(py)
                        ))
                    } else {
                        e
                    }
                })?)
            }
            _ => None,
        };
        out.push(SearchResult {
            source: string(result.get_item(intern!(py, "source"))?)?,
            title: string(result.get_item(intern!(py, "title"))?)?,
            texts,
            citations,
        });
    }
    Ok(out)
}

/// The UTF-16 code units of a `str` as Python holds them (lone surrogates included).
fn utf16_units(s: &Bound<'_, PyString>) -> PyResult<Vec<u16>> {
    if let Ok(text) = s.to_str() {
        return Ok(text.encode_utf16().collect());
    }
    // `str.encode` of the base type, not a subclass's override.
    let py = s.py();
    let bytes = py.get_type::<PyString>().call_method1(
        intern!(py, "encode"),
        (s, intern!(py, "utf-16-le"), intern!(py, "surrogatepass")),
    )?;
    let bytes = bytes.cast::<PyBytes>()?.as_bytes();
    Ok(bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect())
}

/// `int.__repr__` (an `int` subclass's own `__repr__` is not what `json` writes).
fn int_repr(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    let py = obj.py();
    py.get_type::<PyInt>()
        .call_method1(intern!(py, "__repr__"), (obj,))?
        .extract()
}

/// A Python value as `json.dumps` reads it; `open` holds the containers being read, to report a
/// circular reference as `json` does.
fn json_value(
    obj: &Bound<'_, PyAny>,
    open: &mut Vec<*mut pyo3::ffi::PyObject>,
) -> PyResult<JsonValue> {
    if obj.is_none() {
        return Ok(JsonValue::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(JsonValue::Bool(b.is_true()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(JsonValue::Str(utf16_units(s)?));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(JsonValue::Int(int_repr(obj)?));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(JsonValue::Float(f.value()));
    }
    // Lists and tuples are read as they are stored (`PySequence_Fast`), not through `__iter__`.
    let items: Option<Vec<Bound<'_, PyAny>>> = if let Ok(list) = obj.cast::<PyList>() {
        Some(list.iter().collect())
    } else if let Ok(tuple) = obj.cast::<PyTuple>() {
        Some(tuple.iter().collect())
    } else {
        None
    };
    let dict = obj.cast::<PyDict>().ok();
    if items.is_none() && dict.is_none() {
        return Err(type_err(format!(
            "Object of type {} is not JSON serializable",
            type_name(obj)
        )));
    }
    if open.contains(&obj.as_ptr()) {
        return Err(value_err("Circular reference detected".to_owned()));
    }
    if open.len() >= MAX_JSON_NESTING {
        return Err(too_deep("JSON citations", MAX_JSON_NESTING));
    }
    open.push(obj.as_ptr());
    let value = if let Some(items) = items {
        items
            .iter()
            .map(|item| json_value(item, open))
            .collect::<PyResult<_>>()
            .map(JsonValue::Array)
    } else {
        let mut entries = Vec::new();
        for (key, item) in dict.iter().flat_map(|d| d.iter()) {
            entries.push((json_key(&key)?, json_value(&item, open)?));
        }
        Ok(JsonValue::Object(entries))
    };
    open.pop();
    value
}

/// A dict key as `json.dumps` converts it.
fn json_key(key: &Bound<'_, PyAny>) -> PyResult<Vec<u16>> {
    let text = if let Ok(s) = key.cast::<PyString>() {
        return utf16_units(s);
    } else if let Ok(f) = key.cast::<PyFloat>() {
        json_float(f.value())
    } else if let Ok(b) = key.cast::<PyBool>() {
        if b.is_true() { "true" } else { "false" }.to_owned()
    } else if key.is_none() {
        "null".to_owned()
    } else if key.is_instance_of::<PyInt>() {
        int_repr(key)?
    } else {
        return Err(type_err(format!(
            "keys must be str, int, float, bool or None, not {}",
            type_name(key)
        )));
    };
    Ok(text.encode_utf16().collect())
}
