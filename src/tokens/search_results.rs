//! The text LiteLLM counts for a tool message's `search_results` (the core: no PyO3 here).
//!
//! LiteLLM (`extract_search_results_text`) concatenates, for each result that is a dict, its string
//! `source` and `title`, the string `text` of each dict block of a list `content`, and
//! `json.dumps(citations, separators=(",", ":"))` when `citations` is not None. The binding reads
//! the Python values into [`SearchResult`]s (citations as a [`JsonValue`] tree); this module writes
//! the text, JSON included, character for character as Python's `json` module does.

/// Deepest JSON nesting read from citations. Python's encoder enters one recursion level per
/// nested list or dict, so with the default recursion limit (1000) LiteLLM raises `RecursionError`
/// a little below 1000 levels; deeper citations raise it here too, and our own recursion stays
/// bounded.
pub const MAX_JSON_NESTING: usize = 900;

/// A Python value as `json.dumps` sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonValue {
    Null,
    Bool(bool),
    /// `int.__repr__` of the value (Python ints have no size limit).
    Int(String),
    Float(f64),
    /// The UTF-16 code units of the string: a lone surrogate is escaped as Python escapes it.
    Str(Vec<u16>),
    /// A list or tuple.
    Array(Vec<JsonValue>),
    /// A dict, keys already converted as `json.dumps` converts them (`str`, `repr` of numbers,
    /// `true`/`false`/`null`).
    Object(Vec<(Vec<u16>, JsonValue)>),
}

/// One search result, reduced to what LiteLLM counts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchResult {
    pub source: Option<String>,
    pub title: Option<String>,
    /// The string `text` of each dict block of `content`.
    pub texts: Vec<String>,
    pub citations: Option<JsonValue>,
}

/// The text LiteLLM counts for these results (see the module notes).
pub fn search_results_text(results: &[SearchResult]) -> String {
    let mut out = String::new();
    for result in results {
        out.extend(result.source.as_deref());
        out.extend(result.title.as_deref());
        out.extend(result.texts.iter().map(String::as_str));
        if let Some(citations) = &result.citations {
            write_json(&mut out, citations);
        }
    }
    out
}

/// `json.dumps(value, separators=(",", ":"))`: ASCII only, compact.
pub fn write_json(out: &mut String, value: &JsonValue) {
    match value {
        JsonValue::Null => out.push_str("null"),
        JsonValue::Bool(true) => out.push_str("true"),
        JsonValue::Bool(false) => out.push_str("false"),
        JsonValue::Int(digits) => out.push_str(digits),
        JsonValue::Float(f) => out.push_str(&json_float(*f)),
        JsonValue::Str(units) => write_json_string(out, units),
        JsonValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        JsonValue::Object(entries) => {
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, key);
                out.push(':');
                write_json(out, item);
            }
            out.push('}');
        }
    }
}

/// A JSON string with `ensure_ascii`: `\"`, `\\`, the five short escapes, and `\uxxxx` (lower-case
/// hex) for every other control character and every non-ASCII code unit.
fn write_json_string(out: &mut String, units: &[u16]) {
    out.push('"');
    for &unit in units {
        match unit {
            0x22 => out.push_str("\\\""),
            0x5C => out.push_str("\\\\"),
            0x0A => out.push_str("\\n"),
            0x0D => out.push_str("\\r"),
            0x09 => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0C => out.push_str("\\f"),
            0x20..=0x7E => out.push(unit as u8 as char),
            _ => out.push_str(&format!("\\u{unit:04x}")),
        }
    }
    out.push('"');
}

/// `float.__repr__` as `json` writes it: the shortest digits that round-trip, in positional
/// notation when the decimal exponent is in [-5, 16) and in scientific notation (`1e-05`, `1e+16`)
/// otherwise; `NaN`, `Infinity` and `-Infinity` for the values JSON has no literal for.
pub fn json_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits as Python's repr: `d.ddde<exp>`.
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-5 < exponent && exponent < 16) {
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{mantissa}e{exp_sign}{:02}", exponent.unsigned_abs());
    }
    let point = exponent + 1; // digits before the decimal point
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
    } else {
        let (int_part, frac) = digits.split_at(point as usize);
        format!("{int_part}.{frac}")
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> JsonValue {
        JsonValue::Str(text.encode_utf16().collect())
    }

    #[test]
    fn floats_print_as_python_repr() {
        // repr() of each value in CPython.
        for (value, repr) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (1.25e-7, "1.25e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456.789, "123456.789"),
            (-2.5e300, "-2.5e+300"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(json_float(value), repr, "{value}");
        }
    }

    #[test]
    fn compact_ascii_json() {
        let value = JsonValue::Object(vec![
            (
                "a\"b".encode_utf16().collect(),
                JsonValue::Array(vec![
                    JsonValue::Int("12345678901234567890123".into()),
                    JsonValue::Null,
                    JsonValue::Bool(true),
                    s("é\n😀\u{7f}"),
                    JsonValue::Str(vec![0xD800]),
                ]),
            ),
            ("1.5".encode_utf16().collect(), JsonValue::Object(vec![])),
        ]);
        let mut out = String::new();
        write_json(&mut out, &value);
        assert_eq!(
            out,
            r#"{"a\"b":[12345678901234567890123,null,true,"\u00e9\n\ud83d\ude00\u007f","\ud800"],"1.5":{}}"#
        );
    }

    #[test]
    fn results_concatenate_in_litellm_order() {
        let results = [
            SearchResult {
                source: Some("src".into()),
                title: Some("T".into()),
                texts: vec!["one".into(), "two".into()],
                citations: Some(JsonValue::Array(vec![s("c")])),
            },
            SearchResult::default(),
        ];
        assert_eq!(search_results_text(&results), "srcTonetwo[\"c\"]");
    }
}
