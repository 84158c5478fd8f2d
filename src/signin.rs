//! What each sign-in step establishes (docs/acr.md). The email code, the first step of every sign-in:
//! send a code, check it, apply the tenant's self-sign-up policy and begin a session at the
//! `email-code` level. A recovery code begins a session that can only enroll a passkey; an
//! authenticator-app code raises an email-code session to the same. A passkey: enrolling one completes
//! a session begun with a code (and hands out recovery codes), asserting one confirms or begins a
//! phishing-resistant session. The handlers in `http::pages` and `http::passkeys` only parse the
//! request and render what these functions decide.

use latchkey_proto::{Acr, Amr, Secret};
use webauthn_rs::prelude::PublicKeyCredential;

use crate::{
    context::Ctx,
    audit::Event,
    email_code::{self, Verification},
    lockout::{self, Factor, Outcome},
    mail_queue::{Message, SendIf},
    notices::{self, Notice},
    passkey::{self, PasskeyError, StoredPasskey},
    recovery,
    session::{self, Authentication, Session},
    sso::enforcement::{self, Decision},
    store::{StoreResult, now},
    totp::{self, TotpError},
    user::{self, Email},
};

/// `amr` and `acr` of a sign-in by email code. A code proves control of a mailbox only: the passkey
/// builds the stronger levels on top (docs/acr.md).
pub const EMAIL_CODE_AMR: Amr = Amr::Otp;
pub const EMAIL_CODE_ACR: Acr = Acr::EmailCode;

/// The mail that carries a code: the code leads the subject, so it shows in a notification.
fn code_message(tenant_name: &str, to: &Email, code: &Secret, minutes: i64, self_signup: bool) -> Message {
    Message {
        to: to.to_string(),
        subject: format!("{} is your {tenant_name} sign-in code", code.expose()),
        body: format!(
            "Your {tenant_name} sign-in code is {}\n\nIt expires in {minutes} minutes. If you did not try to sign in, you can ignore this email.\n",
            code.expose(),
        ),
        send_if: if self_signup { SendIf::Always } else { SendIf::AccountExists },
    }
}

/// Issues a code for `email` and queues its mail; returns the flow id the browser keeps.
///
/// The same work for every address: the code is queued, and the mail worker (not this request) drops it
/// when self sign-up is off and the address has no account. So neither the time this takes nor an SMTP
/// outage tells who has an account here.
pub async fn send_code(ctx: &Ctx<'_>, email: &Email) -> StoreResult<String> {
    let lifetime = ctx.lifetimes().email_code;
    let issued = email_code::issue(ctx.scope(), &ctx.services.hasher, email, lifetime).await?;
    let message = code_message(&ctx.tenant.display_name, email, &issued.code, lifetime / 60, ctx.tenant.self_signup);
    ctx.send_mail(message, now() + lifetime).await?;
    ctx.audit(Event::new(&ctx.tenant.id, "anonymous", "signin.code_sent").target(format!("flow:{}", issued.flow_id)))
        .await;
    Ok(issued.flow_id)
}

/// What checking a code came to.
#[derive(Debug)]
pub enum CodeOutcome {
    /// A new session at the `email-code` level; `cookie` is its value for the browser.
    SignedIn { cookie: Secret },
    /// Wrong code; this many tries left on it.
    Rejected { remaining: i32 },
    /// The code expired, was replaced or was tried too often.
    NeedNewCode,
    /// Right code, but the address has no account and the tenant does not let people sign up.
    NoAccount,
    Disabled,
    /// The address's organization enforces SSO, and this person is not one of its owners.
    SsoRequired,
}

/// Whether a sign-in of `email` (the account `user_id`) may go on without the organization's IdP
/// (`sso::enforcement`): refused ones are audited under `action` as failures, break-glass ones as
/// `signin.break_glass`.
async fn enforced(ctx: &Ctx<'_>, email: &Email, user_id: Option<&str>, action: &'static str) -> StoreResult<bool> {
    let decision = enforcement::decide(enforcement::facts(ctx.scope(), email, user_id).await?);
    let actor = user_id.map_or_else(|| "anonymous".to_owned(), |id| format!("user:{id}"));
    match decision {
        Decision::Allow => return Ok(true),
        Decision::BreakGlass => {
            ctx.audit(Event::new(&ctx.tenant.id, actor, "signin.break_glass").details(serde_json::json!({ "method": action }))).await;
            return Ok(true);
        }
        Decision::SsoRequired => {
            ctx.audit(Event::new(&ctx.tenant.id, actor, action).failed().details(serde_json::json!({ "reason": "sso_required" }))).await;
        }
    }
    Ok(false)
}

/// Checks `code` for the pending sign-in `flow_id` (consumed once, attempts counted in the database by
/// `email_code::verify`) and, if it is right, begins a session for the address's account — created
/// first when the tenant allows self sign-up.
pub async fn check_code(ctx: &Ctx<'_>, flow_id: &str, code: &str) -> StoreResult<CodeOutcome> {
    let email = match email_code::verify(ctx.scope(), &ctx.services.hasher, flow_id, code).await? {
        Verification::Accepted { email } => email,
        failed => {
            ctx.audit(Event::new(&ctx.tenant.id, "anonymous", "signin.code_failed").target(format!("flow:{flow_id}")).failed())
                .await;
            return Ok(match failed {
                Verification::Rejected { remaining } => CodeOutcome::Rejected { remaining },
                _ => CodeOutcome::NeedNewCode,
            });
        }
    };
    let existing = user::find_by_email(ctx.scope(), &email).await?;
    // Before an account is made for the address: an enforced domain's people sign up through SSO too.
    if !enforced(ctx, &email, existing.as_ref().map(|u| u.id.as_str()), "signin.email_code").await? {
        return Ok(CodeOutcome::SsoRequired);
    }
    let user = match existing {
        Some(user) => user,
        None if ctx.tenant.self_signup => user::find_or_create(ctx.scope(), &email).await?,
        None => return Ok(CodeOutcome::NoAccount),
    };
    if user.disabled_at.is_some() {
        return Ok(CodeOutcome::Disabled);
    }
    let authn = Authentication { amr: vec![EMAIL_CODE_AMR], acr: EMAIL_CODE_ACR };
    let (cookie, session) = session::create(ctx.scope(), &user.id, authn, &ctx.origin, ctx.lifetimes()).await?;
    user::mark_signed_in(ctx.scope(), &user.id).await?;
    ctx.audit(
        Event::new(&ctx.tenant.id, format!("user:{}", user.id), "signin.email_code")
            .target(format!("session:{}", &session.id[..16])),
    )
    .await;
    Ok(CodeOutcome::SignedIn { cookie })
}

/// What enrolling a passkey gave the person.
#[derive(Debug)]
pub struct Enrolled {
    /// Ten new recovery codes, to show once: with the first passkey, and after a recovery (they
    /// replace any left from before).
    pub recovery_codes: Option<Vec<Secret>>,
}

/// A passkey was just enrolled for `user_id` in `session` (the ceremony is bound to that session). A session begun with a code becomes multi-factor (`mfa`:
/// the person now holds a freshly verified passkey); an enrollment on the strength of a recovery or app
/// code tells the owner, in case that was someone with the mailbox and a stolen second factor.
pub async fn passkey_enrolled(ctx: &Ctx<'_>, session: &Session, user_id: &str, stored: &StoredPasskey) -> StoreResult<Enrolled> {
    let first = passkey::list(ctx.scope(), user_id).await?.len() == 1;
    let actor = format!("user:{user_id}");
    ctx.audit(Event::new(&ctx.tenant.id, actor.clone(), "passkey.register").target(format!("passkey:{}", stored.id)))
        .await;
    let through = match session.acr {
        recovery::RECOVERY_ACR => Some("a recovery code"),
        totp::TOTP_ACR => Some("an authenticator-app code"),
        _ => None,
    };
    if let Some(through) = through
        && let Some(user) = user::find(ctx.scope(), user_id).await?
    {
        notices::send(ctx, &user.email, Notice::PasskeyAdded { through }).await;
    }
    if !session.is_multi_factor() {
        let mut amr = session.amr.clone();
        session::add_methods(&mut amr, passkey::assertion_amr(stored.backup_eligible));
        session::elevate(ctx.scope(), &session.id, Authentication { amr, acr: passkey::ENROLLED_ACR }).await?;
    }
    let recovery_codes = if first || session.acr == recovery::RECOVERY_ACR {
        let codes = recovery::regenerate(ctx.scope(), &ctx.services.hasher, user_id).await?;
        ctx.audit(Event::new(&ctx.tenant.id, actor, "recovery_codes.generate")).await;
        Some(codes)
    } else {
        None
    };
    Ok(Enrolled { recovery_codes })
}

/// Whose passkey may answer an assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionMode {
    /// The signed-in person confirms it is them (step-up, or the second factor).
    Session,
    /// Whoever the passkey belongs to signs in (the sign-in page's "Sign in with a passkey").
    Discoverable,
}

/// What a passkey assertion came to.
#[derive(Debug)]
pub enum PasskeySignIn {
    /// The browser's session is now `phr` and fresh; `new_cookie` when it is a new session.
    SignedIn { new_cookie: Option<Secret> },
    Disabled,
    /// A session assertion answered by another account's passkey: nothing changes.
    OtherAccount,
    /// A passkey alone, for a person whose organization enforces SSO (and who does not own it).
    SsoRequired,
}

/// Verifies a passkey assertion (webauthn-rs, then the signature counter in `passkey`) and raises the
/// browser's session to `phr`, or begins one for a discoverable sign-in. A refused assertion is audited
/// (a counter regression as a possible clone) and returned as the error.
pub async fn passkey_asserted(
    ctx: &Ctx<'_>,
    session: Option<Session>,
    ceremony: &str,
    mode: AssertionMode,
    credential: &PublicKeyCredential,
) -> Result<PasskeySignIn, PasskeyError> {
    let discoverable = mode == AssertionMode::Discoverable;
    let verified = match passkey::finish_authentication(ctx.scope(), &ctx.services.webauthn, ceremony, discoverable, credential).await {
        Ok(verified) => verified,
        Err(error) => {
            let action = if matches!(error, PasskeyError::CounterRegression) { "passkey.cloned" } else { "passkey.rejected" };
            ctx.audit(
                Event::new(&ctx.tenant.id, "anonymous", action).failed().details(serde_json::json!({ "reason": error.to_string() })),
            )
            .await;
            return Err(error);
        }
    };
    if verified.user.disabled_at.is_some() {
        return Ok(PasskeySignIn::Disabled);
    }
    let session = session.filter(|s| s.user_id == verified.user.id);
    // After an SSO sign-in the identity provider's methods stay in `amr` beside the passkey's: the
    // token then says both how the organization authenticated the person and that a passkey followed.
    let mut amr = match &session {
        Some(s) if s.acr == Acr::Sso => s.amr.clone(),
        _ => Vec::new(),
    };
    session::add_methods(&mut amr, verified.amr.iter().copied());
    let authn = Authentication { amr, acr: passkey::PASSKEY_ACR };
    let new_cookie = match session {
        // The signed-in user confirmed with their passkey: the same session, now multi-factor and fresh.
        Some(session) => {
            session::elevate(ctx.scope(), &session.id, authn).await?;
            None
        }
        None if discoverable => {
            let email = Email::parse(&verified.user.email);
            if let Some(email) = &email
                && !enforced(ctx, email, Some(&verified.user.id), "signin.passkey").await?
            {
                return Ok(PasskeySignIn::SsoRequired);
            }
            let (cookie, _) = session::create(ctx.scope(), &verified.user.id, authn, &ctx.origin, ctx.lifetimes()).await?;
            Some(cookie)
        }
        None => return Ok(PasskeySignIn::OtherAccount),
    };
    user::mark_signed_in(ctx.scope(), &verified.user.id).await?;
    ctx.audit(
        Event::new(&ctx.tenant.id, format!("user:{}", verified.user.id), "signin.passkey")
            .target(format!("passkey:{}", verified.passkey_id)),
    )
    .await;
    Ok(PasskeySignIn::SignedIn { new_cookie })
}

/// The attempt that locked a factor: the owner is told by mail, and it is audited (`actor`: the
/// session that tried, or `anonymous` on the recovery page).
async fn locked_out(ctx: &Ctx<'_>, actor: String, user: &user::User, factor: Factor, until: i64) {
    let minutes = (until - now() + 59) / 60;
    ctx.audit(
        Event::new(&ctx.tenant.id, actor, "factor.locked")
            .target(format!("user:{}", user.id))
            .failed()
            .details(serde_json::json!({ "factor": factor.label(), "until": until })),
    )
    .await;
    notices::send(ctx, &user.email, Notice::Locked { factor, minutes }).await;
}

/// Signs in with an email address and one recovery code: a session at the `recovery-code` level,
/// which can only enroll a new passkey. Guesses are counted per account in the database (any node,
/// any address), and a locked account's codes are not even checked; `None` says the same whatever
/// went wrong (no account, disabled, wrong or used code, locked), so the page does not tell whether
/// the address has an account. The owner is told by mail of a use and of a lock. An address whose
/// organization enforces SSO is told so before any code is checked (enforcement is per domain, so
/// this says nothing about the account; only the organization's owners go on).
pub async fn recovery_code(ctx: &Ctx<'_>, typed_email: &str, code: &str) -> StoreResult<Recovery> {
    let email = Email::parse(typed_email);
    let user = match &email {
        Some(email) => user::find_by_email(ctx.scope(), email).await?,
        None => None,
    };
    if let Some(email) = &email
        && !enforced(ctx, email, user.as_ref().map(|u| u.id.as_str()), "signin.recovery_code").await?
    {
        return Ok(Recovery::SsoRequired);
    }
    let outcome = match &user {
        Some(user) if user.disabled_at.is_none() => {
            let check = recovery::consume(ctx.scope(), &ctx.services.hasher, &user.id, code);
            Some(lockout::guarded(ctx.scope(), &user.id, Factor::RecoveryCode, ctx.lifetimes().factor_lockout, now(), check).await?)
        }
        _ => None,
    };
    if let (Some(Outcome::JustLocked { until }), Some(user)) = (outcome, &user) {
        locked_out(ctx, "anonymous".to_owned(), user, Factor::RecoveryCode, until).await;
    }
    let (Some(Outcome::Accepted), Some(user)) = (outcome, user) else {
        ctx.audit(Event::new(&ctx.tenant.id, "anonymous", "signin.recovery_code").failed()).await;
        return Ok(Recovery::Refused);
    };
    let authn = Authentication { amr: vec![Amr::Otp], acr: recovery::RECOVERY_ACR };
    let (cookie, session) = session::create(ctx.scope(), &user.id, authn, &ctx.origin, ctx.lifetimes()).await?;
    let left = recovery::remaining(ctx.scope(), &user.id).await?;
    ctx.audit(
        Event::new(&ctx.tenant.id, format!("user:{}", user.id), "signin.recovery_code")
            .target(format!("session:{}", &session.id[..16]))
            .details(serde_json::json!({ "codes_left": left })),
    )
    .await;
    notices::send(ctx, &user.email, Notice::RecoveryCodeUsed { codes_left: left }).await;
    Ok(Recovery::SignedIn(cookie))
}

/// What a recovery code came to.
#[derive(Debug)]
pub enum Recovery {
    /// A session that can only enroll a passkey; the cookie's value.
    SignedIn(Secret),
    /// No account, disabled, wrong or used code, or locked: the same answer for all.
    Refused,
    /// The address's organization enforces SSO.
    SsoRequired,
}

/// What an authenticator-app code in an email-code session came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppCode {
    /// The session is now at the `totp` level: it may enroll a passkey on this device, nothing else.
    Accepted,
    Rejected { remaining: i32 },
    /// The app is locked until then (this attempt may have locked it).
    Locked { until: i64 },
}

/// Checks a code from the user's authenticator app under the guess limit and, if right, raises the
/// session to `totp` (it keeps its email-code method and is still not multi-factor).
pub async fn app_code(ctx: &Ctx<'_>, session: &Session, code: &str) -> StoreResult<AppCode> {
    let actor = format!("user:{}", session.user_id);
    let check = async {
        match totp::verify(ctx.scope(), &ctx.tenant.data_key, &session.user_id, code).await {
            Ok(()) => Ok(true),
            Err(TotpError::Store(e)) => Err(e),
            Err(_) => Ok(false),
        }
    };
    let outcome = lockout::guarded(ctx.scope(), &session.user_id, Factor::Totp, ctx.lifetimes().factor_lockout, now(), check).await?;
    let result = match outcome {
        Outcome::Accepted => AppCode::Accepted,
        Outcome::Rejected { remaining } => AppCode::Rejected { remaining },
        Outcome::JustLocked { until } => {
            if let Some(user) = user::find(ctx.scope(), &session.user_id).await? {
                locked_out(ctx, actor.clone(), &user, Factor::Totp, until).await;
            }
            AppCode::Locked { until }
        }
        Outcome::Locked { until } => AppCode::Locked { until },
    };
    if result != AppCode::Accepted {
        ctx.audit(Event::new(&ctx.tenant.id, actor, "signin.totp").failed()).await;
        return Ok(result);
    }
    let authn = Authentication { amr: vec![Amr::Otp], acr: totp::TOTP_ACR };
    session::elevate(ctx.scope(), &session.id, authn).await?;
    ctx.audit(Event::new(&ctx.tenant.id, actor, "signin.totp")).await;
    Ok(AppCode::Accepted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_leads_the_subject_and_the_policy_decides_delivery() {
        let to = Email::parse("ada@example.com").expect("an address");
        let code = Secret::new("123456".to_owned());
        let open = code_message("Acme", &to, &code, 10, true);
        assert_eq!(open.subject, "123456 is your Acme sign-in code");
        assert!(open.body.contains("Your Acme sign-in code is 123456"));
        assert!(open.body.contains("expires in 10 minutes"));
        assert_eq!(open.send_if, SendIf::Always);
        let closed = code_message("Acme", &to, &code, 10, false);
        assert_eq!(closed.send_if, SendIf::AccountExists);
    }
}
