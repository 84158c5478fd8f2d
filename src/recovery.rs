//! Recovery codes: ten single-use codes generated at the first passkey enrollment, shown exactly once,
//! stored only as keyed hashes. Using one gives a session that can do nothing but enroll a new passkey.

use latchkey_proto::Secret;

use crate::{
    crypto::{self, CodeHasher},
    store::{Scoped, StoreResult, now, recovery_codes},
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
) -> StoreResult<Vec<Secret>> {
    let codes: Vec<Secret> = (0..CODES_PER_SET).map(|_| Secret::new(generate_code())).collect();
    let hashes = codes.iter().map(|code| hash(hasher, scope.tenant_id(), user_id, code.expose())).collect();
    recovery_codes::replace_set(scope, user_id, hashes, now()).await?;
    Ok(codes)
}

/// Consumes one code atomically: of two requests racing with the same code, one wins.
pub async fn consume(
    scope: Scoped<'_>,
    hasher: &CodeHasher,
    user_id: &str,
    code: &str,
) -> StoreResult<bool> {
    recovery_codes::use_once(scope, user_id, &hash(hasher, scope.tenant_id(), user_id, code), now()).await
}

pub async fn remaining(scope: Scoped<'_>, user_id: &str) -> StoreResult<u64> {
    recovery_codes::count(scope, user_id, true).await
}

/// The user was given recovery codes at some point (used or not): the account has had a passkey, so
/// an email code alone no longer suffices to enroll one.
pub async fn ever_issued(scope: Scoped<'_>, user_id: &str) -> StoreResult<bool> {
    Ok(recovery_codes::count(scope, user_id, false).await? > 0)
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

