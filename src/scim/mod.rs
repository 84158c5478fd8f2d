//! SCIM 2.0 provisioning (RFC 7643 / RFC 7644; issue 21, under way): so far the filter grammar
//! (`filter`) the directory's queries and PATCH paths are written in, and its evaluation on a
//! resource's JSON (`evaluate`).

pub mod evaluate;
pub mod filter;
