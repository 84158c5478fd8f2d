//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) and sign-out in general.

use crate::{
    context::Ctx,
    audit::Event,
    jwt,
    oauth::families,
    session::{self, Session},
    store::StoreResult,
};

/// Ends the session and every refresh-token family bound to it.
pub async fn end_session(ctx: &Ctx<'_>, session: &Session) -> StoreResult<()> {
    session::end(ctx.scope(), &session.id).await?;
    let revoked = families::revoke_for_session(ctx.scope(), &session.id, "signed_out").await?;
    ctx.audit(
        Event::new(
            &ctx.tenant.id,
            format!("user:{}", session.user_id),
            "session.end",
        )
        .details(serde_json::json!({ "families_revoked": revoked })),
    )
    .await;
    Ok(())
}

/// The validated logout request.
pub struct LogoutRequest {
    /// Where to send the browser afterwards (registered for the client), with `state` appended.
    pub redirect: Option<String>,
    /// The ID token hint named this user (so no confirmation is needed for this session's user).
    pub hinted_subject: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    #[error("The id_token_hint is not an ID token issued here.")]
    BadHint,
    #[error("The post-logout address is not registered for this application.")]
    UnregisteredRedirect,
    #[error("The application this ID token was issued to is not registered here.")]
    UnknownClient,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Checks a logout request. `post_logout_redirect_uri` is honoured only with a valid `id_token_hint`
/// (RP-Initiated Logout 1.0 §3): the hint proves which relying party asks, and without it anybody
/// could make this origin send a browser to whatever a self-registered client lists. Without a
/// hint the person is signed out and stays here.
pub async fn validate(
    ctx: &Ctx<'_>,
    id_token_hint: Option<&str>,
    client_id: Option<&str>,
    post_logout_redirect_uri: Option<&str>,
    state: Option<&str>,
) -> Result<LogoutRequest, LogoutError> {
    let hint = match id_token_hint {
        Some(token) => Some(verified_hint(ctx, token).await?),
        None => None,
    };
    let redirect = match (post_logout_redirect_uri, &hint) {
        (Some(uri), Some(hint)) => {
            if client_id.is_some_and(|id| id != hint.aud) {
                return Err(LogoutError::BadHint);
            }
            let client = ctx.client(&hint.aud).await?.ok_or(LogoutError::UnknownClient)?;
            if !client.post_logout_redirect_uri_registered(uri) {
                return Err(LogoutError::UnregisteredRedirect);
            }
            let mut url = url::Url::parse(uri).map_err(|_| LogoutError::UnregisteredRedirect)?;
            if let Some(state) = state {
                url.query_pairs_mut().append_pair("state", state);
            }
            Some(url.to_string())
        }
        _ => None,
    };
    Ok(LogoutRequest {
        redirect,
        hinted_subject: hint.map(|h| h.sub),
    })
}

/// An ID token this issuer signed for one of its clients (`jwt::verify_id_token_hint` checks the
/// signature, `typ` and issuer; its audience must be a client of this tenant, not a resource).
async fn verified_hint(ctx: &Ctx<'_>, token: &str) -> Result<jwt::IdTokenClaims, LogoutError> {
    let keyring = ctx.keyring().await?;
    let claims = jwt::verify_id_token_hint(&keyring, &ctx.issuer, token).map_err(|_| LogoutError::BadHint)?;
    if ctx.client(&claims.aud).await?.is_none() {
        return Err(LogoutError::BadHint);
    }
    Ok(claims)
}
