//! Content addressing.

use std::fmt;

/// A 256-bit BLAKE3 digest naming a piece of content: a document's bytes or a chunk's text.
///
/// Two equal hashes mean equal content, which is what lets ragmill skip unchanged documents and
/// never embed the same chunk twice.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash([u8; 32]);

/// The text given to [`ContentHash::from_hex`] is not 64 hexadecimal digits.
#[derive(Debug, thiserror::Error)]
#[error("not a content hash (want 64 hex digits): {0:?}")]
pub struct ParseHashError(String);

impl ContentHash {
    /// Hashes `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Rebuilds a hash from its raw digest.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Lower-case hexadecimal, 64 digits.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    /// Parses the output of [`ContentHash::to_hex`].
    pub fn from_hex(hex: &str) -> Result<Self, ParseHashError> {
        blake3::Hash::from_hex(hex)
            .map(|h| Self(*h.as_bytes()))
            .map_err(|_| ParseHashError(hex.chars().take(80).collect()))
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", &self.to_hex()[..16])
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// As its 64 hex digits: hashes travel between processes in JSON.
impl serde::Serialize for ContentHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for ContentHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let hex = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        ContentHash::from_hex(&hex).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let h = ContentHash::of(b"ragmill");
        assert_eq!(ContentHash::from_hex(&h.to_hex()).ok(), Some(h));
        assert!(ContentHash::from_hex("zz").is_err());
        assert_ne!(h, ContentHash::of(b"ragmill "));
    }
}
