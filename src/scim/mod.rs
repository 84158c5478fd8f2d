//! SCIM 2.0 provisioning (RFC 7643 / RFC 7644; issue 21, under way): so far the filter grammar
//! (`filter`) the directory's queries and PATCH paths are written in, its evaluation on a resource's
//! JSON (`evaluate`), and PATCH requests read into operations in the shapes Entra and Okta send
//! (`patch`).

pub mod evaluate;
pub mod filter;
pub mod patch;
