//! Safe callbacks: a caller asked to be called back ([`NewCallback`]), the hotline places the
//! call later ([`CallbackStore`]). The caller's number is kept only sealed (the binary encrypts
//! it; the store never sees it in clear) and only while the callback may still be placed: every
//! way a callback ends ([`CallbackStore::end_callback`]) sets the sealed number to NULL in the
//! same statement, and a check constraint refuses an ended row that still holds one.
//!
//! Two nodes may poll the same table: [`CallbackStore::claim_callback`] is one atomic `UPDATE …
//! WHERE state = 'pending' RETURNING`, so only one of them places a given attempt.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

use crate::error::StoreError;
use crate::model::{UnknownValue, text_enum};
use crate::time::Timestamp;

text_enum! {
    /// Where a callback is (the HTTP API's `state`).
    CallbackState {
        /// Waiting for its time (its window, its retry, a free operator).
        Pending = "pending",
        /// One node is placing an attempt now.
        Placing = "placing",
        /// The caller answered and talked to an operator.
        Done = "done",
        /// Every attempt went unanswered, busy or failed.
        #[serde(rename = "given-up")]
        GivenUp = "given-up",
        /// Its window or its expiry passed before anyone could be reached.
        Expired = "expired",
        /// A supervisor cancelled it.
        Cancelled = "cancelled",
    }
}

impl CallbackState {
    /// Whether the callback is over (its number deleted).
    pub fn is_final(self) -> bool {
        !matches!(self, CallbackState::Pending | CallbackState::Placing)
    }
}

/// A callback the caller confirmed. `number_sealed` is the caller's number encrypted by the
/// binary (nonce and ciphertext); it is never in clear here, nor in the spool.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCallback {
    pub id: String,
    /// The call in which the caller asked (its row id).
    pub call_id: String,
    /// The caller's pseudonym, linking the callback to the caller's other calls.
    pub pseudonym: Option<String>,
    /// The caller's language (`es`, `qu`), for the operator who calls back.
    pub language: Option<String>,
    /// `asap` or the name of a configured window.
    pub window: String,
    pub number_sealed: Vec<u8>,
    pub created_at: Timestamp,
    /// The first attempt, not before.
    pub next_at: Timestamp,
    /// No attempt from then on: the callback expires.
    pub expires_at: Timestamp,
}

impl fmt::Debug for NewCallback {
    // The sealed number stays out of debug output too.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewCallback")
            .field("id", &self.id)
            .field("call_id", &self.call_id)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// A callback as read back: never its number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Callback {
    pub id: String,
    pub call_id: String,
    /// The reference number of the original call (what the operator sees).
    pub reference: String,
    pub pseudonym: Option<String>,
    pub language: Option<String>,
    #[sqlx(rename = "window_name")]
    pub window: String,
    pub state: CallbackState,
    pub attempts: i64,
    pub created_at: Timestamp,
    pub next_at: Timestamp,
    pub expires_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub cancelled_by: Option<String>,
    /// Whether the sealed number is still stored (false once ended).
    pub has_number: bool,
}

/// A callback one node claimed for an attempt, with its sealed number.
#[derive(Clone, PartialEq, Eq)]
pub struct ClaimedCallback {
    pub callback: Callback,
    pub number_sealed: Vec<u8>,
}

impl fmt::Debug for ClaimedCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimedCallback")
            .field("callback", &self.callback)
            .finish_non_exhaustive()
    }
}

/// Callbacks in the store. Inserts come from the call path through the writer
/// ([`crate::Write::InsertCallback`]); the rest is the callback scheduler's and the console's.
#[async_trait]
pub trait CallbackStore: Send + Sync {
    /// Inserts a callback of an existing call (idempotent on the id).
    async fn insert_callback(&self, callback: &NewCallback) -> Result<(), StoreError>;

    /// One callback, ended or not.
    async fn get_callback(&self, id: &str) -> Result<Option<Callback>, StoreError>;

    /// Callbacks not ended yet (pending and placing), soonest `next_at` first.
    async fn open_callbacks(&self, limit: u32) -> Result<Vec<Callback>, StoreError>;

    /// Takes a pending callback for an attempt by `node` (state `placing`); `None` if it is not
    /// pending (another node took it, or it ended).
    async fn claim_callback(
        &self,
        id: &str,
        node: &str,
        now: Timestamp,
    ) -> Result<Option<ClaimedCallback>, StoreError>;

    /// An attempt of a claimed callback failed and another will follow: back to `pending`
    /// with `attempts` and `next_at`. Returns false if it was no longer `placing` (cancelled
    /// meanwhile).
    async fn retry_callback(
        &self,
        id: &str,
        attempts: i64,
        next_at: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Ends a callback (`state` final) and deletes its number in the same statement. Returns
    /// false if it had already ended. `attempts` (if given) is recorded too.
    async fn end_callback(
        &self,
        id: &str,
        state: CallbackState,
        attempts: Option<i64>,
        now: Timestamp,
        cancelled_by: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// Claims older than `claimed_before` (a node died while placing) go back to `pending`;
    /// returns how many.
    async fn release_stale_callbacks(&self, claimed_before: Timestamp) -> Result<u64, StoreError>;
}
