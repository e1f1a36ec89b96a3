//! What a call task holds of its media: commands to its shard, and the notes
//! the shard sends back (key presses, the end of a play list, recordings ended).
//!
//! Every `record` and every `bridge` with a conversation recording is answered by
//! exactly one note ([`MediaNote::RecordingEnded`], [`MediaNote::ConversationEnded`]),
//! whoever ended it (the finish key, silence, the maximum length, the call
//! logic, the shard's removal of the call); the note carries the recorder, all
//! its samples written, for the call task to finish and enter in the store.
//! Dropping the handle removes the call from its shard.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::mpsc;

use hotline_media::dtmf::Digit;
use hotline_media::prompt::Prompt;
use hotline_media::recorder::Recorder;
use hotline_media::session::{RecordEnd, RecordSpec, SessionConfig};
use tokio::sync::{mpsc as tokio_mpsc, oneshot};

use super::shard::{Cmd, ShardCommand};

/// A recording the shard let go: the writer hands its recorder over on `recorder`
/// once every sample is written.
#[derive(Debug)]
pub(crate) struct Closed {
    pub(crate) recorder: oneshot::Receiver<Recorder>,
    /// Milliseconds written as silence: caller audio lost or missing (a message).
    pub(crate) silence_ms: u64,
}

/// What the shard tells the call task.
#[derive(Debug)]
pub(crate) enum MediaNote {
    /// A key press of the caller (not while bridged: then keys pass to the operator).
    Digit(Digit),
    /// The last prompt of the play list with this tag played to its end.
    PlayFinished(u64),
    /// The message recording ended.
    RecordingEnded {
        reason: RecordEnd,
        closed: Closed,
        /// Speech was heard in it; `None`: not measured (no silence detection).
        speech: Option<bool>,
    },
    /// The conversation recording ended (the leg was dropped, or the call removed).
    ConversationEnded { closed: Closed },
}

/// One call's way to its shard. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct MediaHandle {
    key: u64,
    tx: mpsc::Sender<ShardCommand>,
    /// The shard's notes.
    pub(crate) notes: tokio_mpsc::UnboundedReceiver<MediaNote>,
    next_tag: u64,
}

impl MediaHandle {
    pub(super) fn open(
        key: u64,
        tx: mpsc::Sender<ShardCommand>,
        rtp: UdpSocket,
        rtcp: UdpSocket,
    ) -> Self {
        let (notes_tx, notes) = tokio_mpsc::unbounded_channel();
        let _ = tx.send(ShardCommand {
            key,
            cmd: Cmd::Add {
                rtp,
                rtcp,
                notes: notes_tx,
            },
        });
        Self {
            key,
            tx,
            notes,
            next_tag: 0,
        }
    }

    fn cmd(&self, cmd: Cmd) {
        // The shard lives as long as the process; a send fails only at exit.
        let _ = self.tx.send(ShardCommand { key: self.key, cmd });
    }

    /// Starts the caller's media session (on the shard's tick grid).
    pub(crate) fn start_session(&self, config: SessionConfig, sending: bool) {
        self.cmd(Cmd::Session {
            config: Box::new(config),
            sending,
        });
    }

    /// New SDP from the caller: learn the source again (`relearn`), may we send.
    pub(crate) fn remote(&self, relearn: Option<SocketAddr>, sending: bool) {
        self.cmd(Cmd::Remote { relearn, sending });
    }

    /// Queues prompts; returns the tag [`MediaNote::PlayFinished`] will carry.
    pub(crate) fn play(&mut self, prompts: Vec<Arc<Prompt>>) -> u64 {
        self.next_tag += 1;
        self.cmd(Cmd::Play {
            prompts,
            tag: self.next_tag,
        });
        self.next_tag
    }

    /// Stops what plays (barge-in) and clears the queue.
    pub(crate) fn stop_playback(&self) {
        self.cmd(Cmd::StopPlayback);
    }

    /// Records the caller into `recorder` (answered by [`MediaNote::RecordingEnded`]).
    pub(crate) fn record(&self, recorder: Recorder, spec: RecordSpec) {
        self.cmd(Cmd::Record {
            recorder: Box::new(recorder),
            spec,
        });
    }

    /// Ends the message recording now, if it runs.
    pub(crate) fn stop_recording(&self) {
        self.cmd(Cmd::StopRecording);
    }

    /// The operator leg's sockets, read from now on.
    pub(crate) fn add_leg(&self, rtp: UdpSocket, rtcp: UdpSocket) -> std::io::Result<()> {
        rtp.set_nonblocking(true)?;
        rtcp.set_nonblocking(true)?;
        self.cmd(Cmd::AddLeg { rtp, rtcp });
        Ok(())
    }

    /// The operator answered: the leg's session.
    pub(crate) fn leg_session(&self, config: SessionConfig, sending: bool) {
        self.cmd(Cmd::LegSession {
            config: Box::new(config),
            sending,
        });
    }

    /// New SDP from the operator (hold, resume).
    pub(crate) fn leg_remote(&self, relearn: Option<SocketAddr>, sending: bool) {
        self.cmd(Cmd::LegRemote { relearn, sending });
    }

    /// Caller and operator hear each other; the conversation is recorded into
    /// `recorder` if given (answered by [`MediaNote::ConversationEnded`]).
    pub(crate) fn bridge(&self, recorder: Option<Recorder>) {
        self.cmd(Cmd::Bridge {
            recorder: recorder.map(Box::new),
        });
    }

    /// The operator leg is over: unbridged, its sockets let go, the
    /// conversation recording (if any) closed.
    pub(crate) fn drop_leg(&self) {
        self.cmd(Cmd::DropLeg);
    }
}

impl Drop for MediaHandle {
    fn drop(&mut self) {
        self.cmd(Cmd::Remove);
    }
}
