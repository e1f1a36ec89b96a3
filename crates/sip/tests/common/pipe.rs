//! The link between the UAC and the endpoint: no latency, loss chosen by the
//! test, and a log of every packet sent, dropped ones included.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use hotline_sip::message::Message;

/// The direction of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// From the UAC to the endpoint.
    ToUas,
    /// From the endpoint to the UAC.
    ToUac,
}

/// A packet that went into the pipe, delivered or not.
#[derive(Debug, Clone)]
pub(crate) struct Packet {
    /// When it was sent.
    pub(crate) at: Instant,
    /// Which way.
    pub(crate) dir: Dir,
    /// Its index among the packets sent this way, from 0.
    pub(crate) index: usize,
    /// The destination address the sender chose.
    pub(crate) to: SocketAddr,
    /// The endpoint's TCP connection id for what it sent (None for UDP and
    /// for what the UAC sent).
    pub(crate) connection: Option<u64>,
    /// The bytes.
    pub(crate) bytes: Bytes,
    /// Whether the pipe dropped it.
    pub(crate) dropped: bool,
}

impl Packet {
    /// The packet as text (SIP is text; the tests send nothing else but garbage).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// The packet parsed, if it parses.
    pub(crate) fn msg(&self) -> Option<Message> {
        Message::parse_datagram(self.bytes.clone()).ok()
    }

    /// The status code of a response.
    pub(crate) fn status(&self) -> Option<u16> {
        self.msg()?.status()
    }

    /// The method of a request.
    pub(crate) fn method(&self) -> Option<String> {
        Some(self.msg()?.method()?.to_string())
    }

    /// The CSeq method (of a request or a response).
    pub(crate) fn cseq_method(&self) -> Option<String> {
        Some(self.msg()?.cseq().ok()?.method.to_string())
    }

    /// Whether this is a response with `code` to a `method` request.
    pub(crate) fn is_response(&self, code: u16, method: &str) -> bool {
        self.status() == Some(code) && self.cseq_method().as_deref() == Some(method)
    }

    /// Whether this is a `method` request.
    pub(crate) fn is_request(&self, method: &str) -> bool {
        self.method().as_deref() == Some(method)
    }

    /// The branch of the top Via.
    pub(crate) fn branch(&self) -> Option<String> {
        let msg = self.msg()?;
        let via = msg.top_via().ok()?;
        Some(String::from_utf8_lossy(via.branch()?).into_owned())
    }
}

/// Picks packets to drop from their index in their direction and their text.
type DropFn = Box<dyn FnMut(usize, &str) -> bool>;

struct Rule {
    dir: Dir,
    pick: DropFn,
    /// How many more packets the rule may drop (None: no limit).
    remaining: Option<usize>,
}

/// A link with no latency that drops the packets its rules pick, and keeps a
/// log of everything sent through it.
#[derive(Default)]
pub(crate) struct Pipe {
    rules: Vec<Rule>,
    in_flight: VecDeque<Packet>,
    sent: [usize; 2],
    /// Every packet, in the order sent.
    pub(crate) log: Vec<Packet>,
}

impl std::fmt::Debug for Pipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipe")
            .field("log", &self.log.len())
            .finish()
    }
}

impl Pipe {
    /// Drops the packets with these indices in direction `dir`.
    pub(crate) fn drop_nth(&mut self, dir: Dir, nth: &[usize]) {
        let nth = nth.to_vec();
        self.drop_if(dir, None, move |index, _| nth.contains(&index));
    }

    /// Drops the first `count` packets in direction `dir` whose text starts with `prefix`.
    pub(crate) fn drop_first(&mut self, dir: Dir, count: usize, prefix: &str) {
        let prefix = prefix.to_owned();
        self.drop_if(dir, Some(count), move |_, text| text.starts_with(&prefix));
    }

    /// Drops every packet in direction `dir` whose text starts with `prefix`.
    pub(crate) fn drop_all(&mut self, dir: Dir, prefix: &str) {
        let prefix = prefix.to_owned();
        self.drop_if(dir, None, move |_, text| text.starts_with(&prefix));
    }

    /// Drops up to `count` packets (None: any number) in direction `dir` that `pick` chooses.
    pub(crate) fn drop_if(
        &mut self,
        dir: Dir,
        count: Option<usize>,
        pick: impl FnMut(usize, &str) -> bool + 'static,
    ) {
        self.rules.push(Rule {
            dir,
            pick: Box::new(pick),
            remaining: count,
        });
    }

    /// Removes every drop rule: the pipe is lossless from now on.
    pub(crate) fn heal(&mut self) {
        self.rules.clear();
    }

    pub(super) fn send(
        &mut self,
        at: Instant,
        dir: Dir,
        to: SocketAddr,
        connection: Option<u64>,
        bytes: Bytes,
    ) {
        let slot = match dir {
            Dir::ToUas => 0,
            Dir::ToUac => 1,
        };
        let index = self.sent[slot];
        self.sent[slot] += 1;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let mut dropped = false;
        for rule in self.rules.iter_mut().filter(|r| r.dir == dir) {
            if rule.remaining != Some(0) && (rule.pick)(index, &text) {
                if let Some(n) = &mut rule.remaining {
                    *n -= 1;
                }
                dropped = true;
                break;
            }
        }
        let packet = Packet {
            at,
            dir,
            index,
            to,
            connection,
            bytes,
            dropped,
        };
        if !dropped {
            self.in_flight.push_back(packet.clone());
        }
        self.log.push(packet);
    }

    /// The packets sent in direction `dir`, dropped ones included.
    pub(crate) fn sent(&self, dir: Dir) -> impl Iterator<Item = &Packet> {
        self.log.iter().filter(move |p| p.dir == dir)
    }

    /// The packets delivered in direction `dir`.
    pub(crate) fn delivered(&self, dir: Dir) -> impl Iterator<Item = &Packet> {
        self.sent(dir).filter(|p| !p.dropped)
    }

    /// The next packet to deliver, in the order sent.
    pub(super) fn next_delivery(&mut self) -> Option<Packet> {
        self.in_flight.pop_front()
    }
}
