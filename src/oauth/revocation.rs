//! Token revocation (RFC 7009). A client may revoke only its own tokens; unknown or foreign tokens get the
//! same 200 as a success (§2.2), so the endpoint reveals nothing.

use entity::access_token;
use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter};

use super::{client_auth, error::OAuthError, families, params::Params};
use crate::{app::Ctx, audit::Event, jwt, store::now};

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
    let scope = ctx.scope();
    let updated = scope
        .update::<access_token::Entity>()
        .col_expr(access_token::Column::RevokedAt, now().into())
        .filter(access_token::Column::Jti.eq(&claims.jti))
        .exec(scope.db)
        .await?;
    if updated.rows_affected == 0 {
        // Tokens outside a family (client_credentials) are not recorded until revoked.
        let row = access_token::ActiveModel {
            jti: Set(claims.jti.clone()),
            family_id: Set(None),
            client_id: Set(claims.client_id.clone()),
            expires_at: Set(claims.exp),
            revoked_at: Set(Some(now())),
            ..Default::default()
        };
        // A concurrent revocation may have inserted it first (the insert then fails on the primary key):
        // that is success. Any other failure must not be reported as a revocation.
        if let Err(insert_error) = scope.insert::<access_token::Entity, _>(row).await {
            let already = scope
                .select::<access_token::Entity>()
                .filter(access_token::Column::Jti.eq(&claims.jti))
                .filter(access_token::Column::RevokedAt.is_not_null())
                .one(scope.db)
                .await?;
            if already.is_none() {
                return Err(insert_error.into());
            }
        }
    }
    Ok(())
}
