//! RFC 9396 authorization details: what a client asks a person to approve, checked before anyone is
//! asked, and put back into the token as approved. Pure.
//!
//! A tenant names the types it accepts (`tenant.authorization_details_types`). One type has a shape
//! Latchkey knows, `tool_call` (docs/approvals.md): `tool`, `action`, `arguments_digest`, optional
//! `locations` (RFC 9396 §2.2: the resource) and `summary` (the human sentence), nothing else. Any
//! other accepted type is checked generically: a flat object of short strings, numbers, booleans or
//! lists of strings, shown to the person field by field. Everything shown must be displayable text
//! (`display_text`): a detail cannot make the approval page say something it does not.

use serde_json::{Map, Value};

use crate::display_text::is_displayable;

/// The type whose fields Latchkey knows and shows in plain words.
pub const TOOL_CALL: &str = "tool_call";

/// Bounds: a request is a handful of small objects.
const MAX_TEXT: usize = 8 * 1024;
const MAX_DETAILS: usize = 10;
const MAX_FIELDS: usize = 20;
const MAX_STRING: usize = 500;

/// A type name a tenant may register: short, and of URI-safe characters (RFC 9396 §2 allows URIs).
pub fn valid_type_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'/'))
}

/// Checked authorization details, as the JSON array they are stored and signed as.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizationDetails(pub Vec<Value>);

/// What a person reads for one detail: its type and labelled values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub kind: String,
    /// The tool call's own sentence, when it has one.
    pub summary: Option<String>,
    pub fields: Vec<(String, String)>,
}

fn short_text(value: &Value, field: &str, max: usize) -> Result<String, String> {
    match value.as_str() {
        Some(text) if !text.is_empty() && text.chars().count() <= max && is_displayable(text) => Ok(text.to_owned()),
        Some(_) => Err(format!("{field} must be 1-{max} displayable characters")),
        None => Err(format!("{field} must be a string")),
    }
}

fn string_list(value: &Value, field: &str) -> Result<Vec<String>, String> {
    let Some(items) = value.as_array().filter(|a| !a.is_empty() && a.len() <= 10) else {
        return Err(format!("{field} must be a list of 1-10 strings"));
    };
    items.iter().map(|item| short_text(item, field, MAX_STRING)).collect()
}

fn tool_call(object: &Map<String, Value>) -> Result<Value, String> {
    let mut checked = Map::new();
    checked.insert("type".into(), TOOL_CALL.into());
    for (field, value) in object {
        let value = match field.as_str() {
            "type" => continue,
            "tool" | "action" => Value::from(short_text(value, field, 200)?),
            "arguments_digest" => Value::from(short_text(value, field, 200)?),
            "summary" => Value::from(short_text(value, field, 300)?),
            "locations" => Value::from(string_list(value, field)?),
            other => return Err(format!("a tool_call detail has no field {other:.40}")),
        };
        checked.insert(field.clone(), value);
    }
    for required in ["tool", "action", "arguments_digest"] {
        if !checked.contains_key(required) {
            return Err(format!("a tool_call detail needs {required}"));
        }
    }
    Ok(Value::Object(checked))
}

fn generic(kind: &str, object: &Map<String, Value>) -> Result<Value, String> {
    if object.len() > MAX_FIELDS {
        return Err(format!("a detail has at most {MAX_FIELDS} fields"));
    }
    let mut checked = Map::new();
    checked.insert("type".into(), kind.into());
    for (field, value) in object {
        if field == "type" {
            continue;
        }
        if !valid_type_name(field) {
            return Err(format!("{field:.40} is not a field name"));
        }
        let value = match value {
            Value::String(_) => Value::from(short_text(value, field, MAX_STRING)?),
            Value::Number(_) | Value::Bool(_) => value.clone(),
            Value::Array(_) => Value::from(string_list(value, field)?),
            _ => return Err(format!("{field:.40} must be a string, a number, a boolean or a list of strings")),
        };
        checked.insert(field.clone(), value);
    }
    Ok(Value::Object(checked))
}

/// Reads the `authorization_details` parameter (RFC 9396 §2): a JSON array of objects, each of a type
/// the tenant accepts. The error is the `error_description` of `invalid_authorization_details`.
pub fn parse(text: &str, accepted: &[String]) -> Result<AuthorizationDetails, String> {
    if text.len() > MAX_TEXT {
        return Err(format!("authorization_details is at most {MAX_TEXT} bytes"));
    }
    let value: Value = serde_json::from_str(text).map_err(|_| "authorization_details must be a JSON array".to_owned())?;
    let Some(items) = value.as_array() else {
        return Err("authorization_details must be a JSON array".into());
    };
    if items.is_empty() || items.len() > MAX_DETAILS {
        return Err(format!("authorization_details holds 1-{MAX_DETAILS} objects"));
    }
    let mut checked = Vec::with_capacity(items.len());
    for item in items {
        let Some(object) = item.as_object() else {
            return Err("each authorization detail is a JSON object".into());
        };
        let Some(kind) = object.get("type").and_then(Value::as_str) else {
            return Err("each authorization detail has a type".into());
        };
        if !accepted.iter().any(|t| t == kind) {
            return Err(format!("authorization details type {kind:.60} is not accepted here"));
        }
        checked.push(if kind == TOOL_CALL { tool_call(object)? } else { generic(kind, object)? });
    }
    Ok(AuthorizationDetails(checked))
}

impl AuthorizationDetails {
    pub fn to_json(&self) -> String {
        Value::Array(self.0.clone()).to_string()
    }

    /// Details read back from storage (checked when they were stored).
    pub fn from_stored(text: &str) -> Option<Self> {
        match serde_json::from_str(text).ok()? {
            Value::Array(items) => Some(Self(items)),
            _ => None,
        }
    }

    /// Every location a detail names: the resources the approval is about (RFC 9396 §2.2).
    pub fn locations(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|d| d.get("locations").and_then(Value::as_array)).flatten().filter_map(Value::as_str)
    }

    /// What the approval page shows, in the order the client sent the details.
    pub fn describe(&self) -> Vec<Described> {
        self.0
            .iter()
            .map(|detail| {
                let text = |field: &str| match detail.get(field) {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Array(items)) => Some(items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")),
                    Some(other @ (Value::Number(_) | Value::Bool(_))) => Some(other.to_string()),
                    _ => None,
                };
                let kind = text("type").unwrap_or_default();
                if kind == TOOL_CALL {
                    let fields = [("Tool", "tool"), ("Action", "action"), ("On", "locations"), ("Arguments (digest)", "arguments_digest")]
                        .into_iter()
                        .filter_map(|(label, field)| text(field).map(|v| (label.to_owned(), v)))
                        .collect();
                    return Described { kind: "A tool call".into(), summary: text("summary"), fields };
                }
                let fields = detail
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(field, _)| field.as_str() != "type")
                    .filter_map(|(field, _)| text(field).map(|v| (field.clone(), v)))
                    .collect();
                Described { kind, summary: None, fields }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_accepted_types_in_their_shapes_pass() {
        let accepted = vec![TOOL_CALL.to_owned(), "payment".to_owned()];
        let call = r#"[{"type":"tool_call","tool":"files.delete","action":"call","arguments_digest":"sha256:abc","locations":["https://tools.example/mcp"],"summary":"Delete plan.md"}]"#;
        // (text, Ok(number of details) or Err(part of the message))
        let cases: Vec<(&str, Result<usize, &str>)> = vec![
            (call, Ok(1)),
            (r#"[{"type":"payment","amount":12.5,"currency":"EUR","payee":"ACME","instant":true}]"#, Ok(1)),
            (r#"[{"type":"tool_call","tool":"x","action":"call","arguments_digest":"d"},{"type":"payment","amount":1}]"#, Ok(2)),
            (r#"{"type":"tool_call"}"#, Err("JSON array")),
            ("not json", Err("JSON array")),
            ("[]", Err("1-10")),
            (r#"["tool_call"]"#, Err("JSON object")),
            (r#"[{"tool":"x"}]"#, Err("has a type")),
            (r#"[{"type":"account_access"}]"#, Err("not accepted")),
            (r#"[{"type":"tool_call","tool":"x","action":"call"}]"#, Err("needs arguments_digest")),
            (r#"[{"type":"tool_call","tool":"x","action":"call","arguments_digest":"d","extra":1}]"#, Err("no field extra")),
            (r#"[{"type":"tool_call","tool":"x\u202e","action":"call","arguments_digest":"d"}]"#, Err("displayable")),
            (r#"[{"type":"tool_call","tool":"","action":"call","arguments_digest":"d"}]"#, Err("1-200")),
            (r#"[{"type":"payment","nested":{"a":1}}]"#, Err("must be a string")),
            (r#"[{"type":"payment","list":[]}]"#, Err("1-10 strings")),
        ];
        for (text, expected) in cases {
            match (parse(text, &accepted), expected) {
                (Ok(details), Ok(n)) => assert_eq!(details.0.len(), n, "{text}"),
                (Err(message), Err(part)) => assert!(message.contains(part), "{text}: {message}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
        let too_many = format!("[{}]", vec![r#"{"type":"payment"}"#; 11].join(","));
        assert!(parse(&too_many, &accepted).is_err());
        assert!(parse(call, &[]).is_err(), "a tenant that accepts nothing accepts no details");
    }

    #[test]
    fn a_tool_call_reads_in_plain_words_and_round_trips() {
        let accepted = vec![TOOL_CALL.to_owned()];
        let details = parse(
            r#"[{"type":"tool_call","tool":"files.delete","action":"call","arguments_digest":"sha256:abc","locations":["https://tools.example/mcp"],"summary":"Delete plan.md"}]"#,
            &accepted,
        )
        .expect("valid");
        let described = details.describe();
        assert_eq!(described[0].summary.as_deref(), Some("Delete plan.md"));
        assert!(described[0].fields.contains(&("Tool".into(), "files.delete".into())));
        assert!(described[0].fields.contains(&("On".into(), "https://tools.example/mcp".into())));
        assert_eq!(details.locations().collect::<Vec<_>>(), ["https://tools.example/mcp"]);
        assert_eq!(AuthorizationDetails::from_stored(&details.to_json()), Some(details));
        assert!(valid_type_name("tool_call") && valid_type_name("https://example.com/payment") && !valid_type_name("a b"));
    }
}
