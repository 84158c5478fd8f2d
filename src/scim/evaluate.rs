//! A SCIM filter evaluated against a resource in its JSON form (RFC 7644 §3.4.2.2): what the directory
//! runs in memory on the rows a query has already narrowed to a bounded page.
//!
//! - Attribute names match case-insensitively; a URN-qualified name looks in its extension object
//!   (and names of the core schema are also found at the top level).
//! - A multi-valued attribute matches when any of its values does; `emails.value` looks into each.
//! - Strings compare case-insensitively unless the attribute is case-exact (`id`, `externalId`,
//!   `meta.version`, `$ref`s: RFC 7643 §7's `caseExact: true` attributes of the core schemas).
//! - `gt`/`ge`/`lt`/`le` order numbers as numbers, and strings that are both RFC 3339 date-times as
//!   instants, otherwise lexicographically; booleans and null only compare with `eq`/`ne`.
//! - `pr`: present and not null, not an empty string, not an empty array or object.

use serde_json::Value as Json;

use super::filter::{AttrPath, CompareOp, Filter, Value};

/// The core schemas, whose attributes also stand at the top level of a resource.
const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// Attributes compared case-exactly (RFC 7643 §4.1, §3.1, §7).
fn case_exact(name: &str, sub: Option<&str>) -> bool {
    let name = name.to_ascii_lowercase();
    let sub = sub.map(str::to_ascii_lowercase);
    matches!(name.as_str(), "id" | "externalid" | "$ref")
        || matches!((name.as_str(), sub.as_deref()), ("meta", Some("version" | "location")) | (_, Some("$ref")))
}

/// The member of `object` named `name`, case-insensitively.
fn member<'a>(object: &'a Json, name: &str) -> Option<&'a Json> {
    object.as_object()?.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value)
}

/// The values `path` names in `resource` (flattened over multi-valued attributes).
fn values<'a>(resource: &'a Json, path: &AttrPath) -> Vec<&'a Json> {
    let base = match &path.urn {
        Some(urn) if urn.eq_ignore_ascii_case(CORE_USER) || urn.eq_ignore_ascii_case(CORE_GROUP) => Some(resource),
        Some(urn) => member(resource, urn),
        None => Some(resource),
    };
    let Some(top) = base.and_then(|b| member(b, &path.name)) else { return Vec::new() };
    let tops: Vec<&Json> = match top {
        Json::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    match &path.sub {
        None => tops,
        Some(sub) => tops
            .into_iter()
            .filter_map(|t| member(t, sub))
            .flat_map(|v| match v {
                Json::Array(items) => items.iter().collect::<Vec<_>>(),
                other => vec![other],
            })
            .collect(),
    }
}

fn present(value: &Json) -> bool {
    match value {
        Json::Null => false,
        Json::String(s) => !s.is_empty(),
        Json::Array(items) => !items.is_empty(),
        Json::Object(map) => !map.is_empty(),
        _ => true,
    }
}

fn instant(text: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

fn compare(actual: &Json, op: CompareOp, expected: &Value, exact: bool) -> bool {
    use std::cmp::Ordering;
    let order = |ordering: Ordering| match op {
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        _ => false,
    };
    match (actual, expected) {
        (Json::String(a), Value::Str(e)) => {
            let (a, e) = if exact { (a.clone(), e.clone()) } else { (a.to_lowercase(), e.to_lowercase()) };
            match op {
                CompareOp::Co => a.contains(&e),
                CompareOp::Sw => a.starts_with(&e),
                CompareOp::Ew => a.ends_with(&e),
                _ => match (instant(&a), instant(&e)) {
                    (Some(a), Some(e)) => order(a.cmp(&e)),
                    _ => order(a.cmp(&e)),
                },
            }
        }
        (Json::Number(a), Value::Number(e)) => match (a.as_f64(), e.as_f64()) {
            (Some(a), Some(e)) => a.partial_cmp(&e).is_some_and(order),
            _ => false,
        },
        (Json::Bool(a), Value::Bool(e)) => match op {
            CompareOp::Eq => a == e,
            CompareOp::Ne => a != e,
            _ => false,
        },
        (Json::Null, Value::Null) => op == CompareOp::Eq,
        (_, Value::Null) => op == CompareOp::Ne,
        _ => op == CompareOp::Ne,
    }
}

/// Whether `resource` matches `filter`.
pub fn matches(filter: &Filter, resource: &Json) -> bool {
    match filter {
        Filter::Present(path) => values(resource, path).into_iter().any(present),
        Filter::Compare { path, op, value } => {
            let found = values(resource, path);
            let exact = case_exact(&path.name, path.sub.as_deref());
            if found.is_empty() {
                // Absent compares as null: `ne` anything but null holds; `eq null` holds.
                return compare(&Json::Null, *op, value, exact);
            }
            if *op == CompareOp::Ne {
                // `ne` on a multi-valued attribute: no value equals it.
                return found.into_iter().all(|v| compare(v, CompareOp::Ne, value, exact));
            }
            found.into_iter().any(|v| compare(v, *op, value, exact))
        }
        Filter::And(a, b) => matches(a, resource) && matches(b, resource),
        Filter::Or(a, b) => matches(a, resource) || matches(b, resource),
        Filter::Not(inner) => !matches(inner, resource),
        Filter::ValuePath { path, filter, sub: _ } => {
            // The inner filter runs on each value of the attribute: one value must satisfy all of it.
            let whole = AttrPath { urn: path.urn.clone(), name: path.name.clone(), sub: None };
            values(resource, &whole).into_iter().any(|value| matches(filter, value))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::parse;

    fn ana() -> Json {
        serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "Ana-701984",
            "userName": "Ana@Acme.com",
            "name": { "givenName": "Ana", "familyName": "O'Malley" },
            "active": true,
            "title": "",
            "emails": [
                { "value": "ana@acme.com", "type": "work", "primary": true },
                { "value": "ana@home.example", "type": "home" }
            ],
            "groups": [],
            "meta": { "lastModified": "2026-11-30T10:00:00Z", "version": "W/\"3694e05e\"" },
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "employeeNumber": "701984", "manager": { "value": "26118915" } },
            "x-age": 42
        })
    }

    #[test]
    fn filters_against_a_user() {
        let user = ana();
        for (filter, expected) in [
            // Case-insensitive names and (for most attributes) values.
            (r#"userName eq "ana@acme.com""#, true),
            (r#"USERNAME Eq "ANA@ACME.COM""#, true),
            (r#"userName eq "bob@acme.com""#, false),
            (r#"userName ne "bob@acme.com""#, true),
            // Case-exact attributes.
            (r#"externalId eq "Ana-701984""#, true),
            (r#"externalId eq "ana-701984""#, false),
            (r#"id eq "2819C223-7F76-453A-919D-413861904646""#, false),
            // co / sw / ew; a sub-attribute.
            (r#"name.familyName co "malley""#, true),
            (r#"userName sw "ana@""#, true),
            (r#"userName ew "@acme.com""#, true),
            (r#"name.givenName sw "B""#, false),
            // Multi-valued: any value; value paths: one value satisfying the whole inner filter.
            (r#"emails.value eq "ana@home.example""#, true),
            (r#"emails[type eq "work" and value co "acme"]"#, true),
            (r#"emails[type eq "home" and value co "acme"]"#, false),
            (r#"emails[type eq "work"].value"#, true),
            (r#"emails.type ne "work""#, false),
            // pr: present and not empty.
            ("title pr", false),
            ("groups pr", false),
            ("emails pr", true),
            ("nickName pr", false),
            // Absent compares as null.
            ("nickName eq null", true),
            (r#"nickName ne "x""#, true),
            (r#"nickName eq "x""#, false),
            // Booleans, numbers, dates as instants (and not as text: "2026-11-30T11:00:00+01:00" is the same instant).
            ("active eq true", true),
            ("active eq false", false),
            ("active gt true", false),
            ("x-age gt 41.5", true),
            ("x-age le 41", false),
            (r#"meta.lastModified gt "2026-11-01T00:00:00Z""#, true),
            (r#"meta.lastModified eq "2026-11-30T11:00:00+01:00""#, true),
            (r#"meta.lastModified lt "2026-11-30T09:59:59Z""#, false),
            // The enterprise extension, by its URN; the core schema's URN finds top-level names.
            (r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#, true),
            (r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915""#, true),
            (r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "ANA""#, true),
            (r#"employeeNumber eq "701984""#, false),
            // Logic.
            (r#"userName sw "ana" and not (active eq false)"#, true),
            (r#"userName sw "bob" or emails[type eq "home"]"#, true),
            (r#"not (userName sw "ana" or title pr)"#, false),
            // Types that do not compare.
            (r#"active eq "true""#, false),
            ("userName gt 3", false),
        ] {
            let parsed = parse(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
            assert_eq!(matches(&parsed, &user), expected, "{filter}");
        }
    }
}
