//! The SAML 2.0 service provider Latchkey is to an organization's identity provider (docs/sso.md,
//! "SAML"). samael parses the messages and libxmlsec1 (through samael) verifies the signatures; this
//! module enforces what samael leaves to its caller:
//!
//! - IdP metadata without a signing certificate is refused (samael would then skip signature checks);
//! - only RSA / ECDSA signatures with SHA-256 or stronger (samael's default allows SHA-1);
//! - the assertion's `Issuer` must be the IdP's entity id; an `AudienceRestriction` naming our entity
//!   id is required (samael checks it only when present); `Destination` and `Recipient` must be this
//!   connection's ACS URL; the time checks run with a small skew;
//! - a response is at most [`MAX_RESPONSE_BYTES`], carries no DTD (XXE, entity expansion) and no XML
//!   comments (the comment-truncation class of NameID attacks);
//! - `InResponseTo` is returned for the caller to match against the stored, browser-bound request,
//!   and the assertion id for the caller's replay record (both consumed atomically in the database).
//!
//! Nothing here knows about HTTP or storage.

use std::sync::Mutex;

use base64::Engine as _;
use latchkey_proto::Amr;
use samael::{
    crypto::{AllowedSignatureAlgorithm, ReduceMode},
    key_info::{KeyInfo, X509Data},
    metadata::{EntityDescriptor, HTTP_POST_BINDING, HTTP_REDIRECT_BINDING, IdpSsoDescriptor, IndexedEndpoint, KeyDescriptor, SpSsoDescriptor},
    schema::{Assertion, Response},
    service_provider::{ServiceProvider, ServiceProviderBuilder},
    traits::ToXml,
};
use serde::{Deserialize, Serialize};

use super::IdpIdentity;

/// The largest `SAMLResponse` form value accepted (base64). Entra's responses with 150 groups are
/// about 20 KB; anything near this cap is not a sign-in.
pub const MAX_RESPONSE_BYTES: usize = 192 * 1024;
/// The largest IdP metadata document read (Entra's federation metadata is about 25 KB).
pub const MAX_METADATA_BYTES: usize = 1024 * 1024;
/// Clock difference tolerated between the IdP and Latchkey.
pub const CLOCK_SKEW_SECONDS: i64 = 60;
/// How long after its `IssueInstant` a response or assertion is still taken: the browser posts it
/// at once, so a few minutes bound replays (and the replay record's lifetime) tightly.
pub const MAX_ISSUE_DELAY_SECONDS: i64 = 180;

const PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
const EMAIL_FORMAT: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";

// Entra ID's claim URIs (docs/sso.md lists what each becomes).
const TENANT_ID: &str = "http://schemas.microsoft.com/identity/claims/tenantid";
const OBJECT_ID: &str = "http://schemas.microsoft.com/identity/claims/objectidentifier";
const EMAIL: &[&str] =
    &["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", "email", "mail", "urn:oid:0.9.2342.19200300.100.1.3"];
const DISPLAY_NAME: &[&str] = &["http://schemas.microsoft.com/identity/claims/displayname", "displayName", "urn:oid:2.16.840.1.113730.3.1.241"];
const GIVEN_NAME: &[&str] = &["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", "firstName", "givenName", "urn:oid:2.5.4.42"];
const FAMILY_NAME: &[&str] = &["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname", "lastName", "sn", "urn:oid:2.5.4.4"];
const GROUPS: &[&str] = &[
    "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
    "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
    "groups",
    "memberOf",
];
const AUTHN_METHODS: &str = "http://schemas.microsoft.com/claims/authnmethodsreferences";

/// Signature algorithms accepted on responses and assertions: SHA-256 or stronger, RSA or ECDSA.
const ALLOWED_ALGORITHMS: [AllowedSignatureAlgorithm; 6] = [
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
];

/// libxmlsec1's global state is shared by every verification: one at a time (each well under a
/// millisecond), since another project using these bindings saw crashes from concurrent calls.
static XMLSEC: Mutex<()> = Mutex::new(());

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SamlError {
    #[error("the identity provider's metadata cannot be used: {0}")]
    Metadata(String),
    #[error("the SAML response is larger than Latchkey accepts")]
    TooLarge,
    #[error("the SAML response is not a well-formed, base64-encoded SAML Response")]
    Malformed,
    #[error("the SAML response carries a document type declaration or comments")]
    ForbiddenMarkup,
    #[error("the SAML response was refused: {0}")]
    Refused(String),
    #[error("the SAML assertion is not addressed to this service provider (AudienceRestriction)")]
    Audience,
    #[error("the SAML response is addressed to another URL (Destination)")]
    Destination,
    #[error("the signed assertion is not the response's assertion (XML signature wrapping)")]
    Wrapped,
    #[error("the SAML assertion is encrypted, which Latchkey does not support: turn token encryption off at the IdP")]
    Encrypted,
    #[error("the SAML assertion names nobody Latchkey can link: {0}")]
    Subject(&'static str),
    #[error("signing the request failed: {0}")]
    Signing(String),
}

/// A SAML connection's settings, as stored (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamlSettings {
    /// The IdP's entity id: every assertion's `Issuer`.
    pub idp_entity_id: String,
    /// Where AuthnRequests go (HTTP-Redirect binding).
    pub sso_url: String,
    /// The IdP's signing certificates (base64 DER); several during a rollover.
    pub certificates: Vec<String>,
    /// Responses nobody asked for (IdP-initiated sign-in) are taken only when the admin enables it.
    #[serde(default)]
    pub allow_idp_initiated: bool,
    /// Where the metadata was read from, when it came from a URL.
    #[serde(default)]
    pub metadata_url: Option<String>,
    /// Latchkey's signing certificate for this connection's AuthnRequests (base64 DER); its private
    /// key is the connection's sealed secret.
    pub sp_certificate: String,
    /// Organization roles from the IdP's groups or roles: (IdP value, role).
    #[serde(default)]
    pub role_map: Vec<(String, String)>,
}

/// What IdP metadata says, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpMetadata {
    pub entity_id: String,
    pub sso_url: String,
    pub certificates: Vec<String>,
}

/// Refuses markup a SAML message never needs: a DTD (external entities, entity expansion) and
/// comments (which canonicalisation drops from the signed digest, so `a@b<!---->.evil` verifies).
fn check_markup(xml: &str) -> Result<(), SamlError> {
    let lower = xml.to_ascii_lowercase();
    if lower.contains("<!doctype") || lower.contains("<!entity") || xml.contains("<!--") {
        return Err(SamlError::ForbiddenMarkup);
    }
    Ok(())
}

fn certificate_ok(base64: &str) -> Result<String, String> {
    let compact: String = base64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(&compact).map_err(|_| "a certificate is not base64".to_owned())?;
    openssl::x509::X509::from_der(&der).map_err(|_| "a certificate is not an X.509 certificate".to_owned())?;
    Ok(compact)
}

/// Reads IdP metadata (pasted or fetched): the entity id, the HTTP-Redirect sign-on URL and the
/// signing certificates. Entra's federation metadata starts with a byte-order mark, which is dropped.
/// `allow_http`: a plain-http sign-on URL on loopback (tests only, `sso.allow_loopback`).
pub fn parse_metadata(xml: &str, allow_http: bool) -> Result<IdpMetadata, SamlError> {
    let invalid = |m: &str| SamlError::Metadata(m.to_owned());
    if xml.len() > MAX_METADATA_BYTES {
        return Err(invalid("the document is larger than 1 MiB"));
    }
    let xml = xml.trim_start_matches('\u{feff}').trim_start();
    let lower = xml.to_ascii_lowercase();
    if lower.contains("<!doctype") || lower.contains("<!entity") {
        return Err(invalid("the document carries a DTD"));
    }
    let descriptor: EntityDescriptor = xml.parse().map_err(|_| invalid("not SAML 2.0 metadata (an EntityDescriptor)"))?;
    let entity_id = descriptor.entity_id.clone().filter(|id| !id.trim().is_empty()).ok_or_else(|| invalid("not SAML 2.0 metadata (no EntityDescriptor with an entityID)"))?;
    let idp = descriptor
        .idp_sso_descriptors
        .as_deref()
        .and_then(|all| all.first())
        .ok_or_else(|| invalid("no IDPSSODescriptor: this is not an identity provider's metadata"))?;
    let sso_url = idp
        .single_sign_on_services
        .iter()
        .find(|service| service.binding == HTTP_REDIRECT_BINDING)
        .map(|service| service.location.clone())
        .ok_or_else(|| invalid("no SingleSignOnService with the HTTP-Redirect binding"))?;
    check_sso_url(&sso_url, allow_http)?;
    let mut certificates = Vec::new();
    for key in &idp.key_descriptors {
        if !matches!(key.key_use.as_deref(), None | Some("") | Some("signing")) {
            continue;
        }
        for certificate in key.key_info.x509_data.iter().flat_map(|data| &data.certificates) {
            let certificate = certificate_ok(certificate).map_err(|m| invalid(&m))?;
            if !certificates.contains(&certificate) {
                certificates.push(certificate);
            }
        }
    }
    if certificates.is_empty() {
        // samael verifies nothing without a certificate: such metadata would let anyone sign in.
        return Err(invalid("no signing certificate (KeyDescriptor use=\"signing\")"));
    }
    Ok(IdpMetadata { entity_id, sso_url, certificates })
}

fn check_sso_url(url: &str, allow_http: bool) -> Result<(), SamlError> {
    let parsed = url::Url::parse(url).map_err(|_| SamlError::Metadata("the sign-on URL is not a URL".into()))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if allow_http && matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")) => Ok(()),
        _ => Err(SamlError::Metadata("the sign-on URL must be https".into())),
    }
}

/// Latchkey's side of one connection: its entity id (also its metadata URL) and ACS URL.
#[derive(Debug, Clone)]
pub struct ServiceProviderUrls {
    pub entity_id: String,
    pub acs_url: String,
}

/// A new RSA-2048 signing key pair for a connection: the private key (PKCS#8 DER, to seal) and a
/// self-signed certificate (base64 DER) — for a SAML connection's AuthnRequests (published in its SP
/// metadata), or an OIDC connection's `private_key_jwt` client assertions (its JWKS; Entra takes the
/// certificate).
pub fn generate_key_pair(common_name: &str) -> Result<(Vec<u8>, String), SamlError> {
    use openssl::{asn1::Asn1Time, bn::BigNum, hash::MessageDigest, pkey::PKey, rsa::Rsa, x509};
    let fail = |e: openssl::error::ErrorStack| SamlError::Signing(e.to_string());
    let key = PKey::from_rsa(Rsa::generate(2048).map_err(fail)?).map_err(fail)?;
    let mut name = x509::X509NameBuilder::new().map_err(fail)?;
    name.append_entry_by_text("CN", common_name).map_err(fail)?;
    let name = name.build();
    let mut builder = x509::X509Builder::new().map_err(fail)?;
    builder.set_version(2).map_err(fail)?;
    let mut serial = BigNum::new().map_err(fail)?;
    serial.rand(128, openssl::bn::MsbOption::MAYBE_ZERO, false).map_err(fail)?;
    let serial = serial.to_asn1_integer().map_err(fail)?;
    builder.set_serial_number(&serial).map_err(fail)?;
    builder.set_subject_name(&name).map_err(fail)?;
    builder.set_issuer_name(&name).map_err(fail)?;
    builder.set_pubkey(&key).map_err(fail)?;
    let (not_before, not_after) = (Asn1Time::days_from_now(0).map_err(fail)?, Asn1Time::days_from_now(3650).map_err(fail)?);
    builder.set_not_before(&not_before).map_err(fail)?;
    builder.set_not_after(&not_after).map_err(fail)?;
    builder.sign(&key, MessageDigest::sha256()).map_err(fail)?;
    let certificate = builder.build().to_der().map_err(fail)?;
    let private = key.private_key_to_pkcs8().map_err(fail)?;
    Ok((private, base64::engine::general_purpose::STANDARD.encode(certificate)))
}

fn idp_descriptor(settings: &SamlSettings) -> EntityDescriptor {
    let key_descriptors = settings
        .certificates
        .iter()
        .map(|certificate| KeyDescriptor {
            key_use: Some("signing".to_owned()),
            key_info: KeyInfo { id: None, x509_data: Some(X509Data { certificates: vec![certificate.clone()] }) },
            encryption_methods: None,
        })
        .collect();
    EntityDescriptor {
        entity_id: Some(settings.idp_entity_id.clone()),
        idp_sso_descriptors: Some(vec![IdpSsoDescriptor {
            id: None,
            valid_until: None,
            cache_duration: None,
            protocol_support_enumeration: Some("urn:oasis:names:tc:SAML:2.0:protocol".to_owned()),
            error_url: None,
            signature: None,
            key_descriptors,
            organization: None,
            contact_people: vec![],
            artifact_resolution_service: vec![],
            single_logout_services: vec![],
            manage_name_id_services: vec![],
            name_id_formats: vec![],
            want_authn_requests_signed: None,
            single_sign_on_services: vec![],
            name_id_mapping_services: vec![],
            assertion_id_request_services: vec![],
            attribute_profiles: vec![],
            attributes: vec![],
        }]),
        ..EntityDescriptor::default()
    }
}

fn service_provider(settings: &SamlSettings, urls: &ServiceProviderUrls) -> Result<ServiceProvider, SamlError> {
    ServiceProviderBuilder::default()
        .entity_id(urls.entity_id.clone())
        .metadata_url(urls.entity_id.clone())
        .acs_url(urls.acs_url.clone())
        .slo_url(None)
        .idp_metadata(idp_descriptor(settings))
        // InResponseTo is matched by the caller against the stored request (bound to the browser,
        // taken once); samael only sees the signed response.
        .allow_idp_initiated(true)
        .max_issue_delay(chrono_seconds(MAX_ISSUE_DELAY_SECONDS))
        .max_clock_skew(chrono_seconds(CLOCK_SKEW_SECONDS))
        .allowed_signature_algorithms(Some(ALLOWED_ALGORITHMS.to_vec()))
        .build()
        .map_err(|e| SamlError::Signing(e.to_string()))
}

fn chrono_seconds(seconds: i64) -> chrono::Duration {
    chrono::Duration::seconds(seconds)
}

/// The AuthnRequest for the HTTP-Redirect binding: its id (what `InResponseTo` will carry) and the
/// signed URL (SAML bindings §3.4.4.1: `SAMLRequest`, `SigAlg`, `Signature`), plus `login_hint`
/// outside the signature for the IdP's home-realm discovery.
pub fn authn_request(
    settings: &SamlSettings,
    urls: &ServiceProviderUrls,
    sp_key_pkcs8: &[u8],
    request_id: &str,
    login_hint: Option<&str>,
) -> Result<url::Url, SamlError> {
    let provider = service_provider(settings, urls)?;
    let mut request =
        provider.make_authentication_request(&settings.sso_url).map_err(|e| SamlError::Signing(e.to_string()))?;
    // samael's ids carry 32 random bits; ours are 128.
    request.id = request_id.to_owned();
    request.force_authn = None;
    let key = openssl::pkey::PKey::private_key_from_pkcs8(sp_key_pkcs8).map_err(|e| SamlError::Signing(e.to_string()))?;
    let mut url = request
        .signed_redirect("", &key)
        .map_err(|e| SamlError::Signing(e.to_string()))?
        .ok_or_else(|| SamlError::Signing("no destination".into()))?;
    if let Some(hint) = login_hint {
        url.query_pairs_mut().append_pair("login_hint", hint);
    }
    Ok(url)
}

/// This connection's SP metadata: entity id, ACS (HTTP-POST), signing certificate, signed requests,
/// signed assertions wanted, persistent NameIDs preferred. No encryption key: assertions are not
/// encrypted (docs/sso.md says why).
pub fn sp_metadata(settings: &SamlSettings, urls: &ServiceProviderUrls) -> Result<String, SamlError> {
    let descriptor = EntityDescriptor {
        entity_id: Some(urls.entity_id.clone()),
        sp_sso_descriptors: Some(vec![SpSsoDescriptor {
            protocol_support_enumeration: Some("urn:oasis:names:tc:SAML:2.0:protocol".to_owned()),
            key_descriptors: Some(vec![KeyDescriptor {
                key_use: Some("signing".to_owned()),
                key_info: KeyInfo { id: None, x509_data: Some(X509Data { certificates: vec![settings.sp_certificate.clone()] }) },
                encryption_methods: None,
            }]),
            name_id_formats: Some(vec![PERSISTENT.to_owned()]),
            authn_requests_signed: Some(true),
            want_assertions_signed: Some(true),
            assertion_consumer_services: vec![IndexedEndpoint {
                binding: HTTP_POST_BINDING.to_owned(),
                location: urls.acs_url.clone(),
                response_location: None,
                index: 0,
                is_default: Some(true),
            }],
            ..SpSsoDescriptor::default()
        }]),
        ..EntityDescriptor::default()
    };
    descriptor.to_string().map_err(|e| SamlError::Signing(e.to_string()))
}

/// A response that passed every check: who it names, what request it answers (none when the IdP
/// started the sign-in), and the assertion id with the time after which it cannot be replayed.
#[derive(Debug, Clone)]
pub struct Verified {
    pub identity: IdpIdentity,
    pub in_response_to: Option<String>,
    pub assertion_id: String,
    pub replayable_until: i64,
}

/// Verifies a `SAMLResponse` form value for this connection. `InResponseTo` and the assertion id
/// are returned for the caller to consume.
pub fn verify(settings: &SamlSettings, urls: &ServiceProviderUrls, saml_response: &str) -> Result<Verified, SamlError> {
    if saml_response.len() > MAX_RESPONSE_BYTES {
        return Err(SamlError::TooLarge);
    }
    let compact: String = saml_response.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD.decode(compact).map_err(|_| SamlError::Malformed)?;
    let xml = String::from_utf8(bytes).map_err(|_| SamlError::Malformed)?;
    check_markup(&xml)?;
    // The unverified Destination: a response sent to another ACS is refused before any signature
    // work (when the response itself is signed, samael checks it again on the signed copy).
    let outer: Response = xml.parse().map_err(|_| SamlError::Malformed)?;
    if outer.encrypted_assertion.is_some() {
        return Err(SamlError::Encrypted);
    }
    if outer.destination.as_deref().is_some_and(|d| d != urls.acs_url) {
        return Err(SamlError::Destination);
    }
    let provider = service_provider(settings, urls)?;
    // PreDigest: what samael goes on with is exactly what xmlsec digested for the verified reference
    // (the signed response when both are signed, else the signed assertion) — the strictest of its
    // modes, and a third cheaper than pruning the document to its signed nodes (docs/benchmarks.md).
    let assertion = {
        let _one_at_a_time = XMLSEC.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        provider.parse_xml_response_with_mode(&xml, None, ReduceMode::PreDigest)
    }
    .map_err(|e| SamlError::Refused(short(&e.to_string())))?;
    let verified = checked(settings, urls, &assertion)?;
    // samael keeps only the signed content, so a wrapped (XSW) document signs in as the signed
    // assertion. Refuse it instead: what stands where a reader expects the assertion must be the
    // assertion that was verified, naming the same person.
    let visible = outer.assertion.as_ref().ok_or(SamlError::Wrapped)?;
    if visible.id != assertion.id || identity_of(settings, visible).ok().as_ref() != Some(&verified.identity) {
        return Err(SamlError::Wrapped);
    }
    Ok(verified)
}

/// samael's words, without the lists of ids some of its messages carry.
fn short(message: &str) -> String {
    message.split(". ").next().unwrap_or(message).chars().take(160).collect()
}

/// The checks samael does not make, on the verified assertion.
fn checked(settings: &SamlSettings, urls: &ServiceProviderUrls, assertion: &Assertion) -> Result<Verified, SamlError> {
    let audience_ok = assertion
        .conditions
        .as_ref()
        .and_then(|c| c.audience_restrictions.as_ref())
        .is_some_and(|restrictions| !restrictions.is_empty() && restrictions.iter().all(|r| r.audience.iter().any(|a| a == &urls.entity_id)));
    if !audience_ok {
        return Err(SamlError::Audience);
    }
    let subject = assertion.subject.as_ref().ok_or(SamlError::Subject("no Subject"))?;
    let confirmation = subject
        .subject_confirmations
        .iter()
        .flatten()
        .filter(|c| c.method.as_deref() == Some(BEARER))
        .filter_map(|c| c.subject_confirmation_data.as_ref())
        .find(|data| data.recipient.as_deref() == Some(urls.acs_url.as_str()))
        .ok_or(SamlError::Subject("no bearer confirmation for this ACS URL"))?;
    let identity = identity_of(settings, assertion)?;
    let issued = assertion.issue_instant.timestamp();
    Ok(Verified {
        identity,
        in_response_to: confirmation.in_response_to.clone(),
        assertion_id: assertion.id.clone(),
        replayable_until: issued + MAX_ISSUE_DELAY_SECONDS + CLOCK_SKEW_SECONDS,
    })
}

fn values<'a>(assertion: &'a Assertion, names: &[&str]) -> Vec<&'a str> {
    assertion
        .attribute_statements
        .iter()
        .flatten()
        .flat_map(|statement| &statement.attributes)
        .filter(|attribute| attribute.name.as_deref().is_some_and(|name| names.iter().any(|n| n.eq_ignore_ascii_case(name))))
        .flat_map(|attribute| &attribute.values)
        .filter_map(|value| value.value.as_deref())
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .collect()
}

fn first(assertion: &Assertion, names: &[&str]) -> Option<String> {
    values(assertion, names).first().map(|v| (*v).to_owned())
}

/// RFC 8176 values for what a SAML IdP says about the sign-in: Entra's `authnmethodsreferences`
/// claim and the assertion's `AuthnContextClassRef` (SAML authn-context §3.4).
pub fn amr_of(methods: &[&str], class_refs: &[&str]) -> Vec<Amr> {
    let mut amr = Vec::new();
    for value in methods.iter().chain(class_refs) {
        let mapped = match *value {
            "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password"
            | "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"
            | "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport" => Some(Amr::Pwd),
            "http://schemas.microsoft.com/claims/multipleauthn" | "urn:oasis:names:tc:SAML:2.0:ac:classes:MultiFactor" => {
                Some(Amr::Mfa)
            }
            "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/windows"
            | "urn:federation:authentication:windows"
            | "urn:oasis:names:tc:SAML:2.0:ac:classes:Kerberos" => Some(Amr::Wia),
            "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/x509"
            | "urn:oasis:names:tc:SAML:2.0:ac:classes:X509"
            | "urn:oasis:names:tc:SAML:2.0:ac:classes:Smartcard"
            | "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI" => Some(Amr::Sc),
            "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken" => Some(Amr::Otp),
            _ => None,
        };
        if let Some(method) = mapped.filter(|m| !amr.contains(m)) {
            amr.push(method);
        }
    }
    amr
}

/// Who the assertion names, in the terms linking decides on. The identity is the IdP's immutable
/// id: Entra's tenant + object id, otherwise a persistent NameID; never an email or a transient id.
fn identity_of(settings: &SamlSettings, assertion: &Assertion) -> Result<IdpIdentity, SamlError> {
    let name_id = assertion.subject.as_ref().and_then(|s| s.name_id.as_ref());
    let tenant = first(assertion, &[TENANT_ID]);
    let object = first(assertion, &[OBJECT_ID]);
    let (subject, directory_id) = match (tenant, object, name_id) {
        (Some(tid), Some(oid), _) => (format!("entra:{}:{}", tid.to_ascii_lowercase(), oid.to_ascii_lowercase()), oid.to_ascii_lowercase()),
        (_, _, Some(name)) if name.format.as_deref() == Some(PERSISTENT) && !name.value.trim().is_empty() => {
            (format!("saml:{}#{}", settings.idp_entity_id, name.value.trim()), name.value.trim().to_owned())
        }
        _ => return Err(SamlError::Subject("neither Entra's object id nor a persistent NameID")),
    };
    let email = first(assertion, EMAIL).or_else(|| {
        name_id.filter(|n| n.format.as_deref() == Some(EMAIL_FORMAT)).map(|n| n.value.trim().to_owned())
    });
    let class_refs: Vec<&str> = assertion
        .authn_statements
        .iter()
        .flatten()
        .filter_map(|s| s.authn_context.as_ref()?.value.as_ref()?.value.as_deref())
        .collect();
    Ok(IdpIdentity {
        subject,
        directory_id,
        // The connection is the organization's own IdP (one entity id, its own signing keys), and
        // linking still requires the address's domain to be verified by that organization.
        email_proven: email.is_some(),
        email,
        name: first(assertion, DISPLAY_NAME),
        given_name: first(assertion, GIVEN_NAME),
        family_name: first(assertion, FAMILY_NAME),
        groups: values(assertion, GROUPS).into_iter().map(str::to_owned).collect(),
        amr: amr_of(&values(assertion, &[AUTHN_METHODS]), &class_refs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_saml_sign_in_says_about_authentication() {
        for (methods, classes, expected) in [
            (
                vec!["http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password", "http://schemas.microsoft.com/claims/multipleauthn"],
                vec!["urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"],
                vec![Amr::Pwd, Amr::Mfa],
            ),
            (vec![], vec!["urn:oasis:names:tc:SAML:2.0:ac:classes:X509"], vec![Amr::Sc]),
            (vec![], vec!["urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"], vec![]),
            (vec!["urn:federation:authentication:windows"], vec![], vec![Amr::Wia]),
        ] {
            assert_eq!(amr_of(&methods, &classes), expected, "{methods:?} {classes:?}");
        }
    }

    #[test]
    fn markup_a_saml_message_never_needs_is_refused() {
        for xml in [
            "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>",
            "<r><NameID>victim@acme.test<!---->.evil.test</NameID></r>",
            "<!doctype r><r/>",
        ] {
            assert_eq!(check_markup(xml), Err(SamlError::ForbiddenMarkup), "{xml}");
        }
        assert_eq!(check_markup("<?xml version=\"1.0\"?><r a=\"&lt;!--\"/>"), Ok(()));
    }

    const METADATA: &str = "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><EntityDescriptor ID=\"_x\" entityID=\"https://sts.windows.net/9188040d-6c67-4c5b-b112-36a304b66dad/\" xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\"><IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">KEYS<SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/saml2\"/></IDPSSODescriptor></EntityDescriptor>";

    fn key_descriptor(certificate: &str, key_use: &str) -> String {
        format!("<KeyDescriptor{key_use}><KeyInfo xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><X509Data><X509Certificate>{certificate}</X509Certificate></X509Data></KeyInfo></KeyDescriptor>")
    }

    #[test]
    fn idp_metadata_is_read_with_its_bom_and_refused_without_a_signing_certificate() {
        let (_, one) = generate_key_pair("one").expect("key");
        let (_, two) = generate_key_pair("two").expect("key");
        let both = format!("{}{}", key_descriptor(&one, " use=\"signing\""), key_descriptor(&two, ""));
        let read = parse_metadata(&METADATA.replace("KEYS", &both), false).expect("metadata");
        assert_eq!(read.entity_id, "https://sts.windows.net/9188040d-6c67-4c5b-b112-36a304b66dad/");
        assert_eq!(read.sso_url, "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/saml2");
        assert_eq!(read.certificates, vec![one.clone(), two]);
        for (xml, why) in [
            (METADATA.replace("KEYS", ""), "no signing certificate"),
            (METADATA.replace("KEYS", &key_descriptor(&one, " use=\"encryption\"")), "no signing certificate"),
            (METADATA.replace("KEYS", &key_descriptor("bm90IGEgY2VydA==", "")), "not an X.509"),
            (METADATA.replace("KEYS", &key_descriptor(&one, "")).replace("HTTP-Redirect", "HTTP-POST"), "HTTP-Redirect"),
            (METADATA.replace("KEYS", &key_descriptor(&one, "")).replace("https://login", "http://login"), "https"),
            (format!("<!DOCTYPE x>{}", METADATA.trim_start_matches('\u{feff}')), "DTD"),
            ("<html/>".to_owned(), "not SAML 2.0 metadata"),
        ] {
            let error = parse_metadata(&xml, false).expect_err(why).to_string();
            assert!(error.contains(why), "{error} / {why}");
        }
    }
}
