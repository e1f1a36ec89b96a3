//! hotline-media: the media core of the hotline, sans-IO.
//!
//! Nothing here touches a socket, a task or a clock: callers pass packets,
//! samples and RTP timestamps in and take packets, frames and digits out. The hot
//! paths (one call = 50 packets a second each way) do not allocate per packet;
//! buffers are sized once, when a call starts.
//!
//! # Layout
//! - [`g711`]: µ-law and A-law (ITU-T G.711) encode, decode and transcode, table driven.
//! - [`rtp`]: RTP packets (RFC 3550) built into caller buffers and parsed, with
//!   continuous sequence and timestamp and the talkspurt marker (RFC 3551 §4.1).
//! - [`dtmf`]: the [`Digit`], RFC 4733 telephone-event payloads, the receiver that
//!   turns event packets into one digit per key press, and SIP INFO DTMF bodies.
//! - [`goertzel`]: in-band DTMF detection on 8 kHz PCM (ITU-T Q.23/Q.24) for
//!   callers that offer no telephone-event, and the level of one tone in a slice.
//! - [`reorder`]: the reorder buffer in front of the recorder: frames in sequence
//!   order, gaps and silence suppression filled with silence of the right length.
//! - [`recorder`]: crash-safe WAV recordings (`.wav.part`, fsync, rename, hash) and their repair.
//! - [`sink`]: where a recording's samples go ([`sink::AudioSink`]), and the in-memory
//!   [`sink::RecordSink`] that carries them from the media loop to a recording writer.
//! - [`silence`]: the end-of-message silence detector and the longest a recording may be.
//! - [`prompt`]: WAV prompts resampled to 8 kHz and pre-encoded as 20 ms G.711
//!   frames at load, and the library that finds them by language and id.
//! - [`player`]: the per-call prompt queue (barge-in, loop for hold music), one
//!   borrowed frame per tick.
//! - [`pacer`]: the absolute 20 ms send schedule (late ticks skip, never burst) and
//!   the lateness histogram.
//! - [`session`]: one call's media: symmetric RTP with strict source learning, playback,
//!   DTMF, recording, RTCP sender reports; in bridged mode, the relay of audio and
//!   RFC 4733 events from one leg of a B2BUA call to the other (renumbered,
//!   transcoded between PCMU and PCMA when the legs differ).
//! - [`bridge`]: the bridged conversation recorded as stereo (caller left,
//!   operator right) on one timeline, whatever the loss and jitter.
//! - [`error`]: [`MediaError`], the crate's one error type.

pub mod bridge;
pub mod dtmf;
pub mod error;
pub mod g711;
pub mod goertzel;
pub mod pacer;
pub mod player;
pub mod prompt;
pub mod recorder;
pub mod reorder;
pub mod rtp;
pub mod session;
pub mod silence;
pub mod sink;

pub use dtmf::Digit;
pub use error::MediaError;
