//! Writes as data: what the call path hands the [`crate::StoreWriter`], what its spool keeps, and
//! the [`OpSink`] a store applies them through.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::model::{
    CallUpdate, NewAuditEntry, NewCall, NewCallEvent, NewRecording, RecordingUpdate,
};
use crate::time::Timestamp;

/// One write. Inserts carry their row's id, so a replay inserts nothing twice; updates set
/// fields (no increments), so a replay in order ends in the same state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Write {
    InsertCall(NewCall),
    UpdateCall {
        id: String,
        update: CallUpdate,
    },
    AddCallEvent(NewCallEvent),
    InsertRecording(NewRecording),
    UpdateRecording {
        id: String,
        update: RecordingUpdate,
    },
    AppendAudit(NewAuditEntry),
    /// A callback the caller confirmed (its number sealed).
    InsertCallback(crate::callback::NewCallback),
    /// Closes the calls a stopped run left open: those of `node` (`None`: the one-process
    /// hotline's) that started before `before` (the new run's start, so none of its calls)
    /// and have no end. Each gets an `interrupted` event with `detail` at its last trace (its
    /// latest event, else its start), that time as its end, and the disposition
    /// `interrupted` unless it had one already. Replayed, it finds nothing more to close.
    CloseInterrupted {
        node: Option<String>,
        before: Timestamp,
        detail: String,
    },
}

impl Write {
    /// The variant's name, for logs (no data: numbers never reach logs).
    pub fn name(&self) -> &'static str {
        match self {
            Write::InsertCall(_) => "insert_call",
            Write::UpdateCall { .. } => "update_call",
            Write::AddCallEvent(_) => "add_call_event",
            Write::InsertRecording(_) => "insert_recording",
            Write::UpdateRecording { .. } => "update_recording",
            Write::AppendAudit(_) => "append_audit",
            Write::InsertCallback(_) => "insert_callback",
            Write::CloseInterrupted { .. } => "close_interrupted",
        }
    }
}

/// A write with its unique op id. The store records applied op ids (table `applied_ops`) in the
/// same transaction as the write and skips an op id it has seen: a batch replayed after a commit
/// whose acknowledgement was lost is applied exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub op_id: String,
    pub op: Write,
}

/// A batch that failed: which op (if the error belongs to one) and why.
#[derive(Debug, thiserror::Error)]
#[error("batch failed at op {index:?}: {error}")]
pub struct BatchError {
    /// Index in the batch of the op that failed; `None` if the transaction as a whole failed
    /// (begin, commit, connection).
    pub index: Option<usize>,
    pub error: StoreError,
}

impl BatchError {
    pub(crate) fn whole(error: StoreError) -> BatchError {
        BatchError { index: None, error }
    }
}

/// What the writer needs of a store: apply a batch in one transaction, reserve reference numbers,
/// prune its bookkeeping. [`crate::CallStore`] extends it; tests wrap it to count or fail.
#[async_trait]
pub trait OpSink: Send + Sync + std::fmt::Debug {
    /// Applies `ops` in order in one transaction (all or nothing), skipping op ids already
    /// applied. `now` stamps the op-id ledger.
    async fn apply_batch(&self, ops: &[Envelope], now: Timestamp) -> Result<(), BatchError>;

    /// Reserves up to `n` reference numbers no call uses and nobody else has reserved, for
    /// handing out without asking the database (see [`crate::WriterHandle::insert_call`]).
    async fn reserve_references(&self, n: usize, now: Timestamp)
    -> Result<Vec<String>, StoreError>;

    /// Deletes op-id ledger rows and unused reservations older than `before`; returns how many.
    async fn prune(&self, before: Timestamp) -> Result<u64, StoreError>;
}
