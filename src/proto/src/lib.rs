//! The contract between Latchkey and the services that trust its tokens (docs/architecture.md):
//! what an access token says ([`claims`]), the authentication levels and methods it names ([`acr`]),
//! who is calling ([`Caller`]), the compact JWS both sides sign ([`jws`]), and the cryptographic
//! helpers the identity server and the permission API share ([`crypto`], [`fsutil`]).
//!
//! It depends on no runtime, HTTP framework or database, so a resource server built on it links none.

pub mod acr;
pub mod claims;
pub mod crypto;
pub mod fsutil;
pub mod jws;
pub mod secret;
pub mod status_list;

pub use acr::{Acr, Amr};
pub use claims::{AccessClaims, Caller};
pub use secret::Secret;

/// Unix seconds now. Every stored timestamp and every token time uses this clock.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
