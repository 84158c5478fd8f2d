//! Enterprise single sign-on (docs/sso.md): what an organization wires in so its people sign in
//! through their company's identity provider — verified domains (`domains`, proved by a TXT record
//! looked up through `dns`), OIDC connections (`connection`, `oidc`), which account a sign-in is
//! (`linking`), and the sign-in itself (`signin`).

pub mod connection;
pub mod dns;
pub mod domains;
pub mod linking;
pub mod oidc;
pub mod signin;

use std::time::Duration;

use crate::{
    config::SsoConfig,
    safe_fetch::{FetchPolicy, SafeFetcher},
};

/// What SSO needs beside a request's tenant: the fetcher every call to an IdP goes through (https,
/// public addresses only, time and size limits), the discovered providers, the request lifetime.
pub struct Sso {
    pub fetcher: SafeFetcher,
    pub providers: oidc::Providers,
    pub request_seconds: i64,
}

impl Sso {
    pub fn new(config: &SsoConfig) -> Result<Self, String> {
        let fetcher = SafeFetcher::new(FetchPolicy::configured(
            config.allow_loopback,
            config.timeout_ms,
            config.max_bytes,
            config.extra_root_certificates.as_deref(),
        )?)?;
        Ok(Self {
            fetcher,
            providers: oidc::Providers::new(Duration::from_secs(config.metadata_cache_seconds)),
            request_seconds: config.request_seconds,
        })
    }
}
