//! Account credentials, one implementation for the CLI (`hotline user add`, `hotline token
//! create`) and the console's admin pages.
//!
//! - A user's password is stored only as an argon2id PHC string ([`hash_password`], the crate's
//!   default parameters, which the sign-in page checks against) and, for the operators'
//!   softphones, as the two SIP digest HA1s ([`sip_ha1s`]: MD5 and SHA-256 of
//!   `name:realm:password`, realm = `sip.domain`). [`credentials`] makes all three.
//! - Passwords made for people ([`generate_password`]) are 20 characters from an alphabet
//!   without look-alikes; passwords people choose have at least [`MIN_PASSWORD_LEN`]
//!   characters.
//! - API tokens ([`new_api_token`]) are shown once; only their SHA-256 ([`TokenHash`]) is
//!   stored.

use argon2::PasswordHasher as _;
use hotline_store::TokenHash;
use md5::Md5;
use sha2::{Digest, Sha256};

/// Shortest password a person may choose (generated ones are longer).
pub const MIN_PASSWORD_LEN: usize = 10;

/// Longest password accepted (bounds the hashing work of one request).
pub const MAX_PASSWORD_LEN: usize = 256;

/// Longest user name (the sign-in page looks up no longer one).
pub const MAX_NAME_LEN: usize = 64;

/// Whether `name` can be a user name: 1 to [`MAX_NAME_LEN`] ASCII letters, digits, `.`, `_`
/// or `-` (it is also the operator's SIP user name).
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
}

/// The password could not be hashed (the system's random source failed, or argon2 refused
/// it): nothing is stored.
#[derive(Debug, thiserror::Error)]
#[error("hashing the password: {0}")]
pub struct HashError(String);

/// The argon2id PHC string (`$argon2id$v=19$…`) of `password`: the crate's default parameters,
/// a random salt.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// The SIP digest HA1s of a user (RFC 2617 / RFC 8760): lowercase hex MD5 and SHA-256 of
/// `name:realm:password`.
pub fn sip_ha1s(name: &str, realm: &str, password: &str) -> (String, String) {
    let a1 = format!("{name}:{realm}:{password}");
    (hex(&Md5::digest(&a1)), hex(&Sha256::digest(&a1)))
}

/// What is stored of a password: never the password itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Argon2id PHC string, for the console's sign-in.
    pub password_hash: String,
    /// Hex MD5(`name:realm:password`), for the softphone.
    pub sip_ha1_md5: String,
    /// Hex SHA-256(`name:realm:password`), for the softphone.
    pub sip_ha1_sha256: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

/// The password hash and both SIP HA1s of user `name` in SIP realm `realm`. Argon2 takes tens
/// of milliseconds of CPU: call it off the async threads (`spawn_blocking`).
pub fn credentials(name: &str, realm: &str, password: &str) -> Result<Credentials, HashError> {
    let password_hash = hash_password(password)?;
    let (sip_ha1_md5, sip_ha1_sha256) = sip_ha1s(name, realm, password);
    Ok(Credentials {
        password_hash,
        sip_ha1_md5,
        sip_ha1_sha256,
    })
}

/// A password for a person to type: 20 characters from an alphabet without look-alikes
/// (no `0 O o 1 l I`), about 115 bits.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..20)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A new API token (`hl_…`, 256 bits) and its hash: show the token once, store the hash.
pub fn new_api_token() -> (String, TokenHash) {
    TokenHash::generate()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["ana", "ana.maria", "op_2", "x-y", &"a".repeat(64)] {
            assert!(valid_user_name(ok), "{ok}");
        }
        for bad in [
            "",
            "ana maria",
            "ñandu",
            "a/b",
            "a:b",
            "a@b",
            &"a".repeat(65),
        ] {
            assert!(!valid_user_name(bad), "{bad}");
        }
    }

    #[test]
    fn ha1s() {
        // RFC 2617 §3.5's example user: MD5("Mufasa:testrealm@host.com:Circle Of Life").
        let (md5, sha256) = sip_ha1s("Mufasa", "testrealm@host.com", "Circle Of Life");
        assert_eq!(md5, "939e7578ed9e3c518a452acee763bce9");
        assert_eq!(sha256.len(), 64);
        assert_eq!(
            sha256,
            hex(&Sha256::digest(b"Mufasa:testrealm@host.com:Circle Of Life"))
        );
    }

    #[test]
    fn passwords() {
        let p = generate_password();
        assert_eq!(p.len(), 20);
        assert!(p.len() >= MIN_PASSWORD_LEN);
        assert_ne!(p, generate_password());
        let c = credentials("ana", "hotline.local", &p).unwrap();
        assert!(
            c.password_hash.starts_with("$argon2id$"),
            "{}",
            c.password_hash
        );
        assert!(!c.password_hash.contains(&p));
        assert_eq!(format!("{c:?}"), "Credentials(<redacted>)");
        use argon2::{PasswordHash, PasswordVerifier};
        let parsed = PasswordHash::new(&c.password_hash).unwrap();
        assert!(
            argon2::Argon2::default()
                .verify_password(p.as_bytes(), &parsed)
                .is_ok()
        );
        let (token, hash) = new_api_token();
        assert!(token.starts_with("hl_"));
        assert_eq!(TokenHash::of(&token), hash);
    }
}
