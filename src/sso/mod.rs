//! Enterprise single sign-on (docs/sso.md): what an organization wires in so its people sign in
//! through their company's identity provider. Here so far: verified domains (`domains`, proved by a
//! TXT record looked up through `dns`).

pub mod dns;
pub mod domains;
