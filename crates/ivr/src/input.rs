//! What the shell tells the flow: [`Input`].

/// Something that happened on the call, handed to [`Flow::handle`](crate::Flow::handle)
/// with the time it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The call was answered and media flows: the flow starts at its start node.
    Answered,
    /// One key press (RFC 4733 event, SIP INFO or in-band), reported once per press:
    /// `0`–`9`, `*`, `#`, `A`–`D` (`a`–`d` are taken as upper case). Other characters are
    /// ignored.
    Digit(char),
    /// The whole play list of the last [`Command::Play`](crate::Command::Play) ended.
    /// Not sent for a list stopped by [`Command::StopPlayback`](crate::Command::StopPlayback)
    /// or replaced by a newer `Play`.
    PromptFinished,
    /// The recording started by [`Command::Record`](crate::Command::Record) ended and was
    /// kept. If the caller hangs up while recording, the shell sends this (with
    /// [`RecordEnd::HangUp`]) before [`Input::HungUp`].
    RecordingFinished {
        /// Why it ended.
        reason: RecordEnd,
        /// Length of the recorded audio.
        duration_ms: u64,
    },
    /// The caller spoke: speech was heard in a recording (the shell's silence detector
    /// found a frame above its threshold). Once per call is enough; a call with neither
    /// speech nor a key is marked [`Mark::Silent`](crate::Mark::Silent).
    Speech,
    /// The caller's place in the operator queue changed (1 = next).
    QueueUpdate {
        /// Position in the queue, 1-based.
        position: u32,
    },
    /// An operator took the call; the shell bridges caller and operator from now on.
    OperatorAnswered,
    /// The queue cannot give this call to an operator (none available, after hours); the
    /// call is already out of the queue.
    OperatorUnavailable,
    /// The callback of the last [`Command::Callback`](crate::Command::Callback) is
    /// durably written (committed, or safe in the writer's spool): the flow says it is
    /// booked. Ignored unless the flow is waiting for it.
    CallbackBooked,
    /// The callback of the last [`Command::Callback`](crate::Command::Callback) could not
    /// be booked (the store refused it, the window is unknown, the number cannot be
    /// called back): the flow says so and goes on to the node's `failed`. Ignored unless
    /// the flow is waiting for it.
    CallbackFailed,
    /// The caller hung up (BYE or CANCEL). The flow emits its outcome and ends.
    HungUp,
}

/// Why a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordEnd {
    /// The caller pressed the finish key (`#` in the default flow).
    FinishKey,
    /// The caller was silent for `silence_ms`.
    Silence,
    /// The recording reached `max_ms`.
    MaxLength,
    /// The caller hung up.
    HangUp,
    /// The flow asked for it to stop ([`Command::StopRecording`](crate::Command::StopRecording)),
    /// at the call-length cap.
    Stopped,
}

impl RecordEnd {
    /// Short name for the call's event log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FinishKey => "finish-key",
            Self::Silence => "silence",
            Self::MaxLength => "max-length",
            Self::HangUp => "hang-up",
            Self::Stopped => "stopped",
        }
    }
}
