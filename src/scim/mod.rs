//! SCIM 2.0 provisioning (RFC 7643 / RFC 7644; docs/scim.md): one directory per organization, which
//! the organization's identity provider drives.
//!
//! - `filter`: the filter grammar queries and PATCH paths are written in; `evaluate`: a filter on a
//!   resource's JSON; `query`: which part of a filter the indexes answer, and list parameters.
//! - `schema`: the User, Group and enterprise-extension schemas as data (discovery, reading requests).
//! - `patch`: PATCH requests read into operations; `apply`: operations applied to a document.
//! - `directory`: the service — tokens, users, groups, and what provisioning does to people.

pub mod apply;
pub mod directory;
pub mod evaluate;
pub mod filter;
pub mod patch;
pub mod query;
pub mod schema;

/// A request the directory refuses, as RFC 7644 §3.12 describes it: the HTTP status and, for a 400,
/// the `scimType`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

impl ScimError {
    pub fn new(status: u16, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self { status, scim_type, detail: detail.into() }
    }
    fn bad(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self::new(400, Some(scim_type), detail)
    }
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad("invalidSyntax", detail)
    }
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad("invalidValue", detail)
    }
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad("invalidPath", detail)
    }
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad("invalidFilter", detail)
    }
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad("noTarget", detail)
    }
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::bad("mutability", detail)
    }
    pub fn too_many(detail: impl Into<String>) -> Self {
        Self::bad("tooMany", detail)
    }
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some("uniqueness"), detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }
    pub fn precondition_failed() -> Self {
        Self::new(412, None, "the resource changed since the version named in If-Match")
    }
    /// The detail prefixed with where it happened (`name: …`).
    pub fn within(mut self, context: &str) -> Self {
        self.detail = format!("{context}: {}", self.detail);
        self
    }
}

impl From<patch::PatchError> for ScimError {
    fn from(error: patch::PatchError) -> Self {
        Self::bad(error.scim_type, error.detail)
    }
}

impl From<filter::FilterError> for ScimError {
    fn from(error: filter::FilterError) -> Self {
        Self::invalid_filter(error.to_string())
    }
}
