//! OpenID Connect on top of the OAuth core: discovery, UserInfo, logout. ID tokens are minted in
//! `oauth::issue` with the claims from `jwt::IdTokenClaims`.

pub mod discovery;
pub mod logout;
pub mod userinfo;
