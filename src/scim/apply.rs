//! PATCH operations (`patch::parse`) applied to a resource's canonical document (RFC 7644 §3.5.2):
//! a pure function, so a request either applies whole or — any operation refused — changes nothing.
//!
//! - `add` to a multi-valued attribute appends the values not already there; to a complex one it
//!   merges sub-attributes; otherwise it sets. `replace` sets, except that a complex attribute's
//!   sub-attributes are merged (§3.5.2.3: those not given are left unchanged).
//! - A value filter (`emails[type eq "work"].value`) selects values; when an `add` or `replace`
//!   selects none and the filter is a conjunction of `eq`s, a value is made from them — what Entra
//!   expects when it sets a work email on a user that has none. Removing what a filter does not
//!   find changes nothing.
//! - Read-only attributes (`id`, `meta`, a user's `groups`) are `mutability` errors; attributes the
//!   server does not keep are ignored, as they are on POST (docs/scim.md).
//! - The result is read again like a POSTed resource (`schema::normalise`): types, required
//!   attributes and one primary value hold after every PATCH.

use serde_json::{Map, Value as Json};

use super::{
    ScimError, evaluate,
    filter::{CompareOp, Filter, Value},
    patch::{Op, Operation, Target},
    schema::{self, Attribute, Found, Kind, Mutability, ResourceSchema, Resolved},
};

/// Applies `operations` to the document of resource `id`.
pub fn apply(schema: &ResourceSchema, id: &str, document: &Json, operations: &[Operation]) -> Result<Json, ScimError> {
    let mut document = document.clone();
    for operation in operations {
        // Entra and Okta repeat the resource's own id in a path-less replace: that changes nothing.
        if let Target::Attribute(path) = &operation.target
            && path.name.eq_ignore_ascii_case("id")
            && path.sub.is_none()
            && operation.op != Op::Remove
            && operation.value.as_ref().and_then(Json::as_str) == Some(id)
        {
            continue;
        }
        apply_one(schema, &mut document, operation)?;
    }
    schema::normalise(schema, &document)
}

fn read_only(resolved: &Resolved) -> bool {
    resolved.attribute.mutability == Mutability::ReadOnly || resolved.sub.is_some_and(|s| s.mutability == Mutability::ReadOnly)
}

fn apply_one(schema: &ResourceSchema, document: &mut Json, operation: &Operation) -> Result<(), ScimError> {
    let (path, selection) = match &operation.target {
        Target::Attribute(path) => (path, None),
        Target::Values { attribute, filter, sub } => (attribute, Some((filter, sub.as_deref()))),
    };
    let resolved = match schema.resolve(path)? {
        Found::Unknown => return Ok(()),
        Found::Common("externalId") if selection.is_none() && path.sub.is_none() => {
            let root = object(document)?;
            match (operation.op, &operation.value) {
                (Op::Remove, _) | (_, Some(Json::Null)) => {
                    root.remove("externalId");
                }
                (_, Some(Json::String(text))) => {
                    root.insert("externalId".into(), Json::String(text.clone()));
                }
                _ => return Err(ScimError::invalid_value("externalId is a string")),
            }
            return Ok(());
        }
        Found::Common("schemas") => return Ok(()),
        Found::Extension(urn, attributes) if selection.is_none() => {
            let root = object(document)?;
            match (operation.op, &operation.value) {
                (Op::Remove, _) | (_, Some(Json::Null)) => {
                    root.remove(urn);
                }
                (op, Some(Json::Object(value))) => {
                    let read = schema::complex(attributes, value, urn)?;
                    let existing = root.entry(urn.to_owned()).or_insert_with(|| Json::Object(Map::new()));
                    match (op, existing.as_object_mut()) {
                        (Op::Add, Some(into)) => into.extend(read),
                        _ => *existing = Json::Object(read),
                    }
                }
                _ => return Err(ScimError::invalid_value(format!("{urn} is an object"))),
            }
            return Ok(());
        }
        Found::Extension(urn, _) => return Err(ScimError::invalid_path(format!("{urn} has no values to filter"))),
        Found::Common(name) => return Err(ScimError::mutability(format!("{name} is read-only"))),
        Found::Attribute(resolved) => resolved,
    };
    if read_only(&resolved) {
        return Err(ScimError::mutability(format!("{} is read-only", resolved.attribute.name)));
    }
    let container = container(document, resolved.extension, operation.op != Op::Remove)?;
    let Some(container) = container else { return Ok(()) };
    match selection {
        None => attribute(container, &resolved, operation),
        Some((filter, sub)) => {
            if !resolved.attribute.multi || !matches!(resolved.attribute.kind, Kind::Complex(_)) || path.sub.is_some() {
                return Err(ScimError::invalid_path(format!("{} has no values to filter", resolved.attribute.name)));
            }
            let sub = match sub {
                None => None,
                Some(name) => match resolved.attribute.sub(name) {
                    Some(sub) if sub.mutability == Mutability::ReadOnly => {
                        return Err(ScimError::mutability(format!("{}.{} is read-only", resolved.attribute.name, sub.name)));
                    }
                    Some(sub) => Some(sub),
                    None => return Ok(()),
                },
            };
            values(container, resolved.attribute, filter, sub, operation)
        }
    }
}

fn object(value: &mut Json) -> Result<&mut Map<String, Json>, ScimError> {
    value.as_object_mut().ok_or_else(|| ScimError::invalid_syntax("a resource is a JSON object"))
}

/// The object an attribute lives in: the document, or its extension object (made for an add or a
/// replace; absent for a remove, which then has nothing to do).
fn container<'a>(document: &'a mut Json, extension: Option<&str>, create: bool) -> Result<Option<&'a mut Map<String, Json>>, ScimError> {
    let root = object(document)?;
    let Some(urn) = extension else { return Ok(Some(root)) };
    if !root.contains_key(urn) {
        if !create {
            return Ok(None);
        }
        root.insert(urn.to_owned(), Json::Object(Map::new()));
    }
    Ok(root.get_mut(urn).and_then(Json::as_object_mut))
}

fn coerce(attribute: &'static Attribute, value: Option<&Json>) -> Result<Option<Json>, ScimError> {
    match value {
        None => Err(ScimError::invalid_value(format!("{} needs a value", attribute.name))),
        Some(value) => schema::value_of(attribute, value),
    }
}

fn merge(into: &mut Map<String, Json>, from: &Json) {
    if let Json::Object(from) = from {
        for (key, value) in from {
            into.insert(key.clone(), value.clone());
        }
    }
}

fn attribute(container: &mut Map<String, Json>, resolved: &Resolved, operation: &Operation) -> Result<(), ScimError> {
    let attribute = resolved.attribute;
    let name = attribute.name;
    match (operation.op, resolved.sub) {
        (Op::Add | Op::Replace, None) => {
            let Some(value) = coerce(attribute, operation.value.as_ref())? else {
                if operation.op == Op::Replace {
                    container.remove(name);
                }
                return Ok(());
            };
            if attribute.multi {
                let Json::Array(new) = value else { return Ok(()) };
                if operation.op == Op::Replace {
                    container.insert(name.to_owned(), Json::Array(new));
                } else {
                    let existing = container.entry(name.to_owned()).or_insert_with(|| Json::Array(Vec::new()));
                    if let Json::Array(items) = existing {
                        for item in new {
                            if !items.contains(&item) {
                                items.push(item);
                            }
                        }
                        schema::one_primary(items);
                    }
                }
            } else if matches!(attribute.kind, Kind::Complex(_)) {
                let existing = container.entry(name.to_owned()).or_insert_with(|| Json::Object(Map::new()));
                match existing.as_object_mut() {
                    Some(into) => merge(into, &value),
                    None => *existing = value,
                }
            } else {
                container.insert(name.to_owned(), value);
            }
        }
        (Op::Add | Op::Replace, Some(sub)) => {
            let value = coerce(sub, operation.value.as_ref())?;
            let set = |object: &mut Map<String, Json>| match &value {
                Some(value) => {
                    object.insert(sub.name.to_owned(), value.clone());
                }
                None => {
                    object.remove(sub.name);
                }
            };
            if attribute.multi {
                let existing = container.entry(name.to_owned()).or_insert_with(|| Json::Array(Vec::new()));
                if let Json::Array(items) = existing {
                    if items.is_empty() {
                        items.push(Json::Object(Map::new()));
                    }
                    items.iter_mut().filter_map(Json::as_object_mut).for_each(set);
                }
            } else {
                let existing = container.entry(name.to_owned()).or_insert_with(|| Json::Object(Map::new()));
                if let Some(object) = existing.as_object_mut() {
                    set(object);
                }
            }
        }
        (Op::Remove, None) => match (&operation.value, container.get_mut(name)) {
            // Entra removes values of a multi-valued attribute by listing them.
            (Some(Json::Array(gone)), Some(Json::Array(items))) if attribute.multi => {
                let gone: Vec<&Json> = gone.iter().filter_map(|g| schema::member(g, "value")).collect();
                items.retain(|item| !schema::member(item, "value").is_some_and(|v| gone.contains(&v)));
            }
            _ => {
                container.remove(name);
            }
        },
        (Op::Remove, Some(sub)) => match container.get_mut(name) {
            Some(Json::Array(items)) => items.iter_mut().filter_map(Json::as_object_mut).for_each(|o| {
                o.remove(sub.name);
            }),
            Some(Json::Object(object)) => {
                object.remove(sub.name);
            }
            _ => {}
        },
    }
    Ok(())
}

/// The sub-attribute values a conjunction of `eq`s names: a new value that the filter would select.
fn seed(filter: &Filter) -> Option<Map<String, Json>> {
    match filter {
        Filter::Compare { path, op: CompareOp::Eq, value } if path.urn.is_none() && path.sub.is_none() => {
            let value = match value {
                Value::Str(text) => Json::String(text.clone()),
                Value::Bool(b) => Json::Bool(*b),
                _ => return None,
            };
            Some(Map::from_iter([(path.name.clone(), value)]))
        }
        Filter::And(a, b) => {
            let mut seeded = seed(a)?;
            seeded.extend(seed(b)?);
            Some(seeded)
        }
        _ => None,
    }
}

fn values(
    container: &mut Map<String, Json>,
    attribute: &'static Attribute,
    filter: &Filter,
    sub: Option<&'static Attribute>,
    operation: &Operation,
) -> Result<(), ScimError> {
    let name = attribute.name;
    let items = container.entry(name.to_owned()).or_insert_with(|| Json::Array(Vec::new()));
    let Json::Array(items) = items else { return Err(ScimError::invalid_path(format!("{name} is not multi-valued"))) };
    let selected: Vec<usize> = (0..items.len()).filter(|&i| evaluate::matches(filter, &items[i])).collect();
    match (operation.op, sub) {
        (Op::Remove, None) => {
            let mut index = 0;
            items.retain(|_| {
                index += 1;
                !selected.contains(&(index - 1))
            });
        }
        (Op::Remove, Some(sub)) => {
            for &i in &selected {
                if let Some(object) = items[i].as_object_mut() {
                    object.remove(sub.name);
                }
            }
        }
        (Op::Add | Op::Replace, sub) => {
            // What to write into each selected value: one sub-attribute, or an object to merge.
            let written: Json = match sub {
                Some(sub) => {
                    let value = coerce(sub, operation.value.as_ref())?;
                    Json::Object(Map::from_iter([(sub.name.to_owned(), value.unwrap_or(Json::Null))]))
                }
                None => match coerce(attribute, operation.value.as_ref())? {
                    Some(Json::Array(mut read)) if read.len() == 1 => read.remove(0),
                    Some(_) => return Err(ScimError::invalid_value(format!("a filtered {name} takes one value"))),
                    None => return Ok(()),
                },
            };
            if selected.is_empty() {
                let Some(mut made) = seed(filter) else {
                    return Err(ScimError::no_target(format!("no value of {name} matches the filter")));
                };
                merge(&mut made, &written);
                items.push(Json::Object(made));
            } else {
                for &i in &selected {
                    if let Some(object) = items[i].as_object_mut() {
                        merge(object, &written);
                    }
                }
            }
            // Nulls written are removals.
            for item in items.iter_mut().filter_map(Json::as_object_mut) {
                item.retain(|_, v| !v.is_null());
            }
            schema::one_primary(items);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scim::{
        patch,
        schema::{ENTERPRISE_USER, USER, USER_SCHEMA},
    };

    fn patched(document: Json, operations: Json) -> Result<Json, ScimError> {
        let body = json!({ "schemas": [patch::PATCH_OP], "Operations": operations });
        apply(&USER_SCHEMA, "u-1", &document, &patch::parse(&body)?)
    }

    fn ada() -> Json {
        json!({
            "schemas": [USER],
            "userName": "ada@example.com",
            "active": true,
            "name": { "givenName": "Ada", "familyName": "Lovelace" },
            "emails": [{ "value": "ada@example.com", "type": "work", "primary": true }],
        })
    }

    #[test]
    fn operations_change_the_document_as_rfc_7644_says() {
        let cases: Vec<(&str, Json, Json)> = vec![
            (
                "Entra: a path-less Replace with path keys and a boolean string",
                json!([{ "op": "Replace", "value": { "active": "False", "name.givenName": "Augusta", "displayName": "Augusta Ada" } }]),
                json!({ "active": false, "name": { "givenName": "Augusta", "familyName": "Lovelace" }, "displayName": "Augusta Ada" }),
            ),
            (
                "a replace of a complex attribute merges its sub-attributes",
                json!([{ "op": "replace", "path": "name", "value": { "formatted": "Ada Lovelace" } }]),
                json!({ "name": { "givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada Lovelace" } }),
            ),
            (
                "Entra: a work email set through a filter that selects the one there",
                json!([{ "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ada@lovelace.example" }]),
                json!({ "emails": [{ "value": "ada@lovelace.example", "type": "work", "primary": true }] }),
            ),
            (
                "a filter that selects nothing makes the value it describes",
                json!([{ "op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+44 20 7946 0000" }]),
                json!({ "phoneNumbers": [{ "type": "mobile", "value": "+44 20 7946 0000" }] }),
            ),
            (
                "an add to a multi-valued attribute appends, and the new primary is the only one",
                json!([{ "op": "add", "path": "emails", "value": [{ "value": "ada@home.example", "type": "home", "primary": true }] }]),
                json!({ "emails": [{ "value": "ada@example.com", "type": "work", "primary": false }, { "value": "ada@home.example", "type": "home", "primary": true }] }),
            ),
            (
                "a remove through a filter removes what it selects",
                json!([{ "op": "remove", "path": "emails[type eq \"work\"]" }]),
                json!({ "emails": null }),
            ),
            (
                "Entra: the manager as a bare id, in the extension by URN-qualified path",
                json!([{ "op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m-42" }]),
                json!({ ENTERPRISE_USER: { "manager": { "value": "m-42" } }, "schemas": [USER, ENTERPRISE_USER] }),
            ),
            (
                "a path-less add keyed by the extension's URN",
                json!([{ "op": "add", "value": { ENTERPRISE_USER: { "department": "Engines" } } }]),
                json!({ ENTERPRISE_USER: { "department": "Engines" }, "schemas": [USER, ENTERPRISE_USER] }),
            ),
            (
                "the whole extension replaced by its URN",
                json!([{ "op": "replace", "path": ENTERPRISE_USER, "value": { "department": "Looms", "costCenter": "7" } }]),
                json!({ ENTERPRISE_USER: { "department": "Looms", "costCenter": "7" }, "schemas": [USER, ENTERPRISE_USER] }),
            ),
            (
                "removing a sub-attribute",
                json!([{ "op": "remove", "path": "name.familyName" }]),
                json!({ "name": { "givenName": "Ada" } }),
            ),
            (
                "an attribute the server does not keep is ignored",
                json!([{ "op": "replace", "path": "favouriteColour", "value": "green" }, { "op": "add", "path": "urn:example:custom:1.0:User:x", "value": 1 }]),
                json!({}),
            ),
            (
                "Okta: a path-less replace that repeats the resource's own id",
                json!([{ "op": "replace", "value": { "id": "u-1", "displayName": "Ada" } }]),
                json!({ "displayName": "Ada" }),
            ),
            (
                "externalId is set and removed",
                json!([{ "op": "replace", "path": "externalId", "value": "E-1" }]),
                json!({ "externalId": "E-1" }),
            ),
        ];
        for (what, operations, changes) in cases {
            let mut expected = ada();
            for (key, value) in changes.as_object().expect("changes") {
                if value.is_null() {
                    expected.as_object_mut().expect("object").remove(key);
                } else {
                    expected[key] = value.clone();
                }
            }
            assert_eq!(patched(ada(), operations).expect(what), expected, "{what}");
        }
    }

    #[test]
    fn refused_operations_say_why_with_the_scim_type() {
        for (operations, scim_type) in [
            (json!([{ "op": "replace", "path": "id", "value": "x" }]), "mutability"),
            (json!([{ "op": "replace", "value": { "id": "u-2", "displayName": "A" } }]), "mutability"),
            (json!([{ "op": "add", "path": "groups", "value": [{ "value": "g" }] }]), "mutability"),
            (json!([{ "op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z" }]), "mutability"),
            (json!([{ "op": "remove", "path": "userName" }]), "invalidValue"),
            (json!([{ "op": "replace", "path": "active", "value": "maybe" }]), "invalidValue"),
            (json!([{ "op": "replace", "path": "emails[type eq \"work\"].value", "value": 5 }]), "invalidValue"),
            (json!([{ "op": "replace", "path": "addresses[type pr].locality", "value": "London" }]), "noTarget"),
            (json!([{ "op": "replace", "path": "userName[value eq \"x\"]", "value": "y" }]), "invalidPath"),
            (json!([{ "op": "remove" }]), "noTarget"),
        ] {
            let error = patched(ada(), operations.clone()).expect_err("refused");
            assert_eq!(error.scim_type, Some(scim_type), "{operations}: {}", error.detail);
        }
    }
}
