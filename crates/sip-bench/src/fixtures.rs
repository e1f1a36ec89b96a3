//! Messages shared by the benchmark, the comparison example and the tests.

use bytes::Bytes;

/// A 250-byte SDP offer as carriers send it: PCMU, PCMA and telephone-event.
pub const INVITE_SDP: &str = "v=0\r\n\
o=SBC-1 1718052213 1718052214 IN IP4 203.0.113.46\r\n\
s=SIP Call\r\n\
c=IN IP4 203.0.113.46\r\n\
t=0 0\r\n\
m=audio 31456 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

/// The header section of a carrier INVITE (Content-Length is appended by [`invite`]).
const INVITE_HEAD: &str = "INVITE sip:+18005550199@192.0.2.10 SIP/2.0\r\n\
Via: SIP/2.0/UDP 203.0.113.45:5060;branch=z9hG4bK-3f9a2c71e4;rport\r\n\
Record-Route: <sip:203.0.113.45;lr>\r\n\
Max-Forwards: 69\r\n\
From: \"ACME CALLER\" <sip:+14155550123@203.0.113.45>;tag=as6c1f2b9e\r\n\
To: <sip:+18005550199@192.0.2.10>\r\n\
Call-ID: 5f2b7c3e1a9d4e8f@203.0.113.45\r\n\
CSeq: 102 INVITE\r\n\
Contact: <sip:+14155550123@203.0.113.45>\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE\r\n\
Supported: timer\r\n\
User-Agent: SBC/4.2\r\n\
P-Asserted-Identity: <sip:+14155550123@203.0.113.45>\r\n\
Content-Type: application/sdp\r\n";

/// A typical carrier INVITE with an SDP offer (about 800 bytes): Via with
/// branch and rport, Record-Route, From with display name and tag, To,
/// Call-ID, CSeq, Contact, Max-Forwards, Allow, Supported, User-Agent,
/// P-Asserted-Identity, Content-Type, Content-Length.
pub fn invite() -> Bytes {
    Bytes::from(format!(
        "{INVITE_HEAD}Content-Length: {}\r\n\r\n{INVITE_SDP}",
        INVITE_SDP.len()
    ))
}

/// A keep-alive OPTIONS of about 200 bytes (220).
pub fn options() -> Bytes {
    options_numbered(7731)
}

/// An OPTIONS whose branch, tag and Call-ID carry `n`, so that each is a new
/// transaction for an endpoint.
pub fn options_numbered(n: u32) -> Bytes {
    Bytes::from(format!(
        "OPTIONS sip:192.0.2.10 SIP/2.0\r\n\
Via: SIP/2.0/UDP 203.0.113.45;branch=z9hG4bK{n:04}\r\n\
From: <sip:ka@203.0.113.45>;tag={n}\r\n\
To: <sip:192.0.2.10>\r\n\
Call-ID: {n}@203.0.113.45\r\n\
CSeq: 1 OPTIONS\r\n\
Max-Forwards: 70\r\n\
Content-Length: 0\r\n\r\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_as_advertised() {
        assert!(
            (240..=260).contains(&INVITE_SDP.len()),
            "SDP is {} bytes",
            INVITE_SDP.len()
        );
        let invite = invite();
        assert!(
            (760..=840).contains(&invite.len()),
            "INVITE is {} bytes",
            invite.len()
        );
        let options = options();
        assert!(
            (190..=230).contains(&options.len()),
            "OPTIONS is {} bytes",
            options.len()
        );
    }
}
