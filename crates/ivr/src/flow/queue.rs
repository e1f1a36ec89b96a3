//! `enqueue` nodes: wait for an operator.
//!
//! Entering sends [`Command::Enqueue`] at once (the caller's place counts from then) and
//! plays the node's prompts; then the `hold` prompt loops. At the end of each loop, if
//! the queue reported the position since it was last said (it does when the position
//! changes, and again every so often), `position_prompt` and the position (digit by
//! digit) come first. An operator answering ends the flow's part (the caller talks to
//! a person, and the call-length cap no longer applies); no operator, or `max_wait_ms`
//! passed, goes to `unavailable`. A key of the node's `options` leaves the queue for its
//! node (the caller would rather leave a message); other keys are logged and ignored.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Flow, Step};
use crate::{Command, EnqueueNode, EventKind, Node};

/// A call in an `enqueue` node.
#[derive(Debug)]
pub(super) struct Waiting {
    node: String,
    /// `max_wait_ms` after entering.
    deadline: Option<Instant>,
    /// The last position the queue reported.
    position: Option<u32>,
    /// A report not said to the caller yet.
    fresh: bool,
}

impl Waiting {
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

impl Flow {
    pub(super) fn enter_queue(&mut self, now: Instant, id: &str, node: &EnqueueNode) {
        self.typed.clear();
        self.step = Step::Queue(Waiting {
            node: id.to_owned(),
            deadline: node.max_wait_ms.map(|ms| now + Duration::from_millis(ms)),
            position: None,
            fresh: false,
        });
        self.out.push_back(Command::Enqueue { lang: self.lang });
        self.queued = true;
        let offer: &[String] = if self.callback_offer {
            &node.callback_prompts
        } else {
            &[]
        };
        let list: Vec<&str> = node
            .prompts
            .iter()
            .chain(offer)
            .map(String::as_str)
            .collect();
        if !self.play(&list, false) {
            self.hold();
        }
    }

    /// Plays the next hold loop, after the position if it changed.
    pub(super) fn hold(&mut self) {
        let Step::Queue(w) = &mut self.step else {
            return;
        };
        let def = Arc::clone(&self.def);
        let Some(Node::Enqueue(node)) = def.node(&w.node) else {
            return;
        };
        let position = w.position.filter(|_| w.fresh);
        let position = node.position_prompt.as_deref().zip(position);
        if position.is_some() {
            w.fresh = false;
        }
        let number = position.map(|(_, p)| p.to_string()).unwrap_or_default();
        let list: Vec<&str> = position
            .map(|(prompt, _)| prompt)
            .into_iter()
            .chain(Self::digits(&number))
            .chain(node.hold.as_deref())
            .collect();
        self.play(&list, false);
    }

    pub(super) fn queue_update(&mut self, position: u32) {
        self.event(EventKind::QueuePosition, position.to_string());
        if let Step::Queue(w) = &mut self.step {
            w.position = Some(position);
            w.fresh = true;
        }
        // Nothing plays (no hold prompt): say the new position now.
        if !self.playing {
            self.hold();
        }
    }

    pub(super) fn operator_answered(&mut self) {
        self.event(EventKind::OperatorAnswered, "");
        self.queued = false;
        self.operator = true;
        self.cap_at = None;
        let notice = match &self.step {
            Step::Queue(w) => match self.def.node(&w.node) {
                Some(Node::Enqueue(n)) => n.connected_prompts.clone(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        self.step = Step::Connected;
        if self.play(&notice, false) {
            // `Bridge` once the caller has heard the notice.
            self.bridge_pending = true;
        } else {
            self.stop_playback();
            self.out.push_back(Command::Bridge);
        }
    }

    /// The notice before the conversation finished: connect.
    pub(super) fn connected_prompt_finished(&mut self) {
        if std::mem::take(&mut self.bridge_pending) {
            self.out.push_back(Command::Bridge);
        }
    }

    pub(super) fn operator_unavailable(&mut self, now: Instant) {
        self.event(EventKind::OperatorUnavailable, "");
        self.queued = false;
        self.stop_playback();
        self.unavailable(now);
    }

    pub(super) fn queue_timeout(&mut self, now: Instant) {
        self.event(EventKind::QueueTimeout, "");
        self.queued = false;
        self.out.push_back(Command::LeaveQueue);
        self.stop_playback();
        self.unavailable(now);
    }

    fn unavailable(&mut self, now: Instant) {
        let Step::Queue(w) = &self.step else { return };
        let def = Arc::clone(&self.def);
        if let Some(Node::Enqueue(node)) = def.node(&w.node) {
            self.go_to(now, &node.unavailable);
        }
    }

    /// A key while waiting: one of the node's `options` leaves the queue for its node.
    pub(super) fn queue_key(&mut self, now: Instant, key: char) {
        let Step::Queue(w) = &self.step else { return };
        let def = Arc::clone(&self.def);
        let Some(Node::Enqueue(node)) = def.node(&w.node) else {
            return;
        };
        let Some(to) = node.options.get(&key) else {
            return;
        };
        if matches!(def.node(to), Some(Node::Callback(_))) && !self.callback_offer {
            // Not offered to this caller: the key means nothing here.
            return;
        }
        self.event(EventKind::LeftQueue, key.to_string());
        self.queued = false;
        self.out.push_back(Command::LeaveQueue);
        self.stop_playback();
        self.go_to(now, to);
    }
}
