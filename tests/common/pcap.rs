//! A caller's RTP stream, written as a pcap file at test time for sipp's
//! `<exec play_pcap_audio="…"/>` (no binary files in the repository).
//!
//! A [`Timeline`] lists what the caller does, in order: key presses as RFC 4733
//! telephone-events ([`Item::Digit`]) or as in-band tones ([`Item::InbandDigit`]),
//! speech ([`Item::Audio`]) and silence ([`Item::Silence`]). [`Timeline::packets`]
//! turns it into RTP packets on one SSRC with continuous sequence numbers, RTP
//! timestamps of 8 × ms since the start, and send times that follow the timeline;
//! [`Timeline::write_pcap`] writes them as a classic pcap (DLT_EN10MB,
//! Ethernet/IPv4/UDP), whose record times sipp replays in real time. sipp replaces
//! the addresses and ports with the call's, so those in the file do not matter.
//!
//! Also here: a reference G.711 µ-law codec (ITU-T G.711, the classic Sun
//! implementation), independent of the server's, and DTMF tone generation.

use std::io::Write as _;
use std::path::Path;

/// Samples per second (G.711).
pub(crate) const RATE: u32 = 8000;
/// Samples per 20 ms packet.
pub(crate) const FRAME: usize = 160;
/// The payload type of PCMU.
pub(crate) const PT_PCMU: u8 = 0;
/// The payload type the tests offer for telephone-event.
pub(crate) const PT_EVENT: u8 = 101;
/// µ-law of 0.
pub(crate) const ULAW_SILENCE: u8 = 0xFF;

/// What the caller does next.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    /// A key press of this many ms as RFC 4733 telephone-event packets (PT 101): a start
    /// packet with the marker bit, an update every 20 ms with a growing duration, then three
    /// end packets; all with the RTP timestamp of the press's start. Audio packets stop
    /// meanwhile, as most phones do.
    Digit(char, u32),
    /// A key press of this many ms as its two DTMF tones in the audio (PCMU), for callers
    /// whose offer has no telephone-event.
    InbandDigit(char, u32),
    /// 8 kHz samples sent as PCMU, 160 per packet.
    Audio(Vec<i16>),
    /// This many ms of PCMU silence packets.
    Silence(u32),
}

/// One RTP packet of a timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RtpPacket {
    /// When it is sent, in samples (1/8000 s) since the start of the timeline.
    pub(crate) at: u64,
    pub(crate) payload_type: u8,
    pub(crate) marker: bool,
    pub(crate) sequence: u16,
    pub(crate) timestamp: u32,
    pub(crate) ssrc: u32,
    pub(crate) payload: Vec<u8>,
}

impl RtpPacket {
    /// The RTP header and payload (RFC 3550 §5.1).
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(12 + self.payload.len());
        b.push(0x80);
        b.push(u8::from(self.marker) << 7 | (self.payload_type & 0x7F));
        b.extend_from_slice(&self.sequence.to_be_bytes());
        b.extend_from_slice(&self.timestamp.to_be_bytes());
        b.extend_from_slice(&self.ssrc.to_be_bytes());
        b.extend_from_slice(&self.payload);
        b
    }

    /// When it is sent, in ms since the start of the timeline.
    pub(crate) fn at_ms(&self) -> f64 {
        self.at as f64 / f64::from(RATE) * 1000.0
    }
}

/// What the caller does, from the moment the call is up.
#[derive(Debug, Clone)]
pub(crate) struct Timeline {
    items: Vec<Item>,
    /// Length so far, in samples.
    len: u64,
    /// Stretches (start, end in samples) whose packets are lost on the way: numbered, not sent.
    lost: Vec<(u64, u64)>,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new()
    }
}

impl Timeline {
    /// An empty timeline: SSRC 0x4854_4C31, first sequence number 0xFFF0 (it wraps within
    /// a second, which a receiver must handle), RTP timestamps from 0.
    pub(crate) fn new() -> Self {
        Timeline {
            items: Vec::new(),
            len: 0,
            lost: Vec::new(),
            ssrc: 0x4854_4C31,
            sequence: 0xFFF0,
            timestamp: 0,
        }
    }

    /// The SSRC of every packet.
    pub(crate) fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Appends an item.
    pub(crate) fn push(&mut self, item: Item) -> &mut Self {
        self.len += match &item {
            Item::Digit(c, ms) | Item::InbandDigit(c, ms) => {
                assert!(dtmf_event(*c).is_some(), "no DTMF key {c:?}");
                assert!(*ms > 0, "a key press of 0 ms");
                ms_to_samples(*ms)
            }
            Item::Audio(samples) => samples.len() as u64,
            Item::Silence(ms) => ms_to_samples(*ms),
        };
        self.items.push(item);
        self
    }

    /// A telephone-event key press of `ms`.
    pub(crate) fn digit(&mut self, key: char, ms: u32) -> &mut Self {
        self.push(Item::Digit(key, ms))
    }

    /// An in-band key press of `ms`.
    pub(crate) fn inband_digit(&mut self, key: char, ms: u32) -> &mut Self {
        self.push(Item::InbandDigit(key, ms))
    }

    /// Speech (8 kHz samples).
    pub(crate) fn audio(&mut self, samples: &[i16]) -> &mut Self {
        self.push(Item::Audio(samples.to_vec()))
    }

    /// `ms` of silence packets.
    pub(crate) fn silence(&mut self, ms: u32) -> &mut Self {
        self.push(Item::Silence(ms))
    }

    /// Silence up to `ms` since the start (the next item starts then).
    #[track_caller]
    pub(crate) fn until(&mut self, ms: u32) -> &mut Self {
        let target = ms_to_samples(ms);
        assert!(
            target >= self.len,
            "the timeline is already at {} ms, past {ms} ms",
            self.now_ms()
        );
        if target > self.len {
            let gap = target - self.len;
            // Whole ms by construction (both are multiples of 8 samples).
            self.push(Item::Silence((gap / 8) as u32));
        }
        self
    }

    /// Loses the packets sent from `from_ms` to `to_ms` (the network dropped them): their
    /// sequence numbers and timestamps are used, the packets are not in the capture.
    pub(crate) fn lose(&mut self, from_ms: u32, to_ms: u32) -> &mut Self {
        self.lost
            .push((ms_to_samples(from_ms), ms_to_samples(to_ms)));
        self
    }

    /// The length so far in ms: where the next item starts.
    pub(crate) fn now_ms(&self) -> f64 {
        self.len as f64 / 8.0
    }

    /// The length in samples.
    pub(crate) fn len_samples(&self) -> u64 {
        self.len
    }

    /// The RTP packets, in sending order.
    pub(crate) fn packets(&self) -> Vec<RtpPacket> {
        // The audio track (what PCMU frames carry), and where no audio packet may go:
        // while a telephone-event key is down (and its end packets go out).
        let total = self.len as usize;
        let mut track = vec![0i16; total];
        let mut events: Vec<(u64, u64, u8)> = Vec::new(); // (start, samples, event)
        let mut pos = 0usize;
        for item in &self.items {
            match item {
                Item::Digit(c, ms) => {
                    let n = ms_to_samples(*ms);
                    events.push((pos as u64, n, dtmf_event(*c).expect("checked in push")));
                    pos += n as usize;
                }
                Item::InbandDigit(c, ms) => {
                    let tone = dtmf_tone(*c, *ms);
                    track[pos..pos + tone.len()].copy_from_slice(&tone);
                    pos += tone.len();
                }
                Item::Audio(samples) => {
                    track[pos..pos + samples.len()].copy_from_slice(samples);
                    pos += samples.len();
                }
                Item::Silence(ms) => pos += ms_to_samples(*ms) as usize,
            }
        }
        debug_assert_eq!(pos, total);

        // (time, creation order, packet without sequence number)
        let mut out: Vec<RtpPacket> = Vec::new();
        let frames = total.div_ceil(FRAME);
        let mut first_audio = true;
        for f in 0..frames {
            let start = (f * FRAME) as u64;
            let end = start + FRAME as u64;
            let in_event = events.iter().any(|&(s, n, _)| start < s + n && s < end);
            if in_event {
                continue;
            }
            let mut payload = vec![ULAW_SILENCE; FRAME];
            for (i, b) in payload.iter_mut().enumerate() {
                if let Some(&s) = track.get(f * FRAME + i) {
                    *b = ulaw_encode(s);
                }
            }
            out.push(RtpPacket {
                at: start,
                payload_type: PT_PCMU,
                marker: std::mem::take(&mut first_audio),
                sequence: 0,
                timestamp: self.timestamp.wrapping_add(start as u32),
                ssrc: self.ssrc,
                payload,
            });
        }
        for &(s, n, event) in &events {
            let updates = n.div_ceil(FRAME as u64).max(1);
            let duration = |k: u64| ((FRAME as u64 * (k + 1)).min(n)).min(0xFFFF) as u16;
            for k in 0..updates {
                let last = k + 1 == updates;
                // The last update is the first of the three end packets.
                let copies = if last { 3 } else { 1 };
                for c in 0..copies {
                    out.push(RtpPacket {
                        at: s + FRAME as u64 * (k + c),
                        payload_type: PT_EVENT,
                        marker: k == 0,
                        sequence: 0,
                        timestamp: self.timestamp.wrapping_add(s as u32),
                        ssrc: self.ssrc,
                        payload: event_payload(event, last, 10, duration(k)).to_vec(),
                    });
                }
            }
        }
        // Stable: at the same instant, audio before events, events in order.
        out.sort_by_key(|p| p.at);
        for (i, p) in out.iter_mut().enumerate() {
            p.sequence = self.sequence.wrapping_add(i as u16);
        }
        out.retain(|p| {
            !self
                .lost
                .iter()
                .any(|&(from, to)| from <= p.at && p.at < to)
        });
        out
    }

    /// Writes the packets as a classic pcap (microsecond timestamps, DLT_EN10MB), from
    /// 127.0.0.1:40000 to 127.0.0.1:30000 (sipp puts the call's ports in).
    pub(crate) fn write_pcap(&self, path: &Path) -> std::io::Result<()> {
        let packets = self.packets();
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        // Global header: magic, version 2.4, GMT offset, accuracy, snaplen, link type.
        f.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        f.write_all(&2u16.to_le_bytes())?;
        f.write_all(&4u16.to_le_bytes())?;
        f.write_all(&0i32.to_le_bytes())?;
        f.write_all(&0u32.to_le_bytes())?;
        f.write_all(&65_535u32.to_le_bytes())?;
        f.write_all(&1u32.to_le_bytes())?;
        // Any fixed start; sipp uses only the differences.
        const EPOCH_SECS: u64 = 1_767_225_600;
        for (i, p) in packets.iter().enumerate() {
            let frame = ethernet_ipv4_udp(
                [127, 0, 0, 1],
                [127, 0, 0, 1],
                40_000,
                30_000,
                i as u16,
                &p.to_bytes(),
            );
            let us = p.at * 125; // 1/8000 s = 125 µs
            let secs = EPOCH_SECS + us / 1_000_000;
            f.write_all(&(secs as u32).to_le_bytes())?;
            f.write_all(&((us % 1_000_000) as u32).to_le_bytes())?;
            f.write_all(&(frame.len() as u32).to_le_bytes())?;
            f.write_all(&(frame.len() as u32).to_le_bytes())?;
            f.write_all(&frame)?;
        }
        f.flush()
    }
}

fn ms_to_samples(ms: u32) -> u64 {
    u64::from(ms) * u64::from(RATE) / 1000
}

/// An Ethernet II frame holding an IPv4/UDP datagram, checksums filled in.
fn ethernet_ipv4_udp(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    ip_id: u16,
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let ip_len = 20 + udp_len;
    let mut b = Vec::with_capacity(14 + ip_len);
    // Ethernet: destination and source MAC (locally administered), EtherType IPv4.
    b.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    b.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    b.extend_from_slice(&0x0800u16.to_be_bytes());
    // IPv4: version 4, IHL 5, no options, DF, TTL 64, UDP.
    let ip_start = b.len();
    b.extend_from_slice(&[0x45, 0]);
    b.extend_from_slice(&(ip_len as u16).to_be_bytes());
    b.extend_from_slice(&ip_id.to_be_bytes());
    b.extend_from_slice(&0x4000u16.to_be_bytes());
    b.extend_from_slice(&[64, 17, 0, 0]);
    b.extend_from_slice(&src);
    b.extend_from_slice(&dst);
    let ip_sum = internet_checksum(&[&b[ip_start..]]);
    b[ip_start + 10..ip_start + 12].copy_from_slice(&ip_sum.to_be_bytes());
    // UDP, with the checksum over the pseudo-header.
    let udp_start = b.len();
    b.extend_from_slice(&sport.to_be_bytes());
    b.extend_from_slice(&dport.to_be_bytes());
    b.extend_from_slice(&(udp_len as u16).to_be_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(payload);
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(udp_len as u16).to_be_bytes());
    let mut udp_sum = internet_checksum(&[&pseudo, &b[udp_start..]]);
    if udp_sum == 0 {
        udp_sum = 0xFFFF;
    }
    b[udp_start + 6..udp_start + 8].copy_from_slice(&udp_sum.to_be_bytes());
    b
}

/// The ones' complement of the ones' complement sum of 16-bit words (RFC 1071).
fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    let mut sum: u32 = 0;
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
        sum += u32::from(word);
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// The RFC 4733 §2.3 payload of one telephone-event packet.
pub(crate) fn event_payload(event: u8, end: bool, volume: u8, duration: u16) -> [u8; 4] {
    let [d0, d1] = duration.to_be_bytes();
    [event, u8::from(end) << 7 | (volume & 0x3F), d0, d1]
}

/// The RFC 4733 event code of a key.
pub(crate) fn dtmf_event(key: char) -> Option<u8> {
    match key {
        '0'..='9' => Some(key as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(12 + key as u8 - b'A'),
        _ => None,
    }
}

/// The low and high frequency of a key (ITU-T Q.23).
pub(crate) fn dtmf_frequencies(key: char) -> Option<(f64, f64)> {
    const LOW: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const HIGH: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    const KEYS: [[char; 4]; 4] = [
        ['1', '2', '3', 'A'],
        ['4', '5', '6', 'B'],
        ['7', '8', '9', 'C'],
        ['*', '0', '#', 'D'],
    ];
    for (r, row) in KEYS.iter().enumerate() {
        for (c, k) in row.iter().enumerate() {
            if *k == key {
                return Some((LOW[r], HIGH[c]));
            }
        }
    }
    None
}

/// `ms` of a key's two tones, each at −12 dBFS (peak), 8 kHz.
pub(crate) fn dtmf_tone(key: char, ms: u32) -> Vec<i16> {
    let (lo, hi) = dtmf_frequencies(key).unwrap_or_else(|| panic!("no DTMF key {key:?}"));
    let n = ms_to_samples(ms) as usize;
    let amp = 32767.0 * 10f64.powf(-12.0 / 20.0);
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(RATE);
            let v = amp
                * ((2.0 * std::f64::consts::PI * lo * t).sin()
                    + (2.0 * std::f64::consts::PI * hi * t).sin());
            v.round() as i16
        })
        .collect()
}

/// G.711 µ-law encoding of a 16-bit sample (the classic Sun `linear2ulaw`: 14-bit
/// magnitude, bias 33, clipped at 8159).
pub(crate) fn ulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84 >> 2; // 33 in 14-bit units
    const CLIP: i32 = 8159;
    let mut v = i32::from(sample) >> 2;
    let mask: u8 = if v < 0 {
        v = -v;
        0x7F
    } else {
        0xFF
    };
    if v > CLIP {
        v = CLIP;
    }
    v += BIAS;
    // Segment: the position of the highest set bit above bit 5.
    let mut seg = 0u8;
    let mut top = v >> 6;
    while top > 0 && seg < 8 {
        seg += 1;
        top >>= 1;
    }
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let uval = (seg << 4) | (((v >> (seg + 1)) & 0xF) as u8);
    uval ^ mask
}

/// G.711 µ-law decoding to a 16-bit sample (Sun `ulaw2linear`).
pub(crate) fn ulaw_decode(code: u8) -> i16 {
    let u = !code;
    let mut t = ((i32::from(u) & 0x0F) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

/// What the server hears of `samples` sent as PCMU.
pub(crate) fn ulaw_roundtrip(samples: &[i16]) -> Vec<i16> {
    samples
        .iter()
        .map(|&s| ulaw_decode(ulaw_encode(s)))
        .collect()
}

/// The largest G.711 µ-law error for a sample of this value: half a quantisation step of
/// its segment (the next one up for a value the 14-bit encoder's rounding pushes over a
/// segment's end), plus the 2 bits that encoder drops, or the clipping above ±32124.
pub(crate) fn ulaw_tolerance(sample: i16) -> i32 {
    let magnitude = i32::from(sample).abs();
    let v = ((magnitude + 4) >> 2).min(8159) + 33;
    let seg = (32 - (v >> 6).leading_zeros()).min(7) as i32;
    // The step is 2^(seg+1) in 14-bit units, 2^(seg+3) in 16-bit units.
    ((1 << (seg + 2)) + 4).max(magnitude - 32124)
}
