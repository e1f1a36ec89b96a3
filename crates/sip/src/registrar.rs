//! The registrar (RFC 3261 §10.3): bindings of contacts to addresses of
//! record, digest-authenticated REGISTER handling, a brute-force lockout and
//! keep-alives for contacts behind NAT. Sans-IO: every call takes `now`
//! (and, where a nonce or a `Date` needs it, the wall clock).
//!
//! # Layout
//! - [`Registrar`]: the bindings of each AOR (`sip:NAME@domain`), their
//!   expiry, [`Event`]s and the keep-alive schedule.
//! - [`Lockout`]: failures per source and per user in a sliding window, and
//!   [`auth_failure_line`], the log line fail2ban matches.
//! - [`RegisterHandler`]: one REGISTER in, a [`RegisterOutcome`] out (the
//!   decision and the response bytes), tying [`Authenticator`], [`Lockout`]
//!   and [`Registrar`] together. The endpoint calls it.
//!
//! # Driving it
//! ```text
//! name  = handler.account_name(&msg)            // whose HA1s to look up
//! secrets = store lookup (None when unknown)      // the shell's, async
//! out   = handler.handle(now, wall, RegisterInput { request, source, client: None, trusted_path: false, account: secrets, to_tag })
//! send out.response through the REGISTER's server transaction; log out.auth_log
//! drain handler.poll_event(), handler.poll_keepalive(now); wake at handler.poll_timeout()
//! ```
//!
//! # Decisions
//! - Operators register `sip:NAME@<domain>` (the To URI; its host must be
//!   the configured domain, else 404, §10.3 step 3) and authenticate as NAME
//!   with realm = domain; authenticated as someone else: 403 (§10.3 step 4).
//!   Which accounts may register (role `operator`, not disabled) is the
//!   shell's lookup: it passes `None` for any other name, which then looks
//!   exactly like an unknown user.
//! - No enumeration: the 401 does not depend on the user, and a known user
//!   with a wrong password and an unknown user get the same 401 after the
//!   same hash computation (see [`crate::digest`]). The lockout treats both
//!   alike. The shell's store lookup should take the same time for both
//!   (one indexed query either way).
//! - Lockout ([`Lockout`]): 5 failures in 10 minutes from one source, or for
//!   one user name, lock that source or name for 10 minutes (403, not
//!   counted further). A source is an IPv4 address or an IPv6 /64 (one
//!   customer's prefix). A success forgets the failures of that user from
//!   that source only, so a legitimate phone forgives its own typos while an
//!   attacker's failures from elsewhere still count. Per-user locking lets
//!   anyone lock an operator out for 10 minutes by guessing; fail2ban on the
//!   log line bans such sources at the firewall.
//! - The 401 offers the algorithms of `RegisterConfig::digest`
//!   ([`DigestConfig::algorithms`]): SHA-256 and MD5 by default, MD5 alone
//!   for softphones that refuse a SHA-256 challenge (baresip 1.0, sipp).
//! - Failures that count: wrong password, unknown user, replayed `nc`,
//!   credentials with an algorithm we did not offer.
//!   Not counted: a stale nonce, credentials that do not fit the request
//!   (400), a REGISTER without credentials (the normal first 401).
//! - §10.3 step 7: all contacts of a request are applied or none; a contact
//!   is matched to a binding by `+sip.instance` (and `reg-id`) when both
//!   carry one (a phone that changed address replaces its old binding),
//!   else by URI. Same Call-ID and a CSeq not higher than the binding's:
//!   500 (the RFC says the request fails, not how). Expires below
//!   [`RegistrarConfig::min_expires`]: 423 with `Min-Expires`; above
//!   [`RegistrarConfig::max_expires`]: shortened. More than
//!   [`RegistrarConfig::max_contacts`] contacts in one request: 403; an AOR
//!   over the bound otherwise loses its least recently refreshed bindings.
//! - NAT: a binding keeps the [`Peer`] its REGISTER came from (source address
//!   and port, i.e. `received`/`rport`, and the TCP connection). Requests to
//!   the operator go there, with the Contact as Request-URI; the Contact's
//!   own host is not resolved. Keep-alives hold the NAT mapping open: an
//!   OPTIONS every [`RegistrarConfig::udp_keepalive`] to UDP contacts, a
//!   CRLF CRLF every [`RegistrarConfig::tcp_keepalive`] on TCP connections
//!   (RFC 5626 §4.4.1 ping). A binding whose OPTIONS times out is dropped by
//!   the shell with [`Registrar::remove`]; a closed TCP connection drops its
//!   bindings ([`Registrar::connection_closed`]).
//! - Not implemented: SIP outbound flows (RFC 5626: `Path`, `Supported:
//!   outbound`, flow tokens), GRUU (RFC 5627), `Proxy-Authorization` (we
//!   are not a proxy), third-party registration.

use std::cmp::Reverse;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::digest::{
    Authenticator, Challenge, Credentials, DigestConfig, DigestError, DigestSecrets, Failure,
    Verdict, uri_equivalent,
};
use crate::endpoint::{Peer, Transport};
use crate::header::NameAddr;
use crate::message::{HeaderName, Message, Method, parse_decimal};
use crate::response::response;
use crate::uri::{Host, Scheme};

// ---------------------------------------------------------------------------
// Bindings
// ---------------------------------------------------------------------------

/// Why a binding update was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// A header needed for the update is malformed (400).
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// `Contact: *` without `Expires: 0`, or with other contacts (400, §10.3 step 6).
    #[error("Contact: * needs Expires: 0 and no other Contact")]
    Wildcard,
    /// An expiry under the minimum (423 with Min-Expires, §10.3 step 7).
    #[error("interval too brief, at least {min_expires} s")]
    IntervalTooBrief {
        /// Our minimum, in seconds.
        min_expires: u32,
    },
    /// Same Call-ID and a CSeq not higher than the binding's (500, §10.3 step 7).
    #[error("CSeq out of order for this Call-ID")]
    OutOfOrder,
    /// More contacts in one request than an AOR may have (403).
    #[error("more than {max} contacts")]
    TooManyContacts {
        /// The bound.
        max: usize,
    },
}

impl RegisterError {
    /// The status code to answer.
    pub fn status(&self) -> u16 {
        match self {
            Self::Malformed(_) | Self::Wildcard => 400,
            Self::IntervalTooBrief { .. } => 423,
            Self::OutOfOrder => 500,
            Self::TooManyContacts { .. } => 403,
        }
    }
}

/// A Contact `q` value in thousandths, 0..=1000 (RFC 3261 §20.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QValue(u16);

impl QValue {
    /// `q=1`, also what a contact without `q` counts as.
    pub const MAX: Self = Self(1000);

    /// From thousandths (at most 1000).
    pub fn from_thousandths(n: u16) -> Option<Self> {
        (n <= 1000).then_some(Self(n))
    }

    /// The value in thousandths.
    pub fn thousandths(self) -> u16 {
        self.0
    }

    /// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`.
    pub fn parse(s: &[u8]) -> Option<Self> {
        let (int, frac) = match memchr::memchr(b'.', s) {
            Some(d) => (&s[..d], &s[d + 1..]),
            None => (s, &b""[..]),
        };
        if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let f = (0..3).fold(0u16, |n, i| {
            n * 10 + frac.get(i).map_or(0, |d| u16::from(d - b'0'))
        });
        match int {
            b"0" => Some(Self(f)),
            b"1" if f == 0 => Some(Self(1000)),
            _ => None,
        }
    }
}

impl std::fmt::Display for QValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            1000 => f.write_str("1"),
            0 => f.write_str("0"),
            n => {
                let s = format!("{n:03}");
                write!(f, "0.{}", s.trim_end_matches('0'))
            }
        }
    }
}

/// One Contact of a REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactBinding {
    /// The contact URI, as written.
    pub uri: String,
    /// The `expires` parameter, seconds.
    pub expires: Option<u32>,
    /// The `q` parameter.
    pub q: Option<QValue>,
    /// `+sip.instance` (RFC 5626 §4.1), without its quotes.
    pub instance: Option<String>,
    /// `reg-id` (RFC 5626 §4.2).
    pub reg_id: Option<u32>,
}

impl ContactBinding {
    /// A contact with no parameters.
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            expires: None,
            q: None,
            instance: None,
            reg_id: None,
        }
    }

    /// Parses one Contact value (not `*`). The URI must be sip or sips.
    pub fn parse(value: &[u8]) -> Result<Self, RegisterError> {
        let err = RegisterError::Malformed("Contact");
        let n = NameAddr::parse(value, "Contact").map_err(|_| err.clone())?;
        if !matches!(n.uri.scheme, Scheme::Sip | Scheme::Sips) {
            return Err(err);
        }
        let uri = String::from_utf8(n.uri.raw.to_vec()).map_err(|_| err.clone())?;
        let number = |name: &str| -> Result<Option<u32>, RegisterError> {
            match n.params.get(name) {
                None => Ok(None),
                Some(v) => v
                    .and_then(parse_decimal)
                    .map(|x| Some(x.min(u32::MAX as usize) as u32))
                    .ok_or(err.clone()),
            }
        };
        let expires = number("expires")?;
        let reg_id = number("reg-id")?;
        let q = match n.params.get("q") {
            None => None,
            Some(v) => Some(v.and_then(QValue::parse).ok_or(err.clone())?),
        };
        let instance = match n.params.get("+sip.instance") {
            None => None,
            Some(v) => {
                let v = v.ok_or(err.clone())?;
                let inner = v
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .ok_or(err.clone())?;
                if inner.iter().any(|&b| b < b' ' || b == b'"' || b == b'\\') {
                    return Err(err);
                }
                Some(String::from_utf8(inner.to_vec()).map_err(|_| err.clone())?)
            }
        };
        Ok(Self {
            uri,
            expires,
            q,
            instance,
            reg_id,
        })
    }
}

/// The Contact header field of a REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    /// `Contact: *`: remove every binding (§10.3 step 6).
    Wildcard,
    /// The contacts to add, refresh or remove; none is a query.
    List(Vec<ContactBinding>),
}

/// A binding update: what §10.3 needs from a REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The address of record, `sip:NAME@domain`.
    pub aor: String,
    /// The contacts.
    pub contacts: Contacts,
    /// The Expires header, seconds.
    pub expires: Option<u32>,
    /// The Call-ID.
    pub call_id: String,
    /// The CSeq number.
    pub cseq: u32,
    /// Where the REGISTER came from.
    pub source: Peer,
    /// The REGISTER's Path URIs (RFC 3327), first hop first, `<>` kept: the route set of
    /// requests to its contacts (a proxy in front, e.g. Kamailio, reaches NATed phones on
    /// the flow they registered on).
    pub path: Vec<String>,
}

impl Registration {
    /// Reads Contact, Expires, Call-ID and CSeq from a REGISTER.
    pub fn from_message(
        request: &Message,
        aor: String,
        source: Peer,
    ) -> Result<Self, RegisterError> {
        let call_id = request
            .call_id()
            .ok()
            .and_then(|c| std::str::from_utf8(c).ok())
            .ok_or(RegisterError::Malformed("Call-ID"))?
            .to_owned();
        let cseq = request
            .cseq()
            .map_err(|_| RegisterError::Malformed("CSeq"))?
            .seq;
        let expires = request
            .expires()
            .map_err(|_| RegisterError::Malformed("Expires"))?;
        let values: Vec<&[u8]> = request.values(HeaderName::Contact).collect();
        let contacts = if values.contains(&&b"*"[..]) {
            if values.len() != 1 || expires != Some(0) {
                return Err(RegisterError::Wildcard);
            }
            Contacts::Wildcard
        } else {
            Contacts::List(
                values
                    .into_iter()
                    .map(ContactBinding::parse)
                    .collect::<Result<_, _>>()?,
            )
        };
        let path = request
            .values(HeaderName::Path)
            .map(|v| String::from_utf8_lossy(v).trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect();
        Ok(Self {
            aor,
            contacts,
            expires,
            call_id,
            cseq,
            source,
            path,
        })
    }
}

/// Identifies a binding for [`Registrar::remove`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BindingId(pub u64);

/// A contact bound to an AOR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Its id.
    pub id: BindingId,
    /// The contact URI (the Request-URI of requests to it).
    pub contact: String,
    /// Where its REGISTER came from: requests go there (NAT).
    pub source: Peer,
    /// When it expires.
    pub expires_at: Instant,
    /// `q`, if given.
    pub q: Option<QValue>,
    /// The Call-ID of the REGISTER that last set it.
    pub call_id: String,
    /// The CSeq of the REGISTER that last set it.
    pub cseq: u32,
    /// `+sip.instance`, if given.
    pub instance: Option<String>,
    /// `reg-id`, if given.
    pub reg_id: Option<u32>,
    /// When it was last added or refreshed.
    pub updated_at: Instant,
    /// The Path of the REGISTER that last set it (RFC 3327), first hop first: requests to
    /// the contact go to the first hop with these as Route. Empty: straight to `source`.
    pub path: Vec<String>,
}

impl Binding {
    /// Seconds left, rounded up (0 once expired).
    pub fn expires_in(&self, now: Instant) -> u32 {
        let left = self.expires_at.saturating_duration_since(now);
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        secs.min(u64::from(u32::MAX)) as u32
    }

    /// The Contact value of a 200 to REGISTER: `<uri>;expires=N` and the
    /// `q`, `+sip.instance` and `reg-id` it was registered with.
    pub fn contact_value(&self, now: Instant) -> String {
        let mut v = format!("<{}>;expires={}", self.contact, self.expires_in(now));
        if let Some(q) = self.q {
            v.push_str(&format!(";q={q}"));
        }
        if let Some(i) = &self.instance {
            v.push_str(&format!(";+sip.instance=\"{i}\""));
        }
        if let Some(r) = self.reg_id {
            v.push_str(&format!(";reg-id={r}"));
        }
        v
    }

    fn matches(&self, c: &ContactBinding) -> bool {
        match (&self.instance, &c.instance) {
            (Some(a), Some(b)) => a == b && self.reg_id == c.reg_id,
            _ => uri_equivalent(self.contact.as_bytes(), c.uri.as_bytes()),
        }
    }

    fn order_key(&self) -> (Reverse<QValue>, Reverse<Instant>, Reverse<BindingId>) {
        (
            Reverse(self.q.unwrap_or(QValue::MAX)),
            Reverse(self.updated_at),
            Reverse(self.id),
        )
    }
}

/// What the registrar reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The AOR went from no binding to at least one.
    Registered {
        /// The AOR.
        aor: String,
    },
    /// The AOR's last binding is gone (removed, expired, or unreachable).
    Unregistered {
        /// The AOR.
        aor: String,
    },
}

/// How to keep a binding's NAT mapping open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAliveKind {
    /// Send OPTIONS to the contact at its source (UDP); a timeout means
    /// [`Registrar::remove`], any response means alive.
    Options,
    /// Write CRLF CRLF on its TCP connection (RFC 5626 §4.4.1).
    Crlf,
}

/// A keep-alive due now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepAlive {
    /// The AOR.
    pub aor: String,
    /// The binding to ping (its `source` says where).
    pub binding: Binding,
    /// What to send.
    pub kind: KeepAliveKind,
}

/// Registrar settings.
#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    /// Shorter non-zero expiries get 423 (at most 3600, §10.3 step 7).
    pub min_expires: u32,
    /// Longer expiries are shortened to this.
    pub max_expires: u32,
    /// The expiry when neither the contact nor the request gives one.
    pub default_expires: u32,
    /// Bindings per AOR at most.
    pub max_contacts: usize,
    /// OPTIONS to UDP contacts this often (None: never).
    pub udp_keepalive: Option<Duration>,
    /// CRLF CRLF to TCP contacts this often (None: never).
    pub tcp_keepalive: Option<Duration>,
}

impl Default for RegistrarConfig {
    /// 60 s minimum, 3600 s maximum and default, 8 contacts, keep-alives
    /// every 30 s (UDP) and 90 s (TCP).
    fn default() -> Self {
        Self {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: 8,
            udp_keepalive: Some(Duration::from_secs(30)),
            tcp_keepalive: Some(Duration::from_secs(90)),
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    binding: Binding,
    keepalive_at: Option<Instant>,
}

/// The bindings of every AOR (pure: no clock, no I/O).
#[derive(Debug)]
pub struct Registrar {
    config: RegistrarConfig,
    aors: HashMap<String, Vec<Entry>>,
    next_id: u64,
    events: VecDeque<Event>,
}

impl Registrar {
    /// An empty registrar.
    pub fn new(config: RegistrarConfig) -> Self {
        Self {
            config,
            aors: HashMap::new(),
            next_id: 1,
            events: VecDeque::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    /// Applies a REGISTER's binding update (§10.3 steps 6 to 8): all of it
    /// or, on error, none. Returns the AOR's bindings afterwards.
    pub fn register(
        &mut self,
        now: Instant,
        reg: Registration,
    ) -> Result<Vec<Binding>, RegisterError> {
        self.expire_aor(now, &reg.aor);
        let mut entries = self.aors.get(&reg.aor).cloned().unwrap_or_default();
        let before = !entries.is_empty();
        match &reg.contacts {
            Contacts::Wildcard => {
                if reg.expires != Some(0) {
                    return Err(RegisterError::Wildcard);
                }
                let stale = entries
                    .iter()
                    .any(|e| e.binding.call_id == reg.call_id && reg.cseq <= e.binding.cseq);
                if stale {
                    return Err(RegisterError::OutOfOrder);
                }
                entries.clear();
            }
            Contacts::List(contacts) => self.apply(now, &reg, contacts, &mut entries)?,
        }
        let after = !entries.is_empty();
        if after {
            self.aors.insert(reg.aor.clone(), entries);
        } else {
            self.aors.remove(&reg.aor);
        }
        match (before, after) {
            (false, true) => self.events.push_back(Event::Registered {
                aor: reg.aor.clone(),
            }),
            (true, false) => self.events.push_back(Event::Unregistered {
                aor: reg.aor.clone(),
            }),
            _ => {}
        }
        Ok(self.lookup(now, &reg.aor))
    }

    /// The unexpired bindings of an AOR, highest `q` first, then the most
    /// recently refreshed.
    pub fn lookup(&self, now: Instant, aor: &str) -> Vec<Binding> {
        let mut out: Vec<Binding> = self
            .aors
            .get(aor)
            .into_iter()
            .flatten()
            .filter(|e| e.binding.expires_at > now)
            .map(|e| e.binding.clone())
            .collect();
        out.sort_by_key(|b| b.order_key());
        out
    }

    /// AORs with at least one unexpired binding, sorted.
    pub fn registered(&self, now: Instant) -> Vec<String> {
        let mut v: Vec<String> = self
            .aors
            .iter()
            .filter(|(_, es)| es.iter().any(|e| e.binding.expires_at > now))
            .map(|(a, _)| a.clone())
            .collect();
        v.sort();
        v
    }

    /// Removes one binding (its keep-alive failed, or an administrator said
    /// so). Returns whether it existed.
    pub fn remove(&mut self, id: BindingId) -> bool {
        self.remove_where(|b| b.id == id) > 0
    }

    /// Removes the bindings registered over a TCP connection that closed:
    /// behind NAT nothing can reach them until they register again.
    pub fn connection_closed(&mut self, connection: u64) -> usize {
        self.remove_where(|b| {
            b.source.transport == Transport::Tcp && b.source.connection == Some(connection)
        })
    }

    /// Drops expired bindings.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut aors: Vec<String> = self.aors.keys().cloned().collect();
        aors.sort();
        for aor in aors {
            self.expire_aor(now, &aor);
        }
    }

    /// The next expiry or keep-alive.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.aors
            .values()
            .flatten()
            .flat_map(|e| [Some(e.binding.expires_at), e.keepalive_at])
            .flatten()
            .min()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// A keep-alive due at `now`, earliest first; the binding's next one is
    /// scheduled an interval later. Call until `None`.
    pub fn poll_keepalive(&mut self, now: Instant) -> Option<KeepAlive> {
        let (_, _, aor, index) = self
            .aors
            .iter()
            .flat_map(|(aor, es)| es.iter().enumerate().map(move |(i, e)| (aor, i, e)))
            .filter(|(_, _, e)| e.binding.expires_at > now)
            .filter_map(|(aor, i, e)| {
                let at = e.keepalive_at.filter(|&at| at <= now)?;
                Some((at, e.binding.id, aor, i))
            })
            .min_by_key(|&(at, id, _, _)| (at, id))?;
        let aor = aor.clone();
        let interval = self.interval(self.aors[&aor][index].binding.source.transport);
        let entry = self.aors.get_mut(&aor).and_then(|es| es.get_mut(index))?;
        entry.keepalive_at = interval.map(|d| now + d);
        let kind = match entry.binding.source.transport {
            Transport::Udp => KeepAliveKind::Options,
            Transport::Tcp => KeepAliveKind::Crlf,
        };
        Some(KeepAlive {
            aor,
            binding: entry.binding.clone(),
            kind,
        })
    }

    /// §10.3 step 7 for a list of contacts, on a copy of the AOR's entries.
    fn apply(
        &mut self,
        now: Instant,
        reg: &Registration,
        contacts: &[ContactBinding],
        entries: &mut Vec<Entry>,
    ) -> Result<(), RegisterError> {
        let requested = |c: &ContactBinding| {
            c.expires
                .or(reg.expires)
                .unwrap_or(self.config.default_expires)
        };
        if contacts.iter().filter(|c| requested(c) > 0).count() > self.config.max_contacts {
            return Err(RegisterError::TooManyContacts {
                max: self.config.max_contacts,
            });
        }
        let mut touched: Vec<BindingId> = Vec::new();
        for c in contacts {
            let asked = requested(c);
            if asked > 0 && asked < self.config.min_expires {
                return Err(RegisterError::IntervalTooBrief {
                    min_expires: self.config.min_expires,
                });
            }
            let expires = asked.min(self.config.max_expires);
            // Behind a proxy (Path) the proxy keeps the phone's NAT flow open, not us.
            let keepalive_at = if reg.path.is_empty() {
                self.interval(reg.source.transport).map(|d| now + d)
            } else {
                None
            };
            let fresh = Binding {
                id: BindingId(0),
                contact: c.uri.clone(),
                source: reg.source,
                expires_at: now + Duration::from_secs(u64::from(expires)),
                q: c.q,
                call_id: reg.call_id.clone(),
                cseq: reg.cseq,
                instance: c.instance.clone(),
                reg_id: c.reg_id,
                updated_at: now,
                path: reg.path.clone(),
            };
            match entries.iter().position(|e| e.binding.matches(c)) {
                Some(p) => {
                    let old = &entries[p].binding;
                    let ours = touched.contains(&old.id);
                    if !ours && old.call_id == reg.call_id && reg.cseq <= old.cseq {
                        return Err(RegisterError::OutOfOrder);
                    }
                    if expires == 0 {
                        entries.remove(p);
                        continue;
                    }
                    let id = old.id;
                    entries[p] = Entry {
                        binding: Binding { id, ..fresh },
                        keepalive_at,
                    };
                    touched.push(id);
                }
                None if expires > 0 => {
                    let id = BindingId(self.next_id);
                    self.next_id += 1;
                    entries.push(Entry {
                        binding: Binding { id, ..fresh },
                        keepalive_at,
                    });
                    touched.push(id);
                }
                None => {}
            }
        }
        while entries.len() > self.config.max_contacts {
            let Some(oldest) = entries
                .iter()
                .enumerate()
                .filter(|(_, e)| !touched.contains(&e.binding.id))
                .min_by_key(|(_, e)| (e.binding.updated_at, e.binding.id))
                .map(|(i, _)| i)
            else {
                break;
            };
            entries.remove(oldest);
        }
        Ok(())
    }

    fn interval(&self, transport: Transport) -> Option<Duration> {
        match transport {
            Transport::Udp => self.config.udp_keepalive,
            Transport::Tcp => self.config.tcp_keepalive,
        }
    }

    /// Drops the AOR's expired bindings; reports it if none is left.
    fn expire_aor(&mut self, now: Instant, aor: &str) {
        let Some(entries) = self.aors.get_mut(aor) else {
            return;
        };
        entries.retain(|e| e.binding.expires_at > now);
        if entries.is_empty() {
            self.aors.remove(aor);
            self.events.push_back(Event::Unregistered {
                aor: aor.to_owned(),
            });
        }
    }

    fn remove_where(&mut self, f: impl Fn(&Binding) -> bool) -> usize {
        let mut removed = 0;
        let mut emptied = Vec::new();
        for (aor, entries) in &mut self.aors {
            let n = entries.len();
            entries.retain(|e| !f(&e.binding));
            removed += n - entries.len();
            if entries.is_empty() {
                emptied.push(aor.clone());
            }
        }
        emptied.sort();
        for aor in emptied {
            self.aors.remove(&aor);
            self.events.push_back(Event::Unregistered { aor });
        }
        removed
    }
}

// ---------------------------------------------------------------------------
// Lockout
// ---------------------------------------------------------------------------

/// Lockout settings.
#[derive(Debug, Clone)]
pub struct LockoutConfig {
    /// Failures within `window` that lock.
    pub max_failures: usize,
    /// The sliding window.
    pub window: Duration,
    /// How long a lock lasts.
    pub lock: Duration,
    /// Sources, and user names, tracked at most each (memory bound).
    pub max_tracked: usize,
}

impl Default for LockoutConfig {
    /// 5 failures in 10 minutes lock for 10 minutes.
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::from_secs(600),
            lock: Duration::from_secs(600),
            max_tracked: 10_000,
        }
    }
}

/// Whether a source and user may try to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// They may.
    Allowed,
    /// Refused until then.
    Locked {
        /// When the lock ends.
        until: Instant,
    },
}

/// Failures of one source (keyed by user) or one user (keyed by source).
#[derive(Debug)]
struct Track<K> {
    failures: VecDeque<(Instant, K)>,
    locked_until: Option<Instant>,
}

impl<K: PartialEq> Track<K> {
    fn new() -> Self {
        Self {
            failures: VecDeque::new(),
            locked_until: None,
        }
    }

    fn locked(&self, now: Instant) -> Option<Instant> {
        self.locked_until.filter(|&u| u > now)
    }

    /// Forgets failures older than the window and a lock that ended.
    fn age(&mut self, now: Instant, window: Duration) {
        while self
            .failures
            .front()
            .is_some_and(|&(t, _)| now.saturating_duration_since(t) >= window)
        {
            self.failures.pop_front();
        }
        if self.locked_until.is_some_and(|u| u <= now) {
            self.locked_until = None;
        }
    }

    /// Records a failure; locks when there are enough.
    fn fail(&mut self, now: Instant, other: K, config: &LockoutConfig) {
        self.age(now, config.window);
        self.failures.push_back((now, other));
        if self.failures.len() >= config.max_failures {
            self.failures.clear();
            self.locked_until = Some(now + config.lock);
        }
    }

    fn idle(&self) -> bool {
        self.failures.is_empty() && self.locked_until.is_none()
    }

    fn last_activity(&self) -> Option<Instant> {
        let last = self.failures.back().map(|&(t, _)| t);
        last.max(self.locked_until)
    }

    fn next_deadline(&self, window: Duration) -> Option<Instant> {
        let aging = self.failures.front().map(|&(t, _)| t + window);
        match (aging, self.locked_until) {
            (Some(a), Some(l)) => Some(a.min(l)),
            (a, l) => a.or(l),
        }
    }
}

/// Brute-force protection (pure): failures per source and per user name in
/// a sliding window; enough of either locks it.
#[derive(Debug)]
pub struct Lockout {
    config: LockoutConfig,
    sources: HashMap<IpAddr, Track<String>>,
    users: HashMap<String, Track<IpAddr>>,
}

impl Lockout {
    /// Nothing locked.
    pub fn new(config: LockoutConfig) -> Self {
        Self {
            config,
            sources: HashMap::new(),
            users: HashMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &LockoutConfig {
        &self.config
    }

    /// Whether `source` (and `user`, when known) may try now.
    pub fn check(&self, now: Instant, source: IpAddr, user: Option<&str>) -> Check {
        let by_source = self
            .sources
            .get(&source_key(source))
            .and_then(|t| t.locked(now));
        let by_user = user
            .and_then(|u| self.users.get(u))
            .and_then(|t| t.locked(now));
        match by_source.max(by_user) {
            Some(until) => Check::Locked { until },
            None => Check::Allowed,
        }
    }

    /// Records a failure; returns the state afterwards (locked when this
    /// was the failure too many).
    pub fn failure(&mut self, now: Instant, source: IpAddr, user: &str) -> Check {
        let key = source_key(source);
        self.make_room(now);
        self.sources
            .entry(key)
            .or_insert_with(Track::new)
            .fail(now, user.to_owned(), &self.config);
        self.users
            .entry(user.to_owned())
            .or_insert_with(Track::new)
            .fail(now, key, &self.config);
        self.check(now, source, Some(user))
    }

    /// A success: forgets the failures of `user` from `source` (the user's own
    /// typos), not those from elsewhere, and lifts no lock.
    pub fn success(&mut self, now: Instant, source: IpAddr, user: &str) {
        let key = source_key(source);
        if let Some(t) = self.users.get_mut(user) {
            t.failures.retain(|(_, s)| *s != key);
            t.age(now, self.config.window);
            if t.idle() {
                self.users.remove(user);
            }
        }
        if let Some(t) = self.sources.get_mut(&key) {
            t.failures.retain(|(_, u)| u != user);
            t.age(now, self.config.window);
            if t.idle() {
                self.sources.remove(&key);
            }
        }
    }

    /// Forgets old failures and ended locks.
    pub fn handle_timeout(&mut self, now: Instant) {
        let window = self.config.window;
        self.sources.retain(|_, t| {
            t.age(now, window);
            !t.idle()
        });
        self.users.retain(|_, t| {
            t.age(now, window);
            !t.idle()
        });
    }

    /// When something is next forgotten.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let w = self.config.window;
        let s = self.sources.values().filter_map(|t| t.next_deadline(w));
        let u = self.users.values().filter_map(|t| t.next_deadline(w));
        s.chain(u).min()
    }

    /// Sources and user names tracked now.
    pub fn tracked(&self) -> (usize, usize) {
        (self.sources.len(), self.users.len())
    }

    /// Keeps each map under its bound: first forget what aged out, then the
    /// unlocked entries least recently active.
    fn make_room(&mut self, now: Instant) {
        if self.sources.len() < self.config.max_tracked
            && self.users.len() < self.config.max_tracked
        {
            return;
        }
        self.handle_timeout(now);
        evict_oldest(&mut self.sources, self.config.max_tracked, now);
        evict_oldest(&mut self.users, self.config.max_tracked, now);
    }
}

fn evict_oldest<K: Clone + Eq + std::hash::Hash, V: PartialEq>(
    map: &mut HashMap<K, Track<V>>,
    max: usize,
    now: Instant,
) {
    while map.len() >= max {
        let Some(key) = map
            .iter()
            .filter(|(_, t)| t.locked(now).is_none())
            .min_by_key(|(_, t)| t.last_activity())
            .map(|(k, _)| k.clone())
        else {
            return;
        };
        map.remove(&key);
    }
}

/// The lockout key of a source: an IPv4 address, or an IPv6 /64.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(a) => {
            let s = a.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// The log line of an authentication failure, for fail2ban:
///
/// ```text
/// hotline auth failure source=192.0.2.7 user="alice" reason=bad-password
/// ```
///
/// `reason` is one of `unknown-user`, `bad-password`, `replay` (see
/// [`Failure::as_str`]) or `locked` (a request refused during a lock). The
/// source comes first and the user name (the attacker's text) is quoted with
/// `"`, `\` and control characters replaced by `?` and cut at 64 characters,
/// so no user name can forge the source. The shell logs the line as the
/// message of a warning. The matching filter
/// (`/etc/fail2ban/filter.d/hotline.conf`):
///
/// ```text
/// [Definition]
/// failregex = hotline auth failure source=<HOST> user="[^"]*" reason=[a-z-]+
/// ```
///
/// and a jail with `findtime = 600`, `maxretry = 5` and the SIP ports.
pub fn auth_failure_line(source: IpAddr, user: &str, reason: &str) -> String {
    let user: String = user
        .chars()
        .take(64)
        .map(|c| match c {
            '"' | '\\' => '?',
            c if c.is_control() => '?',
            c => c,
        })
        .collect();
    let reason: String = reason
        .chars()
        .filter(|c| c.is_ascii_lowercase() || *c == '-')
        .collect();
    format!(
        "hotline auth failure source={} user=\"{user}\" reason={reason}",
        source.to_canonical()
    )
}

// ---------------------------------------------------------------------------
// REGISTER handling
// ---------------------------------------------------------------------------

/// Settings of the REGISTER handler.
#[derive(Debug, Clone)]
pub struct RegisterConfig {
    /// Our SIP domain: AORs are `sip:NAME@domain`, and the realm.
    pub domain: String,
    /// The `Server` header value (empty: none).
    pub server: String,
    /// Digest settings (`realm` should be `domain`).
    pub digest: DigestConfig,
    /// Binding settings.
    pub registrar: RegistrarConfig,
    /// Lockout settings.
    pub lockout: LockoutConfig,
}

impl RegisterConfig {
    /// Defaults for `domain`, which is also the realm.
    pub fn new(domain: impl Into<String>, secret: [u8; 32]) -> Self {
        let domain = domain.into();
        Self {
            digest: DigestConfig::new(domain.clone(), secret),
            domain,
            server: "hotline".into(),
            registrar: RegistrarConfig::default(),
            lockout: LockoutConfig::default(),
        }
    }
}

/// One REGISTER to decide on.
#[derive(Debug, Clone, Copy)]
pub struct RegisterInput<'a> {
    /// The request (already through [`Message::validate_request`]).
    pub request: &'a Message,
    /// Where it came from.
    pub source: Peer,
    /// The phone's own address when the REGISTER came through a trusted proxy (the
    /// `received` of the proxy's Path): the lockout and the auth-failure line count it
    /// instead of the proxy's. `None`: the source.
    pub client: Option<std::net::IpAddr>,
    /// Whether the request came from a proxy we trust with Path (RFC 3327): only then is
    /// its Path kept as the route to the phone; anyone else's Path is ignored, so a phone
    /// cannot choose the hops of the requests sent to it.
    pub trusted_path: bool,
    /// The HA1s of the account named by [`RegisterHandler::account_name`];
    /// `None` for no such account, or one that may not register.
    pub account: Option<&'a DigestSecrets>,
    /// The To tag of our response.
    pub to_tag: &'a str,
}

/// What to answer to a REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// 401 with a challenge per offered algorithm
    /// ([`DigestConfig::algorithms`](crate::digest::DigestConfig::algorithms)).
    Challenge {
        /// The nonce was stale (or, with a replay, used up).
        stale: bool,
    },
    /// 403: the source or the user is locked out.
    Locked {
        /// When the lock ends.
        until: Instant,
    },
    /// 403: authenticated as a user other than the AOR's.
    Forbidden,
    /// 404: the AOR is not in our domain.
    NotFound,
    /// 400: credentials that do not fit (with a Warning).
    BadCredentials(DigestError),
    /// The binding update was refused (400, 403, 423 or 500).
    Refused(RegisterError),
    /// 200: the AOR's bindings after the update.
    Registered {
        /// The AOR.
        aor: String,
        /// Its bindings.
        bindings: Vec<Binding>,
    },
}

impl Decision {
    /// The status code.
    pub fn status(&self) -> u16 {
        match self {
            Self::Challenge { .. } => 401,
            Self::Locked { .. } | Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::BadCredentials(_) => 400,
            Self::Refused(e) => e.status(),
            Self::Registered { .. } => 200,
        }
    }
}

/// The answer to a REGISTER: the decision, the response to send through the
/// REGISTER's server transaction, and the line to log if any.
#[derive(Debug, Clone)]
pub struct RegisterOutcome {
    /// What was decided.
    pub decision: Decision,
    /// The response, ready to send.
    pub response: Bytes,
    /// [`auth_failure_line`] when authentication failed or was refused by the lockout.
    pub auth_log: Option<String>,
}

impl RegisterOutcome {
    /// The status code of the response.
    pub fn status(&self) -> u16 {
        self.decision.status()
    }
}

/// REGISTER in, [`RegisterOutcome`] out: digest authentication, lockout and
/// bindings for our domain.
#[derive(Debug)]
pub struct RegisterHandler {
    domain: String,
    server: String,
    auth: Authenticator,
    lockout: Lockout,
    registrar: Registrar,
}

impl RegisterHandler {
    /// A handler with no bindings.
    pub fn new(config: RegisterConfig) -> Self {
        Self {
            domain: config.domain,
            server: config.server,
            auth: Authenticator::new(config.digest),
            lockout: Lockout::new(config.lockout),
            registrar: Registrar::new(config.registrar),
        }
    }

    /// The user whose HA1s the shell must look up before [`handle`](Self::handle):
    /// the `username` of the request's credentials for our realm, if any.
    pub fn account_name(&self, request: &Message) -> Option<String> {
        match Credentials::find(request, HeaderName::Authorization, self.auth.realm())? {
            Ok(c) => Some(c.username),
            Err(_) => None,
        }
    }

    /// Decides on a REGISTER and builds the response.
    pub fn handle(
        &mut self,
        now: Instant,
        wall: SystemTime,
        input: RegisterInput<'_>,
    ) -> RegisterOutcome {
        let (decision, auth_log) = self.decide(now, wall, &input);
        let challenges = match decision {
            Decision::Challenge { stale } => Some(self.auth.challenges(wall, stale)),
            _ => None,
        };
        let response = self.build(now, wall, &input, &decision, challenges);
        RegisterOutcome {
            decision,
            response,
            auth_log,
        }
    }

    /// The bindings.
    pub fn registrar(&self) -> &Registrar {
        &self.registrar
    }

    /// The bindings, to remove one or report a closed connection.
    pub fn registrar_mut(&mut self) -> &mut Registrar {
        &mut self.registrar
    }

    /// The lockout.
    pub fn lockout(&self) -> &Lockout {
        &self.lockout
    }

    /// The authenticator.
    pub fn authenticator(&self) -> &Authenticator {
        &self.auth
    }

    /// Expires bindings and forgets old failures.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.registrar.handle_timeout(now);
        self.lockout.handle_timeout(now);
    }

    /// The next deadline of the registrar or the lockout.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.registrar.poll_timeout(), self.lockout.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next registrar event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.registrar.poll_event()
    }

    /// The next keep-alive due.
    pub fn poll_keepalive(&mut self, now: Instant) -> Option<KeepAlive> {
        self.registrar.poll_keepalive(now)
    }

    fn decide(
        &mut self,
        now: Instant,
        wall: SystemTime,
        input: &RegisterInput<'_>,
    ) -> (Decision, Option<String>) {
        let request = input.request;
        let ip = input.client.unwrap_or(input.source.remote.ip());
        let aor_user = match self.aor_user(request) {
            Ok(Some(u)) => u,
            Ok(None) => return (Decision::NotFound, None),
            Err(e) => return (Decision::Refused(e), None),
        };
        let creds = Credentials::find(request, HeaderName::Authorization, self.auth.realm());
        let cred_user = match &creds {
            Some(Ok(c)) => Some(c.username.as_str()),
            _ => None,
        };
        for user in [Some(aor_user.as_str()), cred_user] {
            if let Check::Locked { until } = self.lockout.check(now, ip, user) {
                let name = cred_user.unwrap_or(&aor_user);
                let log = auth_failure_line(ip, name, "locked");
                return (Decision::Locked { until }, Some(log));
            }
        }
        let creds = match creds {
            None => return (Decision::Challenge { stale: false }, None),
            Some(Err(e)) => return (Decision::BadCredentials(e), None),
            Some(Ok(c)) => c,
        };
        let verdict = self.auth.verify(
            wall,
            &creds,
            &Method::Register,
            request.request_uri(),
            input.account,
        );
        match verdict {
            Verdict::Authenticated => {}
            Verdict::Stale => return (Decision::Challenge { stale: true }, None),
            Verdict::Invalid(e) => return (Decision::BadCredentials(e), None),
            Verdict::Failed(f) => {
                let log = auth_failure_line(ip, &creds.username, f.as_str());
                let decision = match self.lockout.failure(now, ip, &creds.username) {
                    Check::Locked { until } => Decision::Locked { until },
                    Check::Allowed => Decision::Challenge {
                        stale: f == Failure::Replay,
                    },
                };
                return (decision, Some(log));
            }
        }
        if creds.username != aor_user {
            return (Decision::Forbidden, None);
        }
        self.lockout.success(now, ip, &creds.username);
        let aor = format!("sip:{aor_user}@{}", self.domain);
        let result = Registration::from_message(request, aor.clone(), input.source)
            .map(|mut reg| {
                if !input.trusted_path {
                    reg.path.clear();
                }
                reg
            })
            .and_then(|reg| self.registrar.register(now, reg));
        match result {
            Ok(bindings) => (Decision::Registered { aor, bindings }, None),
            Err(e) => (Decision::Refused(e), None),
        }
    }

    /// The user of the To URI when its host is our domain (`Ok(None)`: not ours).
    fn aor_user(&self, request: &Message) -> Result<Option<String>, RegisterError> {
        let to = request
            .to_header()
            .map_err(|_| RegisterError::Malformed("To"))?;
        if !matches!(to.uri.scheme, Scheme::Sip | Scheme::Sips) {
            return Ok(None);
        }
        let ours = match to.uri.host {
            Some(Host::Name(h)) => h.eq_ignore_ascii_case(self.domain.as_bytes()),
            Some(Host::V4(a)) => a.to_string() == self.domain,
            Some(Host::V6(a)) => {
                self.domain.trim_start_matches('[').trim_end_matches(']') == a.to_string()
            }
            None => false,
        };
        let user = to
            .uri
            .user_unescaped()
            .and_then(|u| String::from_utf8(u.into_owned()).ok())
            .filter(|u| !u.is_empty());
        Ok(user.filter(|_| ours))
    }

    fn build(
        &self,
        now: Instant,
        wall: SystemTime,
        input: &RegisterInput<'_>,
        decision: &Decision,
        challenges: Option<Vec<Challenge>>,
    ) -> Bytes {
        let mut b = response(input.request, decision.status())
            .source(input.source.remote)
            .to_tag(input.to_tag);
        for c in challenges.into_iter().flatten() {
            b = b.header("WWW-Authenticate", c.to_string());
        }
        match decision {
            Decision::Registered { bindings, .. } => {
                for binding in bindings {
                    b = b.header("Contact", binding.contact_value(now));
                }
                // RFC 3327 §5.3: the Path stored is echoed when the UA supports it.
                let supports_path = input.trusted_path
                    && input
                        .request
                        .values(HeaderName::Supported)
                        .any(|v| v.trim_ascii().eq_ignore_ascii_case(b"path"));
                if supports_path {
                    for p in input.request.values(HeaderName::Path) {
                        b = b.header("Path", String::from_utf8_lossy(p).trim());
                    }
                }
                b = b.header("Date", http_date(wall));
            }
            Decision::Refused(RegisterError::IntervalTooBrief { min_expires }) => {
                b = b.header("Min-Expires", min_expires.to_string());
            }
            Decision::Refused(e @ (RegisterError::Malformed(_) | RegisterError::Wildcard)) => {
                b = b.header("Warning", warning(&e.to_string()));
            }
            Decision::BadCredentials(e) => b = b.header("Warning", warning(&e.to_string())),
            _ => {}
        }
        if !self.server.is_empty() {
            b = b.header("Server", &self.server);
        }
        b.build()
    }
}

fn warning(text: &str) -> String {
    format!("399 hotline \"{}\"", text.replace(['"', '\\'], "'"))
}

/// An RFC 1123 date for the `Date` header (RFC 3261 §20.17), always GMT.
pub fn http_date(wall: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
