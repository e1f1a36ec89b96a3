//! A user-agent client with just enough of a core for one call: requests
//! written as text, retransmitted by the crate's own client transactions.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use hotline_sip::endpoint::Transport;
use hotline_sip::message::{HeaderName, Message};
use hotline_sip::response::response;
use hotline_sip::transaction::{InviteClient, NonInviteClient, invite_client, non_invite_client};

use super::{CALLER, DIALLED, UAC_ADDR, addr, timers};

/// How the UAC presents itself.
#[derive(Debug, Clone)]
pub(crate) struct UacConfig {
    /// UDP or TCP.
    pub(crate) transport: Transport,
    /// The address the endpoint sees our packets come from.
    pub(crate) source: SocketAddr,
    /// The sent-by of our Via (`host[:port]`).
    pub(crate) sent_by: String,
    /// Whether our Via asks for `rport` (RFC 3581).
    pub(crate) rport: bool,
    /// Record-Route values the INVITE carries, as if proxies had added them.
    pub(crate) record_route: Vec<String>,
    /// Our Contact URI.
    pub(crate) contact: String,
}

impl Default for UacConfig {
    fn default() -> Self {
        Self {
            transport: Transport::Udp,
            source: addr(UAC_ADDR),
            sent_by: UAC_ADDR.to_owned(),
            rport: true,
            record_route: Vec::new(),
            contact: format!("sip:caller@{UAC_ADDR}"),
        }
    }
}

impl UacConfig {
    /// The same over TCP.
    pub(crate) fn tcp() -> Self {
        Self {
            transport: Transport::Tcp,
            contact: format!("sip:caller@{UAC_ADDR};transport=tcp"),
            ..Self::default()
        }
    }
}

/// What identifies a request we send: its start line and the headers that
/// a CANCEL or an ACK for a non-2xx copies (RFC 3261 §9.1, §17.1.1.3).
#[derive(Debug, Clone)]
struct Head {
    uri: String,
    via: String,
    from: String,
    to: String,
    cseq: u32,
    routes: Vec<String>,
}

/// An INVITE (initial or re-INVITE) we sent.
#[derive(Debug)]
pub(crate) struct InviteTx {
    /// Its branch.
    pub(crate) branch: String,
    head: Head,
    client: InviteClient,
    /// The ACK for its 2xx, built when the first 2xx arrived.
    ack: Option<Bytes>,
    /// The status codes the transaction passed to the core, in order.
    pub(crate) codes: Vec<u16>,
    /// Whether Timer B fired.
    pub(crate) timed_out: bool,
}

impl InviteTx {
    /// Its CSeq number.
    pub(crate) fn cseq(&self) -> u32 {
        self.head.cseq
    }
}

/// A non-INVITE request we sent.
#[derive(Debug)]
pub(crate) struct RequestTx {
    /// Its method.
    pub(crate) method: String,
    /// Its branch.
    pub(crate) branch: String,
    client: NonInviteClient,
    /// The status codes the transaction passed to the core, in order.
    pub(crate) codes: Vec<u16>,
    /// Whether Timer F fired.
    pub(crate) timed_out: bool,
}

impl RequestTx {
    /// The final status, if one arrived.
    pub(crate) fn final_code(&self) -> Option<u16> {
        self.codes.iter().copied().find(|&c| c >= 200)
    }
}

/// A user-agent client with just enough of a core for one call: it builds
/// requests as text, lets the crate's transaction machines retransmit them,
/// ACKs 2xx responses end to end and answers requests from the endpoint.
#[derive(Debug)]
pub(crate) struct Uac {
    /// How we present ourselves.
    pub(crate) config: UacConfig,
    /// Call-ID of our call.
    pub(crate) call_id: String,
    /// Our tag.
    pub(crate) from_tag: String,
    /// Our last CSeq number.
    pub(crate) cseq: u32,
    next_branch: u64,
    /// The endpoint's tag, from the first response to our INVITE that had one.
    pub(crate) remote_tag: Option<String>,
    /// The Contact URI of the endpoint's 2xx (§12.1.2).
    pub(crate) remote_target: Option<String>,
    /// Route set: the 2xx's Record-Route, reversed (§12.1.2).
    pub(crate) route_set: Vec<String>,
    /// Max-Forwards of the requests we build.
    pub(crate) max_forwards: u8,
    /// Whether the core ACKs each 2xx it receives (on by default).
    pub(crate) auto_ack: bool,
    /// The body of our 2xx ACKs (the answer to an offer in a 2xx).
    pub(crate) ack_sdp: Option<String>,
    /// Whether the core answers requests from the endpoint with 200 (on by default).
    pub(crate) auto_answer: bool,
    /// The INVITEs we sent, in order.
    pub(crate) invites: Vec<InviteTx>,
    /// The other requests we sent, in order.
    pub(crate) requests: Vec<RequestTx>,
    /// Every message that reached us, with its arrival time.
    pub(crate) received: Vec<(Instant, Message)>,
    /// Datagrams that reached us and did not parse.
    pub(crate) unparseable: usize,
    /// Responses that matched none of our transactions.
    pub(crate) stray: Vec<Message>,
    outbox: VecDeque<Bytes>,
}

impl Uac {
    /// A UAC with a fixed Call-ID and tag.
    pub(crate) fn new(config: UacConfig) -> Self {
        Self {
            config,
            call_id: "a84b4c76e66710@caller.example".to_owned(),
            from_tag: "1928301774".to_owned(),
            cseq: 314_159,
            next_branch: 0,
            remote_tag: None,
            remote_target: None,
            route_set: Vec::new(),
            max_forwards: 70,
            auto_ack: true,
            ack_sdp: None,
            auto_answer: true,
            invites: Vec::new(),
            requests: Vec::new(),
            received: Vec::new(),
            unparseable: 0,
            stray: Vec::new(),
            outbox: VecDeque::new(),
        }
    }

    /// The Request-URI of a request outside the dialog (the initial INVITE's).
    pub(crate) fn initial_uri() -> String {
        format!("sip:{DIALLED}@hotline.example")
    }

    fn reliable(&self) -> bool {
        self.config.transport == Transport::Tcp
    }

    /// A new request head (fresh branch) outside the dialog, and its branch.
    fn head_outside(&mut self, cseq: u32) -> (String, Head) {
        let branch = self.branch();
        let head = Head {
            uri: Self::initial_uri(),
            via: self.via(&branch),
            from: self.local_from(),
            to: format!("<sip:{DIALLED}@hotline.example>"),
            cseq,
            routes: Vec::new(),
        };
        (branch, head)
    }

    /// A new request head (fresh branch) in the dialog (§12.2.1.1, loose
    /// routing): Request-URI = remote target, Route = route set.
    fn head_inside(&mut self, cseq: u32) -> (String, Head) {
        let branch = self.branch();
        let to = match &self.remote_tag {
            Some(tag) => format!("<sip:{DIALLED}@hotline.example>;tag={tag}"),
            None => format!("<sip:{DIALLED}@hotline.example>"),
        };
        let head = Head {
            uri: self.remote_target.clone().unwrap_or_else(Self::initial_uri),
            via: self.via(&branch),
            from: self.local_from(),
            to,
            cseq,
            routes: self.route_set.clone(),
        };
        (branch, head)
    }

    fn branch(&mut self) -> String {
        self.next_branch += 1;
        format!("z9hG4bK74bf9-{}", self.next_branch)
    }

    fn via(&self, branch: &str) -> String {
        let rport = if self.config.rport { ";rport" } else { "" };
        format!(
            "SIP/2.0/{} {};branch={branch}{rport}",
            self.config.transport.via_token(),
            self.config.sent_by
        )
    }

    fn local_from(&self) -> String {
        format!(
            "\"Caller\" <sip:{CALLER}@trunk.example>;tag={}",
            self.from_tag
        )
    }

    /// Builds a request as text.
    fn build(
        &self,
        method: &str,
        head: &Head,
        extra: &[(&str, &str)],
        body: Option<&str>,
    ) -> Bytes {
        let Head {
            uri,
            via,
            from,
            to,
            cseq,
            routes,
        } = head;
        let mut s = format!("{method} {uri} SIP/2.0\r\nVia: {via}\r\n");
        s += &format!("Max-Forwards: {}\r\n", self.max_forwards);
        s += &format!("From: {from}\r\nTo: {to}\r\nCall-ID: {}\r\n", self.call_id);
        s += &format!("CSeq: {cseq} {method}\r\n");
        for route in routes {
            s += &format!("Route: {route}\r\n");
        }
        if method == "INVITE" {
            s += &format!("Contact: <{}>\r\n", self.config.contact);
        }
        for (name, value) in extra {
            s += &format!("{name}: {value}\r\n");
        }
        s += "User-Agent: harness-uac\r\n";
        match body {
            Some(body) => {
                s += "Content-Type: application/sdp\r\n";
                s += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
            }
            None => s += "Content-Length: 0\r\n\r\n",
        }
        Bytes::from(s)
    }

    /// Sends the initial INVITE, with `sdp` as the offer (None: offerless).
    pub(crate) fn invite(&mut self, now: Instant, sdp: Option<&str>) {
        self.invite_with(now, &[], sdp);
    }

    /// Sends the initial INVITE with extra header lines, and the configured
    /// Record-Route.
    pub(crate) fn invite_with(&mut self, now: Instant, extra: &[(&str, &str)], sdp: Option<&str>) {
        self.cseq += 1;
        let (branch, head) = self.head_outside(self.cseq);
        let record_route = self.config.record_route.clone();
        let mut extra = extra.to_vec();
        extra.extend(record_route.iter().map(|r| ("Record-Route", r.as_str())));
        self.send_invite(now, branch, head, &extra, sdp);
    }

    /// Sends a re-INVITE in the dialog, with `sdp` as the offer (None: offerless).
    pub(crate) fn reinvite(&mut self, now: Instant, sdp: Option<&str>) {
        self.cseq += 1;
        let (branch, head) = self.head_inside(self.cseq);
        self.send_invite(now, branch, head, &[], sdp);
    }

    fn send_invite(
        &mut self,
        now: Instant,
        branch: String,
        head: Head,
        extra: &[(&str, &str)],
        sdp: Option<&str>,
    ) {
        let request = self.build("INVITE", &head, extra, sdp);
        let client = InviteClient::new(now, &timers(), self.reliable(), request);
        self.invites.push(InviteTx {
            branch,
            head,
            client,
            ack: None,
            codes: Vec::new(),
            timed_out: false,
        });
        self.pump();
    }

    /// CANCELs the last INVITE (§9.1: the INVITE's Request-URI, Call-ID,
    /// From, To, CSeq number and top Via).
    pub(crate) fn cancel(&mut self, now: Instant) {
        let inv = self.invites.last().expect("an INVITE to cancel");
        let request = self.build("CANCEL", &inv.head, &[], None);
        let branch = inv.branch.clone();
        self.start_request(now, "CANCEL", branch, request);
    }

    /// Sends BYE in the dialog (which may still be early).
    pub(crate) fn bye(&mut self, now: Instant) {
        self.in_dialog(now, "BYE", &[], None);
    }

    /// Sends `method` in the dialog.
    pub(crate) fn in_dialog(
        &mut self,
        now: Instant,
        method: &str,
        extra: &[(&str, &str)],
        body: Option<&str>,
    ) {
        self.cseq += 1;
        let (branch, head) = self.head_inside(self.cseq);
        let request = self.build(method, &head, extra, body);
        self.start_request(now, method, branch, request);
    }

    /// Sends `method` outside any dialog, to the hotline's number.
    pub(crate) fn out_of_dialog(&mut self, now: Instant, method: &str, extra: &[(&str, &str)]) {
        self.cseq += 1;
        let (branch, head) = self.head_outside(self.cseq);
        let request = self.build(method, &head, extra, None);
        self.start_request(now, method, branch, request);
    }

    /// Sends bytes outside any transaction (no retransmission).
    pub(crate) fn send_raw(&mut self, bytes: impl Into<Bytes>) {
        self.outbox.push_back(bytes.into());
    }

    /// Sends the ACK for the 2xx of the last INVITE now (after `auto_ack` was off).
    pub(crate) fn ack_now(&mut self) {
        let inv = self.invites.last().expect("an INVITE");
        let ack = inv.ack.clone().expect("a 2xx arrived");
        self.outbox.push_back(ack);
    }

    fn start_request(&mut self, now: Instant, method: &str, branch: String, request: Bytes) {
        let client = NonInviteClient::new(now, &timers(), self.reliable(), request);
        self.requests.push(RequestTx {
            method: method.to_owned(),
            branch,
            client,
            codes: Vec::new(),
            timed_out: false,
        });
        self.pump();
    }

    /// The last request we sent with this method.
    pub(crate) fn request(&self, method: &str) -> &RequestTx {
        self.requests
            .iter()
            .rev()
            .find(|r| r.method == method)
            .unwrap_or_else(|| panic!("no {method} sent"))
    }

    /// The first (initial) INVITE.
    pub(crate) fn invite_tx(&self) -> &InviteTx {
        self.invites.first().expect("an INVITE was sent")
    }

    /// Every response that reached us with this status and CSeq method,
    /// retransmissions included.
    pub(crate) fn responses(&self, code: u16, method: &str) -> Vec<&Message> {
        self.received
            .iter()
            .map(|(_, m)| m)
            .filter(|m| {
                m.status() == Some(code) && m.cseq().is_ok_and(|c| c.method.to_string() == method)
            })
            .collect()
    }

    /// Every request from the endpoint with this method, retransmissions included.
    pub(crate) fn requests_received(&self, method: &str) -> Vec<&Message> {
        self.received
            .iter()
            .map(|(_, m)| m)
            .filter(|m| m.method().is_some_and(|x| x.to_string() == method))
            .collect()
    }

    /// The statuses of the responses to CSeq method `method`, in arrival order.
    pub(crate) fn statuses(&self, method: &str) -> Vec<u16> {
        self.received
            .iter()
            .filter(|(_, m)| m.cseq().is_ok_and(|c| c.method.to_string() == method))
            .filter_map(|(_, m)| m.status())
            .collect()
    }

    /// A datagram arrived from the endpoint.
    pub(crate) fn receive(&mut self, now: Instant, bytes: Bytes) {
        let Ok(msg) = Message::parse_datagram(bytes) else {
            self.unparseable += 1;
            return;
        };
        self.received.push((now, msg.clone()));
        if msg.is_request() {
            self.on_request(&msg);
        } else {
            self.on_response(now, &msg);
        }
        self.pump();
    }

    fn on_request(&mut self, msg: &Message) {
        let is_ack = msg.method().is_some_and(|m| m.as_bytes() == b"ACK");
        if self.auto_answer && !is_ack {
            self.outbox
                .push_back(response(msg, 200).to_tag(&self.from_tag).build());
        }
    }

    fn on_response(&mut self, now: Instant, msg: &Message) {
        let Some(code) = msg.status() else { return };
        let branch = msg
            .top_via()
            .ok()
            .and_then(|v| v.branch())
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let is_invite = msg.cseq().is_ok_and(|c| c.method.as_bytes() == b"INVITE");
        if is_invite {
            if let Some(i) = self.invites.iter().position(|t| t.branch == branch) {
                return self.on_invite_response(now, i, code, msg);
            }
        } else if let Some(r) = self.requests.iter_mut().find(|t| t.branch == branch) {
            if r.client.handle_response(now, code) {
                r.codes.push(code);
            }
            return;
        }
        self.stray.push(msg.clone());
    }

    fn on_invite_response(&mut self, now: Instant, i: usize, code: u16, msg: &Message) {
        let to = msg.to_header().ok();
        let to_raw = to.map(|t| String::from_utf8_lossy(t.raw).into_owned());
        let tag = to
            .and_then(|t| t.tag())
            .map(|t| String::from_utf8_lossy(t).into_owned());
        // §17.1.1.3: the ACK for a 300-699 response, built by the transaction's
        // owner: the INVITE's head with the response's To.
        let ack = (code >= 300).then(|| {
            let mut head = self.invites[i].head.clone();
            if let Some(to) = to_raw {
                head.to = to;
            }
            self.build("ACK", &head, &[], None)
        });
        if !self.invites[i].client.handle_response(now, code, ack) {
            return;
        }
        self.invites[i].codes.push(code);
        if self.remote_tag.is_none() && (101..300).contains(&code) {
            self.remote_tag = tag;
        }
        if !(200..300).contains(&code) {
            return;
        }
        if self.invites[i].ack.is_none() {
            // §12.1.2: the 2xx sets the remote target and the route set.
            if let Some(contact) = msg.contacts().next().and_then(Result::ok) {
                self.remote_target = Some(String::from_utf8_lossy(contact.uri.raw).into_owned());
            }
            if i == 0 {
                let mut routes: Vec<String> = msg
                    .values(HeaderName::RecordRoute)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .collect();
                routes.reverse();
                self.route_set = routes;
            }
            // §13.2.2.4: the ACK for a 2xx is a transaction of its own, with
            // the INVITE's CSeq number.
            let (_, head) = self.head_inside(self.invites[i].head.cseq);
            let ack = self.build("ACK", &head, &[], self.ack_sdp.as_deref());
            self.invites[i].ack = Some(ack);
        }
        if self.auto_ack {
            // Every 2xx, retransmissions included, is ACKed again.
            let ack = self.invites[i].ack.clone().expect("built above");
            self.outbox.push_back(ack);
        }
    }

    /// Moves what the transactions want to send to the outbox, in order.
    fn pump(&mut self) {
        for inv in &mut self.invites {
            while let Some(bytes) = inv.client.poll_transmit() {
                self.outbox.push_back(bytes);
            }
            while let Some(e) = inv.client.poll_event() {
                inv.timed_out |= e == invite_client::Event::Timeout;
            }
        }
        for req in &mut self.requests {
            while let Some(bytes) = req.client.poll_transmit() {
                self.outbox.push_back(bytes);
            }
            while let Some(e) = req.client.poll_event() {
                req.timed_out |= e == non_invite_client::Event::Timeout;
            }
        }
    }

    /// The next datagram to send.
    pub(crate) fn poll_transmit(&mut self) -> Option<Bytes> {
        self.outbox.pop_front()
    }

    /// The earliest deadline of our transactions.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let invites = self.invites.iter().filter_map(|t| t.client.poll_timeout());
        let requests = self.requests.iter().filter_map(|t| t.client.poll_timeout());
        invites.chain(requests).min()
    }

    /// Fires the deadlines due at `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        for inv in &mut self.invites {
            inv.client.handle_timeout(now);
        }
        for req in &mut self.requests {
            req.client.handle_timeout(now);
        }
        self.pump();
    }
}
