//! Passkeys (WebAuthn Level 3) through webauthn-rs: enrollment, and sign-in either for a known user or
//! with a discoverable credential (no email typed).
//!
//! Ceremony state lives in the database, not in process memory, so a ceremony started on one node
//! finishes on another. Each ceremony is consumed by one atomic UPDATE (single use) and expires after
//! [`CEREMONY_LIFETIME`] seconds. User verification is required in every ceremony.

pub mod aaguid;

use serde::{Serialize, de::DeserializeOwned};
use url::Url;
use latchkey_proto::{Acr, Amr};
use webauthn_rs::prelude::{
    CreationChallengeResponse, Credential, DiscoverableAuthentication, DiscoverableKey, Passkey,
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Webauthn, WebauthnBuilder, WebauthnError,
};
use webauthn_rs_proto::{AuthenticatorSelectionCriteria, ResidentKeyRequirement, UserVerificationPolicy};

use crate::{
    crypto::{self, base64url},
    store::{Scoped, StoreError, StoreResult, now, passkeys},
    user::{self, User},
};

pub const CEREMONY_LIFETIME: i64 = 300;

/// `acr` of a session whose latest authentication was a passkey assertion with user verification:
/// phishing-resistant. docs/acr.md lists every value.
pub const PASSKEY_ACR: Acr = Acr::Phr;
/// `acr` right after enrolling a passkey in a session begun with an email or recovery code: two
/// factors, but the first was phishable.
pub const ENROLLED_ACR: Acr = Acr::Mfa;

/// `amr` values (RFC 8176) for a passkey assertion with user verification: proof of possession of a
/// key (`hwk` for a device-bound credential, `swk` for a synced, backup-eligible one), the user
/// verified by the authenticator (`user`), and more than one factor (`mfa`).
pub fn assertion_amr(backup_eligible: bool) -> Vec<Amr> {
    let key = if backup_eligible { Amr::Swk } else { Amr::Hwk };
    vec![key, Amr::User, Amr::Mfa]
}

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("this sign-in attempt has expired or was already used; start again")]
    CeremonyGone,
    #[error("this passkey is not registered here")]
    UnknownCredential,
    #[error("this passkey is already registered")]
    AlreadyRegistered,
    #[error("the authenticator's signature counter went backwards: the passkey may have been cloned")]
    CounterRegression,
    #[error("the passkey response was not accepted: {0}")]
    Rejected(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The relying party: RP ID is the public URL's host, the only accepted origin is the public URL's.
pub fn relying_party(public_url: &Url, name: &str) -> Result<Webauthn, WebauthnError> {
    let rp_id = public_url.host_str().ok_or(WebauthnError::Configuration)?;
    let mut origin = public_url.clone();
    origin.set_path("");
    WebauthnBuilder::new(rp_id, &origin)?.rp_name(name).build()
}

#[derive(Clone, Copy)]
enum Kind {
    Registration,
    Authentication,
    Discoverable,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::Authentication => "authentication",
            Self::Discoverable => "discoverable",
        }
    }
}

async fn save_ceremony<S: Serialize>(
    scope: Scoped<'_>,
    kind: Kind,
    user_id: Option<&str>,
    session_id: Option<&str>,
    state: &S,
) -> Result<String, PasskeyError> {
    let id = crypto::random_token("");
    let now = now();
    let new = passkeys::NewCeremony {
        id_hash: crypto::sha256_hex(&id),
        kind: kind.as_str(),
        user_id,
        session_id,
        state: serde_json::to_string(state).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: now,
        expires_at: now + CEREMONY_LIFETIME,
    };
    passkeys::insert_ceremony(scope, new).await?;
    Ok(id)
}

/// Consumes a ceremony: exactly one caller, on any node, gets its state; expired, used, unknown or
/// bound to another session all read as gone.
async fn take_ceremony<S: DeserializeOwned>(
    scope: Scoped<'_>,
    kind: Kind,
    ceremony_id: &str,
    session_id: Option<&str>,
) -> Result<(Option<String>, S), PasskeyError> {
    let row = passkeys::take_ceremony(scope, &crypto::sha256_hex(ceremony_id), kind.as_str(), now())
        .await?
        .ok_or(PasskeyError::CeremonyGone)?;
    if session_id.is_some() && row.session_id.as_deref() != session_id {
        return Err(PasskeyError::CeremonyGone);
    }
    let state = serde_json::from_str(&row.state).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok((row.user_id, state))
}

/// A registered passkey as the account pages show it.
#[derive(Debug, Clone)]
pub struct StoredPasskey {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub backup_eligible: bool,
    /// The authenticator's model name, from its AAGUID, when it is a well-known one.
    pub provider: Option<&'static str>,
    credential: Passkey,
}

fn from_row(row: passkeys::PasskeyRow) -> StoreResult<StoredPasskey> {
    Ok(StoredPasskey {
        credential: serde_json::from_str(&row.credential)
            .map_err(|e| StoreError::Corrupt(format!("passkey {}: {e}", row.id)))?,
        id: row.id,
        name: row.name,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        backup_eligible: row.backup_eligible,
        provider: row.aaguid.as_deref().and_then(aaguid::name),
    })
}

pub async fn list(scope: Scoped<'_>, user_id: &str) -> StoreResult<Vec<StoredPasskey>> {
    passkeys::for_user(scope, user_id).await?.into_iter().map(from_row).collect()
}

/// Starts enrolling a passkey for `user`, bound to the browser session doing it. The authenticator is
/// asked for a discoverable credential (so the user can later sign in without typing an email) and
/// for user verification.
pub async fn start_registration(
    scope: Scoped<'_>,
    webauthn: &Webauthn,
    user: &User,
    session_id: &str,
) -> Result<(String, CreationChallengeResponse), PasskeyError> {
    let handle = user::passkey_handle(scope, user).await?;
    let existing = list(scope, &user.id).await?;
    let exclude = existing.iter().map(|p| p.credential.cred_id().clone()).collect();
    let (mut challenge, state) = webauthn
        .start_passkey_registration(handle, &user.email, &user.email, Some(exclude))
        .map_err(|e| PasskeyError::Rejected(e.to_string()))?;
    // webauthn-rs asks for `residentKey: discouraged`; discoverable sign-in needs a resident key.
    challenge.public_key.authenticator_selection = Some(AuthenticatorSelectionCriteria {
        authenticator_attachment: None,
        resident_key: Some(ResidentKeyRequirement::Required),
        require_resident_key: true,
        user_verification: UserVerificationPolicy::Required,
    });
    let id = save_ceremony(scope, Kind::Registration, Some(&user.id), Some(session_id), &state).await?;
    Ok((id, challenge))
}

/// Finishes an enrollment started by [`start_registration`] in the same session.
pub async fn finish_registration(
    scope: Scoped<'_>,
    webauthn: &Webauthn,
    session_id: &str,
    ceremony_id: &str,
    response: &RegisterPublicKeyCredential,
    name: &str,
) -> Result<(String, StoredPasskey), PasskeyError> {
    let (user_id, state): (_, PasskeyRegistration) =
        take_ceremony(scope, Kind::Registration, ceremony_id, Some(session_id)).await?;
    let user_id = user_id.ok_or(PasskeyError::CeremonyGone)?;
    let credential = webauthn
        .finish_passkey_registration(response, &state)
        .map_err(|e| PasskeyError::Rejected(e.to_string()))?;
    let credential_id = base64url(credential.cred_id().as_ref());
    let aaguid = aaguid::from_attestation_object(&response.response.attestation_object);
    let backup_eligible = Credential::from(credential.clone()).backup_eligible;
    let now = now();
    let row = passkeys::PasskeyRow {
        id: crypto::random_id(),
        tenant_id: scope.tenant_id().to_owned(),
        user_id: user_id.clone(),
        credential_id,
        name: clean_name(name),
        credential: serde_json::to_string(&credential).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        aaguid: aaguid.map(|a| a.to_string()),
        backup_eligible,
        created_at: now,
        last_used_at: None,
    };
    // A credential registered before, to anyone, is refused; the unique index on (tenant, credential
    // id) settles a race between two nodes.
    let taken = passkeys::find_by_credential_id(scope, &row.credential_id).await?.is_some();
    if taken {
        return Err(PasskeyError::AlreadyRegistered);
    }
    passkeys::insert(scope, row.clone()).await?;
    let stored = from_row(row)?;
    Ok((user_id, stored))
}

/// Starts a sign-in: for a known user (their passkeys are allowed), or discoverable (any passkey of
/// this site; the authenticator says whose).
pub async fn start_authentication(
    scope: Scoped<'_>,
    webauthn: &Webauthn,
    user: Option<&User>,
) -> Result<(String, RequestChallengeResponse), PasskeyError> {
    match user {
        Some(user) => {
            let passkeys: Vec<Passkey> = list(scope, &user.id)
                .await?
                .into_iter()
                .map(|p| p.credential)
                .collect();
            if passkeys.is_empty() {
                return Err(PasskeyError::UnknownCredential);
            }
            let (challenge, state) = webauthn
                .start_passkey_authentication(&passkeys)
                .map_err(|e| PasskeyError::Rejected(e.to_string()))?;
            let id = save_ceremony(scope, Kind::Authentication, Some(&user.id), None, &state).await?;
            Ok((id, challenge))
        }
        None => {
            let (challenge, state) = webauthn
                .start_discoverable_authentication()
                .map_err(|e| PasskeyError::Rejected(e.to_string()))?;
            let id = save_ceremony(scope, Kind::Discoverable, None, None, &state).await?;
            Ok((id, challenge))
        }
    }
}

/// A verified assertion.
pub struct Verified {
    pub user: User,
    pub passkey_id: String,
    pub amr: Vec<Amr>,
}

/// Finishes a sign-in started by [`start_authentication`]. Checks the challenge, origin, RP ID, user
/// verification and signature (webauthn-rs), then the signature counter against the stored one: a
/// counter that did not increase means a cloned authenticator, and the assertion is refused.
pub async fn finish_authentication(
    scope: Scoped<'_>,
    webauthn: &Webauthn,
    ceremony_id: &str,
    discoverable: bool,
    response: &PublicKeyCredential,
) -> Result<Verified, PasskeyError> {
    let credential_id = base64url(response.get_credential_id());
    let row = passkeys::find_by_credential_id(scope, &credential_id).await?;
    // Consume the ceremony first: whatever happens next, this challenge is spent.
    let state = if discoverable {
        let (_, state) = take_ceremony(scope, Kind::Discoverable, ceremony_id, None).await?;
        AssertionState::Discoverable(state)
    } else {
        let (user_id, state) = take_ceremony(scope, Kind::Authentication, ceremony_id, None).await?;
        AssertionState::ForUser(user_id, state)
    };
    let row = row.ok_or(PasskeyError::UnknownCredential)?;
    let user = user::find(scope, &row.user_id).await?.ok_or(PasskeyError::UnknownCredential)?;
    let mut stored = from_row(row)?;
    let result = match state {
        AssertionState::Discoverable(state) => {
            // The user handle the authenticator returned must be the credential owner's.
            let (handle, _) = webauthn
                .identify_discoverable_authentication(response)
                .map_err(|e| PasskeyError::Rejected(e.to_string()))?;
            if user.passkey_handle.as_deref() != Some(handle.to_string().as_str()) {
                return Err(PasskeyError::UnknownCredential);
            }
            let key = DiscoverableKey::from(&stored.credential);
            webauthn
                .finish_discoverable_authentication_v2(response, state, &key)
                .map_err(map_assertion_error)?
        }
        AssertionState::ForUser(ceremony_user, state) => {
            if ceremony_user.as_deref() != Some(user.id.as_str()) {
                return Err(PasskeyError::UnknownCredential);
            }
            webauthn
                .finish_passkey_authentication(response, &state)
                .map_err(map_assertion_error)?
        }
    };
    let previous = Credential::from(stored.credential.clone()).counter;
    // WebAuthn §6.1.1: a non-zero counter must grow. webauthn-rs checks this against the state's copy;
    // check again against the stored credential, which another node may have advanced meanwhile.
    if (result.counter() != 0 || previous != 0) && result.counter() <= previous {
        return Err(PasskeyError::CounterRegression);
    }
    stored.credential.update_credential(&result);
    let credential = serde_json::to_string(&stored.credential).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    passkeys::record_use(scope, &stored.id, credential, now()).await?;
    Ok(Verified {
        user,
        passkey_id: stored.id,
        amr: assertion_amr(result.backup_eligible()),
    })
}

enum AssertionState {
    Discoverable(DiscoverableAuthentication),
    /// For the user the ceremony was started for.
    ForUser(Option<String>, PasskeyAuthentication),
}

fn map_assertion_error(error: WebauthnError) -> PasskeyError {
    match error {
        WebauthnError::CredentialPossibleCompromise => PasskeyError::CounterRegression,
        other => PasskeyError::Rejected(other.to_string()),
    }
}

pub async fn rename(scope: Scoped<'_>, user_id: &str, passkey_id: &str, name: &str) -> Result<bool, PasskeyError> {
    Ok(passkeys::rename(scope, user_id, passkey_id, &clean_name(name)).await?)
}

pub async fn remove(scope: Scoped<'_>, user_id: &str, passkey_id: &str) -> Result<bool, PasskeyError> {
    Ok(passkeys::remove(scope, user_id, passkey_id).await?)
}

/// Names are the user's own labels: printable, at most 64 characters, never empty.
fn clean_name(name: &str) -> String {
    let cleaned: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() { "Passkey".to_owned() } else { trimmed.to_owned() }
}
