//! `record` and `saved` nodes: leave a message, hear it confirmed with its reference.
//!
//! A `record` node plays its instructions and the beep as one list (a key during the
//! instructions skips to the beep when `barge_in`), then sends [`Command::Record`]. The
//! shell ends the recording (finish key, silence, maximum length, hang-up) and reports
//! it; a message of at least `min_message_ms` goes to `next`, a shorter one to `short`.
//! A `saved` node reads the reference number digit by digit, twice. Keys typed ahead
//! before a `record` node are dropped: a `#` typed early must not end an empty message.

use std::sync::Arc;
use std::time::Instant;

use super::{Flow, Step};
use crate::{Command, EventKind, Node, RecordEnd, RecordNode, SavedNode};

/// A call in a `record` node.
#[derive(Debug)]
pub(super) struct Recording {
    node: String,
    phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Instructions and beep play.
    Instructions,
    /// The instructions were skipped; the beep plays.
    Beep,
    /// `Record` was sent.
    Recording,
}

impl Recording {
    pub(super) fn is_recording(&self) -> bool {
        self.phase == Phase::Recording
    }
}

impl Flow {
    pub(super) fn enter_record(&mut self, id: &str, node: &RecordNode) {
        self.typed.clear();
        self.step = Step::Record(Recording {
            node: id.to_owned(),
            phase: Phase::Instructions,
        });
        let list: Vec<&str> = node
            .prompts
            .iter()
            .map(String::as_str)
            .chain(node.beep.as_deref())
            .collect();
        self.play(&list, node.barge_in);
    }

    pub(super) fn record_key(&mut self, now: Instant) {
        let Step::Record(r) = &self.step else { return };
        if r.phase != Phase::Instructions {
            return;
        }
        let def = Arc::clone(&self.def);
        let Some(Node::Record(node)) = def.node(&r.node) else {
            return;
        };
        if !node.barge_in {
            return;
        }
        self.stop_playback();
        match &node.beep {
            Some(beep) => {
                if let Step::Record(r) = &mut self.step {
                    r.phase = Phase::Beep;
                }
                self.play(&[beep], false);
            }
            None => self.start_recording(now, node),
        }
    }

    pub(super) fn record_prompt_finished(&mut self, now: Instant) {
        let Step::Record(r) = &self.step else { return };
        if r.phase == Phase::Recording {
            return;
        }
        let def = Arc::clone(&self.def);
        if let Some(Node::Record(node)) = def.node(&r.node) {
            self.start_recording(now, node);
        }
    }

    fn start_recording(&mut self, now: Instant, node: &RecordNode) {
        let Step::Record(r) = &mut self.step else {
            return;
        };
        r.phase = Phase::Recording;
        let id = r.node.clone();
        self.out.push_back(Command::Record {
            max_ms: node.max_ms,
            silence_ms: node.silence_ms,
            finish_key: node.finish_key,
        });
        self.recording_since = Some(now);
        self.event(EventKind::RecordingStarted, id);
    }

    /// A recording ended, in whatever step (the cap may have stopped it).
    pub(super) fn recording_finished(&mut self, now: Instant, reason: RecordEnd, duration_ms: u64) {
        self.recording_since = None;
        self.message_ms = self.message_ms.max(duration_ms);
        self.event(
            EventKind::RecordingFinished,
            format!("{} {duration_ms}", reason.as_str()),
        );
        let Step::Record(r) = &self.step else { return };
        if r.phase != Phase::Recording {
            return;
        }
        let def = Arc::clone(&self.def);
        let Some(Node::Record(node)) = def.node(&r.node) else {
            return;
        };
        if reason == RecordEnd::HangUp {
            self.step = Step::Gone;
        } else if duration_ms >= def.min_message_ms() {
            self.go_to(now, &node.next);
        } else {
            self.go_to(now, node.short.as_deref().unwrap_or(&node.next));
        }
    }

    pub(super) fn enter_saved(&mut self, id: &str, node: &SavedNode) {
        self.step = Step::Saved {
            node: id.to_owned(),
        };
        let reference = self.reference.clone();
        let list: Vec<&str> = node
            .prompts
            .iter()
            .map(String::as_str)
            .chain([node.reference_prompt.as_str()])
            .chain(Self::digits(&reference))
            .chain([node.repeat_prompt.as_str()])
            .chain(Self::digits(&reference))
            .collect();
        self.play(&list, false);
    }
}
