//! The authorization endpoint (RFC 6749 §4.1.1, OAuth 2.1 §4.1, OIDC Core §3.1.2): validate the request,
//! decide whether the user must sign in or consent, and issue a single-use code.

use std::sync::Arc;

use entity::{authorization_code, authorization_request};
use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{
    error::{ErrorCode, OAuthError},
    params::{Params, split_scope},
    pkce,
};
use crate::{
    app::{ClientLookupError, Ctx},
    client::{Client, GrantType},
    consent,
    crypto::{self, sha256_hex},
    resource,
    session::Session,
    store::{StoreError, StoreResult, now, to_json_list},
    totp,
};

/// A validated authorization request, kept server-side while the user signs in or consents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// Requested authentication levels, most preferred first (`acr_values`, or the `acr` claim request).
    #[serde(default)]
    pub acr_values: Vec<String>,
    /// The `acr` was requested as an essential claim (OIDC Core §5.5.1.1): unmet means an error.
    #[serde(default)]
    pub acr_essential: bool,
    /// RFC 8707: the registered resource the access token is for.
    #[serde(default)]
    pub resource: Option<String>,
}

/// Levels we can establish, weakest first (docs/acr.md). A session meets a requested level when its
/// own level is at least as strong.
const ACR_LEVELS: [&str; 3] = ["urn:latchkey:acr:email-code", "urn:latchkey:acr:mfa", "phr"];

fn acr_rank(acr: &str) -> Option<usize> {
    ACR_LEVELS.iter().position(|level| *level == acr)
}

impl AuthorizationRequest {
    /// Whether a session at `session_acr` meets the request: no known level asked, or one of them is
    /// at most as strong as the session's.
    fn acr_met_by(&self, session_acr: &str) -> bool {
        let session_rank = acr_rank(session_acr);
        let mut known = self.acr_values.iter().filter_map(|v| acr_rank(v)).peekable();
        known.peek().is_none() || known.any(|wanted| session_rank.is_some_and(|have| have >= wanted))
    }

    /// At least one requested level is one we can establish (a passkey gives the strongest).
    fn acr_achievable(&self) -> bool {
        self.acr_values.is_empty() || self.acr_values.iter().any(|v| acr_rank(v).is_some())
    }

    fn prompts(&self, value: &str) -> bool {
        self.prompt.iter().any(|p| p == value)
    }
}

/// Where an error goes (RFC 6749 §4.1.2.1): to the user when the client or redirect URI cannot be
/// trusted, otherwise back to the client.
#[derive(Debug)]
pub enum AuthorizeError {
    Page(String),
    Redirect(ErrorRedirect),
    Store(StoreError),
}

#[derive(Debug)]
pub struct ErrorRedirect {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub error: OAuthError,
}

impl From<StoreError> for AuthorizeError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// Validates the request. The client and redirect URI are checked first: until they are known good, no
/// error may be redirected.
pub async fn validate(
    ctx: &Ctx<'_>,
    params: &Params,
) -> Result<(Arc<Client>, AuthorizationRequest), AuthorizeError> {
    let client_id = params.get("client_id").ok_or_else(|| {
        AuthorizeError::Page(
            "The request does not say which application is asking (client_id is missing).".into(),
        )
    })?;
    let client = match ctx.find_client(client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => {
            return Err(AuthorizeError::Page(
                "The application asking to sign you in is not registered here.".into(),
            ));
        }
        Err(ClientLookupError::Document(why)) => return Err(AuthorizeError::Page(format!("{why}."))),
        Err(ClientLookupError::Store(error)) => return Err(error.into()),
    };
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| AuthorizeError::Page("The request has no redirect_uri.".into()))?;
    if !client.redirect_uri_registered(redirect_uri) {
        return Err(AuthorizeError::Page(
            "The address this application wants to return you to is not registered for it.".into(),
        ));
    }
    let state = params.get("state").map(str::to_owned);
    let fail = |code: ErrorCode, description: &str| {
        AuthorizeError::Redirect(ErrorRedirect {
            redirect_uri: redirect_uri.to_owned(),
            state: state.clone(),
            error: OAuthError::new(code, description),
        })
    };

    if params.contains("request") {
        return Err(fail(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if params.contains("request_uri") {
        return Err(fail(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    match params.get("response_type") {
        Some("code") => {}
        None => return Err(fail(ErrorCode::InvalidRequest, "response_type is required")),
        Some(_) => {
            return Err(fail(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
    }
    if let Some(mode) = params.get("response_mode")
        && mode != "query"
    {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "only response_mode=query is supported",
        ));
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(fail(
            ErrorCode::UnauthorizedClient,
            "client may not use the authorization code grant",
        ));
    }
    // PKCE is mandatory and S256 only (OAuth 2.1 §4.1.1).
    let code_challenge = params.get("code_challenge").ok_or_else(|| {
        fail(
            ErrorCode::InvalidRequest,
            "code_challenge is required (PKCE with S256)",
        )
    })?;
    match params.get("code_challenge_method") {
        Some("S256") => {}
        Some("plain") => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "code_challenge_method plain is not allowed; use S256",
            ));
        }
        None => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "code_challenge_method is required and must be S256",
            ));
        }
        Some(_) => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "unsupported code_challenge_method; use S256",
            ));
        }
    }
    if !pkce::valid_challenge(code_challenge) {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "code_challenge must be a base64url SHA-256 (43 characters)",
        ));
    }

    let scopes = match params.get("scope") {
        Some(scope) => split_scope(scope),
        None => client.scopes.clone(),
    };
    // RFC 8707 §2: one registered resource; it becomes the access token's audience.
    let resource = match params.get("resource") {
        None => None,
        Some(uri) if !resource::valid_uri(uri) => {
            return Err(fail(ErrorCode::InvalidTarget, "resource must be an absolute https URI without a fragment"));
        }
        Some(uri) => Some(
            resource::find(ctx.scope(), uri)
                .await?
                .ok_or_else(|| fail(ErrorCode::InvalidTarget, "this resource is not registered here"))?,
        ),
    };
    // A scope is allowed when the client registered it, or when the named resource offers it (a
    // self-registered MCP client learns a resource's scopes only from its metadata).
    let allowed = |s: &String| client.scopes.contains(s) || resource.as_ref().is_some_and(|r| r.scopes.contains(s));
    if let Some(unknown) = scopes.iter().find(|s| !allowed(s)) {
        return Err(fail(
            ErrorCode::InvalidScope,
            &format!("scope {unknown:.64} is not allowed for this client"),
        ));
    }

    let prompt = params.get("prompt").map(split_scope).unwrap_or_default();
    if prompt
        .iter()
        .any(|p| !matches!(p.as_str(), "none" | "login" | "consent"))
    {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "unsupported prompt value (none, login, consent)",
        ));
    }
    if prompt.len() > 1 && prompt.iter().any(|p| p == "none") {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values",
        ));
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(value) => match value.parse::<i64>() {
            Ok(seconds) if seconds >= 0 => Some(seconds),
            _ => {
                return Err(fail(
                    ErrorCode::InvalidRequest,
                    "max_age must be a non-negative integer",
                ));
            }
        },
    };
    let nonce = params.get("nonce").map(str::to_owned);
    let (mut acr_values, acr_essential) = requested_acr(params).map_err(|message| fail(ErrorCode::InvalidRequest, message))?;
    // A resource that needs a phishing-resistant sign-in asks for it as if the client had.
    if resource.as_ref().is_some_and(|r| r.step_up) && acr_values.is_empty() {
        acr_values.push(crate::passkey::PASSKEY_ACR.to_owned());
    }

    Ok((
        client,
        AuthorizationRequest {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            scopes,
            state,
            nonce,
            code_challenge: code_challenge.to_owned(),
            prompt,
            max_age,
            login_hint: params.get("login_hint").map(str::to_owned),
            acr_values,
            acr_essential,
            resource: resource.map(|r| r.uri),
        },
    ))
}

/// `acr_values` (OIDC Core §3.1.2.1, voluntary), or an `acr` request in the `claims` parameter
/// (§5.5.1.1), which may be essential: `{"id_token":{"acr":{"essential":true,"values":["phr"]}}}`.
fn requested_acr(params: &Params) -> Result<(Vec<String>, bool), &'static str> {
    let mut values: Vec<String> = params.get("acr_values").map(split_scope).unwrap_or_default();
    let mut essential = false;
    if let Some(claims) = params.get("claims") {
        let claims: serde_json::Value =
            serde_json::from_str(claims).map_err(|_| "claims must be a JSON object")?;
        if !claims.is_object() {
            return Err("claims must be a JSON object");
        }
        for target in ["id_token", "userinfo"] {
            let acr = &claims[target]["acr"];
            if acr.is_null() {
                continue;
            }
            essential |= acr["essential"].as_bool().unwrap_or(false);
            if let Some(value) = acr["value"].as_str() {
                values.push(value.to_owned());
            }
            for value in acr["values"].as_array().into_iter().flatten() {
                values.push(value.as_str().ok_or("acr values must be strings")?.to_owned());
            }
        }
    }
    values.truncate(16);
    Ok((values, essential))
}

/// What the user has to do next.
#[derive(Debug)]
pub enum Next {
    SignIn,
    /// Signed in, but longer ago than `max_age`/`prompt=login` allow or at a weaker `acr` than asked:
    /// confirm with a passkey now.
    StepUp,
    /// Signed in by email or recovery code only: enroll a passkey (first time) or confirm with one.
    Passkey,
    /// The tenant requires an authenticator app and the user has none yet: set one up.
    SetUpTotp,
    Consent,
    /// Redirect the browser here (the code, or an error).
    Redirect(String),
}

/// Decides the next step. `requested_at` is when the request first arrived: a sign-in after it satisfies
/// `prompt=login` and `max_age`. `prompt=consent` is satisfied only by `consented_for_this_request` (the
/// consent page's own POST): timestamps have one-second resolution, so "granted after the request" could
/// not tell a remembered consent from a fresh one.
pub async fn decide(
    ctx: &Ctx<'_>,
    client: &Client,
    request: &AuthorizationRequest,
    session: Option<&Session>,
    requested_at: i64,
    consented_for_this_request: bool,
) -> Result<Next, AuthorizeError> {
    let error = |code: ErrorCode, description: &str| {
        Ok(Next::Redirect(error_redirect_url(
            ctx,
            &ErrorRedirect {
                redirect_uri: request.redirect_uri.clone(),
                state: request.state.clone(),
                error: OAuthError::new(code, description),
            },
        )))
    };
    let fresh_after = match (request.prompts("login"), request.max_age) {
        (true, _) => requested_at,
        (false, Some(max_age)) => requested_at - max_age,
        (false, None) => i64::MIN,
    };
    let Some(session) = session else {
        if request.prompts("none") {
            return error(ErrorCode::LoginRequired, "the user is not signed in");
        }
        return Ok(Next::SignIn);
    };
    if request.acr_essential && !request.acr_achievable() {
        // OpenID Connect Unmet Authentication Requirements 1.0.
        return error(
            ErrorCode::UnmetAuthenticationRequirements,
            "none of the requested acr values can be satisfied",
        );
    }
    // An email code alone is a bootstrap, not a sign-in: no authorization completes before a passkey
    // is enrolled or confirmed.
    if !session.is_multi_factor() {
        if request.prompts("none") {
            return error(
                ErrorCode::InteractionRequired,
                "the user must confirm with a passkey",
            );
        }
        return Ok(Next::Passkey);
    }
    // A full session that is too old, or weaker than asked: a fresh passkey assertion, not a new
    // email code (the user has a passkey: a multi-factor session proves it).
    if session.auth_time < fresh_after || !request.acr_met_by(&session.acr) {
        if request.prompts("none") {
            return error(
                ErrorCode::InteractionRequired,
                "the user must authenticate again",
            );
        }
        return Ok(Next::StepUp);
    }

    // Tenant policy: every user has an authenticator app before any authorization completes.
    if ctx.tenant.require_totp && totp::enabled_since(ctx.scope(), &session.user_id).await?.is_none() {
        if request.prompts("none") {
            return error(
                ErrorCode::InteractionRequired,
                "the user must set up an authenticator app",
            );
        }
        return Ok(Next::SetUpTotp);
    }

    if !client.first_party {
        let granted = consent::find(ctx.scope(), &session.user_id, &client.client_id).await?;
        let covered = granted.as_ref().is_some_and(|g| {
            request.scopes.iter().all(|s| g.scopes.contains(s))
                && (!request.prompts("consent") || consented_for_this_request)
        });
        if !covered {
            if request.prompts("none") {
                return error(
                    ErrorCode::ConsentRequired,
                    "the user has not approved this application",
                );
            }
            return Ok(Next::Consent);
        }
    }
    let code = issue_code(ctx, request, session).await?;
    Ok(Next::Redirect(success_redirect_url(ctx, request, &code)))
}

async fn issue_code(
    ctx: &Ctx<'_>,
    request: &AuthorizationRequest,
    session: &Session,
) -> StoreResult<String> {
    let code = crypto::random_token("");
    let now = now();
    let row = authorization_code::ActiveModel {
        code_hash: Set(sha256_hex(&code)),
        tenant_id: Set(String::new()),
        client_id: Set(request.client_id.clone()),
        user_id: Set(session.user_id.clone()),
        session_id: Set(session.id.clone()),
        redirect_uri: Set(request.redirect_uri.clone()),
        scope: Set(request.scopes.join(" ")),
        nonce: Set(request.nonce.clone()),
        code_challenge: Set(request.code_challenge.clone()),
        auth_time: Set(session.auth_time),
        amr: Set(to_json_list(&session.amr)),
        acr: Set(session.acr.clone()),
        created_at: Set(now),
        expires_at: Set(now + ctx.lifetimes().authorization_code),
        consumed_at: Set(None),
        family_id: Set(None),
        resource: Set(request.resource.clone()),
    };
    ctx.scope()
        .insert::<authorization_code::Entity, _>(row)
        .await?;
    Ok(code)
}

fn with_params(redirect_uri: &str, pairs: &[(&str, Option<&str>)]) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (name, value) in pairs {
                    if let Some(value) = value {
                        query.append_pair(name, value);
                    }
                }
            }
            url.to_string()
        }
        // Registered URIs were validated as URLs at registration.
        Err(_) => redirect_uri.to_owned(),
    }
}

/// RFC 6749 §4.1.2 plus `iss` (RFC 9207).
fn success_redirect_url(ctx: &Ctx<'_>, request: &AuthorizationRequest, code: &str) -> String {
    with_params(
        &request.redirect_uri,
        &[
            ("code", Some(code)),
            ("state", request.state.as_deref()),
            ("iss", Some(&ctx.issuer)),
        ],
    )
}

pub fn error_redirect_url(ctx: &Ctx<'_>, redirect: &ErrorRedirect) -> String {
    with_params(
        &redirect.redirect_uri,
        &[
            ("error", Some(redirect.error.code.as_str())),
            ("error_description", Some(&redirect.error.description)),
            ("state", redirect.state.as_deref()),
            ("iss", Some(&ctx.issuer)),
        ],
    )
}

/// A request waiting for sign-in or consent; its id travels in the page URLs (it is not a credential:
/// finishing it needs the session cookie).
pub struct Pending {
    pub id: String,
    pub request: AuthorizationRequest,
    pub created_at: i64,
}

pub async fn save_pending(ctx: &Ctx<'_>, request: &AuthorizationRequest) -> StoreResult<String> {
    let id = crypto::random_id();
    let now = now();
    let row = authorization_request::ActiveModel {
        id: Set(id.clone()),
        tenant_id: Set(String::new()),
        client_id: Set(request.client_id.clone()),
        params: Set(serde_json::to_string(request).map_err(|e| StoreError::Corrupt(e.to_string()))?),
        created_at: Set(now),
        expires_at: Set(now + ctx.lifetimes().authorization_request),
    };
    ctx.scope()
        .insert::<authorization_request::Entity, _>(row)
        .await?;
    Ok(id)
}

pub async fn load_pending(ctx: &Ctx<'_>, id: &str) -> StoreResult<Option<Pending>> {
    let row = ctx
        .scope()
        .select::<authorization_request::Entity>()
        .filter(authorization_request::Column::Id.eq(id))
        .filter(authorization_request::Column::ExpiresAt.gt(now()))
        .one(&ctx.app.db)
        .await?;
    row.map(|row| {
        let request =
            serde_json::from_str(&row.params).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Pending {
            id: row.id,
            request,
            created_at: row.created_at,
        })
    })
    .transpose()
}

pub async fn delete_pending(ctx: &Ctx<'_>, id: &str) -> StoreResult<()> {
    ctx.scope()
        .delete::<authorization_request::Entity>()
        .filter(authorization_request::Column::Id.eq(id))
        .exec(&ctx.app.db)
        .await?;
    Ok(())
}
