//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) and sign-out in general.

use crate::{
    app::Ctx,
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
    #[error(
        "A post-logout address needs the application to be identified (client_id or id_token_hint)."
    )]
    UnknownClient,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

pub async fn validate(
    ctx: &Ctx<'_>,
    id_token_hint: Option<&str>,
    client_id: Option<&str>,
    post_logout_redirect_uri: Option<&str>,
    state: Option<&str>,
) -> Result<LogoutRequest, LogoutError> {
    let keyring = ctx.keyring().await?;
    let hint = id_token_hint
        .map(|token| {
            jwt::verify_id_token_hint(&keyring, &ctx.issuer, token)
                .map_err(|_| LogoutError::BadHint)
        })
        .transpose()?;
    let client_id = client_id
        .map(str::to_owned)
        .or_else(|| hint.as_ref().map(|h| h.aud.clone()));
    let redirect = match post_logout_redirect_uri {
        None => None,
        Some(uri) => {
            let client_id = client_id.ok_or(LogoutError::UnknownClient)?;
            let client = ctx
                .client(&client_id)
                .await?
                .ok_or(LogoutError::UnknownClient)?;
            if !client.post_logout_redirect_uri_registered(uri) {
                return Err(LogoutError::UnregisteredRedirect);
            }
            let mut url = url::Url::parse(uri).map_err(|_| LogoutError::UnregisteredRedirect)?;
            if let Some(state) = state {
                url.query_pairs_mut().append_pair("state", state);
            }
            Some(url.to_string())
        }
    };
    Ok(LogoutRequest {
        redirect,
        hinted_subject: hint.map(|h| h.sub),
    })
}
