//! One call's media, sans-IO: symmetric RTP with strict source learning,
//! prompts on an absolute 20 ms schedule, RFC 4733 and in-band DTMF, the
//! message recorder fed through the reorder buffer, and RTCP sender reports.
//!
//! ```text
//! shell: recv RTP ──► handle_rtp(now, from, bytes)      poll_transmit() ──► send
//!        deadline ──► handle_timeout(now)                poll_event()    ──► call logic
//! ```
//!
//! # Decisions
//! - Symmetric RTP (RFC 4961): we send to where the caller's RTP comes from, which
//!   is what works behind NAT. The first packet's source is learned; afterwards
//!   packets from any other address are dropped and counted (the "RTP bleed"
//!   attack, CVE-2017-14099) until [`Session::relearn`] (a re-INVITE changed the SDP).
//! - Nothing is sent while the caller holds us (their SDP is sendonly or inactive).
//! - The recording's length is the wall-clock length of the message: gaps are
//!   filled by the reorder buffer from RTP timestamps, and the end is padded to
//!   the time elapsed since recording started.
//! - RTCP: a compound SR + SDES(CNAME) every 5 s (RFC 3550 §6.4.1, §6.5); incoming
//!   RTCP is accepted and ignored.
//!
//! # Bridged mode (B2BUA)
//! Once an operator answers, the call task holds two sessions, the caller leg and
//! the operator leg, each with its own law, payload types, SSRC, sequence and
//! timestamp, and puts both in bridged mode ([`Session::set_bridged`]):
//!
//! ```text
//! caller leg:   handle_rtp ──► poll_relay() ──► operator leg: send_relayed(now, &p)
//! operator leg: handle_rtp ──► poll_relay() ──► caller leg:   send_relayed(now, &p)
//! ```
//!
//! - Received packets (after the source check) whose payload type is the leg's
//!   audio or telephone-event type become [`RelayPacket`]s in a queue of
//!   [`RELAY_QUEUE`] (the oldest is dropped and counted when it is full). No
//!   [`MediaEvent::Digit`] and no in-band detection: keys are the operator's
//!   business then, and pass through.
//! - [`Session::send_relayed`] rewrites the header: this leg's SSRC and payload
//!   type, the source's sequence number and timestamp plus offsets chosen at the
//!   first packet of each source SSRC so that the stream continues this leg's
//!   own numbering (the next sequence number; a timestamp past the end of the
//!   last packet sent, its timestamp plus its duration, 160 for 20 ms, and not
//!   behind the session's clock) with the marker bit set. Loss, reordering and
//!   timing of the source pass through unchanged; a straggler older than the
//!   first packet relayed from its source is dropped, as its numbers would fall
//!   on packets already sent. Audio is copied when the laws match, else
//!   transcoded through a 256-entry table ([`g711::transcode_into`]).
//!   Telephone-events get this leg's event payload type, or are dropped and
//!   counted if it has none.
//! - Nothing is relayed while this leg holds us or has no address; the stream
//!   resumes with fresh offsets (no sequence gap for the packets not sent).
//! - The player is stopped (and looping switched off), the pacer does not run
//!   and the timestamp does not advance with silence: the relayed packets carry
//!   the timing. [`Session::poll_timeout`] is then only the RTCP timer; sender
//!   reports still go out every 5 s, counting relayed packets, with the RTP
//!   timestamp extrapolated from the last relayed audio packet.
//! - Leaving bridged mode discards relay packets not polled; the next tick puts
//!   the timestamp back on the session's clock (never backwards) and the next
//!   prompt packet carries the marker.
//! - A message recording still running is still fed with the leg's audio.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::MediaError;
use crate::dtmf::{Digit, DtmfReceiver};
use crate::g711::{self, Law};
use crate::goertzel::DtmfDetector;
use crate::pacer::{LatenessHistogram, Pacer};
use crate::player::{PlayId, Player, PlayerEvent};
use crate::prompt::{FRAME_SAMPLES, Prompt};
use crate::reorder::{Frame, ReorderBuffer, ReorderConfig};
use crate::rtp::{self, RtpSender};
use crate::silence::{MaxLength, SilenceDetector};
use crate::sink::{AudioSink, RecordSink};

/// The largest audio payload recorded: 60 ms of G.711.
pub const MAX_PAYLOAD: usize = 480;

/// How often a sender report goes out.
pub const RTCP_INTERVAL: Duration = Duration::from_secs(5);

/// Relay packets a bridged session holds for [`Session::poll_relay`]; when full,
/// the oldest is dropped (and counted in [`SessionStats::relay_overflow`]).
pub const RELAY_QUEUE: usize = 32;

/// The largest datagram a [`Transmit`] holds: an RTP header and [`MAX_PAYLOAD`].
const TRANSMIT_MAX: usize = 512;
const _: () = assert!(TRANSMIT_MAX >= rtp::HEADER_LEN + MAX_PAYLOAD);

/// What the session is set up with (from the SDP negotiation).
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The codec.
    pub law: Law,
    /// Its payload type (0 or 8 static, or the offerer's dynamic number).
    pub payload_type: u8,
    /// telephone-event payload type, if negotiated; else in-band detection runs.
    pub dtmf_payload_type: Option<u8>,
    /// The RTP address from the caller's SDP.
    pub remote: SocketAddr,
    /// Our SSRC and initial sequence number and timestamp (random, RFC 3550 §5.1).
    pub ssrc: u32,
    /// Initial sequence number.
    pub sequence: u16,
    /// Initial timestamp.
    pub timestamp: u32,
    /// RTCP CNAME (RFC 3550 §6.5.1); not the caller's number.
    pub cname: String,
}

/// How a recording should end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordSpec {
    /// Maximum length.
    pub max: Duration,
    /// End after this much silence (None: never on silence).
    pub silence: Option<Duration>,
    /// Level below which audio counts as silence.
    pub silence_dbfs: f32,
    /// The key that ends the message (`#`).
    pub finish_key: Option<Digit>,
}

/// Why a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordEnd {
    /// The finish key was pressed.
    FinishKey,
    /// Silence for the configured time.
    Silence,
    /// The maximum length was reached.
    MaxLength,
    /// The call logic stopped it (hang-up, call cap).
    Stopped,
    /// Writing failed (disk full...): what reached the disk is kept.
    WriteError,
}

/// What the session tells the call logic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// A key press (one per press, whatever the transport).
    Digit(Digit),
    /// A prompt played to its end.
    PromptFinished(PlayId),
    /// The recording ended; take its sink with [`Session::take_recorder`].
    RecordingEnded(RecordEnd),
    /// The caller's RTP source was learned.
    SourceLearned(SocketAddr),
}

/// Where a transmit goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The RTP socket.
    Rtp,
    /// The RTCP socket (RTP port + 1).
    Rtcp,
}

/// Counters, for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// RTP packets sent.
    pub packets_sent: u64,
    /// Payload octets sent.
    pub octets_sent: u64,
    /// RTP packets received from the caller.
    pub packets_received: u64,
    /// Packets from an address other than the learned source, dropped.
    pub foreign_dropped: u64,
    /// Packets that did not parse as RTP.
    pub malformed: u64,
    /// Frames skipped because a tick came late.
    pub frames_skipped: u64,
    /// Received packets dropped from a full relay queue (nobody polled it).
    pub relay_overflow: u64,
    /// Relayed packets not sent: this leg holds us or has no address, the
    /// session is not bridged, or the packet is older than the first one relayed
    /// from its source.
    pub relay_dropped: u64,
    /// Relayed telephone-events not sent because this leg negotiated none.
    pub events_dropped: u64,
}

/// What a [`RelayPacket`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayKind {
    /// G.711 audio, in the law of the leg it was received on.
    Audio(Law),
    /// An RFC 4733 telephone-event payload.
    Event,
}

/// A packet received on one leg of a bridge, to be sent on the other with
/// [`Session::send_relayed`] (or recorded with
/// [`ConversationMixer::push`](crate::bridge::ConversationMixer::push)).
///
/// The header fields are the source's; the payload (at most [`MAX_PAYLOAD`]
/// bytes) is held inline: `Copy`, no allocation.
#[derive(Clone, Copy)]
pub struct RelayPacket {
    /// Audio (with its law) or telephone-event.
    pub kind: RelayKind,
    /// The source's marker bit.
    pub marker: bool,
    /// The source's sequence number.
    pub sequence: u16,
    /// The source's timestamp.
    pub timestamp: u32,
    /// The source's SSRC.
    pub ssrc: u32,
    len: u16,
    buf: [u8; MAX_PAYLOAD],
}

impl RelayPacket {
    /// A relay packet; fails if `payload` is longer than [`MAX_PAYLOAD`].
    pub fn new(
        kind: RelayKind,
        marker: bool,
        sequence: u16,
        timestamp: u32,
        ssrc: u32,
        payload: &[u8],
    ) -> Result<Self, MediaError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(MediaError::PayloadTooLarge {
                len: payload.len(),
                max: MAX_PAYLOAD,
            });
        }
        let mut buf = [0u8; MAX_PAYLOAD];
        buf[..payload.len()].copy_from_slice(payload);
        Ok(Self {
            kind,
            marker,
            sequence,
            timestamp,
            ssrc,
            len: payload.len() as u16,
            buf,
        })
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// How long the packet lasts on the RTP clock: one sample per byte of audio;
    /// for a telephone-event its duration field, at least 20 ms (160), so that
    /// what follows a key press is numbered after the whole press.
    pub fn samples(&self) -> u32 {
        match self.kind {
            RelayKind::Audio(_) => u32::from(self.len),
            RelayKind::Event => {
                let duration = match self.payload() {
                    [_, _, d0, d1, ..] => u32::from(u16::from_be_bytes([*d0, *d1])),
                    _ => 0,
                };
                duration.max(FRAME_SAMPLES as u32)
            }
        }
    }
}

impl std::fmt::Debug for RelayPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayPacket")
            .field("kind", &self.kind)
            .field("marker", &self.marker)
            .field("sequence", &self.sequence)
            .field("timestamp", &self.timestamp)
            .field("ssrc", &self.ssrc)
            .field("len", &self.len)
            .finish()
    }
}

impl PartialEq for RelayPacket {
    fn eq(&self, other: &Self) -> bool {
        (
            self.kind,
            self.marker,
            self.sequence,
            self.timestamp,
            self.ssrc,
        ) == (
            other.kind,
            other.marker,
            other.sequence,
            other.timestamp,
            other.ssrc,
        ) && self.payload() == other.payload()
    }
}

impl Eq for RelayPacket {}

/// How one source stream is renumbered into this leg's stream.
#[derive(Debug, Clone, Copy)]
struct RelayMap {
    /// The source's SSRC.
    ssrc: u32,
    /// Added to the source's sequence number.
    seq_offset: u16,
    /// Added to the source's timestamp.
    ts_offset: u32,
    /// The newest source sequence number relayed.
    newest: u16,
    /// How far `newest` is past the first packet relayed from this source.
    span: u64,
}

struct Recording {
    recorder: RecordSink,
    spec: RecordSpec,
    started: Instant,
    silence: Option<SilenceDetector>,
    max: MaxLength,
    written: u64,
    ended: Option<RecordEnd>,
}

/// One call's media state.
pub struct Session {
    config: SessionConfig,
    sender: RtpSender,
    player: Player,
    pacer: Pacer,
    lateness: LatenessHistogram,
    dtmf: DtmfReceiver,
    inband: Option<DtmfDetector>,
    reorder: ReorderBuffer,
    recording: Option<Recording>,
    learned: Option<SocketAddr>,
    sending: bool,
    next_rtcp: Instant,
    /// Wall-clock time at `epoch`, for RTCP NTP timestamps.
    wall_at_epoch: SystemTime,
    epoch: Instant,
    pcm: [i16; 1024],
    out: VecDeque<(Channel, SocketAddr, usize, [u8; TRANSMIT_MAX])>,
    events: VecDeque<MediaEvent>,
    stats: SessionStats,
    bridged: bool,
    /// Received packets for the other leg; room for [`RELAY_QUEUE`] is reserved
    /// when bridging starts.
    relay_in: VecDeque<RelayPacket>,
    /// The renumbering of the source being relayed to this leg.
    relay_map: Option<RelayMap>,
    /// When the newest relayed audio packet left and the timestamp after it, for
    /// the sender reports.
    relay_clock: Option<(Instant, u32)>,
    /// Bridging ended: the next tick puts the timestamp back on the clock.
    resync: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("learned", &self.learned)
            .field("bridged", &self.bridged)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session whose first frame is due at `now`. `wall` is the wall-clock
    /// time at `now` (for RTCP only).
    pub fn new(now: Instant, wall: SystemTime, config: SessionConfig) -> Self {
        let inband = config.dtmf_payload_type.is_none().then(DtmfDetector::new);
        Self {
            sender: RtpSender::new(config.ssrc, config.sequence, config.timestamp),
            player: Player::new(),
            pacer: Pacer::new(now, Duration::from_millis(20)),
            lateness: LatenessHistogram::new(),
            dtmf: DtmfReceiver::new(),
            inband,
            // Up to 60 ms per packet: ptime is only a hint, and a gateway fixed at
            // 30 ms must not leave a silent recording.
            reorder: ReorderBuffer::new(ReorderConfig {
                max_payload: MAX_PAYLOAD,
                ..ReorderConfig::default()
            }),
            recording: None,
            learned: None,
            sending: true,
            next_rtcp: now + RTCP_INTERVAL,
            wall_at_epoch: wall,
            epoch: now,
            pcm: [0; 1024],
            out: VecDeque::with_capacity(4),
            events: VecDeque::with_capacity(8),
            stats: SessionStats::default(),
            bridged: false,
            relay_in: VecDeque::new(),
            relay_map: None,
            relay_clock: None,
            resync: false,
            config,
        }
    }

    /// Queues a prompt after what is playing.
    pub fn enqueue(&mut self, prompt: Arc<Prompt>) -> PlayId {
        self.player.enqueue(prompt)
    }

    /// Stops what is playing (barge-in) and clears the queue.
    pub fn stop_playback(&mut self) {
        self.player.stop();
    }

    /// Loops the last queued prompt (hold music).
    pub fn set_loop(&mut self, on: bool) {
        self.player.set_loop(on);
    }

    /// Whether nothing is playing.
    pub fn is_idle(&self) -> bool {
        self.player.is_idle()
    }

    /// Starts recording the caller into `recorder` (mono).
    pub fn start_recording(&mut self, now: Instant, recorder: RecordSink, spec: RecordSpec) {
        let silence = spec.silence.map(|d| {
            SilenceDetector::new(
                spec.silence_dbfs,
                d.as_millis().min(u128::from(u32::MAX)) as u32,
            )
        });
        self.recording = Some(Recording {
            recorder,
            max: MaxLength::from_ms(spec.max.as_millis().min(u128::from(u64::MAX)) as u64),
            spec,
            started: now,
            silence,
            written: 0,
            ended: None,
        });
    }

    /// Whether the running recording heard speech (a frame at or above its silence
    /// threshold); `None` with no recording or one without a silence detector.
    pub fn recording_speech(&self) -> Option<bool> {
        self.recording
            .as_ref()?
            .silence
            .as_ref()
            .map(SilenceDetector::speech_heard)
    }

    /// Ends the recording now (hang-up, call cap) and hands the sink back, with
    /// its last samples, for the writer to finish (finalise, fsync, rename) off
    /// the media loop. The audio is padded to the wall-clock time since the
    /// recording started.
    pub fn stop_recording(&mut self, now: Instant) -> Option<RecordSink> {
        let mut rec = self.recording.take()?;
        self.flush_reorder(&mut rec);
        let elapsed = now.saturating_duration_since(rec.started);
        // Never pad beyond the maximum length.
        let expected = (elapsed.as_millis() as u64 * 8).min(rec.spec.max.as_millis() as u64 * 8);
        if rec.ended.is_none() && expected > rec.written {
            let pad = (expected - rec.written) as u32;
            if rec.recorder.write_silence(pad).is_ok() {
                rec.written += u64::from(pad);
            }
        }
        Some(rec.recorder)
    }

    /// After a [`MediaEvent::RecordingEnded`], the sink to finish.
    pub fn take_recorder(&mut self, now: Instant) -> Option<RecordSink> {
        if self.recording.as_ref().is_some_and(|r| r.ended.is_some()) {
            return self.stop_recording(now);
        }
        None
    }

    /// The sink of the recording in progress (the shell takes its samples for the writer).
    pub fn recorder_mut(&mut self) -> Option<&mut RecordSink> {
        self.recording.as_mut().map(|r| &mut r.recorder)
    }

    /// Whether we may send (false while the caller holds us).
    pub fn set_sending(&mut self, sending: bool) {
        self.sending = sending;
    }

    /// New SDP from a re-INVITE: a new remote address, and learn the source again.
    pub fn relearn(&mut self, remote: SocketAddr) {
        self.config.remote = remote;
        self.learned = None;
        self.dtmf.reset();
    }

    /// Enters (`true`) or leaves (`false`) bridged mode: see the
    /// [module docs](self#bridged-mode-b2bua). Entering stops the player and
    /// switches looping off; both directions forget the source being relayed,
    /// so the next relayed packet starts a new renumbering (marked).
    pub fn set_bridged(&mut self, on: bool) {
        if on == self.bridged {
            return;
        }
        self.bridged = on;
        self.relay_in.clear();
        self.relay_map = None;
        self.relay_clock = None;
        if on {
            self.player.stop();
            self.player.set_loop(false);
            // Once per bridge, not per packet.
            self.relay_in.reserve_exact(RELAY_QUEUE);
        } else {
            self.resync = true;
            // It missed the audio while bridged: start it afresh.
            if self.inband.is_some() {
                self.inband = Some(DtmfDetector::new());
            }
        }
    }

    /// Whether the session is in bridged mode.
    pub fn is_bridged(&self) -> bool {
        self.bridged
    }

    /// The next packet received while bridged, for the other leg's
    /// [`send_relayed`](Self::send_relayed) (and the conversation recording).
    pub fn poll_relay(&mut self) -> Option<RelayPacket> {
        self.relay_in.pop_front()
    }

    /// Sends a packet received on the other leg of the bridge: see the
    /// [module docs](self#bridged-mode-b2bua). `now` is when it is sent.
    pub fn send_relayed(&mut self, now: Instant, p: &RelayPacket) {
        let dest = self.destination();
        if !self.bridged || !self.sending || dest.ip().is_unspecified() {
            self.stats.relay_dropped += 1;
            // After the hold, continue without a gap in the sequence numbers.
            self.relay_map = None;
            return;
        }
        let (payload_type, audio_law) = match p.kind {
            RelayKind::Audio(law) => (self.config.payload_type, Some(law)),
            RelayKind::Event => match self.config.dtmf_payload_type {
                Some(pt) => (pt, None),
                None => {
                    self.stats.events_dropped += 1;
                    return;
                }
            },
        };
        let (mut map, first) = match self.relay_map {
            Some(m) if m.ssrc == p.ssrc => (m, false),
            _ => {
                // Continue our own numbering: the next sequence number, and a
                // timestamp not behind the last one sent (the sender's next) nor
                // the session's clock.
                let base = later(self.sender.timestamp(), self.clock_timestamp(now));
                let map = RelayMap {
                    ssrc: p.ssrc,
                    seq_offset: self.sender.sequence().wrapping_sub(p.sequence),
                    ts_offset: base.wrapping_sub(p.timestamp),
                    newest: p.sequence,
                    span: 0,
                };
                (map, true)
            }
        };
        let ahead = i64::from(p.sequence.wrapping_sub(map.newest) as i16);
        if i64::try_from(map.span).unwrap_or(i64::MAX) + ahead < 0 {
            // Before the first packet of this source: its numbers would fall
            // on packets already sent.
            self.stats.relay_dropped += 1;
            return;
        }
        let newest = ahead >= 0;
        if ahead > 0 {
            map.newest = p.sequence;
            map.span += ahead as u64;
        }
        self.relay_map = Some(map);
        let sequence = p.sequence.wrapping_add(map.seq_offset);
        let timestamp = p.timestamp.wrapping_add(map.ts_offset);
        let mut coded = [0u8; MAX_PAYLOAD];
        let payload = match audio_law {
            Some(law) if law != self.config.law => {
                let n = g711::transcode_into(law, self.config.law, p.payload(), &mut coded);
                &coded[..n]
            }
            _ => p.payload(),
        };
        let samples = p.samples();
        let mut buf = [0u8; TRANSMIT_MAX];
        match self.sender.relay_into(
            payload_type,
            p.marker || first,
            sequence,
            timestamp,
            samples,
            payload,
            &mut buf,
        ) {
            Ok(n) => {
                self.stats.packets_sent += 1;
                self.stats.octets_sent += payload.len() as u64;
                if audio_law.is_some() && newest {
                    self.relay_clock = Some((now, timestamp.wrapping_add(samples)));
                }
                self.out.push_back((Channel::Rtp, dest, n, buf));
            }
            Err(_) => self.stats.relay_dropped += 1,
        }
    }

    /// The session's RTP clock at `now`: the initial timestamp plus the samples
    /// elapsed since the session started. Frame `n` of the prompt schedule is due
    /// at clock `initial + 160·n`.
    fn clock_timestamp(&self, now: Instant) -> u32 {
        self.config
            .timestamp
            .wrapping_add(samples_between(self.epoch, now) as u32)
    }

    /// The RTP timestamp of a sender report sent at `now`.
    fn report_timestamp(&self, now: Instant) -> u32 {
        if !self.bridged {
            return self.sender.timestamp();
        }
        match self.relay_clock {
            Some((at, ts)) => ts.wrapping_add(samples_between(at, now) as u32),
            None => later(self.sender.timestamp(), self.clock_timestamp(now)),
        }
    }

    /// Counters.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Takes the lateness histogram gathered so far (the shell merges it into
    /// the process-wide one).
    pub fn take_lateness(&mut self) -> LatenessHistogram {
        std::mem::take(&mut self.lateness)
    }

    /// Where our RTP goes: the learned source, else the SDP address.
    pub fn destination(&self) -> SocketAddr {
        self.learned.unwrap_or(self.config.remote)
    }

    /// A datagram arrived on the RTP socket.
    ///
    /// The first RTP packet's source is learned (symmetric RTP: a caller behind NAT sends
    /// from another address than its SDP says) and packets from elsewhere are dropped, with
    /// one exception: RTP from exactly the SDP's address takes the source over. A stray
    /// stream that reached the port first (the previous call's caller on a port used again,
    /// or an attacker racing the caller) cannot keep the real caller's audio and keys out.
    pub fn handle_rtp(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        match self.learned {
            Some(src)
                if src != from
                    && from == self.config.remote
                    && !is_rtcp(datagram)
                    && rtp::parse(datagram).is_ok() =>
            {
                self.learned = Some(from);
                self.dtmf.reset();
                self.events.push_back(MediaEvent::SourceLearned(from));
            }
            Some(src) if src != from => {
                self.stats.foreign_dropped += 1;
                return;
            }
            Some(_) => {}
            None => {
                // RTCP multiplexed on the RTP port (RFC 5761) is not a source to learn.
                if is_rtcp(datagram) {
                    return;
                }
                if rtp::parse(datagram).is_err() {
                    self.stats.malformed += 1;
                    return;
                }
                self.learned = Some(from);
                self.events.push_back(MediaEvent::SourceLearned(from));
            }
        }
        if is_rtcp(datagram) {
            return;
        }
        let Ok(packet) = rtp::parse(datagram) else {
            self.stats.malformed += 1;
            return;
        };
        self.stats.packets_received += 1;
        let event = Some(packet.payload_type) == self.config.dtmf_payload_type;
        let audio = !event && packet.payload_type == self.config.payload_type;
        if self.bridged {
            if event || audio {
                self.queue_relay(&packet, event);
            }
            if !audio {
                // Keys pass through to the other leg: they are not IVR input.
                return;
            }
        } else if event {
            if let Ok(Some(digit)) =
                self.dtmf
                    .push(packet.sequence, packet.timestamp, packet.payload)
            {
                self.digit(now, digit);
            }
            return;
        }
        if !audio {
            return;
        }
        if !self.bridged
            && let Some(mut det) = self.inband.take()
        {
            let n = g711::decode_into(self.config.law, packet.payload, &mut self.pcm);
            let mut found = det.push(&self.pcm[..n]);
            while let Some(d) = found {
                self.digit(now, d);
                found = det.poll_digit();
            }
            self.inband = Some(det);
        }
        if let Some(mut rec) = self.recording.take() {
            if rec.ended.is_none() {
                let law = self.config.law;
                let pcm = &mut self.pcm;
                let mut end = None;
                let pushed = self.reorder.push(&packet, |frame| {
                    if end.is_none() {
                        end = write_frame(&mut rec, law, pcm, frame);
                    }
                });
                if pushed.is_err() {
                    // Over MAX_PAYLOAD: counted, never silently lost.
                    self.stats.malformed += 1;
                }
                if let Some(e) = end {
                    rec.ended = Some(e);
                    self.events.push_back(MediaEvent::RecordingEnded(e));
                }
            }
            self.recording = Some(rec);
        }
    }

    fn digit(&mut self, _now: Instant, digit: Digit) {
        self.events.push_back(MediaEvent::Digit(digit));
        self.finish_key(digit);
    }

    fn finish_key(&mut self, digit: Digit) {
        if let Some(rec) = self.recording.as_mut()
            && rec.ended.is_none()
            && rec.spec.finish_key == Some(digit)
        {
            rec.ended = Some(RecordEnd::FinishKey);
            self.events
                .push_back(MediaEvent::RecordingEnded(RecordEnd::FinishKey));
        }
    }

    fn flush_reorder(&mut self, rec: &mut Recording) {
        let law = self.config.law;
        let pcm = &mut self.pcm;
        // What was waiting in the window came before the end (the finish key, the
        // hang-up): keep it, unless writing already failed.
        self.reorder.flush(|frame| {
            if rec.ended != Some(RecordEnd::WriteError) {
                let _ = write_frame(rec, law, pcm, frame);
            }
        });
    }

    /// Queues a received packet for the other leg.
    fn queue_relay(&mut self, packet: &rtp::RtpPacket<'_>, event: bool) {
        let kind = if event {
            RelayKind::Event
        } else {
            RelayKind::Audio(self.config.law)
        };
        let Ok(relay) = RelayPacket::new(
            kind,
            packet.marker,
            packet.sequence,
            packet.timestamp,
            packet.ssrc,
            packet.payload,
        ) else {
            // Over MAX_PAYLOAD.
            self.stats.malformed += 1;
            return;
        };
        if self.relay_in.len() >= RELAY_QUEUE {
            self.relay_in.pop_front();
            self.stats.relay_overflow += 1;
        }
        self.relay_in.push_back(relay);
    }

    /// The 20 ms tick and the RTCP timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.bridged && now >= self.pacer.poll_timeout() && std::mem::take(&mut self.resync) {
            // Back from a bridge: the relayed packets numbered the stream. Put the
            // timestamp back on the clock (frame n is due at initial + 160·n),
            // never backwards; the ticks missed meanwhile are not late frames.
            self.pacer.handle_timeout(now);
            let frame = self.pacer.next_index().saturating_sub(1);
            let due = self
                .config
                .timestamp
                .wrapping_add(frame.wrapping_mul(FRAME_SAMPLES as u64) as u32);
            let behind = due.wrapping_sub(self.sender.timestamp()) as i32;
            if behind > 0 {
                self.sender.advance_silence(behind as u32);
            }
            self.send_frame();
            while let Some(PlayerEvent::PromptFinished(id)) = self.player.poll_event() {
                self.events.push_back(MediaEvent::PromptFinished(id));
            }
        } else if !self.bridged && now >= self.pacer.poll_timeout() {
            let tick = self.pacer.handle_timeout(now);
            let playing = !self.player.is_idle();
            if tick.skipped > 0 {
                // Only frames of a prompt count as skipped; idle ticks send nothing anyway.
                if playing {
                    self.stats.frames_skipped += u64::from(tick.skipped);
                }
                self.sender
                    .advance_silence(tick.skipped * FRAME_SAMPLES as u32);
            }
            // The lateness histogram is of departures: a tick that sends nothing is not one.
            if tick.send && self.send_frame() {
                self.lateness.record(tick.lateness);
            }
            while let Some(PlayerEvent::PromptFinished(id)) = self.player.poll_event() {
                self.events.push_back(MediaEvent::PromptFinished(id));
            }
        }
        self.check_recording_clock(now);
        if now >= self.next_rtcp {
            self.next_rtcp = now + RTCP_INTERVAL;
            self.send_rtcp(now);
        }
    }

    /// The recording's maximum length also counts time with no packets at all.
    fn check_recording_clock(&mut self, now: Instant) {
        if let Some(rec) = self.recording.as_mut()
            && rec.ended.is_none()
            && now.saturating_duration_since(rec.started)
                >= rec.spec.max + Duration::from_millis(200)
        {
            rec.ended = Some(RecordEnd::MaxLength);
            self.events
                .push_back(MediaEvent::RecordingEnded(RecordEnd::MaxLength));
        }
    }

    /// Sends the player's next frame, if any; returns whether a packet left.
    fn send_frame(&mut self) -> bool {
        let law = self.config.law;
        let frame = match self.player.next_frame(law) {
            Some(f) => *f,
            None => {
                self.sender.advance_silence(FRAME_SAMPLES as u32);
                return false;
            }
        };
        if !self.sending || self.destination().ip().is_unspecified() {
            self.sender.advance_silence(FRAME_SAMPLES as u32);
            return false;
        }
        let mut buf = [0u8; TRANSMIT_MAX];
        match self
            .sender
            .packet_into(self.config.payload_type, false, &frame, &mut buf)
        {
            Ok(n) => {
                self.stats.packets_sent += 1;
                self.stats.octets_sent += frame.len() as u64;
                let dest = self.destination();
                self.out.push_back((Channel::Rtp, dest, n, buf));
                true
            }
            Err(_) => false,
        }
    }

    fn send_rtcp(&mut self, now: Instant) {
        let dest = self.destination();
        if dest.ip().is_unspecified() || !self.sending {
            return;
        }
        let rtcp_dest = SocketAddr::new(dest.ip(), dest.port().wrapping_add(1));
        let wall = self.wall_at_epoch + now.saturating_duration_since(self.epoch);
        let mut buf = [0u8; TRANSMIT_MAX];
        let n = sender_report(
            &mut buf,
            self.config.ssrc,
            wall,
            self.report_timestamp(now),
            self.stats.packets_sent as u32,
            self.stats.octets_sent as u32,
            &self.config.cname,
        );
        self.out.push_back((Channel::Rtcp, rtcp_dest, n, buf));
    }

    /// The next packet to send: which socket, where, and the bytes.
    pub fn poll_transmit(&mut self) -> Option<(Channel, SocketAddr, Transmit)> {
        self.out
            .pop_front()
            .map(|(ch, dest, len, buf)| (ch, dest, Transmit { len, buf }))
    }

    /// The next event for the call logic.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due. While bridged only
    /// the RTCP timer runs.
    pub fn poll_timeout(&self) -> Instant {
        if self.bridged {
            self.next_rtcp
        } else {
            self.pacer.poll_timeout().min(self.next_rtcp)
        }
    }
}

/// A packet's bytes, held inline (no allocation per packet).
#[derive(Clone, Copy)]
pub struct Transmit {
    len: usize,
    buf: [u8; TRANSMIT_MAX],
}

impl std::fmt::Debug for Transmit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transmit").field("len", &self.len).finish()
    }
}

impl std::ops::Deref for Transmit {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Writes one reordered frame; returns why the recording ended, if it did.
fn write_frame(
    rec: &mut Recording,
    law: Law,
    pcm: &mut [i16; 1024],
    frame: Frame<'_>,
) -> Option<RecordEnd> {
    let (samples, silent) = match frame {
        Frame::Audio { payload, .. } => (g711::decode_into(law, payload, pcm), false),
        Frame::Silence { samples, .. } => (samples as usize, true),
    };
    let admit = rec.max.admit(samples);
    let result = if silent {
        rec.recorder.write_silence(admit as u32)
    } else {
        rec.recorder.write_frame(&pcm[..admit])
    };
    if result.is_err() {
        return Some(RecordEnd::WriteError);
    }
    rec.written += admit as u64;
    if rec.max.reached() {
        return Some(RecordEnd::MaxLength);
    }
    if let Some(det) = rec.silence.as_mut() {
        let ended = if silent {
            // Whole silent stretches: feed zeros frame by frame.
            let zeros = [0i16; FRAME_SAMPLES];
            let mut left = admit;
            let mut ended = false;
            while left > 0 && !ended {
                let n = left.min(FRAME_SAMPLES);
                ended = det.push(&zeros[..n]);
                left -= n;
            }
            ended
        } else {
            det.push(&pcm[..admit])
        };
        if ended {
            return Some(RecordEnd::Silence);
        }
    }
    None
}

/// `b` if it is after `a` on the (wrapping) RTP clock, else `a`.
fn later(a: u32, b: u32) -> u32 {
    if b.wrapping_sub(a) as i32 > 0 { b } else { a }
}

/// Samples at 8 kHz from `from` to `to` (zero if `to` is earlier).
fn samples_between(from: Instant, to: Instant) -> u64 {
    let ns = to.saturating_duration_since(from).as_nanos();
    u64::try_from(ns * 8000 / 1_000_000_000).unwrap_or(u64::MAX)
}

/// Whether a datagram is RTCP (RFC 5761 §4: payload types 72-76 with the marker bit).
fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 2 && (200..=204).contains(&datagram[1])
}

/// Writes a compound RTCP packet: SR (no report blocks) + SDES with CNAME.
fn sender_report(
    buf: &mut [u8; TRANSMIT_MAX],
    ssrc: u32,
    wall: SystemTime,
    rtp_ts: u32,
    packets: u32,
    octets: u32,
    cname: &str,
) -> usize {
    let since_unix = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    // NTP epoch is 1900-01-01: 70 years (17 leap days) before the Unix epoch.
    let ntp_secs = since_unix.as_secs() + 2_208_988_800;
    let ntp_frac = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
    let mut i = 0;
    let mut put = |bytes: &[u8], i: &mut usize| {
        buf[*i..*i + bytes.len()].copy_from_slice(bytes);
        *i += bytes.len();
    };
    // SR: V=2, P=0, RC=0, PT=200, length 6 (28 bytes).
    put(&[0x80, 200, 0, 6], &mut i);
    put(&ssrc.to_be_bytes(), &mut i);
    put(&(ntp_secs as u32).to_be_bytes(), &mut i);
    put(&(ntp_frac as u32).to_be_bytes(), &mut i);
    put(&rtp_ts.to_be_bytes(), &mut i);
    put(&packets.to_be_bytes(), &mut i);
    put(&octets.to_be_bytes(), &mut i);
    // SDES: one chunk with CNAME, null-terminated and padded to 32 bits.
    let cname = &cname.as_bytes()[..cname.len().min(200)];
    let chunk = 4 + 2 + cname.len() + 1;
    let padded = chunk.div_ceil(4) * 4;
    let words = (4 + padded) / 4 - 1;
    put(&[0x81, 202], &mut i);
    put(&(words as u16).to_be_bytes(), &mut i);
    put(&ssrc.to_be_bytes(), &mut i);
    put(&[1, cname.len() as u8], &mut i);
    put(cname, &mut i);
    let zeros = padded - (4 + 2 + cname.len());
    put(&[0u8; 4][..zeros], &mut i);
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::TelephoneEvent;

    fn config() -> SessionConfig {
        SessionConfig {
            law: Law::Mu,
            payload_type: 0,
            dtmf_payload_type: Some(101),
            remote: "127.0.0.1:40000".parse().unwrap(),
            ssrc: 0x1234_5678,
            sequence: 100,
            timestamp: 1000,
            cname: "hotline".into(),
        }
    }

    fn rtp_packet(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut s = RtpSender::new(0xabcd, seq, ts);
        let mut buf = [0u8; 512];
        let n = s.packet_into(pt, false, payload, &mut buf).unwrap();
        buf[..n].to_vec()
    }

    fn tone_prompt(ms: usize) -> Arc<Prompt> {
        let pcm: Vec<i16> = (0..ms * 8)
            .map(|i| ((i as f32 * 0.785).sin() * 8000.0) as i16)
            .collect();
        Arc::new(Prompt::from_pcm(pcm))
    }

    #[test]
    fn plays_on_schedule_with_continuous_sequence_and_timestamp() {
        let t0 = Instant::now();
        let mut s = Session::new(t0, SystemTime::now(), config());
        s.enqueue(tone_prompt(60));
        let mut got = vec![];
        for n in 0..6 {
            s.handle_timeout(t0 + Duration::from_millis(20 * n));
            while let Some((ch, _, t)) = s.poll_transmit() {
                if ch == Channel::Rtp {
                    got.push(
                        rtp::parse(&t)
                            .map(|p| (p.sequence, p.timestamp, p.marker))
                            .unwrap(),
                    );
                }
            }
        }
        // 3 frames of prompt, then silence (nothing sent).
        assert_eq!(
            got,
            vec![(100, 1000, true), (101, 1160, false), (102, 1320, false)]
        );
        assert!(matches!(
            s.poll_event(),
            Some(MediaEvent::PromptFinished(_))
        ));
        // The next prompt continues the timestamp across the silence and is marked.
        s.enqueue(tone_prompt(20));
        s.handle_timeout(t0 + Duration::from_millis(120));
        let (_, _, t) = s.poll_transmit().unwrap();
        let p = rtp::parse(&t).unwrap();
        assert_eq!(
            (p.sequence, p.timestamp, p.marker),
            (103, 1000 + 6 * 160, true)
        );
    }

    #[test]
    fn learns_source_and_drops_foreign_packets() {
        let t0 = Instant::now();
        let mut s = Session::new(t0, SystemTime::now(), config());
        let caller: SocketAddr = "192.0.2.10:7000".parse().unwrap();
        let attacker: SocketAddr = "192.0.2.66:7000".parse().unwrap();
        s.handle_rtp(t0, caller, &rtp_packet(0, 1, 160, &[0xff; 160]));
        assert_eq!(s.poll_event(), Some(MediaEvent::SourceLearned(caller)));
        assert_eq!(s.destination(), caller);
        s.handle_rtp(t0, attacker, &rtp_packet(0, 2, 320, &[0xff; 160]));
        assert_eq!(s.stats().foreign_dropped, 1);
        assert_eq!(s.destination(), caller);
        s.relearn("192.0.2.20:8000".parse().unwrap());
        s.handle_rtp(t0, attacker, &rtp_packet(0, 3, 480, &[0xff; 160]));
        assert_eq!(s.destination(), attacker);
    }

    /// A stray stream latched first; the caller's RTP from its SDP address takes over.
    #[test]
    fn rtp_from_the_sdp_address_takes_over_a_stray_source() {
        let t0 = Instant::now();
        let cfg = config();
        let sdp = cfg.remote;
        let mut s = Session::new(t0, SystemTime::now(), cfg);
        let stray: SocketAddr = "192.0.2.77:4000".parse().unwrap();
        s.handle_rtp(t0, stray, &rtp_packet(0, 1, 160, &[0xff; 160]));
        assert_eq!(s.poll_event(), Some(MediaEvent::SourceLearned(stray)));
        // RTCP from the SDP address is no reason to switch.
        s.handle_rtp(t0, sdp, &[0x81, 200, 0, 1, 0, 0, 0, 1]);
        assert_eq!(s.destination(), stray);
        s.handle_rtp(t0, sdp, &rtp_packet(0, 10, 1600, &[0xff; 160]));
        assert_eq!(s.poll_event(), Some(MediaEvent::SourceLearned(sdp)));
        assert_eq!(s.destination(), sdp);
        // And the stray one is foreign from now on (the RTCP above counted too).
        s.handle_rtp(t0, stray, &rtp_packet(0, 2, 320, &[0xff; 160]));
        assert_eq!(s.stats().foreign_dropped, 2);
        assert_eq!(s.destination(), sdp);
    }

    #[test]
    fn rfc4733_digit_once_and_finish_key_ends_recording() {
        let t0 = Instant::now();
        let mut s = Session::new(t0, SystemTime::now(), config());
        let caller: SocketAddr = "192.0.2.10:7000".parse().unwrap();
        let rec = RecordSink::new(1, 800);
        s.start_recording(
            t0,
            rec,
            RecordSpec {
                max: Duration::from_secs(60),
                silence: None,
                silence_dbfs: -45.0,
                finish_key: Some(Digit::from_char('#').unwrap()),
            },
        );
        for i in 0..10u16 {
            s.handle_rtp(
                t0,
                caller,
                &rtp_packet(0, i, u32::from(i) * 160, &[0x10; 160]),
            );
        }
        for (k, end) in [(0u16, false), (1, false), (2, true), (3, true), (4, true)] {
            let ev = TelephoneEvent {
                event: 11,
                end,
                volume: 10,
                duration: 160 * (k + 1),
            };
            s.handle_rtp(t0, caller, &rtp_packet(101, 10 + k, 1600, &ev.to_bytes()));
        }
        let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
        let digits = events
            .iter()
            .filter(|e| matches!(e, MediaEvent::Digit(_)))
            .count();
        assert_eq!(digits, 1, "{events:?}");
        assert!(events.contains(&MediaEvent::RecordingEnded(RecordEnd::FinishKey)));
        let rec = s.take_recorder(t0 + Duration::from_millis(200)).unwrap();
        // 10 packets of 20 ms; the reorder window flushed at the end.
        assert_eq!(rec.duration_ms(), 200);
        assert_eq!(rec.silence_ms(), 0);
    }

    #[test]
    fn recording_fills_gaps_and_pads_to_wall_clock() {
        let t0 = Instant::now();
        let mut s = Session::new(t0, SystemTime::now(), config());
        let caller: SocketAddr = "192.0.2.10:7000".parse().unwrap();
        s.start_recording(
            t0,
            RecordSink::new(1, 800),
            RecordSpec {
                max: Duration::from_secs(60),
                silence: None,
                silence_dbfs: -45.0,
                finish_key: None,
            },
        );
        // Packets 0..50 with 5 and 6 lost: 1 s of audio.
        for i in (0..50u16).filter(|i| *i != 5 && *i != 6) {
            s.handle_rtp(
                t0,
                caller,
                &rtp_packet(0, i, u32::from(i) * 160, &[0x10; 160]),
            );
        }
        // The caller hangs up 1.5 s after the recording started.
        let mut rec = s.stop_recording(t0 + Duration::from_millis(1500)).unwrap();
        assert_eq!(rec.duration_ms(), 1500);
        // The two lost packets (40 ms) and the 0.5 s tail are counted as missing audio.
        assert_eq!(rec.silence_ms(), 540);
        // The audio is there (48 packets), the two lost ones and the tail are silence.
        let samples = rec.take();
        let loud = samples.iter().filter(|&&x| x != 0).count();
        assert_eq!(loud, 48 * 160);
        assert!(samples[5 * 160..7 * 160].iter().all(|&x| x == 0));
        assert!(samples[8000..].iter().all(|&x| x == 0));
    }

    #[test]
    fn thirty_ms_packets_are_recorded() {
        let t0 = Instant::now();
        let mut s = Session::new(t0, SystemTime::now(), config());
        let caller: SocketAddr = "192.0.2.10:7000".parse().unwrap();
        s.start_recording(
            t0,
            RecordSink::new(1, 800),
            RecordSpec {
                max: Duration::from_secs(60),
                silence: None,
                silence_dbfs: -45.0,
                finish_key: None,
            },
        );
        for i in 0..100u16 {
            s.handle_rtp(
                t0,
                caller,
                &rtp_packet(0, i, u32::from(i) * 240, &[0x10; 240]),
            );
        }
        let mut rec = s.stop_recording(t0 + Duration::from_secs(3)).unwrap();
        assert_eq!(rec.duration_ms(), 3000);
        assert_eq!(rec.take().iter().filter(|&&x| x != 0).count(), 24_000);
        assert_eq!(s.stats().malformed, 0);
    }

    #[test]
    fn rtcp_sender_report_every_five_seconds() {
        let t0 = Instant::now();
        let mut s = Session::new(t0, SystemTime::now(), config());
        s.handle_timeout(t0 + RTCP_INTERVAL);
        let mut found = None;
        while let Some((ch, dest, t)) = s.poll_transmit() {
            if ch == Channel::Rtcp {
                found = Some((dest, t.to_vec()));
            }
        }
        let (dest, sr) = found.unwrap();
        assert_eq!(dest.port(), 40001);
        assert_eq!(sr[1], 200);
        assert_eq!(sr[28 + 1], 202);
        assert_eq!(sr.len() % 4, 0);
        assert_eq!(
            u32::from_be_bytes(sr[4..8].try_into().unwrap()),
            0x1234_5678
        );
    }

    #[test]
    fn inband_dtmf_without_telephone_event() {
        let t0 = Instant::now();
        let mut cfg = config();
        cfg.dtmf_payload_type = None;
        let mut s = Session::new(t0, SystemTime::now(), cfg);
        let caller: SocketAddr = "192.0.2.10:7000".parse().unwrap();
        // Digit 5: 770 + 1336 Hz, 100 ms, then 100 ms silence.
        for n in 0..10u16 {
            let mut frame = [0u8; 160];
            for (i, b) in frame.iter_mut().enumerate() {
                let t = (usize::from(n) * 160 + i) as f32 / 8000.0;
                let v = if n < 5 {
                    ((2.0 * std::f32::consts::PI * 770.0 * t).sin()
                        + (2.0 * std::f32::consts::PI * 1336.0 * t).sin())
                        * 6000.0
                } else {
                    0.0
                };
                *b = g711::ulaw_encode(v as i16);
            }
            s.handle_rtp(t0, caller, &rtp_packet(0, n, u32::from(n) * 160, &frame));
        }
        let digits: Vec<_> = std::iter::from_fn(|| s.poll_event())
            .filter_map(|e| match e {
                MediaEvent::Digit(d) => Some(d.as_char()),
                _ => None,
            })
            .collect();
        assert_eq!(digits, vec!['5']);
    }

    fn digits(s: &mut Session) -> Vec<char> {
        std::iter::from_fn(|| s.poll_event())
            .filter_map(|e| match e {
                MediaEvent::Digit(d) => Some(d.as_char()),
                _ => None,
            })
            .collect()
    }

    /// 100 ms of key 5 then 100 ms of silence, as ten µ-law packets from `seq`.
    fn inband_five(s: &mut Session, from: SocketAddr, t: Instant, seq: u16) {
        for n in 0..10u16 {
            let mut frame = [0u8; 160];
            for (i, b) in frame.iter_mut().enumerate() {
                let t = (usize::from(n) * 160 + i) as f32 / 8000.0;
                let v = if n < 5 {
                    ((std::f32::consts::TAU * 770.0 * t).sin()
                        + (std::f32::consts::TAU * 1336.0 * t).sin())
                        * 6000.0
                } else {
                    0.0
                };
                *b = g711::ulaw_encode(v as i16);
            }
            let seq = seq + n;
            s.handle_rtp(t, from, &rtp_packet(0, seq, u32::from(seq) * 160, &frame));
        }
    }

    #[test]
    fn bridged_relay_queue_keeps_the_newest_32() {
        let t0 = Instant::now();
        let mut s = Session::new(t0, SystemTime::now(), config());
        let caller: SocketAddr = "192.0.2.10:7000".parse().unwrap();
        s.set_bridged(true);
        assert!(s.is_bridged());
        for i in 0..40u16 {
            s.handle_rtp(
                t0,
                caller,
                &rtp_packet(0, i, u32::from(i) * 160, &[0x10; 160]),
            );
        }
        // Comfort noise (13) and unknown payload types are not relayed.
        s.handle_rtp(t0, caller, &rtp_packet(13, 40, 6400, &[0x40]));
        // Nor is anything from another address.
        let other: SocketAddr = "192.0.2.66:7000".parse().unwrap();
        s.handle_rtp(t0, other, &rtp_packet(0, 41, 6560, &[0x10; 160]));
        let got: Vec<_> = std::iter::from_fn(|| s.poll_relay()).collect();
        assert_eq!(got.len(), RELAY_QUEUE);
        assert_eq!(got[0].sequence, 8);
        assert_eq!(got[31].sequence, 39);
        assert_eq!(got[0].kind, RelayKind::Audio(Law::Mu));
        assert_eq!((got[0].timestamp, got[0].ssrc), (8 * 160, 0xabcd));
        assert_eq!(got[0].payload(), &[0x10; 160]);
        let stats = s.stats();
        assert_eq!((stats.relay_overflow, stats.foreign_dropped), (8, 1));
        // Events are relayed as they came.
        let ev = TelephoneEvent {
            event: 1,
            end: false,
            volume: 10,
            duration: 480,
        };
        s.handle_rtp(t0, caller, &rtp_packet(101, 42, 6720, &ev.to_bytes()));
        let p = s.poll_relay().unwrap();
        assert_eq!(
            (p.kind, p.payload(), p.samples()),
            (RelayKind::Event, &ev.to_bytes()[..], 480)
        );
        // Leaving bridged mode drops what was not polled, and stops relaying.
        s.handle_rtp(t0, caller, &rtp_packet(0, 43, 6880, &[0x10; 160]));
        s.set_bridged(false);
        assert_eq!(s.poll_relay(), None);
        s.handle_rtp(t0, caller, &rtp_packet(0, 44, 7040, &[0x10; 160]));
        assert_eq!(s.poll_relay(), None);
    }

    #[test]
    fn relay_packets_hold_at_most_max_payload() {
        let big = [0u8; MAX_PAYLOAD + 1];
        assert!(RelayPacket::new(RelayKind::Audio(Law::A), false, 0, 0, 0, &big).is_err());
        let p = RelayPacket::new(
            RelayKind::Audio(Law::A),
            false,
            0,
            0,
            0,
            &big[..MAX_PAYLOAD],
        )
        .unwrap();
        assert_eq!(p.samples(), MAX_PAYLOAD as u32);
        let short = RelayPacket::new(RelayKind::Event, false, 0, 0, 0, &[1, 2]).unwrap();
        assert_eq!(short.samples(), 160);
        // A 60 ms packet is relayed whole.
        let t0 = Instant::now();
        let mut s = Session::new(t0, SystemTime::now(), config());
        let caller: SocketAddr = "192.0.2.10:7000".parse().unwrap();
        s.set_bridged(true);
        s.handle_rtp(t0, caller, &rtp_packet(0, 1, 0, &[0x22; MAX_PAYLOAD]));
        let p = s.poll_relay().unwrap();
        s.send_relayed(t0, &p);
        let (_, _, t) = s.poll_transmit().unwrap();
        assert_eq!(rtp::parse(&t).unwrap().payload, &[0x22; MAX_PAYLOAD]);
        // Not bridged: nothing is relayed.
        s.set_bridged(false);
        s.send_relayed(t0, &p);
        assert!(s.poll_transmit().is_none());
        assert_eq!(s.stats().relay_dropped, 1);
    }

    #[test]
    fn keys_are_not_ivr_input_while_bridged() {
        let t0 = Instant::now();
        let caller: SocketAddr = "192.0.2.10:7000".parse().unwrap();
        // In-band.
        let mut cfg = config();
        cfg.dtmf_payload_type = None;
        let mut s = Session::new(t0, SystemTime::now(), cfg);
        s.set_bridged(true);
        inband_five(&mut s, caller, t0, 0);
        assert!(digits(&mut s).is_empty());
        assert_eq!(std::iter::from_fn(|| s.poll_relay()).count(), 10);
        s.set_bridged(false);
        inband_five(&mut s, caller, t0, 10);
        assert_eq!(digits(&mut s), ['5']);
        // RFC 4733.
        let mut s = Session::new(t0, SystemTime::now(), config());
        s.set_bridged(true);
        let press = |s: &mut Session, seq: u16, ts: u32| {
            for k in 0..3u16 {
                let ev = TelephoneEvent {
                    event: 9,
                    end: k == 2,
                    volume: 10,
                    duration: 160 * (k + 1),
                };
                s.handle_rtp(t0, caller, &rtp_packet(101, seq + k, ts, &ev.to_bytes()));
            }
        };
        press(&mut s, 0, 0);
        assert!(digits(&mut s).is_empty());
        assert_eq!(std::iter::from_fn(|| s.poll_relay()).count(), 3);
        s.set_bridged(false);
        press(&mut s, 3, 800);
        assert_eq!(digits(&mut s), ['9']);
    }

    /// The RTP timestamp, packet count and octet count of a sender report.
    fn report(sr: &[u8]) -> (u32, u32, u32) {
        let word = |i: usize| u32::from_be_bytes(sr[i..i + 4].try_into().unwrap());
        (word(16), word(20), word(24))
    }

    #[test]
    fn bridged_ticks_send_nothing_and_reports_count_relayed_packets() {
        let t0 = Instant::now();
        let mut s = Session::new(t0, SystemTime::now(), config());
        // Hold music while the operator's phone rings.
        s.enqueue(tone_prompt(1000));
        s.set_loop(true);
        s.handle_timeout(t0);
        s.handle_timeout(t0 + Duration::from_millis(20));
        assert_eq!(std::iter::from_fn(|| s.poll_transmit()).count(), 2);
        // Answered at 40 ms: two seconds of the operator's audio.
        s.set_bridged(true);
        assert!(s.is_idle());
        for i in 0..100u16 {
            let at = t0 + Duration::from_millis(40 + 20 * u64::from(i));
            let p = RelayPacket::new(
                RelayKind::Audio(Law::A),
                false,
                i,
                u32::from(i) * 160,
                77,
                &[0xD5; 160],
            )
            .unwrap();
            s.send_relayed(at, &p);
        }
        assert_eq!(std::iter::from_fn(|| s.poll_transmit()).count(), 100);
        // Ten seconds of timers: only the RTCP timer runs, and only reports go out.
        let mut reports = vec![];
        let end = t0 + Duration::from_secs(10);
        while s.poll_timeout() <= end {
            let at = s.poll_timeout();
            assert!(at == t0 + RTCP_INTERVAL || at == end, "{:?}", at - t0);
            s.handle_timeout(at);
            while let Some((ch, _, t)) = s.poll_transmit() {
                assert_eq!(ch, Channel::Rtcp);
                reports.push(report(&t));
            }
        }
        // 102 packets of 160 bytes; the timestamp runs on from the last relayed
        // packet (sent at 2.02 s, numbered from 1320 after the music) with the clock.
        let last = 1320 + 100 * 160;
        assert_eq!(
            reports,
            [
                (last + (5000 - 2020) * 8, 102, 102 * 160),
                (last + (10_000 - 2020) * 8, 102, 102 * 160)
            ]
        );
        // The bridge ends at 10.5 s: the goodbye prompt continues the sequence,
        // back on the session's clock (frame 525: 1000 + 525·160), marked.
        let at = t0 + Duration::from_millis(10_500);
        s.set_bridged(false);
        s.enqueue(tone_prompt(100));
        assert!(s.poll_timeout() <= at);
        s.handle_timeout(at);
        s.handle_timeout(at + Duration::from_millis(20));
        let got: Vec<_> = std::iter::from_fn(|| s.poll_transmit())
            .map(|(_, _, t)| {
                let p = rtp::parse(&t).unwrap();
                (p.sequence, p.timestamp, p.marker)
            })
            .collect();
        assert_eq!(got, [(202, 85_000, true), (203, 85_160, false)]);
        // Neither the bridged time nor the jump back count as late or skipped frames.
        assert_eq!(s.stats().frames_skipped, 0);
        assert_eq!(s.take_lateness().count(), 3);
    }
}
