//! Enterprise single sign-on (docs/sso.md): what an organization wires in so its people sign in
//! through their company's identity provider — verified domains (`domains`, proved by a TXT record
//! looked up through `dns`), connections over OIDC or SAML 2.0 (`connection`, `oidc`, `saml`), which
//! account a sign-in is (`linking`), the sign-in itself (`signin`), and enforced SSO with the owners'
//! break-glass (`enforcement`).

pub mod connection;
pub mod dns;
pub mod domains;
pub mod enforcement;
pub mod linking;
pub mod oidc;
pub mod saml;
pub mod signin;

use std::time::Duration;

use latchkey_proto::Amr;

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
    /// Tests only (`sso.allow_loopback`): an identity provider on loopback, whose SAML sign-on URL
    /// may then be plain http.
    pub allow_loopback: bool,
}

impl Sso {
    /// Reads a SAML IdP's metadata from its URL, through the same fetcher as every call to an IdP.
    pub async fn fetch_saml_metadata(&self, url: &str) -> Result<saml::IdpMetadata, saml::SamlError> {
        let parsed = url::Url::parse(url).map_err(|_| saml::SamlError::Metadata("the metadata URL is not a URL".into()))?;
        let bytes = self
            .fetcher
            .get(&parsed, "application/samlmetadata+xml, application/xml, text/xml")
            .await
            .map_err(|e| saml::SamlError::Metadata(e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|_| saml::SamlError::Metadata("the document is not UTF-8".into()))?;
        saml::parse_metadata(&text, self.allow_loopback)
    }

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
            allow_loopback: config.allow_loopback,
        })
    }
}

/// What an identity provider said about the person, in the terms linking decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpIdentity {
    /// The IdP's immutable id for the person: Entra `tid:oid`, otherwise `iss` + `sub`.
    pub subject: String,
    /// The same id as a directory (SCIM) knows it — Entra's object id, otherwise the `sub` or the
    /// persistent NameID — so a provisioned person's `externalId` names the account to link.
    pub directory_id: String,
    pub email: Option<String>,
    /// The IdP vouches that the address is the person's: Entra `xms_edov`, otherwise `email_verified`
    /// (Google Workspace: also the configured `hd`).
    pub email_proven: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// Groups and app roles, for role mapping.
    pub groups: Vec<String>,
    /// The IdP's `amr`, the values RFC 8176 registers.
    pub amr: Vec<Amr>,
}
