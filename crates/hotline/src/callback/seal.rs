//! Sealing callback numbers: XChaCha20-Poly1305 with a random 24-byte nonce per number and
//! the key from `callback.key_file` (32 bytes, raw or as 64 hex digits). The store holds
//! only `nonce ‖ ciphertext ‖ tag`; the clear number lives in memory only while a call is
//! being placed. The callback's id is the associated data, so a sealed number copied onto
//! another row does not open.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

const NONCE: usize = 24;

/// Why a key file cannot be used, or a sealed number not opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SealError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: a key is 32 bytes, raw or as 64 hex digits")]
    BadKey { path: String },
    #[error("the sealed number does not open with this key (another key, or altered)")]
    Open,
}

/// The key numbers are sealed with.
pub(crate) struct Sealer {
    aead: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// The key of `key_file`: 32 raw bytes, or 64 hex digits (surrounding whitespace ignored).
    pub(crate) fn from_file(path: &Path) -> Result<Sealer, SealError> {
        let bytes = std::fs::read(path).map_err(|source| SealError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Sealer::from_key_bytes(&bytes).ok_or_else(|| SealError::BadKey {
            path: path.display().to_string(),
        })
    }

    fn from_key_bytes(bytes: &[u8]) -> Option<Sealer> {
        let key: [u8; 32] = match bytes.len() {
            32 => bytes.try_into().ok()?,
            _ => {
                let text = std::str::from_utf8(bytes).ok()?.trim();
                if text.len() != 64 {
                    return None;
                }
                let mut key = [0u8; 32];
                for (i, k) in key.iter_mut().enumerate() {
                    *k = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
                }
                key
            }
        };
        Some(Sealer {
            aead: XChaCha20Poly1305::new(&key.into()),
        })
    }

    /// Seals `number` for the callback `id`.
    pub(crate) fn seal(&self, id: &str, number: &str) -> Vec<u8> {
        let nonce: [u8; NONCE] = rand::random();
        let sealed = self
            .aead
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: number.as_bytes(),
                    aad: id.as_bytes(),
                },
            )
            // Invariant: encryption fails only for messages over 256 GiB.
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`seal`](Self::seal) made for the callback `id`.
    pub(crate) fn open(&self, id: &str, sealed: &[u8]) -> Result<String, SealError> {
        if sealed.len() < NONCE + 16 {
            return Err(SealError::Open);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE);
        let clear = self
            .aead
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open)?;
        String::from_utf8(clear).map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::from_key_bytes(&[7u8; 32]).unwrap()
    }

    #[test]
    fn a_number_opens_only_with_its_key_and_its_callback() {
        let s = sealer();
        let sealed = s.seal("cb1", "+51987654321");
        assert!(
            !sealed.windows(9).any(|w| w == b"987654321"),
            "no clear digits"
        );
        assert_eq!(s.open("cb1", &sealed).unwrap(), "+51987654321");
        assert!(matches!(s.open("cb2", &sealed), Err(SealError::Open)));
        let other = Sealer::from_key_bytes(&[8u8; 32]).unwrap();
        assert!(matches!(other.open("cb1", &sealed), Err(SealError::Open)));
        let mut altered = sealed.clone();
        altered[30] ^= 1;
        assert!(matches!(s.open("cb1", &altered), Err(SealError::Open)));
        assert!(matches!(s.open("cb1", &sealed[..20]), Err(SealError::Open)));
    }

    #[test]
    fn every_seal_has_its_own_nonce() {
        let s = sealer();
        assert_ne!(s.seal("cb1", "5550100"), s.seal("cb1", "5550100"));
    }

    #[test]
    fn keys_are_raw_or_hex() {
        let hex = "07".repeat(32);
        let a = Sealer::from_key_bytes(format!("{hex}\n").as_bytes()).unwrap();
        let sealed = sealer().seal("x", "1");
        assert_eq!(a.open("x", &sealed).unwrap(), "1");
        assert!(Sealer::from_key_bytes(b"short").is_none());
        assert!(Sealer::from_key_bytes("zz".repeat(32).as_bytes()).is_none());
    }
}
