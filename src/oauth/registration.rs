//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592), for MCP clients and
//! other software that arrives with nothing but our metadata.
//!
//! A registration gets a `client_id`, a secret if it asked for a confidential method (shown once), and
//! a registration access token (stored as SHA-256) to read, update or delete itself. A registration
//! that never obtains a token is deleted after `lifetimes.unused_registration`.

use latchkey_proto::Secret;
use serde_json::{Value, json};

pub use crate::client::metadata::{ClientMetadata, RegistrationError, SelfDescribed};
use crate::client::metadata::{invalid, to_new_client};
use crate::{
    context::Ctx,
    audit::Event,
    client::{self, Client},
    crypto::{self, sha256_hex},
    oauth::families,
    store::{Scoped, StoreResult, initial_access_tokens, now},
    tenant::RegistrationPolicy,
};

pub const REGISTRATION_TOKEN_PREFIX: &str = "lk_rat_";
pub const INITIAL_ACCESS_TOKEN_PREFIX: &str = "lk_iat_";
/// Registration's view of a client (RFC 7591 §3.2.1, RFC 7592 §3).
pub fn client_information(ctx: &Ctx<'_>, client: &Client) -> Value {
    let mut info = json!({
        "client_id": client.client_id,
        "client_id_issued_at": client.created_at,
        "client_name": client.name,
        "redirect_uris": client.redirect_uris,
        "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "response_types": ["code"],
        "scope": client.scopes.join(" "),
        "id_token_signed_response_alg": client.id_token_alg.as_str(),
        "allowed_origins": client.allowed_origins,
        "registration_client_uri": ctx.endpoint(&format!("register/{}", client.client_id)),
    });
    if !client.post_logout_redirect_uris.is_empty() {
        info["post_logout_redirect_uris"] = json!(client.post_logout_redirect_uris);
    }
    if let Some(alg) = client.userinfo_alg {
        info["userinfo_signed_response_alg"] = json!(alg.as_str());
    }
    if client.is_confidential() {
        // The secret itself is shown once, at registration: only its hash is kept.
        info["client_secret_expires_at"] = json!(0);
    }
    if let Value::Object(extra) = &client.registration_metadata {
        for (key, value) in extra {
            if !value.is_null() {
                info[key.as_str()] = value.clone();
            }
        }
    }
    info
}

/// Whether this registration request may proceed under the tenant's policy.
async fn admit(ctx: &Ctx<'_>, bearer: Option<&str>) -> Result<(), RegistrationError> {
    match ctx.tenant.registration {
        RegistrationPolicy::Open => Ok(()),
        RegistrationPolicy::Closed => Err(RegistrationError::Closed),
        RegistrationPolicy::InitialAccessToken => {
            let token = bearer.ok_or(RegistrationError::InvalidInitialToken("an initial access token is required"))?;
            let valid = initial_access_tokens::is_valid(ctx.scope(), &sha256_hex(token), now()).await?;
            if valid { Ok(()) } else { Err(RegistrationError::InvalidInitialToken("the initial access token is not valid")) }
        }
    }
}

/// The registration response: client information plus, this once, the secret and the registration
/// access token.
pub async fn register(ctx: &Ctx<'_>, bearer: Option<&str>, metadata: &ClientMetadata) -> Result<Value, RegistrationError> {
    admit(ctx, bearer).await?;
    let registration_token = Secret::new(crypto::random_token(REGISTRATION_TOKEN_PREFIX));
    let new = to_new_client(metadata, SelfDescribed::of(&ctx.tenant), sha256_hex(registration_token.expose()))?;
    let (client, secret) = client::create(ctx.scope(), new).await?;
    ctx.audit(
        Event::new(&ctx.tenant.id, "anonymous", "client.register")
            .target(format!("client:{}", client.client_id))
            .details(json!({ "name": client.name, "redirect_uris": client.redirect_uris })),
    )
    .await;
    let mut info = client_information(ctx, &client);
    info["registration_access_token"] = json!(registration_token);
    if let Some(secret) = secret {
        info["client_secret"] = json!(secret);
    }
    Ok(info)
}

/// The dynamically registered client that `token` manages, if any.
async fn managed(ctx: &Ctx<'_>, client_id: &str, token: Option<&str>) -> Result<Client, RegistrationError> {
    let token = token.ok_or(RegistrationError::InvalidToken)?;
    let client = client::find(ctx.scope(), client_id).await?.ok_or(RegistrationError::InvalidToken)?;
    if client.registered_dynamically && client.registration_token_matches(token) {
        Ok(client)
    } else {
        Err(RegistrationError::InvalidToken)
    }
}

/// RFC 7592 §2.1.
pub async fn read(ctx: &Ctx<'_>, client_id: &str, token: Option<&str>) -> Result<Value, RegistrationError> {
    let client = managed(ctx, client_id, token).await?;
    Ok(client_information(ctx, &client))
}

/// RFC 7592 §2.2: the new metadata replaces the old; the client id, secret and registration access
/// token stay.
pub async fn update(
    ctx: &Ctx<'_>,
    client_id: &str,
    token: Option<&str>,
    metadata: &ClientMetadata,
) -> Result<Value, RegistrationError> {
    let client = managed(ctx, client_id, token).await?;
    if metadata.client_id.as_deref() != Some(client_id) {
        return Err(invalid("the body's client_id must name this client"));
    }
    let new = to_new_client(metadata, SelfDescribed::of(&ctx.tenant), String::new())?;
    if new.confidential != client.is_confidential() {
        return Err(invalid("token_endpoint_auth_method cannot change between none and a secret"));
    }
    let updated = client::replace_registration(ctx.scope(), client_id, new).await?;
    ctx.forget_client(client_id);
    ctx.audit(Event::new(&ctx.tenant.id, format!("client:{client_id}"), "client.update").target(format!("client:{client_id}")))
        .await;
    Ok(client_information(ctx, &updated))
}

/// RFC 7592 §2.3: the client is gone, and so is every grant it holds.
pub async fn delete(ctx: &Ctx<'_>, client_id: &str, token: Option<&str>) -> Result<(), RegistrationError> {
    managed(ctx, client_id, token).await?;
    client::delete(ctx.scope(), client_id).await?;
    ctx.forget_client(client_id);
    let revoked = families::revoke_for_client(ctx.scope(), client_id, "client_deleted").await?;
    ctx.audit(
        Event::new(&ctx.tenant.id, format!("client:{client_id}"), "client.delete")
            .target(format!("client:{client_id}"))
            .details(json!({ "families_revoked": revoked })),
    )
    .await;
    Ok(())
}

/// Issues an initial access token for the `token` registration policy; returned once, kept as SHA-256.
pub async fn issue_initial_access_token(scope: Scoped<'_>, lifetime: i64) -> StoreResult<Secret> {
    let token = crypto::random_token(INITIAL_ACCESS_TOKEN_PREFIX);
    let now = now();
    initial_access_tokens::insert(scope, sha256_hex(&token), crypto::display_prefix(&token), now, now + lifetime).await?;
    Ok(Secret::new(token))
}
