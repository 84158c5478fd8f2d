//! Names for authenticators, from the AAGUID in the attested credential data (WebAuthn §6.5.2), for
//! the passkeys list only. With `attestation: none` the AAGUID is unverified: a label, never a
//! security decision.
//!
//! The table is a hand-picked subset of the community list at
//! github.com/passkeydeveloper/passkey-authenticator-aaguids (names only).

use serde::Deserialize;
use uuid::Uuid;

const KNOWN: &[(&str, &str)] = &[
    ("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4", "Google Password Manager"),
    ("adce0002-35bc-c60a-648b-0b25f1f05503", "Chrome on Mac"),
    ("08987058-cadc-4b81-b6e1-30de50dcbe96", "Windows Hello"),
    ("9ddd1817-af5a-4672-a2b9-3e3dd95000a9", "Windows Hello"),
    ("6028b017-b1d4-4c02-b4b3-afcdafc96bb2", "Windows Hello"),
    ("fbfc3007-154e-4ecc-8c0b-6e020557d7bd", "iCloud Keychain"),
    ("bada5566-a7aa-401f-bd96-45619a55120d", "1Password"),
    ("d548826e-79b4-db40-a3d8-11116f7e8349", "Bitwarden"),
    ("531126d6-e717-415c-9320-3d9aa6981239", "Dashlane"),
    ("53414d53-554e-4700-0000-000000000000", "Samsung Pass"),
];

#[derive(Deserialize)]
struct AttestationObject<'a> {
    #[serde(rename = "authData", borrow)]
    auth_data: &'a [u8],
}

/// The AAGUID of a registration's attestation object; `None` when absent or all zeros (authenticators
/// that hide their model).
pub fn from_attestation_object(attestation_object: &[u8]) -> Option<Uuid> {
    let parsed: AttestationObject = serde_cbor_2::from_slice(attestation_object).ok()?;
    // authData: rpIdHash (32) | flags (1) | signCount (4) | attestedCredentialData (AT flag 0x40):
    // aaguid (16) | ...
    let data = parsed.auth_data;
    let has_attested_data = data.get(32).is_some_and(|flags| flags & 0x40 != 0);
    let aaguid = Uuid::from_slice(data.get(37..53)?).ok()?;
    (has_attested_data && !aaguid.is_nil()).then_some(aaguid)
}

/// A display name for an AAGUID, when it is a well-known one.
pub fn name(aaguid: &str) -> Option<&'static str> {
    KNOWN
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(aaguid))
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attestation_object(auth_data: &[u8]) -> Vec<u8> {
        let mut map = std::collections::BTreeMap::new();
        map.insert(
            serde_cbor_2::Value::Text("fmt".into()),
            serde_cbor_2::Value::Text("none".into()),
        );
        map.insert(
            serde_cbor_2::Value::Text("authData".into()),
            serde_cbor_2::Value::Bytes(auth_data.to_vec()),
        );
        serde_cbor_2::to_vec(&serde_cbor_2::Value::Map(map)).expect("cbor")
    }

    #[test]
    fn reads_the_aaguid_from_attested_credential_data() {
        let google = Uuid::parse_str("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4").expect("uuid");
        let mut auth_data = vec![0u8; 32];
        auth_data.push(0x45); // UP | UV | AT
        auth_data.extend_from_slice(&[0, 0, 0, 0]);
        auth_data.extend_from_slice(google.as_bytes());
        auth_data.extend_from_slice(&[0, 16]);
        let found = from_attestation_object(&attestation_object(&auth_data)).expect("aaguid");
        assert_eq!(found, google);
        assert_eq!(name(&found.to_string()), Some("Google Password Manager"));

        // No attested data flag, a zero AAGUID, or garbage: no name.
        auth_data[32] = 0x05;
        assert_eq!(from_attestation_object(&attestation_object(&auth_data)), None);
        auth_data[32] = 0x45;
        auth_data[37..53].fill(0);
        assert_eq!(from_attestation_object(&attestation_object(&auth_data)), None);
        assert_eq!(from_attestation_object(b"not cbor"), None);
        assert_eq!(name("00000000-0000-0000-0000-000000000001"), None);
    }
}
