//! A chat-completions request body read straight from its JSON text into the messages the
//! counting core counts (the core: no PyO3 here).
//!
//! This reader takes only bodies whose messages are of the plain shape chat requests are made
//! of: string fields, `null`s, content lists of text parts or strings, tool calls and function
//! calls with string or `null` `arguments`, and values LiteLLM skips (numbers, booleans, objects
//! and lists under other keys). It reads them as `json.loads` and then LiteLLM read them, in one
//! pass over the text, with no tree of JSON values in between. For any other body it answers
//! `None`, and the caller reads the body the general way (`src/py/request.rs`): so are images,
//! documents, tool blocks, search results, non-string arguments, keys given twice (where
//! `json.loads` keeps the last value), and whatever the parser refuses (invalid JSON, `NaN`,
//! a byte-order mark, lone surrogates, numbers beyond a float, nesting deeper than 255).
//!
//! The parser is `sonic_rs` (see `Cargo.toml` for why). Values the count skips are still read
//! in full (`Skip`), so that a body `json.loads` refuses (an integer beyond `int()`'s digit
//! limit) or cannot read (nesting beyond its recursion limit) goes to it and fails as it does.
//!
//! `tools` and `tool_choice` are kept as JSON values, read by `serde_json` from their text: they
//! are small, are read exactly as the general reader reads them, and are rendered by the same
//! code that renders them for `count_message_tokens`.
//!
//! Why not a `serde_json::Value` first: building the value tree (an ordered map per object with
//! its hashed keys, an owned copy of every string) and then copying the strings once more into
//! the messages cost a quarter of the read (the benchmark's 50 KB body: ~47 -> ~35 µs for
//! `parse_chat_request`; see the notes in `src/py/request.rs`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::messages::{ChatMessage, ContentPart, ToolCall};

/// A body read by [`read_plain_body`].
#[derive(Debug, Clone, PartialEq)]
pub struct PlainBody {
    /// `model` when it is a string.
    pub model: Option<String>,
    pub messages: Vec<ChatMessage>,
    /// `tools` and `tool_choice` as JSON values (`Null` when absent).
    pub tools: Value,
    pub tool_choice: Value,
}

/// Reads `json` when it is a plain request body (see the module notes); `None` for any other.
pub fn read_plain_body(json: &str) -> Option<PlainBody> {
    let mut de = sonic_rs::Deserializer::from_str(json);
    let body = de.deserialize_map(BodyVisitor).ok()?;
    de.end().ok()?;
    Some(body)
}

/// `tools` or `tool_choice`: its JSON text, read by `serde_json` as the general reader reads it
/// (floats rounded as `json.loads` rounds them, keys in their order).
fn json_value<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Value, A::Error> {
    let raw = map.next_value::<sonic_rs::LazyValue<'de>>()?;
    serde_json::from_str(raw.as_raw_str()).map_err(|_| not_plain())
}

/// A value that counts for nothing, read in full (its numbers, its escapes, its depth) so that
/// a body `json.loads` refuses is refused here too: `sonic_rs` skips an ignored value without
/// reading its numbers or limiting its depth (a 5,000-digit integer, which `json.loads` refuses,
/// or nesting deeper than its recursion limit). The field is the number of lists and objects
/// around the value, the body included.
///
/// Nesting deeper than [`MAX_DEPTH`] is left to `json.loads`, which may have less room: it
/// nests as deep as the caller's recursion limit allows, minus the caller's own frames.
#[derive(Clone, Copy)]
struct Skip(u32);

/// The deepest list or object the reader takes (as `serde_json`, which read these bodies
/// before): deeper bodies are read by `json.loads`.
const MAX_DEPTH: u32 = 128;

impl Skip {
    /// The skip of a value inside this one, which is a list or an object.
    fn inner<E: de::Error>(self) -> Result<Skip, E> {
        if self.0 >= MAX_DEPTH {
            return Err(not_plain());
        }
        Ok(Skip(self.0 + 1))
    }
}

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.inner()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.inner()?;
        while map.next_key_seed(inner)?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

/// The body's `model`: the string, or `None` for any other value (skipped as [`Skip`] skips).
struct ModelSeed;

impl<'de> DeserializeSeed<'de> for ModelSeed {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ModelSeed {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a model")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip(1).visit_seq(seq).map(|()| None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Skip(1).visit_map(map).map(|()| None)
    }
}

/// The error that makes [`read_plain_body`] give up: the reason does not matter to the caller,
/// which reads the body the general way.
fn not_plain<E: de::Error>() -> E {
    E::custom("not a plain request body")
}

/// A string, borrowed from the body when it holds no escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

/// The keys of one object seen so far, to give up on a key given twice.
#[derive(Default)]
struct Keys<'de>(Vec<Text<'de>>);

impl<'de> Keys<'de> {
    fn insert<E: de::Error>(&mut self, key: Text<'de>) -> Result<&str, E> {
        if self.0.iter().any(|k| k.0 == key.0) {
            return Err(not_plain());
        }
        self.0.push(key);
        Ok(self.0.last().map_or("", |k| &k.0))
    }
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = PlainBody;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a request body")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PlainBody, A::Error> {
        let mut body = PlainBody {
            model: None,
            messages: Vec::new(),
            tools: Value::Null,
            tool_choice: Value::Null,
        };
        let mut has_messages = false;
        let mut keys = Keys::default();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match &*key.0 {
                "model" | "messages" | "tools" | "tool_choice" => {}
                // Every other field of the request (`stream`, `temperature`, ...) counts for
                // nothing; a key given twice among them changes nothing either.
                _ => {
                    map.next_value_seed(Skip(1))?;
                    continue;
                }
            }
            match keys.insert(key)? {
                "model" => body.model = map.next_value_seed(ModelSeed)?,
                "messages" => {
                    // Not a list (or null): the general reader raises the error.
                    body.messages = map.next_value_seed(MessagesSeed)?;
                    has_messages = true;
                }
                "tools" => body.tools = json_value(&mut map)?,
                _ => body.tool_choice = json_value(&mut map)?,
            }
        }
        if !has_messages {
            return Err(not_plain());
        }
        Ok(body)
    }
}

struct MessagesSeed;

impl<'de> DeserializeSeed<'de> for MessagesSeed {
    type Value = Vec<ChatMessage>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for MessagesSeed {
    type Value = Vec<ChatMessage>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of messages")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut messages = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(message) = seq.next_element_seed(MessageSeed)? {
            messages.push(message);
        }
        Ok(messages)
    }
}

struct MessageSeed;

impl<'de> DeserializeSeed<'de> for MessageSeed {
    type Value = ChatMessage;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MessageSeed {
    type Value = ChatMessage;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a message")
    }

    /// One message as `extract_message` reads it: every string value counts (`name` with its
    /// own constant), `tool_calls` and `function_call` count their arguments, a `content` list
    /// its parts; `null`s and other values are skipped.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ChatMessage, A::Error> {
        let mut m = ChatMessage::default();
        let mut keys = Keys::default();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            let key = keys.insert(key)?;
            match map.next_value_seed(FieldSeed { key })? {
                Field::Skipped => {}
                Field::Text(text) => {
                    if key == "name" {
                        m.name = Some(text);
                    } else {
                        m.is_system |= key == "role" && text == "system";
                        m.text_fields.push(text);
                    }
                }
                Field::Parts(parts) => m.content_parts = parts,
                Field::ToolCalls(calls) => m.tool_calls = calls,
                Field::FunctionCall(call) => m.function_call = Some(call),
            }
        }
        Ok(m)
    }
}

/// What one field of a message adds.
enum Field {
    Skipped,
    Text(String),
    Parts(Vec<ContentPart>),
    ToolCalls(Vec<ToolCall>),
    FunctionCall(ToolCall),
}

/// The value of the message field `key`.
struct FieldSeed<'k> {
    key: &'k str,
}

impl FieldSeed<'_> {
    /// Fields whose value, unless `null`, is of a shape this reader does not take but for the
    /// list of `tool_calls` and the object of `function_call`.
    fn special(&self) -> bool {
        matches!(
            self.key,
            "tool_calls" | "function_call" | "provider_specific_fields" | "search_results"
        )
    }

    fn skipped<E: de::Error>(&self) -> Result<Field, E> {
        if self.special() {
            return Err(not_plain());
        }
        Ok(Field::Skipped)
    }
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Field;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_> {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a message field")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Field, E> {
        Ok(Field::Skipped)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Field, E> {
        self.skipped()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Field, E> {
        self.skipped()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Field, E> {
        self.skipped()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Field, E> {
        self.skipped()
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
        if self.special() {
            return Err(not_plain());
        }
        Ok(Field::Text(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Field, E> {
        if self.special() {
            return Err(not_plain());
        }
        Ok(Field::Text(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field, A::Error> {
        match self.key {
            "content" => {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(part) = seq.next_element_seed(PartSeed)? {
                    if let Some(part) = part {
                        parts.push(part);
                    }
                }
                Ok(Field::Parts(parts))
            }
            "tool_calls" => {
                let mut calls = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(call) = seq.next_element_seed(ToolCallSeed)? {
                    calls.push(call);
                }
                Ok(Field::ToolCalls(calls))
            }
            _ if self.special() => Err(not_plain()),
            _ => {
                // Inside the body, its messages, the message and this list.
                while seq.next_element_seed(Skip(4))?.is_some() {}
                Ok(Field::Skipped)
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Field, A::Error> {
        match self.key {
            "function_call" => Ok(Field::FunctionCall(FunctionSeed.visit_map(map)?)),
            _ if self.special() => Err(not_plain()),
            _ => {
                Skip(3).visit_map(map)?;
                Ok(Field::Skipped)
            }
        }
    }
}

/// One item of a `content` list: a string, or a `{"type": "text", "text": str}` part
/// (`str(text or "")`, counted when not empty: `None` for an empty one).
struct PartSeed;

impl<'de> DeserializeSeed<'de> for PartSeed {
    type Value = Option<ContentPart>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PartSeed {
    type Value = Option<ContentPart>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a text part")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(ContentPart::Text(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(ContentPart::Text(v)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut is_text = false;
        let mut text: Option<Text<'de>> = None;
        let mut keys = Keys::default();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match &*key.0 {
                "type" | "text" => {}
                // Other keys of a text part (`cache_control`, ...) count for nothing.
                _ => {
                    // Inside the body, its messages, the message, its content and the part.
                    map.next_value_seed(Skip(5))?;
                    continue;
                }
            }
            // Both values must be strings: anything else is read the general way.
            if keys.insert(key)? == "type" {
                let kind = map.next_value::<Text<'de>>()?;
                if kind.0 != "text" {
                    return Err(not_plain());
                }
                is_text = true;
            } else {
                text = Some(map.next_value::<Text<'de>>()?);
            }
        }
        match text {
            Some(text) if is_text => {
                Ok((!text.0.is_empty()).then(|| ContentPart::Text(text.0.into_owned())))
            }
            _ => Err(not_plain()),
        }
    }
}

/// One item of `tool_calls`: an object with a `function` object (`str(function.get("arguments",
/// ""))` counts).
struct ToolCallSeed;

impl<'de> DeserializeSeed<'de> for ToolCallSeed {
    type Value = ToolCall;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ToolCallSeed {
    type Value = ToolCall;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tool call")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ToolCall, A::Error> {
        let mut call = None;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            if key.0 != "function" {
                // Inside the body, its messages, the message, its tool calls and the call.
                map.next_value_seed(Skip(5))?;
            } else if call.is_some() {
                return Err(not_plain());
            } else {
                call = Some(map.next_value_seed(FunctionSeed)?);
            }
        }
        call.ok_or_else(not_plain)
    }
}

/// A `function` (or `function_call`) object: its string `arguments`, "None" for `null`, "" when
/// missing.
struct FunctionSeed;

impl<'de> DeserializeSeed<'de> for FunctionSeed {
    type Value = ToolCall;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FunctionSeed {
    type Value = ToolCall;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a function")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ToolCall, A::Error> {
        let mut arguments: Option<String> = None;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            if key.0 != "arguments" {
                // Inside the body, its messages, the message, its tool calls, the call and the
                // function (one fewer for a `function_call`: counted as deep as a tool call's).
                map.next_value_seed(Skip(6))?;
            } else if arguments.is_some() {
                return Err(not_plain());
            } else {
                arguments = Some(match map.next_value::<Option<Text<'de>>>()? {
                    Some(text) => text.0.into_owned(),
                    None => "None".to_owned(),
                });
            }
        }
        Ok(ToolCall {
            arguments: arguments.unwrap_or_default(),
        })
    }
}

// ---- messages already read as JSON values ------------------------------------------------------

fn plain_arguments(function: &Value) -> Option<ToolCall> {
    let Value::Object(function) = function else {
        return None;
    };
    match function.get("arguments") {
        None => Some(ToolCall::default()),
        Some(Value::String(s)) => Some(ToolCall {
            arguments: s.clone(),
        }),
        Some(Value::Null) => Some(ToolCall {
            arguments: "None".to_owned(),
        }),
        Some(_) => None,
    }
}

/// One message of a body already read as JSON values, as [`read_plain_body`] reads it: `None`
/// when it is not of the plain shape (see the module notes). The general reader uses it for the
/// plain messages of a body that is not plain as a whole, and the tests hold the one-pass reader
/// to it.
pub fn plain_message(message: &Value) -> Option<ChatMessage> {
    let Value::Object(fields) = message else {
        return None;
    };
    let mut m = ChatMessage::default();
    for (key, value) in fields {
        match (key.as_str(), value) {
            (_, Value::Null) => {}
            ("tool_calls", Value::Array(calls)) => {
                for call in calls {
                    let Value::Object(call) = call else {
                        return None;
                    };
                    let function = call.get("function")?;
                    m.tool_calls.push(plain_arguments(function)?);
                }
            }
            ("function_call", function) => m.function_call = Some(plain_arguments(function)?),
            ("tool_calls" | "provider_specific_fields" | "search_results", _) => return None,
            (key, Value::String(s)) => {
                if key == "role" && s == "system" {
                    m.is_system = true;
                }
                if key == "name" {
                    m.name = Some(s.clone());
                } else {
                    m.text_fields.push(s.clone());
                }
            }
            ("content", Value::Array(parts)) => {
                for part in parts {
                    match part {
                        Value::String(s) => m.content_parts.push(ContentPart::Text(s.clone())),
                        Value::Object(part) => plain_text_part(part, &mut m.content_parts)?,
                        _ => return None,
                    }
                }
            }
            // Numbers, booleans, objects and lists under other keys: LiteLLM skips them.
            _ => {}
        }
    }
    Some(m)
}

/// A `{"type": "text", "text": str}` part (`str(text or "")`, counted when not empty).
fn plain_text_part(part: &Map<String, Value>, out: &mut Vec<ContentPart>) -> Option<()> {
    match (part.get("type"), part.get("text")) {
        (Some(Value::String(kind)), Some(Value::String(text))) if kind == "text" => {
            if !text.is_empty() {
                out.push(ContentPart::Text(text.clone()));
            }
            Some(())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed, TestRunner};
    use serde_json::json;

    use super::*;

    /// The general reading of a body: its JSON values, then [`plain_message`] on each message.
    fn read_as_values(body: &str) -> Option<PlainBody> {
        let Value::Object(mut fields) = serde_json::from_str::<Value>(body).ok()? else {
            return None;
        };
        let Value::Array(messages) = fields.swap_remove("messages")? else {
            return None;
        };
        Some(PlainBody {
            model: match fields.get("model") {
                Some(Value::String(model)) => Some(model.clone()),
                _ => None,
            },
            messages: messages
                .iter()
                .map(plain_message)
                .collect::<Option<Vec<_>>>()?,
            tools: fields.swap_remove("tools").unwrap_or(Value::Null),
            tool_choice: fields.swap_remove("tool_choice").unwrap_or(Value::Null),
        })
    }

    fn text(s: &str) -> ContentPart {
        ContentPart::Text(s.to_owned())
    }

    #[test]
    fn reads_a_plain_body() {
        let body = json!({
            "model": "gpt-4o",
            "stream": true,
            "messages": [
                {"role": "system", "content": "Be brief.", "name": "sys"},
                {"role": "user", "content": ["a", {"type": "text", "text": "b\n\"c\""},
                                             {"type": "text", "text": "", "cache_control": {}}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "1", "function": {"name": "f", "arguments": "{\"x\": 1}"}},
                    {"function": {"arguments": null}},
                    {"function": {}}
                ], "function_call": {"arguments": "fc"}, "weight": 1.5, "meta": {"k": [1]}},
                {"role": "tool", "tool_call_id": "1", "content": "42"}
            ],
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": "auto"
        })
        .to_string();
        let read = read_plain_body(&body).expect("plain");
        assert_eq!(Some(&read), read_as_values(&body).as_ref());
        assert_eq!(read.model.as_deref(), Some("gpt-4o"));
        let [system, user, assistant, tool] = &read.messages[..] else {
            panic!("{:?}", read.messages)
        };
        assert!(system.is_system && system.name.as_deref() == Some("sys"));
        assert_eq!(system.text_fields, ["system", "Be brief."]);
        assert_eq!(user.content_parts, [text("a"), text("b\n\"c\"")]);
        let arguments: Vec<&str> = assistant
            .tool_calls
            .iter()
            .map(|c| c.arguments.as_str())
            .collect();
        assert_eq!(arguments, ["{\"x\": 1}", "None", ""]);
        assert_eq!(assistant.function_call.as_ref().unwrap().arguments, "fc");
        assert_eq!(assistant.text_fields, ["assistant"]);
        assert_eq!(tool.text_fields, ["tool", "1", "42"]);
        assert_eq!(read.tool_choice, json!("auto"));
    }

    #[test]
    fn gives_up_on_what_it_does_not_take() {
        for body in [
            // Not plain: LiteLLM reads these with rules of their own.
            r#"{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]}"#,
            r#"{"messages": [{"role": "user", "content": [{"type": "text"}]}]}"#,
            r#"{"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}"#,
            r#"{"messages": [{"role": "user", "content": [3]}]}"#,
            r#"{"messages": [{"tool_calls": [{"function": {"arguments": {"a": 1}}}]}]}"#,
            r#"{"messages": [{"tool_calls": [{"id": "x"}]}]}"#,
            r#"{"messages": [{"tool_calls": "x"}]}"#,
            r#"{"messages": [{"function_call": "x"}]}"#,
            r#"{"messages": [{"search_results": []}]}"#,
            r#"{"messages": [{"provider_specific_fields": {}}]}"#,
            r#"{"messages": ["hi"]}"#,
            // Keys given twice: json.loads keeps the last value.
            r#"{"messages": [{"role": "user", "role": "system"}]}"#,
            r#"{"messages": [], "messages": [{"role": "user"}]}"#,
            r#"{"model": "a", "model": "b", "messages": []}"#,
            r#"{"messages": [{"content": [{"type": "text", "text": "a", "text": "b"}]}]}"#,
            r#"{"messages": [{"tool_calls": [{"function": {"arguments": "a", "arguments": "b"}}]}]}"#,
            // What the general reader raises or json.loads reads.
            r#"{"model": "gpt-4o"}"#,
            r#"{"messages": null}"#,
            r#"{"messages": "hi"}"#,
            r#"[1]"#,
            r#"{"messages": []"#,
            r#"{"messages": []} x"#,
            r#"{"messages": [{"n": NaN}]}"#,
            "\u{feff}{\"messages\": []}",
            "",
        ] {
            assert_eq!(read_plain_body(body), None, "{body}");
        }
        // Keys given twice among the fields that count for nothing change nothing.
        let body = r#"{"stream": true, "stream": false, "messages": [], "n": 1, "n": {}}"#;
        assert_eq!(read_plain_body(body), read_as_values(body));
        assert!(read_plain_body(body).is_some());
    }

    /// A JSON value that may stand anywhere in a message.
    fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (-1e9f64..1e9).prop_map(Value::from),
            "[a-z\"\\\\\n é日]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::vec(("[a-z]{1,3}", inner), 0..3)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
    }

    fn string() -> impl Strategy<Value = Value> {
        "[a-z\"\\\\\n é日]{0,8}".prop_map(Value::String)
    }

    fn part() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => string(),
            4 => string().prop_map(|t| json!({"type": "text", "text": t})),
            1 => (any_value(), any_value()).prop_map(|(k, t)| json!({"type": k, "text": t})),
            1 => any_value(),
        ]
    }

    fn function() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => string().prop_map(|a| json!({"name": "f", "arguments": a})),
            1 => Just(json!({"name": "f"})),
            1 => any_value().prop_map(|a| json!({"arguments": a})),
            1 => any_value(),
        ]
    }

    /// A message: mostly of the plain shape, sometimes not.
    fn message() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            Just("role"),
            Just("content"),
            Just("name"),
            Just("tool_calls"),
            Just("function_call"),
            Just("tool_call_id"),
            Just("search_results"),
            Just("provider_specific_fields"),
            Just("weight"),
        ];
        let field = (key, 0u8..10, any_value(), string(), part(), function()).prop_map(
            |(key, pick, value, string, part, function)| {
                let value = match (key, pick) {
                    (_, 0) => value,
                    (_, 1) => Value::Null,
                    ("content", 2..=6) => Value::Array(vec![part, string]),
                    ("tool_calls", 2..=8) => json!([{"id": "c", "function": function}]),
                    ("function_call", 2..=8) => function,
                    _ => string,
                };
                (key.to_owned(), value)
            },
        );
        proptest::collection::vec(field, 0..5).prop_map(|fields| {
            let fields: Map<String, Value> = fields.into_iter().collect();
            Value::Object(fields)
        })
    }

    #[test]
    fn reads_as_the_json_values_read() {
        let mut runner = TestRunner::new(Config {
            cases: 2000,
            failure_persistence: None,
            rng_seed: RngSeed::Fixed(0x5eed_b0d1),
            ..Config::default()
        });
        let body = (
            proptest::collection::vec(message(), 0..4),
            any_value(),
            any_value(),
            any::<bool>(),
        );
        // How many bodies were plain: the cases must cover both kinds.
        let plain = std::cell::Cell::new(0);
        runner
            .run(&body, |(messages, tools, extra, with_model)| {
                let mut body = Map::new();
                body.insert("extra".into(), extra);
                if with_model {
                    body.insert("model".into(), json!("gpt-4o"));
                }
                body.insert("messages".into(), Value::Array(messages));
                body.insert("tools".into(), tools);
                let body = Value::Object(body).to_string();
                let read = read_plain_body(&body);
                plain.set(plain.get() + usize::from(read.is_some()));
                prop_assert_eq!(read, read_as_values(&body), "{}", body);
                Ok(())
            })
            .unwrap();
        assert!(
            (400..1600).contains(&plain.get()),
            "{} plain bodies",
            plain.get()
        );
    }
}
