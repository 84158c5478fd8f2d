//! Authenticator apps (TOTP, RFC 6238): SHA-1, 6 digits, 30-second steps — what every app supports.
//!
//! The secret is sealed under the tenant's data key (ChaCha20-Poly1305, bound to the row id) and is
//! shown once, as a QR code and an `otpauth://` URI, until the user confirms the app with a first code.
//! Codes are accepted one step either side of now (RFC 6238 §5.2) and at most once: the accepted
//! step is recorded with a conditional UPDATE, so a replayed code — on this node or another — loses.
//!
//! What a code proves is possession of the app's secret: with an email code it lets a user on a new
//! device enroll a passkey (like a recovery code), and it keeps an account with no passkey left
//! recoverable. It never replaces the passkey for a full sign-in (docs/passkeys.md).

use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

use crate::{
    crypto::{self, DataKey},
    store::{Scoped, StoreError, StoreResult, now, totp_authenticators::{self, StoredAuthenticator}},
};

/// `acr` of a session that added an authenticator-app code to an email code: it may enroll a passkey
/// on this device and do nothing else.
pub const TOTP_ACR: latchkey_proto::Acr = latchkey_proto::Acr::Totp;

const STEP_SECONDS: u64 = 30;
const DIGITS: usize = 6;
/// 160 bits, the RFC 4226 §4 recommendation.
const SECRET_BYTES: usize = 20;
/// Accepted steps either side of the current one.
const SKEW_STEPS: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error("An authenticator app is already set up. Remove it first to set up another.")]
    AlreadyEnabled,
    #[error("No authenticator app is set up.")]
    NotSetUp,
    #[error("Your organization requires an authenticator app: set up another one instead of removing it.")]
    Required,
    #[error("That code is not right, or was already used. Wait for the next one and try again.")]
    WrongCode,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the set-up page shows, once.
pub struct Enrollment {
    pub uri: String,
    pub secret_base32: String,
    pub qr_svg: String,
}

fn sealing_purpose(row_id: &str) -> String {
    format!("totp-secret/{row_id}")
}

/// `:` separates issuer and account in the otpauth label; neither may contain it.
fn label_part(text: &str) -> String {
    text.replace(':', " ")
}

fn generator(secret: Vec<u8>, issuer: &str, account: &str) -> Result<TOTP, TotpError> {
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        SKEW_STEPS as u8,
        STEP_SECONDS,
        secret,
        Some(label_part(issuer)),
        label_part(account),
    )
    .map_err(|e| TotpError::Store(StoreError::Corrupt(format!("totp parameters: {e}"))))
}

fn open_secret(data_key: &DataKey, row: &StoredAuthenticator) -> Result<Vec<u8>, TotpError> {
    data_key
        .open(&sealing_purpose(&row.id), &row.sealed_secret)
        .map_err(|e| TotpError::Store(StoreError::Corrupt(format!("totp secret {}: {e}", row.id))))
}

/// The time step a code was generated for, if it matches one within the skew. Every candidate is
/// compared in constant time.
fn matching_step(totp: &TOTP, code: &str, now: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = now / STEP_SECONDS as i64;
    let mut found = None;
    for step in current - SKEW_STEPS..=current + SKEW_STEPS {
        let expected = totp.generate(step as u64 * STEP_SECONDS);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

/// A confirmed authenticator app: since when.
pub async fn enabled_since(scope: Scoped<'_>, user_id: &str) -> StoreResult<Option<i64>> {
    Ok(totp_authenticators::find(scope, user_id).await?.and_then(|row| row.confirmed_at))
}

/// Starts (or shows again) the set-up of an authenticator app: a new secret is made only when there
/// is no pending one, so reloading the page keeps the QR code the user may already have scanned.
pub async fn begin(
    scope: Scoped<'_>,
    data_key: &DataKey,
    issuer: &str,
    user_id: &str,
    account: &str,
) -> Result<Enrollment, TotpError> {
    let secret = match totp_authenticators::find(scope, user_id).await? {
        Some(row) if row.confirmed_at.is_some() => return Err(TotpError::AlreadyEnabled),
        Some(row) => open_secret(data_key, &row)?,
        None => {
            let id = crypto::random_id();
            let secret = crypto::random_bytes::<SECRET_BYTES>().to_vec();
            totp_authenticators::insert_pending(scope, &id, user_id, data_key.seal(&sealing_purpose(&id), &secret), now()).await?;
            secret
        }
    };
    let totp = generator(secret, issuer, account)?;
    let uri = totp.get_url();
    Ok(Enrollment {
        qr_svg: qr_svg(&uri),
        secret_base32: totp.get_secret_base32(),
        uri,
    })
}

/// Confirms the pending app with its first code.
pub async fn confirm(scope: Scoped<'_>, data_key: &DataKey, user_id: &str, code: &str) -> Result<(), TotpError> {
    let row = totp_authenticators::find(scope, user_id).await?.ok_or(TotpError::NotSetUp)?;
    if row.confirmed_at.is_some() {
        return Err(TotpError::AlreadyEnabled);
    }
    let step = matching_step(&generator(open_secret(data_key, &row)?, "-", "-")?, code, now()).ok_or(TotpError::WrongCode)?;
    if totp_authenticators::confirm(scope, &row.id, step, now()).await? { Ok(()) } else { Err(TotpError::WrongCode) }
}

/// Checks a code of the user's confirmed app and spends it: the same code (or an older one) is never
/// accepted again.
pub async fn verify(scope: Scoped<'_>, data_key: &DataKey, user_id: &str, code: &str) -> Result<(), TotpError> {
    let row = totp_authenticators::find(scope, user_id).await?.filter(|r| r.confirmed_at.is_some()).ok_or(TotpError::NotSetUp)?;
    let step = matching_step(&generator(open_secret(data_key, &row)?, "-", "-")?, code, now()).ok_or(TotpError::WrongCode)?;
    if totp_authenticators::spend_step(scope, &row.id, step).await? { Ok(()) } else { Err(TotpError::WrongCode) }
}

/// Removes the user's app (pending or confirmed). Returns whether there was one.
pub async fn remove(scope: Scoped<'_>, user_id: &str) -> Result<bool, TotpError> {
    Ok(totp_authenticators::remove(scope, user_id).await?)
}

/// The QR code of `text` as an SVG document: one path, dark modules on a light quiet zone.
fn qr_svg(text: &str) -> String {
    use qrcodegen::{QrCode, QrCodeEcc};
    let Ok(qr) = QrCode::encode_text(text, QrCodeEcc::Medium) else {
        return String::new();
    };
    let border = 4;
    let size = qr.size();
    let mut path = String::new();
    for y in 0..size {
        for x in 0..size {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    let dimension = size + border * 2;
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {dimension} {dimension}" width="200" height="200" shape-rendering="crispEdges" role="img" aria-label="QR code for your authenticator app"><rect width="100%" height="100%" fill="#fff"/><path d="{path}" fill="#000"/></svg>"##
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_one_step_either_side_and_nothing_else() {
        let totp = generator(vec![7u8; SECRET_BYTES], "Acme: Inc", "ada@example.com").expect("totp");
        let now = 1_800_000_000i64;
        let step = now / 30;
        for offset in -1..=1 {
            let code = totp.generate(((step + offset) * 30) as u64);
            assert_eq!(matching_step(&totp, &code, now), Some(step + offset));
        }
        for offset in [-3, -2, 2, 3] {
            let code = totp.generate(((step + offset) * 30) as u64);
            if (-1..=1).all(|o| totp.generate(((step + o) * 30) as u64) != code) {
                assert_eq!(matching_step(&totp, &code, now), None, "offset {offset}");
            }
        }
        assert_eq!(matching_step(&totp, "12345", now), None);
        assert_eq!(matching_step(&totp, "abcdef", now), None);
        assert!(totp.get_url().starts_with("otpauth://totp/Acme%20%20Inc:ada%40example.com?secret="));
    }

    #[test]
    fn rfc_6238_test_vector() {
        // RFC 6238 Appendix B, SHA-1 secret "12345678901234567890", T = 59 s → 94287082 (8 digits);
        // the 6-digit code is its last six digits.
        let totp = TOTP::new(Algorithm::SHA1, 6, 1, 30, b"12345678901234567890".to_vec(), None, "x".into()).expect("totp");
        assert_eq!(totp.generate(59), "287082");
    }

    #[test]
    fn the_qr_code_is_an_svg_of_the_uri() {
        let svg = qr_svg("otpauth://totp/Latchkey:ada?secret=JBSWY3DPEHPK3PXP&issuer=Latchkey");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>") && svg.contains("M4,4h1v1h-1z"));
    }
}
