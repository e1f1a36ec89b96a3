//! [`Flow`]: one call going through a [`FlowDef`], as a pure state machine.
//!
//! One file per kind of step, each with the same sections (enter, key, prompt finished,
//! timeout): `choice` for `menu` and `language` nodes, `record` for `record` and
//! `saved`, `queue` for `enqueue`. The small kinds (`play`, `hangup`, `goto`) and what
//! every step shares (playing, the call-length cap, the end of the call) live here.

mod choice;
mod queue;
mod record;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::def::DIGIT_PROMPTS;
use crate::key::dtmf;
use crate::{
    Command, Disposition, EventKind, FlowDef, HangUpNode, Input, Lang, Mark, Node, PromptRef,
};

/// Nodes entered without any input in between before the flow calls itself broken (a
/// loop of `goto` nodes). Keys typed ahead may legitimately walk through a few menus.
const MAX_HOPS: u32 = 64;

/// Keys kept while the caller types ahead; more are dropped.
const MAX_TYPED: usize = 16;

/// A `hangup` node hangs up this long after it began even if its prompts never report
/// finished: the call-length cap stays hard.
pub const HANGUP_GRACE: Duration = Duration::from_secs(30);

/// One call's flow. Sans-IO: the shell feeds [`Input`]s and timeouts with the current
/// time and carries out the [`Command`]s; nothing here reads a clock or does I/O.
///
/// ```text
/// flow.handle(now, input);  or  flow.handle_timeout(now);
/// while let Some(c) = flow.poll_command() { /* play, record, enqueue, hang up, log */ }
/// let wake_at = flow.poll_timeout();   // call handle_timeout then
/// ```
///
/// Guarantees:
/// - at most one play list at a time: a new `Play` comes after `StopPlayback` if the last
///   one had not finished;
/// - keys pressed while a prompt without barge-in plays are kept (up to 16) and taken by
///   the next menu, which then does not play its prompts: a caller who knows the menu can
///   type `2` `2`;
/// - exactly one [`Command::Outcome`], last, whether the caller hangs up
///   ([`Input::HungUp`]), the flow does ([`Command::HangUp`]) or the flow breaks; after
///   it every input is ignored.
#[derive(Debug)]
pub struct Flow {
    def: Arc<FlowDef>,
    reference: String,
    /// When the call-length cap strikes; `None` once it struck, after an operator answered
    /// and after the end.
    cap_at: Option<Instant>,
    /// The language prompts are played in.
    lang: Lang,
    /// The language the caller chose or defaulted to.
    chosen: Option<Lang>,
    step: Step,
    /// A `Play` was sent and has neither finished nor been stopped.
    playing: bool,
    /// A `Record` was sent at this time and has not finished.
    recording_since: Option<Instant>,
    /// An `Enqueue` was sent and the call has not left the queue.
    queued: bool,
    /// An operator answered and the notice plays: `Bridge` when it ends.
    bridge_pending: bool,
    /// An operator answered.
    operator: bool,
    /// Longest recording so far.
    message_ms: u64,
    /// The flow broke.
    failed: bool,
    /// The caller pressed the quick-exit key.
    quick_exited: bool,
    /// The caller pressed a key (any, anywhere).
    pressed: bool,
    /// Speech was heard ([`Input::Speech`]).
    spoke: bool,
    /// A callback can be offered ([`Flow::set_callback_offer`]).
    callback_offer: bool,
    /// The shell said a callback of this call is booked ([`Input::CallbackBooked`]).
    callback_booked: bool,
    /// Keys typed ahead.
    typed: VecDeque<char>,
    /// Nodes entered, for the outcome.
    path: Vec<String>,
    /// Nodes entered since the last input.
    hops: u32,
    out: VecDeque<Command>,
}

/// Where the call is.
#[derive(Debug)]
enum Step {
    /// Before [`Input::Answered`].
    Ringing,
    /// A `play` node's prompts.
    Play { node: String },
    /// A `menu` or `language` node.
    Choice(choice::Choice),
    /// A last prompt (no input, invalid option) before going to `next`.
    Then { next: String },
    /// A `record` node.
    Record(record::Recording),
    /// A `saved` node's confirmation and reference number.
    Saved { node: String },
    /// An `enqueue` node: waiting for an operator.
    Queue(queue::Waiting),
    /// A `callback` node's confirmed booking: waiting (in silence) for the shell's
    /// [`Input::CallbackBooked`] or [`Input::CallbackFailed`] until `until`.
    Booking {
        node: String,
        window: String,
        until: Instant,
    },
    /// An operator answered; the caller talks to a person until someone hangs up.
    Connected,
    /// A `hangup` node's prompts, then hang up (at the latest at `deadline`).
    HangingUp { deadline: Instant },
    /// The quick-exit key was pressed: the decoy loops until `until`, then hang up.
    QuickExit { until: Instant },
    /// A recording ended because the caller hung up; [`Input::HungUp`] follows.
    Gone,
    /// The outcome was emitted.
    Ended,
}

impl Flow {
    /// A new call, created when the call is answered or about to be. `reference` is the
    /// number the store gave the call; the flow reads its digits to the caller after a
    /// message (other characters are skipped). The call-length cap counts from `now`.
    pub fn new(def: Arc<FlowDef>, now: Instant, reference: String) -> Self {
        let cap_at = now.checked_add(Duration::from_millis(def.max_call_ms()));
        Self {
            lang: def.language(),
            def,
            reference,
            cap_at,
            chosen: None,
            step: Step::Ringing,
            playing: false,
            recording_since: None,
            queued: false,
            bridge_pending: false,
            operator: false,
            message_ms: 0,
            failed: false,
            quick_exited: false,
            pressed: false,
            spoke: false,
            callback_offer: false,
            callback_booked: false,
            typed: VecDeque::new(),
            path: Vec::new(),
            hops: 0,
            out: VecDeque::new(),
        }
    }

    /// Something happened on the call at `now`.
    pub fn handle(&mut self, now: Instant, input: Input) {
        if matches!(self.step, Step::Ended) {
            return;
        }
        self.hops = 0;
        match input {
            Input::Answered => {
                if matches!(self.step, Step::Ringing) {
                    let def = Arc::clone(&self.def);
                    self.go_to(now, def.start());
                }
            }
            Input::Digit(c) => {
                if let Some(key) = dtmf(c) {
                    if !matches!(self.step, Step::Ringing) {
                        self.pressed = true;
                    }
                    self.key(now, key);
                }
            }
            Input::Speech => self.spoke = true,
            Input::PromptFinished => {
                if self.playing {
                    self.playing = false;
                    self.prompt_finished(now);
                }
            }
            Input::RecordingFinished {
                reason,
                duration_ms,
            } => {
                self.recording_finished(now, reason, duration_ms);
            }
            Input::QueueUpdate { position } => {
                if self.queued {
                    self.queue_update(position);
                }
            }
            Input::OperatorAnswered => {
                if self.queued {
                    self.operator_answered();
                }
            }
            Input::OperatorUnavailable => {
                if self.queued {
                    self.operator_unavailable(now);
                }
            }
            Input::CallbackBooked => {
                if matches!(self.step, Step::Booking { .. }) {
                    self.callback_booked(now);
                }
            }
            Input::CallbackFailed => {
                if matches!(self.step, Step::Booking { .. }) {
                    self.callback_failed(now, "refused");
                }
            }
            Input::HungUp => self.hung_up(now),
        }
    }

    /// Fires every deadline due at `now` (see [`Flow::poll_timeout`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.hops = 0;
        // Each round moves or clears the deadline it fired; the bound is a safeguard.
        for _ in 0..MAX_HOPS {
            let Some(at) = self.poll_timeout().filter(|&at| at <= now) else {
                break;
            };
            if self.cap_at == Some(at) {
                self.max_call_length(now);
                continue;
            }
            match &self.step {
                Step::Choice(_) => self.choice_timeout(now),
                Step::Queue(_) => self.queue_timeout(now),
                Step::Booking { .. } => self.booking_timeout(now),
                Step::HangingUp { .. } | Step::QuickExit { .. } => self.hang_up(),
                _ => break,
            }
        }
    }

    /// The next thing for the shell to do.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.out.pop_front()
    }

    /// When [`Flow::handle_timeout`] must be called; `None`: only inputs move the flow.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let step = match &self.step {
            Step::Choice(c) => c.deadline(),
            Step::Queue(w) => w.deadline(),
            Step::Booking { until, .. } => Some(*until),
            Step::HangingUp { deadline } => Some(*deadline),
            Step::QuickExit { until } => Some(*until),
            Step::Ended => return None,
            _ => None,
        };
        match (self.cap_at, step) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The outcome was emitted; the shell may drop the flow once the commands are drained.
    pub fn is_ended(&self) -> bool {
        matches!(self.step, Step::Ended)
    }

    /// The language the caller chose or defaulted to, if any yet.
    pub fn language(&self) -> Option<Lang> {
        self.chosen
    }

    /// Whether a callback can be offered to this caller (a number was presented and the
    /// hotline places callbacks); false until the shell says so. Without it a `callback`
    /// node goes straight to `declined`, and a queue key leading to one is ignored.
    pub fn set_callback_offer(&mut self, possible: bool) {
        self.callback_offer = possible;
    }

    /// The caller pressed the quick-exit key (the decoy plays or played).
    pub fn quick_exited(&self) -> bool {
        self.quick_exited
    }

    // --- Moving between nodes ---------------------------------------------------------

    /// Enters node `id`.
    fn go_to(&mut self, now: Instant, id: &str) {
        self.hops += 1;
        if self.hops > MAX_HOPS {
            return self.fail(now, format!("{MAX_HOPS} nodes without input, at `{id}`"));
        }
        let def = Arc::clone(&self.def);
        let Some(node) = def.node(id) else {
            return self.fail(now, format!("no node `{id}`"));
        };
        self.event(EventKind::Node, id);
        if !matches!(node, Node::Goto(_)) {
            self.path.push(id.to_owned());
        }
        match node {
            Node::Play(n) => {
                self.step = Step::Play {
                    node: id.to_owned(),
                };
                self.play(&n.prompts, n.barge_in);
            }
            Node::Language(_) | Node::Menu(_) | Node::Question(_) | Node::Callback(_) => {
                self.enter_choice(now, id)
            }
            Node::Record(n) => self.enter_record(id, n),
            Node::Saved(n) => self.enter_saved(id, n),
            Node::Enqueue(n) => self.enter_queue(now, id, n),
            Node::HangUp(n) => self.enter_hang_up(now, n),
            Node::Goto(n) => self.go_to(now, &n.next),
        }
    }

    fn enter_hang_up(&mut self, now: Instant, node: &HangUpNode) {
        self.step = Step::HangingUp {
            deadline: now + HANGUP_GRACE,
        };
        if !self.play(&node.prompts, false) {
            self.hang_up();
        }
    }

    /// A key, already upper case.
    fn key(&mut self, now: Instant, key: char) {
        if self.def.quick_exit().is_some_and(|q| q.key == key)
            && !matches!(
                self.step,
                Step::Ringing | Step::Connected | Step::Gone | Step::Ended | Step::QuickExit { .. }
            )
        {
            return self.quick_exit(now);
        }
        match &self.step {
            // Keys during a recording or a conversation are the caller's business.
            Step::Ringing | Step::Connected | Step::Gone | Step::Ended => return,
            Step::QuickExit { .. } => return,
            Step::Record(r) if r.is_recording() => return,
            _ => {}
        }
        self.event(EventKind::Digit, key.to_string());
        match &self.step {
            Step::Play { node } => {
                let def = Arc::clone(&self.def);
                let Some(Node::Play(play)) = def.node(node) else {
                    return;
                };
                self.type_ahead(key);
                if play.barge_in {
                    self.stop_playback();
                    self.go_to(now, &play.next);
                }
            }
            Step::Choice(_) => self.choice_key(now, key),
            Step::Record(_) => self.record_key(now),
            Step::Then { .. } | Step::Saved { .. } | Step::Booking { .. } => self.type_ahead(key),
            Step::Queue(_) => self.queue_key(now, key),
            // Hanging up: no menu to type ahead into.
            Step::HangingUp { .. } => {}
            Step::Ringing | Step::Connected | Step::Gone | Step::Ended | Step::QuickExit { .. } => {
            }
        }
    }

    fn type_ahead(&mut self, key: char) {
        if self.typed.len() < MAX_TYPED {
            self.typed.push_back(key);
        }
    }

    fn prompt_finished(&mut self, now: Instant) {
        match &self.step {
            Step::Play { node } | Step::Saved { node } => {
                let def = Arc::clone(&self.def);
                match def.node(node) {
                    Some(Node::Play(n)) => self.go_to(now, &n.next),
                    Some(Node::Saved(n)) => self.go_to(now, &n.next),
                    _ => {}
                }
            }
            Step::Then { next } => {
                let next = next.clone();
                self.go_to(now, &next);
            }
            Step::Choice(_) => self.choice_prompt_finished(now),
            Step::Record(_) => self.record_prompt_finished(now),
            Step::Queue(_) => self.hold(),
            Step::HangingUp { .. } => self.hang_up(),
            Step::QuickExit { .. } => self.play_decoy(),
            Step::Connected => self.connected_prompt_finished(),
            // Nothing plays while a booking is awaited.
            Step::Ringing | Step::Booking { .. } | Step::Gone | Step::Ended => {}
        }
    }

    // --- Shared by every step ---------------------------------------------------------

    /// Plays `prompts` in the call's language, stopping what plays. Returns false (and
    /// plays nothing) for an empty list.
    fn play<S: AsRef<str>>(&mut self, prompts: &[S], barge_in: bool) -> bool {
        self.stop_playback();
        if prompts.is_empty() {
            return false;
        }
        let prompts = prompts
            .iter()
            .map(|id| PromptRef {
                lang: self.lang,
                id: id.as_ref().to_owned(),
            })
            .collect();
        self.out.push_back(Command::Play { prompts, barge_in });
        self.playing = true;
        true
    }

    fn stop_playback(&mut self) {
        if self.playing {
            self.playing = false;
            self.out.push_back(Command::StopPlayback);
        }
    }

    fn set_language(&mut self, lang: Lang, how: &str) {
        self.lang = lang;
        self.chosen = Some(lang);
        self.event(EventKind::Language, format!("{lang} {how}"));
    }

    fn event(&mut self, kind: EventKind, detail: impl Into<String>) {
        self.out.push_back(Command::Event {
            kind,
            detail: detail.into(),
        });
    }

    /// The digit prompts that read the ASCII digits of `number`.
    fn digits(number: &str) -> impl Iterator<Item = &str> {
        number
            .bytes()
            .filter(u8::is_ascii_digit)
            .map(|b| DIGIT_PROMPTS[usize::from(b - b'0')])
    }

    // --- Quick exit -------------------------------------------------------------------

    /// The quick-exit key: stop everything (a recording is kept), leave the queue, and
    /// play the decoy until the caller hangs up or `max_ms` passed. Nothing after this
    /// mentions the hotline: no prompt of a node, no goodbye at the call-length cap.
    fn quick_exit(&mut self, now: Instant) {
        let Some(max_ms) = self.def.quick_exit().map(|q| q.max_ms) else {
            return;
        };
        let at = self.path.last().cloned().unwrap_or_default();
        self.event(EventKind::QuickExit, at);
        self.quick_exited = true;
        self.stop_all(now);
        self.typed.clear();
        self.bridge_pending = false;
        self.cap_at = None;
        self.step = Step::QuickExit {
            until: now + Duration::from_millis(max_ms),
        };
        self.play_decoy();
    }

    fn play_decoy(&mut self) {
        let def = Arc::clone(&self.def);
        if let Some(q) = def.quick_exit() {
            self.play(&q.decoy, false);
        }
    }

    // --- The end of the call ----------------------------------------------------------

    /// `max_call_ms` passed: stop everything, play the `on_max_call` node, hang up.
    fn max_call_length(&mut self, now: Instant) {
        self.cap_at = None;
        self.event(EventKind::MaxCallLength, self.def.max_call_ms().to_string());
        match self.step {
            // Already saying goodbye: it ends by itself, at the latest at its deadline.
            Step::HangingUp { .. } => return,
            // Nobody to say goodbye to.
            Step::Ringing | Step::Gone => {
                self.stop_all(now);
                return self.hang_up();
            }
            _ => self.stop_all(now),
        }
        let def = Arc::clone(&self.def);
        match def.node(def.on_max_call()) {
            Some(Node::HangUp(_)) => self.go_to(now, def.on_max_call()),
            _ => self.hang_up(),
        }
    }

    /// Stops playback, recording and waiting in the queue.
    fn stop_all(&mut self, now: Instant) {
        self.stop_playback();
        if let Some(since) = self.recording_since.take() {
            self.out.push_back(Command::StopRecording);
            self.note_recording(since, now);
        }
        if self.queued {
            self.queued = false;
            self.out.push_back(Command::LeaveQueue);
        }
    }

    /// A recording that ended without a report: count the time since it started.
    fn note_recording(&mut self, since: Instant, now: Instant) {
        let ms =
            u64::try_from(now.saturating_duration_since(since).as_millis()).unwrap_or(u64::MAX);
        self.message_ms = self.message_ms.max(ms);
    }

    /// The flow broke: end the call as `failed` (unless it already came to something).
    fn fail(&mut self, now: Instant, detail: String) {
        self.event(EventKind::Error, detail);
        self.failed = true;
        self.stop_all(now);
        self.hang_up();
    }

    /// The flow hangs up.
    fn hang_up(&mut self) {
        self.event(EventKind::HangUp, "");
        self.out.push_back(Command::HangUp);
        self.finish();
    }

    /// The caller hung up.
    fn hung_up(&mut self, now: Instant) {
        self.event(EventKind::HungUp, "");
        if let Some(since) = self.recording_since.take() {
            self.note_recording(since, now);
        }
        if self.queued {
            self.queued = false;
            self.out.push_back(Command::LeaveQueue);
        }
        self.finish();
    }

    /// Emits the one outcome.
    fn finish(&mut self) {
        let disposition = if self.operator {
            Disposition::Operator
        } else if self.message_ms > 0 && self.message_ms >= self.def.min_message_ms() {
            Disposition::Message
        } else if self.failed {
            Disposition::Failed
        } else {
            Disposition::Abandoned
        };
        let mut marks = Vec::new();
        if self.quick_exited {
            marks.push(Mark::QuickExit);
        }
        if !self.path.is_empty() && !self.pressed && !self.spoke && !self.operator {
            marks.push(Mark::Silent);
        }
        if self.callback_booked {
            marks.push(Mark::Callback);
        }
        self.out.push_back(Command::Outcome {
            disposition,
            language: self.chosen,
            path: std::mem::take(&mut self.path),
            reference: self.reference.clone(),
            marks,
        });
        self.step = Step::Ended;
        self.cap_at = None;
        self.playing = false;
    }
}
