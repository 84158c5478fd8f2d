//! Sign-in with a 6-digit code sent by email.
//!
//! A code is valid for `lifetimes.email_code` seconds, stored only as a keyed hash, allows at most
//! [`MAX_ATTEMPTS`] checks, and a new code for the same address invalidates the old one. The attempt
//! counter and the consumption are single atomic UPDATEs, so limits hold across nodes and restarts and
//! two nodes racing on one code cannot both succeed.

use entity::email_code;
use sea_orm::{ActiveValue::Set, ColumnTrait, ExprTrait, QueryFilter, sea_query::Expr};

use crate::{
    crypto::{self, CodeHasher, constant_time_eq},
    store::{Scoped, StoreResult, now},
    user::Email,
};

pub const MAX_ATTEMPTS: i32 = 5;

pub struct IssuedCode {
    /// Identifies the pending sign-in (kept in a cookie); not a secret on its own.
    pub flow_id: String,
    /// Goes only into the email.
    pub code: latchkey_proto::Secret,
}

fn hash_context(tenant_id: &str, flow_id: &str) -> String {
    format!("email-code/{tenant_id}/{flow_id}")
}

pub async fn issue(
    scope: Scoped<'_>,
    hasher: &CodeHasher,
    email: &Email,
    lifetime: i64,
) -> StoreResult<IssuedCode> {
    let now = now();
    // Invalidate earlier codes for this address: only the newest code works.
    scope
        .update::<email_code::Entity>()
        .col_expr(email_code::Column::ConsumedAt, now.into())
        .filter(email_code::Column::Email.eq(email.as_str()))
        .filter(email_code::Column::ConsumedAt.is_null())
        .exec(scope.db)
        .await?;
    let flow_id = crypto::random_id();
    let code = crypto::random_digits6();
    let row = email_code::ActiveModel {
        id: Set(flow_id.clone()),
        tenant_id: Set(String::new()),
        email: Set(email.as_str().to_owned()),
        code_hash: Set(hasher.hash(&hash_context(scope.tenant_id(), &flow_id), &code)),
        attempts: Set(0),
        created_at: Set(now),
        expires_at: Set(now + lifetime),
        consumed_at: Set(None),
    };
    scope.insert::<email_code::Entity, _>(row).await?;
    Ok(IssuedCode { flow_id, code: code.into() })
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    /// The code matched and this caller consumed it.
    Accepted { email: Email },
    /// Wrong code; this many tries remain.
    Rejected { remaining: i32 },
    /// Expired, used up, replaced by a newer code, or unknown: a new code is needed.
    NeedNewCode,
}

/// The email address a pending flow is for (to show "we sent a code to …").
pub async fn pending_email(scope: Scoped<'_>, flow_id: &str) -> StoreResult<Option<String>> {
    Ok(scope
        .select::<email_code::Entity>()
        .filter(email_code::Column::Id.eq(flow_id))
        .filter(email_code::Column::ConsumedAt.is_null())
        .filter(email_code::Column::ExpiresAt.gt(now()))
        .one(scope.db)
        .await?
        .map(|row| row.email))
}

pub async fn verify(
    scope: Scoped<'_>,
    hasher: &CodeHasher,
    flow_id: &str,
    presented: &str,
) -> StoreResult<Verification> {
    let now = now();
    // Count the attempt first, atomically, and only while attempts remain.
    let counted = scope
        .update::<email_code::Entity>()
        .col_expr(
            email_code::Column::Attempts,
            Expr::col(email_code::Column::Attempts).add(1),
        )
        .filter(email_code::Column::Id.eq(flow_id))
        .filter(email_code::Column::ConsumedAt.is_null())
        .filter(email_code::Column::ExpiresAt.gt(now))
        .filter(email_code::Column::Attempts.lt(MAX_ATTEMPTS))
        .exec(scope.db)
        .await?;
    if counted.rows_affected == 0 {
        return Ok(Verification::NeedNewCode);
    }
    let Some(row) = scope
        .select::<email_code::Entity>()
        .filter(email_code::Column::Id.eq(flow_id))
        .one(scope.db)
        .await?
    else {
        return Ok(Verification::NeedNewCode);
    };
    let presented: String = presented.chars().filter(|c| !c.is_whitespace()).collect();
    let expected = hasher.hash(&hash_context(scope.tenant_id(), flow_id), &presented);
    if !constant_time_eq(&expected, &row.code_hash) {
        return Ok(Verification::Rejected {
            remaining: std::cmp::max(MAX_ATTEMPTS - row.attempts, 0),
        });
    }
    let consumed = scope
        .update::<email_code::Entity>()
        .col_expr(email_code::Column::ConsumedAt, now.into())
        .filter(email_code::Column::Id.eq(flow_id))
        .filter(email_code::Column::ConsumedAt.is_null())
        .exec(scope.db)
        .await?;
    match Email::parse(&row.email) {
        Some(email) if consumed.rows_affected == 1 => Ok(Verification::Accepted { email }),
        _ => Ok(Verification::NeedNewCode),
    }
}
