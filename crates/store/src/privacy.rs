//! Caller privacy: what is kept of a calling number.
//!
//! `privacy.caller_id` in the config picks a [`CallerIdPolicy`]:
//! - `pseudonym` (the default): `hex(HMAC-SHA256(secret, normalised number))`. The secret is per
//!   deployment, made on first start into `<data_dir>/secret.key` (mode 0600) by
//!   [`load_or_create_secret`]. Repeat callers can be linked; the number cannot be recovered
//!   without the secret, and a 9-digit mobile number cannot be brute-forced without it either.
//!   Lose the file and new calls get new pseudonyms (old links break): back it up with the data.
//! - `full`: the normalised number is kept.
//! - `none`: nothing is kept.
//!
//! The number is never logged: [`crate::Caller`]'s `Debug` hides it, and nothing in this crate
//! logs a number or a pseudonym.
//!
//! # Normalisation
//! So that `+51 987 654 321`, `0051987654321`, `51987654321` and `987-654-321` are one caller:
//! 1. keep the digits (a leading `+` or `00` marks an international number);
//! 2. international: drop a `51` (Peru) country code; any other country keeps its code, written
//!    `+CC…` so it cannot equal a Peruvian number;
//! 3. national: an 11-digit `51…` (a trunk that sends the country code without `+`) loses the
//!    `51`; leading zeros (the national trunk prefix, `01 …` for Lima) are dropped.
//!
//! What is left is the Peruvian national significant number (`987654321`, `14567890`) or `+CC…`.
//! Input with no digit (`anonymous`, a withheld number) normalises to nothing.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::model::{Caller, hex};

/// File name of the per-deployment secret in the data dir.
pub const SECRET_FILE: &str = "secret.key";

/// `privacy.caller_id`: what is kept of a calling number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallerIdPolicy {
    /// A keyed HMAC of the normalised number (the default).
    #[default]
    Pseudonym,
    /// The normalised number.
    Full,
    /// Nothing.
    None,
}

impl FromStr for CallerIdPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pseudonym" => Ok(CallerIdPolicy::Pseudonym),
            "full" => Ok(CallerIdPolicy::Full),
            "none" => Ok(CallerIdPolicy::None),
            _ => Err(format!(
                "privacy.caller_id must be pseudonym, full or none, not {s:?}"
            )),
        }
    }
}

/// The per-deployment pseudonym key (32 bytes). Its `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; 32]);

impl Secret {
    /// A secret from known bytes (tests; a key held elsewhere).
    pub const fn from_bytes(bytes: [u8; 32]) -> Secret {
        Secret(bytes)
    }

    fn generate() -> Secret {
        let mut b = [0u8; 32];
        rand::rng().fill_bytes(&mut b);
        Secret(b)
    }

    fn parse(text: &str) -> Option<Secret> {
        let t = text.trim();
        if t.len() != 64 {
            return None;
        }
        let mut b = [0u8; 32];
        for (i, chunk) in t.as_bytes().chunks(2).enumerate() {
            let s = std::str::from_utf8(chunk).ok()?;
            b[i] = u8::from_str_radix(s, 16).ok()?;
        }
        Some(Secret(b))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

/// A secret file that could not be read, made or trusted.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path}: not a pseudonym secret (64 hex digits expected); refusing to replace it, since a new secret would unlink every earlier caller"
    )]
    Malformed { path: PathBuf },
}

/// Reads `<data_dir>/secret.key`, or makes it (32 random bytes as hex, mode 0600, fsynced)
/// if it does not exist. Two processes starting at once end with the same secret: the file is
/// written aside and linked into place, so it appears whole or not at all, and only once.
/// A file readable by others is made 0600.
pub fn load_or_create_secret(data_dir: &Path) -> Result<Secret, SecretError> {
    let path = data_dir.join(SECRET_FILE);
    let io_err = |source| SecretError::Io {
        path: path.clone(),
        source,
    };
    match read_secret(&path) {
        Ok(s) => return Ok(s),
        Err(SecretError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::create_dir_all(data_dir).map_err(io_err)?;
    let secret = Secret::generate();
    // A name no other process or thread uses: each writes its own candidate, one link wins.
    let tmp = data_dir.join(format!(
        ".{SECRET_FILE}.{}.{}.tmp",
        std::process::id(),
        crate::id::new_id()
    ));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err)?;
        f.write_all(format!("{}\n", hex(&secret.0)).as_bytes())
            .map_err(io_err)?;
        f.sync_all().map_err(io_err)?;
    }
    let linked = fs::hard_link(&tmp, &path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_dir(data_dir).map_err(io_err)?;
            tracing::info!(path = %path.display(), "created the caller pseudonym secret");
            Ok(secret)
        }
        // Another process won the race: use its secret.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_secret(&path),
        Err(e) => Err(io_err(e)),
    }
}

fn read_secret(path: &Path) -> Result<Secret, SecretError> {
    let io_err = |source| SecretError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = fs::File::open(path).map_err(io_err)?;
    let mode = f.metadata().map_err(io_err)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "secret file was readable by others; setting it to 0600");
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io_err)?;
    }
    let mut text = String::new();
    f.read_to_string(&mut text).map_err(io_err)?;
    Secret::parse(&text).ok_or_else(|| SecretError::Malformed {
        path: path.to_owned(),
    })
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Normalises a calling number (see the module docs); `None` if it has no digit.
pub fn normalise_number(raw: &str) -> Option<String> {
    let trimmed = raw.trim_start();
    let plus = trimmed.starts_with('+');
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    let (international, digits) = if plus {
        (true, digits.as_str())
    } else if let Some(rest) = digits.strip_prefix("00") {
        (true, rest)
    } else {
        (false, digits.as_str())
    };
    let national = if international {
        let digits = digits.trim_start_matches('0');
        match digits.strip_prefix("51") {
            Some(nsn) => nsn,
            None if digits.is_empty() => return None,
            None => return Some(format!("+{digits}")),
        }
    } else if digits.len() == 11 && digits.starts_with("51") {
        &digits[2..]
    } else {
        digits.trim_start_matches('0')
    };
    let national = national.trim_start_matches('0');
    (!national.is_empty()).then(|| national.to_owned())
}

/// `hex(HMAC-SHA256(secret, normalise_number(number)))`; `None` if the number has no digit.
pub fn pseudonym(secret: &Secret, number: &str) -> Option<String> {
    let normalised = normalise_number(number)?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&secret.0)
        .expect("HMAC takes a key of any length");
    mac.update(normalised.as_bytes());
    Some(hex(&mac.finalize().into_bytes()))
}

/// The policy and its key: turns a presented number into what the call row keeps.
#[derive(Debug, Clone)]
pub struct CallerPrivacy {
    policy: CallerIdPolicy,
    secret: Option<Secret>,
}

impl CallerPrivacy {
    /// For `pseudonym`, the secret is loaded or made in `data_dir`; the other policies touch no
    /// file.
    pub fn load(policy: CallerIdPolicy, data_dir: &Path) -> Result<CallerPrivacy, SecretError> {
        let secret = match policy {
            CallerIdPolicy::Pseudonym => Some(load_or_create_secret(data_dir)?),
            CallerIdPolicy::Full | CallerIdPolicy::None => None,
        };
        Ok(CallerPrivacy { policy, secret })
    }

    /// With a given secret (tests).
    pub fn with_secret(policy: CallerIdPolicy, secret: Secret) -> CallerPrivacy {
        CallerPrivacy {
            policy,
            secret: Some(secret),
        }
    }

    pub fn policy(&self) -> CallerIdPolicy {
        self.policy
    }

    /// What to store for a presented number (`None`: none presented).
    pub fn caller(&self, number: Option<&str>) -> Caller {
        let Some(number) = number else {
            return Caller::Absent;
        };
        match (self.policy, &self.secret) {
            (CallerIdPolicy::Pseudonym, Some(secret)) => {
                pseudonym(secret, number).map_or(Caller::Absent, Caller::Pseudonym)
            }
            (CallerIdPolicy::Full, _) => {
                normalise_number(number).map_or(Caller::Absent, Caller::Number)
            }
            _ => Caller::Absent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peruvian_forms_normalise_alike() {
        for raw in [
            "+51 987 654 321",
            "+51-987-654-321",
            "0051987654321",
            "51987654321",
            "987654321",
            "987-654-321",
            " 987 654 321 ",
        ] {
            assert_eq!(normalise_number(raw).as_deref(), Some("987654321"), "{raw}");
        }
        // Lima landline: national (trunk 0) and international forms.
        assert_eq!(normalise_number("01 456 7890").as_deref(), Some("14567890"));
        assert_eq!(
            normalise_number("+51 1 456 7890").as_deref(),
            Some("14567890")
        );
        // Foreign numbers keep their country code.
        assert_eq!(
            normalise_number("+1 202 555 0100").as_deref(),
            Some("+12025550100")
        );
        assert_eq!(
            normalise_number("0012025550100").as_deref(),
            Some("+12025550100")
        );
        for raw in [
            "anonymous",
            "",
            "+",
            "000",
            "Anonymous <sip:anonymous@anonymous.invalid>",
        ] {
            assert_eq!(normalise_number(raw), None, "{raw}");
        }
    }

    #[test]
    fn pseudonym_is_keyed_stable_and_hex() {
        let a = Secret::from_bytes([1; 32]);
        let b = Secret::from_bytes([2; 32]);
        let p = pseudonym(&a, "+51 987 654 321").unwrap();
        assert_eq!(p.len(), 64);
        assert!(p.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(pseudonym(&a, "987654321").unwrap(), p);
        assert_ne!(pseudonym(&b, "987654321").unwrap(), p);
        assert_ne!(pseudonym(&a, "987654322").unwrap(), p);
        assert!(!p.contains("987654321"));
        // RFC 4231 test case 2 shape: HMAC-SHA256(key="Jefe"...) is covered by the hmac crate;
        // here the key is 32 bytes of 1 and the message "987654321".
        assert_eq!(pseudonym(&a, "anonymous"), None);
    }

    #[test]
    fn policies() {
        let s = Secret::from_bytes([7; 32]);
        let pseudo = CallerPrivacy::with_secret(CallerIdPolicy::Pseudonym, s.clone());
        assert!(matches!(
            pseudo.caller(Some("987654321")),
            Caller::Pseudonym(_)
        ));
        assert_eq!(pseudo.caller(None), Caller::Absent);
        assert_eq!(pseudo.caller(Some("anonymous")), Caller::Absent);
        let full = CallerPrivacy::with_secret(CallerIdPolicy::Full, s.clone());
        assert_eq!(
            full.caller(Some("+51 987 654 321")),
            Caller::Number("987654321".into())
        );
        let none = CallerPrivacy::with_secret(CallerIdPolicy::None, s);
        assert_eq!(none.caller(Some("987654321")), Caller::Absent);
        assert_eq!("full".parse(), Ok(CallerIdPolicy::Full));
        assert!("FULL".parse::<CallerIdPolicy>().is_err());
    }
}
