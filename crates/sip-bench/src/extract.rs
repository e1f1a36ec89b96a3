//! What every parser is asked to produce from a message, in two sizes.
//!
//! [`Fields`] is the benchmark's unit of work: parse, then the typed top Via
//! (its branch and port), From (its tag), To (its URI's user), Call-ID and
//! CSeq, reduced to numbers so that an iteration allocates nothing beyond what
//! the parser itself does. [`Extract`] is an owned view of the same fields and
//! a little more, for the correctness comparison.

use bytes::Bytes;
use hotline_sip::message::{Message, ParseError, StartLine};
use hotline_sip::uri::{Host, unescape};

/// The five fields, reduced to numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields {
    /// Length of the top Via's `branch`.
    pub branch_len: usize,
    /// The top Via's sent-by port.
    pub via_port: Option<u16>,
    /// Length of the From `tag`.
    pub from_tag_len: usize,
    /// Length of the To URI's user part.
    pub to_user_len: usize,
    /// Length of the Call-ID.
    pub call_id_len: usize,
    /// The CSeq number.
    pub cseq: u32,
}

impl Fields {
    /// Parses `raw` with hotline-sip and reads the five fields, typed.
    pub fn hotline(raw: Bytes) -> Result<Self, ParseError> {
        let msg = Message::parse_datagram(raw)?;
        let via = msg.top_via()?;
        let from = msg.from_header()?;
        let to = msg.to_header()?;
        let call_id = msg.call_id()?;
        let cseq = msg.cseq()?;
        Ok(Self {
            branch_len: via.branch().map_or(0, <[u8]>::len),
            via_port: via.port,
            from_tag_len: from.tag().map_or(0, <[u8]>::len),
            to_user_len: to.uri.user.map_or(0, <[u8]>::len),
            call_id_len: call_id.len(),
            cseq: cseq.seq,
        })
    }
}

/// The start line, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// A request.
    Request {
        /// The method token.
        method: String,
        /// The Request-URI as the parser gives it back (ours: as written).
        uri: String,
    },
    /// A response.
    Response {
        /// The status code.
        code: u16,
        /// The reason phrase as the parser gives it back.
        reason: String,
    },
}

/// The fields the comparison checks, owned, so that three parsers can be held
/// to one expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extract {
    /// The start line.
    pub start: Start,
    /// The top Via's sent-by host: a name as written, or an address without brackets.
    pub via_host: String,
    /// The top Via's sent-by port.
    pub via_port: Option<u16>,
    /// The top Via's branch.
    pub via_branch: Option<String>,
    /// The From URI's user part (the number, for `tel:`), `%XX`-decoded.
    pub from_user: Option<String>,
    /// The From tag.
    pub from_tag: Option<String>,
    /// The To URI's user part, `%XX`-decoded.
    pub to_user: Option<String>,
    /// The To tag.
    pub to_tag: Option<String>,
    /// The Call-ID.
    pub call_id: String,
    /// The CSeq number.
    pub cseq: u32,
    /// The CSeq method.
    pub cseq_method: String,
    /// The body, byte for byte.
    pub body: Vec<u8>,
}

impl Extract {
    /// Parses `raw` as a datagram with hotline-sip; a request must also pass
    /// `validate_request`, as the endpoint requires before processing it.
    pub fn hotline(raw: &[u8]) -> Result<Self, String> {
        let msg =
            Message::parse_datagram(Bytes::copy_from_slice(raw)).map_err(|e| e.to_string())?;
        // The accessors read liberally (to address a 400); the endpoint only
        // processes a request that passes this strict check.
        if msg.is_request() {
            msg.validate_request().map_err(|e| e.to_string())?;
        }
        let start = match msg.start_line() {
            StartLine::Request { method } => Start::Request {
                method: method.to_string(),
                uri: lossy(msg.request_uri()),
            },
            StartLine::Response { code } => Start::Response {
                code: *code,
                reason: lossy(msg.reason()),
            },
        };
        let via = msg.top_via().map_err(|e| e.to_string())?;
        let from = msg.from_header().map_err(|e| e.to_string())?;
        let to = msg.to_header().map_err(|e| e.to_string())?;
        let cseq = msg.cseq().map_err(|e| e.to_string())?;
        Ok(Self {
            start,
            via_host: match via.host {
                Host::Name(n) => lossy(n),
                Host::V4(a) => a.to_string(),
                Host::V6(a) => a.to_string(),
            },
            via_port: via.port,
            via_branch: via.branch().map(lossy),
            from_user: from.uri.user.map(|u| lossy(&unescape(u))),
            from_tag: from.tag().map(lossy),
            to_user: to.uri.user.map(|u| lossy(&unescape(u))),
            to_tag: to.tag().map(lossy),
            call_id: lossy(msg.call_id().map_err(|e| e.to_string())?),
            cseq: cseq.seq,
            cseq_method: cseq.method.to_string(),
            body: msg.body().to_vec(),
        })
    }
}

/// `%XX`-decodes a user part the way ours is decoded, so that parsers that
/// store it decoded and parsers that store it as written compare equal.
pub fn decode(s: &str) -> String {
    lossy(&unescape(s.as_bytes()))
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn invite_fields() {
        let f = Fields::hotline(fixtures::invite()).unwrap();
        assert_eq!(
            f,
            Fields {
                branch_len: "z9hG4bK-3f9a2c71e4".len(),
                via_port: Some(5060),
                from_tag_len: "as6c1f2b9e".len(),
                to_user_len: "+18005550199".len(),
                call_id_len: "5f2b7c3e1a9d4e8f@203.0.113.45".len(),
                cseq: 102,
            }
        );
    }

    #[test]
    fn invite_extract() {
        let e = Extract::hotline(&fixtures::invite()).unwrap();
        assert_eq!(e.via_host, "203.0.113.45");
        assert_eq!(e.from_user.as_deref(), Some("+14155550123"));
        assert_eq!(e.body, fixtures::INVITE_SDP.as_bytes());
    }
}
