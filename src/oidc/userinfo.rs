//! The UserInfo endpoint (OIDC Core §5.3) with bearer tokens per RFC 6750.

use serde_json::{Value, json};

use crate::{
    app::Ctx,
    oauth::{
        error::{ErrorCode, OAuthError},
        revocation_check::is_revoked,
    },
    user,
};

pub async fn userinfo(ctx: &Ctx<'_>, access_token: &str) -> Result<Value, OAuthError> {
    let invalid = || {
        OAuthError::new(
            ErrorCode::InvalidToken,
            "the access token is invalid, expired or revoked",
        )
    };
    let claims = ctx
        .verify_access_token(access_token)
        .await?
        .ok_or_else(invalid)?;
    if claims.aud != ctx.issuer || is_revoked(ctx, &claims).await? {
        return Err(invalid());
    }
    if !claims.scopes().any(|s| s == "openid") {
        return Err(OAuthError::new(
            ErrorCode::InsufficientScope,
            "the openid scope is required",
        ));
    }
    let user = user::find(ctx.scope(), &claims.sub)
        .await?
        .filter(|u| u.disabled_at.is_none())
        .ok_or_else(invalid)?;
    let mut body = json!({ "sub": user.id });
    if claims.scopes().any(|s| s == "email") {
        body["email"] = json!(user.email);
        body["email_verified"] = json!(user.email_verified);
    }
    Ok(body)
}
