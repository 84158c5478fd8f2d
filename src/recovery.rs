//! Recovery codes: ten single-use codes generated at the first passkey enrollment, shown exactly once,
//! stored only as keyed hashes. Using one gives a session that can do nothing but enroll a new passkey.

use entity::recovery_code;
use sea_orm::{ActiveValue::Set, ColumnTrait, PaginatorTrait, QueryFilter};

use crate::{
    crypto::{self, CodeHasher},
    store::{Scoped, StoreResult, now},
};

pub const CODES_PER_SET: usize = 10;
/// `acr` of a session begun with a recovery code: it can only enroll a new passkey.
pub const RECOVERY_ACR: latchkey_proto::Acr = latchkey_proto::Acr::RecoveryCode;
/// Lower-case letters and digits without look-alikes (0/o, 1/l/i).
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// `xxxxx-xxxxx`: 10 symbols from a 31-letter alphabet, about 49 bits, rejection-sampled.
fn generate_code() -> String {
    let mut code = String::with_capacity(11);
    let mut produced = 0;
    while produced < 10 {
        for byte in crypto::random_bytes::<16>() {
            // 248 is the largest multiple of 31 below 256: no modulo bias.
            if byte < 248 && produced < 10 {
                if produced == 5 {
                    code.push('-');
                }
                code.push(ALPHABET[usize::from(byte) % ALPHABET.len()] as char);
                produced += 1;
            }
        }
    }
    code
}

/// What people type: case, spaces and the dash do not matter.
fn normalize(input: &str) -> String {
    input
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn hash(hasher: &CodeHasher, tenant_id: &str, user_id: &str, code: &str) -> String {
    let digest = hasher.hash(&format!("recovery-code/{tenant_id}/{user_id}"), &normalize(code));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Replaces the user's codes with a fresh set and returns them (the only time they exist in clear).
pub async fn regenerate(
    scope: Scoped<'_>,
    hasher: &CodeHasher,
    user_id: &str,
) -> StoreResult<Vec<String>> {
    scope
        .delete::<recovery_code::Entity>()
        .filter(recovery_code::Column::UserId.eq(user_id))
        .exec(scope.db)
        .await?;
    let now = now();
    let codes: Vec<String> = (0..CODES_PER_SET).map(|_| generate_code()).collect();
    let rows = codes.iter().map(|code| recovery_code::ActiveModel {
        code_hash: Set(hash(hasher, scope.tenant_id(), user_id, code)),
        tenant_id: Set(String::new()),
        user_id: Set(user_id.to_owned()),
        created_at: Set(now),
        used_at: Set(None),
    });
    scope.insert_many::<recovery_code::Entity, _>(rows).await?;
    Ok(codes)
}

/// Consumes one code atomically: of two requests racing with the same code, one wins.
pub async fn consume(
    scope: Scoped<'_>,
    hasher: &CodeHasher,
    user_id: &str,
    code: &str,
) -> StoreResult<bool> {
    let result = scope
        .update::<recovery_code::Entity>()
        .col_expr(recovery_code::Column::UsedAt, now().into())
        .filter(recovery_code::Column::UserId.eq(user_id))
        .filter(recovery_code::Column::CodeHash.eq(hash(hasher, scope.tenant_id(), user_id, code)))
        .filter(recovery_code::Column::UsedAt.is_null())
        .exec(scope.db)
        .await?;
    Ok(result.rows_affected == 1)
}

pub async fn remaining(scope: Scoped<'_>, user_id: &str) -> StoreResult<u64> {
    Ok(scope
        .select::<recovery_code::Entity>()
        .filter(recovery_code::Column::UserId.eq(user_id))
        .filter(recovery_code::Column::UsedAt.is_null())
        .count(scope.db)
        .await?)
}

/// The user was given recovery codes at some point (used or not): the account has had a passkey, so
/// an email code alone no longer suffices to enroll one.
pub async fn ever_issued(scope: Scoped<'_>, user_id: &str) -> StoreResult<bool> {
    Ok(scope
        .select::<recovery_code::Entity>()
        .filter(recovery_code::Column::UserId.eq(user_id))
        .count(scope.db)
        .await?
        > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_documented_shape_and_normalize() {
        for _ in 0..200 {
            let code = generate_code();
            assert_eq!(code.len(), 11);
            assert_eq!(&code[5..6], "-");
            assert!(code.replace('-', "").bytes().all(|b| ALPHABET.contains(&b)));
            assert_eq!(normalize(&code.to_uppercase().replace('-', " ")), code.replace('-', ""));
        }
    }
}

