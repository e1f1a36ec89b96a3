//! SDP offer/answer (RFC 3264) for a telephony IVR: G.711 and telephone-event.
//!
//! Sans-IO: bytes in, bytes and a [`Negotiated`] out. Parsing and printing go
//! through `sdp-types`; this module decides what to accept.
//!
//! # Implemented
//! - [`answer`]: answer an offer (RFC 3264 §6). The codec is the first format on
//!   the offer's audio m-line that we accept, in the *offerer's* order: PCMU
//!   (PT 0) and PCMA (PT 8), static or under a dynamic PT whose `a=rtpmap` says
//!   `PCMU/8000` or `PCMA/8000` (case-insensitive). The answer echoes the
//!   offerer's payload types, `telephone-event/8000` (RFC 4733) if offered, with
//!   the offerer's `a=fmtp` events or `0-16`, `a=ptime:20` and the answered
//!   direction (RFC 3264 §6.1).
//! - Several m-lines: the first acceptable audio stream is answered; every other
//!   m-line gets port 0 in the answer, so both have as many m-lines (§6).
//! - Hold: `a=sendonly`/`recvonly`/`inactive` at session or media level (the
//!   media level wins), and the RFC 2543 form `c=IN IP4 0.0.0.0` (also `::`),
//!   which we read as "do not send to me": it removes *receive* from the remote's
//!   direction, so a plain 0.0.0.0 offer counts as `sendonly` and 0.0.0.0 with
//!   `recvonly` as `inactive` (RFC 3264 §8.4 allows music on hold to keep flowing).
//! - [`offer`] and [`accept_answer`]: our own offer (an INVITE without SDP, an
//!   operator leg) and the remote's answer to it.
//! - Tolerant input, as carrier SBCs send it: bare LF or CR line ends, a missing
//!   `s=`, vendor `a=X-...` lines, runs of spaces or tabs, spaces around `=`,
//!   Latin-1 bytes, a BOM. Lines we never read (`s=`, `t=`, `b=`, ...) are dropped
//!   before `sdp-types` parses the body, so a broken one cannot cost us the call.
//!
//! # Not implemented
//! - SRTP (RTP/SAVP, SAVPF, DTLS-SRTP, SDES `a=crypto`): such offers get 488.
//! - More than one audio stream, or any other media (video, T.38 image): declined.
//! - Codecs other than G.711 (no G.729, G.722, Opus), comfort noise (RFC 3389)
//!   and `a=maxptime`; we always ask for 20 ms packets.
//! - `a=rtcp-mux`, `a=rtcp` and ICE: RTCP goes to the RTP port + 1 as in RFC 3550.
//! - Host names or multicast in `c=`: only unicast IP literals (488 otherwise).
//! - Re-INVITE bookkeeping (comparing `o=` versions): the caller owns the session
//!   version and increments it on each new offer of ours.

use std::net::{IpAddr, SocketAddr};

use sdp_types as sdp;

/// The payload type we offer for `telephone-event/8000` (RFC 4733).
pub const TELEPHONE_EVENT_PT: u8 = 101;

/// The DTMF events we offer and answer when the offerer names none: 0-9, *, #, A-D, flash.
const TELEPHONE_EVENTS: &str = "0-16";

/// Packetisation we ask for, and assume when the remote does not say.
const DEFAULT_PTIME_MS: u32 = 20;

/// G.711 codecs we speak (static payload types 0 and 8, 8000 Hz).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law (RFC 3551 §4.5.14), static payload type 0.
    Pcmu,
    /// G.711 A-law (RFC 3551 §4.5.14), static payload type 8.
    Pcma,
}

impl Codec {
    /// The codec of a static payload type (RFC 3551 table 4), if it is one of ours.
    pub const fn from_payload_type(payload_type: u8) -> Option<Self> {
        match payload_type {
            0 => Some(Self::Pcmu),
            8 => Some(Self::Pcma),
            _ => None,
        }
    }

    /// The static payload type (RFC 3551 table 4).
    pub const fn payload_type(self) -> u8 {
        match self {
            Self::Pcmu => 0,
            Self::Pcma => 8,
        }
    }

    /// The encoding name used in `a=rtpmap`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Pcmu => "PCMU",
            Self::Pcma => "PCMA",
        }
    }

    /// The RTP clock rate in Hz.
    pub const fn clock_rate(self) -> u32 {
        8000
    }

    /// The codec an `a=rtpmap` names: `PCMU/8000` or `PCMA/8000`, mono, any case.
    fn from_rtpmap(map: &sdp::RtpMap) -> Option<Self> {
        let mono = map
            .encoding_params
            .as_deref()
            .is_none_or(|p| p.trim() == "1");
        if map.clock_rate != 8000 || !mono {
            return None;
        }
        [Self::Pcmu, Self::Pcma]
            .into_iter()
            .find(|codec| map.encoding_name.eq_ignore_ascii_case(codec.name()))
    }
}

/// RFC 3264 §6.1 / RFC 4566 §6 media direction, from the point of view of the side that
/// declares it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `a=sendrecv`, the default.
    #[default]
    SendRecv,
    /// `a=sendonly`: the declaring side only sends (it has put the other on hold).
    SendOnly,
    /// `a=recvonly`: the declaring side only receives.
    RecvOnly,
    /// `a=inactive`: no media either way.
    Inactive,
}

impl Direction {
    const fn from_flags(sends: bool, receives: bool) -> Self {
        match (sends, receives) {
            (true, true) => Self::SendRecv,
            (true, false) => Self::SendOnly,
            (false, true) => Self::RecvOnly,
            (false, false) => Self::Inactive,
        }
    }

    /// The direction to answer an offer with (RFC 3264 §6.1): sendonly becomes
    /// recvonly and the reverse; sendrecv and inactive stay.
    pub const fn answer(self) -> Direction {
        Self::from_flags(self.receives(), self.sends())
    }

    /// What both allow: sends only if both send, receives only if both receive.
    pub const fn intersect(self, other: Direction) -> Direction {
        Self::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }

    /// Whether the declaring side sends media.
    pub const fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    /// Whether the declaring side receives media.
    pub const fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }

    /// The attribute name: `sendrecv`, `sendonly`, `recvonly` or `inactive`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    /// The first direction attribute in `attributes`, if any.
    fn find(attributes: &[sdp::Attribute]) -> Option<Self> {
        attributes.iter().find_map(|a| {
            [
                Self::SendRecv,
                Self::SendOnly,
                Self::RecvOnly,
                Self::Inactive,
            ]
            .into_iter()
            .find(|d| a.value.is_none() && a.attribute.eq_ignore_ascii_case(d.as_str()))
        })
    }
}

/// What we offer or accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalMedia {
    /// Our RTP address, written to `o=` and `c=`.
    pub address: IpAddr,
    /// Our RTP port (RTCP on `port + 1`).
    pub port: u16,
    /// What we accept, in our preference. [`offer`] lists them in this order; an
    /// empty list is offered as PCMU and PCMA.
    pub codecs: Vec<Codec>,
    /// The `o=` session id (RFC 4566 §5.2).
    pub session_id: u64,
    /// The `o=` session version; the caller increments it for each new offer of ours.
    pub session_version: u64,
    /// What we are willing to do, usually [`Direction::SendRecv`].
    pub direction: Direction,
}

/// The outcome of a negotiation: what media will flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The codec both sides use.
    pub codec: Codec,
    /// Its payload type on the wire (the offerer's, which may be dynamic).
    pub payload_type: u8,
    /// The `telephone-event/8000` payload type, if both sides have it (RFC 4733).
    pub dtmf_payload_type: Option<u8>,
    /// Where to send RTP. Its IP is unspecified (0.0.0.0) when the remote is on RFC 2543
    /// hold; `direction` then does not receive.
    pub remote: SocketAddr,
    /// The remote side's direction after negotiation, from the remote's point of view:
    /// [`Direction::SendOnly`] means the remote sends but wants nothing (it holds us).
    pub direction: Direction,
    /// The remote's `a=ptime` (media level, else session level), else 20.
    pub ptime_ms: u32,
}

/// Why an SDP body was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// Nothing acceptable: the caller answers 488 Not Acceptable Here (RFC 3261 §13.3.1.3).
    #[error("not acceptable: {0}")]
    NotAcceptable(&'static str),
    /// Unparseable: the caller answers 400 Bad Request. The text is `sdp-types`' own;
    /// its line numbers count the normalised body, without blank and dropped lines.
    #[error("malformed SDP: {0}")]
    Malformed(String),
}

impl SdpError {
    /// The SIP status code to answer an offer with: 488 or 400.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::NotAcceptable(_) => 488,
            Self::Malformed(_) => 400,
        }
    }
}

/// Parses `offer` and produces our answer body (RFC 3264 §6).
pub fn answer(offer: &[u8], local: &LocalMedia) -> Result<(Negotiated, Vec<u8>), SdpError> {
    let session = parse(offer)?;

    let mut chosen = None;
    let mut refusal = None;
    for (index, media) in session.medias.iter().enumerate() {
        if !media.media.eq_ignore_ascii_case("audio") {
            continue;
        }
        match RemoteAudio::from_media(&session, media, &local.codecs) {
            Ok(audio) => {
                chosen = Some((index, audio));
                break;
            }
            Err(e) => {
                refusal.get_or_insert(e);
            }
        }
    }
    let Some((chosen_index, audio)) = chosen else {
        return Err(refusal.unwrap_or(SdpError::NotAcceptable("no audio stream")));
    };

    let ours = audio.direction.answer().intersect(local.direction);
    let mut body = local_session(local);
    for (index, media) in session.medias.iter().enumerate() {
        if index != chosen_index {
            body.add_media(declined(media));
            continue;
        }
        let mut fmt = audio.payload_type.to_string();
        if let Some((pt, _)) = audio.dtmf {
            fmt.push_str(&format!(" {pt}"));
        }
        let mut m = sdp::Media::new(
            sdp::MediaType::Audio,
            local.port,
            sdp::TransportProto::RtpAvp,
            fmt,
        );
        // RFC 3264 §6: the answer keeps the offered transport (RTP/AVP or RTP/AVPF).
        m.proto.clone_from(&media.proto);
        add_audio_attributes(&mut m, audio.codec, audio.payload_type, audio.dtmf, ours);
        body.add_media(m);
    }

    let negotiated = Negotiated {
        codec: audio.codec,
        payload_type: audio.payload_type,
        dtmf_payload_type: audio.dtmf.map(|(pt, _)| pt),
        remote: audio.remote,
        direction: ours.answer(),
        ptime_ms: audio.ptime_ms,
    };
    Ok((negotiated, write(&body)))
}

/// Our offer: one RTP/AVP audio stream with `local.codecs` and telephone-event
/// ([`TELEPHONE_EVENT_PT`]), `a=ptime:20` and `local.direction`.
pub fn offer(local: &LocalMedia) -> Vec<u8> {
    let mut codecs: Vec<Codec> = Vec::new();
    for &codec in &local.codecs {
        if !codecs.contains(&codec) {
            codecs.push(codec);
        }
    }
    if codecs.is_empty() {
        codecs = vec![Codec::Pcmu, Codec::Pcma];
    }

    let mut fmt = String::new();
    for codec in &codecs {
        fmt.push_str(&format!("{} ", codec.payload_type()));
    }
    fmt.push_str(&TELEPHONE_EVENT_PT.to_string());

    let mut m = sdp::Media::new(
        sdp::MediaType::Audio,
        local.port,
        sdp::TransportProto::RtpAvp,
        fmt,
    );
    for codec in &codecs {
        m.add_attribute(sdp::RtpMap::new(
            codec.payload_type(),
            codec.name(),
            codec.clock_rate(),
        ));
    }
    add_telephone_event(&mut m, TELEPHONE_EVENT_PT, TELEPHONE_EVENTS);
    m.add_attribute_with_value("ptime", DEFAULT_PTIME_MS);
    m.add_attribute_from_str(local.direction.as_str());

    let mut body = local_session(local);
    body.add_media(m);
    write(&body)
}

/// Reads the remote's answer to our [`offer`]: the first accepted audio stream.
pub fn accept_answer(answer: &[u8], local: &LocalMedia) -> Result<Negotiated, SdpError> {
    let session = parse(answer)?;
    let mut refusal = None;
    for media in &session.medias {
        if !media.media.eq_ignore_ascii_case("audio") {
            continue;
        }
        match RemoteAudio::from_media(&session, media, &local.codecs) {
            Ok(audio) => {
                return Ok(Negotiated {
                    codec: audio.codec,
                    payload_type: audio.payload_type,
                    dtmf_payload_type: audio.dtmf.map(|(pt, _)| pt),
                    remote: audio.remote,
                    direction: audio.direction.intersect(local.direction.answer()),
                    ptime_ms: audio.ptime_ms,
                });
            }
            Err(e) => {
                refusal.get_or_insert(e);
            }
        }
    }
    Err(refusal.unwrap_or(SdpError::NotAcceptable("no audio stream")))
}

/// A usable audio m-line of the remote's SDP, from the remote's point of view.
#[derive(Debug)]
struct RemoteAudio<'a> {
    codec: Codec,
    payload_type: u8,
    /// The telephone-event payload type and its `a=fmtp` events.
    dtmf: Option<(u8, &'a str)>,
    remote: SocketAddr,
    /// As declared (media level, else session level), less receive on RFC 2543 hold.
    direction: Direction,
    ptime_ms: u32,
}

impl<'a> RemoteAudio<'a> {
    /// Checks one audio m-line; `codecs` are the ones we accept.
    fn from_media(
        session: &'a sdp::Session,
        media: &'a sdp::Media,
        codecs: &[Codec],
    ) -> Result<Self, SdpError> {
        if media.port == 0 {
            return Err(SdpError::NotAcceptable("audio stream declined (port 0)"));
        }
        if !matches!(
            media.parse_transport_proto(),
            sdp::TransportProto::RtpAvp | sdp::TransportProto::RtpAvpf
        ) {
            return Err(SdpError::NotAcceptable(
                "only RTP/AVP and RTP/AVPF, no SRTP",
            ));
        }

        let (codec, payload_type) = formats(media)
            .find_map(|pt| {
                let codec = match rtpmap(media, pt) {
                    Some(map) => Codec::from_rtpmap(&map),
                    None => Codec::from_payload_type(pt),
                }?;
                codecs.contains(&codec).then_some((codec, pt))
            })
            .ok_or(SdpError::NotAcceptable("no common codec (PCMU, PCMA)"))?;

        let dtmf = formats(media)
            .find(|&pt| {
                rtpmap(media, pt).is_some_and(|map| {
                    map.encoding_name.eq_ignore_ascii_case("telephone-event")
                        && map.clock_rate == 8000
                })
            })
            .map(|pt| (pt, fmtp(media, pt).unwrap_or(TELEPHONE_EVENTS)));

        let connection = media
            .connections
            .first()
            .or(session.connection.as_ref())
            .ok_or_else(|| SdpError::Malformed("no c= line for the audio stream".into()))?;
        if connection.nettype != sdp::NetType::In {
            return Err(SdpError::NotAcceptable("c= network type is not IN"));
        }
        let ip = connection
            .try_address()
            .map_err(|_| SdpError::NotAcceptable("c= address is not an IP address"))?
            .ip;
        if ip.is_multicast() {
            return Err(SdpError::NotAcceptable("multicast c= address"));
        }

        let mut direction = Direction::find(&media.attributes)
            .or_else(|| Direction::find(&session.attributes))
            .unwrap_or_default();
        if ip.is_unspecified() {
            // RFC 2543 hold: "do not send to me" (see the module doc).
            direction = direction.intersect(Direction::SendOnly);
        }

        let ptime_ms = ptime(&media.attributes)
            .or_else(|| ptime(&session.attributes))
            .unwrap_or(DEFAULT_PTIME_MS);

        Ok(Self {
            codec,
            payload_type,
            dtmf,
            remote: SocketAddr::new(ip, media.port),
            direction,
            ptime_ms,
        })
    }
}

/// The RTP payload types on an m-line, in order; other tokens are skipped.
fn formats(media: &sdp::Media) -> impl Iterator<Item = u8> + '_ {
    media
        .fmt
        .split_ascii_whitespace()
        .filter_map(|f| f.parse::<u8>().ok())
        .filter(|&pt| pt <= 127)
}

/// The first well-formed `a=rtpmap` for `payload_type`.
fn rtpmap(media: &sdp::Media, payload_type: u8) -> Option<sdp::RtpMap> {
    media
        .attributes_typed::<sdp::RtpMap>()
        .filter_map(Result::ok)
        .find(|map| map.payload_type == payload_type)
}

/// The parameters of the first non-empty `a=fmtp` for `payload_type`, verbatim.
fn fmtp(media: &sdp::Media, payload_type: u8) -> Option<&str> {
    media
        .get_attribute_values("fmtp")
        .flatten()
        .find_map(|value| {
            let (pt, params) = value.trim().split_once(' ')?;
            let params = params.trim();
            (pt.parse::<u8>().ok()? == payload_type && !params.is_empty()).then_some(params)
        })
}

/// The first `a=ptime`, in whole milliseconds (`20.0` reads as 20); nonsense is ignored.
fn ptime(attributes: &[sdp::Attribute]) -> Option<u32> {
    let value = attributes
        .iter()
        .find(|a| a.attribute.eq_ignore_ascii_case("ptime"))?
        .value
        .as_deref()?
        .trim();
    let whole = value.split_once('.').map_or(value, |(whole, _)| whole);
    whole
        .parse::<u32>()
        .ok()
        .filter(|ms| (1..=1000).contains(ms))
}

/// The session-level part of everything we send: `o=`, `s=-`, `c=`, `t=0 0`.
fn local_session(local: &LocalMedia) -> sdp::Session {
    let origin = sdp::Origin::with_ip_addr(local.session_id, local.session_version, local.address);
    let mut session = sdp::Session::new(origin, "-");
    session.set_connection(local.address);
    session.add_time(sdp::Time::new(0, 0));
    session
}

/// The rtpmap, telephone-event, ptime and direction lines of our audio m-line.
fn add_audio_attributes(
    m: &mut sdp::Media,
    codec: Codec,
    payload_type: u8,
    dtmf: Option<(u8, &str)>,
    direction: Direction,
) {
    m.add_attribute(sdp::RtpMap::new(
        payload_type,
        codec.name(),
        codec.clock_rate(),
    ));
    if let Some((pt, events)) = dtmf {
        add_telephone_event(m, pt, events);
    }
    m.add_attribute_with_value("ptime", DEFAULT_PTIME_MS);
    m.add_attribute_from_str(direction.as_str());
}

fn add_telephone_event(m: &mut sdp::Media, payload_type: u8, events: &str) {
    m.add_attribute(sdp::RtpMap::new(payload_type, "telephone-event", 8000));
    m.add_attribute_with_value("fmtp", format!("{payload_type} {events}"));
}

/// An m-line of the answer that refuses the offered stream (RFC 3264 §6: port 0,
/// same media type, transport and formats).
fn declined(offered: &sdp::Media) -> sdp::Media {
    let mut m = sdp::Media::new(
        sdp::MediaType::Audio,
        0,
        sdp::TransportProto::RtpAvp,
        &offered.fmt,
    );
    m.media.clone_from(&offered.media);
    m.proto.clone_from(&offered.proto);
    m
}

fn write(session: &sdp::Session) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    // Invariant: writing into a Vec<u8> cannot fail.
    session
        .write(&mut out)
        .expect("writing SDP to a Vec<u8> is infallible");
    out
}

/// Parses a body after [`normalise`].
///
/// The error text may quote the input (`v=` values), so it is cut to 120 characters and
/// control characters are replaced: callers put it in a `Warning` header or a log line.
fn parse(body: &[u8]) -> Result<sdp::Session, SdpError> {
    sdp::Session::parse(normalise(body).as_bytes()).map_err(|e| {
        let text = e.to_string();
        let text = text.chars().take(120);
        SdpError::Malformed(text.map(|c| if c.is_control() { '?' } else { c }).collect())
    })
}

/// Rewrites a peer's SDP into the strict form `sdp-types` parses, keeping only the
/// lines we read (`v=`, `o=`, `c=`, `m=`, `a=`):
/// - invalid UTF-8 becomes U+FFFD (Latin-1 in `s=` or vendor lines), a BOM is dropped;
/// - CRLF, bare LF and bare CR all end a line; blank lines are dropped;
/// - runs of spaces and tabs become one space, and spaces around the first `=` go;
/// - `s=`, `i=`, `u=`, `e=`, `p=`, `b=`, `t=`, `r=`, `z=`, `k=` and unknown one-letter
///   lines are dropped, so a duplicate `s=` or a vendor `b=` cannot fail the parse.
///
/// Anything that is not `x=...` stays, so that garbage is still rejected.
fn normalise(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut out = String::with_capacity(text.len() + 16);
    for raw in text.split(['\n', '\r']) {
        let line = raw.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            continue;
        }
        let line = match line.split_once('=') {
            Some((key, value)) if key.trim_end().len() == 1 => {
                let key = key.trim_end();
                if !matches!(key, "v" | "o" | "c" | "m" | "a") {
                    continue;
                }
                format!("{key}={}", value.trim_start())
            }
            _ => line,
        };
        out.push_str(&line);
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    /// Our side as the IVR answers calls: PCMA preferred, then PCMU.
    fn ivr() -> LocalMedia {
        LocalMedia {
            address: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            port: 40000,
            codecs: vec![Codec::Pcma, Codec::Pcmu],
            session_id: 4242,
            session_version: 1,
            direction: Direction::SendRecv,
        }
    }

    /// Turns an indented literal into CRLF SDP.
    fn crlf(sdp: &str) -> Vec<u8> {
        sdp.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| format!("{l}\r\n"))
            .collect::<String>()
            .into_bytes()
    }

    fn answer_text(offer: &[u8]) -> (Negotiated, String) {
        let (negotiated, body) = answer(offer, &ivr()).expect("offer is acceptable");
        let text = String::from_utf8(body).expect("answers are ASCII");
        assert!(text.ends_with("\r\n"));
        assert!(
            !text.replace("\r\n", "").contains('\n'),
            "bare LF in {text}"
        );
        (negotiated, text)
    }

    fn m_lines(sdp: &str) -> Vec<&str> {
        sdp.lines().filter(|l| l.starts_with("m=")).collect()
    }

    const CISCO: &str = "
        v=0
        o=CiscoSystemsSIP-GW-UserAgent 7523 4536 IN IP4 203.0.113.10
        s=SIP Call
        c=IN IP4 203.0.113.10
        t=0 0
        m=audio 16384 RTP/AVP 8 0 18 101 19
        c=IN IP4 203.0.113.12
        a=rtpmap:8 PCMA/8000
        a=rtpmap:0 PCMU/8000
        a=rtpmap:18 G729/8000
        a=fmtp:18 annexb=no
        a=rtpmap:101 telephone-event/8000
        a=fmtp:101 0-15
        a=rtpmap:19 CN/8000
        a=X-sqn:0
        a=X-cap: 1 audio RTP/AVP 100
        a=X-cpar: a=rtpmap:100 X-NSE/8000
        a=X-cpar: a=fmtp:100 192-194
        a=X-cap: 2 image udptl t38
        a=ptime:20
        a=sendrecv
    ";

    #[test]
    fn carrier_offer_pcma_first_keeps_events() {
        let (negotiated, text) = answer_text(&crlf(CISCO));
        assert_eq!(
            negotiated,
            Negotiated {
                codec: Codec::Pcma,
                payload_type: 8,
                dtmf_payload_type: Some(101),
                remote: "203.0.113.12:16384".parse().unwrap(),
                direction: Direction::SendRecv,
                ptime_ms: 20,
            }
        );
        assert_eq!(
            text,
            "v=0\r\n\
             o=- 4242 1 IN IP4 198.51.100.7\r\n\
             s=-\r\n\
             c=IN IP4 198.51.100.7\r\n\
             t=0 0\r\n\
             m=audio 40000 RTP/AVP 8 101\r\n\
             a=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n\
             a=fmtp:101 0-15\r\n\
             a=ptime:20\r\n\
             a=sendrecv\r\n"
        );
    }

    #[test]
    fn caller_order_wins_over_ours() {
        // Sonus-style: PCMU first, session-level c= only, ptime 30.
        let offer = crlf(
            "
            v=0
            o=Sonus_UAC 27563 18536 IN IP4 192.0.2.40
            s=SIP Media Capabilities
            c=IN IP4 192.0.2.41
            t=0 0
            m=audio 31000 RTP/AVP 0 8 18 101
            a=rtpmap:0 PCMU/8000
            a=rtpmap:8 PCMA/8000
            a=rtpmap:18 G729/8000
            a=rtpmap:101 telephone-event/8000
            a=fmtp:101 0-15
            a=sendrecv
            a=ptime:30
        ",
        );
        let (negotiated, text) = answer_text(&offer);
        assert_eq!(negotiated.codec, Codec::Pcmu);
        assert_eq!(negotiated.payload_type, 0);
        assert_eq!(negotiated.remote, "192.0.2.41:31000".parse().unwrap());
        assert_eq!(negotiated.ptime_ms, 30);
        assert_eq!(m_lines(&text), ["m=audio 40000 RTP/AVP 0 101"]);
        assert!(text.contains("a=ptime:20\r\n"));

        // Unless we do not accept the caller's first choice.
        let pcma_only = LocalMedia {
            codecs: vec![Codec::Pcma],
            ..ivr()
        };
        let (negotiated, _) = answer(&offer, &pcma_only).unwrap();
        assert_eq!(negotiated.codec, Codec::Pcma);
    }

    #[test]
    fn softphone_dynamic_payload_types() {
        // baresip/pjsip-like: opus first, a dynamic lower-case PCMU, two telephone-events.
        let offer = crlf(
            "
            v=0
            o=- 1725012345 1725012346 IN IP4 192.168.1.20
            s=-
            c=IN IP4 192.168.1.20
            t=0 0
            a=tool:baresip 3.10.1
            m=audio 10010 RTP/AVPF 96 9 97 0 8 100 102
            b=AS:128
            a=rtpmap:96 opus/48000/2
            a=fmtp:96 stereo=1;sprop-stereo=1;useinbandfec=1
            a=rtpmap:9 G722/8000
            a=rtpmap:97 pcmu/8000
            a=rtpmap:0 PCMU/8000
            a=rtpmap:8 PCMA/8000
            a=rtpmap:100 telephone-event/48000
            a=rtpmap:102 telephone-event/8000
            a=rtcp-mux
            a=rtcp:10011 IN IP4 192.168.1.20
            a=ssrc:1922837282 cname:a1b2c3d4
            a=mid:0
            a=sendrecv
            a=label:1
        ",
        );
        let (negotiated, text) = answer_text(&offer);
        assert_eq!(negotiated.codec, Codec::Pcmu);
        assert_eq!(negotiated.payload_type, 97);
        assert_eq!(negotiated.dtmf_payload_type, Some(102));
        assert_eq!(m_lines(&text), ["m=audio 40000 RTP/AVPF 97 102"]);
        assert!(text.contains("a=rtpmap:97 PCMU/8000\r\n"));
        assert!(text.contains("a=fmtp:102 0-16\r\n"));
        assert!(!text.contains("rtcp-mux"));
    }

    const SIPP: &str = "
        v=0
        o=user1 53655765 2353687637 IN IP4 127.0.0.1
        s=-
        c=IN IP4 127.0.0.1
        t=0 0
        m=audio 6000 RTP/AVP 0
        a=rtpmap:0 PCMU/8000
    ";

    #[test]
    fn sipp_default_offer_has_no_telephone_event() {
        let (negotiated, text) = answer_text(&crlf(SIPP));
        assert_eq!(negotiated.codec, Codec::Pcmu);
        assert_eq!(negotiated.dtmf_payload_type, None);
        assert_eq!(negotiated.remote, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(m_lines(&text), ["m=audio 40000 RTP/AVP 0"]);
        assert!(!text.contains("telephone-event"));
        assert!(!text.contains("fmtp"));
    }

    #[test]
    fn static_payload_type_without_rtpmap() {
        let offer = crlf(
            "
            v=0
            o=- 1 1 IN IP4 10.0.0.1
            s=-
            c=IN IP4 10.0.0.1
            t=0 0
            m=audio 7000 RTP/AVP 18 8
        ",
        );
        let (negotiated, _) = answer_text(&offer);
        assert_eq!(
            (negotiated.codec, negotiated.payload_type),
            (Codec::Pcma, 8)
        );
    }

    fn refusal(offer: &[u8]) -> SdpError {
        match answer(offer, &ivr()) {
            Ok((n, body)) => panic!("accepted {n:?}: {}", String::from_utf8_lossy(&body)),
            Err(e) => e,
        }
    }

    #[test]
    fn g729_only_is_not_acceptable() {
        let offer = crlf(
            "
            v=0
            o=- 1 1 IN IP4 10.0.0.1
            s=-
            c=IN IP4 10.0.0.1
            t=0 0
            m=audio 7000 RTP/AVP 18 101
            a=rtpmap:18 G729/8000
            a=fmtp:18 annexb=no
            a=rtpmap:101 telephone-event/8000
        ",
        );
        let e = refusal(&offer);
        assert!(matches!(e, SdpError::NotAcceptable(_)), "{e:?}");
        assert_eq!(e.status_code(), 488);
    }

    #[test]
    fn wrong_rate_or_channels_is_not_g711() {
        let offer = crlf(
            "
            v=0
            c=IN IP4 10.0.0.1
            m=audio 7000 RTP/AVP 96 97
            a=rtpmap:96 PCMU/16000
            a=rtpmap:97 PCMA/8000/2
        ",
        );
        assert!(matches!(refusal(&offer), SdpError::NotAcceptable(_)));
    }

    #[test]
    fn srtp_only_is_not_acceptable() {
        let offer = crlf(
            "
            v=0
            o=- 1 1 IN IP4 10.0.0.1
            s=-
            c=IN IP4 10.0.0.1
            t=0 0
            m=audio 7000 RTP/SAVP 0 8
            a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
        ",
        );
        assert!(matches!(refusal(&offer), SdpError::NotAcceptable(_)));
    }

    #[test]
    fn srtp_then_rtp_answers_the_rtp_stream() {
        // Best-effort SRTP offer with an RTP fallback stream.
        let offer = crlf(
            "
            v=0
            o=- 1 1 IN IP4 10.0.0.1
            s=-
            c=IN IP4 10.0.0.1
            t=0 0
            m=audio 7000 RTP/SAVP 0
            a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
            m=audio 7002 RTP/AVP 0
        ",
        );
        let (negotiated, text) = answer_text(&offer);
        assert_eq!(negotiated.remote.port(), 7002);
        assert_eq!(
            m_lines(&text),
            ["m=audio 0 RTP/SAVP 0", "m=audio 40000 RTP/AVP 0"]
        );
    }

    #[test]
    fn video_is_declined_with_port_zero() {
        let offer = crlf(
            "
            v=0
            o=- 1 1 IN IP4 10.0.0.1
            s=-
            c=IN IP4 10.0.0.1
            t=0 0
            m=video 9078 RTP/AVP 96 97
            a=rtpmap:96 H264/90000
            a=fmtp:96 profile-level-id=42801F
            a=rtpmap:97 VP8/90000
            m=audio 7000 RTP/AVP 8 101
            a=rtpmap:101 telephone-event/8000
            m=image 7004 udptl t38
            a=T38FaxVersion:0
        ",
        );
        let (negotiated, text) = answer_text(&offer);
        assert_eq!(negotiated.remote.port(), 7000);
        assert_eq!(
            m_lines(&text),
            [
                "m=video 0 RTP/AVP 96 97",
                "m=audio 40000 RTP/AVP 8 101",
                "m=image 0 udptl t38",
            ]
        );
        // The declined streams carry no attributes.
        assert_eq!(text.matches("a=").count(), 5, "{text}");
    }

    #[test]
    fn no_audio_or_declined_audio_is_not_acceptable() {
        let video_only = crlf(
            "
            v=0
            c=IN IP4 10.0.0.1
            m=video 9078 RTP/AVP 96
            a=rtpmap:96 H264/90000
        ",
        );
        assert!(matches!(refusal(&video_only), SdpError::NotAcceptable(_)));
        let no_media = crlf(
            "
            v=0
            o=- 1 1 IN IP4 10.0.0.1
            s=-
            c=IN IP4 10.0.0.1
            t=0 0
        ",
        );
        assert!(matches!(refusal(&no_media), SdpError::NotAcceptable(_)));
        let port_zero = crlf(&SIPP.replace("audio 6000", "audio 0"));
        assert!(matches!(refusal(&port_zero), SdpError::NotAcceptable(_)));
    }

    fn hold(attribute: &str, address: &str) -> Vec<u8> {
        crlf(&format!(
            "
            v=0
            o=- 1 2 IN IP4 10.0.0.1
            s=-
            c=IN IP4 {address}
            t=0 0
            m=audio 7000 RTP/AVP 0 101
            a=rtpmap:101 telephone-event/8000
            {attribute}
        "
        ))
    }

    #[test]
    fn hold_offers() {
        let cases = [
            // (media attribute, c= address, answered attribute, remote's direction)
            ("a=sendonly", "10.0.0.1", "a=recvonly", Direction::SendOnly),
            ("a=recvonly", "10.0.0.1", "a=sendonly", Direction::RecvOnly),
            ("a=inactive", "10.0.0.1", "a=inactive", Direction::Inactive),
            ("a=sendrecv", "10.0.0.1", "a=sendrecv", Direction::SendRecv),
            ("", "10.0.0.1", "a=sendrecv", Direction::SendRecv),
            // RFC 2543 hold.
            ("", "0.0.0.0", "a=recvonly", Direction::SendOnly),
            ("a=sendrecv", "0.0.0.0", "a=recvonly", Direction::SendOnly),
            ("a=recvonly", "0.0.0.0", "a=inactive", Direction::Inactive),
            ("a=inactive", "0.0.0.0", "a=inactive", Direction::Inactive),
        ];
        for (attribute, address, answered, remote) in cases {
            let (negotiated, text) = answer_text(&hold(attribute, address));
            assert!(
                text.contains(&format!("{answered}\r\n")),
                "{attribute} {address}: {text}"
            );
            assert_eq!(negotiated.direction, remote, "{attribute} {address}");
            assert_eq!(negotiated.remote.ip().to_string(), address);
        }
    }

    #[test]
    fn media_level_direction_beats_session_level() {
        let offer = crlf(
            "
            v=0
            o=- 1 2 IN IP4 10.0.0.1
            s=-
            c=IN IP4 10.0.0.1
            t=0 0
            a=sendonly
            m=audio 7000 RTP/AVP 0
            a=sendrecv
            m=audio 7002 RTP/AVP 0
        ",
        );
        assert_eq!(answer_text(&offer).0.direction, Direction::SendRecv);
        let session_only = crlf(
            "
            v=0
            c=IN IP4 10.0.0.1
            a=inactive
            m=audio 7000 RTP/AVP 0
        ",
        );
        let (negotiated, text) = answer_text(&session_only);
        assert_eq!(negotiated.direction, Direction::Inactive);
        assert!(text.contains("a=inactive\r\n"));
    }

    #[test]
    fn local_direction_is_intersected() {
        let listen_only = LocalMedia {
            direction: Direction::RecvOnly,
            ..ivr()
        };
        let (negotiated, body) = answer(&crlf(SIPP), &listen_only).unwrap();
        assert!(String::from_utf8(body).unwrap().contains("a=recvonly\r\n"));
        assert_eq!(negotiated.direction, Direction::SendOnly);
        let (negotiated, body) = answer(
            &hold("a=sendonly", "10.0.0.1"),
            &LocalMedia {
                direction: Direction::SendOnly,
                ..ivr()
            },
        )
        .unwrap();
        assert!(String::from_utf8(body).unwrap().contains("a=inactive\r\n"));
        assert_eq!(negotiated.direction, Direction::Inactive);
    }

    #[test]
    fn direction_answer_and_intersect() {
        use Direction::*;
        for (d, a) in [
            (SendRecv, SendRecv),
            (SendOnly, RecvOnly),
            (RecvOnly, SendOnly),
            (Inactive, Inactive),
        ] {
            assert_eq!(d.answer(), a);
        }
        assert_eq!(SendRecv.intersect(RecvOnly), RecvOnly);
        assert_eq!(SendOnly.intersect(RecvOnly), Inactive);
    }

    #[test]
    fn ipv6_offer() {
        let offer = crlf(
            "
            v=0
            o=- 1 1 IN IP6 2001:db8::10
            s=-
            c=IN IP6 2001:db8::10
            t=0 0
            m=audio 7000 RTP/AVP 8
        ",
        );
        let (negotiated, _) = answer_text(&offer);
        assert_eq!(negotiated.remote, "[2001:db8::10]:7000".parse().unwrap());

        let v6 = LocalMedia {
            address: IpAddr::V6(Ipv6Addr::LOCALHOST),
            ..ivr()
        };
        let (_, body) = answer(&offer, &v6).unwrap();
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("o=- 4242 1 IN IP6 ::1\r\n"), "{text}");
        assert!(text.contains("c=IN IP6 ::1\r\n"), "{text}");
    }

    #[test]
    fn sloppy_sbc_offer() {
        // Bare LF, no s=, no t=, runs of spaces and tabs, trailing blanks, spaces
        // around `=`, a Latin-1 byte, a vendor b= and two s= lines.
        let mut offer = b"\n\nv=0\no=-  1  1 IN\tIP4 10.0.0.1  \n".to_vec();
        offer.extend_from_slice(b"i=Llamada de Pe\xf1a\n");
        offer.extend_from_slice(b"c = IN IP4   10.0.0.9\nb=X-MBR:whatever\n");
        offer.extend_from_slice(b"m=audio   6000  RTP/AVP   18  8 101  \n");
        offer.extend_from_slice(b"a=rtpmap:101  telephone-event/8000\n");
        offer.extend_from_slice(b"a=fmtp:101   0-15 \na=X-sbc-id:  edge-3 \n");
        offer.extend_from_slice(b"a=X-caller-name:Pe\xf1a\n");
        offer.extend_from_slice(b"a=ptime: 20.0\na=sendrecv   \n\n");
        offer.extend_from_slice(b"s=one\ns=two\n");
        let (negotiated, text) = answer_text(&offer);
        assert_eq!(
            negotiated,
            Negotiated {
                codec: Codec::Pcma,
                payload_type: 8,
                dtmf_payload_type: Some(101),
                remote: "10.0.0.9:6000".parse().unwrap(),
                direction: Direction::SendRecv,
                ptime_ms: 20,
            }
        );
        assert!(text.contains("a=fmtp:101 0-15\r\n"));
    }

    #[test]
    fn garbage_is_malformed() {
        let cases: [&[u8]; 9] = [
            b"",
            b"hello world",
            b"\x00\xff\xfe garbage",
            b"v=1\r\nc=IN IP4 10.0.0.1\r\nm=audio 7000 RTP/AVP 0\r\n",
            b"c=IN IP4 10.0.0.1\r\nm=audio 7000 RTP/AVP 0\r\n",
            b"v=0\r\nm=audio 7000 RTP/AVP 0\r\nthis is not sdp\r\n",
            b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 70000 RTP/AVP 0\r\n",
            // No c= anywhere.
            b"v=0\r\nm=audio 7000 RTP/AVP 0\r\n",
            b"v=\x01\x1b[2J\r\n",
        ];
        for case in cases {
            let e = refusal(case);
            assert!(
                matches!(e, SdpError::Malformed(_)),
                "{:?}: {e:?}",
                String::from_utf8_lossy(case)
            );
            assert_eq!(e.status_code(), 400);
            assert!(!e.to_string().contains(char::is_control), "{e}");
        }
    }

    #[test]
    fn unusable_connection_address_is_not_acceptable() {
        for connection in [
            "IN IP4 media.example.com",
            "IN IP4 224.2.1.1/127",
            "ATM NSAP 47.0091",
        ] {
            let offer = crlf(&format!(
                "
                v=0
                c={connection}
                m=audio 6000 RTP/AVP 0
            "
            ));
            assert!(
                matches!(refusal(&offer), SdpError::NotAcceptable(_)),
                "{connection}"
            );
        }
    }

    #[test]
    fn truncations_and_corruptions_never_panic() {
        let offer = crlf(CISCO);
        for end in 0..=offer.len() {
            let _ = answer(&offer[..end], &ivr());
            let _ = accept_answer(&offer[..end], &ivr());
        }
        // Every byte replaced by a few troublesome ones.
        let mut state = 0x2545_f491_u32;
        for at in 0..offer.len() {
            for byte in [b'\0', b'\r', b'\n', b' ', b'=', b':', b'/', 0xff] {
                let mut bad = offer.clone();
                bad[at] = byte;
                let _ = answer(&bad, &ivr());
            }
            // Plus a pseudo-random byte (xorshift32).
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let mut bad = offer.clone();
            bad[at] = state.to_le_bytes()[0];
            let _ = answer(&bad, &ivr());
        }
    }

    #[test]
    fn offer_round_trips_through_answer() {
        let operator_leg = LocalMedia {
            address: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            port: 40100,
            codecs: vec![Codec::Pcmu, Codec::Pcma, Codec::Pcmu],
            session_id: 77,
            session_version: 3,
            direction: Direction::SendRecv,
        };
        let ours = offer(&operator_leg);
        let text = String::from_utf8(ours.clone()).unwrap();
        assert_eq!(
            text,
            "v=0\r\n\
             o=- 77 3 IN IP4 198.51.100.7\r\n\
             s=-\r\n\
             c=IN IP4 198.51.100.7\r\n\
             t=0 0\r\n\
             m=audio 40100 RTP/AVP 0 8 101\r\n\
             a=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n\
             a=fmtp:101 0-16\r\n\
             a=ptime:20\r\n\
             a=sendrecv\r\n"
        );

        // The operator's phone prefers PCMA but answers in our (the offerer's) order.
        let phone = LocalMedia {
            address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 50)),
            port: 5004,
            ..ivr()
        };
        let (theirs, their_answer) = answer(&ours, &phone).unwrap();
        assert_eq!(theirs.remote, "198.51.100.7:40100".parse().unwrap());
        let negotiated = accept_answer(&their_answer, &operator_leg).unwrap();
        assert_eq!(
            negotiated,
            Negotiated {
                codec: Codec::Pcmu,
                payload_type: 0,
                dtmf_payload_type: Some(101),
                remote: "192.0.2.50:5004".parse().unwrap(),
                direction: Direction::SendRecv,
                ptime_ms: 20,
            }
        );
        assert_eq!(negotiated.codec, theirs.codec);
    }

    #[test]
    fn accept_answer_on_hold_and_declined() {
        let local = ivr();
        let ours = offer(&local);
        let holding = LocalMedia {
            direction: Direction::SendOnly,
            ..ivr()
        };
        let (_, their_answer) = answer(&ours, &holding).unwrap();
        assert_eq!(
            accept_answer(&their_answer, &local).unwrap().direction,
            Direction::SendOnly
        );

        let declined = crlf(
            "
            v=0
            o=- 5 5 IN IP4 192.0.2.50
            s=-
            c=IN IP4 192.0.2.50
            t=0 0
            m=audio 0 RTP/AVP 0
        ",
        );
        assert!(matches!(
            accept_answer(&declined, &local),
            Err(SdpError::NotAcceptable(_))
        ));
        assert!(matches!(
            accept_answer(b"nonsense", &local),
            Err(SdpError::Malformed(_))
        ));
    }

    #[test]
    fn empty_codec_list_offers_both() {
        let text = String::from_utf8(offer(&LocalMedia {
            codecs: vec![],
            ..ivr()
        }))
        .unwrap();
        assert_eq!(m_lines(&text), ["m=audio 40000 RTP/AVP 0 8 101"]);
    }
}
