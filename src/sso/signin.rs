//! An SSO sign-in, start to finish: the request sent to the organization's IdP (stored, bound to the
//! browser, single use, expiring), the answer checked (`oidc::finish`, or `saml::verify` with the
//! assertion id recorded once against replays), the account decided
//! (`linking::decide`) and provisioned or attached, the organization's roles synchronised, and a
//! session begun at the `sso` level — or, when the organization waives the passkey and the IdP says it
//! did multi-factor authentication, at `mfa`. The handlers in `http::sso` only parse and render.

use latchkey_proto::{Acr, Amr, Secret};

use super::{
    IdpIdentity,
    connection::{self, ClientAuth, Connection, ConnectionError, Protocol},
    domains::{self, DomainName},
    linking::{self, Link, Refusal},
    oidc::{self, OidcError, Outgoing},
    saml::{self, SamlError, ServiceProviderUrls},
};
use crate::{
    audit::Event,
    context::Ctx,
    crypto,
    organization::{self, OrganizationError},
    session::{self, Authentication},
    store::{StoreError, now, organizations, sso},
    user::{self, Email},
};

#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error(transparent)]
    Oidc(#[from] OidcError),
    #[error(transparent)]
    Saml(#[from] SamlError),
    #[error("this sign-in has expired, was already used, or was started in another browser")]
    UnknownRequest,
    #[error("this SAML assertion was already used")]
    Replayed,
    #[error("the identity provider started this sign-in, and this connection does not accept that")]
    Unsolicited,
    #[error("this organization's single sign-on is switched off")]
    ConnectionDisabled,
    #[error("refused: {}", .0.code())]
    Refused(Refusal),
    #[error(transparent)]
    Organization(#[from] OrganizationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The IdP's redirect URI for every OIDC connection of the tenant (one value for administrators to
/// register).
pub fn callback_url(ctx: &Ctx<'_>) -> String {
    ctx.endpoint("sso/callback")
}

/// Latchkey's SAML endpoints for a connection: the entity id is also where its metadata is served.
pub fn saml_urls(ctx: &Ctx<'_>, connection_id: &str) -> ServiceProviderUrls {
    ServiceProviderUrls {
        entity_id: ctx.endpoint(&format!("sso/saml/{connection_id}/metadata")),
        acs_url: ctx.endpoint(&format!("sso/saml/{connection_id}/acs")),
    }
}

fn verifier_purpose(request_id: &str) -> String {
    format!("sso-request/{request_id}")
}

/// Where to send the browser, and the value its binding cookie holds.
pub struct Started {
    pub location: url::Url,
    pub binding: Secret,
}

/// Starts a sign-in at the connection's IdP — or, with `tested_by` (an administrator's user id), a
/// test of the connection that signs nobody in and shows that administrator what the IdP sent.
pub async fn start(
    ctx: &Ctx<'_>,
    connection: &Connection,
    pending_request_id: Option<&str>,
    login_hint: Option<&Email>,
    tested_by: Option<&str>,
) -> Result<Started, SsoError> {
    if !connection.enabled {
        return Err(SsoError::ConnectionDisabled);
    }
    let sso = &ctx.services.sso;
    let hint = login_hint.map(Email::as_str);
    // The stored request: keyed by the hash of what the IdP sends back (OIDC `state`, SAML
    // `InResponseTo`), with what the answer is checked against.
    let (id, location, sealed_verifier, nonce_hash) = match &connection.protocol {
        Protocol::Oidc(settings) => {
            let discovered = sso.providers.discover(&sso.fetcher, &connection.id, connection.updated_at, settings).await?;
            let outgoing = Outgoing::new();
            let location = oidc::authorization_url(&discovered, settings, &callback_url(ctx), &outgoing, hint)?;
            let id = crypto::sha256_hex(outgoing.state.expose());
            let sealed = ctx.tenant.data_key.seal(&verifier_purpose(&id), outgoing.verifier.expose().as_bytes());
            (id, location, Some(crypto::base64url(&sealed)), Some(crypto::sha256_hex(outgoing.nonce.expose())))
        }
        Protocol::Saml(settings) => {
            // An xs:ID (an NCName): a letter or underscore first; 128 random bits.
            let request_id = format!("_{}", crypto::random_id());
            let key = connection.sp_key(&ctx.tenant.data_key)?;
            let location = saml::authn_request(settings, &saml_urls(ctx, &connection.id), &key, &request_id, hint)?;
            (crypto::sha256_hex(&request_id), location, None, None)
        }
    };
    let binding = Secret::new(crypto::random_token(""));
    let at = now();
    sso::insert_request(
        ctx.scope(),
        sso::RequestRow {
            id,
            tenant_id: ctx.tenant.id.clone(),
            connection_id: connection.id.clone(),
            binding_hash: crypto::sha256_hex(binding.expose()),
            sealed_verifier,
            nonce_hash,
            pending_request_id: pending_request_id.map(str::to_owned),
            tested_by: tested_by.map(str::to_owned),
            created_at: at,
            expires_at: at + sso.request_seconds,
            consumed_at: None,
        },
    )
    .await?;
    Ok(Started { location, binding })
}

/// A finished sign-in: the session cookie, and the authorization request to resume.
#[derive(Debug)]
pub struct Finished {
    pub cookie: Secret,
    pub pending_request_id: Option<String>,
}

/// What the IdP's answer came to: a sign-in, or an administrator's test of the connection.
#[derive(Debug)]
pub enum Outcome {
    SignedIn(Finished),
    Tested(TestReport),
}

/// What a test of a connection shows its administrator: what the IdP said, and what a sign-in with it
/// would do — nothing of which was done.
#[derive(Debug)]
pub struct TestReport {
    /// The administrator who started the test: only their session may see the report.
    pub tested_by: String,
    pub connection_name: String,
    pub organization_slug: String,
    pub identity: IdpIdentity,
    /// What a sign-in would do with this identity, in words.
    pub would: String,
    pub roles: Vec<String>,
}

/// Checks the IdP's answer for the request `state` names (taken once, by the browser holding
/// `binding`), then signs the person in. Every refusal is audited and changes nothing.
pub async fn finish(ctx: &Ctx<'_>, state: &str, binding: &str, code: &str) -> Result<Outcome, SsoError> {
    let request_id = crypto::sha256_hex(state);
    let request = sso::take_request(ctx.scope(), &request_id, &crypto::sha256_hex(binding), now())
        .await?
        .ok_or(SsoError::UnknownRequest)?;
    let connection = connection::find(ctx.scope(), &request.connection_id).await?.ok_or(SsoError::UnknownRequest)?;
    let result = oidc_sign_in(ctx, &connection, &request, code).await;
    audit_refusal(ctx, &connection, &result).await;
    result
}

async fn audit_refusal(ctx: &Ctx<'_>, connection: &Connection, result: &Result<Outcome, SsoError>) {
    if let Err(error) = result {
        ctx.audit(
            Event::new(&ctx.tenant.id, "anonymous", "signin.sso")
                .target(format!("sso:{}", connection.id))
                .failed()
                .details(serde_json::json!({ "reason": error.to_string() })),
        )
        .await;
    }
}

async fn oidc_sign_in(ctx: &Ctx<'_>, connection: &Connection, request: &sso::RequestRow, code: &str) -> Result<Outcome, SsoError> {
    if !connection.enabled {
        return Err(SsoError::ConnectionDisabled);
    }
    let (Protocol::Oidc(settings), Some(sealed), Some(nonce_hash)) = (&connection.protocol, &request.sealed_verifier, &request.nonce_hash)
    else {
        return Err(SsoError::UnknownRequest);
    };
    let verifier = crypto::base64url_decode(sealed)
        .and_then(|bytes| ctx.tenant.data_key.open(&verifier_purpose(&request.id), &bytes).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(Secret::new)
        .ok_or_else(|| StoreError::Corrupt("sealed PKCE verifier".into()))?;
    let sso = &ctx.services.sso;
    let discovered = sso.providers.discover(&sso.fetcher, &connection.id, connection.updated_at, settings).await?;
    let secret = match settings.client_auth {
        ClientAuth::ClientSecretBasic => connection.client_secret(&ctx.tenant.data_key)?,
        ClientAuth::PrivateKeyJwt => None,
    };
    let key = match (settings.client_auth, &settings.client_certificate) {
        (ClientAuth::PrivateKeyJwt, Some(certificate)) => Some((connection.client_key(&ctx.tenant.data_key)?, certificate)),
        _ => None,
    };
    let credential = match &key {
        Some((pkcs8, certificate)) => oidc::Credential::Key { pkcs8, certificate },
        None => oidc::Credential::Secret(secret.as_ref()),
    };
    let identity = oidc::finish(&sso.fetcher, &discovered, settings, credential, &callback_url(ctx), code, &verifier, nonce_hash).await?;
    conclude(ctx, connection, identity, Some(request)).await
}

/// A sign-in for the identity — or, for a test request, the report of what one would do. `request`
/// is the stored request answered (none for an IdP-initiated SAML response).
async fn conclude(ctx: &Ctx<'_>, connection: &Connection, identity: IdpIdentity, request: Option<&sso::RequestRow>) -> Result<Outcome, SsoError> {
    match request {
        Some(sso::RequestRow { tested_by: Some(admin), .. }) => Ok(Outcome::Tested(test_report(ctx, connection, identity, admin).await?)),
        _ => {
            let pending = request.and_then(|r| r.pending_request_id.clone());
            Ok(Outcome::SignedIn(begin(ctx, connection, &identity, pending).await?))
        }
    }
}

async fn test_report(ctx: &Ctx<'_>, connection: &Connection, identity: IdpIdentity, admin: &str) -> Result<TestReport, SsoError> {
    let gathered = Gathered::read(ctx, connection, &identity).await?;
    let email = identity.email.clone().unwrap_or_else(|| "(no address)".to_owned());
    let would = match linking::decide(gathered.facts(&identity)) {
        Link::SignIn(_) => "sign in the account this identity is already linked to".to_owned(),
        Link::Attach(_) => format!("link this identity to the existing account {email} and sign it in"),
        Link::Create => format!("create the account {email} (just in time) and sign it in"),
        Link::Refuse(refusal) => format!("refuse the sign-in ({})", refusal.code()),
    };
    ctx.audit(
        Event::new(&ctx.tenant.id, format!("user:{admin}"), "sso.connection_test")
            .target(format!("sso:{}", connection.id))
            .details(serde_json::json!({ "would": would })),
    )
    .await;
    let organization_slug = organization::find(ctx.scope(), &connection.organization_id).await?.map(|o| o.slug).unwrap_or_default();
    Ok(TestReport {
        tested_by: admin.to_owned(),
        connection_name: connection.name.clone(),
        organization_slug,
        roles: connection.roles_for(&identity.groups),
        identity,
        would,
    })
}

/// Takes a SAML response posted to `connection_id`'s ACS URL: verified first (nothing is consumed
/// for a response that fails), then the request it answers is taken (once, by the browser holding
/// `binding`) — or, with no `InResponseTo`, accepted only where IdP-initiated sign-in is on — and
/// the assertion id recorded once, so a replay on any node is refused.
pub async fn finish_saml(ctx: &Ctx<'_>, connection_id: &str, binding: &str, saml_response: &str) -> Result<Outcome, SsoError> {
    let connection = connection::find(ctx.scope(), connection_id).await?.ok_or(SsoError::UnknownRequest)?;
    let result = saml_sign_in(ctx, &connection, binding, saml_response).await;
    audit_refusal(ctx, &connection, &result).await;
    result
}

async fn saml_sign_in(ctx: &Ctx<'_>, connection: &Connection, binding: &str, saml_response: &str) -> Result<Outcome, SsoError> {
    if !connection.enabled {
        return Err(SsoError::ConnectionDisabled);
    }
    let Protocol::Saml(settings) = &connection.protocol else { return Err(SsoError::UnknownRequest) };
    let verified = saml::verify(settings, &saml_urls(ctx, &connection.id), saml_response)?;
    let scope = ctx.scope();
    let request = match &verified.in_response_to {
        Some(request_id) => Some(
            sso::take_request(scope, &crypto::sha256_hex(request_id), &crypto::sha256_hex(binding), now())
                .await?
                .filter(|request| request.connection_id == connection.id)
                .ok_or(SsoError::UnknownRequest)?,
        ),
        None if settings.allow_idp_initiated => None,
        None => return Err(SsoError::Unsolicited),
    };
    let record = sso::AssertionRow {
        id: crypto::sha256_hex(&format!("{}/{}", connection.id, verified.assertion_id)),
        tenant_id: ctx.tenant.id.clone(),
        connection_id: connection.id.clone(),
        expires_at: verified.replayable_until.max(now() + 1),
    };
    if !sso::record_assertion(scope, record).await? {
        return Err(SsoError::Replayed);
    }
    conclude(ctx, connection, verified.identity, request.as_ref()).await
}

/// The account decided and the session begun, for an identity the IdP vouched for.
async fn begin(ctx: &Ctx<'_>, connection: &Connection, identity: &IdpIdentity, pending_request_id: Option<String>) -> Result<Finished, SsoError> {
    let (user_id, how) = account_for(ctx, connection, identity).await?;
    let require_passkey = connection.require_passkey || !identity.amr.contains(&Amr::Mfa);
    let authn = Authentication { amr: identity.amr.clone(), acr: if require_passkey { Acr::Sso } else { Acr::Mfa } };
    let (cookie, session) = session::create(ctx.scope(), &user_id, authn, &ctx.origin, ctx.lifetimes()).await?;
    user::mark_signed_in(ctx.scope(), &user_id).await?;
    ctx.audit(
        Event::new(&ctx.tenant.id, format!("user:{user_id}"), "signin.sso")
            .target(format!("session:{}", &session.id[..16]))
            .details(serde_json::json!({ "connection": connection.id, "protocol": connection.protocol.name(), "account": how, "amr": identity.amr })),
    )
    .await;
    Ok(Finished { cookie, pending_request_id })
}

/// What is stored now that decides which account an identity is (`linking::Facts`, owned).
struct Gathered {
    linked: Option<sso::IdentityRow>,
    linked_user: Option<user::User>,
    provisioned: Option<user::User>,
    email: Option<Email>,
    domain_verified: bool,
    organization_domain: bool,
    may_create: bool,
    by_email: Option<user::User>,
    by_email_linked: bool,
    by_email_elsewhere: bool,
}

impl Gathered {
    async fn read(ctx: &Ctx<'_>, connection: &Connection, identity: &IdpIdentity) -> Result<Self, SsoError> {
        let scope = ctx.scope();
        let linked = sso::identity(scope, &connection.id, &identity.subject).await?;
        let linked_user = match &linked {
            Some(row) => user::find(scope, &row.user_id).await?,
            None => None,
        };
        let provisioned = match &linked {
            None if !connection.is_social() => provisioned_account(scope, &connection.organization_id, &identity.directory_id).await?,
            _ => None,
        };
        let email = identity.email.as_deref().and_then(Email::parse);
        let owner = match email.as_ref().and_then(|e| DomainName::of_email(e.as_str())) {
            Some(domain) => Some(domains::verified_owner(scope, &domain).await?.map(|claim| claim.organization_id)),
            None => None,
        };
        // An organization's connection vouches for its own verified domains; a social one for the
        // domains no organization verified.
        let (domain_verified, organization_domain) = match (&owner, connection.is_social()) {
            (None, _) => (false, false),
            (Some(None), social) => (social, false),
            (Some(Some(organization)), false) => (*organization == connection.organization_id, false),
            (Some(Some(_)), true) => (false, true),
        };
        let may_create = !connection.is_social() || ctx.tenant.self_signup;
        let by_email = match &email {
            Some(email) if linked.is_none() => user::find_by_email(scope, email).await?,
            _ => None,
        };
        let (mut by_email_linked, mut by_email_elsewhere) = (false, false);
        if let Some(user) = &by_email {
            by_email_linked = sso::identity_of_user(scope, &user.id).await?.is_some();
            by_email_elsewhere =
                !connection.is_social() && organizations::member(scope, &user.id).await?.is_some_and(|m| m.organization_id != connection.organization_id);
        }
        Ok(Self { linked, linked_user, provisioned, email, domain_verified, organization_domain, may_create, by_email, by_email_linked, by_email_elsewhere })
    }

    fn facts<'a>(&'a self, identity: &IdpIdentity) -> linking::Facts<'a> {
        linking::Facts {
            linked_account: self.linked_user.as_ref().map(|u| (u.id.as_str(), u.disabled_at.is_some())),
            provisioned_account: self.provisioned.as_ref().map(|u| (u.id.as_str(), u.disabled_at.is_some())),
            has_email: self.email.is_some(),
            email_proven: identity.email_proven,
            domain_verified: self.domain_verified,
            organization_domain: self.organization_domain,
            may_create: self.may_create,
            account_by_email: self.by_email.as_ref().map(|user| linking::Account {
                user_id: &user.id,
                disabled: user.disabled_at.is_some(),
                linked: self.by_email_linked,
                in_other_organization: self.by_email_elsewhere,
            }),
        }
    }
}

/// The account the organization's SCIM directory provisioned for the one directory user whose
/// `externalId` is this IdP id (two such users name nobody).
async fn provisioned_account(scope: crate::store::Scoped<'_>, organization_id: &str, directory_id: &str) -> Result<Option<user::User>, SsoError> {
    let Some(directory) = crate::store::scim::directory_of(scope, organization_id).await? else { return Ok(None) };
    let found = crate::store::scim::users_by_external_id(scope, &directory.id, directory_id).await?;
    match found.as_slice() {
        [one] => match &one.account_id {
            Some(account) => Ok(user::find(scope, account).await?),
            None => Ok(None),
        },
        _ => Ok(None),
    }
}

/// The account the identity signs in to (`linking::decide` on what is stored now), made or attached
/// as decided, with its organization membership and mapped roles. Returns it and what was done.
async fn account_for(ctx: &Ctx<'_>, connection: &Connection, identity: &IdpIdentity) -> Result<(String, &'static str), SsoError> {
    let scope = ctx.scope();
    let gathered = Gathered::read(ctx, connection, identity).await?;
    let (linked, email) = (&gathered.linked, &gathered.email);
    let (user_id, how) = match linking::decide(gathered.facts(identity)) {
        Link::Refuse(refusal) => return Err(SsoError::Refused(refusal)),
        Link::SignIn(user_id) => {
            if let Some(row) = &linked {
                sso::identity_used(scope, &row.id, now()).await?;
            }
            (user_id.to_owned(), "signed_in")
        }
        Link::Attach(user_id) => {
            link(ctx, connection, identity, user_id).await?;
            (user_id.to_owned(), "attached")
        }
        Link::Create => {
            // `decide` creates only for a proven address, so there is one.
            let email = email.as_ref().ok_or(SsoError::Refused(Refusal::NoEmail))?;
            let user = user::find_or_create(scope, email).await?;
            let profile = user::Profile {
                name: identity.name.clone(),
                given_name: identity.given_name.clone(),
                family_name: identity.family_name.clone(),
                ..user::Profile::of(&user)
            };
            if let Ok(profile) = profile.checked() {
                user::set_profile(scope, &user.id, profile).await?;
            }
            link(ctx, connection, identity, &user.id).await?;
            (user.id, "created")
        }
    };
    if connection.is_social() {
        // A social sign-in makes nobody a member of anything.
        return Ok((user_id, how));
    }
    let organization = organization::find(scope, &connection.organization_id).await?.ok_or(SsoError::UnknownRequest)?;
    let member = organizations::member(scope, &user_id).await?;
    if member.is_none() || connection.maps_roles() {
        // Roles follow the IdP when the organization mapped them; otherwise the first sign-in makes a
        // member without roles and administrators assign them.
        organization::set_member(scope, &organization, &user_id, &connection.roles_for(&identity.groups)).await?;
    }
    Ok((user_id, how))
}

async fn link(ctx: &Ctx<'_>, connection: &Connection, identity: &IdpIdentity, user_id: &str) -> Result<(), SsoError> {
    let at = now();
    let row = sso::IdentityRow {
        id: crypto::random_id(),
        tenant_id: ctx.tenant.id.clone(),
        connection_id: connection.id.clone(),
        subject: identity.subject.clone(),
        user_id: user_id.to_owned(),
        created_at: at,
        last_used_at: at,
    };
    // A concurrent sign-in linked the subject or the account first: one way in per account.
    if !sso::insert_identity(ctx.scope(), row).await? {
        return Err(SsoError::Refused(Refusal::LinkedElsewhere));
    }
    ctx.audit(
        Event::new(&ctx.tenant.id, format!("user:{user_id}"), "sso.identity_link")
            .target(format!("sso:{}", connection.id)),
    )
    .await;
    Ok(())
}

/// Home-realm discovery: the connection people with this address sign in with — the active connection
/// of the organization that verified the address's domain.
pub async fn connection_for_email(ctx: &Ctx<'_>, email: &Email) -> Result<Option<Connection>, SsoError> {
    let Some(domain) = DomainName::of_email(email.as_str()) else { return Ok(None) };
    let Some(claim) = domains::verified_owner(ctx.scope(), &domain).await? else { return Ok(None) };
    Ok(connection::active_of(ctx.scope(), &claim.organization_id).await?)
}
