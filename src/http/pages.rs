//! Hosted pages: email-code sign-in, consent, account, sign-out.

use actix_web::{
    HttpRequest, HttpResponse,
    http::StatusCode,
    web,
};
use askama::Template;

use super::{
    HttpCtx, PageError, current_session,
    oauth::expired_request_page,
    page_context, request,
    respond::{self, after_sign_in, form, html, opaque_id, query, request_id, see_other, with_req},
};
use crate::{
    app::App,
    email_code,
    client::document,
    oauth::{authorize, params::Params},
    oidc::logout,
    pages::{self, Chrome},
    ratelimit,
    session,
    signin::{self, CodeOutcome},
    user,
};

fn login_flow(ctx: &HttpCtx<'_>, req: &HttpRequest) -> Option<String> {
    req.cookie(&request::login_flow_cookie_name(ctx.app, &ctx.tenant.slug))
        .map(|c| c.value().to_owned())
        .filter(|v| opaque_id(v))
}


/// Which way the sign-in form sends an address: home-realm discovery first (an SSO domain goes to its
/// IdP), or straight to an email code (chosen on the "Continue to your organization" page).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    Discover,
    Code,
}

impl Way {
    fn of(params: &crate::oauth::params::Params) -> Self {
        if params.get("way") == Some("code") { Way::Code } else { Way::Discover }
    }
}

async fn render_login_form(
    ctx: &HttpCtx<'_>,
    req: &HttpRequest,
    pending_id: Option<&str>,
    email: &str,
    error: Option<String>,
    status: StatusCode,
    way: Way,
) -> Result<HttpResponse, PageError> {
    let csrf = request::csrf(ctx.app, req);
    let pending = match pending_id {
        Some(id) => authorize::load_pending(ctx, id).await?,
        None => None,
    };
    let client = match &pending {
        Some(p) => ctx.client(&p.request.client_id).await?,
        None => None,
    };
    let hinted = pending
        .as_ref()
        .and_then(|p| p.request.login_hint.clone())
        .unwrap_or_default();
    let email = if email.is_empty() {
        hinted.as_str()
    } else {
        email
    };
    // The request the person is in the middle of: a pending authorization, or an approval or a
    // device's request they came to answer (carried as it is, so sign-in returns to its page).
    let pending_req = pending
        .as_ref()
        .map(|p| p.id.clone())
        .or_else(|| pending_id.filter(|id| respond::own_page(id).is_some()).map(str::to_owned));
    let social = crate::sso::connection::social(ctx.scope())
        .await
        .map_err(|e| PageError::internal(&e))?
        .into_iter()
        .filter(|c| c.enabled)
        .map(|c| (with_req(&ctx.endpoint(&format!("sso/{}/start", c.id)), pending_req.as_deref()), format!("Continue with {}", c.name)))
        .collect();
    let chrome = Chrome::new(&ctx.tenant.display_name);
    let page = pages::LoginEmail {
        tenant_name: chrome.tenant_name,
        tenant_initial: chrome.tenant_initial,
        action: ctx.endpoint("login"),
        base: ctx.endpoint(""),
        recovery_url: with_req(&ctx.endpoint("login/recovery"), pending_req.as_deref()),
        csrf: &csrf.token,
        req: pending_req.as_deref(),
        email,
        client_name: client.as_ref().map(|c| c.name.as_str()),
        error,
        way_code: way == Way::Code,
        social,
    };
    let mut response = html(status, page.render(), csrf.new_cookie.into_iter().collect())?;
    respond::allow_passkey_script(&mut response);
    Ok(response)
}

pub async fn login_form(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let params = query(&ctx, &req)?;
    render_login_form(&ctx, &req, request_id(&params), params.get("login_hint").unwrap_or(""), None, StatusCode::OK, Way::of(&params)).await
}

pub async fn login_submit(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let params = form(&ctx, &req, &body)?;
    let pending_id = request_id(&params);
    let typed = params.get("email").unwrap_or("");
    let Some(email) = user::Email::parse(typed) else {
        let message = "Enter an email address like name@example.com.".to_owned();
        return render_login_form(&ctx, &req, pending_id, typed, Some(message), StatusCode::BAD_REQUEST, Way::of(&params)).await;
    };
    // Home-realm discovery: a verified domain of an organization with SSO signs in there, by way of a
    // page of ours (`sso_continue`): this page's CSP (`form-action 'self'`) stops a form's redirect
    // chain from reaching the IdP. Unless the person chose the email code there (where the domain
    // enforces SSO, only its owners get past the code: `signin::check_code`).
    let discovered = match Way::of(&params) {
        Way::Discover => crate::sso::signin::connection_for_email(&ctx, &email).await.map_err(|e| PageError::internal(&e))?,
        Way::Code => None,
    };
    if let Some(connection) = discovered {
        let mut next = url::Url::parse(&ctx.endpoint("login/sso")).map_err(|e| PageError::internal(&e))?;
        next.query_pairs_mut().append_pair("connection", &connection.id).append_pair("login_hint", email.as_str());
        if let Some(id) = pending_id {
            next.query_pairs_mut().append_pair("req", id);
        }
        return Ok(see_other(next.as_str(), vec![]));
    }
    let limiters = &app.services.limiters;
    ratelimit::check(&limiters.code_send_per_ip, &request::client_ip(&app, &req))
        .and_then(|()| {
            ratelimit::check(
                &limiters.code_send_per_email,
                &format!("{}/{email}", ctx.tenant.id),
            )
        })
        .map_err(|retry| PageError::too_many(&ctx.tenant.display_name, retry))?;

    let flow_id = signin::send_code(&ctx, &email).await?;
    let flow_cookie = request::build_cookie(
        &app,
        request::login_flow_cookie_name(&app, &ctx.tenant.slug),
        flow_id,
        Some(ctx.lifetimes().email_code),
    );
    Ok(see_other(
        &with_req(&ctx.endpoint("login/code"), pending_id),
        vec![flow_cookie],
    ))
}

async fn render_code_form(
    ctx: &HttpCtx<'_>,
    req: &HttpRequest,
    pending_id: Option<&str>,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let email = match login_flow(ctx, req) {
        Some(flow) => email_code::pending_email(ctx.scope(), &flow).await?,
        None => None,
    };
    let Some(email) = email else {
        return Ok(see_other(
            &with_req(&ctx.endpoint("login"), pending_id),
            vec![],
        ));
    };
    let csrf = request::csrf(ctx.app, req);
    let chrome = Chrome::new(&ctx.tenant.display_name);
    let page = pages::LoginCode {
        tenant_name: chrome.tenant_name,
        tenant_initial: chrome.tenant_initial,
        action: ctx.endpoint("login/code"),
        restart_url: with_req(&ctx.endpoint("login"), pending_id),
        csrf: &csrf.token,
        req: pending_id,
        email: &email,
        error,
    };
    html(status, page.render(), csrf.new_cookie.into_iter().collect())
}

pub async fn code_form(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let params = query(&ctx, &req)?;
    render_code_form(&ctx, &req, request_id(&params), None, StatusCode::OK).await
}

pub async fn code_submit(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let params = form(&ctx, &req, &body)?;
    let pending_id = request_id(&params);
    ratelimit::check(
        &app.services.limiters.code_check_per_ip,
        &request::client_ip(&app, &req),
    )
    .map_err(|retry| PageError::too_many(&ctx.tenant.display_name, retry))?;
    let flow_cookie_name = request::login_flow_cookie_name(&app, &ctx.tenant.slug);
    let Some(flow_id) = login_flow(&ctx, &req) else {
        return Ok(see_other(
            &with_req(&ctx.endpoint("login"), pending_id),
            vec![],
        ));
    };
    let code = params.get("code").unwrap_or("");
    let cookie_value = match signin::check_code(&ctx, &flow_id, code).await? {
        CodeOutcome::SignedIn { cookie } => cookie,
        CodeOutcome::Rejected { remaining } => {
            let message = match remaining {
                0 => "That code is not right, and there are no tries left. Request a new code.".to_owned(),
                1 => "That code is not right. 1 try left.".to_owned(),
                n => format!("That code is not right. {n} tries left."),
            };
            return render_code_form(&ctx, &req, pending_id, Some(message), StatusCode::BAD_REQUEST).await;
        }
        CodeOutcome::NeedNewCode => {
            return Err(PageError::new(
                StatusCode::BAD_REQUEST,
                &ctx.tenant.display_name,
                "Request a new code",
                "This code has expired, was replaced by a newer one, or was tried too many times. Go back and request a new code.",
            ));
        }
        CodeOutcome::NoAccount => {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                &ctx.tenant.display_name,
                "No account",
                "There is no account for this address.",
            ));
        }
        CodeOutcome::Disabled => {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                &ctx.tenant.display_name,
                "Account disabled",
                "This account has been disabled.",
            ));
        }
        CodeOutcome::SsoRequired => return Err(PageError::sso_required(&ctx.tenant.display_name)),
    };
    let session_cookie = request::session_cookie(&ctx, &cookie_value);
    let clear_flow = request::removal_cookie(&app, flow_cookie_name);
    Ok(see_other(
        &after_sign_in(&ctx, pending_id),
        vec![session_cookie, clear_flow],
    ))
}

/// What both consent handlers need: the pending request, the signed-in session and the client; or, with
/// no session, the redirect to sign in first.
async fn consent_inputs(
    ctx: &HttpCtx<'_>,
    req: &HttpRequest,
    params: &Params,
) -> Result<Result<(authorize::Pending, session::Session, std::sync::Arc<crate::client::Client>), HttpResponse>, PageError> {
    let pending = match request_id(params) {
        Some(id) => authorize::load_pending(ctx, id).await?,
        None => None,
    };
    let Some(pending) = pending else {
        return Err(expired_request_page(ctx));
    };
    let Some(session) = current_session(ctx, req).await? else {
        return Ok(Err(see_other(&with_req(&ctx.endpoint("login"), Some(&pending.id)), vec![])));
    };
    let client = ctx
        .client(&pending.request.client_id)
        .await?
        .ok_or_else(|| expired_request_page(ctx))?;
    // Consent is an authorization step like any other: only a session that passed every step before
    // it (a passkey, not just an email code; fresh and strong enough; the tenant's authenticator app)
    // may see or answer it. Anything else goes back through `resume`, which sends it where it belongs.
    let due = authorize::consent_is_due(ctx, &client, &pending.request, &session, pending.created_at).await?;
    if !due {
        return Ok(Err(see_other(&ctx.endpoint(&format!("authorize/resume?req={}", pending.id)), vec![])));
    }
    Ok(Ok((pending, session, client)))
}

pub async fn consent_form(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let params = query(&ctx, &req)?;
    let (pending, session, client) = match consent_inputs(&ctx, &req, &params).await? {
        Ok(inputs) => inputs,
        Err(sign_in) => return Ok(sign_in),
    };
    let user = user::find(ctx.scope(), &session.user_id)
        .await?
        .ok_or_else(|| expired_request_page(&ctx))?;
    let csrf = request::csrf(&app, &req);
    let redirect_host = url::Url::parse(&pending.request.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| pending.request.redirect_uri.clone());
    let chrome = Chrome::new(&ctx.tenant.display_name);
    let page = pages::Consent {
        tenant_name: chrome.tenant_name,
        tenant_initial: chrome.tenant_initial,
        action: ctx.endpoint("consent"),
        csrf: &csrf.token,
        req: &pending.id,
        client_name: &client.name,
        redirect_host,
        published_by: document::document_host(&client.client_id),
        self_registered: client.registered_dynamically,
        resource: pending.request.resource.as_deref(),
        email: &user.email,
        scopes: pending
            .request
            .scopes
            .iter()
            .map(|s| (s.clone(), pages::describe_scope(s)))
            .collect(),
        policy_uri: client.https_link("policy_uri"),
        tos_uri: client.https_link("tos_uri"),
    };
    html(
        StatusCode::OK,
        page.render(),
        csrf.new_cookie.into_iter().collect(),
    )
}

pub async fn consent_submit(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let params = form(&ctx, &req, &body)?;
    let (pending, session, client) = match consent_inputs(&ctx, &req, &params).await? {
        Ok(inputs) => inputs,
        Err(sign_in) => return Ok(sign_in),
    };
    let allow = params.get("decision") == Some("allow");
    match authorize::answer_consent(&ctx, &client, &pending, &session, allow).await {
        Ok(next) => super::oauth::next_step(&ctx, next, &pending.id),
        Err(error) => super::oauth::authorize_error(&ctx, error),
    }
}

/// RP-initiated logout. A GET asks the user to confirm unless a valid `id_token_hint` names the signed-in
/// user (so a stray link cannot sign anyone out); the POST (CSRF-checked) signs out.
pub async fn logout(
    app: web::Data<App>,
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let is_post = req.method() == actix_web::http::Method::POST;
    let params = if is_post {
        form(&ctx, &req, &body)?
    } else {
        query(&ctx, &req)?
    };
    let validated = logout::validate(
        &ctx,
        params.get("id_token_hint"),
        params.get("client_id"),
        params.get("post_logout_redirect_uri"),
        params.get("state"),
    )
    .await
    .map_err(|e| match e {
        logout::LogoutError::Store(e) => e.into(),
        other => PageError::bad_request(&ctx.tenant.display_name, other.to_string()),
    })?;
    let session = current_session(&ctx, &req).await?;
    let confirmed = is_post
        || matches!((&session, &validated.hinted_subject), (Some(s), Some(sub)) if s.user_id == *sub);

    if session.is_some() && !confirmed {
        let csrf = request::csrf(&app, &req);
        let chrome = Chrome::new(&ctx.tenant.display_name);
        let page = pages::Logout {
            tenant_name: chrome.tenant_name,
            tenant_initial: chrome.tenant_initial,
            action: ctx.endpoint("logout"),
            csrf: &csrf.token,
            id_token_hint: params.get("id_token_hint"),
            client_id: params.get("client_id"),
            post_logout_redirect_uri: params.get("post_logout_redirect_uri"),
            state: params.get("state"),
        };
        return html(
            StatusCode::OK,
            page.render(),
            csrf.new_cookie.into_iter().collect(),
        );
    }
    if let Some(session) = &session {
        logout::end_session(&ctx, session).await?;
    }
    let clear = request::removal_cookie(&app, request::session_cookie_name(&app, &ctx.tenant.slug));
    if let Some(redirect) = validated.redirect {
        return Ok(see_other(&redirect, vec![clear]));
    }
    let chrome = Chrome::new(&ctx.tenant.display_name);
    let page = pages::Message {
        tenant_name: chrome.tenant_name,
        tenant_initial: chrome.tenant_initial,
        heading: "You’re signed out",
        message: "You have been signed out on this browser.",
        kind: "ok",
        link: Some((ctx.endpoint("login"), "Sign in again")),
        other_way: None,
    };
    html(StatusCode::OK, page.render(), vec![clear])
}

/// `GET /login/sso?connection=…&login_hint=…&req=…`: where home-realm discovery sends an address of
/// a domain that signs in with SSO — a page that says so and continues to the organization's IdP.
pub async fn sso_continue(app: web::Data<App>, req: HttpRequest, tenant: web::Path<String>) -> Result<HttpResponse, PageError> {
    let ctx = page_context(&app, &req, &tenant).await?;
    let params = query(&ctx, &req)?;
    let connection = match params.get("connection").filter(|id| opaque_id(id)) {
        Some(id) => crate::sso::connection::find(ctx.scope(), id).await.map_err(|e| PageError::internal(&e))?,
        None => None,
    };
    let Some(connection) = connection.filter(|c| c.enabled) else {
        return Ok(see_other(&with_req(&ctx.endpoint("login"), request_id(&params)), vec![]));
    };
    let email = params.get("login_hint").and_then(user::Email::parse);
    let mut start = url::Url::parse(&ctx.endpoint(&format!("sso/{}/start", connection.id))).map_err(|e| PageError::internal(&e))?;
    if let Some(email) = &email {
        start.query_pairs_mut().append_pair("login_hint", email.as_str());
    }
    if let Some(id) = request_id(&params) {
        start.query_pairs_mut().append_pair("req", id);
    }
    let who = email.as_ref().map_or_else(|| "Your address".to_owned(), ToString::to_string);
    let message = format!("{who} signs in with {}. Continue there to sign in.", connection.name);
    let enforced = match &email {
        Some(email) => crate::sso::enforcement::facts(ctx.scope(), email, None).await?.enforced,
        None => false,
    };
    let mut code_way = url::Url::parse(&ctx.endpoint("login")).map_err(|e| PageError::internal(&e))?;
    code_way.query_pairs_mut().append_pair("way", "code");
    if let Some(email) = &email {
        code_way.query_pairs_mut().append_pair("login_hint", email.as_str());
    }
    if let Some(id) = request_id(&params) {
        code_way.query_pairs_mut().append_pair("req", id);
    }
    let other_way_text = if enforced { "Organization owners: sign in with an email code (break-glass)" } else { "Sign in with an email code instead" };
    let chrome = Chrome::new(&ctx.tenant.display_name);
    let page = pages::Message {
        tenant_name: chrome.tenant_name,
        tenant_initial: chrome.tenant_initial,
        heading: "Continue to your organization",
        message: &message,
        kind: "ok",
        link: Some((start.to_string(), "Continue")),
        other_way: Some((code_way.to_string(), other_way_text)),
    };
    html(StatusCode::OK, page.render(), vec![])
}
