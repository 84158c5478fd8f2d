//! Building a token response (RFC 6749 §5.1): the JWT access token, optionally a refresh token and an
//! ID token.

use serde::Serialize;
use latchkey_proto::{Acr, Caller, Secret, status_list::Status};

use super::{error::OAuthError, families, scope::Scopes};
use crate::{
    context::Ctx,
    client::Client,
    crypto,
    jwt::{self, AccessClaims, IdTokenClaims},
    organization::Membership,
    service_account::ServiceAccount,
    store::now,
    user::User,
};

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<Secret>,
    pub scope: String,
    /// Only in a token exchange response (RFC 8693 §2.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

/// The end user's authentication, carried into tokens.
pub struct UserAuthentication<'a> {
    pub user: &'a User,
    pub auth_time: i64,
    pub amr: &'a [latchkey_proto::Amr],
    pub acr: Acr,
    pub session_id: Option<&'a str>,
    pub nonce: Option<&'a str>,
    /// The user's organization and roles, read by the grant (with the user, where it can).
    pub membership: Option<&'a Membership>,
    /// Claims the authorization request's `claims` parameter asked for in the ID token.
    pub id_token_claims: &'a [String],
}

pub struct Issue<'a> {
    pub client: &'a Client,
    pub scopes: &'a Scopes,
    pub user: Option<UserAuthentication<'a>>,
    /// The family the tokens belong to: access tokens are recorded under it so revoking the family
    /// makes them inactive; a refresh token is minted into it when present.
    pub family_id: Option<&'a str>,
    /// The family's entry in the tenant's token status list: the access token names it (`status`).
    pub status_index: Option<u64>,
    pub with_refresh_token: bool,
    /// RFC 8707: the resource the access token is for; without one, this tenant's own endpoints.
    pub resource: Option<&'a str>,
    /// Set when the client acts as a service account (client credentials or an agent token): the
    /// token's subject is the account, in its organization.
    pub service_account: Option<&'a ServiceAccount>,
    /// RFC 9396: what a person approved (an approval's token only).
    pub authorization_details: Option<&'a serde_json::Value>,
}

/// Issues tokens: signs them and stores their rows (`token_writes`).
pub async fn issue(ctx: &Ctx<'_>, issue: Issue<'_>) -> Result<TokenResponse, OAuthError> {
    let Prepared { response, refresh_token_row } = prepare(ctx, issue).await?;
    ctx.services.token_writes.store(&ctx.tenant.id, refresh_token_row, None).await?;
    Ok(response)
}

/// Signed tokens not yet handed out, and the refresh token's row to store before they are.
pub struct Prepared {
    pub response: TokenResponse,
    pub refresh_token_row: Option<crate::store::refresh_families::NewRefreshToken>,
}

/// Signs the tokens and builds their rows without storing anything: the refresh grant stores them
/// only if it wins the spend of the token it presented.
pub async fn prepare(ctx: &Ctx<'_>, issue: Issue<'_>) -> Result<Prepared, OAuthError> {
    let keyring = ctx.keyring().await?;
    let now = now();
    let lifetime = ctx.lifetimes().access_token;
    let scope = issue.scopes.to_string();
    let jti = crypto::random_id();
    let (sub, caller, membership) = match (&issue.user, issue.service_account) {
        (Some(user), _) => (user.user.id.clone(), Caller::Person, user.membership.cloned()),
        (None, Some(account)) => (account.id.clone(), Caller::Agent, Some(account.membership())),
        (None, None) => (issue.client.client_id.clone(), Caller::Agent, None),
    };
    let (org, roles) = membership.map(|m| (m.organization, m.roles)).unzip();
    let claims = AccessClaims {
        iss: ctx.issuer.clone(),
        sub,
        aud: issue.resource.map_or_else(|| ctx.issuer.clone(), str::to_owned),
        client_id: issue.client.client_id.clone(),
        scope: scope.clone(),
        exp: now + lifetime,
        iat: now,
        jti,
        auth_time: issue.user.as_ref().map(|u| u.auth_time),
        acr: issue.user.as_ref().map(|u| u.acr),
        amr: issue.user.as_ref().map(|u| u.amr.to_vec()),
        sid: None,
        caller,
        org,
        roles,
        grant_id: issue.family_id.map(str::to_owned),
        authorization_details: issue.authorization_details.cloned(),
        status: issue.status_index.map(|idx| Status::new(crate::oauth::status_list::uri(&ctx.issuer), idx)),
    };
    let access_token = jwt::sign_access_token(&keyring, issue.client.access_token_alg, &claims)?;

    let (refresh_token, refresh_token_row) = match (issue.with_refresh_token, issue.family_id) {
        (true, Some(family_id)) => {
            let (token, row) = families::new_refresh_token(family_id);
            (Some(token), Some(row))
        }
        _ => (None, None),
    };

    let id_token = match &issue.user {
        Some(user) if issue.scopes.has("openid") => {
            // OIDC Core §5.5: claims asked for by name, whatever the scopes (profile claims otherwise
            // come from UserInfo, §5.4).
            let asked = |claim: &str| user.id_token_claims.iter().any(|c| c == claim);
            let wants_email = issue.scopes.has("email") || asked("email") || asked("email_verified");
            let requested = match user.id_token_claims.is_empty() {
                true => serde_json::Map::new(),
                false => {
                    let mut profile = crate::user::profile_claims(user.user);
                    profile.retain(|claim, _| asked(claim));
                    profile
                }
            };
            let claims = IdTokenClaims {
                iss: ctx.issuer.clone(),
                sub: user.user.id.clone(),
                aud: issue.client.client_id.clone(),
                exp: now + ctx.lifetimes().id_token,
                iat: now,
                auth_time: user.auth_time,
                nonce: user.nonce.map(str::to_owned),
                acr: user.acr,
                amr: user.amr.to_vec(),
                sid: user.session_id.map(str::to_owned),
                at_hash: Some(jwt::at_hash(&access_token)),
                email: wants_email.then(|| user.user.email.clone()),
                email_verified: wants_email.then_some(user.user.email_verified),
                requested,
            };
            Some(jwt::sign_id_token(
                &keyring,
                issue.client.id_token_alg,
                &claims,
            )?)
        }
        _ => None,
    };

    let response = TokenResponse {
        access_token: Secret::new(access_token),
        token_type: "Bearer",
        expires_in: lifetime,
        refresh_token,
        id_token: id_token.map(Secret::new),
        scope,
        issued_token_type: None,
    };
    Ok(Prepared { response, refresh_token_row })
}
