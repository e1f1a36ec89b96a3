//! [`QueueError`], the crate's one error type.

/// Why the queue could not take a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The queue task has stopped (shutdown, or it panicked).
    #[error("operator queue not running")]
    NotRunning,
}
