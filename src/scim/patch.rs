//! SCIM PATCH requests (RFC 7644 §3.5.2) read into operations with explicit paths, in the shapes the
//! big provisioning clients send:
//!
//! - `op` in any case (Entra writes `Replace`, `Add`, `Remove`);
//! - a path-less `add`/`replace` whose `value` object holds paths as keys (`"name.givenName"`,
//!   URN-qualified `"urn:…:enterprise:2.0:User:department"`) or an extension object by its URN: one
//!   operation per key, each with its own path;
//! - `"active": "False"` / `"True"` as strings (Entra before `aadOptscim062020`): booleans;
//! - the enterprise `manager` as a bare id string or as `{ "value": id }`: the object;
//! - `remove` needs a path (§3.5.2.2: `noTarget` otherwise); a `members` removal may name the members
//!   in its `value` array or by a value filter in its path.
//!
//! What applying the operations does to a resource is the directory's; this only reads them.

use serde_json::Value as Json;

use super::filter::{self, AttrPath, Filter};

pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// More operations than this in one request are refused (`tooMany`).
pub const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Replace,
    Remove,
}

/// Where an operation applies: an attribute, or the values of a multi-valued attribute a filter
/// selects (then perhaps one of their sub-attributes).
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Attribute(AttrPath),
    Values { attribute: AttrPath, filter: Filter, sub: Option<String> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub op: Op,
    pub target: Target,
    /// Absent only for a `remove`.
    pub value: Option<Json>,
}

/// A request that is not a PATCH the directory can apply, with the RFC 7644 §3.12 `scimType`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct PatchError {
    pub scim_type: &'static str,
    pub detail: String,
}

fn error(scim_type: &'static str, detail: impl Into<String>) -> PatchError {
    PatchError { scim_type, detail: detail.into() }
}

/// Reads a PATCH request body.
pub fn parse(body: &Json) -> Result<Vec<Operation>, PatchError> {
    let schemas = body.get("schemas").and_then(Json::as_array).ok_or_else(|| error("invalidSyntax", "schemas is required"))?;
    if !schemas.iter().any(|s| s.as_str() == Some(PATCH_OP)) {
        return Err(error("invalidSyntax", format!("schemas must hold {PATCH_OP}")));
    }
    let operations = member(body, "Operations").and_then(Json::as_array).ok_or_else(|| error("invalidSyntax", "Operations is required"))?;
    if operations.len() > MAX_OPERATIONS {
        return Err(error("tooMany", format!("at most {MAX_OPERATIONS} operations")));
    }
    let mut read = Vec::new();
    for operation in operations {
        read.extend(parse_operation(operation)?);
    }
    Ok(read)
}

/// `object`'s member `name`, case-insensitively (clients write `Operations`, `operations`, `Op`).
fn member<'a>(object: &'a Json, name: &str) -> Option<&'a Json> {
    object.as_object()?.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value)
}

fn parse_operation(operation: &Json) -> Result<Vec<Operation>, PatchError> {
    let op = match member(operation, "op").and_then(Json::as_str).map(str::to_ascii_lowercase).as_deref() {
        Some("add") => Op::Add,
        Some("replace") => Op::Replace,
        Some("remove") => Op::Remove,
        other => return Err(error("invalidSyntax", format!("op must be add, replace or remove, not {other:?}"))),
    };
    let value = member(operation, "value").cloned();
    let path = match member(operation, "path") {
        None | Some(Json::Null) => None,
        Some(Json::String(path)) if path.trim().is_empty() => None,
        Some(Json::String(path)) => Some(target(path)?),
        Some(_) => return Err(error("invalidPath", "path must be a string")),
    };
    match (op, path, value) {
        (Op::Remove, None, _) => Err(error("noTarget", "remove needs a path")),
        (Op::Remove, Some(target), value) => Ok(vec![Operation { op, target, value }]),
        (_, _, None) => Err(error("invalidValue", "add and replace need a value")),
        (_, Some(target), Some(value)) => Ok(vec![normalised(op, target, value)]),
        (_, None, Some(Json::Object(values))) => {
            // Path-less: each key is a path (or an extension's URN holding paths of its own).
            let mut read = Vec::new();
            for (key, value) in values {
                match value {
                    Json::Object(inner) if key.to_ascii_lowercase().starts_with("urn:") => {
                        for (name, value) in inner {
                            let target = Target::Attribute(path_of(&format!("{key}:{name}"))?);
                            read.push(normalised(op, target, value.clone()));
                        }
                    }
                    _ if key.eq_ignore_ascii_case("schemas") => {}
                    _ => read.push(normalised(op, Target::Attribute(path_of(key.as_str())?), value.clone())),
                }
            }
            Ok(read)
        }
        (_, None, Some(_)) => Err(error("invalidValue", "a path-less add or replace takes an object of attributes")),
    }
}

fn path_of(text: &str) -> Result<AttrPath, PatchError> {
    filter::parse_path(text).map_err(|e| error("invalidPath", format!("{text:?}: {e}")))
}

fn target(path: &str) -> Result<Target, PatchError> {
    if path.contains('[') {
        match filter::parse(path) {
            Ok(Filter::ValuePath { path: attribute, filter, sub }) => Ok(Target::Values { attribute, filter: *filter, sub }),
            Ok(_) => Err(error("invalidPath", format!("{path:?} is a filter, not a path"))),
            Err(e) => Err(error("invalidPath", format!("{path:?}: {e}"))),
        }
    } else {
        path_of(path).map(Target::Attribute)
    }
}

fn is(path: &AttrPath, urn: Option<&str>, name: &str) -> bool {
    path.name.eq_ignore_ascii_case(name)
        && path.sub.is_none()
        && match (urn, &path.urn) {
            (None, None) => true,
            (Some(expected), Some(actual)) => actual.eq_ignore_ascii_case(expected),
            _ => false,
        }
}

/// The value as the directory stores it: Entra's boolean strings as booleans, a bare manager id as
/// the manager object.
fn normalised(op: Op, target: Target, value: Json) -> Operation {
    let value = match (&target, value) {
        (Target::Attribute(path), Json::String(text)) if is(path, None, "active") && matches!(text.to_ascii_lowercase().as_str(), "true" | "false") => {
            Json::Bool(text.eq_ignore_ascii_case("true"))
        }
        (Target::Attribute(path), Json::String(id)) if is(path, Some(ENTERPRISE_USER), "manager") => serde_json::json!({ "value": id }),
        (_, value) => value,
    };
    Operation { op, target, value: Some(value) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attr(text: &str) -> Target {
        Target::Attribute(filter::parse_path(text).expect("path"))
    }

    fn patch(operations: Json) -> Json {
        json!({ "schemas": [PATCH_OP], "Operations": operations })
    }

    #[test]
    fn the_shapes_the_provisioning_clients_send() {
        let department = format!("{ENTERPRISE_USER}:department");
        let manager = format!("{ENTERPRISE_USER}:manager");
        for (body, expected) in [
            // Entra: disable a user; the old boolean string; capitalised ops.
            (patch(json!([{ "op": "Replace", "path": "active", "value": false }])), vec![(Op::Replace, attr("active"), Some(json!(false)))]),
            (patch(json!([{ "op": "Replace", "path": "active", "value": "False" }])), vec![(Op::Replace, attr("active"), Some(json!(false)))]),
            (patch(json!([{ "op": "replace", "value": { "active": "True" } }])), vec![(Op::Replace, attr("active"), Some(json!(true)))]),
            // Entra: a path-less replace whose keys are paths, URN-qualified ones included.
            (
                patch(json!([{ "op": "Replace", "value": {
                    "displayName": "Ana O.", "name.givenName": "Ana", department.clone(): "Sales",
                } }])),
                vec![
                    (Op::Replace, attr("displayName"), Some(json!("Ana O."))),
                    (Op::Replace, attr("name.givenName"), Some(json!("Ana"))),
                    (Op::Replace, attr(&department), Some(json!("Sales"))),
                ],
            ),
            // An extension object by its URN.
            (
                patch(json!([{ "op": "add", "value": { ENTERPRISE_USER: { "employeeNumber": "701984" } } }])),
                vec![(Op::Add, attr(&format!("{ENTERPRISE_USER}:employeeNumber")), Some(json!("701984")))],
            ),
            // Entra: an email by a value filter; the manager as a bare id, and as an object.
            (
                patch(json!([{ "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ana@acme.com" }])),
                vec![(
                    Op::Replace,
                    Target::Values {
                        attribute: filter::parse_path("emails").expect("path"),
                        filter: filter::parse(r#"type eq "work""#).expect("filter"),
                        sub: Some("value".into()),
                    },
                    Some(json!("ana@acme.com")),
                )],
            ),
            (patch(json!([{ "op": "Add", "path": manager.clone(), "value": "26118915" }])), vec![(Op::Add, attr(&manager), Some(json!({ "value": "26118915" })))]),
            (patch(json!([{ "op": "Add", "path": manager.clone(), "value": { "value": "26118915" } }])), vec![(Op::Add, attr(&manager), Some(json!({ "value": "26118915" })))]),
            // Groups: members added in bulk, removed by a value array or by a filter.
            (
                patch(json!([{ "op": "Add", "path": "members", "value": [{ "value": "u1" }, { "value": "u2" }] }])),
                vec![(Op::Add, attr("members"), Some(json!([{ "value": "u1" }, { "value": "u2" }])))],
            ),
            (
                patch(json!([{ "op": "Remove", "path": "members", "value": [{ "value": "u1" }] }])),
                vec![(Op::Remove, attr("members"), Some(json!([{ "value": "u1" }])))],
            ),
            (
                patch(json!([{ "op": "Remove", "path": "members[value eq \"u2\"]" }])),
                vec![(
                    Op::Remove,
                    Target::Values { attribute: filter::parse_path("members").expect("path"), filter: filter::parse(r#"value eq "u2""#).expect("filter"), sub: None },
                    None,
                )],
            ),
            // Okta: lower-case members, a replace of the whole name.
            (
                json!({ "schemas": [PATCH_OP], "operations": [{ "op": "replace", "value": { "name": { "givenName": "Ana" } } }] }),
                vec![(Op::Replace, attr("name"), Some(json!({ "givenName": "Ana" })))],
            ),
        ] {
            let read = parse(&body).unwrap_or_else(|e| panic!("{body}: {e}"));
            let read: Vec<(Op, Target, Option<Json>)> = read.into_iter().map(|o| (o.op, o.target, o.value)).collect();
            assert_eq!(read, expected, "{body}");
        }
    }

    #[test]
    fn what_cannot_be_applied_says_why() {
        for (body, scim_type) in [
            (json!({ "Operations": [] }), "invalidSyntax"),
            (json!({ "schemas": ["urn:other"], "Operations": [] }), "invalidSyntax"),
            (json!({ "schemas": [PATCH_OP] }), "invalidSyntax"),
            (patch(json!([{ "op": "move", "path": "a", "value": 1 }])), "invalidSyntax"),
            (patch(json!([{ "op": "remove" }])), "noTarget"),
            (patch(json!([{ "op": "add", "path": "a" }])), "invalidValue"),
            (patch(json!([{ "op": "add", "value": "x" }])), "invalidValue"),
            (patch(json!([{ "op": "add", "path": 3, "value": "x" }])), "invalidPath"),
            (patch(json!([{ "op": "add", "path": "emails[type eq", "value": "x" }])), "invalidPath"),
            (patch(json!([{ "op": "add", "path": "a eq \"b\"", "value": "x" }])), "invalidPath"),
            (patch(json!([{ "op": "replace", "value": { "bad key": 1 } }])), "invalidPath"),
            (patch(Json::Array(vec![json!({ "op": "remove", "path": "a" }); MAX_OPERATIONS + 1])), "tooMany"),
        ] {
            assert_eq!(parse(&body).map(|_| ()).map_err(|e| e.scim_type), Err(scim_type), "{body}");
        }
    }
}
