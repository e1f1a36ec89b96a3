//! DTMF digits as they reach us out of band: RFC 4733 telephone-event packets and
//! SIP INFO bodies.
//!
//! # One digit per key press
//! A sender reports one key press as a series of packets that all carry the RTP
//! timestamp of the moment the tone began (RFC 4733 §2.5.1): a start packet
//! (often with the marker bit), updates every 50 ms or so with a growing duration,
//! and the end packet, sent three times (§2.5.1.4). [`DtmfReceiver`] reports the
//! digit on the first packet of an event it sees, whichever that is, and then
//! ignores every other packet with the same timestamp. A lost start still gives one
//! digit (from an update or an end packet), a lost end changes nothing, and two
//! presses of the same key differ in timestamp.
//!
//! # Sources that reuse a timestamp
//! sipp's shipped `dtmf_2833_*.pcap` files (Debian `sip-tester`) hold one event
//! each; sipp replays a file byte for byte, so playing the same file twice sends
//! two identical series: same timestamp, same sequence numbers. That is
//! indistinguishable from a duplicated stream, and we report **one** digit for it.
//! Test scenarios that need the same digit twice must use files with different
//! timestamps. When a sender does advance the sequence number but reuses the
//! timestamp for a new press (a packet after the event's end, with a newer
//! sequence number, no end bit and a shorter duration), we report a second digit.
//!
//! # Long events
//! An event longer than the 16-bit duration field (about 8 s) continues as a new
//! segment with a timestamp 0xFFFF later (§2.5.1.3); that is the same key press.
//! (So is, by mistake, a new press of the same key 7.7 to 8.2 s after a press
//! whose end packets were all lost.)

use std::fmt;

use crate::MediaError;

/// A DTMF key, numbered as its RFC 4733 event code (§3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Digit {
    /// `0`, event 0.
    Zero = 0,
    /// `1`, event 1.
    One = 1,
    /// `2`, event 2.
    Two = 2,
    /// `3`, event 3.
    Three = 3,
    /// `4`, event 4.
    Four = 4,
    /// `5`, event 5.
    Five = 5,
    /// `6`, event 6.
    Six = 6,
    /// `7`, event 7.
    Seven = 7,
    /// `8`, event 8.
    Eight = 8,
    /// `9`, event 9.
    Nine = 9,
    /// `*`, event 10.
    Star = 10,
    /// `#`, event 11.
    Pound = 11,
    /// `A`, event 12.
    A = 12,
    /// `B`, event 13.
    B = 13,
    /// `C`, event 14.
    C = 14,
    /// `D`, event 15.
    D = 15,
}

impl Digit {
    /// All sixteen keys in event-code order.
    pub const ALL: [Self; 16] = [
        Self::Zero,
        Self::One,
        Self::Two,
        Self::Three,
        Self::Four,
        Self::Five,
        Self::Six,
        Self::Seven,
        Self::Eight,
        Self::Nine,
        Self::Star,
        Self::Pound,
        Self::A,
        Self::B,
        Self::C,
        Self::D,
    ];

    /// The key for an RFC 4733 event code; `None` for flash (16) and everything else.
    pub const fn from_event(event: u8) -> Option<Self> {
        if event < 16 {
            Some(Self::ALL[event as usize])
        } else {
            None
        }
    }

    /// The RFC 4733 event code.
    pub const fn event(self) -> u8 {
        self as u8
    }

    /// The key for a character: `0`-`9`, `*`, `#`, `A`-`D` (either case).
    pub const fn from_char(c: char) -> Option<Self> {
        match c {
            '0'..='9' => Some(Self::ALL[c as usize - '0' as usize]),
            '*' => Some(Self::Star),
            '#' => Some(Self::Pound),
            'A'..='D' => Some(Self::ALL[12 + c as usize - 'A' as usize]),
            'a'..='d' => Some(Self::ALL[12 + c as usize - 'a' as usize]),
            _ => None,
        }
    }

    /// The character on the key.
    pub const fn as_char(self) -> char {
        b"0123456789*#ABCD"[self as usize] as char
    }
}

impl fmt::Display for Digit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

/// The static part of an RFC 4733 §2.3 telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event code (0-15 are DTMF keys, 16 is flash).
    pub event: u8,
    /// The E bit: this is (a retransmission of) the event's last packet.
    pub end: bool,
    /// The power level, in −dBm0 (0..=63).
    pub volume: u8,
    /// The duration so far, in timestamp units (samples at 8 kHz).
    pub duration: u16,
}

impl TelephoneEvent {
    /// The length of one event on the wire.
    pub const LEN: usize = 4;

    /// Parse a payload. Bytes after the first four are ignored; the reserved bit too.
    pub fn parse(payload: &[u8]) -> Result<Self, MediaError> {
        let &[event, flags, d0, d1, ..] = payload else {
            return Err(MediaError::ShortEvent(payload.len()));
        };
        Ok(Self {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// The payload bytes.
    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let [d0, d1] = self.duration.to_be_bytes();
        [
            self.event,
            u8::from(self.end) << 7 | (self.volume & 0x3F),
            d0,
            d1,
        ]
    }
}

/// How many recent events [`DtmfReceiver`] remembers. Each key press takes at least
/// ~80 ms (40 ms tone + 40 ms pause), so eight cover well over half a second of
/// reordering.
const WINDOW: usize = 8;

/// RFC 4733 §2.5.1.3: a continuation segment starts one full segment later. Senders
/// may cut segments a little short of 0xFFFF (to a whole number of packets).
const SEGMENT_MIN: u32 = 0xF000;
const SEGMENT_MAX: u32 = 0xFFFF;

/// Turns telephone-event packets of one RTP stream into one [`Digit`] per key press.
///
/// Fixed size, no allocation. Call [`reset`](Self::reset) when the stream's SSRC changes.
#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    seen: [Option<Seen>; WINDOW],
    /// Where the next new event goes (the oldest entry).
    next: usize,
}

/// What we remember of one event.
#[derive(Debug, Clone, Copy)]
struct Seen {
    timestamp: u32,
    event: u8,
    /// Sequence number of the newest end packet, once one arrived.
    end_sequence: Option<u16>,
    /// Longest duration seen.
    duration: u16,
}

impl DtmfReceiver {
    /// A receiver that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget every event, for a new stream.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Feed one telephone-event packet: its RTP sequence number, timestamp and
    /// payload. Returns the digit if this packet is the first seen of a key press.
    /// Flash (16) and other non-key events are ignored.
    pub fn push(
        &mut self,
        sequence: u16,
        timestamp: u32,
        payload: &[u8],
    ) -> Result<Option<Digit>, MediaError> {
        let ev = TelephoneEvent::parse(payload)?;
        let Some(digit) = Digit::from_event(ev.event) else {
            return Ok(None);
        };
        if let Some(seen) = self
            .seen
            .iter_mut()
            .flatten()
            .find(|s| s.timestamp == timestamp)
        {
            if seen.event == ev.event && !is_reused_timestamp(seen, sequence, &ev) {
                seen.duration = seen.duration.max(ev.duration);
                if ev.end && seen.end_sequence.is_none_or(|e| is_newer(sequence, e)) {
                    seen.end_sequence = Some(sequence);
                }
                return Ok(None);
            }
            // A different key, or a new press, under a timestamp already used.
            *seen = Seen::new(timestamp, sequence, &ev);
            return Ok(Some(digit));
        }
        let continuation = self.seen.iter().flatten().any(|s| {
            s.event == ev.event
                && s.end_sequence.is_none()
                && (SEGMENT_MIN..=SEGMENT_MAX).contains(&timestamp.wrapping_sub(s.timestamp))
        });
        self.seen[self.next] = Some(Seen::new(timestamp, sequence, &ev));
        self.next = (self.next + 1) % WINDOW;
        Ok(if continuation { None } else { Some(digit) })
    }
}

impl Seen {
    fn new(timestamp: u32, sequence: u16, ev: &TelephoneEvent) -> Self {
        Self {
            timestamp,
            event: ev.event,
            end_sequence: ev.end.then_some(sequence),
            duration: ev.duration,
        }
    }
}

/// A packet that can only be the start of a new press reusing an ended event's
/// timestamp: after the end (newer sequence number), not itself an end, shorter.
fn is_reused_timestamp(seen: &Seen, sequence: u16, ev: &TelephoneEvent) -> bool {
    !ev.end
        && ev.duration < seen.duration
        && seen.end_sequence.is_some_and(|e| is_newer(sequence, e))
}

/// `a` is after `b` in 16-bit serial-number arithmetic.
fn is_newer(a: u16, b: u16) -> bool {
    (a.wrapping_sub(b) as i16) > 0
}

/// A digit from a SIP INFO body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoDigit {
    /// The key.
    pub digit: Digit,
    /// The tone duration in milliseconds, if the body gave one.
    pub duration_ms: Option<u32>,
}

/// Read the digit from a SIP INFO request: `content_type` is the Content-Type
/// header value (parameters allowed), `body` the message body.
///
/// - `application/dtmf-relay` (Cisco): lines `Signal=5` and `Duration=160` (ms),
///   in any order, any case, spaces allowed around `=`.
/// - `application/dtmf`: the key alone (`5`, `*`, `#`), or its event code (`11`).
pub fn parse_info(content_type: &str, body: &[u8]) -> Result<InfoDigit, MediaError> {
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    let body =
        std::str::from_utf8(body).map_err(|_| MediaError::MalformedInfo("body is not UTF-8"))?;
    if media_type.eq_ignore_ascii_case("application/dtmf-relay") {
        let mut digit = None;
        let mut duration_ms = None;
        for line in body.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            if key.eq_ignore_ascii_case("signal") {
                digit = Some(parse_signal(value)?);
            } else if key.eq_ignore_ascii_case("duration") {
                duration_ms = Some(
                    value
                        .parse()
                        .map_err(|_| MediaError::MalformedInfo("bad Duration"))?,
                );
            }
        }
        let digit = digit.ok_or(MediaError::MalformedInfo("no Signal line"))?;
        Ok(InfoDigit { digit, duration_ms })
    } else if media_type.eq_ignore_ascii_case("application/dtmf") {
        Ok(InfoDigit {
            digit: parse_signal(body.trim())?,
            duration_ms: None,
        })
    } else {
        Err(MediaError::UnsupportedInfo)
    }
}

/// A key character or an event code (`10` is `*`, `16` is flash and not a digit).
fn parse_signal(value: &str) -> Result<Digit, MediaError> {
    let mut chars = value.chars();
    if let (Some(c), None) = (chars.next(), chars.next())
        && let Some(digit) = Digit::from_char(c)
    {
        return Ok(digit);
    }
    let code: u8 = value
        .parse()
        .map_err(|_| MediaError::MalformedInfo("Signal is not a DTMF key"))?;
    Digit::from_event(code).ok_or(MediaError::NotADigit(code))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The packets a well-behaved sender emits for one press: start, updates every
    /// 160 samples, and the end three times (each with its own sequence number).
    fn press(event: u8, timestamp: u32, first_seq: u16, updates: u16) -> Vec<(u16, u32, [u8; 4])> {
        let mut out = Vec::new();
        let mut seq = first_seq;
        for i in 0..=updates {
            let ev = TelephoneEvent {
                event,
                end: false,
                volume: 10,
                duration: i * 160,
            };
            out.push((seq, timestamp, ev.to_bytes()));
            seq = seq.wrapping_add(1);
        }
        for _ in 0..3 {
            let ev = TelephoneEvent {
                event,
                end: true,
                volume: 10,
                duration: (updates + 1) * 160,
            };
            out.push((seq, timestamp, ev.to_bytes()));
            seq = seq.wrapping_add(1);
        }
        out
    }

    fn feed(rx: &mut DtmfReceiver, packets: &[(u16, u32, [u8; 4])]) -> String {
        let mut digits = String::new();
        for (seq, ts, payload) in packets {
            if let Some(d) = rx.push(*seq, *ts, payload).unwrap() {
                digits.push(d.as_char());
            }
        }
        digits
    }

    #[test]
    fn digit_codes_and_characters() {
        for (i, d) in Digit::ALL.iter().enumerate() {
            assert_eq!(d.event() as usize, i);
            assert_eq!(Digit::from_event(i as u8), Some(*d));
            assert_eq!(Digit::from_char(d.as_char()), Some(*d));
        }
        assert_eq!(Digit::from_event(16), None);
        assert_eq!(Digit::from_char('b'), Some(Digit::B));
        assert_eq!(Digit::from_char('E'), None);
        assert_eq!(Digit::Pound.to_string(), "#");
    }

    #[test]
    fn telephone_event_payload() {
        let ev = TelephoneEvent::parse(&[0x0B, 0x8A, 0x03, 0x20]).unwrap();
        assert_eq!(
            ev,
            TelephoneEvent {
                event: 11,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert_eq!(ev.to_bytes(), [0x0B, 0x8A, 0x03, 0x20]);
        // The reserved bit is ignored.
        assert_eq!(TelephoneEvent::parse(&[5, 0x4A, 0, 0]).unwrap().volume, 10);
        assert_eq!(
            TelephoneEvent::parse(&[5, 0, 0]),
            Err(MediaError::ShortEvent(3))
        );
        let mut rx = DtmfReceiver::new();
        assert_eq!(rx.push(1, 1, &[5]), Err(MediaError::ShortEvent(1)));
    }

    #[test]
    fn one_digit_per_press() {
        let mut rx = DtmfReceiver::new();
        let mut packets = press(1, 8000, 100, 5);
        packets.extend(press(2, 12000, 109, 3));
        assert_eq!(feed(&mut rx, &packets), "12");
    }

    #[test]
    fn equal_consecutive_digits_differ_by_timestamp() {
        let mut rx = DtmfReceiver::new();
        let mut packets = press(5, 8000, 100, 5);
        packets.extend(press(5, 12000, 109, 5));
        packets.extend(press(5, 16000, 118, 0));
        assert_eq!(feed(&mut rx, &packets), "555");
    }

    #[test]
    fn lost_start_lost_end_and_only_end() {
        let mut rx = DtmfReceiver::new();
        let a = press(3, 1000, 0, 4);
        let b = press(4, 5000, 20, 4);
        let c = press(4, 9000, 40, 4);
        let mut packets = a[2..].to_vec(); // start and first update lost
        packets.extend_from_slice(&b[..3]); // every end lost
        packets.push(c[c.len() - 1]); // only the last end copy arrived
        assert_eq!(feed(&mut rx, &packets), "344");
    }

    #[test]
    fn duplicates_and_reordering_within_an_event() {
        let mut rx = DtmfReceiver::new();
        let mut packets = press(7, 1000, 0, 4);
        packets.swap(0, 3);
        packets.swap(5, 7);
        let dup = packets[2];
        packets.insert(4, dup);
        assert_eq!(feed(&mut rx, &packets), "7");
    }

    #[test]
    fn late_duplicate_of_an_old_event_is_ignored() {
        let mut rx = DtmfReceiver::new();
        let a = press(8, 1000, 0, 4);
        let b = press(9, 5000, 20, 4);
        assert_eq!(feed(&mut rx, &a), "8");
        assert_eq!(feed(&mut rx, &b[..3]), "9");
        // A start of event 8, delayed behind event 9, and an update out of order.
        assert_eq!(feed(&mut rx, &[a[0], b[1], a[2]]), "");
        assert_eq!(feed(&mut rx, &b[3..]), "");
    }

    #[test]
    fn interleaved_events_after_reordering() {
        let mut rx = DtmfReceiver::new();
        let a = press(1, 1000, 0, 2);
        let b = press(2, 3000, 6, 2);
        // b's start overtakes a's ends.
        let packets = [
            a[0], a[1], b[0], a[3], a[4], b[1], a[5], b[2], b[3], b[4], b[5],
        ];
        assert_eq!(feed(&mut rx, &packets), "12");
    }

    #[test]
    fn flash_and_unknown_events_are_ignored() {
        let mut rx = DtmfReceiver::new();
        let mut packets = press(16, 1000, 0, 2);
        packets.extend(press(40, 2000, 6, 2));
        packets.extend(press(0, 3000, 12, 2));
        assert_eq!(feed(&mut rx, &packets), "0");
    }

    #[test]
    fn window_forgets_only_old_events() {
        let mut rx = DtmfReceiver::new();
        let mut expected = String::new();
        let mut packets = Vec::new();
        for i in 0..20u16 {
            let d = (i % 10) as u8;
            packets.extend(press(d, u32::from(i) * 2000, i * 10, 3));
            expected.push(char::from(b'0' + d));
        }
        assert_eq!(feed(&mut rx, &packets), expected);
        // The newest events' duplicates are still recognised.
        let last = press(9, 19 * 2000, 190, 3);
        assert_eq!(feed(&mut rx, &last), "");
    }

    #[test]
    fn timestamp_wraps() {
        let mut rx = DtmfReceiver::new();
        let mut packets = press(1, u32::MAX - 80, 65534, 3);
        packets.extend(press(1, 4000, 3, 3));
        assert_eq!(feed(&mut rx, &packets), "11");
    }

    #[test]
    fn long_event_segments_are_one_press() {
        let mut rx = DtmfReceiver::new();
        // Segment 1 reaches the 16-bit limit without an end; segment 2 carries on.
        let first = TelephoneEvent {
            event: 6,
            end: false,
            volume: 10,
            duration: 0xFFFF,
        };
        let second = TelephoneEvent {
            event: 6,
            end: true,
            volume: 10,
            duration: 800,
        };
        let t0 = u32::MAX - 1000;
        assert_eq!(rx.push(1, t0, &first.to_bytes()), Ok(Some(Digit::Six)));
        assert_eq!(
            rx.push(2, t0.wrapping_add(0xFFFF), &second.to_bytes()),
            Ok(None)
        );
        // But after an end, the same key later is a new press.
        assert_eq!(
            rx.push(3, t0.wrapping_add(0xFFFF + 0xFFFF), &first.to_bytes()),
            Ok(Some(Digit::Six))
        );
    }

    /// The ten packets of sipp's `dtmf_2833_<digit>.pcap` (sip-tester 3.6): start
    /// with marker, six updates 20 ms apart, and three identical end packets that
    /// share one sequence number.
    fn sipp_file(event: u8, first_seq: u16, timestamp: u32) -> Vec<(u16, u32, [u8; 4])> {
        let mut out = Vec::new();
        for i in 0..7u16 {
            let ev = TelephoneEvent {
                event,
                end: false,
                volume: 10,
                duration: i * 320,
            };
            out.push((first_seq + i, timestamp, ev.to_bytes()));
        }
        let end = TelephoneEvent {
            event,
            end: true,
            volume: 10,
            duration: 2240,
        };
        out.extend([(first_seq + 7, timestamp, end.to_bytes()); 3]);
        out
    }

    #[test]
    fn sipp_pcaps_played_in_a_row() {
        let one = sipp_file(1, 7984, 13280);
        let two = sipp_file(2, 8042, 23200);
        let zero = sipp_file(0, 12080, 17632);
        let mut rx = DtmfReceiver::new();
        // Different files: different timestamps, even when they run backwards.
        let mut packets = zero.clone();
        packets.extend(&one);
        packets.extend(&two);
        assert_eq!(feed(&mut rx, &packets), "012");
        // The same file twice: identical packets, so one digit (documented above).
        let mut rx = DtmfReceiver::new();
        let mut packets = one.clone();
        packets.extend(&one);
        assert_eq!(feed(&mut rx, &packets), "1");
    }

    #[test]
    fn reused_timestamp_with_advancing_sequence_is_a_new_press() {
        let mut rx = DtmfReceiver::new();
        let mut packets = sipp_file(1, 100, 13280);
        packets.extend(sipp_file(1, 108, 13280));
        assert_eq!(feed(&mut rx, &packets), "11");
        // A reordered update of the first press after its end is not a new press.
        let mut rx = DtmfReceiver::new();
        let first = sipp_file(1, 100, 13280);
        let mut packets = first.clone();
        packets.push(first[3]);
        assert_eq!(feed(&mut rx, &packets), "1");
    }

    /// Reads the installed sipp captures when present (Debian `sip-tester`).
    #[test]
    fn installed_sipp_pcaps() {
        let dir = std::path::Path::new("/usr/share/sip-tester");
        let names = [
            "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "star", "pound",
        ];
        let mut rx = DtmfReceiver::new();
        for (name, expected) in names.iter().zip("0123456789*#".chars()) {
            let Ok(pcap) = std::fs::read(dir.join(format!("dtmf_2833_{name}.pcap"))) else {
                eprintln!("sip-tester pcaps not installed: skipped");
                return;
            };
            let mut digits = String::new();
            for datagram in pcap_udp_payloads(&pcap) {
                let p = crate::rtp::parse(datagram).unwrap();
                assert_eq!(p.payload_type, 101);
                if let Some(d) = rx.push(p.sequence, p.timestamp, p.payload).unwrap() {
                    digits.push(d.as_char());
                }
            }
            assert_eq!(digits, expected.to_string(), "{name}");
        }
    }

    /// UDP payloads of a little-endian Ethernet/IPv4 pcap file.
    fn pcap_udp_payloads(pcap: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut at = 24;
        while at + 16 <= pcap.len() {
            let len = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
            let frame = &pcap[at + 16..at + 16 + len];
            let ip = &frame[14..];
            let ihl = usize::from(ip[0] & 0x0F) * 4;
            out.push(&ip[ihl + 8..]);
            at += 16 + len;
        }
        out
    }

    #[test]
    fn info_dtmf_relay() {
        let d = parse_info("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n").unwrap();
        assert_eq!(
            d,
            InfoDigit {
                digit: Digit::Five,
                duration_ms: Some(160)
            }
        );
        let d = parse_info(
            "Application/DTMF-Relay; charset=utf-8",
            b"duration = 250\nsignal = #\n",
        )
        .unwrap();
        assert_eq!(
            d,
            InfoDigit {
                digit: Digit::Pound,
                duration_ms: Some(250)
            }
        );
        let d = parse_info("application/dtmf-relay", b"Signal=10\r\n").unwrap();
        assert_eq!(d.digit, Digit::Star);
        assert_eq!(
            parse_info("application/dtmf-relay", b"Signal=16\r\n"),
            Err(MediaError::NotADigit(16))
        );
        assert!(matches!(
            parse_info("application/dtmf-relay", b"Duration=160"),
            Err(MediaError::MalformedInfo(_))
        ));
        assert!(matches!(
            parse_info("application/dtmf-relay", b"Signal=x"),
            Err(MediaError::MalformedInfo(_))
        ));
        assert!(matches!(
            parse_info("application/dtmf-relay", b"Signal=1\r\nDuration=-5"),
            Err(MediaError::MalformedInfo(_))
        ));
    }

    #[test]
    fn info_dtmf() {
        assert_eq!(
            parse_info("application/dtmf", b"5").unwrap().digit,
            Digit::Five
        );
        assert_eq!(
            parse_info("application/dtmf", b"*\r\n").unwrap().digit,
            Digit::Star
        );
        assert_eq!(
            parse_info("application/dtmf", b"11").unwrap().digit,
            Digit::Pound
        );
        assert_eq!(
            parse_info("application/dtmf", b"d").unwrap().digit,
            Digit::D
        );
        assert!(parse_info("application/dtmf", b"").is_err());
        assert_eq!(
            parse_info("text/plain", b"5"),
            Err(MediaError::UnsupportedInfo)
        );
        assert!(parse_info("application/dtmf", &[0xFF]).is_err());
    }

    /// A digit string, each press with 0-6 updates, and a loss mask per packet.
    fn presses_with_loss() -> impl Strategy<Value = (Vec<(u8, u16)>, u32, u16, Vec<bool>)> {
        (
            prop::collection::vec((0u8..16, 0u16..7), 1..20),
            any::<u32>(),
            any::<u16>(),
        )
            .prop_flat_map(|(presses, ts0, seq0)| {
                let packets: usize = presses.iter().map(|(_, u)| usize::from(*u) + 4).sum();
                (
                    Just(presses),
                    Just(ts0),
                    Just(seq0),
                    prop::collection::vec(any::<bool>(), packets),
                )
            })
    }

    proptest! {
        /// Any loss that leaves at least one packet of each press gives exactly one
        /// digit per press, in order, even with every surviving packet duplicated.
        #[test]
        fn one_digit_per_press_under_any_loss((presses, ts0, seq0, keep) in presses_with_loss(), dup: bool) {
            let mut ts = ts0;
            let mut seq = seq0;
            let mut mask = keep.into_iter();
            let mut stream = Vec::new();
            let mut expected = String::new();
            for (event, updates) in presses {
                let packets = press(event, ts, seq, updates);
                let mut kept: Vec<_> = packets.iter().filter(|_| mask.next().unwrap_or(true)).copied().collect();
                if kept.is_empty() {
                    kept.push(packets[packets.len() / 2]);
                }
                for p in kept {
                    stream.push(p);
                    if dup {
                        stream.push(p);
                    }
                }
                expected.push(Digit::from_event(event).unwrap().as_char());
                seq = seq.wrapping_add(packets.len() as u16 + 30);
                ts = ts.wrapping_add(u32::from(updates) * 160 + 800);
            }
            let mut rx = DtmfReceiver::new();
            prop_assert_eq!(feed(&mut rx, &stream), expected);
        }
    }
}
