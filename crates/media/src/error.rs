//! The crate's error type.

/// Everything that can go wrong in the media core.
///
/// Errors caused by network input (a malformed RTP packet, a bad telephone-event
/// payload, an INFO body we cannot read) are values, never panics: the shell
/// counts or logs them and goes on with the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// An RTP packet that cannot be parsed (RFC 3550 §5.1).
    #[error("malformed RTP packet: {0}")]
    MalformedRtp(&'static str),
    /// An RTP payload type outside 0..=127.
    #[error("invalid RTP payload type {0}")]
    PayloadType(u8),
    /// The caller's output buffer cannot hold the packet.
    #[error("buffer too small: {needed} bytes needed, {available} available")]
    BufferTooSmall {
        /// Bytes the packet needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// A payload larger than the slots of a buffer sized for 20 ms frames.
    #[error("payload of {len} bytes is larger than the {max}-byte slots")]
    PayloadTooLarge {
        /// Length of the payload.
        len: usize,
        /// Largest payload a slot holds.
        max: usize,
    },
    /// A telephone-event payload shorter than 4 bytes (RFC 4733 §2.3).
    #[error("telephone-event payload of {0} bytes (at least 4 needed)")]
    ShortEvent(usize),
    /// An event that is not a key press we act on (flash, or codes beyond 15).
    #[error("event {0} is not a DTMF digit")]
    NotADigit(u8),
    /// A SIP INFO body that is not DTMF we know how to read.
    #[error("malformed DTMF INFO body: {0}")]
    MalformedInfo(&'static str),
    /// A SIP INFO content type other than `application/dtmf-relay` or `application/dtmf`.
    #[error("unsupported INFO content type")]
    UnsupportedInfo,
    /// A prompt file that is not a WAV file we can read (truncated, garbage, an
    /// unsupported encoding or sample rate, no samples).
    #[error("unreadable WAV prompt: {0}")]
    Wav(&'static str),
    /// A language code other than `es` and `qu`.
    #[error("unknown language (expected \"es\" or \"qu\")")]
    UnknownLanguage,
    /// The recording writer failed (a full disk...): the recording takes no more audio.
    #[error("the recording writer failed; the recording takes no more audio")]
    RecordingFailed,
    /// Samples of the wrong shape for a recording of this many channels.
    #[error("wrong number of channels for a recording of {0}")]
    RecordingChannels(u16),
}
