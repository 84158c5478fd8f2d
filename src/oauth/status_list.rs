//! The tenant's token status list (draft-ietf-oauth-status-list), published at
//! `{issuer}/statuslists/0`: a signed JWT (`typ` statuslist+jwt) whose one-bit entries are set for
//! revoked refresh families. Every access token of a family names the family's entry in its `status`
//! claim (`issue`), so a resource server that validates tokens offline (the permission API) learns of
//! a revocation — a person deprovisioned or signed out everywhere, a reused refresh token — when it
//! next refreshes the list, without calling Latchkey per token.
//!
//! Built on request, one build at a time per node, then kept for [`PUBLISHED_TTL`]: fetching it costs
//! an anonymous caller no more than a cached answer, and a revocation is in the list that long after
//! it happened at most.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use latchkey_proto::status_list::{self, STATUS_LIST_TYP, StatusListClaims};

use crate::{context::Ctx, jwt, keys::SigningAlg, store::{now, status_lists}};

use super::error::OAuthError;

/// How long one signed list is served before it is built again.
pub const PUBLISHED_TTL: Duration = Duration::from_secs(5);
/// How long a reader may rely on a list it fetched (the token's `exp`): beyond it, a resource server
/// that cannot fetch a newer one cannot know a token's status.
const VALID_FOR: i64 = 300;
/// The `ttl` readers are advised to cache for (§13.7): they refresh on their own interval.
const ADVISED_TTL: u64 = 30;
/// Entries published beyond those handed out, all valid. A reader holds a list for its refresh
/// interval (and Latchkey serves one for `PUBLISHED_TTL`), and a grant made meanwhile must find its
/// entry inside it: a reader refuses an index past the list's end (draft §8.3). 65,536 entries are 8 KiB
/// before compression, a few dozen bytes after.
const HEADROOM: u64 = 1 << 16;

/// The list's URI: its tokens name it, and the Status List Token's `sub` repeats it.
pub fn uri(issuer: &str) -> String {
    format!("{issuer}/statuslists/{}", status_lists::LIST_ID)
}

/// Whether `id` (the last path segment) names a list this tenant publishes.
pub fn exists(id: &str) -> bool {
    id.parse() == Ok(status_lists::LIST_ID)
}

/// The signed list, from the node's cache while it is fresh.
pub async fn published(ctx: &Ctx<'_>) -> Result<Bytes, OAuthError> {
    let cache = &ctx.services.status_lists;
    if let Some(token) = cache.get(ctx.tenant.id.as_str()) {
        return Ok((*token).clone());
    }
    // One build at a time on this node: the fetches that arrive as a list expires (anyone may send
    // them) cost one read of the revoked families and one signature, not one each.
    let _building = ctx.services.status_list_builds.lock().await;
    if let Some(token) = cache.get(ctx.tenant.id.as_str()) {
        return Ok((*token).clone());
    }
    let (size, revoked) = status_lists::entries(ctx.scope()).await?;
    let iat = now();
    let claims = StatusListClaims {
        sub: uri(&ctx.issuer),
        iat,
        exp: Some(iat + VALID_FOR),
        ttl: Some(ADVISED_TTL),
        status_list: status_list::encode(size + HEADROOM, revoked),
    };
    let keyring = ctx.keyring().await?;
    let token = Bytes::from(jwt::sign(&keyring, SigningAlg::ES256, STATUS_LIST_TYP, &claims)?);
    cache.put(ctx.tenant.id.clone(), Arc::new(token.clone()));
    Ok(token)
}
