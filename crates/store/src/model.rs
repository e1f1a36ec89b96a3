//! What the store holds: calls, call events, recordings, users, API tokens, the audit log.
//!
//! `New*` structs are what callers write, the plain names are what reads return. Every type is
//! serde-able: the writer's spool keeps writes as JSON lines, and the console may answer with the
//! read types directly (their field names are the HTTP API's).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

use crate::time::Timestamp;

/// Most rows a list returns, whatever limit is asked for.
pub const MAX_LIMIT: u32 = 1000;
/// Rows a list returns when no limit is asked for.
pub const DEFAULT_LIMIT: u32 = 50;

pub(crate) fn clamp_limit(limit: u32) -> i64 {
    i64::from(if limit == 0 {
        DEFAULT_LIMIT
    } else {
        limit.min(MAX_LIMIT)
    })
}

/// A value set stored as lowercase text: parse, print, serde, and sqlx for both backends.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored (and JSON) text.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue { what: stringify!($name), value: s.chars().take(40).collect() }),
                }
            }
        }

        impl<DB: Database> Type<DB> for $name
        where
            str: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: Database> Encode<'q, DB> for $name
        where
            for<'a> &'a str: Encode<'q, DB>,
        {
            fn encode_by_ref(&self, buf: &mut DB::ArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<'q, DB>>::encode(self.as_str(), buf)
            }
        }

        impl<'r, DB: Database> Decode<'r, DB> for $name
        where
            &'r str: Decode<'r, DB>,
        {
            fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(<&'r str as Decode<'r, DB>>::decode(value)?.parse()?)
            }
        }
    };
}
pub(crate) use text_enum;

/// A text that is not one of a value set's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what}: {value:?}")]
pub struct UnknownValue {
    pub(crate) what: &'static str,
    pub(crate) value: String,
}

text_enum! {
    /// How a call ended (the HTTP API's `disposition`).
    Disposition {
        /// The caller left a message.
        Message = "message",
        /// The caller talked to an operator.
        Operator = "operator",
        /// The caller hung up before a message or an operator.
        Abandoned = "abandoned",
        /// The hotline refused the call (overload, trunk not allowed).
        Rejected = "rejected",
        /// Something broke.
        Failed = "failed",
        /// The hotline stopped under the call (a crash, a kill, a node lost): closed at the next
        /// start (or by the node that adopted the dead node's calls), ended at its last trace.
        Interrupted = "interrupted",
    }
}

text_enum! {
    /// What a recording is.
    RecordingKind {
        /// A message left by a caller.
        Message = "message",
        /// A caller–operator conversation.
        Conversation = "conversation",
    }
}

text_enum! {
    /// Where a recording is in its review.
    RecordingStatus {
        /// Nobody has listened yet.
        New = "new",
        /// Listened to.
        Reviewed = "reviewed",
        /// Passed on to an authority or a service.
        Referred = "referred",
        /// Done.
        Closed = "closed",
    }
}

text_enum! {
    /// What a console user may do.
    Role {
        /// Takes calls; sees only what the operator views need.
        Operator = "operator",
        /// Also reviews recordings.
        Supervisor = "supervisor",
        /// Also manages users and tokens.
        Admin = "admin",
    }
}

/// What is kept of the calling number (see [`crate::privacy`]).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Caller {
    /// HMAC-SHA256 of the normalised number (hex): links repeat callers without the number.
    Pseudonym(String),
    /// The normalised number itself (`privacy.caller_id = "full"`).
    Number(String),
    /// Nothing: policy `none`, or no number was presented.
    #[default]
    Absent,
}

impl Caller {
    pub(crate) fn kind_str(&self) -> &'static str {
        match self {
            Caller::Pseudonym(_) => "pseudonym",
            Caller::Number(_) => "number",
            Caller::Absent => "none",
        }
    }

    pub(crate) fn value(&self) -> Option<&str> {
        match self {
            Caller::Pseudonym(v) | Caller::Number(v) => Some(v),
            Caller::Absent => None,
        }
    }

    pub(crate) fn from_columns(kind: &str, value: Option<String>) -> Caller {
        match (kind, value) {
            ("pseudonym", Some(v)) => Caller::Pseudonym(v),
            ("number", Some(v)) => Caller::Number(v),
            _ => Caller::Absent,
        }
    }
}

/// Never prints a number: `Number(…)` shows only its length.
impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caller::Pseudonym(p) => f.debug_tuple("Pseudonym").field(p).finish(),
            Caller::Number(n) => write!(f, "Number(<{} characters>)", n.len()),
            Caller::Absent => f.write_str("Absent"),
        }
    }
}

/// A call as it starts. `id` is the caller's (see [`crate::new_id`]); `reference` is the short
/// number read to the caller: leave it `None` and the store picks a free one, or pass one taken
/// from the writer's pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCall {
    pub id: String,
    pub sip_call_id: String,
    pub reference: Option<String>,
    pub started_at: Timestamp,
    /// Source address of the INVITE (`ip:port` of the trunk).
    pub trunk_source: Option<String>,
    /// The number dialled (the Request-URI user part).
    pub called_number: Option<String>,
    pub caller: Caller,
    /// The cluster node that took the call (`cluster.node_id`); `None` for the one-process
    /// hotline. Tells whose calls a restart closes ([`crate::Write::CloseInterrupted`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// Changes to a call: each `Some` field is set, each `None` field left as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// The flow's language id (`es`, `qu`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The menu nodes visited, in order (replaces the stored list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<Disposition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_wait_ms: Option<i64>,
    /// The operator's user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// What the call is marked with (`quick-exit`, `silent`; replaces the stored list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marks: Option<Vec<String>>,
    /// The caller's keypad answers, in order (replaces the stored list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<Vec<Answer>>,
}

/// A question a caller answered with a key (a `question` node of the flow), as
/// operators read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// What was asked ("En peligro ahora").
    pub question: String,
    /// The answer ("sí").
    pub answer: String,
}

/// A call as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub id: String,
    pub sip_call_id: String,
    pub reference: String,
    pub started_at: Timestamp,
    pub answered_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub trunk_source: Option<String>,
    pub called_number: Option<String>,
    /// Policy-controlled: a pseudonym by default. The console decides who may see it.
    pub caller: Caller,
    pub language: Option<String>,
    pub disposition: Option<Disposition>,
    pub path: Vec<String>,
    pub queue_wait_ms: Option<i64>,
    pub operator: Option<String>,
    /// Ids of the call's recordings, oldest first.
    pub recordings: Vec<String>,
    /// What the call is marked with: `quick-exit` (the caller pressed the quick-exit
    /// key), `silent` (no key, no speech).
    #[serde(default)]
    pub marks: Vec<String>,
    /// The caller's keypad answers, in order.
    #[serde(default)]
    pub answers: Vec<Answer>,
}

/// A call with its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallDetail {
    #[serde(flatten)]
    pub call: Call,
    pub events: Vec<CallEvent>,
}

/// Something that happened in a call. `id` makes a replayed write harmless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCallEvent {
    pub id: String,
    pub call_id: String,
    pub at: Timestamp,
    /// A short machine-readable name: `answered`, `digit`, `enqueued`, `bridged`, …
    pub kind: String,
    /// Free text; never a caller's number.
    pub detail: String,
}

/// A call event as read back (in the order they happened).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct CallEvent {
    pub at: Timestamp,
    pub kind: String,
    pub detail: String,
}

/// Which calls [`crate::CallStore::list_calls`] returns (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    /// 0 means [`DEFAULT_LIMIT`]; capped at [`MAX_LIMIT`].
    pub limit: u32,
    pub sip_call_id: Option<String>,
    pub reference: Option<String>,
    /// Only calls started strictly before this (paging: pass the last row's `started_at`).
    pub started_before: Option<Timestamp>,
    /// Only calls started at or after this (`started_at >= started_since`: today's calls).
    pub started_since: Option<Timestamp>,
    /// `Some(true)`: only ended calls (`ended_at` set); `Some(false)`: only calls still going
    /// (no `ended_at` yet); `None`: both.
    pub ended: Option<bool>,
}

/// A recording as written, when its file is final (renamed, hashed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRecording {
    pub id: String,
    pub call_id: String,
    pub kind: RecordingKind,
    /// Path of the WAV file (relative to the data dir, or absolute).
    pub path: String,
    pub created_at: Timestamp,
    pub duration_ms: i64,
    pub bytes: i64,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    pub status: RecordingStatus,
    pub tags: Vec<String>,
    pub notes: String,
}

/// Changes to a recording's review: each `Some` field is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RecordingStatus>,
    /// Replaces the stored tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// A recording as read back; `language` is its call's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    pub id: String,
    pub call_id: String,
    pub kind: RecordingKind,
    pub path: String,
    pub created_at: Timestamp,
    pub duration_ms: i64,
    pub bytes: i64,
    pub sha256: String,
    pub status: RecordingStatus,
    pub tags: Vec<String>,
    pub notes: String,
    pub language: Option<String>,
}

/// Which recordings [`crate::CallStore::list_recordings`] returns (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingFilter {
    /// 0 means [`DEFAULT_LIMIT`]; capped at [`MAX_LIMIT`].
    pub limit: u32,
    pub status: Option<RecordingStatus>,
    pub kind: Option<RecordingKind>,
    /// The call's language.
    pub language: Option<String>,
    pub call_id: Option<String>,
    /// `created_at >= since`
    pub since: Option<Timestamp>,
    /// `created_at < until`
    pub until: Option<Timestamp>,
}

/// A console user (and an operator's softphone account).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    pub name: String,
    pub role: Role,
    /// Argon2 PHC string (`$argon2id$…`); hashing is the caller's.
    pub password_hash: String,
    /// Hex MD5(`name:realm:password`) for SIP digest auth (RFC 2617/8760).
    pub sip_ha1_md5: Option<String>,
    /// Hex SHA-256(`name:realm:password`) for SIP digest auth (RFC 8760).
    pub sip_ha1_sha256: Option<String>,
    /// Languages the user takes calls in.
    pub languages: Vec<String>,
    pub created_at: Timestamp,
}

/// A user as read back.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub password_hash: String,
    pub sip_ha1_md5: Option<String>,
    pub sip_ha1_sha256: Option<String>,
    pub languages: Vec<String>,
    pub disabled: bool,
    pub created_at: Timestamp,
}

/// Changes to a user: each `Some` field is set.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUpdate {
    pub role: Option<Role>,
    pub password_hash: Option<String>,
    pub sip_ha1_md5: Option<String>,
    pub sip_ha1_sha256: Option<String>,
    pub languages: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

// Secrets stay out of logs: the Debug of users shows only whether a hash is set.
fn redacted(v: &Option<String>) -> &'static str {
    if v.is_some() { "<set>" } else { "<none>" }
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password_hash", &"<set>")
            .field("sip_ha1_md5", &redacted(&self.sip_ha1_md5))
            .field("sip_ha1_sha256", &redacted(&self.sip_ha1_sha256))
            .field("languages", &self.languages)
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password_hash", &"<set>")
            .field("sip_ha1_md5", &redacted(&self.sip_ha1_md5))
            .field("sip_ha1_sha256", &redacted(&self.sip_ha1_sha256))
            .field("languages", &self.languages)
            .field("disabled", &self.disabled)
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl fmt::Debug for UserUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserUpdate")
            .field("role", &self.role)
            .field("password_hash", &redacted(&self.password_hash))
            .field("sip_ha1_md5", &redacted(&self.sip_ha1_md5))
            .field("sip_ha1_sha256", &redacted(&self.sip_ha1_sha256))
            .field("languages", &self.languages)
            .field("disabled", &self.disabled)
            .finish()
    }
}

/// The SHA-256 (hex) of an API token: the only form in which a token is stored or looked up.
/// Built from the token itself ([`TokenHash::of`]) or freshly with one ([`TokenHash::generate`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenHash(String);

impl TokenHash {
    /// The hash of a token presented by a client.
    pub fn of(token: &str) -> TokenHash {
        TokenHash(hex(&Sha256::digest(token.as_bytes())))
    }

    /// A new random token (`hl_` + 43 base64url characters, 256 bits) and its hash. Show the
    /// token once; store the hash.
    pub fn generate() -> (String, TokenHash) {
        use rand::RngCore;
        const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let mut token = String::from("hl_");
        let mut acc = 0u32;
        let mut bits = 0;
        for b in bytes {
            acc = (acc << 8) | u32::from(b);
            bits += 8;
            while bits >= 6 {
                bits -= 6;
                token.push(B64[((acc >> bits) & 63) as usize] as char);
            }
        }
        if bits > 0 {
            token.push(B64[((acc << (6 - bits)) & 63) as usize] as char);
        }
        let hash = TokenHash::of(&token);
        (token, hash)
    }

    /// A stored hash (64 lowercase hex digits).
    pub fn from_hex(hex: &str) -> Option<TokenHash> {
        (hex.len() == 64 && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| TokenHash(hex.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A token to store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApiToken {
    pub hash: TokenHash,
    /// The user the token acts as.
    pub user: String,
    /// What it is for (`backup script`, …).
    pub label: String,
    pub created_at: Timestamp,
}

/// A stored token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub hash: TokenHash,
    pub user: String,
    pub label: String,
    pub created_at: Timestamp,
}

/// One audit log line: who did what to which recording, when, from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAuditEntry {
    /// Makes a replayed write harmless (see [`crate::new_id`]).
    pub id: String,
    pub at: Timestamp,
    /// User name, if a user did it.
    pub user: Option<String>,
    /// `recording.audio`, `recording.update`, `user.add`, `token.create`, `login`, …
    pub action: String,
    pub recording_id: Option<String>,
    /// Client address (`ip:port`).
    pub source: Option<String>,
    pub detail: String,
}

/// An audit log line as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: String,
    pub at: Timestamp,
    pub user: Option<String>,
    pub action: String,
    pub recording_id: Option<String>,
    pub source: Option<String>,
    pub detail: String,
}

/// Which audit lines [`crate::CallStore::list_audit`] returns (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// 0 means [`DEFAULT_LIMIT`]; capped at [`MAX_LIMIT`].
    pub limit: u32,
    pub user: Option<String>,
    pub recording_id: Option<String>,
    /// Only lines with exactly this action (`login`, `recording.audio`, …).
    pub action: Option<String>,
    /// Only lines containing this text, case-insensitively, in the user, action, recording id,
    /// source or detail. A plain substring: `%` and `_` match themselves. Case folding is
    /// Unicode-aware on PostgreSQL, ASCII-only on SQLite.
    pub text: Option<String>,
    /// `at >= since`
    pub since: Option<Timestamp>,
    /// `at < until`
    pub until: Option<Timestamp>,
}

/// One bucket of [`crate::CallStore::daily_stats`]: the calls started on one day of the
/// hotline's time zone with one language and one disposition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyStat {
    /// The local day the calls started, `YYYY-MM-DD`.
    pub day: String,
    /// The calls' language (`None`: never chosen, e.g. hung up in the first menu).
    pub language: Option<String>,
    /// How the calls ended (`None`: not ended yet, or not recorded).
    pub disposition: Option<Disposition>,
    /// How many calls.
    pub calls: u64,
    /// How many of them waited in the operator queue (have a `queue_wait_ms`).
    pub queue_wait_count: u64,
    /// Sum of their queue waits, in milliseconds (0 when `queue_wait_count` is 0).
    pub queue_wait_ms_sum: i64,
    /// Longest of their queue waits, in milliseconds (0 when `queue_wait_count` is 0).
    pub queue_wait_ms_max: i64,
}

/// A console sign-in to store ([`crate::CallStore::create_session`]).
///
/// The cookie carries a secret token; only its hash is stored, so a copy of the database does
/// not let anyone sign in. Debug hides `csrf`.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSession {
    /// Hex SHA-256 of the cookie's secret token (the token itself is never stored).
    pub id_hash: String,
    /// The signed-in user's name (an existing user).
    pub user: String,
    /// The session's CSRF token, echoed by the console's forms.
    pub csrf: String,
    /// When the user signed in.
    pub created_at: Timestamp,
    /// The last request seen on this session (see [`crate::CallStore::touch_session`]).
    pub last_seen: Timestamp,
    /// Absolute end of the session (12 h after sign-in), whatever its activity.
    pub expires_at: Timestamp,
    /// Client address at sign-in (`ip:port`), if known.
    pub source: Option<String>,
}

/// A stored console sign-in, as read back. Debug hides `csrf`.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Session {
    /// Hex SHA-256 of the cookie's secret token.
    pub id_hash: String,
    /// The signed-in user's name.
    pub user: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// When the user signed in.
    pub created_at: Timestamp,
    /// The last request seen on this session.
    pub last_seen: Timestamp,
    /// Absolute end of the session.
    pub expires_at: Timestamp,
    /// Client address at sign-in (`ip:port`), if known.
    pub source: Option<String>,
}

impl fmt::Debug for NewSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSession")
            .field("id_hash", &self.id_hash)
            .field("user", &self.user)
            .field("csrf", &"<set>")
            .field("created_at", &self.created_at)
            .field("last_seen", &self.last_seen)
            .field("expires_at", &self.expires_at)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id_hash", &self.id_hash)
            .field("user", &self.user)
            .field("csrf", &"<set>")
            .field("created_at", &self.created_at)
            .field("last_seen", &self.last_seen)
            .field("expires_at", &self.expires_at)
            .field("source", &self.source)
            .finish()
    }
}

/// A case note to add to a call ([`crate::CallStore::add_call_note`]). `id` makes a replayed
/// write harmless (see [`crate::new_id`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCallNote {
    /// The note's id (a ULID from [`crate::new_id`]).
    pub id: String,
    /// The call the note is about.
    pub call_id: String,
    /// The user name of who wrote it.
    pub author: String,
    /// When it was written.
    pub at: Timestamp,
    /// The note (free text; may name people: show it only to those allowed to read the call).
    pub text: String,
}

/// A case note as read back ([`crate::CallStore::list_call_notes`], oldest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct CallNote {
    /// The note's id.
    pub id: String,
    /// The call the note is about.
    pub call_id: String,
    /// The user name of who wrote it.
    pub author: String,
    /// When it was written.
    pub at: Timestamp,
    /// The note.
    pub text: String,
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_as_text() {
        for d in Disposition::ALL {
            assert_eq!(d.as_str().parse::<Disposition>(), Ok(*d));
            assert_eq!(serde_json::to_string(d).unwrap(), format!("\"{d}\""));
        }
        for s in RecordingStatus::ALL {
            assert_eq!(s.as_str().parse::<RecordingStatus>(), Ok(*s));
        }
        assert!("Admin".parse::<Role>().is_err());
    }

    #[test]
    fn token_hash_is_sha256_hex() {
        assert_eq!(
            TokenHash::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let (token, hash) = TokenHash::generate();
        assert!(token.starts_with("hl_") && token.len() == 46, "{token}");
        assert_eq!(TokenHash::of(&token), hash);
        assert_eq!(TokenHash::from_hex(hash.as_str()), Some(hash));
        assert_eq!(TokenHash::from_hex("ABC"), None);
    }

    #[test]
    fn debug_hides_numbers_and_hashes() {
        let c = Caller::Number("987654321".into());
        assert!(!format!("{c:?}").contains("987"));
        let u = User {
            name: "ana".into(),
            role: Role::Operator,
            password_hash: "$argon2id$secret".into(),
            sip_ha1_md5: Some("abc".into()),
            sip_ha1_sha256: None,
            languages: vec!["es".into()],
            disabled: false,
            created_at: Timestamp::EPOCH,
        };
        let d = format!("{u:?}");
        assert!(!d.contains("argon2") && !d.contains("abc"), "{d}");
    }
}
