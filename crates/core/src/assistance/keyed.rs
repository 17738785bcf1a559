//! Keyed hashes of person and household ids: BLAKE2b used as a MAC (RFC 7693 keyed mode)
//! with a 128-bit output. The fused pool holds only these; the raw ids stay in the source
//! tables. Without the key a hash cannot be recomputed from a guessed ID number (an ID
//! number has few enough possibilities that a plain hash would be reversible by trying
//! them all), and two pools built with different keys cannot be joined.

use blake2::digest::consts::U16;
use blake2::digest::{KeyInit, Mac};
use blake2::Blake2bMac;

type Mac128 = Blake2bMac<U16>;

/// What kind of id is hashed: the same string as a person id and as a household id gives
/// different hashes (domain separation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Person,
    Household,
}

/// The pool's key (16–64 bytes). Where it comes from (a secret file of the deployment) is
/// the caller's business: this crate reads nothing.
#[derive(Clone)]
pub struct IdKey {
    mac: Mac128,
}

impl std::fmt::Debug for IdKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdKey(…)")
    }
}

/// A keyed hash of an id.
pub type IdHash = u128;

impl IdKey {
    /// A key of 16 to 64 bytes; anything else is refused.
    pub fn new(key: &[u8]) -> Result<IdKey, String> {
        if !(16..=64).contains(&key.len()) {
            return Err(format!(
                "the id key must be 16 to 64 bytes, not {}",
                key.len()
            ));
        }
        let mac = <Mac128 as KeyInit>::new_from_slice(key).map_err(|e| e.to_string())?;
        Ok(IdKey { mac })
    }

    /// The keyed hash of a raw id (surrounding spaces ignored; ASCII letters upper-cased, so
    /// an ID number's check letter `x` and `X` are the same person).
    pub fn hash(&self, kind: IdKind, raw: &str) -> IdHash {
        let raw = raw.trim();
        let mut m = self.mac.clone();
        m.update(match kind {
            IdKind::Person => b"p\0",
            IdKind::Household => b"h\0",
        });
        if raw.bytes().any(|b| b.is_ascii_lowercase()) {
            m.update(raw.to_ascii_uppercase().as_bytes());
        } else {
            m.update(raw.as_bytes());
        }
        let out = m.finalize().into_bytes();
        let mut b = [0u8; 16];
        b.copy_from_slice(&out);
        u128::from_le_bytes(b)
    }
}

/// Short hexadecimal form of a hash for explanations and logs (the first 12 digits).
pub fn short(h: IdHash) -> String {
    format!("{:012x}", h >> 80)
}
