//! The authorization endpoint (RFC 6749 §4.1.1, OAuth 2.1 §4.1, OIDC Core §3.1.2): validate the request,
//! decide whether the user must sign in or consent, and issue a single-use code.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use url::Url;
use latchkey_proto::{Acr, Secret};

use super::{
    error::{ErrorCode, OAuthError},
    params::{Params, split_list},
    pkce, resource,
    scope::{self, Scopes},
};
use crate::{
    context::{ClientLookupError, Ctx},
    audit::Event,
    client::{Client, GrantType},
    consent,
    crypto::{self, sha256_hex},
    session::Session,
    store::{self, StoreError, StoreResult, authorizations, now, to_json_list},
    totp,
};

/// A validated authorization request, kept server-side while the user signs in or consents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Scopes,
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
    /// That resource needs a phishing-resistant sign-in (acr `phr`), whatever `acr_values` say.
    #[serde(default)]
    pub resource_step_up: bool,
    /// Claims the `claims` parameter asked for in the ID token (OIDC Core §5.5), those we serve.
    #[serde(default)]
    pub id_token_claims: Vec<String>,
}

/// What a pending request may echo back (RFC 6749 sets no limit; these are far above what clients
/// send: state is usually a few dozen bytes, a nonce a hash, a login hint an email address).
const MAX_STATE_BYTES: usize = 2048;
const MAX_NONCE_BYTES: usize = 512;
const MAX_LOGIN_HINT_BYTES: usize = 254;
const MAX_ACR_VALUES: usize = 16;
const MAX_ACR_VALUE_BYTES: usize = 128;

/// A requested level's place on the ladder (docs/acr.md, `latchkey_proto::Acr::rank`); `None` for a
/// value we do not know or that nobody may ask for.
fn acr_rank(acr: &str) -> Option<u8> {
    Acr::parse(acr).and_then(Acr::rank)
}

/// The `prompt` values served (OIDC Core §3.1.2.1): what validation accepts and discovery advertises.
pub const PROMPTS: [&str; 3] = ["none", "login", "consent"];

impl AuthorizationRequest {
    /// The rank the session's level must reach. `acr_values` are alternatives: the weakest known one
    /// suffices. An unknown value is never met: asked for nothing but unknown values, we go as far as
    /// we can (a passkey assertion; the token then says what was achieved, OIDC Core §3.1.2.1). A
    /// step-up resource needs `phr` whatever the client asked for.
    fn required_rank(&self) -> Option<u8> {
        let strongest = Acr::STRONGEST.rank();
        let asked = match self.acr_values.is_empty() {
            true => None,
            false => self.acr_values.iter().filter_map(|v| acr_rank(v)).min().or(strongest),
        };
        let resource = if self.resource_step_up { strongest } else { None };
        asked.max(resource)
    }

    fn acr_met_by(&self, session_acr: Acr) -> bool {
        self.required_rank().is_none_or(|wanted| session_acr.rank().is_some_and(|have| have >= wanted))
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
    /// Show the destination before going there: the client was not vetted by anyone (it registered
    /// itself or is described by a metadata document) and the person has not seen where it leads, so
    /// an immediate redirect would make this origin an open redirector for whoever registers.
    pub confirm: bool,
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
    // A pending request is stored before anyone signs in: what it echoes is capped, so an
    // unauthenticated caller cannot park kilobytes per request (the parser allows 8 KiB a value).
    let state = params.get("state").map(str::to_owned);
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE_BYTES) {
        return Err(AuthorizeError::Redirect(ErrorRedirect {
            redirect_uri: redirect_uri.to_owned(),
            // Not echoed back: it is the problem.
            state: None,
            error: OAuthError::invalid_request(format!("state is at most {MAX_STATE_BYTES} bytes")),
            confirm: !client.vetted(),
        }));
    }
    let fail = |code: ErrorCode, description: &str| {
        AuthorizeError::Redirect(ErrorRedirect {
            redirect_uri: redirect_uri.to_owned(),
            state: state.clone(),
            error: OAuthError::new(code, description),
            confirm: !client.vetted(),
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
        Some(pkce::METHOD) => {}
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
    let scopes = scope::granted(params.get("scope"), &client.scopes, resource.as_ref())
        .map_err(|why| fail(ErrorCode::InvalidScope, why))?;

    let prompt = params.get("prompt").map(split_list).unwrap_or_default();
    if prompt
        .iter()
        .any(|p| !PROMPTS.contains(&p.as_str()))
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
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE_BYTES) {
        return Err(fail(ErrorCode::InvalidRequest, "nonce is at most 512 bytes"));
    }
    let login_hint = params.get("login_hint").map(str::to_owned);
    if login_hint.as_ref().is_some_and(|h| h.len() > MAX_LOGIN_HINT_BYTES) {
        return Err(fail(ErrorCode::InvalidRequest, "login_hint is at most 254 bytes (an email address)"));
    }
    let claims = match params.get("claims").map(serde_json::from_str::<serde_json::Value>) {
        None => serde_json::Value::Null,
        Some(Ok(claims @ serde_json::Value::Object(_))) => claims,
        Some(_) => return Err(fail(ErrorCode::InvalidRequest, "claims must be a JSON object")),
    };
    let (acr_values, acr_essential) =
        requested_acr(params, &claims).map_err(|message| fail(ErrorCode::InvalidRequest, message))?;
    let id_token_claims = requested_id_token_claims(&claims);

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
            login_hint,
            acr_values,
            acr_essential,
            resource_step_up: resource.as_ref().is_some_and(|r| r.step_up),
            resource: resource.map(|r| r.uri),
            id_token_claims,
        },
    ))
}

/// `acr_values` (OIDC Core §3.1.2.1, voluntary), or an `acr` request in the `claims` parameter
/// (§5.5.1.1), which may be essential: `{"id_token":{"acr":{"essential":true,"values":["phr"]}}}`.
/// `claims` is the parsed parameter (a JSON object) or `Null`.
fn requested_acr(params: &Params, claims: &serde_json::Value) -> Result<(Vec<String>, bool), &'static str> {
    let mut values: Vec<String> = params.get("acr_values").map(split_list).unwrap_or_default();
    let mut essential = false;
    if claims.is_object() {
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
    if values.len() > MAX_ACR_VALUES || values.iter().any(|v| v.len() > MAX_ACR_VALUE_BYTES) {
        return Err("at most 16 acr values of at most 128 bytes each");
    }
    Ok((values, essential))
}

/// The person's claims the `claims` parameter asks for in the ID token (OIDC Core §5.5.1): those we
/// serve, voluntary or essential alike (an essential claim the person has is returned; one they have
/// not set cannot be, §5.5.1 lets us go on without it). Unknown names are ignored.
fn requested_id_token_claims(claims: &serde_json::Value) -> Vec<String> {
    let Some(serde_json::Value::Object(id_token)) = claims.get("id_token") else {
        return Vec::new();
    };
    crate::user::PROFILE_CLAIMS
        .iter()
        .chain(&["email", "email_verified"])
        .filter(|claim| id_token.contains_key(**claim))
        .map(|claim| (*claim).to_owned())
        .collect()
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
    /// Back to the client with the code.
    Redirect(String),
    /// Back to the client with an error.
    Error(ErrorRedirect),
}

/// What the decision knows about the person and the tenant (read before deciding; nothing is written).
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    pub session: Option<&'a Session>,
    /// The tenant requires an authenticator app before any authorization.
    pub require_totp: bool,
    /// The user has a confirmed authenticator app.
    pub has_totp: bool,
    /// First-party clients skip the consent page.
    pub first_party: bool,
    /// The scopes the user approved for this client and resource.
    pub consented: Option<&'a [String]>,
}

/// The decision: a step for the person, a code, or an error for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    SignIn,
    StepUp,
    Passkey,
    SetUpTotp,
    Consent,
    Issue,
    Fail(ErrorCode, &'static str),
}

/// Decides the next step from what is known, and nothing else (docs/acr.md is this function's
/// specification; its table is restated in the tests). `requested_at` is when the request first
/// arrived: a sign-in after it satisfies `prompt=login` and `max_age`. `prompt=consent` is satisfied
/// only by `consented_for_this_request` (the consent page's own POST): timestamps have one-second
/// resolution, so "granted after the request" could not tell a remembered consent from a fresh one.
pub fn decide(request: &AuthorizationRequest, facts: Facts<'_>, requested_at: i64, consented_for_this_request: bool) -> Decision {
    let silent = request.prompts("none");
    let ask = |step: Decision, code: ErrorCode, why: &'static str| if silent { Decision::Fail(code, why) } else { step };
    let Some(session) = facts.session else {
        return ask(Decision::SignIn, ErrorCode::LoginRequired, "the user is not signed in");
    };
    if request.acr_essential && !request.acr_achievable() {
        // OpenID Connect Unmet Authentication Requirements 1.0.
        return Decision::Fail(ErrorCode::UnmetAuthenticationRequirements, "none of the requested acr values can be satisfied");
    }
    // An email code alone is a bootstrap, not a sign-in: no authorization completes before a passkey
    // is enrolled or confirmed.
    if !session.is_multi_factor() {
        return ask(Decision::Passkey, ErrorCode::InteractionRequired, "the user must confirm with a passkey");
    }
    // A full session that is too old, or weaker than asked: a fresh passkey assertion, not a new
    // email code (the user has a passkey: a multi-factor session proves it).
    let fresh_after = match (request.prompts("login"), request.max_age) {
        (true, _) => requested_at,
        (false, Some(max_age)) => requested_at - max_age,
        (false, None) => i64::MIN,
    };
    if session.auth_time < fresh_after || !request.acr_met_by(session.acr) {
        return ask(Decision::StepUp, ErrorCode::InteractionRequired, "the user must authenticate again");
    }
    // Tenant policy: every user has an authenticator app before any authorization completes.
    if facts.require_totp && !facts.has_totp {
        return ask(Decision::SetUpTotp, ErrorCode::InteractionRequired, "the user must set up an authenticator app");
    }
    if !facts.first_party {
        let covered = facts.consented.is_some_and(|granted| {
            request.scopes.within(granted) && (!request.prompts("consent") || consented_for_this_request)
        });
        if !covered {
            return ask(Decision::Consent, ErrorCode::ConsentRequired, "the user has not approved this application");
        }
    }
    Decision::Issue
}

/// Reads what [`decide`] needs: the authenticator app only where the tenant requires one, the consent
/// only for clients that are not first-party.
async fn decide_now(
    ctx: &Ctx<'_>,
    client: &Client,
    request: &AuthorizationRequest,
    session: Option<&Session>,
    requested_at: i64,
    consented_for_this_request: bool,
) -> StoreResult<Decision> {
    let mut facts = Facts { session, require_totp: ctx.tenant.require_totp, first_party: client.first_party, ..Facts::default() };
    let Some(session) = session else {
        return Ok(decide(request, facts, requested_at, consented_for_this_request));
    };
    if facts.require_totp {
        facts.has_totp = totp::enabled_since(ctx.scope(), &session.user_id).await?.is_some();
    }
    let granted = match facts.first_party {
        true => None,
        false => consent::find(ctx.scope(), &session.user_id, &client.client_id, request.resource.as_deref()).await?,
    };
    facts.consented = granted.as_ref().map(|g| g.scopes.as_slice());
    Ok(decide(request, facts, requested_at, consented_for_this_request))
}

/// Decides and acts: issues the code when the decision is to issue one.
pub async fn proceed(
    ctx: &Ctx<'_>,
    client: &Client,
    request: &AuthorizationRequest,
    session: Option<&Session>,
    requested_at: i64,
    consented_for_this_request: bool,
) -> Result<Next, AuthorizeError> {
    Ok(match decide_now(ctx, client, request, session, requested_at, consented_for_this_request).await? {
        Decision::SignIn => Next::SignIn,
        Decision::StepUp => Next::StepUp,
        Decision::Passkey => Next::Passkey,
        Decision::SetUpTotp => Next::SetUpTotp,
        Decision::Consent => Next::Consent,
        Decision::Fail(code, description) => Next::Error(ErrorRedirect {
            redirect_uri: request.redirect_uri.clone(),
            state: request.state.clone(),
            error: OAuthError::new(code, description),
            confirm: !client.vetted(),
        }),
        Decision::Issue => match session {
            Some(session) => {
                let code = issue_code(ctx, request, session).await?;
                Next::Redirect(success_redirect_url(ctx, request, code.expose()))
            }
            None => Next::SignIn,
        },
    })
}

/// The person's answer on the consent page, for a request whose consent is due (`consent_is_due`).
/// A refusal ends the request with `access_denied`, straight back to the client: the person chose it
/// on a page that named the client and where it returns to. An approval is remembered (for this
/// client and resource, merged with earlier ones) and the request proceeds; a request that finishes
/// is forgotten.
pub async fn answer_consent(
    ctx: &Ctx<'_>,
    client: &Client,
    pending: &Pending,
    session: &Session,
    allow: bool,
) -> Result<Next, AuthorizeError> {
    let actor = format!("user:{}", session.user_id);
    let request = &pending.request;
    if !allow {
        delete_pending(ctx, &pending.id).await?;
        ctx.audit(Event::new(&ctx.tenant.id, actor, "consent.deny").target(format!("client:{}", client.client_id))).await;
        return Ok(Next::Error(ErrorRedirect {
            redirect_uri: request.redirect_uri.clone(),
            state: request.state.clone(),
            error: OAuthError::new(ErrorCode::AccessDenied, "the user denied access"),
            confirm: false,
        }));
    }
    let resource = request.resource.as_deref();
    consent::grant(ctx.scope(), &session.user_id, &client.client_id, resource, &request.scopes).await?;
    ctx.audit(
        Event::new(&ctx.tenant.id, actor, "consent.grant")
            .target(format!("client:{}", client.client_id))
            .details(serde_json::json!({ "scopes": request.scopes, "resource": resource })),
    )
    .await;
    let next = proceed(ctx, client, request, Some(session), pending.created_at, true).await?;
    if matches!(next, Next::Redirect(_) | Next::Error(_)) {
        delete_pending(ctx, &pending.id).await?;
    }
    Ok(next)
}

/// Whether the consent page is this request's step now (its form may be shown and its answer taken):
/// only for a session that passed every earlier step — multi-factor, fresh and strong enough, with
/// the tenant's authenticator app — never for an email-code session. `false`: go back to `resume`.
pub async fn consent_is_due(
    ctx: &Ctx<'_>,
    client: &Client,
    request: &AuthorizationRequest,
    session: &Session,
    requested_at: i64,
) -> StoreResult<bool> {
    Ok(matches!(decide_now(ctx, client, request, Some(session), requested_at, false).await?, Decision::Consent | Decision::Issue))
}

async fn issue_code(
    ctx: &Ctx<'_>,
    request: &AuthorizationRequest,
    session: &Session,
) -> StoreResult<Secret> {
    let code = crypto::random_token("");
    let now = now();
    let row = authorizations::CodeRow {
        code_hash: sha256_hex(&code),
        tenant_id: ctx.tenant.id.clone(),
        client_id: request.client_id.clone(),
        user_id: session.user_id.clone(),
        session_id: session.id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        scope: request.scopes.to_string(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        auth_time: session.auth_time,
        amr: store::to_amr_json(&session.amr),
        acr: session.acr.as_str().to_owned(),
        created_at: now,
        expires_at: now + ctx.lifetimes().authorization_code,
        consumed_at: None,
        family_id: None,
        resource: request.resource.clone(),
        id_token_claims: (!request.id_token_claims.is_empty()).then(|| to_json_list(&request.id_token_claims)),
    };
    authorizations::insert_code(ctx.scope(), row).await?;
    Ok(Secret::new(code))
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
    let params = serde_json::to_string(request).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    authorizations::insert_request(ctx.scope(), &id, &request.client_id, params, now, now + ctx.lifetimes().authorization_request).await?;
    Ok(id)
}

pub async fn load_pending(ctx: &Ctx<'_>, id: &str) -> StoreResult<Option<Pending>> {
    let Some(row) = authorizations::find_request(ctx.scope(), id, now()).await? else {
        return Ok(None);
    };
    let request = serde_json::from_str(&row.params).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Some(Pending { id: row.id, request, created_at: row.created_at }))
}

pub async fn delete_pending(ctx: &Ctx<'_>, id: &str) -> StoreResult<()> {
    authorizations::delete_request(ctx.scope(), id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(acr: &[&str], prompt: &[&str]) -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "c".into(),
            redirect_uri: "https://app.example/cb".into(),
            scopes: Scopes::parse("openid files:read"),
            state: None,
            nonce: None,
            code_challenge: "x".repeat(43),
            prompt: prompt.iter().map(|p| (*p).to_owned()).collect(),
            max_age: None,
            login_hint: None,
            acr_values: acr.iter().map(|a| (*a).to_owned()).collect(),
            acr_essential: false,
            resource: None,
            resource_step_up: false,
            id_token_claims: vec![],
        }
    }

    fn session(acr: Acr, amr: &[&str], auth_time: i64) -> Session {
        Session {
            id: "s".into(),
            user_id: "u".into(),
            auth_time,
            amr: amr.iter().map(|a| latchkey_proto::Amr::parse(a).expect("an amr value")).collect(),
            acr,
            created_at: auth_time,
        }
    }

    const NOW: i64 = 1_000_000;

    /// docs/acr.md, restated: which session may finish an authorization, and what each request
    /// parameter asks of it.
    #[test]
    fn the_authentication_levels_of_docs_acr_md() {
        let email_code = session(Acr::EmailCode, &["otp"], NOW);
        let recovery = session(Acr::RecoveryCode, &["otp"], NOW);
        let totp = session(Acr::Totp, &["otp"], NOW);
        let enrolled = session(Acr::Mfa, &["otp", "hwk", "user", "mfa"], NOW);
        let passkey = session(Acr::Phr, &["hwk", "user", "mfa"], NOW);
        let old_passkey = session(Acr::Phr, &["hwk", "user", "mfa"], NOW - 3600);
        let step_up_resource = AuthorizationRequest { resource: Some("https://r".into()), resource_step_up: true, ..request(&[], &[]) };
        let weak_acr_on_step_up_resource = AuthorizationRequest { resource_step_up: true, ..request(&["urn:latchkey:acr:email-code"], &[]) };
        let unknown_essential = AuthorizationRequest { acr_essential: true, ..request(&["urn:example:gold"], &[]) };
        let max_age = AuthorizationRequest { max_age: Some(60), ..request(&[], &[]) };
        use Decision::*;
        let cases: Vec<(&str, Option<&Session>, AuthorizationRequest, Decision)> = vec![
            ("no session", None, request(&[], &[]), SignIn),
            ("no session, prompt=none", None, request(&[], &["none"]), Fail(ErrorCode::LoginRequired, "the user is not signed in")),
            ("an email code is a bootstrap", Some(&email_code), request(&[], &[]), Passkey),
            ("so is a recovery code", Some(&recovery), request(&[], &[]), Passkey),
            ("and an app code", Some(&totp), request(&[], &[]), Passkey),
            ("email code, prompt=none", Some(&email_code), request(&[], &["none"]), Fail(ErrorCode::InteractionRequired, "the user must confirm with a passkey")),
            ("enrolled", Some(&enrolled), request(&[], &[]), Issue),
            ("enrolled, phr asked", Some(&enrolled), request(&["phr"], &[]), StepUp),
            ("passkey, phr asked", Some(&passkey), request(&["phr"], &[]), Issue),
            ("a weaker level asked is met", Some(&enrolled), request(&["urn:latchkey:acr:email-code"], &[]), Issue),
            ("alternatives: the weakest known one counts", Some(&enrolled), request(&["phr", "urn:latchkey:acr:mfa"], &[]), Issue),
            ("an unknown value is never met", Some(&enrolled), request(&["urn:example:gold"], &[]), StepUp),
            ("best effort after a passkey", Some(&passkey), request(&["urn:example:gold"], &[]), Issue),
            ("unknown and essential", Some(&passkey), unknown_essential, Fail(ErrorCode::UnmetAuthenticationRequirements, "none of the requested acr values can be satisfied")),
            ("a step-up resource needs phr", Some(&enrolled), step_up_resource.clone(), StepUp),
            ("whatever acr_values say", Some(&enrolled), weak_acr_on_step_up_resource, StepUp),
            ("a passkey meets the step-up resource", Some(&passkey), step_up_resource, Issue),
            ("max_age", Some(&old_passkey), max_age.clone(), StepUp),
            ("max_age, fresh", Some(&passkey), max_age, Issue),
            ("prompt=login, signed in before the request", Some(&old_passkey), request(&[], &["login"]), StepUp),
            ("prompt=login, signed in since", Some(&passkey), request(&[], &["login"]), Issue),
            ("too old, prompt=none", Some(&old_passkey), AuthorizationRequest { max_age: Some(1), ..request(&[], &["none"]) }, Fail(ErrorCode::InteractionRequired, "the user must authenticate again")),
        ];
        for (what, session, request, expected) in cases {
            let facts = Facts { session, first_party: true, ..Facts::default() };
            assert_eq!(decide(&request, facts, NOW, false), expected, "{what}");
        }
    }

    #[test]
    fn tenant_policy_and_consent_come_after_the_sign_in() {
        let passkey = session(Acr::Phr, &["hwk", "user", "mfa"], NOW);
        let email_code = session(Acr::EmailCode, &["otp"], NOW);
        let all: Vec<String> = vec!["openid".into(), "files:read".into()];
        let some: Vec<String> = vec!["openid".into()];
        let base = Facts { session: Some(&passkey), ..Facts::default() };
        use Decision::*;
        let cases: Vec<(&str, Facts<'_>, &[&str], bool, Decision)> = vec![
            ("the tenant requires an app", Facts { require_totp: true, first_party: true, ..base }, &[], false, SetUpTotp),
            ("and the user has one", Facts { require_totp: true, has_totp: true, first_party: true, ..base }, &[], false, Issue),
            ("no consent yet", base, &[], false, Consent),
            ("consent covers every scope", Facts { consented: Some(&all), ..base }, &[], false, Issue),
            ("consent misses one", Facts { consented: Some(&some), ..base }, &[], false, Consent),
            ("prompt=consent asks again", Facts { consented: Some(&all), ..base }, &["consent"], false, Consent),
            ("prompt=consent, just given", Facts { consented: Some(&all), ..base }, &["consent"], true, Issue),
            ("no consent, prompt=none", base, &["none"], false, Fail(ErrorCode::ConsentRequired, "the user has not approved this application")),
            // Consent is never the step of an email-code session: the passkey comes first.
            ("email code, consent given", Facts { session: Some(&email_code), consented: Some(&all), ..base }, &[], true, Passkey),
        ];
        for (what, facts, prompt, consented_now, expected) in cases {
            assert_eq!(decide(&request(&[], prompt), facts, NOW, consented_now), expected, "{what}");
        }
    }
}
