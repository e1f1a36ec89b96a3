//! RTP packets (RFC 3550 §5.1), built into caller buffers and parsed without copying.
//!
//! The wire format is `rtp-rs`'s; this module adds what a sender has to remember
//! between packets: one SSRC, a sequence number and a timestamp that run on across
//! prompts, and the marker bit on the first packet of each talkspurt
//! (RFC 3551 §4.1). Neither direction allocates.
//!
//! Timestamps count samples at the 8 kHz clock of G.711 and telephone-event;
//! for G.711 one payload byte is one sample.

use rtp_rs::{RtpPacketBuilder, RtpReader, RtpReaderError, Seq};

use crate::MediaError;

/// The length of an RTP header without CSRCs or extension.
pub const HEADER_LEN: usize = 12;

/// The sending side of one RTP stream.
///
/// The shell picks the SSRC and the initial sequence number and timestamp at
/// random (RFC 3550 §5.1, §8) and passes them in: this crate has no random source.
#[derive(Debug, Clone)]
pub struct RtpSender {
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    /// The next packet starts a talkspurt: set the marker bit (RFC 3551 §4.1).
    talkspurt: bool,
}

impl RtpSender {
    /// A stream whose first packet carries `sequence` and `timestamp`, with the marker set.
    pub fn new(ssrc: u32, sequence: u16, timestamp: u32) -> Self {
        Self {
            ssrc,
            sequence,
            timestamp,
            talkspurt: true,
        }
    }

    /// The synchronisation source of every packet.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The sequence number the next packet will carry.
    pub fn sequence(&self) -> u16 {
        self.sequence
    }

    /// The timestamp the next packet will carry.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// Write a G.711 packet (one payload byte per sample) into `out` and return its
    /// length. The timestamp then advances by `payload.len()` samples, the sequence by one.
    ///
    /// The marker bit is set if `marker` is, or if this is the first packet of the
    /// stream or the first after [`advance_silence`](Self::advance_silence).
    pub fn packet_into(
        &mut self,
        payload_type: u8,
        marker: bool,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, MediaError> {
        // A payload longer than u32::MAX samples cannot fit in any buffer; saturate.
        let samples = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        self.packet_into_samples(payload_type, marker, payload, samples, out)
    }

    /// As [`packet_into`](Self::packet_into) for payloads whose duration is not their
    /// length: the timestamp advances by `samples` after this packet.
    pub fn packet_into_samples(
        &mut self,
        payload_type: u8,
        marker: bool,
        payload: &[u8],
        samples: u32,
        out: &mut [u8],
    ) -> Result<usize, MediaError> {
        if payload_type > 127 {
            return Err(MediaError::PayloadType(payload_type));
        }
        let needed = HEADER_LEN + payload.len();
        if out.len() < needed {
            return Err(MediaError::BufferTooSmall {
                needed,
                available: out.len(),
            });
        }
        let builder = RtpPacketBuilder::new()
            .payload_type(payload_type)
            .marked(marker || self.talkspurt)
            .ssrc(self.ssrc)
            .sequence(Seq::from(self.sequence))
            .timestamp(self.timestamp)
            .payload(payload);
        // Both conditions `build_into` checks were checked above.
        let len = builder.build_into_unchecked(out);
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(samples);
        self.talkspurt = false;
        Ok(len)
    }

    /// Write a packet relayed from another stream (a bridge): this stream's SSRC,
    /// but the `sequence`, `timestamp` and `marker` the caller computed, the
    /// source's numbers plus fixed offsets, so that loss, reordering and timing
    /// pass through. `samples` is how long the packet lasts.
    ///
    /// Afterwards the sender continues after the newest packet written: the next
    /// sequence number is one past the newest, the next timestamp at least the
    /// newest packet's timestamp plus its `samples`, and the next packet from
    /// [`packet_into`](Self::packet_into) starts a talkspurt. An older (reordered)
    /// packet moves nothing. On error nothing moves.
    #[allow(clippy::too_many_arguments)]
    pub fn relay_into(
        &mut self,
        payload_type: u8,
        marker: bool,
        sequence: u16,
        timestamp: u32,
        samples: u32,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, MediaError> {
        if payload_type > 127 {
            return Err(MediaError::PayloadType(payload_type));
        }
        let needed = HEADER_LEN + payload.len();
        if out.len() < needed {
            return Err(MediaError::BufferTooSmall {
                needed,
                available: out.len(),
            });
        }
        let len = RtpPacketBuilder::new()
            .payload_type(payload_type)
            .marked(marker)
            .ssrc(self.ssrc)
            .sequence(Seq::from(sequence))
            .timestamp(timestamp)
            .payload(payload)
            .build_into_unchecked(out);
        if sequence.wrapping_sub(self.sequence) as i16 >= 0 {
            self.sequence = sequence.wrapping_add(1);
        }
        let end = timestamp.wrapping_add(samples);
        if end.wrapping_sub(self.timestamp) as i32 > 0 {
            self.timestamp = end;
        }
        self.talkspurt = true;
        Ok(len)
    }

    /// Let `samples` of silence pass without sending anything: the timestamp keeps
    /// running with the clock (the sequence does not), and the next packet starts a
    /// new talkspurt, so it carries the marker bit (RFC 3551 §4.1).
    pub fn advance_silence(&mut self, samples: u32) {
        if samples > 0 {
            self.timestamp = self.timestamp.wrapping_add(samples);
            self.talkspurt = true;
        }
    }
}

/// The fields of a received RTP packet that the media core uses; the payload
/// borrows the datagram and excludes any padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The payload type (7 bits).
    pub payload_type: u8,
    /// The sequence number.
    pub sequence: u16,
    /// The media timestamp.
    pub timestamp: u32,
    /// The synchronisation source.
    pub ssrc: u32,
    /// The marker bit.
    pub marker: bool,
    /// The payload, after CSRCs and header extension, before padding.
    pub payload: &'a [u8],
}

/// Parse one datagram as an RTP packet (version 2 only).
pub fn parse(datagram: &[u8]) -> Result<RtpPacket<'_>, MediaError> {
    let reader = RtpReader::new(datagram).map_err(|e| {
        MediaError::MalformedRtp(match e {
            RtpReaderError::BufferTooShort(_) => "shorter than the 12-byte header",
            RtpReaderError::UnsupportedVersion(_) => "not RTP version 2",
            RtpReaderError::HeadersTruncated { .. } => "CSRC list or extension truncated",
            RtpReaderError::PaddingLengthInvalid(_) => "invalid padding length",
        })
    })?;
    Ok(RtpPacket {
        payload_type: reader.payload_type(),
        sequence: reader.sequence_number().into(),
        timestamp: reader.timestamp(),
        ssrc: reader.ssrc(),
        marker: reader.mark(),
        payload: reader.payload(),
    })
}

#[cfg(test)]
mod tests {
    use rtp_rs::Pad;

    use super::*;

    #[test]
    fn builds_and_parses_a_g711_packet() {
        let mut tx = RtpSender::new(0xDEAD_BEEF, 1000, 5000);
        let payload = [0xFFu8; 160];
        let mut buf = [0u8; 1500];
        let len = tx.packet_into(0, false, &payload, &mut buf).unwrap();
        assert_eq!(len, 172);
        let p = parse(&buf[..len]).unwrap();
        assert_eq!(
            p,
            RtpPacket {
                payload_type: 0,
                sequence: 1000,
                timestamp: 5000,
                ssrc: 0xDEAD_BEEF,
                marker: true,
                payload: &payload,
            }
        );
        assert_eq!((tx.sequence(), tx.timestamp()), (1001, 5160));
        let len = tx.packet_into(0, false, &payload, &mut buf).unwrap();
        let p = parse(&buf[..len]).unwrap();
        assert!(!p.marker);
        assert_eq!((p.sequence, p.timestamp), (1001, 5160));
    }

    #[test]
    fn sequence_and_timestamp_wrap() {
        let mut tx = RtpSender::new(7, u16::MAX, u32::MAX - 159);
        let payload = [0xD5u8; 160];
        let mut buf = [0u8; 200];
        let mut seen = Vec::new();
        for _ in 0..3 {
            let len = tx.packet_into(8, false, &payload, &mut buf).unwrap();
            let p = parse(&buf[..len]).unwrap();
            seen.push((p.sequence, p.timestamp));
        }
        assert_eq!(seen, [(u16::MAX, u32::MAX - 159), (0, 0), (1, 160)]);
    }

    #[test]
    fn marker_on_first_packet_after_silence_only() {
        let mut tx = RtpSender::new(7, 10, 0);
        let payload = [0xFFu8; 160];
        let mut buf = [0u8; 200];
        let mut marks = Vec::new();
        let mut send = |tx: &mut RtpSender| {
            let len = tx.packet_into(0, false, &payload, &mut buf).unwrap();
            let p = parse(&buf[..len]).unwrap();
            marks.push((p.sequence, p.timestamp, p.marker));
        };
        send(&mut tx);
        send(&mut tx);
        tx.advance_silence(0); // nothing elapsed: not a new talkspurt
        send(&mut tx);
        tx.advance_silence(800); // 100 ms with nothing sent
        send(&mut tx);
        send(&mut tx);
        assert_eq!(
            marks,
            [
                (10, 0, true),
                (11, 160, false),
                (12, 320, false),
                (13, 1280, true),
                (14, 1440, false)
            ]
        );
    }

    #[test]
    fn caller_marker_and_explicit_durations() {
        let mut tx = RtpSender::new(1, 0, 0);
        let mut buf = [0u8; 64];
        tx.packet_into(0, false, &[0; 4], &mut buf).unwrap();
        // A telephone-event packet that does not move the clock.
        let len = tx
            .packet_into_samples(101, true, &[1, 0x0A, 0, 160], 0, &mut buf)
            .unwrap();
        let p = parse(&buf[..len]).unwrap();
        assert!(p.marker);
        assert_eq!((p.payload_type, p.timestamp), (101, 4));
        assert_eq!(tx.timestamp(), 4);
    }

    #[test]
    fn relayed_packets_keep_their_numbers_and_the_stream_continues() {
        let mut tx = RtpSender::new(0xABCD, 10, 1000);
        let mut buf = [0u8; 200];
        let payload = [0x55u8; 160];
        let len = tx
            .relay_into(8, true, 500, 9000, 160, &payload, &mut buf)
            .unwrap();
        let p = parse(&buf[..len]).unwrap();
        assert_eq!(
            (p.ssrc, p.payload_type, p.marker, p.sequence, p.timestamp),
            (0xABCD, 8, true, 500, 9000)
        );
        assert_eq!((tx.sequence(), tx.timestamp()), (501, 9160));
        // A reordered, older packet moves nothing.
        tx.relay_into(8, false, 498, 8680, 160, &payload, &mut buf)
            .unwrap();
        assert_eq!((tx.sequence(), tx.timestamp()), (501, 9160));
        // A gap (lost 501) passes through; the stream continues after the newest.
        tx.relay_into(8, false, 502, 9320, 160, &payload, &mut buf)
            .unwrap();
        assert_eq!((tx.sequence(), tx.timestamp()), (503, 9480));
        // The next own packet starts a talkspurt after the relayed ones.
        let len = tx.packet_into(8, false, &payload, &mut buf).unwrap();
        let p = parse(&buf[..len]).unwrap();
        assert_eq!((p.sequence, p.timestamp, p.marker), (503, 9480, true));
        assert!(tx.relay_into(128, false, 0, 0, 0, &[], &mut buf).is_err());
        assert!(
            tx.relay_into(8, false, 0, 0, 0, &payload, &mut [0; 20])
                .is_err()
        );
        assert_eq!((tx.sequence(), tx.timestamp()), (504, 9640));
    }

    #[test]
    fn rejects_small_buffers_and_bad_payload_types() {
        let mut tx = RtpSender::new(1, 0, 0);
        let mut buf = [0u8; 100];
        assert_eq!(
            tx.packet_into(0, false, &[0; 160], &mut buf),
            Err(MediaError::BufferTooSmall {
                needed: 172,
                available: 100
            })
        );
        assert_eq!(
            tx.packet_into(128, false, &[0; 10], &mut buf),
            Err(MediaError::PayloadType(128))
        );
        // Nothing was sent, so nothing moved.
        assert_eq!((tx.sequence(), tx.timestamp()), (0, 0));
    }

    #[test]
    fn padding_is_removed_by_the_reader() {
        let payload = [1u8, 2, 3, 4, 5];
        let packet = RtpPacketBuilder::new()
            .payload_type(0)
            .sequence(Seq::from(9))
            .padded(Pad::round_to(4))
            .payload(&payload)
            .build()
            .unwrap();
        assert_eq!(packet.len(), 20); // 12 + 5 + 3 bytes of padding
        let p = parse(&packet).unwrap();
        assert_eq!(p.payload, &payload);

        let mut bad = packet.clone();
        *bad.last_mut().unwrap() = 0; // padding length 0
        assert!(matches!(parse(&bad), Err(MediaError::MalformedRtp(_))));
        let mut bad = packet;
        *bad.last_mut().unwrap() = 200; // more padding than packet
        assert!(matches!(parse(&bad), Err(MediaError::MalformedRtp(_))));
    }

    #[test]
    fn skips_csrcs_and_extension() {
        let ext = [0u8; 8];
        let packet = RtpPacketBuilder::new()
            .payload_type(8)
            .add_csrc(11)
            .add_csrc(12)
            .extension(0xBEDE, &ext)
            .payload(&[7, 7, 7])
            .build()
            .unwrap();
        let p = parse(&packet).unwrap();
        assert_eq!(p.payload, &[7, 7, 7]);
    }

    #[test]
    fn malformed_packets_are_errors() {
        assert!(parse(&[]).is_err());
        assert!(parse(&[0x80; 11]).is_err());
        let mut v1 = [0u8; 12];
        v1[0] = 0x40;
        assert!(parse(&v1).is_err());
        let mut truncated_csrc = [0u8; 12];
        truncated_csrc[0] = 0x82; // two CSRCs announced, none present
        assert!(parse(&truncated_csrc).is_err());
    }
}
