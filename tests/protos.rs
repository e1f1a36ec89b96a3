//! The PROTOS c07-sip suite (University of Oulu): 4,527 INVITEs, case 0 valid and every
//! other one mutating a single element (method, Request-URI, version, each header, the SDP
//! fields) with overflows, format strings and bad characters, each followed by its teardown
//! (CANCEL).
//!
//! One `hotline serve` runs with `answer_delay_ms = 0` and `max_duration_secs = 1`; one UDP
//! socket plays the PROTOS client. For every case the test fills the template placeholders,
//! sends the INVITE, then a valid OPTIONS, and requires the OPTIONS to be answered 200 within
//! 2 s (liveness) and the process to be still running. Then it sends the teardown. On the way
//! it behaves as a UAC should, so that calls end and retransmissions stop: it ACKs final
//! responses, sends BYE after a 2xx, and answers the server's own BYEs.
//!
//! The verdict asserted is liveness (every case, and the process never exits). The outcome of
//! each case (400, another error status, processed, or no answer) is counted per test group
//! (the element the case mutates) and printed as the table in `docs/sip-conformance.md`; the
//! table is also written to `$CARGO_TARGET_TMPDIR/protos-table.md`.
//!
//! The messages over 65,507 bytes cannot be sent as a UDP datagram; they go over TCP instead
//! (they are also over the server's `max_message_bytes`, so it closes the connection).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use hotline_sip::message::{HeaderName, Message, Method};

/// The cases, beside the workspace.
const CASES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/sip-corpus/protos-c07-sip/cases"
);
/// How many cases the suite has.
const CASE_COUNT: usize = 4527;
/// The largest UDP payload over IPv4.
const MAX_DATAGRAM: usize = 65_507;
/// Liveness: the OPTIONS after a case must be answered within this.
const LIVENESS: Duration = Duration::from_secs(2);
/// After a provisional response, how long to wait for the INVITE's final response before the
/// teardown (the call task answers at once with `answer_delay_ms = 0`).
const FINAL_WAIT: Duration = Duration::from_secs(1);
/// How long `hotline serve` may take to print its listener lines.
const STARTUP: Duration = Duration::from_secs(30);
/// Stop early after this many liveness failures (the report lists them).
const MAX_FAILURES: usize = 20;

/// The PROTOS test groups, by the element mutated, as case-number ranges (derived by diffing
/// every case against case 0; integer groups have 46 cases, string groups 193).
const GROUPS: &[(usize, usize, &str)] = &[
    (0, 0, "valid (case 0)"),
    (1, 193, "Request-Method"),
    (194, 254, "Request-URI"),
    (255, 329, "SIP-Version"),
    (330, 435, "Via-Host"),
    (436, 451, "Via-Hostcolon"),
    (452, 497, "Via-Hostport"),
    (498, 572, "Via-Version"),
    (573, 629, "Via-Tag (branch)"),
    (630, 822, "From-Displayname"),
    (823, 879, "From-Tag"),
    (880, 895, "From-Colon"),
    (896, 956, "From-URI"),
    (957, 1149, "Contact-Displayname"),
    (1150, 1210, "Contact-URI"),
    (1211, 1226, "Contact-Left-Angle"),
    (1227, 1242, "Contact-Right-Angle"),
    (1243, 1435, "To (header name)"),
    (1436, 1451, "To-Left-Angle"),
    (1452, 1467, "To-Right-Angle"),
    (1468, 1660, "Call-ID-Value"),
    (1661, 1676, "Call-ID-At"),
    (1677, 1782, "Call-ID-Host"),
    (1783, 1828, "Expires"),
    (1829, 1874, "Max-Forwards"),
    (1875, 1920, "CSeq-Integer"),
    (1921, 2113, "CSeq-Method"),
    (2114, 2360, "Content-Type"),
    (2361, 2406, "Content-Length"),
    (2407, 2416, "Request-Line-CRLF"),
    (2417, 2426, "Header-End-CRLF"),
    (2427, 2436, "Body-End-CRLF"),
    (2437, 2629, "SDP-v-Identifier"),
    (2630, 2645, "SDP-v-Equal"),
    (2646, 2691, "SDP-v-Integer"),
    (2692, 2884, "SDP-o-Username"),
    (2885, 2930, "SDP-o-Sessionid"),
    (2931, 3123, "SDP-o-Networktype"),
    (3124, 3229, "SDP-o-Address"),
    (3230, 3422, "SDP-s-Session"),
    (3423, 3610, "SDP-c-Networktype"),
    (3611, 3716, "SDP-c-Address"),
    (3717, 3763, "SDP-t-Time"),
    (3764, 3956, "SDP-m-Media"),
    (3957, 4002, "SDP-m-Port"),
    (4003, 4120, "SDP-m-Transport"),
    (4121, 4166, "SDP-m-Type"),
    (4167, 4284, "SDP-a-Attribute"),
    (4285, 4300, "SDP-a-Colon"),
    (4301, 4346, "SDP-a-Payload"),
    (4347, 4464, "SDP-a-Encoding"),
    (4465, 4480, "SDP-a-Slash"),
    (4481, 4526, "SDP-a-Clockrate"),
];

fn group_of(case: usize) -> usize {
    GROUPS
        .iter()
        .position(|&(lo, hi, _)| (lo..=hi).contains(&case))
        .expect("every case is in a group")
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/// The last lines of the server's output, for failure messages.
#[derive(Clone, Default)]
struct Tail(Arc<Mutex<Vec<String>>>);

impl Tail {
    fn push(&self, line: String) {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        v.push(line);
        if v.len() > 400 {
            v.drain(..200);
        }
    }
    fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
    }
}

struct Server {
    child: Child,
    udp: SocketAddr,
    tcp: SocketAddr,
    output: Tail,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::Builder::new()
            .prefix("hotline-protos-")
            .tempdir()
            .expect("a temp dir");
        let config = dir.path().join("hotline.toml");
        std::fs::write(
            &config,
            "[sip]\nanswer_delay_ms = 0\n\n[calls]\nmax_duration_secs = 1\n\n[log]\nfilter = \"warn\"\n",
        )
        .expect("write the config");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("create the data dir");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut child = Command::new(env!("CARGO_BIN_EXE_hotline"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .args(["--sip", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&data)
            .current_dir(root)
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1")
            .env_remove("RUST_LOG")
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hotline serve");
        let output = Tail::default();
        let (tx, rx) = mpsc::channel::<String>();
        drain(
            child.stdout.take().expect("stdout"),
            output.clone(),
            Some(tx),
        );
        drain(child.stderr.take().expect("stderr"), output.clone(), None);
        let (mut udp, mut tcp) = (None, None);
        let deadline = Instant::now() + STARTUP;
        while udp.is_none() || tcp.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "hotline serve did not print its listeners:\n{}",
                    output.text()
                );
            };
            if let Some(a) = line.strip_prefix("sip udp ") {
                udp = a.trim().parse().ok();
            } else if let Some(a) = line.strip_prefix("sip tcp ") {
                tcp = a.trim().parse().ok();
            }
        }
        Server {
            child,
            udp: udp.expect("checked"),
            tcp: tcp.expect("checked"),
            output,
            _dir: dir,
        }
    }

    /// `Some(status)` once the process has exited.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a child's output line by line (lossy), keeping a tail; stdout lines also go to `tx`.
fn drain(out: impl Read + Send + 'static, tail: Tail, tx: Option<mpsc::Sender<String>>) {
    thread::spawn(move || {
        let mut r = BufReader::new(out);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                    if let Some(tx) = &tx {
                        let _ = tx.send(line.clone());
                    }
                    tail.push(line);
                }
            }
        }
    });
}

// ---------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------

fn cases_dir() -> PathBuf {
    let dir = PathBuf::from(CASES);
    assert!(
        dir.is_dir(),
        "the PROTOS c07-sip corpus is missing: {} is not a directory (expected \
         <workspace>/../shared/sip-corpus/protos-c07-sip/cases, see shared/sip-corpus/README.md)",
        dir.display()
    );
    dir
}

/// A case file: `<length> SP <INVITE template>` then `<length> SP <teardown template>`.
fn read_case(dir: &Path, case: usize) -> (Vec<u8>, Vec<u8>) {
    let path = dir.join(format!("{case:07}"));
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut msgs = Vec::new();
    let mut p = 0;
    while p < raw.len() {
        let sp = raw[p..]
            .iter()
            .position(|&b| b == b' ')
            .expect("a length prefix")
            + p;
        let n: usize = std::str::from_utf8(&raw[p..sp])
            .unwrap()
            .parse()
            .expect("a length");
        msgs.push(raw[sp + 1..sp + 1 + n].to_vec());
        p = sp + 1 + n;
    }
    assert_eq!(msgs.len(), 2, "case {case}: an INVITE and a teardown");
    let teardown = msgs.pop().expect("two");
    (msgs.pop().expect("two"), teardown)
}

fn replace_all(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len() + 64);
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// The identifiers of one case in this run.
struct Ids {
    call_id: String,
    branch_id: String,
}

fn ids(case: usize, run: &str) -> Ids {
    Ids {
        call_id: format!("protos-{case}-{run}"),
        branch_id: format!("-{case}-{run}"),
    }
}

/// Fills the placeholders; `<Content-Length>` last, as the length of what follows the empty
/// line (0 when a mutation removed it).
fn fill(t: &[u8], case: usize, run: &str, local: SocketAddr, server: SocketAddr) -> Vec<u8> {
    let ids = ids(case, run);
    let mut m = t.to_vec();
    for (k, v) in [
        ("<To>", format!("protos@{server}")),
        ("<From>", format!("protos@{local}")),
        ("<From-Address>", local.ip().to_string()),
        ("<From-IP>", local.ip().to_string()),
        ("<Local-Port>", local.port().to_string()),
        ("<Branch-ID>", ids.branch_id),
        ("<Call-ID>", ids.call_id),
        ("<CSeq>", "1".to_owned()),
        ("<Teardown-Method>", "CANCEL".to_owned()),
    ] {
        m = replace_all(&m, k.as_bytes(), v.as_bytes());
    }
    let body = m
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |i| m.len() - (i + 4));
    replace_all(&m, b"<Content-Length>", body.to_string().as_bytes())
}

// ---------------------------------------------------------------------------
// Outcomes
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    /// The endpoint refused it at once with this status (400, 415, 416, 483, 505, ...).
    Refused(u16),
    /// 100 Trying, then the application's 2xx (or no final response before the teardown).
    Answered,
    /// 100 Trying, then the application refused the call with this status (400 or 488 for an
    /// unusable SDP offer).
    AppRefused(u16),
    /// Nothing came back to us.
    NoAnswer,
}

#[derive(Default)]
struct CaseState {
    /// Statuses of responses to the INVITE received before the teardown was sent.
    before_teardown: Vec<u16>,
    teardown_sent: bool,
    /// We sent BYE for its 2xx.
    bye_sent: bool,
    /// Sent over TCP (too big for a datagram); what the connection did.
    tcp: Option<&'static str>,
    /// Raw Via lines of the INVITE as sent, for the ACK of a non-2xx response.
    invite_vias: Vec<Vec<u8>>,
    cseq: u32,
}

impl CaseState {
    fn final_status(&self) -> Option<u16> {
        self.before_teardown.iter().copied().find(|&s| s >= 200)
    }

    fn class(&self) -> Class {
        let provisional = self.before_teardown.iter().any(|&s| s < 200);
        match self.final_status() {
            Some(s) if s >= 300 && provisional => Class::AppRefused(s),
            Some(s) if s >= 300 => Class::Refused(s),
            Some(_) => Class::Answered,
            None if provisional => Class::Answered,
            None => Class::NoAnswer,
        }
    }
}

/// The client side.
struct Client {
    sock: UdpSocket,
    local: SocketAddr,
    server: SocketAddr,
    run: String,
    cases: Vec<CaseState>,
    by_call_id: HashMap<Vec<u8>, usize>,
    by_branch: HashMap<Vec<u8>, usize>,
    /// The probe we wait for (its Call-ID) and whether its 200 came.
    probe: Option<(Vec<u8>, bool)>,
    /// Requests the server sent us (BYE after max_duration_secs, ...), answered 200.
    server_requests: usize,
    /// Datagrams that did not parse as SIP.
    garbage: usize,
    buf: Vec<u8>,
}

impl Client {
    fn send(&self, bytes: &[u8]) {
        if let Err(e) = self.sock.send_to(bytes, self.server) {
            panic!("send {} bytes to {}: {e}", bytes.len(), self.server);
        }
    }

    /// Receives and handles datagrams until `done` holds or `deadline` passes; returns `done`.
    fn pump(&mut self, current: usize, deadline: Instant, done: impl Fn(&Client) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("set_read_timeout");
            match self.sock.recv_from(&mut self.buf) {
                Ok((n, from)) => {
                    let d = Bytes::copy_from_slice(&self.buf[..n]);
                    self.handle(current, d, from);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                // ICMP port unreachable from an earlier send, and the like.
                Err(_) => {}
            }
        }
    }

    fn handle(&mut self, current: usize, d: Bytes, from: SocketAddr) {
        let Ok(msg) = Message::parse_datagram(d) else {
            self.garbage += 1;
            return;
        };
        if msg.is_request() {
            if msg.method() != Some(&Method::Ack) {
                self.server_requests += 1;
                let ok = mirror_response(&msg, "200 OK");
                let _ = self.sock.send_to(&ok, from);
            }
            return;
        }
        let Some(status) = msg.status() else { return };
        let call_id = msg
            .header(HeaderName::CallId)
            .unwrap_or_default()
            .trim_ascii()
            .to_vec();
        if let Some((probe, got)) = &mut self.probe
            && *probe == call_id
        {
            *got |= status == 200;
            return;
        }
        let branch = msg
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(<[u8]>::to_vec));
        let case = self
            .by_call_id
            .get(&call_id)
            .or_else(|| branch.as_ref().and_then(|b| self.by_branch.get(b)))
            .copied()
            .unwrap_or(current);
        let method = msg.cseq().ok().map(|c| c.method);
        if matches!(
            method,
            Some(Method::Cancel | Method::Bye | Method::Ack | Method::Options)
        ) {
            return;
        }
        let state = &mut self.cases[case];
        if !state.teardown_sent {
            state.before_teardown.push(status);
        }
        if (200..300).contains(&status) {
            // ACK the 2xx end to end, then hang up.
            let seq = msg.cseq().map(|c| c.seq).unwrap_or(state.cseq);
            let target = msg
                .contacts()
                .next()
                .and_then(|c| c.ok())
                .map(|c| String::from_utf8_lossy(c.uri.raw).into_owned())
                .unwrap_or_else(|| format!("sip:{}", self.server));
            let ack = in_dialog(
                &msg,
                "ACK",
                &target,
                seq,
                self.local,
                &format!("ack{case}{}", self.run),
            );
            self.send(&ack);
            if !self.cases[case].bye_sent {
                self.cases[case].bye_sent = true;
                let bye = in_dialog(
                    &msg,
                    "BYE",
                    &target,
                    seq + 1,
                    self.local,
                    &format!("bye{case}{}", self.run),
                );
                self.send(&bye);
            }
        } else if status >= 300 {
            // ACK a final error with the INVITE's own Via (RFC 3261 §17.1.1.3).
            let vias = if state.invite_vias.is_empty() {
                msg.raw_lines(HeaderName::Via).map(<[u8]>::to_vec).collect()
            } else {
                state.invite_vias.clone()
            };
            let seq = msg.cseq().map(|c| c.seq).unwrap_or(state.cseq);
            let mut ack = format!("ACK sip:protos@{} SIP/2.0\r\n", self.server).into_bytes();
            for v in vias {
                ack.extend_from_slice(&v);
                ack.extend_from_slice(b"\r\n");
            }
            for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
                for l in msg.raw_lines(name) {
                    ack.extend_from_slice(l);
                    ack.extend_from_slice(b"\r\n");
                }
            }
            ack.extend_from_slice(
                format!("CSeq: {seq} ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
                    .as_bytes(),
            );
            self.send(&ack);
        }
    }

    fn probe(&mut self, case: usize) -> bool {
        let call_id = format!("probe-{case}-{}", self.run);
        let options = format!(
            "OPTIONS sip:probe@{server} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK-probe-{case}-{run}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:protos@{local}>;tag=probe{case}\r\n\
             To: <sip:probe@{server}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 OPTIONS\r\n\
             Content-Length: 0\r\n\r\n",
            server = self.server,
            local = self.local,
            run = self.run,
        );
        self.probe = Some((call_id.into_bytes(), false));
        self.send(options.as_bytes());
        let ok = self.pump(case, Instant::now() + LIVENESS, |c| {
            c.probe.as_ref().is_some_and(|p| p.1)
        });
        self.probe = None;
        ok
    }
}

/// A 200 to a request from the server: its Via, From, To, Call-ID and CSeq, byte for byte.
fn mirror_response(req: &Message, status: &str) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {status}\r\n").into_bytes();
    for name in [
        HeaderName::Via,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
    ] {
        for l in req.raw_lines(name) {
            out.extend_from_slice(l);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    out
}

/// ACK for a 2xx or BYE, in the dialog the 2xx set up.
fn in_dialog(
    resp: &Message,
    method: &str,
    target: &str,
    seq: u32,
    local: SocketAddr,
    branch: &str,
) -> Vec<u8> {
    let mut out = format!(
        "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n"
    )
    .into_bytes();
    for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
        for l in resp.raw_lines(name) {
            out.extend_from_slice(l);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(format!("CSeq: {seq} {method}\r\nContent-Length: 0\r\n\r\n").as_bytes());
    out
}

/// Sends an INVITE too big for a datagram over TCP and reports what the connection did.
fn over_tcp(server: SocketAddr, invite: &[u8]) -> (&'static str, Vec<u16>) {
    let Ok(mut s) = TcpStream::connect_timeout(&server, Duration::from_secs(2)) else {
        return ("connect failed", Vec::new());
    };
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let wrote = s.write_all(invite).is_ok();
    let _ = s.shutdown(Shutdown::Write);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(2);
    let how = loop {
        if Instant::now() >= deadline {
            break "left open";
        }
        match s.read(&mut buf) {
            Ok(0) => break "closed by the server",
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                break "reset by the server";
            }
            Err(_) => break "left open",
        }
    };
    let mut framer = hotline_sip::message::StreamFramer::new(1 << 20);
    framer.extend(&got);
    let mut statuses = Vec::new();
    while let Ok(Some(hotline_sip::message::Framed::Message(m))) = framer.next() {
        statuses.extend(m.status());
    }
    (if wrote { how } else { "reset while writing" }, statuses)
}

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------

#[test]
fn protos_c07_sip_liveness() {
    let dir = cases_dir();
    let started = Instant::now();
    let mut server = Server::start();
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
    let local = sock.local_addr().expect("local_addr");
    let run = format!(
        "{:x}",
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            & 0xff_ffff
    );
    let mut client = Client {
        sock,
        local,
        server: server.udp,
        run: run.clone(),
        cases: (0..CASE_COUNT).map(|_| CaseState::default()).collect(),
        by_call_id: HashMap::new(),
        by_branch: HashMap::new(),
        probe: None,
        server_requests: 0,
        garbage: 0,
        buf: vec![0u8; 65_536],
    };
    let mut failures: Vec<String> = Vec::new();

    for case in 0..CASE_COUNT {
        let (invite_t, teardown_t) = read_case(&dir, case);
        let invite = fill(&invite_t, case, &run, local, server.udp);
        let teardown = fill(&teardown_t, case, &run, local, server.udp);
        let ids = ids(case, &run);
        client
            .by_call_id
            .insert(format!("{}@{}", ids.call_id, local.ip()).into_bytes(), case);
        client.by_branch.insert(
            format!("z9hG4bK0000{case}{}", ids.branch_id).into_bytes(),
            case,
        );
        if let Ok(m) = Message::parse_head_lenient(Bytes::from(invite.clone())) {
            client.cases[case].invite_vias =
                m.raw_lines(HeaderName::Via).map(<[u8]>::to_vec).collect();
            client.cases[case].cseq = m.cseq().map(|c| c.seq).unwrap_or(1);
        }

        if invite.len() > MAX_DATAGRAM {
            let (how, statuses) = over_tcp(server.tcp, &invite);
            client.cases[case].tcp = Some(how);
            client.cases[case].before_teardown.extend(statuses);
        } else {
            client.send(&invite);
        }

        if !client.probe(case) {
            let exited = server.exited();
            failures.push(format!(
                "case {case} ({}): no 200 to OPTIONS within {LIVENESS:?}; process exited: {exited:?}",
                GROUPS[group_of(case)].2
            ));
            if exited.is_some() || failures.len() >= MAX_FAILURES {
                break;
            }
        }
        if let Some(status) = server.exited() {
            failures.push(format!("case {case}: hotline exited ({status})"));
            break;
        }
        // A provisional answer: wait for the final one (the call task's 200, or its 488).
        let st = &client.cases[case];
        if st.tcp.is_none() && !st.before_teardown.is_empty() && st.final_status().is_none() {
            client.pump(case, Instant::now() + FINAL_WAIT, |c| {
                c.cases[case].final_status().is_some()
            });
        }
        client.cases[case].teardown_sent = true;
        if teardown.len() > MAX_DATAGRAM {
            over_tcp(server.tcp, &teardown);
        } else {
            client.send(&teardown);
        }
    }

    // Let the last calls end (max_duration_secs = 1), answering the server's BYEs, then a
    // last liveness check.
    let last = CASE_COUNT - 1;
    client.pump(last, Instant::now() + Duration::from_millis(2500), |_| {
        false
    });
    if failures.is_empty() && !client.probe(last) {
        failures.push("final OPTIONS not answered".to_owned());
    }
    if let Some(status) = server.exited() {
        failures.push(format!("hotline exited at the end ({status})"));
    }
    let elapsed = started.elapsed();

    let table = table(&client.cases);
    let mut report = String::new();
    let _ = writeln!(
        report,
        "PROTOS c07-sip: {CASE_COUNT} cases in {:.1} s; the server sent us {} requests (BYE), \
         {} unparseable datagrams\n\n{table}",
        elapsed.as_secs_f64(),
        client.server_requests,
        client.garbage
    );
    println!("{report}");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("protos-table.md");
    let _ = std::fs::write(&out, &report);
    println!("table written to {}", out.display());
    // Every case's outcome, one line each, for looking into a group.
    let mut per_case = String::new();
    for (i, c) in client.cases.iter().enumerate() {
        let _ = writeln!(
            per_case,
            "{i}\t{}\t{:?}\t{:?}\t{}",
            GROUPS[group_of(i)].2,
            c.class(),
            c.before_teardown,
            c.tcp.unwrap_or("udp")
        );
    }
    let _ = std::fs::write(
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("protos-cases.tsv"),
        per_case,
    );

    assert!(
        failures.is_empty(),
        "liveness failures:\n{}\n--- server output (tail):\n{}",
        failures.join("\n"),
        server.output.text()
    );
    // The harness itself works: the valid case is taken as a call.
    assert_eq!(
        client.cases[0].class(),
        Class::Answered,
        "case 0 must be answered"
    );
}

/// The per-group table (markdown).
fn table(cases: &[CaseState]) -> String {
    #[derive(Default)]
    struct Row {
        n: usize,
        bad: usize,
        other: BTreeMap<u16, usize>,
        answered: usize,
        app: BTreeMap<u16, usize>,
        none: usize,
        tcp: usize,
    }
    fn codes(m: &BTreeMap<u16, usize>) -> String {
        if m.is_empty() {
            return "0".to_owned();
        }
        m.iter()
            .map(|(code, n)| format!("{n}×{code}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
    let mut rows: Vec<Row> = GROUPS.iter().map(|_| Row::default()).collect();
    let mut total = Row::default();
    for (i, c) in cases.iter().enumerate() {
        for r in [&mut rows[group_of(i)], &mut total] {
            r.n += 1;
            r.tcp += usize::from(c.tcp.is_some());
            match c.class() {
                Class::Refused(400) => r.bad += 1,
                Class::Refused(s) => *r.other.entry(s).or_default() += 1,
                Class::Answered => r.answered += 1,
                Class::AppRefused(s) => *r.app.entry(s).or_default() += 1,
                Class::NoAnswer => r.none += 1,
            }
        }
    }
    let mut s = String::from(
        "| cases | group (element mutated) | 400 | other 4xx-6xx | processed: 100, 200 | \
         processed: 100, then refused by the application | no answer | of which over TCP |\n\
         | ---: | --- | ---: | --- | ---: | --- | ---: | ---: |\n",
    );
    for ((lo, hi, name), r) in GROUPS.iter().zip(&rows) {
        let range = if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}-{hi}")
        };
        let _ = writeln!(
            s,
            "| {range} | {name} | {} | {} | {} | {} | {} | {} |",
            r.bad,
            codes(&r.other),
            r.answered,
            codes(&r.app),
            r.none,
            r.tcp
        );
    }
    let _ = writeln!(
        s,
        "| {} | **total** | {} | {} | {} | {} | {} | {} |",
        total.n,
        total.bad,
        codes(&total.other),
        total.answered,
        codes(&total.app),
        total.none,
        total.tcp
    );
    s
}
