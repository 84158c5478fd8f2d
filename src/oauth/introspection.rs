//! Token introspection (RFC 7662), for the resource servers an operator designates: a confidential
//! client that may describe the tokens of its own resources (their `aud`), or every token of the
//! tenant (`latchkey client introspection`). Any other client is refused; a token it may not see is
//! reported inactive (RFC 7662 §2.2), so introspection tells nothing about other resources' tokens.

use serde_json::{Value, json};

use super::{
    client_auth,
    error::{ErrorCode, OAuthError},
    families,
    params::Params,
    revocation_check,
};
use crate::{context::Ctx, client::Introspection, store::now};

pub async fn introspect(
    ctx: &Ctx<'_>,
    authorization: Option<&str>,
    params: &Params,
) -> Result<Value, OAuthError> {
    let presented = client_auth::presented(authorization, params)?;
    let client = client_auth::authenticate(ctx.client(&presented.client_id).await?, &presented)?;
    if !client.is_confidential() {
        return Err(OAuthError::invalid_client(presented.via_basic));
    }
    if client.introspection == Introspection::None {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "this client may not introspect tokens"));
    }
    let token = params.require("token")?;
    let scope = ctx.scope();
    let inactive = json!({ "active": false });

    if let Some(refresh) = families::find_refresh_token(scope, token).await? {
        let family = &refresh.family;
        if refresh.rotated || !refresh.is_live(ctx.lifetimes().refresh_idle, now()) || !client.introspection.covers(family.resource.as_deref()) {
            return Ok(inactive);
        }
        return Ok(json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": family.client_id,
            "sub": family.user_id,
            "scope": family.scopes.join(" "),
            "exp": family.absolute_expires_at,
            "iss": ctx.issuer,
        }));
    }
    let Some(claims) = ctx.verify_access_token(token).await? else {
        return Ok(inactive);
    };
    // Tokens without a resource carry the issuer as `aud` (the tenant's own endpoints).
    let audience = (claims.aud != ctx.issuer).then_some(claims.aud.as_str());
    if claims.exp <= now() || !client.introspection.covers(audience) || revocation_check::is_revoked(ctx, &claims).await? {
        return Ok(inactive);
    }
    let mut body = json!({
        "active": true,
        "token_type": "Bearer",
        "client_id": claims.client_id,
        "sub": claims.sub,
        "aud": claims.aud,
        "iss": claims.iss,
        "exp": claims.exp,
        "iat": claims.iat,
        "jti": claims.jti,
        "scope": claims.scope,
    });
    if let Some(auth_time) = claims.auth_time {
        body["auth_time"] = json!(auth_time);
    }
    if let Some(acr) = &claims.acr {
        body["acr"] = json!(acr);
    }
    if let Some(amr) = &claims.amr {
        body["amr"] = json!(amr);
    }
    for (name, value) in [("caller", json!(claims.caller)), ("org", json!(claims.org)), ("roles", json!(claims.roles))] {
        if !value.is_null() {
            body[name] = value;
        }
    }
    Ok(body)
}
