//! Authentication levels (`acr`) and methods (`amr`, RFC 8176) that Latchkey establishes and puts in its
//! tokens. docs/acr.md is the table these types restate.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How the latest authentication of a session was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Acr {
    /// A 6-digit email code: phishable, one factor.
    EmailCode,
    /// A recovery code: only good for enrolling a new passkey.
    RecoveryCode,
    /// An email code, then an authenticator-app code: only good for enrolling a passkey on this device.
    Totp,
    /// An email (or recovery) code, then a passkey enrolled in that session: two factors, the first phishable.
    Mfa,
    /// A passkey assertion with user verification: phishing-resistant (OpenID EAP ACR values).
    Phr,
    /// A sign-in at the organization's identity provider (SSO): the first step, like an email code;
    /// the passkey (enrolled or confirmed next) makes it `Mfa` or `Phr`. What the IdP itself did is in
    /// the session's `amr`.
    Sso,
}

impl Acr {
    pub const ALL: [Acr; 6] = [Acr::EmailCode, Acr::RecoveryCode, Acr::Totp, Acr::Mfa, Acr::Phr, Acr::Sso];
    /// What a request may ask for (`acr_values_supported`), strongest first.
    pub const REQUESTABLE: [Acr; 3] = [Acr::Phr, Acr::Mfa, Acr::EmailCode];
    /// Only a passkey assertion reaches it; a request naming only unknown values gets it.
    pub const STRONGEST: Acr = Acr::Phr;

    pub const fn as_str(self) -> &'static str {
        match self {
            Acr::EmailCode => "urn:latchkey:acr:email-code",
            Acr::RecoveryCode => "urn:latchkey:acr:recovery-code",
            Acr::Totp => "urn:latchkey:acr:totp",
            Acr::Mfa => "urn:latchkey:acr:mfa",
            Acr::Phr => "phr",
            Acr::Sso => "urn:latchkey:acr:sso",
        }
    }

    pub fn parse(value: &str) -> Option<Acr> {
        Acr::ALL.into_iter().find(|acr| acr.as_str() == value)
    }

    /// The place on the step-up ladder, `email-code < mfa < phr`. The recovery-code and authenticator-app
    /// levels are not on it: they meet no requested level, and nobody may ask for them.
    pub const fn rank(self) -> Option<u8> {
        match self {
            Acr::EmailCode | Acr::Sso => Some(0),
            Acr::Mfa => Some(1),
            Acr::Phr => Some(2),
            Acr::RecoveryCode | Acr::Totp => None,
        }
    }

    /// Whether a session at this level may finish an authorization (or consent): only multi-factor ones.
    pub const fn completes_authorization(self) -> bool {
        matches!(self, Acr::Mfa | Acr::Phr)
    }
}

impl fmt::Display for Acr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Acr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Acr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Acr::parse(&value).ok_or_else(|| serde::de::Error::custom("unknown acr value"))
    }
}

/// Authentication method references (RFC 8176 §2) that Latchkey records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Amr {
    /// A one-time code: email, recovery or authenticator app.
    Otp,
    /// Proof of possession of a device-bound key.
    Hwk,
    /// Proof of possession of a software-protected (synced, backup-eligible) key.
    Swk,
    /// The authenticator verified the user (biometric or PIN).
    User,
    /// More than one factor.
    Mfa,
    // What an organization's identity provider reports it did (its `amr`, or the SAML authentication
    // context), recorded as it said: RFC 8176's registered values Latchkey itself never establishes.
    /// A password.
    Pwd,
    /// A PIN.
    Pin,
    /// A code sent by SMS.
    Sms,
    /// A telephone call.
    Tel,
    /// A fingerprint.
    Fpt,
    /// Facial recognition.
    Face,
    /// Windows integrated authentication.
    Wia,
    /// Knowledge-based authentication.
    Kba,
    /// A smart card.
    Sc,
    /// Proof of possession of a key (unspecified protection).
    Pop,
    /// Risk-based authentication.
    Rba,
    /// Multiple-channel authentication.
    Mca,
}

impl Amr {
    pub const ALL: [Amr; 17] = [
        Amr::Otp, Amr::Hwk, Amr::Swk, Amr::User, Amr::Mfa,
        Amr::Pwd, Amr::Pin, Amr::Sms, Amr::Tel, Amr::Fpt, Amr::Face, Amr::Wia, Amr::Kba, Amr::Sc, Amr::Pop, Amr::Rba, Amr::Mca,
    ];

    pub fn parse(value: &str) -> Option<Amr> {
        Amr::ALL.into_iter().find(|amr| amr.as_str() == value)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Amr::Otp => "otp",
            Amr::Hwk => "hwk",
            Amr::Swk => "swk",
            Amr::User => "user",
            Amr::Mfa => "mfa",
            Amr::Pwd => "pwd",
            Amr::Pin => "pin",
            Amr::Sms => "sms",
            Amr::Tel => "tel",
            Amr::Fpt => "fpt",
            Amr::Face => "face",
            Amr::Wia => "wia",
            Amr::Kba => "kba",
            Amr::Sc => "sc",
            Amr::Pop => "pop",
            Amr::Rba => "rba",
            Amr::Mca => "mca",
        }
    }
}

impl fmt::Display for Amr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_round_trips_and_only_multi_factor_ones_complete() {
        for acr in Acr::ALL {
            assert_eq!(Acr::parse(acr.as_str()), Some(acr));
            let json = serde_json::to_string(&acr).expect("serialise");
            assert_eq!(serde_json::from_str::<Acr>(&json).expect("parse"), acr);
        }
        assert_eq!(Acr::parse("urn:example:gold"), None);
        assert!(serde_json::from_str::<Acr>(r#""urn:example:gold""#).is_err());
        let completing: Vec<Acr> = Acr::ALL.into_iter().filter(|a| a.completes_authorization()).collect();
        assert_eq!(completing, [Acr::Mfa, Acr::Phr]);
    }

    #[test]
    fn every_method_round_trips_as_its_rfc_8176_name() {
        for amr in Amr::ALL {
            assert_eq!(Amr::parse(amr.as_str()), Some(amr));
            assert_eq!(serde_json::to_string(&amr).expect("serialise"), format!("\"{amr}\""));
        }
        assert_eq!(Amr::parse("pwd"), Some(Amr::Pwd), "an identity provider's password, recorded as it said");
        assert_eq!(Amr::parse("retina"), None, "not a method Latchkey records");
        assert!(serde_json::from_str::<Amr>(r#""fed""#).is_err());
    }

    #[test]
    fn the_ladder_is_email_code_then_mfa_then_phr() {
        let ranked: Vec<(Acr, Option<u8>)> = Acr::ALL.into_iter().map(|a| (a, a.rank())).collect();
        assert_eq!(
            ranked,
            [(Acr::EmailCode, Some(0)), (Acr::RecoveryCode, None), (Acr::Totp, None), (Acr::Mfa, Some(1)), (Acr::Phr, Some(2)), (Acr::Sso, Some(0))]
        );
        assert!(Acr::REQUESTABLE.iter().all(|a| a.rank().is_some()));
        assert_eq!(Acr::STRONGEST.rank(), Acr::REQUESTABLE.iter().filter_map(|a| a.rank()).max());
    }
}
