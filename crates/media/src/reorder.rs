//! The reorder buffer in front of the recorder: RTP packets in, in any order;
//! frames out, in sequence order, with silence where audio is missing, so that the
//! recording lasts as long as the call did.
//!
//! # Rules
//! - Packets are placed by sequence number (16 bits, wrapping) in a ring of
//!   `window` slots. A frame is emitted as soon as every earlier one has been.
//! - A missing packet is waited for until a packet `window` places after it
//!   arrives, then given up: the next frame is preceded by silence as long as the
//!   timestamp gap, so a lost 20 ms packet becomes 20 ms of silence.
//! - A timestamp that jumps ahead with no missing sequence number (silence
//!   suppression, DTX, RFC 3551 §4.1) becomes silence of that length, capped at
//!   `max_silence` samples (a caller on hold for an hour need not be recorded as
//!   an hour of zeros). A timestamp that goes back adds nothing.
//! - Duplicates are dropped; so are packets older than what was already emitted.
//!   The first packet of a stream starts it: one older than it that arrives later
//!   is late.
//! - A new SSRC, or a sequence number that jumps by more than `max_dropout` ahead
//!   or `max_misorder` back (RFC 3550 appendix A.1), restarts the stream: what is
//!   buffered is flushed first. The silence between the two streams is unknown
//!   from RTP alone and is not inserted.
//!
//! Feed it audio packets only (PCMU/PCMA). Telephone-event packets share the
//! sequence space; leaving them out makes gaps that become silence of the right
//! length, which is what the recording should hold while a key was pressed.
//!
//! One payload byte is one sample (G.711 at 8 kHz). Storage is allocated once, in
//! [`ReorderBuffer::new`]; pushing and emitting never allocate. Frames are handed
//! to a callback because they borrow the buffer's slots.

use crate::MediaError;
use crate::rtp::RtpPacket;

/// Settings of a [`ReorderBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReorderConfig {
    /// Packets to wait before a gap is given up (at least 1). 5 × 20 ms = 100 ms.
    pub window: usize,
    /// The largest payload a slot holds; 160 bytes is 20 ms of G.711.
    pub max_payload: usize,
    /// The longest silence inserted for one gap, in samples.
    pub max_silence: u32,
    /// A jump ahead of this many sequence numbers or more restarts the stream.
    pub max_dropout: u16,
    /// A packet this many sequence numbers behind or fewer is late; further back restarts.
    pub max_misorder: u16,
}

impl Default for ReorderConfig {
    fn default() -> Self {
        Self {
            window: 5,
            max_payload: 160,
            max_silence: 8000 * 60,
            max_dropout: 3000,
            max_misorder: 100,
        }
    }
}

/// A piece of the recording, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A packet's payload.
    Audio {
        /// Its RTP timestamp.
        timestamp: u32,
        /// Its payload, one byte per sample.
        payload: &'a [u8],
    },
    /// Samples of silence standing for lost packets or suppressed silence.
    Silence {
        /// The RTP timestamp where the silence starts.
        timestamp: u32,
        /// How many samples.
        samples: u32,
    },
}

impl Frame<'_> {
    /// The length of the frame in samples.
    pub fn samples(&self) -> u32 {
        match self {
            // A payload is at most `max_payload` bytes, far below u32::MAX.
            Self::Audio { payload, .. } => payload.len() as u32,
            Self::Silence { samples, .. } => *samples,
        }
    }
}

/// What became of a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Taken (and possibly already emitted).
    Accepted,
    /// Already buffered: dropped.
    Duplicate,
    /// Older than what was already emitted: dropped.
    Late,
    /// Started a new stream; the old one was flushed first.
    Reset,
}

/// Orders one RTP stream's packets for recording. See the [module docs](self).
#[derive(Debug)]
pub struct ReorderBuffer {
    config: ReorderConfig,
    slots: Box<[Slot]>,
    data: Box<[u8]>,
    stream: Option<Stream>,
    buffered: usize,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    full: bool,
    timestamp: u32,
    len: usize,
}

#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: u32,
    /// The sequence number of the next frame to emit.
    next_sequence: u16,
    /// Its slot.
    head: usize,
    /// Where the audio emitted so far ends, in RTP time.
    next_timestamp: u32,
}

impl ReorderBuffer {
    /// A buffer with all its storage (`window × max_payload` bytes).
    pub fn new(config: ReorderConfig) -> Self {
        let config = ReorderConfig {
            window: config.window.max(1),
            ..config
        };
        Self {
            slots: vec![Slot::default(); config.window].into_boxed_slice(),
            data: vec![0; config.window * config.max_payload].into_boxed_slice(),
            config,
            stream: None,
            buffered: 0,
        }
    }

    /// Packets held, waiting for an earlier one.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Take one packet; `out` receives every frame this makes ready, in order.
    pub fn push(
        &mut self,
        packet: &RtpPacket<'_>,
        mut out: impl FnMut(Frame<'_>),
    ) -> Result<Pushed, MediaError> {
        if packet.payload.len() > self.config.max_payload {
            return Err(MediaError::PayloadTooLarge {
                len: packet.payload.len(),
                max: self.config.max_payload,
            });
        }
        let Some(stream) = self.stream else {
            self.start(packet, &mut out);
            return Ok(Pushed::Accepted);
        };
        let ahead = packet.sequence.wrapping_sub(stream.next_sequence) as i16;
        let restart = packet.ssrc != stream.ssrc
            || i32::from(ahead) >= i32::from(self.config.max_dropout)
            || i32::from(ahead) < -i32::from(self.config.max_misorder);
        if restart {
            self.flush(&mut out);
            self.start(packet, &mut out);
            return Ok(Pushed::Reset);
        }
        if ahead < 0 {
            return Ok(Pushed::Late);
        }
        // Give up the oldest places until the packet fits in the window.
        let mut ahead = ahead as usize;
        while ahead >= self.config.window {
            if self.buffered == 0 {
                // Nothing left to wait for: the rest of the gap is behind this packet.
                self.skip_to(packet.sequence);
                ahead = 0;
                break;
            }
            self.emit_head(&mut out);
            ahead -= 1;
        }
        let pushed = self.store(ahead, packet);
        self.drain_ready(&mut out);
        Ok(pushed)
    }

    /// Emit everything buffered, giving up on every gap (at the end of a call, or
    /// before a pause in recording). The stream goes on from there.
    pub fn flush(&mut self, mut out: impl FnMut(Frame<'_>)) {
        while self.buffered > 0 {
            self.emit_head(&mut out);
        }
    }

    fn start(&mut self, packet: &RtpPacket<'_>, out: &mut impl FnMut(Frame<'_>)) {
        self.stream = Some(Stream {
            ssrc: packet.ssrc,
            next_sequence: packet.sequence,
            head: 0,
            next_timestamp: packet.timestamp,
        });
        self.store(0, packet);
        self.drain_ready(out);
    }

    fn skip_to(&mut self, sequence: u16) {
        if let Some(s) = &mut self.stream {
            s.next_sequence = sequence;
        }
    }

    /// Put a packet `ahead` places after the head (`ahead < window`).
    fn store(&mut self, ahead: usize, packet: &RtpPacket<'_>) -> Pushed {
        let Some(stream) = self.stream else {
            return Pushed::Late;
        };
        let index = (stream.head + ahead) % self.config.window;
        let slot = &mut self.slots[index];
        if slot.full {
            return Pushed::Duplicate;
        }
        *slot = Slot {
            full: true,
            timestamp: packet.timestamp,
            len: packet.payload.len(),
        };
        let start = index * self.config.max_payload;
        self.data[start..start + packet.payload.len()].copy_from_slice(packet.payload);
        self.buffered += 1;
        Pushed::Accepted
    }

    fn drain_ready(&mut self, out: &mut impl FnMut(Frame<'_>)) {
        while let Some(s) = self.stream
            && self.slots[s.head].full
        {
            self.emit_head(out);
        }
    }

    /// Emit the head frame (preceded by silence for a timestamp gap) if it is
    /// there, and move on one sequence number either way.
    fn emit_head(&mut self, out: &mut impl FnMut(Frame<'_>)) {
        let Some(stream) = &mut self.stream else {
            return;
        };
        let slot = &mut self.slots[stream.head];
        if slot.full {
            let gap = slot.timestamp.wrapping_sub(stream.next_timestamp) as i32;
            if gap > 0 {
                let samples = (gap as u32).min(self.config.max_silence);
                out(Frame::Silence {
                    timestamp: stream.next_timestamp,
                    samples,
                });
            }
            let start = stream.head * self.config.max_payload;
            out(Frame::Audio {
                timestamp: slot.timestamp,
                payload: &self.data[start..start + slot.len],
            });
            stream.next_timestamp = slot.timestamp.wrapping_add(slot.len as u32);
            slot.full = false;
            self.buffered -= 1;
        }
        stream.next_sequence = stream.next_sequence.wrapping_add(1);
        stream.head = (stream.head + 1) % self.config.window;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A frame as owned data, for comparisons.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Out {
        Audio(u32, Vec<u8>),
        Silence(u32, u32),
    }

    fn packet(ssrc: u32, sequence: u16, timestamp: u32, payload: &[u8]) -> RtpPacket<'_> {
        RtpPacket {
            payload_type: 0,
            sequence,
            timestamp,
            ssrc,
            marker: false,
            payload,
        }
    }

    /// A 160-byte payload that names its packet.
    fn payload(sequence: u16) -> Vec<u8> {
        vec![sequence as u8; 160]
    }

    struct Harness {
        buf: ReorderBuffer,
        out: Vec<Out>,
    }

    impl Harness {
        fn new(config: ReorderConfig) -> Self {
            Self {
                buf: ReorderBuffer::new(config),
                out: Vec::new(),
            }
        }

        fn push(&mut self, ssrc: u32, sequence: u16, timestamp: u32) -> Pushed {
            let p = payload(sequence);
            let out = &mut self.out;
            self.buf
                .push(&packet(ssrc, sequence, timestamp, &p), |f| out.push(own(f)))
                .unwrap()
        }

        fn flush(&mut self) {
            let out = &mut self.out;
            self.buf.flush(|f| out.push(own(f)));
        }

        fn take(&mut self) -> Vec<Out> {
            std::mem::take(&mut self.out)
        }
    }

    fn own(f: Frame<'_>) -> Out {
        match f {
            Frame::Audio { timestamp, payload } => Out::Audio(timestamp, payload.to_vec()),
            Frame::Silence { timestamp, samples } => Out::Silence(timestamp, samples),
        }
    }

    fn audio(sequence: u16, timestamp: u32) -> Out {
        Out::Audio(timestamp, payload(sequence))
    }

    #[test]
    fn in_order_goes_straight_through() {
        let mut h = Harness::new(ReorderConfig::default());
        for i in 0..10u16 {
            assert_eq!(
                h.push(1, 100 + i, 8000 + u32::from(i) * 160),
                Pushed::Accepted
            );
            assert_eq!(h.take(), [audio(100 + i, 8000 + u32::from(i) * 160)]);
        }
        assert_eq!(h.buf.buffered(), 0);
    }

    #[test]
    fn reordered_within_the_window() {
        let mut h = Harness::new(ReorderConfig::default());
        h.push(1, 0, 0);
        h.push(1, 2, 320);
        h.push(1, 3, 480);
        assert_eq!(h.take(), [audio(0, 0)]);
        h.push(1, 1, 160);
        assert_eq!(h.take(), [audio(1, 160), audio(2, 320), audio(3, 480)]);
    }

    #[test]
    fn lost_packet_becomes_silence_of_equal_length() {
        let mut h = Harness::new(ReorderConfig::default());
        h.push(1, 0, 0);
        for i in 2..=5u16 {
            h.push(1, i, u32::from(i) * 160);
        }
        assert_eq!(h.take(), [audio(0, 0)]);
        assert_eq!(h.buf.buffered(), 4);
        // Packet 6 is five places after the gap: give packet 1 up.
        h.push(1, 6, 960);
        let mut expected = vec![Out::Silence(160, 160)];
        expected.extend((2..=6u16).map(|i| audio(i, u32::from(i) * 160)));
        assert_eq!(h.take(), expected);
        // It arrives after all: too late.
        assert_eq!(h.push(1, 1, 160), Pushed::Late);
        assert_eq!(h.take(), []);
    }

    #[test]
    fn burst_loss_is_one_silence() {
        let mut h = Harness::new(ReorderConfig::default());
        h.push(1, 0, 0);
        h.push(1, 40, 40 * 160);
        assert_eq!(
            h.take(),
            [
                audio(0, 0),
                Out::Silence(160, 39 * 160),
                audio(40, 40 * 160)
            ]
        );
    }

    #[test]
    fn long_outage_after_a_held_packet() {
        let mut h = Harness::new(ReorderConfig::default());
        h.push(1, 0, 0);
        h.push(1, 2, 320);
        h.push(1, 1000, 1000 * 160);
        assert_eq!(
            h.take(),
            [
                audio(0, 0),
                Out::Silence(160, 160),
                audio(2, 320),
                Out::Silence(480, 997 * 160),
                audio(1000, 1000 * 160)
            ]
        );
    }

    #[test]
    fn duplicates_are_dropped() {
        let mut h = Harness::new(ReorderConfig::default());
        h.push(1, 0, 0);
        h.push(1, 2, 320);
        assert_eq!(h.push(1, 2, 320), Pushed::Duplicate);
        assert_eq!(h.push(1, 0, 0), Pushed::Late);
        h.push(1, 1, 160);
        assert_eq!(h.take(), [audio(0, 0), audio(1, 160), audio(2, 320)]);
    }

    #[test]
    fn sequence_and_timestamp_wrap() {
        let mut h = Harness::new(ReorderConfig::default());
        let t0 = u32::MAX - 319;
        h.push(9, 65534, t0);
        h.push(9, 0, t0.wrapping_add(320));
        h.push(9, 65535, t0.wrapping_add(160));
        h.push(9, 1, t0.wrapping_add(480));
        assert_eq!(
            h.take(),
            [
                audio(65534, t0),
                audio(65535, t0 + 160),
                audio(0, 0),
                audio(1, 160)
            ]
        );
    }

    #[test]
    fn window_slots_do_not_collide_across_the_wrap() {
        // 65536 is not a multiple of 5: slots must follow the head, not `seq % window`.
        let mut h = Harness::new(ReorderConfig::default());
        h.push(1, 65533, 0);
        h.push(1, 0, 480);
        h.push(1, 65535, 320);
        h.push(1, 65534, 160);
        assert_eq!(
            h.take(),
            [
                audio(65533, 0),
                audio(65534, 160),
                audio(65535, 320),
                audio(0, 480)
            ]
        );
    }

    #[test]
    fn timestamp_jump_after_dtx_is_capped_silence() {
        let mut h = Harness::new(ReorderConfig {
            max_silence: 8000,
            ..ReorderConfig::default()
        });
        h.push(1, 0, 0);
        h.push(1, 1, 160 + 4000); // half a second of suppressed silence
        h.push(1, 2, 4320 + 80_000); // ten seconds, capped at one
        h.push(1, 3, 84_480);
        assert_eq!(
            h.take(),
            [
                audio(0, 0),
                Out::Silence(160, 4000),
                audio(1, 4160),
                Out::Silence(4320, 8000),
                audio(2, 84_320),
                audio(3, 84_480)
            ]
        );
    }

    #[test]
    fn timestamp_going_back_adds_nothing() {
        let mut h = Harness::new(ReorderConfig::default());
        h.push(1, 0, 1000);
        h.push(1, 1, 900);
        assert_eq!(h.take(), [audio(0, 1000), audio(1, 900)]);
    }

    #[test]
    fn new_ssrc_flushes_and_restarts() {
        let mut h = Harness::new(ReorderConfig::default());
        h.push(1, 0, 0);
        h.push(1, 2, 320);
        assert_eq!(h.take(), [audio(0, 0)]);
        assert_eq!(h.push(2, 5000, 777), Pushed::Reset);
        assert_eq!(
            h.take(),
            [Out::Silence(160, 160), audio(2, 320), audio(5000, 777)]
        );
        h.push(2, 5001, 937);
        assert_eq!(h.take(), [audio(5001, 937)]);
    }

    #[test]
    fn sequence_reset_flushes_and_restarts() {
        let mut h = Harness::new(ReorderConfig::default());
        h.push(1, 10_000, 0);
        assert_eq!(h.push(1, 20_000, 50), Pushed::Reset);
        assert_eq!(h.push(1, 19_000, 60), Pushed::Reset);
        assert_eq!(
            h.take(),
            [audio(10_000, 0), audio(20_000, 50), audio(19_000, 60)]
        );
    }

    #[test]
    fn flush_at_the_end() {
        let mut h = Harness::new(ReorderConfig::default());
        h.push(1, 0, 0);
        h.push(1, 2, 320);
        h.push(1, 4, 640);
        h.flush();
        assert_eq!(
            h.take(),
            [
                audio(0, 0),
                Out::Silence(160, 160),
                audio(2, 320),
                Out::Silence(480, 160),
                audio(4, 640)
            ]
        );
        assert_eq!(h.buf.buffered(), 0);
        h.push(1, 5, 800);
        assert_eq!(h.take(), [audio(5, 800)]);
    }

    #[test]
    fn oversized_payload_is_an_error() {
        let mut buf = ReorderBuffer::new(ReorderConfig::default());
        let big = [0u8; 161];
        assert_eq!(
            buf.push(&packet(1, 0, 0, &big), |_| {}),
            Err(MediaError::PayloadTooLarge { len: 161, max: 160 })
        );
    }

    /// A stream of `n` packets from random starting points, arriving in an order
    /// where each packet is displaced by less than the window.
    fn shuffled_within_window(window: usize) -> impl Strategy<Value = (u16, u32, Vec<usize>)> {
        (any::<u16>(), any::<u32>(), 1usize..80).prop_flat_map(move |(seq0, ts0, n)| {
            (Just(seq0), Just(ts0), prop::collection::vec(0..window, n)).prop_map(
                |(seq0, ts0, mut delays)| {
                    // The first packet starts the stream, so it arrives first.
                    delays[0] = 0;
                    let mut order: Vec<usize> = (0..delays.len()).collect();
                    // Sorting by i + delay (< window) means every packet `window` places
                    // before another has arrived before it.
                    order.sort_by_key(|&i| (i + delays[i], i));
                    (seq0, ts0, order)
                },
            )
        })
    }

    proptest! {
        #[test]
        fn any_permutation_within_the_window_comes_out_in_order(
            (seq0, ts0, order) in shuffled_within_window(5)
        ) {
            let mut h = Harness::new(ReorderConfig::default());
            for &i in &order {
                let seq = seq0.wrapping_add(i as u16);
                prop_assert_eq!(h.push(7, seq, ts0.wrapping_add(i as u32 * 160)), Pushed::Accepted);
            }
            let expected: Vec<Out> = (0..order.len())
                .map(|i| audio(seq0.wrapping_add(i as u16), ts0.wrapping_add(i as u32 * 160)))
                .collect();
            prop_assert_eq!(h.take(), expected);
        }

        /// Whatever is lost and however packets are reordered or duplicated, the
        /// recording spans the RTP time from the first packet to the end of the last.
        #[test]
        fn recording_length_equals_rtp_time(
            (seq0, ts0, order) in shuffled_within_window(8),
            lost in prop::collection::vec(any::<bool>(), 80),
            dup in any::<bool>(),
        ) {
            let n = order.len();
            let mut h = Harness::new(ReorderConfig { window: 5, ..ReorderConfig::default() });
            // The first and last packets arrive, first of all and last of all.
            let mut arrivals = vec![0];
            arrivals.extend(order.iter().copied().filter(|&i| i != 0 && i != n - 1 && !lost[i]));
            if n > 1 {
                arrivals.push(n - 1);
            }
            for &i in &arrivals {
                let times = if dup { 2 } else { 1 };
                for _ in 0..times {
                    h.push(7, seq0.wrapping_add(i as u16), ts0.wrapping_add(i as u32 * 160));
                }
            }
            h.flush();
            let out = h.take();
            let total: u64 = out.iter().map(|o| match o {
                Out::Audio(_, p) => p.len() as u64,
                Out::Silence(_, s) => u64::from(*s),
            }).sum();
            prop_assert_eq!(total, n as u64 * 160);
            // And audio frames come out in increasing RTP time.
            let times: Vec<u32> = out.iter().filter_map(|o| match o {
                Out::Audio(t, _) => Some(t.wrapping_sub(ts0)),
                Out::Silence(..) => None,
            }).collect();
            prop_assert!(times.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
