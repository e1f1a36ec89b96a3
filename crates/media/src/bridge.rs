//! The bridged conversation, recorded: both legs' audio into one stereo WAV,
//! caller left, operator right, on one timeline.
//!
//! The call task relays packets between the two legs with
//! [`Session::poll_relay`](crate::session::Session::poll_relay) and
//! [`Session::send_relayed`](crate::session::Session::send_relayed), and hands each
//! relayed packet to [`ConversationMixer::push`] too; [`ConversationMixer::tick`]
//! (every 20 ms or so) writes the frames that are complete, and
//! [`ConversationMixer::finish`] the rest, when the bridge ends.
//!
//! ```text
//! caller leg   ──poll_relay──► push(now, Side::Caller, &p)   ─┐
//! operator leg ──poll_relay──► push(now, Side::Operator, &p) ─┴► tick(now, &mut rec) ─► stereo WAV
//! ```
//!
//! # Timeline
//! - Sample `n` of the recording is `n / 8000` s after [`ConversationMixer::new`];
//!   the recording's length is the time from `new` to `finish`, to the sample,
//!   whatever was lost, late or never sent.
//! - Each side is placed by RTP timestamp. The first audio packet of a side, of
//!   each new SSRC, and any packet whose timestamp puts it more than the buffer
//!   (1 s) away from its arrival time (a timestamp jump), is placed at its
//!   arrival time; the packets after it follow from their timestamps, so jitter
//!   does not move them and a lost packet leaves 20 ms of silence in its place.
//! - [`tick`](ConversationMixer::tick) writes every whole 20 ms stereo frame that
//!   ends at least [`JITTER_ALLOWANCE`] (100 ms) before `now`; a missing sample
//!   is silence. Both channels are written together, frame by frame, so they
//!   stay aligned.
//! - A packet whose place was already written is dropped and counted
//!   ([`MixerStats::late`]); one beyond the buffer (tick not called for about a
//!   second) too ([`MixerStats::overrun`]). Telephone-events are not rendered:
//!   a key press is the silence (or whatever audio the phone sent) in its place.
//!
//! One ring of [`RING_SAMPLES`] (1 s) per side, allocated in
//! [`new`](ConversationMixer::new) and zeroed as frames are written: no
//! allocation per packet. It writes into any [`AudioSink`]: the shell's media
//! loop gives it a [`RecordSink`](crate::sink::RecordSink), whose samples a
//! recording writer puts on disk, as for messages.

use std::time::{Duration, Instant};

use crate::g711;
use crate::prompt::FRAME_SAMPLES;
use crate::recorder::SAMPLE_RATE;
use crate::session::{RelayKind, RelayPacket};
use crate::sink::AudioSink;

/// How long a frame waits for late packets before it is written.
pub const JITTER_ALLOWANCE: Duration = Duration::from_millis(100);

/// Samples each side's ring holds: 1 s at 8 kHz, a whole number of 20 ms frames.
pub const RING_SAMPLES: usize = SAMPLE_RATE as usize;
const _: () = assert!(RING_SAMPLES.is_multiple_of(FRAME_SAMPLES));

/// [`JITTER_ALLOWANCE`] in samples.
const ALLOWANCE_SAMPLES: u64 = JITTER_ALLOWANCE.as_millis() as u64 * SAMPLE_RATE as u64 / 1000;

/// Which leg of the bridge a packet came from, and which channel it goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The caller: the left channel.
    Caller,
    /// The operator: the right channel.
    Operator,
}

/// Counters, for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MixerStats {
    /// Audio packets placed on the timeline (in part, if partly late).
    pub packets: u64,
    /// Packets that arrived after their place was written: dropped.
    pub late: u64,
    /// Packets beyond the buffer (the shell did not tick for a second): dropped.
    pub overrun: u64,
    /// Times a side was placed at an arrival time: its first packet, a new SSRC,
    /// a timestamp jump.
    pub anchors: u64,
}

/// Where one side's RTP timestamps fall on the timeline.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    ssrc: u32,
    timestamp: u32,
    /// The sample position of `timestamp`.
    position: u64,
}

#[derive(Debug)]
struct Track {
    /// Sample `p` of the timeline is at `ring[p % RING_SAMPLES]`, for `p` from
    /// what was written up to a second later.
    ring: Box<[i16]>,
    anchor: Option<Anchor>,
}

/// Mixes both legs of a bridge into a stereo recording. See the [module docs](self).
#[derive(Debug)]
pub struct ConversationMixer {
    start: Instant,
    tracks: [Track; 2],
    /// Samples (per channel) written so far.
    written: u64,
    finished: bool,
    stats: MixerStats,
}

impl ConversationMixer {
    /// A conversation that starts at `now` (the bridge), with its buffers.
    pub fn new(now: Instant) -> Self {
        let track = || Track {
            ring: vec![0; RING_SAMPLES].into_boxed_slice(),
            anchor: None,
        };
        Self {
            start: now,
            tracks: [track(), track()],
            written: 0,
            finished: false,
            stats: MixerStats::default(),
        }
    }

    /// A packet relayed from `side`, received at `now`. Audio is decoded onto
    /// that side's timeline; telephone-events are ignored.
    pub fn push(&mut self, now: Instant, side: Side, p: &RelayPacket) {
        let RelayKind::Audio(law) = p.kind else {
            return;
        };
        if self.finished {
            return;
        }
        let arrival = self.position(now);
        let track = &mut self.tracks[side as usize];
        let from_timestamp = track.anchor.filter(|a| a.ssrc == p.ssrc).map(|a| {
            let delta = i64::from(p.timestamp.wrapping_sub(a.timestamp) as i32);
            a.position as i64 + delta
        });
        let position = match from_timestamp {
            Some(pos) if pos >= 0 && pos.abs_diff(arrival as i64) <= RING_SAMPLES as u64 => {
                pos as u64
            }
            _ => {
                self.stats.anchors += 1;
                track.anchor = None;
                arrival
            }
        };
        if track.anchor.is_none_or(|a| position > a.position) {
            track.anchor = Some(Anchor {
                ssrc: p.ssrc,
                timestamp: p.timestamp,
                position,
            });
        }
        let payload = p.payload();
        let end = position + payload.len() as u64;
        if end <= self.written {
            self.stats.late += 1;
            return;
        }
        if end > self.written + RING_SAMPLES as u64 {
            self.stats.overrun += 1;
            return;
        }
        self.stats.packets += 1;
        // The part not written yet, in at most two pieces of the ring.
        let skip = self.written.saturating_sub(position);
        let mut rest = &payload[skip as usize..];
        let mut at = position + skip;
        while !rest.is_empty() {
            let index = (at % RING_SAMPLES as u64) as usize;
            let n = rest.len().min(RING_SAMPLES - index);
            g711::decode_into(law, &rest[..n], &mut track.ring[index..index + n]);
            rest = &rest[n..];
            at += n as u64;
        }
    }

    /// Writes every whole 20 ms frame that ends at least [`JITTER_ALLOWANCE`]
    /// before `now`. On a write error the frame stays to be written.
    pub fn tick<S: AudioSink>(&mut self, now: Instant, rec: &mut S) -> Result<(), S::Error> {
        if self.finished {
            return Ok(());
        }
        let ready = self.position(now).saturating_sub(ALLOWANCE_SAMPLES);
        self.write_until(ready - ready % FRAME_SAMPLES as u64, rec)
    }

    /// Writes the rest, up to `now` (the end of the bridge): the recording then
    /// lasts from [`new`](Self::new) to `now`. Later calls write nothing.
    pub fn finish<S: AudioSink>(&mut self, now: Instant, rec: &mut S) -> Result<(), S::Error> {
        if self.finished {
            return Ok(());
        }
        self.write_until(self.position(now), rec)?;
        self.finished = true;
        Ok(())
    }

    /// Samples written per channel so far; 8000 is one second.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Counters.
    pub fn stats(&self) -> MixerStats {
        self.stats
    }

    /// The sample position of `now` on the timeline.
    fn position(&self, now: Instant) -> u64 {
        let ns = now.saturating_duration_since(self.start).as_nanos();
        u64::try_from(ns * u128::from(SAMPLE_RATE) / 1_000_000_000).unwrap_or(u64::MAX)
    }

    fn write_until<S: AudioSink>(&mut self, end: u64, rec: &mut S) -> Result<(), S::Error> {
        let [caller, operator] = &mut self.tracks;
        while self.written < end {
            let index = (self.written % RING_SAMPLES as u64) as usize;
            // Frames never straddle the end of the ring: it holds whole frames.
            let n =
                (end - self.written).min((FRAME_SAMPLES - index % FRAME_SAMPLES) as u64) as usize;
            let (left, right) = (
                &mut caller.ring[index..index + n],
                &mut operator.ring[index..index + n],
            );
            rec.write_stereo(left, right)?;
            left.fill(0);
            right.fill(0);
            self.written += n as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::g711::Law;
    use crate::recorder::Recorder;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn audio(law: Law, seq: u16, ts: u32, ssrc: u32, value: i16) -> RelayPacket {
        let payload = [law.encode(value); 160];
        RelayPacket::new(RelayKind::Audio(law), false, seq, ts, ssrc, &payload).unwrap()
    }

    fn read(path: &std::path::Path) -> (Vec<i16>, Vec<i16>) {
        let mut r = hound::WavReader::open(path).unwrap();
        assert_eq!(r.spec().channels, 2);
        let all: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
        (
            all.iter().step_by(2).copied().collect(),
            all.iter().skip(1).step_by(2).copied().collect(),
        )
    }

    #[test]
    fn places_by_timestamp_waits_for_jitter_and_pads_to_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::create(dir.path(), "conv", 2).unwrap();
        let t0 = Instant::now();
        let mut m = ConversationMixer::new(t0);
        // Caller packets 0..10 from 40 ms on, 1 and 2 swapped, 5 lost; operator
        // packets 0..10 from 40 ms on, in order.
        let caller = [
            Some(0u16),
            Some(2),
            Some(1),
            Some(3),
            Some(4),
            None,
            Some(6),
            Some(7),
            Some(8),
            Some(9),
        ];
        for (i, c) in (0..10u16).zip(caller) {
            let at = t0 + ms(40 + 20 * u64::from(i));
            m.push(
                at,
                Side::Operator,
                &audio(Law::A, 7 + i, 160 * u32::from(i), 2, -2000),
            );
            let at = at + ms(5);
            if let Some(c) = c {
                m.push(
                    at,
                    Side::Caller,
                    &audio(Law::Mu, c, 1000 + 160 * u32::from(c), 1, 1000),
                );
            }
            m.tick(at, &mut rec).unwrap();
        }
        // At 300 ms the frames up to 200 ms are written.
        m.tick(t0 + ms(300), &mut rec).unwrap();
        assert_eq!(m.written(), 1600);
        m.finish(t0 + ms(512), &mut rec).unwrap();
        assert_eq!(m.written(), 4096);
        assert_eq!(
            m.stats(),
            MixerStats {
                packets: 19,
                late: 0,
                overrun: 0,
                anchors: 2
            }
        );
        let done = rec.finish().unwrap();
        assert_eq!(done.duration_ms, 512);
        let (left, right) = read(&done.path);
        assert_eq!((left.len(), right.len()), (4096, 4096));
        let mu = Law::Mu.decode(Law::Mu.encode(1000));
        let a = Law::A.decode(Law::A.encode(-2000));
        // The caller's first packet arrived at 45 ms; the operator's at 40 ms.
        let caller_at = |i: usize| 360 + 160 * i;
        for i in 0..10 {
            let want = if i == 5 { 0 } else { mu };
            assert!(
                left[caller_at(i)..caller_at(i) + 160]
                    .iter()
                    .all(|&s| s == want)
            );
            assert!(right[320 + 160 * i..480 + 160 * i].iter().all(|&s| s == a));
        }
        assert!(
            left[..360]
                .iter()
                .chain(&left[caller_at(10)..])
                .all(|&s| s == 0)
        );
        assert!(right[..320].iter().chain(&right[1920..]).all(|&s| s == 0));
    }

    #[test]
    fn late_packets_are_dropped_and_new_sources_placed_at_arrival() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::create(dir.path(), "late", 2).unwrap();
        let t0 = Instant::now();
        let mut m = ConversationMixer::new(t0);
        m.push(t0, Side::Caller, &audio(Law::Mu, 0, 0, 1, 500));
        m.tick(t0 + ms(300), &mut rec).unwrap();
        assert_eq!(m.written(), 1600);
        // Packet 1 comes 260 ms late: its place (20-40 ms) is written.
        m.push(t0 + ms(300), Side::Caller, &audio(Law::Mu, 1, 160, 1, 500));
        assert_eq!(m.stats().late, 1);
        // A new SSRC, and a timestamp jump of 10 s, start at their arrival.
        m.push(
            t0 + ms(400),
            Side::Caller,
            &audio(Law::Mu, 0, 99_999, 2, 500),
        );
        m.push(
            t0 + ms(600),
            Side::Caller,
            &audio(Law::Mu, 1, 99_999 + 80_000, 2, 500),
        );
        // The same SSRC on the other side is another stream.
        m.push(
            t0 + ms(600),
            Side::Operator,
            &audio(Law::Mu, 1, 160, 1, 500),
        );
        assert_eq!(m.stats().anchors, 4);
        m.finish(t0 + ms(1000), &mut rec).unwrap();
        let (left, right) = read(&rec.finish().unwrap().path);
        let loud = |s: &[i16]| s.iter().all(|&x| x != 0);
        let quiet = |s: &[i16]| s.iter().all(|&x| x == 0);
        assert!(loud(&left[..160]) && quiet(&left[160..3200]));
        assert!(loud(&left[3200..3360]) && quiet(&left[3360..4800]));
        assert!(loud(&left[4800..4960]) && quiet(&left[4960..]));
        assert!(quiet(&right[..4800]) && loud(&right[4800..4960]) && quiet(&right[4960..]));
    }

    #[test]
    fn a_long_stall_writes_silence_and_drops_what_did_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::create(dir.path(), "stall", 2).unwrap();
        let t0 = Instant::now();
        let mut m = ConversationMixer::new(t0);
        // No tick for 3 s: packets placed more than a second after what was
        // written do not fit.
        for i in 0..150u16 {
            let at = t0 + ms(20 * u64::from(i));
            m.push(
                at,
                Side::Operator,
                &audio(Law::A, i, 160 * u32::from(i), 9, 300),
            );
        }
        assert_eq!(m.stats().packets, 50);
        assert_eq!(m.stats().overrun, 100);
        m.tick(t0 + ms(3000), &mut rec).unwrap();
        assert_eq!(m.written(), 8 * 2900);
        m.finish(t0 + ms(3001), &mut rec).unwrap();
        // Events and packets after the end change nothing.
        let ev = RelayPacket::new(RelayKind::Event, true, 1, 1, 1, &[1, 0x80, 0, 160]).unwrap();
        m.push(t0 + ms(3002), Side::Caller, &ev);
        m.push(t0 + ms(3002), Side::Caller, &audio(Law::A, 0, 0, 3, 300));
        m.tick(t0 + ms(5000), &mut rec).unwrap();
        m.finish(t0 + ms(5000), &mut rec).unwrap();
        assert_eq!(m.written(), 24_008);
        let (_, right) = read(&rec.finish().unwrap().path);
        assert!(right[..8000].iter().all(|&s| s != 0));
        assert!(right[8000..].iter().all(|&s| s == 0));
    }
}
