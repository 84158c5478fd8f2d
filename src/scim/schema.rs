//! The schemas a directory serves (RFC 7643 §4, §8.7): the core User and Group and the enterprise
//! user extension, as data. The same definitions are published at `/Schemas` (so generic clients
//! discover them), read requests (`normalise`: names matched case-insensitively and written in their
//! canonical case, values coerced to their declared types, read-only attributes dropped, unknown ones
//! ignored) and resolve PATCH paths (`resolve`).
//!
//! Left out on purpose: `password` (Latchkey stores no password; one sent is dropped, never kept),
//! `x509Certificates`, `entitlements` and `roles` (roles come from group membership, docs/scim.md).

use serde_json::{Map, Value as Json, json};

use super::ScimError;
use super::filter::AttrPath;

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const SERVICE_PROVIDER_CONFIG: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// Longest string value kept (a display name, an address line); longer is `invalidValue`.
pub const MAX_STRING: usize = 1024;
/// Most values of one multi-valued attribute (members are rows, not bound by this).
pub const MAX_VALUES: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Boolean,
    DateTime,
    Reference(&'static [&'static str]),
    Complex(&'static [Attribute]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Default,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute {
    pub name: &'static str,
    pub kind: Kind,
    pub multi: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    /// `uniqueness: server` (userName); everything else `none`.
    pub unique: bool,
    pub canonical: &'static [&'static str],
    pub description: &'static str,
}

const fn attr(name: &'static str, kind: Kind, description: &'static str) -> Attribute {
    Attribute {
        name,
        kind,
        multi: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        unique: false,
        canonical: &[],
        description,
    }
}

const fn string(name: &'static str, description: &'static str) -> Attribute {
    attr(name, Kind::String, description)
}

impl Attribute {
    const fn multi(mut self) -> Self {
        self.multi = true;
        self
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn read_only(mut self) -> Self {
        self.mutability = Mutability::ReadOnly;
        self
    }
    const fn immutable(mut self) -> Self {
        self.mutability = Mutability::Immutable;
        self
    }
    const fn canonical(mut self, values: &'static [&'static str]) -> Self {
        self.canonical = values;
        self
    }

    /// The sub-attribute named `name` (case-insensitively) of a complex attribute.
    pub fn sub(&self, name: &str) -> Option<&'static Attribute> {
        match self.kind {
            Kind::Complex(subs) => subs.iter().find(|a| a.name.eq_ignore_ascii_case(name)),
            _ => None,
        }
    }
}

/// A multi-valued attribute's usual sub-attributes (RFC 7643 §2.4).
macro_rules! plural {
    ($types:expr, $value:expr) => {
        &[
            $value,
            string("display", "A human-readable name, primarily used for display purposes."),
            string("type", "A label indicating the attribute's function.").canonical($types),
            attr("primary", Kind::Boolean, "Whether this is the primary value of the attribute."),
        ]
    };
}

const NAME: &[Attribute] = &[
    string("formatted", "The full name, including all middle names, titles, and suffixes as appropriate."),
    string("familyName", "The family name of the User."),
    string("givenName", "The given name of the User."),
    string("middleName", "The middle name(s) of the User."),
    string("honorificPrefix", "The honorific prefix(es) of the User."),
    string("honorificSuffix", "The honorific suffix(es) of the User."),
];

const ADDRESS: &[Attribute] = &[
    string("formatted", "The full mailing address, formatted for display."),
    string("streetAddress", "The full street address component."),
    string("locality", "The city or locality component."),
    string("region", "The state or region component."),
    string("postalCode", "The zip code or postal code component."),
    string("country", "The country name component."),
    string("type", "A label indicating the attribute's function.").canonical(&["work", "home", "other"]),
    attr("primary", Kind::Boolean, "Whether this is the primary address."),
];

const GROUP_OF_USER: &[Attribute] = &[
    string("value", "The identifier of the User's group.").read_only(),
    attr("$ref", Kind::Reference(&["Group"]), "The URI of the corresponding 'Group' resource.").read_only(),
    string("display", "A human-readable name, primarily used for display purposes.").read_only(),
    string("type", "A label indicating the attribute's function.").canonical(&["direct"]).read_only(),
];

pub const USER_ATTRIBUTES: &[Attribute] = &[
    Attribute { unique: true, ..string("userName", "Unique identifier for the User, typically used by the user to directly authenticate.").required() },
    attr("name", Kind::Complex(NAME), "The components of the user's real name."),
    string("displayName", "The name of the User, suitable for display to end-users."),
    string("nickName", "The casual way to address the user in real life."),
    attr("profileUrl", Kind::Reference(&["external"]), "A fully qualified URL pointing to a page representing the User's online profile."),
    string("title", "The user's title, such as \"Vice President\"."),
    string("userType", "Used to identify the relationship between the organization and the user."),
    string("preferredLanguage", "Indicates the User's preferred written or spoken language."),
    string("locale", "Used to indicate the User's default location for purposes of localizing items."),
    string("timezone", "The User's time zone in the 'Olson' time zone database format."),
    attr("active", Kind::Boolean, "A Boolean value indicating the User's administrative status."),
    attr("emails", Kind::Complex(plural!(&["work", "home", "other"], string("value", "Email addresses for the user."))), "Email addresses for the user.").multi(),
    attr("phoneNumbers", Kind::Complex(plural!(&["work", "home", "mobile", "fax", "pager", "other"], string("value", "Phone number of the User."))), "Phone numbers for the User.").multi(),
    attr("ims", Kind::Complex(plural!(&["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"], string("value", "Instant messaging address for the User."))), "Instant messaging addresses for the User.").multi(),
    attr("photos", Kind::Complex(plural!(&["photo", "thumbnail"], attr("value", Kind::Reference(&["external"]), "URL of a photo of the User."))), "URLs of photos of the User.").multi(),
    attr("addresses", Kind::Complex(ADDRESS), "A physical mailing address for this User.").multi(),
    attr("groups", Kind::Complex(GROUP_OF_USER), "A list of groups to which the user belongs.").multi().read_only(),
];

const MANAGER: &[Attribute] = &[
    string("value", "The id of the SCIM resource representing the User's manager."),
    attr("$ref", Kind::Reference(&["User"]), "The URI of the SCIM resource representing the User's manager."),
    string("displayName", "The displayName of the User's manager.").read_only(),
];

pub const ENTERPRISE_ATTRIBUTES: &[Attribute] = &[
    string("employeeNumber", "Numeric or alphanumeric identifier assigned to a person."),
    string("costCenter", "Identifies the name of a cost center."),
    string("organization", "Identifies the name of an organization."),
    string("division", "Identifies the name of a division."),
    string("department", "Identifies the name of a department."),
    attr("manager", Kind::Complex(MANAGER), "The User's manager."),
];

const MEMBER: &[Attribute] = &[
    string("value", "Identifier of the member of this Group.").immutable(),
    attr("$ref", Kind::Reference(&["User"]), "The URI corresponding to a SCIM resource that is a member of this Group.").immutable(),
    string("display", "A human-readable name of the member.").read_only(),
    string("type", "A label indicating the type of resource.").canonical(&["User"]).immutable(),
];

pub const GROUP_ATTRIBUTES: &[Attribute] = &[
    string("displayName", "A human-readable name for the Group.").required(),
    attr("members", Kind::Complex(MEMBER), "A list of members of the Group.").multi(),
];

/// What one resource type is made of.
#[derive(Debug, Clone, Copy)]
pub struct ResourceSchema {
    pub name: &'static str,
    pub endpoint: &'static str,
    pub core: &'static str,
    pub attributes: &'static [Attribute],
    pub extensions: &'static [(&'static str, &'static [Attribute])],
}

pub const USER_SCHEMA: ResourceSchema = ResourceSchema {
    name: "User",
    endpoint: "/Users",
    core: USER,
    attributes: USER_ATTRIBUTES,
    extensions: &[(ENTERPRISE_USER, ENTERPRISE_ATTRIBUTES)],
};

pub const GROUP_SCHEMA: ResourceSchema =
    ResourceSchema { name: "Group", endpoint: "/Groups", core: GROUP, attributes: GROUP_ATTRIBUTES, extensions: &[] };

/// Where a resolved path points.
#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    /// The extension's URN, for an extension attribute.
    pub extension: Option<&'static str>,
    pub attribute: &'static Attribute,
    pub sub: Option<&'static Attribute>,
}

/// What resolving a path found.
#[derive(Debug, Clone, Copy)]
pub enum Found {
    Attribute(Resolved),
    /// `id`, `externalId`, `meta`, `schemas`: the common attributes (RFC 7643 §3.1).
    Common(&'static str),
    /// A whole extension object, named by its URN.
    Extension(&'static str, &'static [Attribute]),
    /// An attribute this server does not keep: ignored (docs/scim.md).
    Unknown,
}

impl ResourceSchema {
    pub fn attribute(&self, name: &str) -> Option<&'static Attribute> {
        self.attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }

    fn extension(&self, urn: &str) -> Option<(&'static str, &'static [Attribute])> {
        self.extensions.iter().copied().find(|(u, _)| u.eq_ignore_ascii_case(urn))
    }

    /// Resolves an attribute path (`name.givenName`, `urn:…:enterprise:2.0:User:manager.value`).
    pub fn resolve(&self, path: &AttrPath) -> Result<Found, ScimError> {
        // `urn:…:enterprise:2.0:User` on its own reads as URN `urn:…:enterprise:2.0`, name `User`.
        if let (Some(urn), None) = (&path.urn, &path.sub)
            && let Some((whole, attributes)) = self.extension(&format!("{urn}:{}", path.name))
        {
            return Ok(Found::Extension(whole, attributes));
        }
        let attributes = match &path.urn {
            None => self.attributes,
            Some(urn) if urn.eq_ignore_ascii_case(self.core) => self.attributes,
            Some(urn) => match self.extension(urn) {
                Some((urn, attributes)) => {
                    return Ok(match attributes.iter().find(|a| a.name.eq_ignore_ascii_case(&path.name)) {
                        Some(attribute) => sub_of(Some(urn), attribute, path)?,
                        None => Found::Unknown,
                    });
                }
                None => return Ok(Found::Unknown),
            },
        };
        for common in ["id", "externalId", "meta", "schemas"] {
            if path.name.eq_ignore_ascii_case(common) {
                return Ok(Found::Common(common));
            }
        }
        match attributes.iter().find(|a| a.name.eq_ignore_ascii_case(&path.name)) {
            Some(attribute) => sub_of(None, attribute, path),
            None => Ok(Found::Unknown),
        }
    }
}

fn sub_of(extension: Option<&'static str>, attribute: &'static Attribute, path: &AttrPath) -> Result<Found, ScimError> {
    let sub = match &path.sub {
        None => None,
        Some(name) => match attribute.sub(name) {
            Some(sub) => Some(sub),
            None if matches!(attribute.kind, Kind::Complex(_)) => return Ok(Found::Unknown),
            None => return Err(ScimError::invalid_path(format!("{} has no sub-attributes", attribute.name))),
        },
    };
    Ok(Found::Attribute(Resolved { extension, attribute, sub }))
}

/// The member of `object` named `name`, case-insensitively.
pub fn member<'a>(object: &'a Json, name: &str) -> Option<&'a Json> {
    object.as_object()?.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value)
}

/// Reads a resource a client sent (POST, PUT) into its canonical document: the declared attributes
/// in their canonical names and types, `externalId`, and `schemas`; without `id`, `meta` and
/// read-only attributes (RFC 7644 §3.3: ignored when sent). Required attributes must be present.
pub fn normalise(schema: &ResourceSchema, input: &Json) -> Result<Json, ScimError> {
    let object = input.as_object().ok_or_else(|| ScimError::invalid_syntax("a resource is a JSON object"))?;
    let mut document = Map::new();
    for (key, value) in object {
        if key.eq_ignore_ascii_case("externalId") {
            match value {
                Json::Null => {}
                Json::String(text) => {
                    document.insert("externalId".into(), Json::String(checked_string(text, "externalId")?));
                }
                _ => return Err(ScimError::invalid_value("externalId is a string")),
            }
        } else if let Some((urn, attributes)) = schema.extension(key) {
            let Json::Object(inner) = value else {
                if value.is_null() {
                    continue;
                }
                return Err(ScimError::invalid_value(format!("{urn} is an object")));
            };
            let read = complex(attributes, inner, urn)?;
            if !read.is_empty() {
                document.insert(urn.to_owned(), Json::Object(read));
            }
        } else if let Some(attribute) = schema.attribute(key) {
            if attribute.mutability == Mutability::ReadOnly {
                continue;
            }
            if let Some(read) = value_of(attribute, value)? {
                document.insert(attribute.name.to_owned(), read);
            }
        }
        // `schemas`, `id`, `meta` and unknown attributes: ignored (`schemas` is written below).
    }
    for attribute in schema.attributes.iter().filter(|a| a.required) {
        match document.get(attribute.name) {
            Some(Json::String(text)) if !text.trim().is_empty() => {}
            _ => return Err(ScimError::invalid_value(format!("{} is required", attribute.name))),
        }
    }
    let mut schemas = vec![Json::String(schema.core.to_owned())];
    for (urn, _) in schema.extensions {
        if document.contains_key(*urn) {
            schemas.push(Json::String((*urn).to_owned()));
        }
    }
    document.insert("schemas".into(), Json::Array(schemas));
    Ok(Json::Object(document))
}

fn checked_string(text: &str, name: &str) -> Result<String, ScimError> {
    if text.chars().count() > MAX_STRING {
        return Err(ScimError::invalid_value(format!("{name} is longer than {MAX_STRING} characters")));
    }
    if text.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err(ScimError::invalid_value(format!("{name} holds control characters")));
    }
    Ok(text.to_owned())
}

pub fn complex(attributes: &'static [Attribute], object: &Map<String, Json>, context: &str) -> Result<Map<String, Json>, ScimError> {
    let mut read = Map::new();
    for (key, value) in object {
        let Some(attribute) = attributes.iter().find(|a| a.name.eq_ignore_ascii_case(key)) else { continue };
        if attribute.mutability == Mutability::ReadOnly {
            continue;
        }
        if let Some(read_value) = value_of(attribute, value).map_err(|e| e.within(context))? {
            read.insert(attribute.name.to_owned(), read_value);
        }
    }
    Ok(read)
}

/// A value coerced to the attribute's type; `None` for an unassigned one (null, empty).
pub fn value_of(attribute: &'static Attribute, value: &Json) -> Result<Option<Json>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    if attribute.multi {
        let items: Vec<&Json> = match value {
            Json::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        if items.len() > MAX_VALUES && attribute.name != "members" {
            return Err(ScimError::invalid_value(format!("{} holds more than {MAX_VALUES} values", attribute.name)));
        }
        let mut read: Vec<Json> = Vec::new();
        for item in items {
            if let Some(one) = single_value(attribute, item)? {
                if !read.contains(&one) {
                    read.push(one);
                }
            }
        }
        one_primary(&mut read);
        return Ok((!read.is_empty()).then_some(Json::Array(read)));
    }
    single_value(attribute, value)
}

/// At most one value is `primary` (RFC 7643 §2.4): the last one marked wins (a PATCH adds at the end).
pub fn one_primary(values: &mut [Json]) {
    let Some(last) = values.iter().rposition(|v| v.get("primary") == Some(&Json::Bool(true))) else { return };
    for (i, value) in values.iter_mut().enumerate() {
        if i != last && let Some(object) = value.as_object_mut() && object.get("primary") == Some(&Json::Bool(true)) {
            object.insert("primary".into(), Json::Bool(false));
        }
    }
}

fn single_value(attribute: &'static Attribute, value: &Json) -> Result<Option<Json>, ScimError> {
    let wrong = || ScimError::invalid_value(format!("{} has the wrong type", attribute.name));
    match (attribute.kind, value) {
        (_, Json::Null) => Ok(None),
        (Kind::String | Kind::Reference(_), Json::String(text)) => {
            Ok((!text.is_empty()).then(|| checked_string(text, attribute.name)).transpose()?.map(Json::String))
        }
        (Kind::DateTime, Json::String(text)) => {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(|_| wrong())?;
            Ok(Some(Json::String(text.clone())))
        }
        (Kind::Boolean, Json::Bool(b)) => Ok(Some(Json::Bool(*b))),
        // Entra (before `aadOptscim062020`) sends booleans as "True" / "False".
        (Kind::Boolean, Json::String(text)) if text.eq_ignore_ascii_case("true") => Ok(Some(Json::Bool(true))),
        (Kind::Boolean, Json::String(text)) if text.eq_ignore_ascii_case("false") => Ok(Some(Json::Bool(false))),
        (Kind::Complex(subs), Json::Object(object)) => {
            let read = complex(subs, object, attribute.name)?;
            Ok((!read.is_empty()).then_some(Json::Object(read)))
        }
        // A manager (or any complex attribute with a `value`) given as its bare value.
        (Kind::Complex(subs), Json::String(text)) if subs.iter().any(|s| s.name == "value") && attribute.name == "manager" => {
            Ok((!text.is_empty()).then(|| json!({ "value": text })))
        }
        _ => Err(wrong()),
    }
}

// ---------------------------------------------------------------------------------------------------
// Discovery documents (RFC 7644 §4)

fn attribute_json(attribute: &Attribute) -> Json {
    let kind = match attribute.kind {
        Kind::String => "string",
        Kind::Boolean => "boolean",
        Kind::DateTime => "dateTime",
        Kind::Reference(_) => "reference",
        Kind::Complex(_) => "complex",
    };
    let mut out = json!({
        "name": attribute.name,
        "type": kind,
        "multiValued": attribute.multi,
        "description": attribute.description,
        "required": attribute.required,
        "mutability": match attribute.mutability {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
        },
        "returned": match attribute.returned { Returned::Always => "always", Returned::Default => "default" },
    });
    if !matches!(attribute.kind, Kind::Complex(_) | Kind::Boolean) {
        out["caseExact"] = Json::Bool(attribute.case_exact);
        out["uniqueness"] = Json::String(if attribute.unique { "server" } else { "none" }.into());
    }
    if !attribute.canonical.is_empty() {
        out["canonicalValues"] = json!(attribute.canonical);
    }
    match attribute.kind {
        Kind::Reference(types) => out["referenceTypes"] = json!(types),
        Kind::Complex(subs) => out["subAttributes"] = Json::Array(subs.iter().map(attribute_json).collect()),
        _ => {}
    }
    out
}

fn schema_json(id: &str, name: &str, description: &str, attributes: &[Attribute], base: &str) -> Json {
    json!({
        "schemas": [SCHEMA],
        "id": id,
        "name": name,
        "description": description,
        "attributes": attributes.iter().map(attribute_json).collect::<Vec<_>>(),
        "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{id}") },
    })
}

/// Every schema the directory serves (`/Schemas`).
pub fn schemas(base: &str) -> Vec<Json> {
    vec![
        schema_json(USER, "User", "User Account", USER_ATTRIBUTES, base),
        schema_json(ENTERPRISE_USER, "EnterpriseUser", "Enterprise User", ENTERPRISE_ATTRIBUTES, base),
        schema_json(GROUP, "Group", "Group", GROUP_ATTRIBUTES, base),
    ]
}

/// Every resource type (`/ResourceTypes`).
pub fn resource_types(base: &str) -> Vec<Json> {
    [USER_SCHEMA, GROUP_SCHEMA]
        .iter()
        .map(|schema| {
            json!({
                "schemas": [RESOURCE_TYPE],
                "id": schema.name,
                "name": schema.name,
                "endpoint": schema.endpoint,
                "description": format!("{} resources", schema.name),
                "schema": schema.core,
                "schemaExtensions": schema.extensions.iter().map(|(urn, _)| json!({ "schema": urn, "required": false })).collect::<Vec<_>>(),
                "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{}", schema.name) },
            })
        })
        .collect()
}

/// What the directory supports, exactly (`/ServiceProviderConfig`, RFC 7643 §5).
pub fn service_provider_config(base: &str, documentation: &str, max_results: u64) -> Json {
    json!({
        "schemas": [SERVICE_PROVIDER_CONFIG],
        "documentationUri": documentation,
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": max_results },
        "changePassword": { "supported": false },
        "sort": { "supported": true },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Directory token",
            "description": "The bearer token the organization's administration page issues for this directory.",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
            "documentationUri": documentation,
            "primary": true,
        }],
        "meta": { "resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig") },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_is_read_into_canonical_names_and_types() {
        let input = json!({
            "schemas": [USER, ENTERPRISE_USER],
            "USERNAME": "Ada@Example.com",
            "id": "chosen-by-client",
            "meta": { "version": "W/\"9\"" },
            "password": "hunter2",
            "active": "False",
            "name": { "GivenName": "Ada", "unknown": 1 },
            "emails": [{ "value": "ada@example.com", "type": "work", "primary": "true" }, { "value": "ada@example.com", "type": "work", "primary": "true" }],
            "groups": [{ "value": "g1" }],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": { "Department": "R&D", "manager": "m-1" },
            "somethingElse": true,
        });
        let read = normalise(&USER_SCHEMA, &input).expect("a user");
        assert_eq!(
            read,
            json!({
                "schemas": [USER, ENTERPRISE_USER],
                "userName": "Ada@Example.com",
                "active": false,
                "name": { "givenName": "Ada" },
                "emails": [{ "value": "ada@example.com", "type": "work", "primary": true }],
                ENTERPRISE_USER: { "department": "R&D", "manager": { "value": "m-1" } },
            })
        );
    }

    #[test]
    fn wrong_types_and_missing_required_attributes_are_invalid_values() {
        for (input, why) in [
            (json!({ "schemas": [USER] }), "userName is required"),
            (json!({ "userName": "  " }), "userName is required"),
            (json!({ "userName": 7 }), "wrong type"),
            (json!({ "userName": "a", "active": "yes" }), "wrong type"),
            (json!({ "userName": "a", "name": "Ada" }), "wrong type"),
            (json!({ "userName": "a", "externalId": 5 }), "externalId"),
            (json!({ "userName": "a\u{0}" }), "control"),
            (json!({ "userName": "x".repeat(MAX_STRING + 1) }), "longer"),
        ] {
            let error = normalise(&USER_SCHEMA, &input).expect_err(why);
            assert_eq!(error.scim_type, Some("invalidValue"), "{input}");
            assert!(error.detail.contains(why), "{} for {input}", error.detail);
        }
        assert_eq!(normalise(&USER_SCHEMA, &json!([1])).expect_err("array").scim_type, Some("invalidSyntax"));
    }

    #[test]
    fn only_the_last_primary_value_stays_primary() {
        let mut values = vec![json!({ "value": "a", "primary": true }), json!({ "value": "b" }), json!({ "value": "c", "primary": true })];
        one_primary(&mut values);
        assert_eq!(values, vec![json!({ "value": "a", "primary": false }), json!({ "value": "b" }), json!({ "value": "c", "primary": true })]);
    }

    #[test]
    fn paths_resolve_in_the_core_schema_and_the_extension() {
        let resolve = |text: &str| USER_SCHEMA.resolve(&super::super::filter::parse_path(text).expect("path")).expect("resolves");
        assert!(matches!(resolve("NAME.givenname"), Found::Attribute(Resolved { extension: None, attribute, sub: Some(sub) }) if attribute.name == "name" && sub.name == "givenName"));
        assert!(matches!(resolve("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"), Found::Attribute(Resolved { extension: Some(ENTERPRISE_USER), .. })));
        assert!(matches!(resolve("urn:ietf:params:scim:schemas:core:2.0:User:userName"), Found::Attribute(_)));
        assert!(matches!(resolve("externalid"), Found::Common("externalId")));
        assert!(matches!(resolve("favouriteColour"), Found::Unknown));
        assert!(matches!(resolve("urn:example:custom:1.0:User:x"), Found::Unknown));
    }

    #[test]
    fn the_schemas_document_describes_every_attribute() {
        let schemas = schemas("https://id.example/scim/v2/acme");
        assert_eq!(schemas.len(), 3);
        let user_name = &schemas[0]["attributes"][0];
        assert_eq!(user_name["name"], "userName");
        assert_eq!(user_name["uniqueness"], "server");
        assert_eq!(user_name["required"], true);
        let emails = schemas[0]["attributes"].as_array().expect("attributes").iter().find(|a| a["name"] == "emails").expect("emails");
        assert_eq!(emails["multiValued"], true);
        assert_eq!(emails["subAttributes"].as_array().expect("subs").len(), 4);
    }
}
