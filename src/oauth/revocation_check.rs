//! Is a signature-valid access token still good? Revocation takes effect at once on every node, so
//! this is a database read on every introspection and UserInfo call — never a cached answer.
//! Concurrent checks share one read (`store::access_tokens::RevocationReads`).

use crate::{
    context::Ctx,
    jwt::AccessClaims,
    service_account,
    store::StoreResult,
};

/// Whether a signature-valid access token of this tenant has since been revoked (directly, or through
/// its family), or belongs to a service account that has been disabled.
pub async fn is_revoked(ctx: &Ctx<'_>, claims: &AccessClaims) -> StoreResult<bool> {
    let scope = ctx.scope();
    let for_service_account = claims.is_agent() && claims.sub != claims.client_id;
    if for_service_account && !service_account::find(scope, &claims.sub).await?.is_some_and(|a| a.is_active()) {
        return Ok(true);
    }
    ctx.services.revocations.is_revoked(scope, &claims.jti, claims.grant_id.as_deref()).await
}
