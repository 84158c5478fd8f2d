//! A list or `.search` request (RFC 7644 §3.4.2–§3.4.3) read into what the directory runs: the part
//! of the filter the indexes answer (`Narrowing`), whether that part is the whole filter, the order,
//! the page, and which attributes to return.
//!
//! Indexed: `id`, `externalId` (case-exact), `userName` and `displayName` (case-folded) compared with
//! `eq`, and `emails.value eq` / `emails[value eq …]`; `and` narrows by whichever side is indexed,
//! `or` only when both are. What is not indexed is evaluated on the rows the narrowing selects, at
//! most `MAX_SCAN` of them: a filter that narrows less than that is `tooMany` (§3.12) rather than a
//! scan of the whole directory.

use serde_json::Value as Json;

use super::{
    ScimError,
    filter::{self, AttrPath, CompareOp, Filter, Value},
    schema::{self, ResourceSchema},
};
use crate::store::scim::{Indexed, Narrowing, Order};

/// Results per page when the request names no `count`, and at most (`filter.maxResults`).
pub const DEFAULT_COUNT: u64 = 100;
pub const MAX_COUNT: u64 = 200;
/// Rows read to evaluate a filter the indexes do not answer whole.
pub const MAX_SCAN: u64 = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    pub narrowing: Narrowing,
    /// The narrowing selects exactly what the filter does: the database pages and counts.
    pub exact: bool,
    /// A sort the database does (`None`: in memory, by `sort_path`).
    pub order: Option<Order>,
    pub sort_path: Option<AttrPath>,
    pub ascending: bool,
    /// 1-based (§3.4.2.4).
    pub start_index: u64,
    pub count: u64,
    pub attributes: Vec<AttrPath>,
    pub excluded: Vec<AttrPath>,
}

/// The request's parameters, from the query string or a `.search` body.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    pub start_index: Option<String>,
    pub count: Option<String>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

impl Params {
    /// A `.search` body (§3.4.3): the same parameters as JSON members; attribute lists as arrays.
    pub fn from_search(body: &Json) -> Result<Self, ScimError> {
        let schemas = schema::member(body, "schemas").and_then(Json::as_array);
        if !schemas.is_some_and(|s| s.iter().any(|v| v.as_str() == Some(schema::SEARCH_REQUEST))) {
            return Err(ScimError::invalid_syntax(format!("schemas must hold {}", schema::SEARCH_REQUEST)));
        }
        let text = |name: &str| -> Result<Option<String>, ScimError> {
            match schema::member(body, name) {
                None | Some(Json::Null) => Ok(None),
                Some(Json::String(s)) => Ok(Some(s.clone())),
                Some(Json::Number(n)) => Ok(Some(n.to_string())),
                Some(Json::Array(items)) => Ok(Some(
                    items.iter().map(|i| i.as_str().map(str::to_owned).ok_or_else(|| ScimError::invalid_value(format!("{name} lists strings")))).collect::<Result<Vec<_>, _>>()?.join(","),
                )),
                Some(_) => Err(ScimError::invalid_value(format!("{name} has the wrong type"))),
            }
        };
        Ok(Self {
            filter: text("filter")?,
            sort_by: text("sortBy")?,
            sort_order: text("sortOrder")?,
            start_index: text("startIndex")?,
            count: text("count")?,
            attributes: text("attributes")?,
            excluded_attributes: text("excludedAttributes")?,
        })
    }
}

fn number(text: Option<&str>, name: &str) -> Result<Option<i64>, ScimError> {
    text.map(|t| t.trim().parse::<i64>().map_err(|_| ScimError::invalid_value(format!("{name} is an integer")))).transpose()
}

/// A comma-separated attribute list (`attributes`, `excludedAttributes`).
pub fn attribute_list(text: Option<&str>) -> Result<Vec<AttrPath>, ScimError> {
    let Some(text) = text else { return Ok(Vec::new()) };
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| filter::parse_path(s).map_err(|e| ScimError::invalid_value(format!("{s:?}: {e}"))))
        .collect()
}

pub fn read(schema: &ResourceSchema, params: &Params) -> Result<ListQuery, ScimError> {
    let filter = params.filter.as_deref().filter(|f| !f.trim().is_empty()).map(filter::parse).transpose()?;
    let users = schema.core == schema::USER;
    let (narrowing, exact) = match &filter {
        None => (Narrowing::All, true),
        Some(filter) => match narrow(filter, users) {
            Some((narrowing, exact)) => (narrowing, exact),
            None => (Narrowing::All, false),
        },
    };
    let sort_path = params.sort_by.as_deref().filter(|s| !s.trim().is_empty()).map(filter::parse_path).transpose().map_err(|e| ScimError::invalid_value(format!("sortBy: {e}")))?;
    let order = match &sort_path {
        None => Some(Order::Created),
        Some(path) => sortable(path, users),
    };
    let ascending = match params.sort_order.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("ascending") => true,
        Some("descending") => false,
        Some(other) => return Err(ScimError::invalid_value(format!("sortOrder is ascending or descending, not {other:?}"))),
    };
    // §3.4.2.4: a startIndex below 1 is 1; a negative count is 0.
    let start_index = number(params.start_index.as_deref(), "startIndex")?.unwrap_or(1).max(1) as u64;
    let count = (number(params.count.as_deref(), "count")?.map_or(DEFAULT_COUNT as i64, |c| c.max(0)) as u64).min(MAX_COUNT);
    Ok(ListQuery {
        filter,
        narrowing,
        exact,
        order,
        sort_path,
        ascending,
        start_index,
        count,
        attributes: attribute_list(params.attributes.as_deref())?,
        excluded: attribute_list(params.excluded_attributes.as_deref())?,
    })
}

fn is(path: &AttrPath, name: &str, sub: Option<&str>, core: &str) -> bool {
    path.name.eq_ignore_ascii_case(name)
        && match (&path.sub, sub) {
            (None, None) => true,
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
        && path.urn.as_deref().is_none_or(|urn| urn.eq_ignore_ascii_case(core))
}

/// The indexed column an `eq` on `path` can use, and how its value is keyed.
fn indexed(path: &AttrPath, users: bool) -> Option<(Indexed, bool)> {
    let core = if users { schema::USER } else { schema::GROUP };
    if is(path, "id", None, core) {
        Some((Indexed::Id, false))
    } else if is(path, "externalId", None, core) {
        Some((Indexed::ExternalId, false))
    } else if users && is(path, "userName", None, core) {
        Some((Indexed::NameKey, true))
    } else if is(path, "displayName", None, core) {
        Some((if users { Indexed::DisplayNameKey } else { Indexed::NameKey }, true))
    } else {
        None
    }
}

/// The narrowing for `filter`, and whether it is exact; `None`: the indexes cannot narrow it.
pub fn narrow(filter: &Filter, users: bool) -> Option<(Narrowing, bool)> {
    match filter {
        Filter::Compare { path, op: CompareOp::Eq, value: Value::Str(text) } => {
            if users && is(path, "emails", Some("value"), schema::USER) {
                return Some((Narrowing::Email(text.to_lowercase()), true));
            }
            let (column, folded) = indexed(path, users)?;
            Some((Narrowing::Is(column, if folded { text.to_lowercase() } else { text.clone() }), true))
        }
        Filter::ValuePath { path, filter: inner, sub: None } if users && is(path, "emails", None, schema::USER) => match inner.as_ref() {
            Filter::Compare { path: value, op: CompareOp::Eq, value: Value::Str(text) } if value.urn.is_none() && value.sub.is_none() && value.name.eq_ignore_ascii_case("value") => {
                Some((Narrowing::Email(text.to_lowercase()), true))
            }
            _ => None,
        },
        Filter::And(a, b) => match (narrow(a, users), narrow(b, users)) {
            (Some((a, ae)), Some((b, be))) => Some((Narrowing::And(vec![a, b]), ae && be)),
            (Some((a, _)), None) | (None, Some((a, _))) => Some((a, false)),
            (None, None) => None,
        },
        Filter::Or(a, b) => {
            let ((a, ae), (b, be)) = (narrow(a, users)?, narrow(b, users)?);
            Some((Narrowing::Or(vec![a, b]), ae && be))
        }
        _ => None,
    }
}

fn sortable(path: &AttrPath, users: bool) -> Option<Order> {
    let core = if users { schema::USER } else { schema::GROUP };
    if is(path, "meta", Some("created"), core) {
        return Some(Order::Created);
    }
    match indexed(path, users)? {
        (Indexed::Id, _) => Some(Order::Id),
        (Indexed::ExternalId, _) => Some(Order::ExternalId),
        (Indexed::NameKey, _) => Some(Order::NameKey),
        (Indexed::DisplayNameKey, _) => Some(Order::DisplayNameKey),
    }
}

/// The resource with only the attributes asked for (§3.4.2.5): `attributes` keeps those named (and
/// `id`, `schemas`, `meta`: returned always); `excludedAttributes` drops those named.
pub fn project(resource: &mut Json, attributes: &[AttrPath], excluded: &[AttrPath]) {
    let Some(object) = resource.as_object_mut() else { return };
    let always = |key: &str| ["id", "schemas", "meta"].iter().any(|a| a.eq_ignore_ascii_case(key));
    if !attributes.is_empty() {
        let keys: Vec<String> = object.keys().cloned().collect();
        for key in keys {
            if always(&key) {
                continue;
            }
            let is_extension = key.to_ascii_lowercase().starts_with("urn:");
            if is_extension {
                // Keep the extension's attributes that are named.
                let named: Vec<&AttrPath> = attributes.iter().filter(|p| p.urn.as_deref().is_some_and(|u| u.eq_ignore_ascii_case(&key))).collect();
                let whole = attributes.iter().any(|p| p.urn.is_none() && format!("{}", p).eq_ignore_ascii_case(&key));
                if whole {
                    continue;
                }
                match object.get_mut(&key).and_then(Json::as_object_mut) {
                    Some(inner) if !named.is_empty() => inner.retain(|name, value| keep(name, value, &named)),
                    _ => {
                        object.remove(&key);
                    }
                }
                continue;
            }
            let named: Vec<&AttrPath> = attributes.iter().filter(|p| p.urn.as_deref().is_none_or(|u| !u.eq_ignore_ascii_case(schema::ENTERPRISE_USER))).collect();
            let value = object.get_mut(&key).map(|v| keep(&key, v, &named));
            if value != Some(true) {
                object.remove(&key);
            }
        }
    }
    for path in excluded {
        let container = match &path.urn {
            Some(urn) if !urn.eq_ignore_ascii_case(schema::USER) && !urn.eq_ignore_ascii_case(schema::GROUP) => {
                object.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(urn)).and_then(|(_, v)| v.as_object_mut())
            }
            _ => Some(&mut *object),
        };
        let Some(container) = container else { continue };
        let Some(key) = container.keys().find(|k| k.eq_ignore_ascii_case(&path.name) && !always(k)).cloned() else { continue };
        match &path.sub {
            None => {
                container.remove(&key);
            }
            Some(sub) => strip_sub(container.get_mut(&key), sub),
        }
    }
}

/// Whether to keep `name`'s value (narrowed to the sub-attributes named) for these paths.
fn keep(name: &str, value: &mut Json, paths: &[&AttrPath]) -> bool {
    let mine: Vec<&&AttrPath> = paths.iter().filter(|p| p.name.eq_ignore_ascii_case(name)).collect();
    if mine.is_empty() {
        return false;
    }
    if mine.iter().any(|p| p.sub.is_none()) {
        return true;
    }
    let subs: Vec<&str> = mine.iter().filter_map(|p| p.sub.as_deref()).collect();
    let narrow = |object: &mut serde_json::Map<String, Json>| object.retain(|k, _| subs.iter().any(|s| s.eq_ignore_ascii_case(k)));
    match value {
        Json::Object(object) => narrow(object),
        Json::Array(items) => items.iter_mut().filter_map(Json::as_object_mut).for_each(narrow),
        _ => {}
    }
    true
}

fn strip_sub(value: Option<&mut Json>, sub: &str) {
    let strip = |object: &mut serde_json::Map<String, Json>| object.retain(|k, _| !k.eq_ignore_ascii_case(sub));
    match value {
        Some(Json::Object(object)) => strip(object),
        Some(Json::Array(items)) => items.iter_mut().filter_map(Json::as_object_mut).for_each(strip),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scim::schema::{GROUP_SCHEMA, USER_SCHEMA};

    fn narrowed(filter: &str) -> Option<(Narrowing, bool)> {
        narrow(&filter::parse(filter).expect("filter"), true)
    }

    #[test]
    fn the_indexed_part_of_a_filter_is_found() {
        use Indexed::*;
        let is = |c, v: &str| Narrowing::Is(c, v.to_owned());
        let cases: Vec<(&str, Option<(Narrowing, bool)>)> = vec![
            // Entra's "test connection" and its lookups before a create.
            (r#"userName eq "0b7a4a2e-1F7C-4b7e-8f0e-3d2a5c1b9e77""#, Some((is(NameKey, "0b7a4a2e-1f7c-4b7e-8f0e-3d2a5c1b9e77"), true))),
            (r#"externalId eq "E-7""#, Some((is(ExternalId, "E-7"), true))),
            (r#"ID eq "abc""#, Some((is(Id, "abc"), true))),
            (r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "Ada""#, Some((is(NameKey, "ada"), true))),
            (r#"emails.value eq "Ada@Example.com""#, Some((Narrowing::Email("ada@example.com".into()), true))),
            (r#"emails[value eq "ada@example.com"]"#, Some((Narrowing::Email("ada@example.com".into()), true))),
            (r#"userName eq "a" and active eq true"#, Some((is(NameKey, "a"), false))),
            (r#"userName eq "a" or externalId eq "b""#, Some((Narrowing::Or(vec![is(NameKey, "a"), is(ExternalId, "b")]), true))),
            (r#"userName eq "a" or title eq "b""#, None),
            (r#"userName sw "a""#, None),
            (r#"not (userName eq "a")"#, None),
            (r#"emails[type eq "work"]"#, None),
            (r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7""#, None),
        ];
        for (filter, expected) in cases {
            assert_eq!(narrowed(filter), expected, "{filter}");
        }
        // A group's displayName is its name key.
        assert_eq!(narrow(&filter::parse(r#"displayName eq "Admins""#).expect("f"), false), Some((is(NameKey, "admins"), true)));
    }

    #[test]
    fn pages_and_sorting_follow_the_rfc_bounds() {
        let params = |start: &str, count: &str| Params { start_index: Some(start.into()), count: Some(count.into()), ..Params::default() };
        let q = read(&USER_SCHEMA, &params("0", "-5")).expect("query");
        assert_eq!((q.start_index, q.count), (1, 0));
        let q = read(&USER_SCHEMA, &params("3", "100000")).expect("query");
        assert_eq!((q.start_index, q.count), (3, MAX_COUNT));
        assert_eq!(read(&USER_SCHEMA, &params("x", "1")).expect_err("bad").scim_type, Some("invalidValue"));
        let sorted = read(&GROUP_SCHEMA, &Params { sort_by: Some("displayName".into()), sort_order: Some("Descending".into()), ..Params::default() }).expect("query");
        assert_eq!((sorted.order, sorted.ascending), (Some(Order::NameKey), false));
        let in_memory = read(&USER_SCHEMA, &Params { sort_by: Some("name.familyName".into()), ..Params::default() }).expect("query");
        assert_eq!(in_memory.order, None);
        assert_eq!(read(&USER_SCHEMA, &Params { filter: Some("userName eq".into()), ..Params::default() }).expect_err("bad").scim_type, Some("invalidFilter"));
    }

    #[test]
    fn projection_keeps_what_is_asked_and_always_the_identity() {
        let user = json!({
            "schemas": [schema::USER], "id": "1", "meta": { "resourceType": "User" },
            "userName": "ada", "name": { "givenName": "Ada", "familyName": "Lovelace" },
            "emails": [{ "value": "a@x.example", "type": "work" }],
            schema::ENTERPRISE_USER: { "department": "R&D", "employeeNumber": "7" },
        });
        let mut kept = user.clone();
        let paths = attribute_list(Some("userName,name.givenName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department")).expect("list");
        project(&mut kept, &paths, &[]);
        assert_eq!(kept, json!({
            "schemas": [schema::USER], "id": "1", "meta": { "resourceType": "User" },
            "userName": "ada", "name": { "givenName": "Ada" },
            schema::ENTERPRISE_USER: { "department": "R&D" },
        }));
        let mut dropped = user.clone();
        project(&mut dropped, &[], &attribute_list(Some("emails.type,name,id")).expect("list"));
        assert_eq!(dropped["emails"], json!([{ "value": "a@x.example" }]));
        assert!(dropped.get("name").is_none());
        assert_eq!(dropped["id"], "1");
    }
}
