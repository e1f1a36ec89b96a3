//! One operator queue for the whole hotline, behind the same
//! [`QueueHandle`](hotline_queue::QueueHandle) the one-process hotline uses.
//!
//! - `leader`: one node at a time (an advisory lock) runs the [`OperatorQueue`] and
//!   persists a checkpoint with every step.
//! - `client`: every node's handle: writes its calls' inputs to `queue_log`, reads its
//!   calls' events from `queue_outbox`, and answers snapshots from the checkpoint.
//! - `wire`: the JSON of both.
//!
//! [`OperatorQueue`]: hotline_queue::OperatorQueue

mod client;
mod leader;
mod wire;

use hotline_queue::{QueueConfig, QueueHandle};

use crate::Cluster;

/// Where nodes wake the leader after logging an input.
pub(crate) const INBOX_CHANNEL: &str = "hotline_queue_inbox";

/// Where the leader wakes `node` after telling it events.
pub(crate) fn node_channel(node: &str) -> String {
    format!("hotline_queue_{node}")
}

impl Cluster {
    /// This node's handle on the cluster's queue; also campaigns for its lead. Both run as
    /// tasks for as long as the runtime (or until every handle is dropped, for the client).
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn_queue(&self, config: QueueConfig) -> QueueHandle {
        let (handle, requests) = hotline_queue::channel();
        tokio::spawn(client::run(self.clone(), config.clone(), requests));
        tokio::spawn(leader::campaign(self.clone(), config));
        handle
    }
}
