//! The text LiteLLM counts for a request's tool definitions (the core: no PyO3 here).
//!
//! LiteLLM prices `tools` by rendering them as the TypeScript-like namespace OpenAI is understood
//! to show the model (`_format_function_definitions`), then counting that text. The count depends
//! on every character, so the layout is reproduced exactly:
//!
//! ```text
//! namespace functions {
//! <blank>
//! // <description>                      (only when the function has one)
//! type <name> = (_: {                    (or "type <name> = () => any;" without properties)
//! <member lines>
//! }) => any;
//! <blank>
//! } // namespace functions
//! ```
//!
//! A member line is `<key>?: <type>,` (`?` dropped for required keys), preceded by
//! `// <description>` when the property has a truthy one; the lines of an object nested `n` levels
//! deep start with `2n` spaces (only the first line of a multi-line member, as in LiteLLM). Types:
//! `string`, `number` (integer too), a union of quoted enum values (string and number schemas with
//! a list `enum`), `boolean`, `null`, `<type>[]` for arrays (`any[]` without `items`), a braced
//! block of member lines for objects, and `any` for anything else.
//!
//! Which Python values make up a definition (OpenAI `function`, Gemini `function_declarations`,
//! Anthropic `input_schema`, `str()` of names and enum values...) is decided by the binding, which
//! builds the [`FunctionDefinition`]s; this module only lays them out.

/// Most nested calls LiteLLM's renderer may make for one property: an object level costs two
/// (`_format_type` and `_format_object_parameters`), an array level one (`_format_type`). Python's
/// default recursion limit (1000) lets LiteLLM render about 490 object levels or 980 array levels
/// from a shallow stack, so every schema LiteLLM renders in practice stays below this bound, and
/// deeper ones fail with `RecursionError` in LiteLLM and here. It also bounds our own recursion,
/// so no schema can exhaust the native stack.
pub const MAX_SCHEMA_NESTING: usize = 900;

/// One function as LiteLLM renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionDefinition {
    /// `str(name)`; functions without a truthy name are not rendered (the binding drops them).
    pub name: String,
    /// `str(description)` when truthy.
    pub description: Option<String>,
    /// The members of `parameters.properties` (empty: rendered as `() => any`).
    pub parameters: Vec<Member>,
}

/// One property of an object schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `str(key)`.
    pub key: String,
    /// `str(description)` when the property is a mapping with a truthy `description`.
    pub description: Option<String>,
    /// The key is listed in the object's `required` list.
    pub required: bool,
    pub schema: SchemaType,
}

/// How LiteLLM renders one schema (`_format_type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaType {
    Any,
    String,
    Number,
    Boolean,
    Null,
    /// `"a" | "b"`: the `str()` of each value of a list `enum` on a string or number schema.
    Enum(Vec<String>),
    Array(Box<SchemaType>),
    /// The members of `properties` (empty when missing, empty or not a mapping).
    Object(Vec<Member>),
}

/// The text LiteLLM counts for these function definitions (see the module notes).
pub fn render_function_definitions(functions: &[FunctionDefinition]) -> String {
    let mut out = String::from("namespace functions {\n\n");
    for function in functions {
        if let Some(description) = &function.description {
            out.push_str("// ");
            out.push_str(description);
            out.push('\n');
        }
        out.push_str("type ");
        out.push_str(&function.name);
        if function.parameters.is_empty() {
            out.push_str(" = () => any;\n\n");
        } else {
            out.push_str(" = (_: {\n");
            push_members(&mut out, &function.parameters, 0);
            out.push_str("\n}) => any;\n\n");
        }
    }
    out.push_str("} // namespace functions");
    out
}

/// `_format_object_parameters`: member lines joined by newlines, each line (not each row of a
/// multi-line nested type) prefixed with `indent` spaces.
fn push_members(out: &mut String, members: &[Member], indent: usize) {
    for (i, member) in members.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if let Some(description) = &member.description {
            push_indent(out, indent);
            out.push_str("// ");
            out.push_str(description);
            out.push('\n');
        }
        push_indent(out, indent);
        out.push_str(&member.key);
        if !member.required {
            out.push('?');
        }
        out.push_str(": ");
        push_type(out, &member.schema, indent);
        out.push(',');
    }
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn push_type(out: &mut String, schema: &SchemaType, indent: usize) {
    match schema {
        SchemaType::Any => out.push_str("any"),
        SchemaType::String => out.push_str("string"),
        SchemaType::Number => out.push_str("number"),
        SchemaType::Boolean => out.push_str("boolean"),
        SchemaType::Null => out.push_str("null"),
        SchemaType::Enum(values) => {
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    out.push_str(" | ");
                }
                out.push('"');
                out.push_str(value);
                out.push('"');
            }
        }
        SchemaType::Array(items) => {
            push_type(out, items, indent);
            out.push_str("[]");
        }
        SchemaType::Object(members) => {
            out.push_str("{\n");
            push_members(out, members, indent + 2);
            out.push_str("\n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(key: &str, required: bool, schema: SchemaType) -> Member {
        Member {
            key: key.to_owned(),
            description: None,
            required,
            schema,
        }
    }

    #[test]
    fn empty_and_parameterless() {
        assert_eq!(
            render_function_definitions(&[]),
            "namespace functions {\n\n} // namespace functions"
        );
        let f = FunctionDefinition {
            name: "ping".into(),
            description: Some("Checks.".into()),
            parameters: vec![],
        };
        assert_eq!(
            render_function_definitions(&[f]),
            "namespace functions {\n\n// Checks.\ntype ping = () => any;\n\n} // namespace functions"
        );
    }

    #[test]
    fn nested_layout_matches_litellm() {
        // The text litellm 1.110.2's _format_function_definitions gives for the same schema.
        let location = Member {
            description: Some("City".into()),
            ..member("city", true, SchemaType::String)
        };
        let f = FunctionDefinition {
            name: "get_weather".into(),
            description: None,
            parameters: vec![
                location,
                member(
                    "unit",
                    false,
                    SchemaType::Enum(vec!["c".into(), "f".into()]),
                ),
                member(
                    "opts",
                    false,
                    SchemaType::Object(vec![
                        member(
                            "deep",
                            false,
                            SchemaType::Object(vec![member("x", true, SchemaType::Null)]),
                        ),
                        member("n", false, SchemaType::Number),
                    ]),
                ),
                member("tags", false, SchemaType::Array(Box::new(SchemaType::Any))),
            ],
        };
        let expected = "namespace functions {\n\ntype get_weather = (_: {\n// City\ncity: string,\n\
                        unit?: \"c\" | \"f\",\nopts?: {\n  deep?: {\n    x: null,\n},\n  n?: number,\n},\n\
                        tags?: any[],\n}) => any;\n\n} // namespace functions";
        assert_eq!(render_function_definitions(&[f]), expected);
    }
}
