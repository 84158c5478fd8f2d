//! Token revocation (RFC 7009). A client may revoke only its own tokens; unknown or foreign tokens get the
//! same 200 as a success (§2.2), so the endpoint reveals nothing.

use super::{client_auth, error::OAuthError, families, params::Params};
use crate::{context::Ctx, audit::Event, jwt, store::{access_tokens, now}};

pub async fn revoke(
    ctx: &Ctx<'_>,
    authorization: Option<&str>,
    params: &Params,
) -> Result<(), OAuthError> {
    let presented = client_auth::presented(authorization, params)?;
    let client = client_auth::authenticate(ctx.client(&presented.client_id).await?, &presented)?;
    let token = params.require("token")?;
    let scope = ctx.scope();
    let actor = format!("client:{}", client.client_id);

    if let Some(refresh) = families::find_refresh_token(scope, token).await? {
        if refresh.family.client_id == client.client_id
            && families::revoke(scope, &refresh.family.id, "revoked_by_client").await?
        {
            ctx.audit(
                Event::new(&ctx.tenant.id, actor, "token.revoke")
                    .target(format!("family:{}", refresh.family.id)),
            )
            .await;
        }
        return Ok(());
    }
    if let Some(claims) = ctx.verify_access_token(token).await?
        && claims.client_id == client.client_id
    {
        revoke_access_token(ctx, &claims).await?;
        ctx.audit(
            Event::new(&ctx.tenant.id, actor, "token.revoke")
                .target(format!("access_token:{}", claims.jti)),
        )
        .await;
    }
    Ok(())
}

async fn revoke_access_token(ctx: &Ctx<'_>, claims: &jwt::AccessClaims) -> Result<(), OAuthError> {
    Ok(access_tokens::revoke(ctx.scope(), &claims.jti, &claims.client_id, claims.exp, now()).await?)
}
