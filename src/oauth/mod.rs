//! OAuth 2.1 authorization server: the authorization and token endpoints, grants, refresh-token
//! families, revocation and introspection.

pub mod authorization_details;
pub mod authorize;
pub mod backchannel;
pub mod device;
pub mod client_auth;
pub mod error;
pub mod families;
pub mod grants;
pub mod introspection;
pub mod issue;
pub mod params;
pub mod pkce;
pub mod registration;
pub mod resource;
pub mod revocation;
pub mod revocation_check;
pub mod scope;
pub mod status_list;
pub mod token;
