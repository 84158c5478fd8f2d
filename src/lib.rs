//! Latchkey: an identity provider and OAuth 2.1 / OpenID Connect authorization server.
//!
//! Layers, outside in: `app` (the composition root, built once at start-up) and `http` (actix
//! handlers: parse and render) → domain modules (`oauth`, `oidc`, `signin`, `email_code`, `passkey`,
//! `recovery`, `session`, `account`, `totp`, `consent`, `client`, `tenant`, `keys`, `audit`: decide,
//! given a `context::Ctx`) → `store` (sea-orm, tenant-scoped). See docs/architecture.md.

// Shared with the permission API through the two small crates (docs/architecture.md); re-exported so
// the identity server's modules name them as their own.
pub use latchkey_kit::{auth_header, batch, cache, cors};
pub use latchkey_proto::{crypto, fsutil};

pub mod account;
pub mod app;
pub mod approval;
pub mod audit;
pub mod background;
pub mod client;
pub mod config;
pub mod consent;
pub mod context;
pub mod display_text;
pub mod email_code;
pub mod geo;
pub mod http;
pub mod jwt;
pub mod keys;
pub mod lockout;
pub mod mail;
pub mod mail_queue;
pub mod metrics;
pub mod notices;
pub mod oauth;
pub mod oidc;
pub mod org_admin;
pub mod organization;
pub mod pages;
pub mod passkey;
pub mod ratelimit;
pub mod recovery;
pub mod safe_fetch;
pub mod scim;
pub mod service_account;
pub mod session;
pub mod signin;
pub mod sso;
pub mod store;
pub mod sweep;
pub mod tenant;
pub mod totp;
pub mod user;
