//! The IETF OAuth Token Status List (draft-ietf-oauth-status-list): how a token names its entry in
//! a status list (the `status` claim, §6), and the list itself — one bit per entry, set when the entry
//! is revoked, in a byte array compressed with DEFLATE in the ZLIB format (RFC 1950) and base64url
//! encoded (§4). Latchkey writes it; the permission API reads it.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::crypto::base64url;

/// `typ` of a Status List Token (§5.1).
pub const STATUS_LIST_TYP: &str = "statuslist+jwt";
/// The media type a Status List Token is served as (§8.1).
pub const MEDIA_TYPE: &str = "application/statuslist+jwt";
/// Status values (§7.1): valid, and invalid (revoked for good).
pub const VALID: u8 = 0;
pub const INVALID: u8 = 1;

/// The `status` claim of a Referenced Token (§6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub status_list: StatusListRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusListRef {
    /// The entry's index in the list.
    pub idx: u64,
    /// Where the list is published; the Status List Token's `sub`.
    pub uri: String,
}

impl Status {
    pub fn new(uri: String, idx: u64) -> Self {
        Self { status_list: StatusListRef { idx, uri } }
    }
}

/// The `status_list` claim of a Status List Token (§4.2), one bit per entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusList {
    pub bits: u8,
    /// base64url of the ZLIB-compressed byte array.
    pub lst: String,
}

/// The claims of a Status List Token (§5.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusListClaims {
    /// The list's URI, equal to the `uri` its tokens name.
    pub sub: String,
    pub iat: i64,
    /// After this the list may not be relied on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Seconds a reader may cache it before fetching again (§13.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    pub status_list: StatusList,
}

#[derive(Debug, thiserror::Error)]
pub enum StatusListError {
    #[error("only one bit per entry is read")]
    Bits,
    #[error("the list is not base64url")]
    Encoding,
    #[error("the list is not ZLIB-compressed data")]
    Compression,
    #[error("the list is larger than {0} bytes")]
    TooLarge(usize),
}

/// A list of `size` one-bit entries with the `revoked` ones set, compressed and encoded (§4.1: entry
/// `i` is bit `i % 8`, counted from the least significant, of byte `i / 8`). Indices past `size` are
/// ignored.
pub fn encode(size: u64, revoked: impl IntoIterator<Item = u64>) -> StatusList {
    let mut bytes = vec![0u8; usize::try_from(size.div_ceil(8)).unwrap_or(0).max(1)];
    for index in revoked.into_iter().filter(|&i| i < size) {
        if let Some(byte) = usize::try_from(index / 8).ok().and_then(|i| bytes.get_mut(i)) {
            *byte |= 1 << (index % 8);
        }
    }
    let mut compressed = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing into a Vec cannot fail.
    let _ = compressed.write_all(&bytes);
    let compressed = compressed.finish().unwrap_or_default();
    StatusList { bits: 1, lst: base64url(&compressed) }
}

/// The list's bytes, decompressed, at most `max_bytes` of them (a list is not allowed to grow a
/// reader's memory without bound).
pub fn decode(list: &StatusList, max_bytes: usize) -> Result<Vec<u8>, StatusListError> {
    use base64::Engine;
    if list.bits != 1 {
        return Err(StatusListError::Bits);
    }
    let compressed =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&list.lst).map_err(|_| StatusListError::Encoding)?;
    let mut bytes = Vec::new();
    let limit = u64::try_from(max_bytes).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::ZlibDecoder::new(compressed.as_slice())
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(|_| StatusListError::Compression)?;
    if bytes.len() > max_bytes {
        return Err(StatusListError::TooLarge(max_bytes));
    }
    Ok(bytes)
}

/// Entry `index` of decoded one-bit list bytes; `None` past the end (§4.1: an index outside the list
/// is an error for the reader, not a valid token).
pub fn entry(bytes: &[u8], index: u64) -> Option<u8> {
    let byte = bytes.get(usize::try_from(index / 8).ok()?)?;
    Some((byte >> (index % 8)) & 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_least_significant_bit_first() {
        let list = encode(20, [0, 3, 9, 19, 25]);
        let bytes = decode(&list, 1024).expect("decodes");
        // §4.1's layout: entry 0 and 3 in byte 0, 9 in byte 1, 19 in byte 2; 25 is past the size.
        assert_eq!(bytes, [0b0000_1001, 0b0000_0010, 0b0000_1000]);
        let read: Vec<u8> = (0..20).map(|i| entry(&bytes, i).expect("inside")).collect();
        let set: Vec<u64> = (0..20).filter(|&i| read[i as usize] == INVALID).collect();
        assert_eq!(set, [0, 3, 9, 19]);
        assert_eq!(entry(&bytes, 24), None, "past the end");
    }

    #[test]
    fn the_drafts_example_reads_as_it_says() {
        // draft-ietf-oauth-status-list §4.2: entries 0, 3, 4, 5, 7, 8, 9, 13, 15 of 16 are set.
        let example = StatusList { bits: 1, lst: "eNrbuRgAAhcBXQ".into() };
        let bytes = decode(&example, 16).expect("decodes");
        let set: Vec<u64> = (0..16).filter(|&i| entry(&bytes, i) == Some(INVALID)).collect();
        assert_eq!(set, [0, 3, 4, 5, 7, 8, 9, 13, 15]);
    }

    #[test]
    fn malformed_or_oversized_lists_are_refused() {
        assert!(matches!(decode(&StatusList { bits: 2, lst: encode(8, []).lst }, 16), Err(StatusListError::Bits)));
        assert!(matches!(decode(&StatusList { bits: 1, lst: "not base64!".into() }, 16), Err(StatusListError::Encoding)));
        assert!(matches!(decode(&StatusList { bits: 1, lst: base64url(b"plain") }, 16), Err(StatusListError::Compression)));
        assert!(matches!(decode(&encode(1 << 20, [5]), 1024), Err(StatusListError::TooLarge(1024))));
    }
}
