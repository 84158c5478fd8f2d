//! End users of a tenant, identified by a verified email address.

use crate::{
    crypto,
    store::{Scoped, StoreError, StoreResult, now, users},
};

/// A person as stored (`store::users`): id, verified email, status, passkey handle, profile.
pub type User = users::UserRow;

/// An email address as Latchkey keeps and compares it: trimmed, lower-cased, a plausible
/// `local@domain` shape (the real check is receiving the code). Users are found by address only
/// through this type, so an address typed in any case, on a page or in the CLI, names one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Option<Self> {
        let email = input.trim().to_lowercase();
        let (local, domain) = email.split_once('@')?;
        let plausible = !local.is_empty()
            && local.len() <= 64
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && email.len() <= 254
            && !email
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
        plausible.then_some(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Email {
    type Err = String;
    fn from_str(input: &str) -> Result<Self, String> {
        Self::parse(input).ok_or_else(|| format!("{input:?} is not an email address"))
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub async fn find_by_email(scope: Scoped<'_>, email: &Email) -> StoreResult<Option<User>> {
    users::find_by_email(scope, email.as_str()).await
}

pub async fn find(scope: Scoped<'_>, id: &str) -> StoreResult<Option<User>> {
    users::find(scope, id).await
}

/// The user, unless the account is disabled (a disabled account signs in to nothing).
pub async fn find_active(scope: Scoped<'_>, id: &str) -> StoreResult<Option<User>> {
    Ok(find(scope, id).await?.filter(|user| user.disabled_at.is_none()))
}

/// Disables an account (it signs in to nothing; `true` if this call disabled it), or enables it.
/// Ending what it already holds is the caller's (`scim::directory::deprovision`).
pub async fn set_disabled(scope: Scoped<'_>, id: &str, disabled: bool) -> StoreResult<bool> {
    users::set_disabled(scope, id, disabled.then(now)).await
}

/// Returns the user with this (verified) email, creating it if absent (racing creators agree).
pub async fn find_or_create(scope: Scoped<'_>, email: &Email) -> StoreResult<User> {
    users::find_or_insert(scope, &crypto::random_id(), email.as_str(), now()).await
}

/// The standard profile claims (OIDC Core §5.1) a person has; the columns are the store's, what each
/// may hold is decided here (`Profile::checked`).
pub use crate::store::users::Profile;

/// The claims of the `profile` scope that Latchkey serves (OIDC Core §5.4), as named in
/// `claims_supported`.
pub const PROFILE_CLAIMS: [&str; 8] =
    ["name", "given_name", "family_name", "preferred_username", "locale", "zoneinfo", "picture", "updated_at"];

/// Names people type: displayable text (no control, format or bidi characters), at most 100 characters.
const MAX_NAME_CHARS: usize = 100;

impl Profile {
    pub fn of(user: &User) -> Self {
        Self {
            name: user.name.clone(),
            given_name: user.given_name.clone(),
            family_name: user.family_name.clone(),
            preferred_username: user.preferred_username.clone(),
            locale: user.locale.clone(),
            zoneinfo: user.zoneinfo.clone(),
            picture: user.picture.clone(),
        }
    }

    /// Blank values become absent; each value is checked for what its claim means. The error names
    /// the field for the person or operator who typed it.
    pub fn checked(self) -> Result<Self, String> {
        let blank_is_none = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let profile = Self {
            name: blank_is_none(self.name),
            given_name: blank_is_none(self.given_name),
            family_name: blank_is_none(self.family_name),
            preferred_username: blank_is_none(self.preferred_username),
            locale: blank_is_none(self.locale),
            zoneinfo: blank_is_none(self.zoneinfo),
            picture: blank_is_none(self.picture),
        };
        // The parts first: a full name left empty on the account page is made of them.
        let names = [("given name", &profile.given_name), ("family name", &profile.family_name), ("name", &profile.name), ("username", &profile.preferred_username)];
        for (field, value) in names {
            if let Some(value) = value
                && (value.chars().count() > MAX_NAME_CHARS || !crate::display_text::is_displayable(value))
            {
                return Err(format!("The {field} must be at most {MAX_NAME_CHARS} characters that display as themselves."));
            }
        }
        // BCP 47 language tag, in the shape OIDC Core §5.1 shows (`en-US`, `fr-CA`): letters, digits, dashes.
        if let Some(locale) = &profile.locale
            && (locale.len() > 35 || !locale.split('-').all(|part| !part.is_empty() && part.len() <= 8 && part.chars().all(|c| c.is_ascii_alphanumeric())))
        {
            return Err("The locale must be a language tag such as en-US.".into());
        }
        // An IANA time zone name (`Europe/Paris`, `America/Los_Angeles`, `UTC`).
        if let Some(zone) = &profile.zoneinfo
            && (zone.len() > 64 || !zone.chars().all(|c| c.is_ascii_alphanumeric() || "/_-+".contains(c)))
        {
            return Err("The time zone must be a name such as Europe/Paris.".into());
        }
        if let Some(picture) = &profile.picture
            && !url::Url::parse(picture).is_ok_and(|u| u.scheme() == "https" && u.host().is_some() && picture.len() <= 2048)
        {
            return Err("The picture must be an https URL.".into());
        }
        Ok(profile)
    }
}

/// The `profile` scope's claims for a person (OIDC Core §5.4): those that are set, and `updated_at`
/// (when the profile last changed, or the account's creation).
pub fn profile_claims(user: &User) -> serde_json::Map<String, serde_json::Value> {
    let profile = Profile::of(user);
    let mut claims = serde_json::Map::new();
    let values = [
        ("name", profile.name),
        ("given_name", profile.given_name),
        ("family_name", profile.family_name),
        ("preferred_username", profile.preferred_username),
        ("locale", profile.locale),
        ("zoneinfo", profile.zoneinfo),
        ("picture", profile.picture),
    ];
    for (claim, value) in values {
        if let Some(value) = value {
            claims.insert(claim.to_owned(), value.into());
        }
    }
    claims.insert("updated_at".to_owned(), user.updated_at.unwrap_or(user.created_at).into());
    claims
}

/// Replaces the profile (already `checked`) and records when it changed.
pub async fn set_profile(scope: Scoped<'_>, user_id: &str, profile: Profile) -> StoreResult<bool> {
    users::set_profile(scope, user_id, profile, now()).await
}

pub async fn mark_signed_in(scope: Scoped<'_>, user_id: &str) -> StoreResult<()> {
    users::set_last_sign_in(scope, user_id, now()).await
}

/// The user's WebAuthn user handle, created on first use. A random UUID: the authenticator stores it,
/// so it must not be the user id or anything personal (WebAuthn §14.6.1).
pub async fn passkey_handle(scope: Scoped<'_>, user: &User) -> StoreResult<uuid::Uuid> {
    if let Some(handle) = user.passkey_handle.as_deref().and_then(|h| h.parse().ok()) {
        return Ok(handle);
    }
    let handle = uuid::Uuid::from_bytes(crypto::random_bytes::<16>());
    users::set_passkey_handle_once(scope, &user.id, &handle.to_string()).await?;
    find(scope, &user.id)
        .await?
        .and_then(|u| u.passkey_handle)
        .and_then(|h| h.parse().ok())
        .ok_or_else(|| StoreError::Corrupt("passkey handle not stored".into()))
}

pub async fn find_by_passkey_handle(scope: Scoped<'_>, handle: &uuid::Uuid) -> StoreResult<Option<User>> {
    users::find_by_passkey_handle(scope, &handle.to_string()).await
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn profiles_are_checked_for_what_each_claim_means() {
        let ok = super::Profile {
            name: Some(" Ada Lovelace ".into()),
            given_name: Some("Ada".into()),
            family_name: Some("".into()),
            locale: Some("en-GB".into()),
            zoneinfo: Some("Europe/London".into()),
            picture: Some("https://images.example/ada.png".into()),
            ..Default::default()
        };
        let checked = ok.clone().checked().expect("valid profile");
        assert_eq!(checked.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(checked.family_name, None, "blank is absent");
        for bad in [
            super::Profile { name: Some("Ada\u{202e}ecalevol".into()), ..Default::default() },
            super::Profile { given_name: Some("x".repeat(101)), ..Default::default() },
            super::Profile { locale: Some("en_GB; drop".into()), ..Default::default() },
            super::Profile { zoneinfo: Some("Europe/<London>".into()), ..Default::default() },
            super::Profile { picture: Some("http://images.example/ada.png".into()), ..Default::default() },
            super::Profile { picture: Some("javascript:alert(1)".into()), ..Default::default() },
        ] {
            assert!(bad.clone().checked().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn addresses_are_kept_in_one_form() {
        for (typed, kept) in [
            ("Mixed.Case@Example.COM", Some("mixed.case@example.com")),
            ("  ada@example.com\t", Some("ada@example.com")),
            ("ada@localhost", None),
            ("ada@@example.com", None),
            ("@example.com", None),
            ("ada@.example.com", None),
            ("a da@example.com", None),
            ("<ada@example.com>", None),
        ] {
            assert_eq!(Email::parse(typed).as_ref().map(Email::as_str), kept, "{typed:?}");
        }
    }
}
