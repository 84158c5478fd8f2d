//! Self-service account management: the user's passkeys, recovery codes, sessions and the apps that
//! hold grants for them. Changes that could lock the owner out, or let an intruder in, need a passkey
//! assertion at most `lifetimes.step_up` old (five minutes; `Session::is_fresh`); protective actions
//! (signing out, removing an app's access, renaming) do not.

use crate::{
    context::Ctx,
    audit::Event,
    consent,
    client::document,
    oauth::families,
    passkey::{self, PasskeyError},
    recovery, session,
    session::Session,
    store::{StoreError, StoreResult, now},
    totp::{self, Enrollment, TotpError},
};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("Confirm it is you with one of your passkeys first.")]
    StepUpRequired,
    #[error("That is not one of yours, or it is already gone.")]
    NotFound,
    #[error(
        "This is your only passkey and no other way back in remains: add another passkey, new recovery codes or an authenticator app first."
    )]
    LastPasskey,
    #[error("{0}")]
    Totp(TotpError),
    /// A profile value that is not what its field means (the message names the field).
    #[error("{0}")]
    Profile(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TotpError> for AccountError {
    fn from(error: TotpError) -> Self {
        match error {
            TotpError::Store(e) => AccountError::Store(e),
            other => AccountError::Totp(other),
        }
    }
}

impl From<PasskeyError> for AccountError {
    fn from(error: PasskeyError) -> Self {
        match error {
            PasskeyError::Store(e) => AccountError::Store(e),
            _ => AccountError::NotFound,
        }
    }
}

fn require_fresh(ctx: &Ctx<'_>, session: &Session) -> Result<(), AccountError> {
    if session.is_fresh(ctx.lifetimes(), now()) {
        Ok(())
    } else {
        Err(AccountError::StepUpRequired)
    }
}

fn actor(session: &Session) -> String {
    format!("user:{}", session.user_id)
}

/// The person's own name (OIDC Core §5.1 `name`, `given_name`, `family_name`): changing what others
/// are told one is called is not a way in, so no fresh passkey is needed. The rest of the profile is
/// kept as it is.
pub async fn set_name(
    ctx: &Ctx<'_>,
    session: &Session,
    name: &str,
    given_name: &str,
    family_name: &str,
) -> Result<(), AccountError> {
    let user = crate::user::find(ctx.scope(), &session.user_id).await?.ok_or(AccountError::NotFound)?;
    // Left empty, the full name is the given and family names in that order.
    let name = match name.trim() {
        "" => [given_name.trim(), family_name.trim()].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join(" "),
        name => name.to_owned(),
    };
    let profile = crate::user::Profile {
        name: Some(name),
        given_name: Some(given_name.to_owned()),
        family_name: Some(family_name.to_owned()),
        ..crate::user::Profile::of(&user)
    }
    .checked()
    .map_err(AccountError::Profile)?;
    crate::user::set_profile(ctx.scope(), &user.id, profile).await?;
    ctx.audit(Event::new(&ctx.tenant.id, actor(session), "user.profile").target(format!("user:{}", user.id))).await;
    Ok(())
}

pub async fn rename_passkey(
    ctx: &Ctx<'_>,
    session: &Session,
    passkey_id: &str,
    name: &str,
) -> Result<(), AccountError> {
    if !passkey::rename(ctx.scope(), &session.user_id, passkey_id, name).await? {
        return Err(AccountError::NotFound);
    }
    ctx.audit(Event::new(&ctx.tenant.id, actor(session), "passkey.rename").target(format!("passkey:{passkey_id}")))
        .await;
    Ok(())
}

/// Whether the user could get back in without a passkey: unused recovery codes or an authenticator app.
async fn has_recovery_path(ctx: &Ctx<'_>, user_id: &str) -> Result<bool, AccountError> {
    Ok(recovery::remaining(ctx.scope(), user_id).await? > 0 || totp::enabled_since(ctx.scope(), user_id).await?.is_some())
}

/// Removes a passkey. The last one goes only while a way back in remains.
pub async fn remove_passkey(
    ctx: &Ctx<'_>,
    session: &Session,
    passkey_id: &str,
) -> Result<(), AccountError> {
    require_fresh(ctx, session)?;
    let passkeys = passkey::list(ctx.scope(), &session.user_id).await?;
    if !passkeys.iter().any(|p| p.id == passkey_id) {
        return Err(AccountError::NotFound);
    }
    if passkeys.len() == 1 && !has_recovery_path(ctx, &session.user_id).await? {
        return Err(AccountError::LastPasskey);
    }
    if !passkey::remove(ctx.scope(), &session.user_id, passkey_id).await? {
        return Err(AccountError::NotFound);
    }
    ctx.audit(Event::new(&ctx.tenant.id, actor(session), "passkey.remove").target(format!("passkey:{passkey_id}")))
        .await;
    Ok(())
}

/// A new set of ten recovery codes; every old one stops working.
pub async fn regenerate_recovery_codes(
    ctx: &Ctx<'_>,
    session: &Session,
) -> Result<Vec<latchkey_proto::Secret>, AccountError> {
    require_fresh(ctx, session)?;
    let codes = recovery::regenerate(ctx.scope(), &ctx.services.hasher, &session.user_id).await?;
    ctx.audit(Event::new(&ctx.tenant.id, actor(session), "recovery_codes.generate")).await;
    Ok(codes)
}

/// Starts setting up an authenticator app (or shows the pending set-up again).
pub async fn begin_totp(ctx: &Ctx<'_>, session: &Session, email: &str) -> Result<Enrollment, AccountError> {
    require_fresh(ctx, session)?;
    Ok(totp::begin(ctx.scope(), &ctx.tenant.data_key, &ctx.tenant.display_name, &session.user_id, email).await?)
}

/// Turns the pending authenticator app on with its first code. The set-up page was reached with a
/// fresh assertion; scanning and typing may take longer than the window, so this only needs a full
/// session.
pub async fn confirm_totp(ctx: &Ctx<'_>, session: &Session, code: &str) -> Result<(), AccountError> {
    let result = totp::confirm(ctx.scope(), &ctx.tenant.data_key, &session.user_id, code).await;
    let event = Event::new(&ctx.tenant.id, actor(session), "totp.enable");
    ctx.audit(if result.is_ok() { event } else { event.failed() }).await;
    Ok(result?)
}

pub async fn remove_totp(ctx: &Ctx<'_>, session: &Session) -> Result<(), AccountError> {
    require_fresh(ctx, session)?;
    if ctx.tenant.require_totp {
        return Err(AccountError::Totp(TotpError::Required));
    }
    let passkeys = passkey::list(ctx.scope(), &session.user_id).await?;
    if passkeys.is_empty() && recovery::remaining(ctx.scope(), &session.user_id).await? == 0 {
        return Err(AccountError::LastPasskey);
    }
    if !totp::remove(ctx.scope(), &session.user_id).await? {
        return Err(AccountError::NotFound);
    }
    ctx.audit(Event::new(&ctx.tenant.id, actor(session), "totp.remove")).await;
    Ok(())
}

/// Signs out one of the user's sessions (another browser, or this one) and ends its grants.
pub async fn end_session(ctx: &Ctx<'_>, session: &Session, target_id: &str) -> Result<(), AccountError> {
    if !session::end_for_user(ctx.scope(), &session.user_id, target_id).await? {
        return Err(AccountError::NotFound);
    }
    let revoked = families::revoke_for_session(ctx.scope(), target_id, "signed_out").await?;
    ctx.audit(
        Event::new(&ctx.tenant.id, actor(session), "session.end")
            .target(format!("session:{}", target_id.get(..16).unwrap_or(target_id)))
            .details(serde_json::json!({ "families_revoked": revoked })),
    )
    .await;
    Ok(())
}

/// Ends every session of the user and revokes every refresh-token family, whichever client holds
/// it. Returns (sessions, families) ended.
pub async fn sign_out_everywhere(ctx: &Ctx<'_>, user_id: &str) -> StoreResult<(usize, usize)> {
    let sessions = session::end_all_for_user(ctx.scope(), user_id).await?;
    let families = families::revoke_for_user(ctx.scope(), user_id, None, "signed_out_everywhere").await?;
    ctx.audit(
        Event::new(&ctx.tenant.id, format!("user:{user_id}"), "session.end_all")
            .details(serde_json::json!({ "sessions": sessions.len(), "families_revoked": families })),
    )
    .await;
    Ok((sessions.len(), families))
}

/// An app that the user approved or that holds a live grant for them.
pub struct AppAccess {
    pub client_id: String,
    pub name: String,
    /// What the user approved: for each resource (`None`: the tenant's own endpoints), the scopes.
    pub approved: Vec<(Option<String>, Vec<String>)>,
    /// The latest approval.
    pub granted_at: Option<i64>,
    pub live_grants: usize,
    /// For a client described by a metadata document: the host that publishes it.
    pub document_host: Option<String>,
}

pub async fn apps(ctx: &Ctx<'_>, user_id: &str) -> StoreResult<Vec<AppAccess>> {
    let mut live = families::live_count_by_client(ctx.scope(), user_id).await?;
    // Approvals grouped by client, in the order of each client's latest one (the list is newest first).
    let mut approvals: Vec<(String, Vec<consent::Granted>)> = Vec::new();
    for (client_id, granted) in consent::list_for_user(ctx.scope(), user_id).await? {
        match approvals.iter_mut().find(|(id, _)| *id == client_id) {
            Some((_, list)) => list.push(granted),
            None => approvals.push((client_id, vec![granted])),
        }
    }
    let with_grants_only: Vec<String> = live.keys().filter(|id| !approvals.iter().any(|(c, _)| c == *id)).cloned().collect();
    let entries = approvals.into_iter().chain(with_grants_only.into_iter().map(|id| (id, Vec::new())));
    let mut apps = Vec::new();
    for (client_id, granted) in entries {
        let document_host = document::document_host(&client_id);
        let name = match ctx.client(&client_id).await? {
            Some(client) => client.name.clone(),
            // A client described by a metadata document stays listed while its document cannot be
            // fetched: the user must still be able to take its access away.
            None if document_host.is_some() => "Unavailable application".to_owned(),
            // A client deleted by the operator no longer holds anything worth listing.
            None => continue,
        };
        apps.push(AppAccess {
            name,
            document_host,
            granted_at: granted.iter().map(|g| g.granted_at).max(),
            approved: granted.into_iter().map(|g| (g.resource, g.scopes)).collect(),
            live_grants: live.remove(&client_id).unwrap_or(0),
            client_id,
        });
    }
    Ok(apps)
}

/// Takes an app's access away: its remembered consent and every grant it holds for the user.
pub async fn revoke_app(ctx: &Ctx<'_>, session: &Session, client_id: &str) -> Result<(), AccountError> {
    let forgot = consent::revoke(ctx.scope(), &session.user_id, client_id).await?;
    let revoked = families::revoke_for_user(ctx.scope(), &session.user_id, Some(client_id), "access_removed").await?;
    if !forgot && revoked == 0 {
        return Err(AccountError::NotFound);
    }
    ctx.audit(
        Event::new(&ctx.tenant.id, actor(session), "app.access_removed")
            .target(format!("client:{client_id}"))
            .details(serde_json::json!({ "families_revoked": revoked })),
    )
    .await;
    Ok(())
}
