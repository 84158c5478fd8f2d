//! Hosted page templates (askama, auto-escaped). One struct per page in `templates/`.

use askama::Template;

/// Fields every page's layout needs.
pub struct Chrome<'a> {
    pub tenant_name: &'a str,
    pub tenant_initial: char,
}

impl<'a> Chrome<'a> {
    pub fn new(tenant_name: &'a str) -> Self {
        Self {
            tenant_name,
            tenant_initial: tenant_name
                .chars()
                .next()
                .map_or('L', |c| c.to_ascii_uppercase()),
        }
    }
}

#[derive(Template)]
#[template(path = "login_email.html")]
pub struct LoginEmail<'a> {
    pub tenant_name: &'a str,
    pub tenant_initial: char,
    pub action: String,
    /// The tenant's endpoint prefix, ending in `/` (passkey script and endpoints).
    pub base: String,
    pub recovery_url: String,
    pub csrf: &'a str,
    pub req: Option<&'a str>,
    pub email: &'a str,
    pub client_name: Option<&'a str>,
    pub error: Option<String>,
    /// The email-code way in for an address of an SSO domain (home-realm discovery skipped): the
    /// person chose it on the "Continue to your organization" page.
    pub way_code: bool,
    /// Tenant-wide social sign-in: (start URL, "Continue with Google").
    pub social: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "login_code.html")]
pub struct LoginCode<'a> {
    pub tenant_name: &'a str,
    pub tenant_initial: char,
    pub action: String,
    pub restart_url: String,
    pub csrf: &'a str,
    pub req: Option<&'a str>,
    pub email: &'a str,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct Consent<'a> {
    pub tenant_name: &'a str,
    pub tenant_initial: char,
    pub action: String,
    pub csrf: &'a str,
    pub req: &'a str,
    pub client_name: &'a str,
    pub redirect_host: String,
    /// For a client described by a metadata document: the host that publishes it.
    pub published_by: Option<String>,
    /// Registered through RFC 7591 by the software itself, not by an administrator.
    pub self_registered: bool,
    /// RFC 8707: the resource the access would be for.
    pub resource: Option<&'a str>,
    pub email: &'a str,
    /// (scope, what it lets the application do): exactly what will be granted.
    pub scopes: Vec<(String, &'static str)>,
    /// The client's privacy policy and terms (RFC 7591 §2 `policy_uri`, `tos_uri`), https only.
    pub policy_uri: Option<&'a str>,
    pub tos_uri: Option<&'a str>,
}

/// The device flow's code form (RFC 8628 §3.3).
#[derive(Template)]
#[template(path = "device.html")]
pub struct DeviceEntry<'a> {
    pub tenant_name: &'a str,
    pub tenant_initial: char,
    pub action: String,
    pub csrf: &'a str,
    /// What the person typed or the link filled in (letters, digits and dashes only).
    pub user_code: &'a str,
    pub error: Option<String>,
}

/// What a device asks for, allowed or denied explicitly.
#[derive(Template)]
#[template(path = "device_confirm.html")]
pub struct DeviceConfirm<'a> {
    pub tenant_name: &'a str,
    pub tenant_initial: char,
    pub action: String,
    pub csrf: &'a str,
    /// pending, approved, denied, used or expired.
    pub state: &'static str,
    pub client_name: &'a str,
    pub published_by: Option<String>,
    pub self_registered: bool,
    /// The host of a self-registered client's `client_uri`, as it gave it.
    pub client_host: Option<String>,
    pub resource: Option<&'a str>,
    pub email: &'a str,
    pub scopes: Vec<(String, &'static str)>,
}

/// An approval (CIBA) as its person answers it: who asks, the binding message, each detail in plain
/// words.
#[derive(Template)]
#[template(path = "approval.html")]
pub struct ApprovalPage<'a> {
    pub tenant_name: &'a str,
    pub tenant_initial: char,
    pub action: String,
    pub csrf: &'a str,
    pub id: &'a str,
    /// pending, approved, denied or expired.
    pub state: &'static str,
    pub just_answered: bool,
    pub client_name: &'a str,
    pub binding_message: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub details: &'a [crate::oauth::authorization_details::Described],
    pub minutes_left: i64,
    /// A passkey assertion recent enough to approve without another.
    pub fresh: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct Account<'a> {
    pub tenant_name: &'a str,
    pub tenant_initial: char,
    /// The tenant's endpoint prefix, ending in `/`.
    pub base: String,
    pub csrf: &'a str,
    pub email: &'a str,
    /// The person's name as they gave it (OIDC Core §5.1), empty when unset.
    pub name: &'a str,
    pub given_name: &'a str,
    pub family_name: &'a str,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
    /// A passkey assertion less than five minutes old: sensitive changes are allowed.
    pub fresh: bool,
    pub step_up_url: String,
    pub passkeys: Vec<PasskeyRow>,
    pub recovery_left: u64,
    /// When the authenticator app was set up, if it is.
    pub totp_since: Option<String>,
    pub sessions: Vec<SessionRow>,
    pub apps: Vec<AppRow>,
    /// The organization this person administers (owner or admin): a link to its pages.
    pub administers: Option<(String, String)>,
    /// Requests waiting for this person's approval (CIBA), newest first.
    pub approvals: Vec<ApprovalRow>,
}

pub struct ApprovalRow {
    pub url: String,
    pub client: String,
    pub what: String,
    pub asked: String,
}

pub struct PasskeyRow {
    pub id: String,
    pub name: String,
    pub provider: Option<&'static str>,
    pub created: String,
    pub last_used: String,
}

pub struct SessionRow {
    pub id: String,
    pub device: String,
    pub ip: String,
    /// Approximate location of the IP address, when a GeoIP database is configured and knows it.
    pub place: Option<String>,
    pub created: String,
    pub last_seen: String,
    pub current: bool,
}

pub struct AppRow {
    pub client_id: String,
    pub name: String,
    pub host: Option<String>,
    /// One line per resource: its approved scopes ("files:read for https://…").
    pub approved: Vec<String>,
    pub granted: String,
    pub grants: usize,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodes<'a> {
    pub tenant_name: &'a str,
    pub tenant_initial: char,
    pub codes: Vec<latchkey_proto::Secret>,
    pub download_href: String,
    pub continue_url: String,
}

#[derive(Template)]
#[template(path = "totp_setup.html")]
pub struct TotpSetup<'a> {
    pub tenant_name: &'a str,
    pub tenant_initial: char,
    pub action: String,
    pub back_url: String,
    pub csrf: &'a str,
    pub req: Option<&'a str>,
    /// The tenant requires an app: no way around this page.
    pub required: bool,
    /// Generated by `totp::qr_svg` from our own URI: rendered unescaped.
    pub qr_svg: &'a str,
    pub secret: &'a str,
    pub uri: &'a str,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "login_totp.html")]
pub struct TotpLogin<'a> {
    pub tenant_name: &'a str,
    pub tenant_initial: char,
    pub action: String,
    pub csrf: &'a str,
    pub req: Option<&'a str>,
    pub email: &'a str,
    pub error: Option<&'a str>,
    pub back_url: String,
}

/// A UTC timestamp as people read it: "23 Nov 2026, 01:40 UTC".
pub fn when(unix_seconds: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix_seconds) {
        Ok(t) => format!(
            "{} {} {}, {:02}:{:02} UTC",
            t.day(),
            &t.month().to_string()[..3],
            t.year(),
            t.hour(),
            t.minute()
        ),
        Err(_) => "—".to_owned(),
    }
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct Logout<'a> {
    pub tenant_name: &'a str,
    pub tenant_initial: char,
    pub action: String,
    pub csrf: &'a str,
    pub id_token_hint: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub post_logout_redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct Message<'a> {
    pub tenant_name: &'a str,
    pub tenant_initial: char,
    pub heading: &'a str,
    pub message: &'a str,
    /// "error" or "ok"
    pub kind: &'a str,
    pub link: Option<(String, &'a str)>,
    /// A second, lesser way on.
    pub other_way: Option<(String, &'a str)>,
}

/// The stop before an error goes back to a client nobody vetted (`ErrorRedirect::confirm`).
#[derive(Template)]
#[template(path = "leaving.html")]
pub struct Leaving<'a> {
    pub tenant_name: &'a str,
    pub tenant_initial: char,
    pub host: &'a str,
    pub description: &'a str,
    pub url: &'a str,
}

#[derive(Template)]
#[template(path = "passkey.html")]
pub struct PasskeyPage<'a> {
    pub tenant_name: &'a str,
    pub tenant_initial: char,
    pub csrf: &'a str,
    /// The tenant's endpoint prefix, ending in `/`.
    pub base: String,
    pub req: Option<&'a str>,
    /// "enroll" or "verify"
    pub mode: &'a str,
    pub email: &'a str,
    pub recovery_url: String,
    /// Offered to an email-code session of a user with an authenticator app.
    pub totp_url: Option<String>,
    pub first: bool,
    /// The session began at the person's organization (SSO): the passkey is the second step.
    pub after_sso: bool,
}

#[derive(Template)]
#[template(path = "login_recovery.html")]
pub struct RecoveryLogin<'a> {
    pub tenant_name: &'a str,
    pub tenant_initial: char,
    pub action: String,
    pub csrf: &'a str,
    pub req: Option<&'a str>,
    pub email: &'a str,
    pub error: Option<&'a str>,
    pub back_url: String,
}

/// Plain-language descriptions for the consent page.
pub fn describe_scope(scope: &str) -> &'static str {
    match scope {
        "openid" => "Confirm who you are",
        "email" => "See your email address",
        "profile" => "See your basic profile",
        "offline_access" => "Stay connected when you are not using it",
        _ => "Access granted by this permission",
    }
}

/// An organization's administration page (`http::admin`): members, domains, SSO connections.
#[derive(Template)]
#[template(path = "org_admin.html")]
pub struct OrgAdmin<'a> {
    pub tenant_name: &'a str,
    pub tenant_initial: char,
    pub csrf: &'a str,
    /// Where the page's forms post: `{issuer}/org/{slug}/admin`.
    pub action: String,
    pub org_name: &'a str,
    pub org_slug: &'a str,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
    /// A passkey assertion less than five minutes old: changes are allowed.
    pub fresh: bool,
    pub step_up_url: String,
    pub members: Vec<MemberRow>,
    pub domains: Vec<DomainRow>,
    pub connections: Vec<ConnectionRow>,
    /// The OIDC redirect URI every OIDC connection of the tenant registers at its IdP.
    pub oidc_redirect_uri: String,
    /// The SCIM directory's base URL (what the IdP's "Tenant URL" takes).
    pub scim_base_url: String,
    pub scim: Option<ScimSection>,
    /// A directory token just issued: shown on this one response, never again.
    pub new_scim_token: Option<String>,
}

pub struct ScimSection {
    pub tokens: Vec<ScimTokenRow>,
    pub role_map: String,
    pub events: Vec<ScimEventRow>,
    pub users_total: u64,
    pub users: Vec<(String, &'static str)>,
    pub groups_total: u64,
    pub groups: Vec<(String, usize)>,
}

pub struct ScimTokenRow {
    pub id: String,
    pub prefix: String,
    pub state: String,
    pub live: bool,
}

pub struct ScimEventRow {
    pub when: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
}

pub struct MemberRow {
    pub user_id: String,
    pub email: String,
    pub roles: String,
}

pub struct DomainRow {
    pub domain: String,
    pub state: String,
    pub verified: bool,
    pub enforced: bool,
    pub record_name: String,
    pub record_value: String,
}

pub struct ConnectionRow {
    pub id: String,
    pub name: String,
    pub protocol: &'static str,
    /// Values to copy into the IdP's console (label, value).
    pub values: Vec<(&'static str, String)>,
    pub test_url: String,
}

/// What a connection test received and what a sign-in would have done.
#[derive(Template)]
#[template(path = "sso_test.html")]
pub struct SsoTest<'a> {
    pub tenant_name: &'a str,
    pub tenant_initial: char,
    pub connection_name: &'a str,
    pub claims: Vec<(&'static str, String)>,
    pub would: &'a str,
    pub roles: String,
    pub back_url: String,
}
