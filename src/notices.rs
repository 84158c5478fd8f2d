//! Security notices to an account's owner: something happened that they should know about if it was
//! not them. Queued like every mail (`mail_queue`); a notice that cannot be queued is logged, never
//! turned into an error for the action it reports (that action already happened).

use crate::{
    context::Ctx,
    lockout::Factor,
    mail_queue::{Message, SendIf},
    store::now,
};

/// Worth delivering for this long (an SMTP outage of a day or two).
const DELIVER_WITHIN: i64 = 2 * 24 * 3600;

pub enum Notice {
    RecoveryCodeUsed { codes_left: u64 },
    /// Too many wrong codes: the factor is locked for `minutes`.
    Locked { factor: Factor, minutes: i64 },
    /// A passkey was enrolled on a session begun with an email code plus a recovery code or an
    /// authenticator-app code (not with an existing passkey).
    PasskeyAdded { through: &'static str },
}

fn text(tenant: &str, notice: &Notice) -> (String, String) {
    let unless = "If this was not you, contact your administrator now.";
    match notice {
        Notice::RecoveryCodeUsed { codes_left } => (
            "A recovery code was used on your account".to_owned(),
            format!("A recovery code was just used to sign in to your {tenant} account. {codes_left} unused codes remain.\n\n{unless}\n"),
        ),
        Notice::Locked { factor, minutes } => {
            let (what, codes) = match factor {
                Factor::Totp => ("Your authenticator app is", "authenticator-app codes"),
                Factor::RecoveryCode => ("Your recovery codes are", "recovery codes"),
                // Never sent: user-code guesses are counted per address and session, not per account.
                Factor::UserCode => ("Device sign-in is", "device codes"),
            };
            (
                format!("{what} locked after wrong codes"),
                format!(
                    "Someone entered several wrong {codes} for your {tenant} account. {what} locked for {minutes} minutes.\n\n\
                     If you were signing in, wait and try again. Otherwise someone may be trying to get into your account: {unless}\n"
                ),
            )
        }
        Notice::PasskeyAdded { through } => (
            "A new passkey was added to your account".to_owned(),
            format!("A new passkey was just added to your {tenant} account, after a sign-in with an email code and {through}.\n\n{unless}\n"),
        ),
    }
}

pub async fn send(ctx: &Ctx<'_>, to: &str, notice: Notice) {
    let (subject, body) = text(&ctx.tenant.display_name, &notice);
    let message = Message { to: to.to_owned(), subject, body, send_if: SendIf::Always };
    if let Err(error) = ctx.send_mail(message, now() + DELIVER_WITHIN).await {
        tracing::error!(%error, "a security notice could not be queued");
    }
}
