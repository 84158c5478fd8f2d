//! The UserInfo endpoint (OIDC Core §5.3) with bearer tokens per RFC 6750: the claims of the scopes
//! the token carries (§5.4), as JSON or, for a client that registered `userinfo_signed_response_alg`,
//! as a JWT signed with the tenant's key (§5.3.2).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::{
    context::Ctx,
    client::Client,
    jwt,
    oauth::error::{ErrorCode, OAuthError},
    user::{self, User},
};

/// A UserInfo answer and the client the token was issued to (whose origins may read it).
pub struct UserInfo {
    pub client: Option<Arc<Client>>,
    pub body: Body,
}

pub enum Body {
    Json(Value),
    /// `application/jwt` (OIDC Core §5.3.2).
    Jwt(String),
}

/// The claims of a person the scopes allow (OIDC Core §5.4): `email` → `email`, `email_verified`;
/// `profile` → the profile claims that are set, and `updated_at`.
pub fn claims_for(user: &User, scopes: &[&str]) -> Value {
    let mut body = json!({ "sub": user.id });
    if scopes.contains(&"email") {
        body["email"] = json!(user.email);
        body["email_verified"] = json!(user.email_verified);
    }
    if scopes.contains(&"profile")
        && let Value::Object(map) = &mut body
    {
        map.extend(user::profile_claims(user));
    }
    body
}

pub async fn userinfo(ctx: &Ctx<'_>, access_token: &str) -> Result<UserInfo, OAuthError> {
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
    if claims.aud != ctx.issuer || crate::oauth::revocation_check::is_revoked(ctx, &claims).await? {
        return Err(invalid());
    }
    let scopes: Vec<&str> = claims.scopes().collect();
    if !scopes.contains(&"openid") {
        return Err(OAuthError::new(
            ErrorCode::InsufficientScope,
            "the openid scope is required",
        ));
    }
    let user = user::find(ctx.scope(), &claims.sub)
        .await?
        .filter(|u| u.disabled_at.is_none())
        .ok_or_else(invalid)?;
    let body = claims_for(&user, &scopes);
    let client = ctx.client(&claims.client_id).await?;
    let Some(alg) = client.as_ref().and_then(|c| c.userinfo_alg) else {
        return Ok(UserInfo { client, body: Body::Json(body) });
    };
    // §5.3.2: a signed response SHOULD carry `iss` and `aud` (the client), so it cannot be replayed
    // to another client as this one's.
    let mut signed = body;
    signed["iss"] = json!(ctx.issuer);
    signed["aud"] = json!(claims.client_id);
    let keyring = ctx.keyring().await?;
    let jwt = jwt::sign_userinfo(&keyring, alg, &signed)?;
    Ok(UserInfo { client, body: Body::Jwt(jwt) })
}
