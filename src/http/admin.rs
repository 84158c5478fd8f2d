//! An organization's administration pages (`/org/{slug}/admin`): members, domains with their TXT
//! records, SSO connections with the values to copy into the IdP's console, the "test connection"
//! flow and the enforcement switch. Every form is a CSRF-checked POST that redirects back (303) with
//! a fixed notice; the rules are `crate::org_admin`'s.

use actix_web::{HttpRequest, HttpResponse, cookie::Cookie, http::StatusCode, web};
use askama::Template;

use super::{HttpCtx, PageError, current_session, page_context, request, respond, sso::started_cookie};
use crate::{
    app::App,
    oauth::params::Params,
    org_admin::{self, AdminError, Administrator, Metadata},
    pages::{Chrome, ConnectionRow, DomainRow, MemberRow, OrgAdmin, ScimEventRow, ScimSection, ScimTokenRow, SsoTest, when},
    sso::{
        connection::{Flavor, OidcSettings, Protocol},
        saml,
        signin::{self, TestReport},
    },
};

/// Notices after a change, keyed by the `done` query parameter (never echoed).
const NOTICES: &[(&str, &str)] = &[
    ("member", "Member saved."),
    ("member-removed", "Member removed."),
    ("domain", "Domain added: publish its TXT record, then verify it."),
    ("verified", "Domain verified."),
    ("domain-removed", "Domain removed."),
    ("enforced", "SSO is now enforced for that domain. Owners keep an email-code way in (break-glass)."),
    ("relaxed", "SSO is no longer enforced for that domain."),
    ("connection", "Connection added. Copy its values into your identity provider, then test it."),
    ("connection-removed", "Connection removed."),
    ("scim-revoked", "Directory token revoked: the identity provider can no longer use it."),
    ("scim-roles", "Group-to-role map saved; it applies at each person's next provisioning change."),
];

fn admin_path(slug: &str) -> String {
    format!("org/{slug}/admin")
}

/// The administrator of `slug` behind this request, or the page to send the browser to.
async fn administrator(ctx: &HttpCtx<'_>, req: &HttpRequest, slug: &str) -> Result<Result<Administrator, HttpResponse>, PageError> {
    let Some(session) = current_session(ctx, req).await? else {
        return Ok(Err(respond::see_other(&ctx.endpoint("login"), vec![])));
    };
    if !session.is_multi_factor() {
        return Ok(Err(respond::see_other(&ctx.endpoint("passkey"), vec![])));
    }
    match org_admin::administrator(ctx, &session, slug).await {
        Ok(admin) => Ok(Ok(admin)),
        Err(AdminError::Store(e)) => Err(e.into()),
        Err(_) => Err(PageError::new(
            StatusCode::FORBIDDEN,
            &ctx.tenant.display_name,
            "Not an administrator",
            "Only the organization's owners and admins can open its administration.",
        )),
    }
}

/// `GET /t/{tenant}/org/{slug}/admin`
pub async fn page(app: web::Data<App>, req: HttpRequest, path: web::Path<(String, String)>) -> Result<HttpResponse, PageError> {
    let (tenant, slug) = path.into_inner();
    let ctx = page_context(&app, &req, &tenant).await?;
    let params = respond::query(&ctx, &req)?;
    let admin = match administrator(&ctx, &req, &slug).await? {
        Ok(admin) => admin,
        Err(redirect) => return Ok(redirect),
    };
    let notice = params.get("done").and_then(|key| NOTICES.iter().find(|(k, _)| *k == key)).map(|(_, text)| *text);
    render(&ctx, &req, &admin, notice, None, StatusCode::OK, None).await
}

fn domain_state(claim: &crate::sso::domains::DomainClaim) -> String {
    let enforced = if claim.enforce_sso { " · SSO enforced" } else { "" };
    match (claim.verified_at, claim.lost_at) {
        (Some(_), Some(since)) => format!("Verified; the record is missing since {}{enforced}", when(since)),
        (Some(at), None) => format!("Verified {}{enforced}", when(at)),
        (None, _) => "Waiting for the TXT record".to_owned(),
    }
}

fn connection_row(ctx: &HttpCtx<'_>, slug: &str, connection: &crate::sso::connection::Connection) -> ConnectionRow {
    let values = match &connection.protocol {
        Protocol::Saml(settings) => {
            let urls = signin::saml_urls(ctx, &connection.id);
            vec![
                ("Identifier (entity id)", urls.entity_id.clone()),
                ("Reply URL (ACS)", urls.acs_url),
                ("SP metadata", urls.entity_id),
                ("IdP entity id", settings.idp_entity_id.clone()),
                ("IdP certificates", settings.certificates.len().to_string()),
                ("IdP-initiated sign-in", if settings.allow_idp_initiated { "accepted" } else { "refused" }.to_owned()),
            ]
        }
        Protocol::Oidc(settings) => {
            let mut values = vec![
                ("Redirect URI", signin::callback_url(ctx)),
                ("Issuer", settings.issuer.clone()),
                ("Client id", settings.client_id.clone()),
            ];
            if let Some(certificate) = &settings.client_certificate {
                values.push(("Client keys (JWKS)", ctx.endpoint(&format!("sso/{}/jwks", connection.id))));
                values.push(("Client certificate (base64 DER)", certificate.clone()));
            }
            values
        }
    };
    let mut values = values;
    values.push((
        "Passkey after SSO",
        if connection.require_passkey { "always" } else { "unless the IdP reports multi-factor authentication" }.to_owned(),
    ));
    ConnectionRow {
        id: connection.id.clone(),
        name: connection.name.clone(),
        protocol: connection.protocol.name(),
        values,
        test_url: ctx.endpoint(&format!("{}/test/{}", admin_path(slug), connection.id)),
    }
}

fn scim_section(scim: org_admin::ScimOverview) -> ScimSection {
    ScimSection {
        tokens: scim
            .tokens
            .into_iter()
            .map(|t| ScimTokenRow {
                state: match (t.revoked_at, t.last_used_at) {
                    (Some(at), _) => format!("revoked {}", when(at)),
                    (None, Some(at)) => format!("last used {}", when(at)),
                    (None, None) => "never used".to_owned(),
                },
                live: t.revoked_at.is_none(),
                id: t.id,
                prefix: t.prefix,
            })
            .collect(),
        role_map: scim.role_map.iter().map(|(g, r)| format!("{g}={r}")).collect::<Vec<_>>().join(", "),
        events: scim
            .events
            .into_iter()
            .map(|e| ScimEventRow { when: when(e.occurred_at), action: e.action, target: e.target.unwrap_or_default(), outcome: e.outcome })
            .collect(),
        users_total: scim.users_total,
        users: scim.users.into_iter().map(|u| (u.user_name, if !u.active { "inactive" } else if u.account.is_some() { "signs in" } else { "no account" })).collect(),
        groups_total: scim.groups_total,
        groups: scim.groups.into_iter().map(|g| (g.display_name, g.members)).collect(),
    }
}

async fn render(
    ctx: &HttpCtx<'_>,
    req: &HttpRequest,
    admin: &Administrator,
    notice: Option<&'static str>,
    error: Option<String>,
    status: StatusCode,
    new_scim_token: Option<String>,
) -> Result<HttpResponse, PageError> {
    let overview = org_admin::overview(ctx, admin).await.map_err(|e| PageError::internal(&e))?;
    let slug = &admin.organization.slug;
    let csrf = request::csrf(ctx.app, req);
    let chrome = Chrome::new(&ctx.tenant.display_name);
    let page = OrgAdmin {
        tenant_name: chrome.tenant_name,
        tenant_initial: chrome.tenant_initial,
        csrf: &csrf.token,
        action: ctx.endpoint(&admin_path(slug)),
        org_name: &admin.organization.name,
        org_slug: slug,
        notice,
        error,
        fresh: admin.fresh,
        step_up_url: ctx.endpoint("passkey?step_up=1"),
        members: overview
            .members
            .into_iter()
            .map(|m| MemberRow { user_id: m.user_id, email: m.email, roles: m.roles.join(" ") })
            .collect(),
        domains: overview
            .domains
            .into_iter()
            .map(|(claim, challenge)| DomainRow {
                state: domain_state(&claim),
                verified: claim.verified_at.is_some(),
                enforced: claim.enforce_sso,
                domain: claim.domain,
                record_name: challenge.name,
                record_value: challenge.value,
            })
            .collect(),
        connections: overview.connections.iter().map(|c| connection_row(ctx, slug, c)).collect(),
        oidc_redirect_uri: signin::callback_url(ctx),
        scim_base_url: crate::scim::directory::base_url(ctx, slug),
        scim: overview.scim.map(scim_section),
        new_scim_token,
    };
    respond::html(status, page.render(), csrf.new_cookie.into_iter().collect())
}

/// `POST /t/{tenant}/org/{slug}/admin`: one of the page's forms (`op`).
pub async fn submit(app: web::Data<App>, req: HttpRequest, path: web::Path<(String, String)>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let (tenant, slug) = path.into_inner();
    let ctx = page_context(&app, &req, &tenant).await?;
    // Pasted IdP metadata is the largest value any form here carries.
    let params = request::form_params_limited(&req, &body, saml::MAX_METADATA_BYTES)
        .map_err(|e| PageError::bad_request(&ctx.tenant.display_name, e.description))?;
    request::check_csrf(&app, &req, &params, &ctx.tenant.display_name)?;
    let admin = match administrator(&ctx, &req, &slug).await? {
        Ok(admin) => admin,
        Err(redirect) => return Ok(redirect),
    };
    // A new directory token is shown on this response only: it must not travel in a redirect URL.
    if field(&params, "op") == "scim-token" {
        return match org_admin::scim_token(&ctx, &admin).await {
            Ok(secret) => render(&ctx, &req, &admin, None, None, StatusCode::OK, Some(secret.expose().to_owned())).await,
            Err(AdminError::StepUpRequired) => Ok(respond::see_other(&ctx.endpoint("passkey?step_up=1"), vec![])),
            Err(AdminError::Store(e)) => Err(e.into()),
            Err(error) => render(&ctx, &req, &admin, None, Some(error.to_string()), StatusCode::BAD_REQUEST, None).await,
        };
    }
    let result = apply(&ctx, &admin, &params).await;
    match result {
        Ok(done) => Ok(respond::see_other(&ctx.endpoint(&format!("{}?done={done}", admin_path(&slug))), vec![])),
        Err(AdminError::StepUpRequired) => Ok(respond::see_other(&ctx.endpoint("passkey?step_up=1"), vec![])),
        Err(AdminError::Store(e)) => Err(e.into()),
        Err(error) => {
            let status = match error {
                AdminError::NotAdmin | AdminError::OwnersOnly => StatusCode::FORBIDDEN,
                AdminError::LastOwner => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            };
            render(&ctx, &req, &admin, None, Some(error.to_string()), status, None).await
        }
    }
}

fn field<'a>(params: &'a Params, name: &str) -> &'a str {
    params.get(name).map(str::trim).unwrap_or("")
}

async fn apply(ctx: &HttpCtx<'_>, admin: &Administrator, params: &Params) -> Result<&'static str, AdminError> {
    match field(params, "op") {
        "set-member" => org_admin::set_member(ctx, admin, field(params, "email"), field(params, "roles")).await.map(|()| "member"),
        "remove-member" => org_admin::remove_member(ctx, admin, field(params, "user")).await.map(|()| "member-removed"),
        "add-domain" => org_admin::add_domain(ctx, admin, field(params, "domain")).await.map(|()| "domain"),
        "verify-domain" => org_admin::verify_domain(ctx, admin, field(params, "domain")).await.map(|()| "verified"),
        "remove-domain" => org_admin::remove_domain(ctx, admin, field(params, "domain")).await.map(|()| "domain-removed"),
        "enforce" => org_admin::set_enforced(ctx, admin, field(params, "domain"), true).await.map(|()| "enforced"),
        "relax" => org_admin::set_enforced(ctx, admin, field(params, "domain"), false).await.map(|()| "relaxed"),
        "add-saml" => {
            let metadata = match (field(params, "metadata_url"), params.get("metadata_xml").unwrap_or("")) {
                (url, _) if !url.is_empty() => Metadata::Url(url),
                (_, xml) if !xml.trim().is_empty() => Metadata::Pasted(xml),
                _ => return Err(AdminError::Invalid("Give the IdP's metadata URL, or paste its metadata XML.".into())),
            };
            let role_map = org_admin::parse_role_map(field(params, "role_map"))?;
            let require_passkey = params.get("skip_passkey").is_none();
            org_admin::add_saml(ctx, admin, field(params, "name"), metadata, params.get("allow_idp_initiated").is_some(), role_map, require_passkey)
                .await
                .map(|_| "connection")
        }
        "add-oidc" => {
            let flavor: Flavor = field(params, "flavor").parse().map_err(AdminError::Invalid)?;
            let settings = OidcSettings {
                issuer: field(params, "issuer").to_owned(),
                client_id: field(params, "client_id").to_owned(),
                flavor,
                allowed_tenants: vec![],
                any_tenant: false,
                hosted_domain: Some(field(params, "hosted_domain").to_owned()).filter(|d| !d.is_empty()),
                scopes: vec![],
                client_auth: match field(params, "client_auth") {
                    "" => Default::default(),
                    other => other.parse().map_err(AdminError::Invalid)?,
                },
                client_certificate: None,
                role_map: org_admin::parse_role_map(field(params, "role_map"))?,
            };
            let secret = Some(field(params, "client_secret")).filter(|s| !s.is_empty()).map(|s| latchkey_proto::Secret::new(s.to_owned()));
            let require_passkey = params.get("skip_passkey").is_none();
            org_admin::add_oidc(ctx, admin, field(params, "name"), settings, secret, require_passkey).await.map(|_| "connection")
        }
        "scim-revoke" => org_admin::scim_revoke(ctx, admin, field(params, "token")).await.map(|()| "scim-revoked"),
        "scim-roles" => org_admin::scim_role_map(ctx, admin, field(params, "role_map")).await.map(|()| "scim-roles"),
        "remove-connection" => org_admin::remove_connection(ctx, admin, field(params, "connection")).await.map(|()| "connection-removed"),
        _ => Err(AdminError::Invalid("Unknown action.".into())),
    }
}

/// `GET /t/{tenant}/org/{slug}/admin/test/{connection}`: a sign-in at the connection's IdP that
/// signs nobody in; the IdP's answer comes back to its usual endpoint and shows this administrator
/// what it said (`test_report_page`).
pub async fn test(app: web::Data<App>, req: HttpRequest, path: web::Path<(String, String, String)>) -> Result<HttpResponse, PageError> {
    let (tenant, slug, connection_id) = path.into_inner();
    let ctx = page_context(&app, &req, &tenant).await?;
    let admin = match administrator(&ctx, &req, &slug).await? {
        Ok(admin) => admin,
        Err(redirect) => return Ok(redirect),
    };
    let name = ctx.tenant.display_name.clone();
    let connection = org_admin::connection_to_test(&ctx, &admin, &connection_id).await.map_err(|e| match e {
        AdminError::Store(e) => e.into(),
        other => PageError::new(StatusCode::NOT_FOUND, &name, "Not found", other.to_string()),
    })?;
    let started = signin::start(&ctx, &connection, None, None, Some(&admin.user_id))
        .await
        .map_err(|error| super::sso::refused_page(&name, &error))?;
    let cookie = started_cookie(&ctx, &started);
    Ok(respond::see_other(started.location.as_str(), vec![cookie]))
}

/// The report of a connection test, for the administrator who started it.
pub fn test_report_page(ctx: &HttpCtx<'_>, report: &TestReport, clear: Cookie<'static>) -> Result<HttpResponse, PageError> {
    let identity = &report.identity;
    let or_none = |value: &Option<String>| value.clone().unwrap_or_else(|| "—".to_owned());
    let claims = vec![
        ("Identity (immutable)", identity.subject.clone()),
        ("Email", or_none(&identity.email)),
        ("Email proven", if identity.email_proven { "yes" } else { "no" }.to_owned()),
        ("Name", or_none(&identity.name)),
        ("Given name", or_none(&identity.given_name)),
        ("Family name", or_none(&identity.family_name)),
        ("Groups and roles", if identity.groups.is_empty() { "—".to_owned() } else { identity.groups.join(", ") }),
        (
            "Authentication (amr)",
            if identity.amr.is_empty() { "—".to_owned() } else { identity.amr.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ") },
        ),
    ];
    let chrome = Chrome::new(&ctx.tenant.display_name);
    let back = ctx.endpoint(&admin_path(&report.organization_slug));
    let page = SsoTest {
        tenant_name: chrome.tenant_name,
        tenant_initial: chrome.tenant_initial,
        connection_name: &report.connection_name,
        claims,
        would: &report.would,
        roles: if report.roles.is_empty() { "none mapped".to_owned() } else { report.roles.join(", ") },
        back_url: back,
    };
    respond::html(StatusCode::OK, page.render(), vec![clear])
}
