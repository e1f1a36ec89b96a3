//! Softphone registration in the SIP task: the REGISTER handler of
//! `hotline-sip` driven with the store's accounts, keep-alives to the
//! registered contacts, and [`Registrations`], the view of who is registered
//! that the queue and the console read.
//!
//! # Flow
//! 1. The endpoint reports [`Event::Register`](hotline_sip::endpoint::Event::Register);
//!    [`RegistrarShell::on_register`] answers at once when the request has no
//!    credentials for our realm (the first 401), else asks the SIP task for a
//!    store lookup of the credentials' user name ([`Lookup`]).
//! 2. The SIP task looks the user up in a task of its own (never blocking the
//!    SIP loop) and hands back an [`Account`]: the HA1s of an enabled
//!    operator, or nothing for anyone else (unknown, disabled, supervisor or
//!    admin: they all look unknown, so a REGISTER cannot tell which names
//!    exist), or [`Account::Unavailable`] when the database did not answer
//!    (503 with Retry-After; no failure is counted against anyone).
//! 3. [`RegistrarShell::on_account`] decides with the handler, sends the
//!    response through the REGISTER's transaction and logs the fail2ban line
//!    (`hotline auth failure source=… user="…" reason=…`) at warn.
//!
//! Keep-alives: an OPTIONS every 30 s to UDP contacts through the endpoint
//! (a contact whose OPTIONS times out is dropped), CRLF CRLF every 90 s on
//! TCP connections (the SIP task writes it; a closed connection drops its
//! bindings).
//!
//! The nonce key is derived from the per-deployment secret
//! (`<data_dir>/secret.key`): HMAC-SHA256 with a fixed label, so nonces
//! survive a restart. In a cluster the key is bound to the node too (see [`nonce_key`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Instant, SystemTime};

use anyhow::Context as _;
use hotline_sip::digest::DigestSecrets;
use hotline_sip::endpoint::{Endpoint, Peer, RegisterId, RequestId, Transport};
use hotline_sip::message::Message;
use hotline_sip::registrar::{
    Binding, BindingId, Check, Event as RegistrarEvent, KeepAliveKind, RegisterConfig,
    RegisterHandler, RegisterInput,
};
use sha2::{Digest as _, Sha256};

/// REGISTERs waiting for a store lookup at most; more get 503 at once.
const MAX_PENDING: usize = 256;

/// The label of the nonce key's derivation from the deployment secret.
const NONCE_KEY_LABEL: &[u8] = b"hotline/sip-digest-nonce-key/v1";

/// Who is registered: operator name → their current bindings (contact URI,
/// where to send to, expiry), highest `q` first. Cheap to clone and to read;
/// only the SIP task writes it.
#[derive(Debug, Clone)]
pub(crate) struct Registrations {
    inner: Arc<RwLock<BTreeMap<String, Vec<Binding>>>>,
    /// Bumped on every change, for [`Registrations::subscribe`].
    version: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for Registrations {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            version: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }
}

// The readers are the queue and the console (not built yet) and the tests.
#[allow(dead_code)]
impl Registrations {
    /// The operator's bindings (empty: not registered).
    pub(crate) fn contacts(&self, name: &str) -> Vec<Binding> {
        self.read(|m| m.get(name).cloned().unwrap_or_default())
    }

    /// Whether the operator has at least one binding.
    pub(crate) fn is_registered(&self, name: &str) -> bool {
        self.read(|m| m.contains_key(name))
    }

    /// The registered operators, sorted.
    pub(crate) fn operators(&self) -> Vec<String> {
        self.read(|m| m.keys().cloned().collect())
    }

    /// Wakes (`changed()`) after every change of the view.
    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Everything at once.
    pub(crate) fn snapshot(&self) -> BTreeMap<String, Vec<Binding>> {
        self.read(BTreeMap::clone)
    }

    fn read<T>(&self, f: impl FnOnce(&BTreeMap<String, Vec<Binding>>) -> T) -> T {
        f(&self.inner.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Sets the whole view; readers are not held up when nothing changed.
    fn replace(&self, map: BTreeMap<String, Vec<Binding>>) {
        if self.read(|m| *m == map) {
            return;
        }
        *self.inner.write().unwrap_or_else(PoisonError::into_inner) = map;
        self.version.send_modify(|v| *v += 1);
    }
}

/// What the store said about a user name.
#[derive(Debug, Clone)]
pub(crate) enum Account {
    /// The HA1s of an operator who may register; `None` for anyone else.
    Found(Option<DigestSecrets>),
    /// The database did not answer.
    Unavailable,
}

impl Account {
    /// From a store row: only enabled operators may register.
    pub(crate) fn of_user(user: Option<hotline_store::User>) -> Self {
        Self::Found(
            user.filter(|u| u.role == hotline_store::Role::Operator && !u.disabled)
                .map(|u| DigestSecrets {
                    md5: u.sip_ha1_md5,
                    sha256: u.sip_ha1_sha256,
                }),
        )
    }
}

/// A store lookup the SIP task must make, then report with
/// [`RegistrarShell::on_account`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lookup {
    pub(crate) id: RegisterId,
    pub(crate) name: String,
}

/// A CRLF CRLF keep-alive to write on a TCP connection; if the connection
/// is gone, tell [`RegistrarShell::keepalive_failed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CrlfKeepAlive {
    pub(crate) binding: BindingId,
    pub(crate) connection: Option<u64>,
}

#[derive(Debug)]
struct Pending {
    request: Message,
    peer: Peer,
    to_tag: String,
    /// The phone's address behind a trusted proxy (see [`client_behind_proxy`]).
    client: Option<std::net::IpAddr>,
    /// It came from a trusted proxy: its Path is the route to the phone.
    trusted: bool,
}

/// The REGISTER side of the SIP task (sans-IO apart from its logs).
#[derive(Debug)]
pub(crate) struct RegistrarShell {
    handler: RegisterHandler,
    domain: String,
    retry_after_secs: u32,
    view: Registrations,
    pending: HashMap<RegisterId, Pending>,
    /// OPTIONS in flight → the binding they probe.
    keepalives: HashMap<RequestId, BindingId>,
    /// `sip.trusted_proxies`.
    proxies: Vec<std::net::IpAddr>,
}

impl RegistrarShell {
    pub(crate) fn new(config: RegisterConfig, retry_after_secs: u32, view: Registrations) -> Self {
        Self {
            domain: config.domain.clone(),
            handler: RegisterHandler::new(config),
            retry_after_secs,
            view,
            pending: HashMap::new(),
            keepalives: HashMap::new(),
            proxies: Vec::new(),
        }
    }

    /// The proxies whose Path tells the phone's address (`sip.trusted_proxies`).
    pub(crate) fn with_trusted_proxies(mut self, proxies: Vec<std::net::IpAddr>) -> Self {
        self.proxies = proxies;
        self
    }

    /// A REGISTER from the endpoint. Answered now when it carries no
    /// credentials for our realm (or too many lookups are pending); else the
    /// returned lookup must be made and reported.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_register(
        &mut self,
        now: Instant,
        wall: SystemTime,
        endpoint: &mut Endpoint,
        id: RegisterId,
        request: Message,
        peer: Peer,
        to_tag: String,
    ) -> Option<Lookup> {
        let trusted = self.proxies.contains(&peer.remote.ip());
        let client = if trusted {
            client_behind_proxy(&request)
        } else {
            None
        };
        let pending = Pending {
            request,
            peer,
            to_tag,
            client,
            trusted,
        };
        let Some(name) = self.handler.account_name(&pending.request) else {
            self.decide(now, wall, endpoint, id, &pending, None);
            return None;
        };
        let ip = pending.client.unwrap_or(pending.peer.remote.ip());
        if let Check::Locked { .. } = self.handler.lockout().check(now, ip, Some(&name)) {
            // 403 whatever the account: a brute force costs the database nothing.
            self.decide(now, wall, endpoint, id, &pending, None);
            return None;
        }
        if self.pending.len() >= MAX_PENDING {
            tracing::warn!(
                pending = self.pending.len(),
                "too many REGISTERs waiting for the database; answering 503"
            );
            self.unavailable(now, endpoint, id, &pending);
            return None;
        }
        self.pending.insert(id, pending);
        Some(Lookup { id, name })
    }

    /// The result of a [`Lookup`].
    pub(crate) fn on_account(
        &mut self,
        now: Instant,
        wall: SystemTime,
        endpoint: &mut Endpoint,
        id: RegisterId,
        account: Account,
    ) {
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        match account {
            Account::Found(secrets) => {
                self.decide(now, wall, endpoint, id, &pending, secrets.as_ref());
            }
            Account::Unavailable => self.unavailable(now, endpoint, id, &pending),
        }
    }

    fn decide(
        &mut self,
        now: Instant,
        wall: SystemTime,
        endpoint: &mut Endpoint,
        id: RegisterId,
        pending: &Pending,
        account: Option<&DigestSecrets>,
    ) {
        let out = self.handler.handle(
            now,
            wall,
            RegisterInput {
                request: &pending.request,
                source: pending.peer,
                client: pending.client,
                trusted_path: pending.trusted,
                account,
                to_tag: &pending.to_tag,
            },
        );
        if let Some(line) = &out.auth_log {
            // The fail2ban line: its own message, nothing else in it.
            tracing::warn!("{line}");
        }
        tracing::debug!(
            remote = %pending.peer.remote,
            status = out.status(),
            "REGISTER answered"
        );
        endpoint.respond_register(now, id, out.response);
        self.sync(now);
    }

    /// 503 with Retry-After: we cannot decide now (the database is away).
    fn unavailable(&mut self, now: Instant, endpoint: &mut Endpoint, id: RegisterId, p: &Pending) {
        let retry = self.retry_after_secs.to_string();
        let response = hotline_sip::response::response(&p.request, 503)
            .source(p.peer.remote)
            .to_tag(&p.to_tag)
            .header("Retry-After", &retry)
            .build();
        endpoint.respond_register(now, id, response);
    }

    /// A keep-alive OPTIONS was answered (any response: the contact is alive).
    pub(crate) fn on_request_answered(&mut self, id: RequestId) {
        self.keepalives.remove(&id);
    }

    /// A keep-alive OPTIONS got no answer: the contact is unreachable.
    pub(crate) fn on_request_timed_out(&mut self, now: Instant, id: RequestId) {
        if let Some(binding) = self.keepalives.remove(&id) {
            self.drop_binding(now, binding, "keep-alive OPTIONS unanswered");
        }
    }

    /// A CRLF keep-alive could not be written (its connection is gone).
    pub(crate) fn keepalive_failed(&mut self, now: Instant, binding: BindingId) {
        self.drop_binding(now, binding, "TCP connection gone");
    }

    fn drop_binding(&mut self, now: Instant, binding: BindingId, why: &str) {
        if self.handler.registrar_mut().remove(binding) {
            tracing::info!(binding = binding.0, reason = why, "binding dropped");
            self.sync(now);
        }
    }

    /// A TCP connection closed: its bindings cannot be reached any more.
    pub(crate) fn on_connection_closed(&mut self, now: Instant, connection: u64) {
        let n = self.handler.registrar_mut().connection_closed(connection);
        if n > 0 {
            tracing::info!(
                connection,
                bindings = n,
                "TCP connection closed; bindings dropped"
            );
            self.sync(now);
        }
    }

    /// Expires bindings, ages the lockout and sends the keep-alives due
    /// (OPTIONS through the endpoint); returns the CRLF keep-alives for the
    /// SIP task to write.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        endpoint: &mut Endpoint,
    ) -> Vec<CrlfKeepAlive> {
        self.handler.handle_timeout(now);
        let mut crlf = Vec::new();
        while let Some(k) = self.handler.poll_keepalive(now) {
            match k.kind {
                KeepAliveKind::Options => {
                    // One probe in flight per binding.
                    if !self.keepalives.values().any(|b| *b == k.binding.id) {
                        let id = endpoint.send_options(now, k.binding.source, &k.binding.contact);
                        self.keepalives.insert(id, k.binding.id);
                    }
                }
                KeepAliveKind::Crlf => crlf.push(CrlfKeepAlive {
                    binding: k.binding.id,
                    connection: k.binding.source.connection,
                }),
            }
        }
        self.sync(now);
        crlf
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due next.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.handler.poll_timeout()
    }

    /// Logs the registrar's events and brings the shared view up to date.
    fn sync(&mut self, now: Instant) {
        while let Some(e) = self.handler.poll_event() {
            match e {
                RegistrarEvent::Registered { aor } => {
                    let name = self.name_of(&aor);
                    let bindings = self.handler.registrar().lookup(now, &aor);
                    let transport = bindings.first().map(|b| match b.source.transport {
                        Transport::Udp => "udp",
                        Transport::Tcp => "tcp",
                    });
                    // Only authenticated operators get here: their names are
                    // the store's (letters, digits, `._-`), safe to print as is.
                    tracing::info!(
                        operator = %name,
                        contacts = bindings.len(),
                        transport = %transport.unwrap_or("-"),
                        "operator registered"
                    );
                }
                RegistrarEvent::Unregistered { aor } => {
                    tracing::info!(operator = %self.name_of(&aor), "operator unregistered");
                }
            }
        }
        let registrar = self.handler.registrar();
        let map: BTreeMap<String, Vec<Binding>> = registrar
            .registered(now)
            .into_iter()
            .map(|aor| {
                let bindings = registrar.lookup(now, &aor);
                (self.name_of(&aor).to_owned(), bindings)
            })
            .filter(|(_, b)| !b.is_empty())
            .collect();
        self.view.replace(map);
        // Probes of bindings that are gone are forgotten.
        if !self.keepalives.is_empty() {
            let live: Vec<BindingId> = self
                .view
                .read(|m| m.values().flatten().map(|b| b.id).collect());
            self.keepalives.retain(|_, b| live.contains(b));
        }
    }

    /// `NAME` of `sip:NAME@domain`.
    fn name_of<'a>(&self, aor: &'a str) -> &'a str {
        let user = aor.strip_prefix("sip:").unwrap_or(aor);
        user.strip_suffix(self.domain.as_str())
            .and_then(|u| u.strip_suffix('@'))
            .unwrap_or(user)
    }
}

/// The phone's address in the `received` parameter of the first Path (RFC 3327) of a
/// REGISTER a proxy forwarded (Kamailio's `add_path_received()`:
/// `<sip:proxy;lr;received=sip:203.0.113.9:5062>`, the value possibly %-escaped).
fn client_behind_proxy(request: &Message) -> Option<std::net::IpAddr> {
    let first = request
        .values(hotline_sip::message::HeaderName::Path)
        .next()?;
    let first = std::str::from_utf8(first).ok()?;
    let at = first.find(";received=")? + ";received=".len();
    let raw: String = first[at..]
        .chars()
        .take_while(|c| !matches!(c, ';' | '>' | ',' | ' '))
        .collect();
    let value = percent_decode(&raw);
    let value = value.trim_matches('"');
    let hostport = value
        .strip_prefix("sip:")
        .or_else(|| value.strip_prefix("sips:"))
        .unwrap_or(value);
    let hostport = hostport.split(';').next()?;
    if let Some(v6) = hostport.strip_prefix('[') {
        return v6.split(']').next()?.parse().ok();
    }
    hostport.split(':').next()?.parse().ok()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The nonce key: HMAC-SHA256 of a fixed label under the per-deployment
/// secret (`<data_dir>/secret.key`, made if missing).
///
/// In a cluster the key is also bound to the node (`node`, `cluster.node_id`): the
/// nonce-count replay check lives in each node's memory, so a nonce one node issued must
/// not be good at another, where a captured REGISTER could be replayed with a fresh count.
/// A phone whose REGISTER reaches another node (failover) gets a `stale=true` challenge
/// and answers it at once, with no failure counted.
pub(crate) fn nonce_key(data_dir: &Path, node: &str) -> anyhow::Result<[u8; 32]> {
    hotline_store::load_or_create_secret(data_dir)
        .context("loading the deployment secret for SIP digest nonces")?;
    let path = data_dir.join(hotline_store::privacy::SECRET_FILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let secret = parse_hex32(text.trim())
        .with_context(|| format!("{}: not 64 hex digits", path.display()))?;
    let mut label = NONCE_KEY_LABEL.to_vec();
    if !node.is_empty() {
        label.extend_from_slice(b"/node/");
        label.extend_from_slice(node.as_bytes());
    }
    Ok(hmac_sha256(&secret, &label))
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// HMAC-SHA256 (RFC 2104) over `sha2`.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new()
        .chain_update(k.map(|b| b ^ 0x36))
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(k.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize();
    let mut out = [0u8; 32];
    out.copy_from_slice(&outer);
    out
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::{Duration, UNIX_EPOCH};

    use bytes::Bytes;
    use hotline_sip::digest::{Challenge, NonceCount, ha1};
    use hotline_sip::endpoint::{self, Event};
    use hotline_sip::message::{HeaderName, Method};

    use super::*;

    const DOMAIN: &str = "hotline.test";
    const PASSWORD: &str = "correct horse battery";

    /// The response bytes' status code.
    fn status_of(b: &Bytes) -> Option<u16> {
        Message::parse_datagram(b.clone()).ok()?.status()
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn the_nonce_key_is_stable_and_not_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let a = nonce_key(dir.path(), "").unwrap();
        let b = nonce_key(dir.path(), "").unwrap();
        assert_eq!(a, b, "same data dir, same key (nonces survive a restart)");
        let text = std::fs::read_to_string(dir.path().join("secret.key")).unwrap();
        assert_ne!(hex(&a), text.trim());
        let other = tempfile::tempdir().unwrap();
        assert_ne!(nonce_key(other.path(), "").unwrap(), a);
        // Nodes of one cluster share the secret but not the key.
        let node_a = nonce_key(dir.path(), "a").unwrap();
        assert_ne!(node_a, a);
        assert_ne!(node_a, nonce_key(dir.path(), "b").unwrap());
        assert_eq!(node_a, nonce_key(dir.path(), "a").unwrap());
    }

    #[test]
    fn only_enabled_operators_have_an_account() {
        let user = |role, disabled| hotline_store::User {
            name: "ana".into(),
            role,
            password_hash: String::new(),
            sip_ha1_md5: Some("m".into()),
            sip_ha1_sha256: Some("s".into()),
            languages: vec![],
            disabled,
            created_at: hotline_store::Timestamp::now(),
        };
        use hotline_store::Role;
        let found = |a: Account| match a {
            Account::Found(s) => s,
            Account::Unavailable => panic!("unavailable"),
        };
        let op = found(Account::of_user(Some(user(Role::Operator, false)))).unwrap();
        assert_eq!(op.md5.as_deref(), Some("m"));
        assert_eq!(op.sha256.as_deref(), Some("s"));
        assert!(found(Account::of_user(Some(user(Role::Operator, true)))).is_none());
        assert!(found(Account::of_user(Some(user(Role::Supervisor, false)))).is_none());
        assert!(found(Account::of_user(Some(user(Role::Admin, false)))).is_none());
        assert!(found(Account::of_user(None)).is_none());
    }

    /// An endpoint, the shell, a phone's address and a clock.
    struct World {
        now: Instant,
        endpoint: Endpoint,
        shell: RegistrarShell,
        view: Registrations,
        phone: Peer,
        cseq: u32,
        sent: Vec<(Peer, Bytes)>,
        /// A Path header value to put on the REGISTERs (a proxy in front).
        path: Option<String>,
    }

    impl World {
        fn new(transport: Transport) -> Self {
            Self::with(transport, |_| {})
        }

        fn with(transport: Transport, f: impl FnOnce(&mut RegisterConfig)) -> Self {
            let view = Registrations::default();
            let mut config = RegisterConfig::new(DOMAIN, [3; 32]);
            f(&mut config);
            Self {
                now: Instant::now(),
                endpoint: Endpoint::new(endpoint::Config {
                    registrar: true,
                    ..endpoint::Config::default()
                }),
                shell: RegistrarShell::new(config, 5, view.clone()),
                view,
                phone: Peer {
                    transport,
                    remote: "198.51.100.7:40000".parse().unwrap(),
                    local: "203.0.113.5:5060".parse().unwrap(),
                    connection: (transport == Transport::Tcp).then_some(9),
                },
                cseq: 0,
                sent: Vec::new(),
                path: None,
            }
        }

        fn wall(&self) -> SystemTime {
            UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        }

        fn register(&mut self, user: &str, auth: Option<&str>, expires: u32) -> Option<Lookup> {
            self.cseq += 1;
            let mut auth = auth
                .map(|a| format!("Authorization: {a}\r\n"))
                .unwrap_or_default();
            if let Some(p) = &self.path {
                auth.push_str(&format!("Path: {p}\r\n"));
            }
            let text = format!(
                "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bKw{cseq};rport\r\n\
                 Max-Forwards: 70\r\n\
                 From: <sip:{user}@{DOMAIN}>;tag=p1\r\n\
                 To: <sip:{user}@{DOMAIN}>\r\n\
                 Call-ID: reg-{user}\r\n\
                 CSeq: {cseq} REGISTER\r\n\
                 Contact: <sip:{user}@192.168.1.20:5060>\r\n\
                 Expires: {expires}\r\n{auth}\
                 Content-Length: 0\r\n\r\n",
                cseq = self.cseq
            );
            self.endpoint
                .handle_datagram(self.now, self.phone, Bytes::from(text));
            let mut lookup = None;
            while let Some(e) = self.endpoint.poll_event() {
                let Event::Register {
                    id,
                    request,
                    peer,
                    to_tag,
                } = e
                else {
                    panic!("unexpected {e:?}");
                };
                let wall = self.wall();
                lookup = self.shell.on_register(
                    self.now,
                    wall,
                    &mut self.endpoint,
                    id,
                    request,
                    peer,
                    to_tag,
                );
            }
            lookup
        }

        fn answer(&mut self, lookup: Lookup, account: Account) {
            let wall = self.wall();
            self.shell
                .on_account(self.now, wall, &mut self.endpoint, lookup.id, account);
        }

        fn drain(&mut self) -> Vec<Bytes> {
            let mut out = Vec::new();
            while let Some(t) = self.endpoint.poll_transmit() {
                self.sent.push((t.peer, t.payload.clone()));
                out.push(t.payload);
            }
            out
        }

        fn last_status(&mut self) -> u16 {
            let sent = self.drain();
            status_of(sent.last().expect("a response")).unwrap()
        }

        /// Registers `user` with the right password: 401, then 200.
        fn register_ok(&mut self, user: &str) {
            assert!(
                self.register(user, None, 600).is_none(),
                "no lookup for the first"
            );
            let sent = self.drain();
            let resp = Message::parse_datagram(sent[0].clone()).unwrap();
            assert_eq!(resp.status(), Some(401));
            let md5 = resp
                .headers()
                .filter(|(n, _)| HeaderName::classify(n) == HeaderName::WwwAuthenticate)
                .map(|(_, v)| Challenge::parse(v).unwrap())
                .nth(1)
                .unwrap();
            let key = ha1(md5.algorithm, user, DOMAIN, PASSWORD);
            let creds = md5.answer(
                user,
                &key,
                &Method::Register,
                &format!("sip:{DOMAIN}"),
                "abc",
                NonceCount::new(1),
            );
            let lookup = self
                .register(user, Some(&creds.to_string()), 600)
                .expect("a lookup");
            assert_eq!(lookup.name, user);
            let secrets = DigestSecrets::from_password(user, DOMAIN, PASSWORD);
            self.answer(lookup, Account::Found(Some(secrets)));
            assert_eq!(self.last_status(), 200);
        }

        /// Advances the clock, firing both sides' timers.
        fn advance(&mut self, d: Duration) -> Vec<CrlfKeepAlive> {
            let until = self.now + d;
            let mut crlf = Vec::new();
            loop {
                let next = [self.endpoint.poll_timeout(), self.shell.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min();
                match next {
                    Some(t) if t <= until => {
                        self.now = self.now.max(t);
                        self.endpoint.handle_timeout(self.now);
                        crlf.extend(self.shell.handle_timeout(self.now, &mut self.endpoint));
                        self.drain();
                        while let Some(e) = self.endpoint.poll_event() {
                            match e {
                                Event::RequestAnswered { id, .. } => {
                                    self.shell.on_request_answered(id)
                                }
                                Event::RequestTimedOut { id } => {
                                    self.shell.on_request_timed_out(self.now, id)
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => break,
                }
            }
            self.now = until;
            crlf
        }
    }

    #[test]
    fn an_operator_registers_and_the_view_shows_it() {
        let mut w = World::new(Transport::Udp);
        w.register_ok("ana");
        assert!(w.view.is_registered("ana"));
        assert_eq!(w.view.operators(), vec!["ana".to_owned()]);
        let contacts = w.view.contacts("ana");
        assert_eq!(contacts.len(), 1);
        assert_eq!(contacts[0].contact, "sip:ana@192.168.1.20:5060");
        assert_eq!(contacts[0].source.remote, w.phone.remote);
        // Un-register.
        w.register("ana", None, 0);
        w.drain();
        assert!(
            w.view.is_registered("ana"),
            "an unauthenticated REGISTER changes nothing"
        );
        assert_eq!(w.view.snapshot().len(), 1);
    }

    #[test]
    fn anyone_but_an_operator_gets_the_same_401_as_a_wrong_password() {
        let mut w = World::new(Transport::Udp);
        let challenge = |w: &mut World, user: &str| {
            w.register(user, None, 600);
            let sent = w.drain();
            let resp = Message::parse_datagram(sent[0].clone()).unwrap();
            resp.headers()
                .filter(|(n, _)| HeaderName::classify(n) == HeaderName::WwwAuthenticate)
                .map(|(_, v)| Challenge::parse(v).unwrap())
                .nth(1)
                .unwrap()
        };
        for (user, account) in [
            (
                "ana",
                Account::Found(Some(DigestSecrets::from_password(
                    "ana",
                    DOMAIN,
                    "other password",
                ))),
            ),
            ("sup", Account::Found(None)),
            ("ghost", Account::Found(None)),
        ] {
            let md5 = challenge(&mut w, user);
            let key = ha1(md5.algorithm, user, DOMAIN, PASSWORD);
            let creds = md5.answer(
                user,
                &key,
                &Method::Register,
                &format!("sip:{DOMAIN}"),
                "abc",
                NonceCount::new(1),
            );
            let lookup = w.register(user, Some(&creds.to_string()), 600).unwrap();
            w.answer(lookup, account);
            assert_eq!(w.last_status(), 401, "{user}");
        }
        assert!(w.view.operators().is_empty());
    }

    #[test]
    fn the_phone_behind_a_proxy_is_read_from_its_path() {
        let reg = |path: &str| {
            let text = format!(
                "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKp\r\n\
                 From: <sip:ana@{DOMAIN}>;tag=1\r\nTo: <sip:ana@{DOMAIN}>\r\nCall-ID: c\r\n\
                 CSeq: 1 REGISTER\r\n{path}Content-Length: 0\r\n\r\n"
            );
            Message::parse_datagram(Bytes::from(text)).unwrap()
        };
        let ip = |s: &str| Some(s.parse::<std::net::IpAddr>().unwrap());
        assert_eq!(
            client_behind_proxy(&reg(
                "Path: <sip:10.0.0.2:5070;lr;received=sip:203.0.113.9:5062>\r\n"
            )),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_behind_proxy(&reg(
                "Path: <sip:10.0.0.2;lr;received=sip%3A198.51.100.4%3A40000%3Btransport%3Dudp>\r\n"
            )),
            ip("198.51.100.4")
        );
        assert_eq!(
            client_behind_proxy(&reg(
                "Path: <sip:10.0.0.2;lr;received=sip:[2001:db8::7]:5062>\r\n"
            )),
            ip("2001:db8::7")
        );
        assert_eq!(
            client_behind_proxy(&reg("Path: <sip:10.0.0.2;lr>\r\n")),
            None
        );
        assert_eq!(client_behind_proxy(&reg("")), None);
    }

    /// A Path is the route to the phone only when a trusted proxy wrote it.
    #[test]
    fn only_a_trusted_proxys_path_is_kept() {
        for trusted in [false, true] {
            let mut w = World::new(Transport::Udp);
            if trusted {
                w.shell.proxies = vec![w.phone.remote.ip()];
            }
            w.path = Some("<sip:198.51.100.7:40000;lr;received=sip:203.0.113.9:5062>".into());
            w.register_ok("ana");
            let path = w.view.contacts("ana")[0].path.clone();
            assert_eq!(path.is_empty(), !trusted, "trusted {trusted}: {path:?}");
        }
    }

    /// Five wrong passwords for ana from one phone behind the proxy: with the proxy trusted
    /// only that phone's address is locked, and beto registers through the same proxy from
    /// another phone; untrusted, the proxy's own address is locked for everyone.
    #[test]
    fn a_brute_force_through_a_trusted_proxy_locks_the_phone_not_the_proxy() {
        for trusted in [true, false] {
            let mut w = World::new(Transport::Udp);
            if trusted {
                w.shell.proxies = vec![w.phone.remote.ip()];
            }
            w.path = Some("<sip:198.51.100.7:40000;lr;received=sip:203.0.113.9:5062>".into());
            w.register("ana", None, 600);
            let sent = w.drain();
            let resp = Message::parse_datagram(sent[0].clone()).unwrap();
            let md5 = resp
                .headers()
                .filter(|(n, _)| HeaderName::classify(n) == HeaderName::WwwAuthenticate)
                .map(|(_, v)| Challenge::parse(v).unwrap())
                .nth(1)
                .unwrap();
            let secrets = DigestSecrets::from_password("ana", DOMAIN, PASSWORD);
            for nc in 1..=5 {
                let key = ha1(md5.algorithm, "ana", DOMAIN, "wrong password");
                let creds = md5.answer(
                    "ana",
                    &key,
                    &Method::Register,
                    &format!("sip:{DOMAIN}"),
                    "abc",
                    NonceCount::new(nc),
                );
                let lookup = w.register("ana", Some(&creds.to_string()), 600).unwrap();
                w.answer(lookup, Account::Found(Some(secrets.clone())));
                w.drain();
            }
            // beto, another phone behind the same proxy.
            w.path = Some("<sip:198.51.100.7:40000;lr;received=sip:203.0.113.44:5062>".into());
            let key = ha1(md5.algorithm, "beto", DOMAIN, PASSWORD);
            let creds = md5.answer(
                "beto",
                &key,
                &Method::Register,
                &format!("sip:{DOMAIN}"),
                "abc",
                NonceCount::new(1),
            );
            let lookup = w.register("beto", Some(&creds.to_string()), 600);
            if trusted {
                assert!(lookup.is_some(), "beto should reach the account lookup");
            } else {
                assert!(lookup.is_none(), "untrusted: the proxy's address is locked");
                assert_eq!(w.last_status(), 403);
            }
        }
    }

    #[test]
    fn a_locked_out_user_costs_no_lookup() {
        let mut w = World::new(Transport::Udp);
        w.register("ana", None, 600);
        let sent = w.drain();
        let resp = Message::parse_datagram(sent[0].clone()).unwrap();
        let md5 = resp
            .headers()
            .filter(|(n, _)| HeaderName::classify(n) == HeaderName::WwwAuthenticate)
            .map(|(_, v)| Challenge::parse(v).unwrap())
            .nth(1)
            .unwrap();
        let secrets = DigestSecrets::from_password("ana", DOMAIN, PASSWORD);
        let mut statuses = Vec::new();
        for nc in 1..=5 {
            let key = ha1(md5.algorithm, "ana", DOMAIN, "wrong password");
            let creds = md5.answer(
                "ana",
                &key,
                &Method::Register,
                &format!("sip:{DOMAIN}"),
                "abc",
                NonceCount::new(nc),
            );
            let lookup = w.register("ana", Some(&creds.to_string()), 600).unwrap();
            w.answer(lookup, Account::Found(Some(secrets.clone())));
            statuses.push(w.last_status());
        }
        assert_eq!(statuses, [401, 401, 401, 401, 403]);
        // Locked: the right password gets 403 at once, without a lookup.
        let key = ha1(md5.algorithm, "ana", DOMAIN, PASSWORD);
        let creds = md5.answer(
            "ana",
            &key,
            &Method::Register,
            &format!("sip:{DOMAIN}"),
            "abc",
            NonceCount::new(6),
        );
        assert!(w.register("ana", Some(&creds.to_string()), 600).is_none());
        assert_eq!(w.last_status(), 403);
        assert!(w.shell.pending.is_empty());
    }

    #[test]
    fn the_database_away_gets_503_and_counts_no_failure() {
        let mut w = World::new(Transport::Udp);
        for _ in 0..8 {
            w.register("ana", None, 600);
            let sent = w.drain();
            let resp = Message::parse_datagram(sent[0].clone()).unwrap();
            let md5 = resp
                .headers()
                .filter(|(n, _)| HeaderName::classify(n) == HeaderName::WwwAuthenticate)
                .map(|(_, v)| Challenge::parse(v).unwrap())
                .nth(1)
                .unwrap();
            let key = ha1(md5.algorithm, "ana", DOMAIN, PASSWORD);
            let creds = md5.answer(
                "ana",
                &key,
                &Method::Register,
                &format!("sip:{DOMAIN}"),
                "abc",
                NonceCount::new(1),
            );
            let lookup = w.register("ana", Some(&creds.to_string()), 600).unwrap();
            w.answer(lookup, Account::Unavailable);
            let sent = w.drain();
            let resp = Message::parse_datagram(sent[0].clone()).unwrap();
            assert_eq!(resp.status(), Some(503));
            assert!(resp.header_by_name("Retry-After").is_some());
        }
        // Not locked out: the right password still works.
        w.register_ok("ana");
    }

    #[test]
    fn a_silent_udp_contact_is_dropped_after_its_keepalive_times_out() {
        let mut w = World::new(Transport::Udp);
        w.register_ok("ana");
        w.sent.clear();
        // 30 s: the first OPTIONS, to the phone's NAT address.
        w.advance(Duration::from_secs(30));
        let options: Vec<&(Peer, Bytes)> = w
            .sent
            .iter()
            .filter(|(_, b)| b.starts_with(b"OPTIONS "))
            .collect();
        assert!(!options.is_empty());
        assert_eq!(options[0].0.remote, w.phone.remote);
        assert!(
            options[0]
                .1
                .starts_with(b"OPTIONS sip:ana@192.168.1.20:5060 SIP/2.0\r\n")
        );
        assert!(w.view.is_registered("ana"));
        // Nobody answers: 64·T1 later the binding is gone.
        w.advance(Duration::from_secs(33));
        assert!(!w.view.is_registered("ana"));
        assert!(w.shell.keepalives.is_empty());
    }

    #[test]
    fn an_answered_keepalive_keeps_the_binding() {
        let mut w = World::new(Transport::Udp);
        w.register_ok("ana");
        w.advance(Duration::from_secs(30));
        let (_, options) = w
            .sent
            .iter()
            .rev()
            .find(|(_, b)| b.starts_with(b"OPTIONS "))
            .cloned()
            .unwrap();
        let req = Message::parse_datagram(options).unwrap();
        let ok = hotline_sip::response::response(&req, 200)
            .to_tag("ph")
            .build();
        w.endpoint.handle_datagram(w.now, w.phone, ok);
        while let Some(e) = w.endpoint.poll_event() {
            if let Event::RequestAnswered { id, status } = e {
                assert_eq!(status, 200);
                w.shell.on_request_answered(id);
            }
        }
        assert!(w.shell.keepalives.is_empty());
        w.advance(Duration::from_secs(29));
        assert!(w.view.is_registered("ana"));
    }

    #[test]
    fn tcp_bindings_get_crlf_and_go_with_their_connection() {
        let mut w = World::new(Transport::Tcp);
        w.register_ok("ana");
        let crlf = w.advance(Duration::from_secs(90));
        assert_eq!(crlf.len(), 1);
        assert_eq!(crlf[0].connection, Some(9));
        assert!(w.sent.iter().all(|(_, b)| !b.starts_with(b"OPTIONS ")));
        w.shell.on_connection_closed(w.now, 9);
        assert!(!w.view.is_registered("ana"));

        let mut w = World::new(Transport::Tcp);
        w.register_ok("ana");
        let crlf = w.advance(Duration::from_secs(90));
        w.shell.keepalive_failed(w.now, crlf[0].binding);
        assert!(!w.view.is_registered("ana"));
    }

    #[test]
    fn bindings_expire_from_the_view() {
        let mut w = World::with(Transport::Udp, |c| c.registrar.udp_keepalive = None);
        w.register_ok("ana");
        let remote: SocketAddr = w.phone.remote;
        assert_eq!(w.view.contacts("ana")[0].source.remote, remote);
        w.advance(Duration::from_secs(599));
        assert!(w.view.is_registered("ana"));
        w.advance(Duration::from_secs(2));
        assert!(w.view.operators().is_empty());
        assert!(w.sent.iter().all(|(_, b)| !b.starts_with(b"OPTIONS ")));
    }
}
