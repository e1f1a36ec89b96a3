//! The same work as [`Fields::hotline`] and [`Extract::hotline`], done with
//! rsip 0.4.0 and rsipstack 0.7.14 through their public APIs.
//!
//! Each parses the whole message (both build owned header lists as they go),
//! then types the top Via, From, To and CSeq with the library's own header
//! parsers and reads Call-ID. Where the library offers a typed parse from a
//! `&str` we use it rather than `.typed()`, which clones the header first, so
//! the comparators are not charged for work they can avoid: rsipstack has such
//! parsers (`typed::Via::parse`, ...); rsip does not, so it pays one clone per
//! typed header.

use rsip::prelude::{HeadersExt as _, ToTypedHeader as _, UntypedHeader as _};
use rsipstack::sip::prelude::HeadersExt as _;

use crate::extract::{Extract, Fields, Start, decode};

/// rsip 0.4.0.
pub mod rsip_impl {
    use super::*;

    /// Parses `raw` with rsip and reads the five fields, typed.
    pub fn fields(raw: &[u8]) -> Result<Fields, rsip::Error> {
        let msg = rsip::SipMessage::try_from(raw)?;
        let via = msg.via_header()?.typed()?;
        let from = msg.from_header()?.typed()?;
        let to = msg.to_header()?.typed()?;
        let call_id = msg.call_id_header()?.value();
        let cseq = msg.cseq_header()?.typed()?;
        Ok(Fields {
            branch_len: via.branch().map_or(0, |b| b.value().len()),
            via_port: via.uri.host_with_port.port.map(u16::from),
            from_tag_len: from.tag().map_or(0, |t| t.value().len()),
            to_user_len: to.uri.auth.as_ref().map_or(0, |a| a.user.len()),
            call_id_len: call_id.trim().len(),
            cseq: cseq.seq,
        })
    }

    /// Parses `raw` with rsip into the owned view.
    pub fn extract(raw: &[u8]) -> Result<Extract, String> {
        let e = |e: rsip::Error| e.to_string();
        let msg = rsip::SipMessage::try_from(raw).map_err(e)?;
        let start = match &msg {
            rsip::SipMessage::Request(r) => Start::Request {
                method: r.method.to_string(),
                uri: r.uri.to_string(),
            },
            rsip::SipMessage::Response(r) => Start::Response {
                code: r.status_code.code(),
                // Display is "code reason".
                reason: r
                    .status_code
                    .to_string()
                    .split_once(' ')
                    .map_or_else(String::new, |(_, reason)| reason.to_owned()),
            },
        };
        let via = msg.via_header().map_err(e)?.typed().map_err(e)?;
        let from = msg.from_header().map_err(e)?.typed().map_err(e)?;
        let to = msg.to_header().map_err(e)?.typed().map_err(e)?;
        let cseq = msg.cseq_header().map_err(e)?.typed().map_err(e)?;
        Ok(Extract {
            start,
            via_host: host(&via.uri.host_with_port.host),
            via_port: via.uri.host_with_port.port.map(u16::from),
            via_branch: via.branch().map(|b| b.value().to_owned()),
            from_user: user(&from.uri),
            from_tag: from.tag().map(|t| t.value().to_owned()),
            to_user: user(&to.uri),
            to_tag: to.tag().map(|t| t.value().to_owned()),
            call_id: msg.call_id_header().map_err(e)?.value().trim().to_owned(),
            cseq: cseq.seq,
            cseq_method: cseq.method.to_string(),
            body: msg.body().clone(),
        })
    }

    fn host(h: &rsip::Host) -> String {
        match h {
            rsip::Host::Domain(d) => d.to_string(),
            rsip::Host::IpAddr(a) => a.to_string(),
        }
    }

    /// The user part, or for a URI without one (as rsip reads `tel:`) the host.
    fn user(uri: &rsip::Uri) -> Option<String> {
        match (&uri.auth, &uri.scheme) {
            (Some(a), _) => Some(decode(&a.user)),
            (None, Some(rsip::Scheme::Other(s))) if s.eq_ignore_ascii_case("tel") => {
                Some(decode(&host(&uri.host_with_port.host)))
            }
            _ => None,
        }
    }
}

/// rsipstack 0.7.14 (its own fork of rsip's types, with a hand-written parser).
pub mod rsipstack_impl {
    use rsipstack::sip::{self as s, typed};

    use super::*;

    /// Parses `raw` with rsipstack and reads the five fields, typed.
    pub fn fields(raw: &[u8]) -> Result<Fields, s::Error> {
        let msg = s::SipMessage::try_from(raw)?;
        // `top_via_header` splits a comma-separated Via; `into_typed` does not clone.
        let via = s::ToTypedHeader::into_typed(msg.top_via_header()?)?;
        let from = typed::From::parse(msg.from_header()?.value().trim())?;
        let to = typed::To::parse(msg.to_header()?.value().trim())?;
        let call_id = msg.call_id_header()?.value();
        let cseq = typed::CSeq::parse(msg.cseq_header()?.value().trim())?;
        Ok(Fields {
            branch_len: via.branch().map_or(0, |b| b.value().len()),
            via_port: via.uri.host_with_port.port.map(|p| p.value()),
            from_tag_len: from.tag().map_or(0, |t| t.value().len()),
            to_user_len: to.uri.auth.as_ref().map_or(0, |a| a.user.len()),
            call_id_len: call_id.trim().len(),
            cseq: cseq.seq,
        })
    }

    /// Parses `raw` with rsipstack into the owned view.
    pub fn extract(raw: &[u8]) -> Result<Extract, String> {
        let e = |e: s::Error| e.to_string();
        let msg = s::SipMessage::try_from(raw).map_err(e)?;
        let (start, body) = match &msg {
            s::SipMessage::Request(r) => (
                Start::Request {
                    method: r.method.to_string(),
                    uri: r.uri.to_string(),
                },
                r.body.clone(),
            ),
            s::SipMessage::Response(r) => (
                Start::Response {
                    code: r.status_code.code(),
                    reason: r
                        .wire_reason
                        .clone()
                        .unwrap_or_else(|| r.status_code.text().to_owned()),
                },
                r.body.clone(),
            ),
        };
        let via = s::ToTypedHeader::into_typed(msg.top_via_header().map_err(e)?).map_err(e)?;
        let from = typed::From::parse(msg.from_header().map_err(e)?.value().trim()).map_err(e)?;
        let to = typed::To::parse(msg.to_header().map_err(e)?.value().trim()).map_err(e)?;
        let cseq = typed::CSeq::parse(msg.cseq_header().map_err(e)?.value().trim()).map_err(e)?;
        Ok(Extract {
            start,
            via_host: host(&via.uri.host_with_port.host),
            via_port: via.uri.host_with_port.port.map(|p| p.value()),
            via_branch: via.branch().map(|b| b.value().to_owned()),
            from_user: user(&from.uri),
            from_tag: from.tag().map(|t| t.value().to_owned()),
            to_user: user(&to.uri),
            to_tag: to.tag().map(|t| t.value().to_owned()),
            call_id: msg.call_id_header().map_err(e)?.value().trim().to_owned(),
            cseq: cseq.seq,
            cseq_method: cseq.method.to_string(),
            body,
        })
    }

    fn host(h: &s::Host) -> String {
        match h {
            s::Host::Domain(d) => d.to_string(),
            s::Host::IpAddr(a) => a.to_string(),
        }
    }

    /// The user part, or for a URI without one (as a `tel:` may be read) the host.
    fn user(uri: &s::Uri) -> Option<String> {
        match (&uri.auth, &uri.scheme) {
            (Some(a), _) => Some(decode(&a.user)),
            (None, Some(s::Scheme::Other(sch))) if sch.eq_ignore_ascii_case("tel") => {
                Some(decode(&host(&uri.host_with_port.host)))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    /// The benchmark is only fair if all three read the same values.
    #[test]
    fn all_three_read_the_same_fields() {
        for raw in [fixtures::invite(), fixtures::options()] {
            let ours = Fields::hotline(raw.clone()).unwrap();
            assert_eq!(rsip_impl::fields(&raw).unwrap(), ours);
            assert_eq!(rsipstack_impl::fields(&raw).unwrap(), ours);
        }
    }
}
