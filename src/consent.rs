//! Remembered consent: per user, client and resource, the set of scopes the user approved. The
//! resource is part of the key (RFC 8707): approving `files:read` for one resource says nothing about
//! another resource that happens to use the same scope name.

use crate::{
    crypto,
    store::{Scoped, StoreResult, consents::{self, StoredConsent}, now},
};

/// The tenant's own endpoints (no `resource`) are stored as ''.
fn key(resource: Option<&str>) -> &str {
    resource.unwrap_or("")
}

pub struct Granted {
    /// The resource the scopes were approved for; `None`: the tenant's own endpoints.
    pub resource: Option<String>,
    pub scopes: Vec<String>,
    pub granted_at: i64,
}

impl From<StoredConsent> for Granted {
    fn from(row: StoredConsent) -> Self {
        Self { resource: (!row.resource.is_empty()).then_some(row.resource), scopes: row.scopes, granted_at: row.granted_at }
    }
}

pub async fn find(scope: Scoped<'_>, user_id: &str, client_id: &str, resource: Option<&str>) -> StoreResult<Option<Granted>> {
    Ok(consents::find(scope, user_id, client_id, key(resource)).await?.map(Granted::from))
}

/// `earlier` with the scopes of `now` it lacks added, in order.
fn merged(mut earlier: Vec<String>, now: &[String]) -> Vec<String> {
    for scope in now {
        if !earlier.contains(scope) {
            earlier.push(scope.clone());
        }
    }
    earlier
}

/// Records approval of `scopes` for `resource` (merged with what was approved for it before).
pub async fn grant(scope: Scoped<'_>, user_id: &str, client_id: &str, resource: Option<&str>, scopes: &[String]) -> StoreResult<()> {
    let now = now();
    match consents::find(scope, user_id, client_id, key(resource)).await? {
        Some(existing) => {
            let scopes = merged(existing.scopes, scopes);
            consents::set_scopes(scope, user_id, client_id, key(resource), &scopes, now).await
        }
        None => consents::insert(scope, &crypto::random_id(), user_id, client_id, key(resource), scopes, now).await,
    }
}

/// Every approval the user gave, most recent first: (client id, what was approved).
pub async fn list_for_user(scope: Scoped<'_>, user_id: &str) -> StoreResult<Vec<(String, Granted)>> {
    Ok(consents::for_user(scope, user_id).await?.into_iter().map(|row| (row.client_id.clone(), Granted::from(row))).collect())
}

/// Forgets the user's approvals of a client, for every resource: its next authorization asks again.
pub async fn revoke(scope: Scoped<'_>, user_id: &str, client_id: &str) -> StoreResult<bool> {
    consents::delete_for_client(scope, user_id, client_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approvals_merge_without_duplicates_in_order() {
        let list = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(merged(list(&["openid", "email"]), &list(&["email", "files:read"])), list(&["openid", "email", "files:read"]));
        assert_eq!(merged(vec![], &list(&["openid"])), list(&["openid"]));
        assert_eq!(merged(list(&["openid"]), &[]), list(&["openid"]));
    }

    #[test]
    fn the_tenant_s_own_endpoints_have_the_empty_key() {
        assert_eq!(key(None), "");
        assert_eq!(key(Some("https://files.example")), "https://files.example");
    }
}
