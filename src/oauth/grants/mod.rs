//! One file per grant type (RFC 6749 §4.1.3, §6, §4.4; RFC 8693; RFC 8628; OpenID CIBA Core).

pub mod authorization_code;
pub mod ciba;
pub mod client_credentials;
pub mod device_code;
pub mod refresh_token;
pub mod token_exchange;

use latchkey_proto::{Acr, Amr};

use super::{
    error::OAuthError,
    families::{self, NewFamily},
    issue::{Issue, TokenResponse, UserAuthentication, issue},
    scope::Scopes,
};
use crate::{client::Client, context::Ctx, organization, user::User};

/// A person's answer given on another device (CIBA, the device flow), redeemed into tokens.
pub(super) struct Answered<'a> {
    pub user: &'a User,
    pub scopes: &'a Scopes,
    pub session_id: Option<&'a str>,
    pub auth_time: i64,
    pub amr: &'a [Amr],
    pub acr: Acr,
    pub resource: Option<&'a str>,
    pub with_refresh_token: bool,
    pub authorization_details: Option<&'a serde_json::Value>,
}

/// Issues the tokens of an answered request in a family of their own (revoking it — deprovisioning,
/// signing out everywhere — makes them inactive like every token of the person); the family's id.
pub(super) async fn issue_answered(ctx: &Ctx<'_>, client: &Client, a: Answered<'_>) -> Result<(TokenResponse, String), OAuthError> {
    let scope = ctx.scope();
    let families::Created { id: family_id, status_index } = families::create(
        scope,
        ctx.lifetimes().refresh_absolute,
        NewFamily {
            client_id: &client.client_id,
            user_id: &a.user.id,
            session_id: a.session_id,
            scopes: a.scopes,
            auth_time: a.auth_time,
            amr: a.amr,
            acr: a.acr,
            resource: a.resource,
        },
    )
    .await?;
    let membership = organization::membership_of(scope, &a.user.id).await?;
    let response = issue(
        ctx,
        Issue {
            client,
            scopes: a.scopes,
            user: Some(UserAuthentication {
                user: a.user,
                auth_time: a.auth_time,
                amr: a.amr,
                acr: a.acr,
                session_id: a.session_id,
                nonce: None,
                membership: membership.as_ref(),
                id_token_claims: &[],
            }),
            family_id: Some(&family_id),
            status_index: Some(status_index),
            with_refresh_token: a.with_refresh_token,
            resource: a.resource,
            service_account: None,
            authorization_details: a.authorization_details,
        },
    )
    .await?;
    Ok((response, family_id))
}
