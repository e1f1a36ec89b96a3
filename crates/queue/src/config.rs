//! [`QueueConfig`]: the queue's timings, typed. The binary reads them from `hotline.toml`.

use std::time::Duration;

/// How the queue distributes calls. Every field has a named default
/// ([`QueueConfig::default`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// How long an offer rings before it is withdrawn ([`Event::CancelOffer`]) and counted
    /// as missed. At least one second (zero would re-ring at once for ever). Default
    /// [`QueueConfig::RING_TIMEOUT`].
    ///
    /// [`Event::CancelOffer`]: crate::Event::CancelOffer
    pub ring_timeout: Duration,
    /// How long a caller is offered only to operators who speak their language (while one
    /// is on duty) before anyone may take the call. Default [`QueueConfig::LANGUAGE_WAIT`].
    pub language_wait: Duration,
    /// Time after each conversation before the operator is offered the next call. Default
    /// [`QueueConfig::WRAP_UP`].
    pub wrap_up: Duration,
    /// Longest wait in the queue; then [`NoOperatorReason::MaxWait`] and the caller is offered
    /// the message path. Default [`QueueConfig::MAX_WAIT`].
    ///
    /// [`NoOperatorReason::MaxWait`]: crate::NoOperatorReason::MaxWait
    pub max_wait: Duration,
    /// A waiting caller is told their position this often (and whenever it changes).
    /// [`Duration::ZERO`]: only when it changes. Default [`QueueConfig::POSITION_EVERY`].
    pub position_every: Duration,
    /// Missed offers in a row (no answer, busy, unreachable) after which an operator is
    /// paused. `0` never pauses. Default [`QueueConfig::MISSED_OFFERS_BEFORE_PAUSE`].
    pub missed_offers_before_pause: u32,
}

impl QueueConfig {
    /// The shortest ring timeout used, whatever the configuration says.
    pub const MIN_RING_TIMEOUT: Duration = Duration::from_secs(1);
    /// 20 s: about five rings.
    pub const RING_TIMEOUT: Duration = Duration::from_secs(20);
    /// 30 s.
    pub const LANGUAGE_WAIT: Duration = Duration::from_secs(30);
    /// 30 s to write the notes of a call.
    pub const WRAP_UP: Duration = Duration::from_secs(30);
    /// 5 minutes, as the shipped flow's `max_wait_ms`.
    pub const MAX_WAIT: Duration = Duration::from_secs(300);
    /// 30 s.
    pub const POSITION_EVERY: Duration = Duration::from_secs(30);
    /// Two missed offers in a row.
    pub const MISSED_OFFERS_BEFORE_PAUSE: u32 = 2;
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            ring_timeout: Self::RING_TIMEOUT,
            language_wait: Self::LANGUAGE_WAIT,
            wrap_up: Self::WRAP_UP,
            max_wait: Self::MAX_WAIT,
            position_every: Self::POSITION_EVERY,
            missed_offers_before_pause: Self::MISSED_OFFERS_BEFORE_PAUSE,
        }
    }
}
