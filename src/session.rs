//! Browser sessions: a server-side row (any node can read it) named by the SHA-256 of a random cookie
//! value, with an idle and an absolute expiry.

use latchkey_proto::{Acr, Amr, Secret};

use crate::{
    audit::Origin,
    config::Lifetimes,
    crypto::{self, sha256_hex},
    store::{Scoped, StoreResult, now, sessions},
};

#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the cookie value; safe to reference (audit, `sid` claim).
    pub id: String,
    pub user_id: String,
    pub auth_time: i64,
    pub amr: Vec<Amr>,
    pub acr: Acr,
    pub created_at: i64,
}

impl Session {
    /// Multi-factor: a passkey was verified in this session (its level completes an authorization).
    /// An email or recovery code, or an SSO sign-in, alone is a bootstrap that can only enroll or
    /// confirm a passkey. Not `amr`'s `mfa`: after SSO that may be what the identity provider did.
    pub fn is_multi_factor(&self) -> bool {
        self.acr.completes_authorization()
    }

    /// A full session whose last passkey assertion is recent enough for a sensitive account action
    /// (adding or removing a passkey, new recovery codes, the authenticator app).
    pub fn is_fresh(&self, lifetimes: &Lifetimes, now: i64) -> bool {
        self.is_multi_factor() && now - self.auth_time < lifetimes.step_up
    }
}

/// `methods` added to `amr`, each once, in order: a passkey's methods after what began the session.
pub fn add_methods(amr: &mut Vec<Amr>, methods: impl IntoIterator<Item = Amr>) {
    for method in methods {
        if !amr.contains(&method) {
            amr.push(method);
        }
    }
}

/// A live session as the account page lists it (when it began, was last seen, from where).
pub use crate::store::sessions::StoredSession as ActiveSession;

/// How the user proved who they are in this session.
pub struct Authentication {
    pub amr: Vec<Amr>,
    pub acr: Acr,
}

impl From<sessions::StoredSession> for Session {
    fn from(row: sessions::StoredSession) -> Self {
        Self { id: row.id, user_id: row.user_id, auth_time: row.auth_time, amr: row.amr, acr: row.acr, created_at: row.created_at }
    }
}

/// Creates a session and returns the cookie value (the only place it exists in clear).
pub async fn create(
    scope: Scoped<'_>,
    user_id: &str,
    authn: Authentication,
    origin: &Origin,
    lifetimes: &Lifetimes,
) -> StoreResult<(Secret, Session)> {
    let cookie_value = crypto::random_token("");
    let id = sha256_hex(&cookie_value);
    let now = now();
    sessions::insert(
        scope,
        sessions::NewSession {
            id: &id,
            user_id,
            amr: &authn.amr,
            acr: authn.acr,
            created_at: now,
            expires_at: now + lifetimes.session_absolute,
            ip: origin.ip.clone(),
            user_agent: origin.user_agent.as_ref().map(|ua| ua.chars().take(512).collect()),
        },
    )
    .await?;
    let session = Session { id, user_id: user_id.to_owned(), auth_time: now, amr: authn.amr, acr: authn.acr, created_at: now };
    Ok((Secret::new(cookie_value), session))
}

/// The live session for a cookie value, if any. Refreshes `last_seen_at` at most once a minute.
pub async fn find_active(scope: Scoped<'_>, cookie_value: &str, lifetimes: &Lifetimes) -> StoreResult<Option<Session>> {
    let now = now();
    let Some(row) = sessions::find_open(scope, &sha256_hex(cookie_value)).await? else {
        return Ok(None);
    };
    if row.expires_at <= now || row.last_seen_at + lifetimes.session_idle <= now {
        return Ok(None);
    }
    if now - row.last_seen_at >= 60 {
        sessions::touch(scope, &row.id, now).await?;
    }
    Ok(Some(row.into()))
}

/// Whether the session with this id (not a cookie value) is still live: not ended, not expired.
/// An authorization code is redeemed only while the session it came from is.
pub async fn is_live(scope: Scoped<'_>, session_id: &str, lifetimes: &Lifetimes) -> StoreResult<bool> {
    let now = now();
    sessions::is_live(scope, session_id, now, now - lifetimes.session_idle).await
}

/// Records a new, stronger authentication in an existing session (a passkey assertion or enrollment):
/// its methods, level and time replace the old ones.
pub async fn elevate(scope: Scoped<'_>, session_id: &str, authn: Authentication) -> StoreResult<()> {
    sessions::set_authentication(scope, session_id, &authn.amr, authn.acr, now()).await
}

/// The user's live sessions, most recently seen first.
pub async fn list_for_user(scope: Scoped<'_>, user_id: &str, lifetimes: &Lifetimes) -> StoreResult<Vec<ActiveSession>> {
    let now = now();
    sessions::live_for_user(scope, user_id, now, now - lifetimes.session_idle).await
}

/// Ends every live session of the user; returns their ids (their refresh-token families go too).
pub async fn end_all_for_user(scope: Scoped<'_>, user_id: &str) -> StoreResult<Vec<String>> {
    sessions::end_all_for_user(scope, user_id, now()).await
}

/// Ends one of the user's sessions (named by its id from the account page). False if it is not theirs
/// or already ended.
pub async fn end_for_user(scope: Scoped<'_>, user_id: &str, session_id: &str) -> StoreResult<bool> {
    sessions::end(scope, session_id, Some(user_id), now()).await
}

/// Ends the session. The caller also ends the refresh-token families bound to it.
pub async fn end(scope: Scoped<'_>, session_id: &str) -> StoreResult<()> {
    sessions::end(scope, session_id, None, now()).await?;
    Ok(())
}
