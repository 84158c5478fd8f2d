//! A person answering an approval (docs/approvals.md): what the page shows, and the answer. Only the
//! person the request names may answer; "approve" needs a fresh passkey assertion in a
//! phishing-resistant session (never an email code alone), "deny" only their session. Each answer is
//! recorded once, while pending and unexpired, and audited; so is an attempt on someone else's.

use latchkey_proto::Acr;

use crate::{
    audit::Event,
    context::Ctx,
    oauth::authorization_details::{AuthorizationDetails, Described},
    session::Session,
    store::{
        StoreError, StoreResult,
        approvals::{self, Answer, ApprovalRow},
        now, to_amr_json,
    },
};

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("no such approval")]
    NotFound,
    /// The request is for another person: they, not this session, answer it.
    #[error("this approval is for another account")]
    OtherAccount,
    /// Approving needs a passkey assertion within the step-up window.
    #[error("confirm with a passkey first")]
    StepUpRequired,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Approved,
    Denied,
    Expired,
}

/// An approval as its person sees it.
pub struct Shown {
    pub id: String,
    pub client_name: String,
    pub binding_message: Option<String>,
    pub resource: Option<String>,
    pub details: Vec<Described>,
    pub status: Status,
    pub created_at: i64,
    pub expires_at: i64,
}

async fn shown(ctx: &Ctx<'_>, row: ApprovalRow, now: i64) -> StoreResult<Shown> {
    let client_name = match ctx.client(&row.client_id).await {
        Ok(Some(client)) => client.name.clone(),
        _ => row.client_id.clone(),
    };
    let details = AuthorizationDetails::from_stored(&row.authorization_details)
        .ok_or_else(|| StoreError::Corrupt("stored authorization details".into()))?;
    let status = match row.status.as_str() {
        approvals::APPROVED => Status::Approved,
        approvals::DENIED => Status::Denied,
        _ if row.expires_at <= now => Status::Expired,
        _ => Status::Pending,
    };
    Ok(Shown {
        id: row.id,
        client_name,
        binding_message: row.binding_message,
        resource: row.resource,
        details: details.describe(),
        status,
        created_at: row.created_at,
        expires_at: row.expires_at,
    })
}

/// The approval `id` for the signed-in person; someone else's is refused (and audited: a link sent
/// to the wrong person, or someone trying one).
pub async fn show(ctx: &Ctx<'_>, session: &Session, id: &str) -> Result<Shown, ApprovalError> {
    let row = approvals::find(ctx.scope(), id).await?.ok_or(ApprovalError::NotFound)?;
    if row.user_id != session.user_id {
        ctx.audit(
            Event::new(&ctx.tenant.id, format!("user:{}", session.user_id), "approval.other_account")
                .target(format!("approval:{id}"))
                .failed(),
        )
        .await;
        return Err(ApprovalError::OtherAccount);
    }
    Ok(shown(ctx, row, now()).await?)
}

/// The person's approvals still waiting, newest first (the account page's list).
pub async fn waiting(ctx: &Ctx<'_>, user_id: &str) -> StoreResult<Vec<Shown>> {
    let now = now();
    let mut list = Vec::new();
    for row in approvals::pending_for(ctx.scope(), user_id, now, 20).await? {
        list.push(shown(ctx, row, now).await?);
    }
    Ok(list)
}

/// Whether the session's last passkey assertion can approve `shown`: phishing-resistant, made after
/// the request arrived (so the person confirmed this, not something a while ago), and recent.
pub fn fresh_for(session: &Session, shown: &Shown, lifetimes: &crate::config::Lifetimes, now: i64) -> bool {
    session.acr == Acr::Phr && session.auth_time >= shown.created_at && session.is_fresh(lifetimes, now)
}

/// Records the person's answer. `Ok(false)`: it was no longer pending (answered, expired).
pub async fn answer(ctx: &Ctx<'_>, session: &Session, id: &str, approve: bool) -> Result<bool, ApprovalError> {
    let shown = show(ctx, session, id).await?;
    let now = now();
    if shown.status != Status::Pending {
        return Ok(false);
    }
    let answer = if approve {
        // A passkey assertion made for this: after the request arrived, and recent.
        if !fresh_for(session, &shown, ctx.lifetimes(), now) {
            return Err(ApprovalError::StepUpRequired);
        }
        Answer::Approve { auth_time: session.auth_time, amr: to_amr_json(&session.amr), session_id: &session.id }
    } else {
        Answer::Deny
    };
    let recorded = approvals::answer(ctx.writer_scope(), id, &session.user_id, answer, now).await?;
    if recorded {
        let action = if approve { "approval.approved" } else { "approval.denied" };
        ctx.audit(Event::new(&ctx.tenant.id, format!("user:{}", session.user_id), action).target(format!("approval:{id}"))).await;
    }
    Ok(recorded)
}
