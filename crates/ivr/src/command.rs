//! What the flow tells the shell: [`Command`], and the call's [`Disposition`].

use std::fmt;

use crate::Lang;

/// One prompt to play: the file `<prompts_dir>/<lang>/<id>.wav`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PromptRef {
    /// The language directory.
    pub lang: Lang,
    /// The prompt id of `prompts/prompts.toml` (file name without `.wav`).
    pub id: String,
}

/// Something the shell must do, taken with [`Flow::poll_command`](crate::Flow::poll_command)
/// in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Play these prompts back to back, then send [`Input::PromptFinished`](crate::Input::PromptFinished)
    /// once. The flow never sends a `Play` while another is playing without a
    /// [`Command::StopPlayback`] before it.
    Play {
        /// The play list.
        prompts: Vec<PromptRef>,
        /// A key press interrupts this list. The flow itself emits `StopPlayback` when it
        /// takes the key; the flag lets the shell cut the audio at the start of the tone.
        barge_in: bool,
    },
    /// Stop the play list now; no `PromptFinished` for it.
    StopPlayback,
    /// Start recording the caller. The beep is not part of this: the flow plays it as a
    /// prompt (`beep`) just before, so the tone is swappable like any prompt, checked by
    /// `hotline check`, and not in the message. The shell ends the recording on
    /// `finish_key`, `silence_ms` of silence, `max_ms` or hang-up, and reports
    /// [`Input::RecordingFinished`](crate::Input::RecordingFinished). Keys pressed while
    /// recording need not reach the flow; it ignores them.
    Record {
        /// Longest recording.
        max_ms: u64,
        /// End after this much continuous silence; `None`: never on silence.
        silence_ms: Option<u64>,
        /// The key that ends the recording; `None`: no key does.
        finish_key: Option<char>,
    },
    /// Stop the running recording and keep what was recorded (call-length cap).
    StopRecording,
    /// Put the call in the operator queue, for an operator who speaks `lang`. The shell
    /// reports [`Input::QueueUpdate`](crate::Input::QueueUpdate),
    /// [`Input::OperatorAnswered`](crate::Input::OperatorAnswered) or
    /// [`Input::OperatorUnavailable`](crate::Input::OperatorUnavailable). The flow plays
    /// the hold music and position announcements itself.
    Enqueue {
        /// The caller's language.
        lang: Lang,
    },
    /// An operator answered and the caller heard the `enqueue` node's
    /// `connected_prompts` (the recording notice): connect the caller to the operator
    /// now. The flow plays nothing more; the conversation is the shell's.
    Bridge,
    /// Take the call out of the queue (the flow gave up waiting, the call-length cap, or
    /// the caller hung up). After this, queue inputs are ignored.
    LeaveQueue,
    /// Hang up the call (BYE). [`Command::Outcome`] follows at once.
    HangUp,
    /// The caller answered a `question` node with a key: store it with the call and show
    /// it to operators.
    Answer {
        /// What was asked (the node's `question`).
        question: String,
        /// The answer (the value of the key in the node's `answers`).
        answer: String,
    },
    /// The caller confirmed a callback: book it (the shell holds the number; the flow
    /// never sees it), and answer [`Input::CallbackBooked`](crate::Input::CallbackBooked)
    /// once the booking is durably written or
    /// [`Input::CallbackFailed`](crate::Input::CallbackFailed). The flow waits for that,
    /// at most the node's `booking_timeout_ms`, before it tells the caller anything;
    /// after that time it sends [`Command::DropCallback`].
    Callback {
        /// `asap` or the name of a window of hotline.toml's `[callback]`.
        window: String,
    },
    /// The flow stopped waiting for the booking of the last [`Command::Callback`]
    /// (`booking_timeout_ms` passed) and told the caller it failed: a booking that still
    /// lands must be ended at once (cancelled), never placed.
    DropCallback,
    /// The call is over: what it came to. Emitted exactly once per call, last.
    Outcome {
        /// What the call came to.
        disposition: Disposition,
        /// The language the caller chose (or defaulted to); `None` if the call ended before.
        language: Option<Lang>,
        /// The nodes the call went through, in order (`goto` nodes left out).
        path: Vec<String>,
        /// The call's reference number, as given to [`Flow::new`](crate::Flow::new).
        reference: String,
        /// What else is known of the call, for statistics and the console.
        marks: Vec<Mark>,
    },
    /// A line for the call's event log. Never holds the caller's number (the flow never
    /// sees it) nor keys pressed during a recording.
    Event {
        /// What happened.
        kind: EventKind,
        /// The node, key or figure concerned.
        detail: String,
    },
}

/// What a call came to, as the store and the API name it (`disposition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// The caller left a message of at least `min_message_ms`.
    Message,
    /// The caller talked to an operator (wins over `Message`).
    Operator,
    /// The caller left (or the call-length cap ended the call) with neither.
    Abandoned,
    /// The call was refused before the flow ran (set by the shell, never by the flow).
    Rejected,
    /// The flow broke (unknown node, a loop of `goto` nodes) with neither a message nor an
    /// operator.
    Failed,
}

impl Disposition {
    /// The name stored with the call.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Operator => "operator",
            Self::Abandoned => "abandoned",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something the call is marked with at its end ([`Command::Outcome`]), beside its
/// disposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Mark {
    /// The caller pressed the quick-exit key: the decoy played.
    QuickExit,
    /// The caller pressed no key and no speech was heard, from the answer to the end
    /// (not after an operator answered). Such calls are counted, never blocked: victims
    /// often call silently several times before they talk.
    Silent,
    /// The caller booked a callback ([`Input::CallbackBooked`](crate::Input::CallbackBooked)
    /// came): a call that left without an operator or a message is not plainly abandoned.
    Callback,
}

impl Mark {
    /// The name stored with the call.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QuickExit => "quick-exit",
            Self::Silent => "silent",
            Self::Callback => "callback",
        }
    }
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of a [`Command::Event`]; [`EventKind::as_str`] is the `kind` stored with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// The flow entered a node. Detail: the node id.
    Node,
    /// A key press outside a recording. Detail: the key.
    Digit,
    /// A key that is not an option of the menu. Detail: `node key`.
    InvalidOption,
    /// A menu waited `timeout_ms` for a key in vain. Detail: the node id.
    NoInput,
    /// The language was set. Detail: the code, then `key` or `default`.
    Language,
    /// A recording started. Detail: the node id.
    RecordingStarted,
    /// A recording ended. Detail: the reason and the duration in ms.
    RecordingFinished,
    /// The queue position changed. Detail: the position.
    QueuePosition,
    /// An operator took the call.
    OperatorAnswered,
    /// No operator could take the call.
    OperatorUnavailable,
    /// The flow stopped waiting for an operator (`max_wait_ms`).
    QueueTimeout,
    /// The caller pressed a key of the `enqueue` node's options and left the queue.
    /// Detail: the key.
    LeftQueue,
    /// The call reached `max_call_ms`.
    MaxCallLength,
    /// The caller hung up.
    HungUp,
    /// The flow hung up.
    HangUp,
    /// The caller pressed the quick-exit key; the decoy plays. Detail: the node.
    QuickExit,
    /// A `question` node was answered. Detail: `question = answer`.
    Answer,
    /// The caller confirmed a callback; the flow waits for the booking. Detail: the
    /// window.
    CallbackRequested,
    /// A callback was booked (durably written). Detail: the window.
    CallbackBooked,
    /// A confirmed callback was not booked. Detail: `refused` (the shell said so) or
    /// `timeout` (no word within `booking_timeout_ms`).
    CallbackFailed,
    /// No callback was booked at a `callback` node. Detail: why (`not-safe`,
    /// `cancelled`, `no-input`, `not-possible`).
    CallbackDeclined,
    /// The flow broke. Detail: what went wrong.
    Error,
}

impl EventKind {
    /// The name stored in the call's event log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Node => "node",
            Self::Digit => "digit",
            Self::InvalidOption => "invalid-option",
            Self::NoInput => "no-input",
            Self::Language => "language",
            Self::RecordingStarted => "recording-started",
            Self::RecordingFinished => "recording-finished",
            Self::QueuePosition => "queue-position",
            Self::OperatorAnswered => "operator-answered",
            Self::OperatorUnavailable => "operator-unavailable",
            Self::QueueTimeout => "queue-timeout",
            Self::LeftQueue => "left-queue",
            Self::MaxCallLength => "max-call-length",
            Self::HungUp => "hung-up",
            Self::HangUp => "hang-up",
            Self::QuickExit => "quick-exit",
            Self::Answer => "answer",
            Self::CallbackRequested => "callback-requested",
            Self::CallbackBooked => "callback-booked",
            Self::CallbackFailed => "callback-failed",
            Self::CallbackDeclined => "callback-declined",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
