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
    pub email: &'a str,
    /// (scope, what it lets the application do)
    pub scopes: Vec<(String, &'static str)>,
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
    pub notice: Option<&'static str>,
    pub error: Option<String>,
    /// A passkey assertion less than five minutes old: sensitive changes are allowed.
    pub fresh: bool,
    pub step_up_url: String,
    pub passkeys: Vec<PasskeyRow>,
    pub recovery_left: u64,
    pub sessions: Vec<SessionRow>,
    pub apps: Vec<AppRow>,
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
    pub created: String,
    pub last_seen: String,
    pub current: bool,
}

pub struct AppRow {
    pub client_id: String,
    pub name: String,
    pub scopes: String,
    pub granted: String,
    pub grants: usize,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodes<'a> {
    pub tenant_name: &'a str,
    pub tenant_initial: char,
    pub codes: Vec<String>,
    pub download_href: String,
    pub continue_url: String,
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
    pub first: bool,
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
