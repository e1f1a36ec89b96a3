//! The SIP task: owns the SIP sockets and the sans-IO [`Endpoint`], feeds it
//! datagrams, framed TCP messages and timeouts, sends what it asks, and routes
//! its call events to one task per call. REGISTERs go to the registrar shell
//! ([`crate::registrations`]); their store lookups run in tasks of their own
//! and come back through a channel, so the loop never waits on the database.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use hotline_sip::endpoint::{CallHandle, Endpoint, Event, Peer, RegisterId, Transport};
use hotline_sip::message::{Framed, StreamFramer};
use hotline_sip::registrar::RegisterConfig;
use hotline_store::CallStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tracing::Instrument as _;

use crate::call::{self, CallCtx};
use crate::config::Config;
use crate::registrations::{Account, Lookup, RegistrarShell, Registrations};
use crate::signal::{CallEvent, Command};

/// How long a REGISTER's account lookup may take before it is answered 503.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Shared counters the console and shutdown read, and who is registered.
#[derive(Debug, Default)]
pub(crate) struct SipStats {
    pub(crate) running: AtomicBool,
    /// New calls are taken (false from the shutdown signal on: draining).
    pub(crate) accepting: AtomicBool,
    pub(crate) active_calls: AtomicUsize,
    /// Operators' softphone registrations (written by the SIP task only).
    pub(crate) registrations: Registrations,
}

/// Events from TCP connection tasks.
enum ConnEvent {
    Opened(u64, SocketAddr, mpsc::Sender<Bytes>),
    Framed(
        u64,
        SocketAddr,
        Result<Framed, hotline_sip::message::ParseError>,
    ),
    Closed(u64),
}

struct Conn {
    remote: SocketAddr,
    tx: mpsc::Sender<Bytes>,
}

/// Rate-limits the log lines for refused input: at most `burst` per second.
struct LogLimiter {
    window: Instant,
    count: u32,
    suppressed: u64,
}

impl LogLimiter {
    fn allow(&mut self, now: Instant) -> bool {
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            if self.suppressed > 0 {
                tracing::warn!(
                    suppressed = self.suppressed,
                    "refused SIP input: log lines suppressed"
                );
            }
            self.window = now;
            self.count = 0;
            self.suppressed = 0;
        }
        self.count += 1;
        if self.count > 10 {
            self.suppressed += 1;
            false
        } else {
            true
        }
    }
}

/// The SIP task's inputs.
pub(crate) struct SipTask {
    pub(crate) config: Arc<Config>,
    pub(crate) udp: UdpSocket,
    pub(crate) tcp: TcpListener,
    pub(crate) stats: Arc<SipStats>,
    pub(crate) rtp: Arc<crate::rtp_ports::RtpPorts>,
    pub(crate) assets: Arc<crate::prompts::Assets>,
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    pub(crate) storage: crate::storage::Storage,
    pub(crate) queue: hotline_queue::QueueHandle,
    pub(crate) media: Arc<crate::media::MediaPlane>,
    /// Cluster mode: the other nodes' bindings (operator legs to any registered phone).
    pub(crate) cluster: Option<hotline_cluster::Cluster>,
    /// `[callback]` on: what booking and placing need, and the store to schedule from.
    pub(crate) callbacks: Option<(Arc<crate::callback::Callbacks>, Arc<dyn CallStore>)>,
}

impl SipTask {
    /// Runs until `shutdown` turns true and the calls are over (or the grace
    /// time has passed, after which the remaining calls get BYE).
    pub(crate) async fn run(self, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        let SipTask {
            config,
            udp,
            tcp,
            stats,
            rtp,
            assets,
            metrics,
            storage,
            queue,
            media,
            cluster,
            callbacks,
        } = self;
        let udp = Arc::new(udp);
        let udp_local = udp.local_addr()?;
        let tcp_local = tcp.local_addr()?;
        let mut endpoint = Endpoint::new(hotline_sip::endpoint::Config {
            timers: hotline_sip::transaction::Config {
                t1: Duration::from_millis(config.sip.t1_ms),
                t2: Duration::from_millis(config.sip.t2_ms),
                t4: Duration::from_millis(config.sip.t4_ms),
            },
            user_agent: config.sip.user_agent.clone(),
            max_calls: config.sip.max_calls as usize,
            retry_after_secs: config.sip.retry_after_secs,
            seed: rand::random(),
            registrar: true,
        });
        let mut registrar = registrar_shell(&config, stats.registrations.clone());
        let users = user_store(&config).await;
        let (lookup_tx, mut lookup_rx) = mpsc::channel::<(RegisterId, Account)>(256);
        let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(1024);
        let (conn_tx, mut conn_rx) = mpsc::channel::<ConnEvent>(1024);
        let mut calls: HashMap<CallHandle, mpsc::Sender<(CallHandle, CallEvent)>> = HashMap::new();
        let mut conns: HashMap<u64, Conn> = HashMap::new();
        let mut conn_by_addr: HashMap<SocketAddr, u64> = HashMap::new();
        let mut next_conn = 1u64;
        let mut locals = LocalAddrs::new(udp_local.ip());
        let mut limiter = LogLimiter {
            window: Instant::now(),
            count: 0,
            suppressed: 0,
        };
        let shared = Shared {
            config: config.clone(),
            rtp,
            assets,
            metrics: metrics.clone(),
            storage,
            queue,
            registrations: stats.registrations.clone(),
            media: media.clone(),
            cluster,
            callbacks: callbacks.clone(),
        };
        if let Some((cb, store)) = &callbacks {
            let env = crate::callback::Env {
                callbacks: cb.clone(),
                store: store.clone(),
                writer: shared.storage.writer.clone(),
                config: config.clone(),
                commands: cmd_tx.clone(),
                queue: shared.queue.clone(),
                registrations: shared.registrations.clone(),
                cluster: shared.cluster.clone(),
                rtp: shared.rtp.clone(),
                media: media.clone(),
                assets: shared.assets.clone(),
            };
            tokio::spawn(crate::callback::run(env, shutdown.clone()));
        }
        let mut buf = vec![0u8; 65536];
        let max_msg = config.sip.max_message_bytes;
        let mut draining_since: Option<tokio::time::Instant> = None;
        let grace = Duration::from_secs(config.shutdown.grace_secs);
        let mut hung_up_all = false;
        stats.running.store(true, Ordering::Relaxed);
        stats.accepting.store(true, Ordering::Relaxed);

        loop {
            let wake = [endpoint.poll_timeout(), registrar.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            let drain_deadline = draining_since
                .map(|t| t + grace)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                r = udp.recv_from(&mut buf) => {
                    let now = Instant::now();
                    match r {
                        Ok((n, from)) => {
                            if n > max_msg {
                                if limiter.allow(now) {
                                    tracing::warn!(%from, bytes = n, "SIP datagram over sip.max_message_bytes dropped");
                                }
                            } else {
                                let peer = Peer {
                                    transport: Transport::Udp,
                                    remote: from,
                                    local: locals.toward(from.ip(), udp_local.port()),
                                    connection: None,
                                };
                                admission(&media, &mut endpoint);
                                // Copy: a Message keeps its buffer alive for the transaction's life.
                                endpoint.handle_datagram(now, peer, Bytes::copy_from_slice(&buf[..n]));
                            }
                        }
                        Err(e) => tracing::debug!(error = %e, "udp recv"),
                    }
                }
                r = tcp.accept() => {
                    if let Ok((stream, from)) = r {
                        let id = next_conn;
                        next_conn += 1;
                        spawn_conn(id, stream, from, conn_tx.clone(), max_msg, Duration::from_secs(config.sip.tcp_idle_secs));
                    }
                }
                Some(ev) = conn_rx.recv() => {
                    let now = Instant::now();
                    match ev {
                        ConnEvent::Opened(id, remote, tx) => {
                            conn_by_addr.insert(remote, id);
                            conns.insert(id, Conn { remote, tx });
                        }
                        ConnEvent::Framed(id, remote, Ok(Framed::Message(msg))) => {
                            let peer = Peer {
                                transport: Transport::Tcp,
                                remote,
                                local: locals.toward(remote.ip(), tcp_local.port()),
                                connection: Some(id),
                            };
                            admission(&media, &mut endpoint);
                            endpoint.handle_message(now, peer, msg);
                        }
                        ConnEvent::Framed(id, _, Ok(Framed::Ping)) => {
                            // RFC 5626 §3.5.1: answer CRLFCRLF with CRLF.
                            if let Some(c) = conns.get(&id) {
                                let _ = c.tx.try_send(Bytes::from_static(b"\r\n"));
                            }
                        }
                        ConnEvent::Framed(id, remote, Err(e)) => {
                            if limiter.allow(now) {
                                tracing::warn!(%remote, error = %e, "unframeable SIP over TCP; closing the connection");
                            }
                            if let Some(c) = conns.remove(&id) {
                                conn_by_addr.remove(&c.remote);
                            }
                        }
                        ConnEvent::Closed(id) => {
                            if let Some(c) = conns.remove(&id)
                                && conn_by_addr.get(&c.remote) == Some(&id)
                            {
                                conn_by_addr.remove(&c.remote);
                            }
                            registrar.on_connection_closed(now, id);
                        }
                    }
                }
                Some(cmd) = cmd_rx.recv() => {
                    let now = Instant::now();
                    match cmd {
                        Command::Ringing(c) => endpoint.ringing(now, c),
                        Command::Answer(c, sdp) => endpoint.answer(now, c, sdp),
                        Command::Reject(c, code, warning) => {
                            let extra: Vec<(&str, &str)> = warning.as_deref().map(|w| ("Warning", w)).into_iter().collect();
                            endpoint.reject(now, c, code, &extra)
                        }
                        Command::Hangup(c) => endpoint.hangup(now, c),
                        Command::AcceptReinvite(c, sdp) => endpoint.accept_reinvite(now, c, sdp),
                        Command::RejectReinvite(c, code) => endpoint.reject_reinvite(now, c, code),
                        Command::Invite { parent, mut call, placed } => {
                            // Only for a call still in progress (its task is listening).
                            if let Some(events) = calls.get(&parent).cloned() {
                                // A leg to another node's binding: our address toward its proxy.
                                if call.peer.local.port() == 0 {
                                    call.peer.local = locals.toward(call.peer.remote.ip(), udp_local.port());
                                }
                                let handle = endpoint.invite(now, *call);
                                calls.insert(handle, events);
                                let _ = placed.send(handle);
                            }
                        }
                        Command::Originate { mut call, events, placed } => {
                            if draining_since.is_none() {
                                if call.peer.local.port() == 0 {
                                    let port = match call.peer.transport {
                                        Transport::Udp => udp_local.port(),
                                        Transport::Tcp => tcp_local.port(),
                                    };
                                    call.peer.local = locals.toward(call.peer.remote.ip(), port);
                                }
                                let handle = endpoint.invite(now, *call);
                                calls.insert(handle, events);
                                let _ = placed.send(handle);
                            }
                        }
                    }
                }
                Some((id, account)) = lookup_rx.recv() => {
                    registrar.on_account(Instant::now(), SystemTime::now(), &mut endpoint, id, account);
                }
                _ = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    endpoint.handle_timeout(now);
                    let due = registrar.poll_timeout().is_some_and(|t| t <= now);
                    let crlf = if due { registrar.handle_timeout(now, &mut endpoint) } else { Vec::new() };
                    for k in crlf {
                        // RFC 5626 §4.4.1 ping on the binding's own connection.
                        let written = k
                            .connection
                            .and_then(|id| conns.get(&id))
                            .is_some_and(|c| c.tx.try_send(Bytes::from_static(b"\r\n\r\n")).is_ok());
                        if !written {
                            registrar.keepalive_failed(now, k.binding);
                        }
                    }
                }
                r = shutdown.changed(), if draining_since.is_none() => {
                    if r.is_err() || *shutdown.borrow() {
                        tracing::info!(calls = endpoint.active_calls(), grace_secs = grace.as_secs(), "shutting down: new calls get 503");
                        endpoint.set_accepting(false);
                        stats.accepting.store(false, Ordering::Relaxed);
                        draining_since = Some(tokio::time::Instant::now());
                    }
                }
                _ = tokio::time::sleep_until(drain_deadline), if draining_since.is_some() && !hung_up_all => {
                    tracing::info!(calls = endpoint.active_calls(), "grace time over: hanging up the remaining calls");
                    let now = Instant::now();
                    let handles: Vec<CallHandle> = calls.keys().copied().collect();
                    for c in handles {
                        endpoint.hangup(now, c);
                    }
                    hung_up_all = true;
                }
            }

            // Drain the endpoint's output before waiting again (answering a
            // REGISTER makes more).
            loop {
                while let Some(t) = endpoint.poll_transmit() {
                    send(
                        &udp,
                        &t.peer,
                        t.payload,
                        &conns,
                        &conn_by_addr,
                        &conn_tx,
                        &mut next_conn,
                        max_msg,
                        &config,
                    )
                    .await;
                }
                let Some(ev) = endpoint.poll_event() else {
                    break;
                };
                match ev {
                    Event::Register {
                        id,
                        request,
                        peer,
                        to_tag,
                    } => {
                        let now = Instant::now();
                        let wall = SystemTime::now();
                        if let Some(lookup) = registrar.on_register(
                            now,
                            wall,
                            &mut endpoint,
                            id,
                            request,
                            peer,
                            to_tag,
                        ) {
                            spawn_lookup(users.clone(), lookup, lookup_tx.clone());
                        }
                    }
                    Event::RequestAnswered { id, .. } => registrar.on_request_answered(id),
                    Event::RequestTimedOut { id } => {
                        registrar.on_request_timed_out(Instant::now(), id)
                    }
                    ev => handle_event(ev, &mut calls, &cmd_tx, &shared, &mut limiter, &locals),
                }
            }
            stats
                .active_calls
                .store(endpoint.active_calls(), Ordering::Relaxed);
            metrics
                .active_calls
                .store(endpoint.active_calls() as u64, Ordering::Relaxed);

            // Operator legs count too: their CANCEL or BYE must go out before we stop.
            if draining_since.is_some()
                && endpoint.active_calls() == 0
                && endpoint.outgoing_calls() == 0
            {
                // Let the BYE transactions finish (bounded), then stop.
                if endpoint.pending_requests() == 0 || hung_up_all_done(draining_since, grace) {
                    break;
                }
            }
        }
        stats.running.store(false, Ordering::Relaxed);
        stats.accepting.store(false, Ordering::Relaxed);
        Ok(())
    }
}

/// The registrar shell for `sip.domain` (also the digest realm), its nonce
/// key derived from the deployment secret in the data dir.
fn registrar_shell(config: &Config, view: Registrations) -> RegistrarShell {
    let key = match crate::registrations::nonce_key(
        &config.storage.data_dir,
        &config.cluster.node_id,
    ) {
        Ok(key) => key,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "no deployment secret: digest nonces use a random key and will not survive a restart");
            rand::random()
        }
    };
    let mut register = RegisterConfig::new(config.sip.domain.clone(), key);
    register.server = config.sip.user_agent.clone();
    register.digest.seed = rand::random();
    // `check` validated the names.
    register.digest.algorithms = config
        .sip
        .digest_algorithms
        .iter()
        .filter_map(|a| match a.as_str() {
            "SHA-256" => Some(hotline_sip::digest::Algorithm::Sha256),
            "MD5" => Some(hotline_sip::digest::Algorithm::Md5),
            _ => None,
        })
        .collect();
    RegistrarShell::new(register, config.sip.retry_after_secs, view)
        .with_trusted_proxies(config.sip.trusted_proxies.clone())
}

/// Admission: the media shards' verdict, read before every message (one atomic load
/// per shard) so that the first INVITE after they fall behind gets 503.
fn admission(media: &crate::media::MediaPlane, endpoint: &mut Endpoint) {
    let refusing = media.refusing();
    if refusing != endpoint.is_overloaded() {
        endpoint.set_overloaded(refusing);
    }
}

/// The SIP task's own small pool on the database, for REGISTER's account
/// lookups (they never queue behind the console's queries). `None` if it
/// cannot be opened: REGISTERs with credentials then get 503.
async fn user_store(config: &Config) -> Option<Arc<dyn CallStore>> {
    let url = config.effective_database_url();
    let options = hotline_store::ConnectOptions {
        sqlite: hotline_store::SqliteSettings {
            max_connections: 2,
            ..Default::default()
        },
        postgres: hotline_store::PgSettings {
            max_connections: 2,
            ..Default::default()
        },
    };
    match hotline_store::connect_with(url.as_str(), &options).await {
        Ok(store) => Some(store),
        Err(e) => {
            tracing::error!(error = %e, "SIP registration cannot reach the database; REGISTERs get 503");
            None
        }
    }
}

/// Looks up a REGISTER's user in a task of its own and reports back.
fn spawn_lookup(
    users: Option<Arc<dyn CallStore>>,
    lookup: Lookup,
    done: mpsc::Sender<(RegisterId, Account)>,
) {
    tokio::spawn(async move {
        let account = match users {
            None => Account::Unavailable,
            Some(store) => {
                match tokio::time::timeout(LOOKUP_TIMEOUT, store.get_user(&lookup.name)).await {
                    Ok(Ok(user)) => Account::of_user(user),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "REGISTER: user lookup failed; answering 503");
                        Account::Unavailable
                    }
                    Err(_) => {
                        tracing::warn!("REGISTER: user lookup timed out; answering 503");
                        Account::Unavailable
                    }
                }
            }
        };
        let _ = done.send((lookup.id, account)).await;
    });
}

/// After the grace time, give outstanding BYEs a few seconds and stop.
/// (Server transactions absorbing retransmissions are not waited for.)
fn hung_up_all_done(since: Option<tokio::time::Instant>, grace: Duration) -> bool {
    since.is_some_and(|s| s.elapsed() > grace + Duration::from_secs(4))
}

/// What every call task gets.
struct Shared {
    config: Arc<Config>,
    rtp: Arc<crate::rtp_ports::RtpPorts>,
    assets: Arc<crate::prompts::Assets>,
    metrics: Arc<crate::metrics::Metrics>,
    storage: crate::storage::Storage,
    queue: hotline_queue::QueueHandle,
    registrations: crate::registrations::Registrations,
    media: Arc<crate::media::MediaPlane>,
    cluster: Option<hotline_cluster::Cluster>,
    callbacks: Option<(Arc<crate::callback::Callbacks>, Arc<dyn CallStore>)>,
}

fn handle_event(
    ev: Event,
    calls: &mut HashMap<CallHandle, mpsc::Sender<(CallHandle, CallEvent)>>,
    cmd_tx: &mpsc::Sender<Command>,
    shared: &Shared,
    limiter: &mut LogLimiter,
    locals: &LocalAddrs,
) {
    let config = &shared.config;
    match ev {
        Event::IncomingCall(inc) => {
            let (tx, rx) = mpsc::channel(32);
            calls.insert(inc.call, tx.clone());
            let media_ip = config.rtp.public_address.unwrap_or_else(|| {
                locals
                    .cached(inc.peer.remote.ip())
                    .unwrap_or(inc.peer.local.ip())
            });
            let ctx = CallCtx {
                handle: inc.call,
                config: config.clone(),
                commands: cmd_tx.clone(),
                rtp: shared.rtp.clone(),
                media_ip,
                media: shared.media.clone(),
                assets: shared.assets.clone(),
                metrics: shared.metrics.clone(),
                storage: shared.storage.clone(),
                queue: shared.queue.clone(),
                registrations: shared.registrations.clone(),
                cluster: shared.cluster.clone(),
                callbacks: shared.callbacks.clone(),
            };
            let span = tracing::info_span!("call", id = inc.call.0);
            tokio::spawn(call::run(ctx, inc, rx).instrument(span));
        }
        Event::Progress { call, status, .. } => {
            forward(calls, call, CallEvent::Progress(status));
        }
        Event::Answered { call, sdp } => forward(calls, call, CallEvent::Answered(sdp)),
        Event::Acked { call, sdp } => forward(calls, call, CallEvent::Acked(sdp)),
        Event::ReInvite { call, sdp } => forward(calls, call, CallEvent::ReInvite(sdp)),
        Event::Info {
            call,
            content_type,
            body,
        } => forward(calls, call, CallEvent::Info(content_type, body)),
        Event::Ended { call, reason } => {
            forward(calls, call, CallEvent::Ended(reason));
            calls.remove(&call);
        }
        Event::Refused {
            peer,
            status,
            reason,
        } => {
            if reason == "overloaded" {
                shared.metrics.overload_refused.inc();
            }
            if limiter.allow(Instant::now()) {
                tracing::info!(remote = %peer.remote, status = ?status, %reason, "SIP request refused");
            }
        }
        // The SIP loop gives these to the registrar shell.
        Event::Register { .. } | Event::RequestAnswered { .. } | Event::RequestTimedOut { .. } => {}
    }
}

fn forward(
    calls: &HashMap<CallHandle, mpsc::Sender<(CallHandle, CallEvent)>>,
    call: CallHandle,
    ev: CallEvent,
) {
    let Some(tx) = calls.get(&call) else { return };
    match tx.try_send((call, ev)) {
        Ok(()) => {}
        // The call task has ended (e.g. the end of a leg it hung up itself).
        Err(mpsc::error::TrySendError::Closed(_)) => {}
        Err(mpsc::error::TrySendError::Full((call, ev @ CallEvent::Ended(_)))) => {
            // The end of a call is never dropped: it closes recordings and the row.
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = tx.send((call, ev)).await;
            });
        }
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::warn!(call = call.0, "call task not keeping up; event dropped");
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn send(
    udp: &UdpSocket,
    peer: &Peer,
    payload: Bytes,
    conns: &HashMap<u64, Conn>,
    conn_by_addr: &HashMap<SocketAddr, u64>,
    conn_tx: &mpsc::Sender<ConnEvent>,
    next_conn: &mut u64,
    max_msg: usize,
    config: &Config,
) {
    match peer.transport {
        Transport::Udp => {
            if let Err(e) = udp.send_to(&payload, peer.remote).await {
                tracing::debug!(remote = %peer.remote, error = %e, "udp send");
            }
        }
        Transport::Tcp => {
            let conn = peer
                .connection
                .and_then(|id| conns.get(&id))
                .or_else(|| conn_by_addr.get(&peer.remote).and_then(|id| conns.get(id)));
            match conn {
                Some(c) => {
                    if c.tx.try_send(payload).is_err() {
                        tracing::debug!(remote = %peer.remote, "tcp connection backlog full; message dropped");
                    }
                }
                None => {
                    // The connection is gone: open a new one (RFC 3261 §18.2.2).
                    let id = *next_conn;
                    *next_conn += 1;
                    let remote = peer.remote;
                    let conn_tx = conn_tx.clone();
                    let idle = Duration::from_secs(config.sip.tcp_idle_secs);
                    tokio::spawn(async move {
                        match tokio::time::timeout(
                            Duration::from_secs(5),
                            TcpStream::connect(remote),
                        )
                        .await
                        {
                            Ok(Ok(stream)) => {
                                let tx = spawn_conn(id, stream, remote, conn_tx, max_msg, idle);
                                let _ = tx.send(payload).await;
                            }
                            _ => tracing::debug!(%remote, "tcp connect failed"),
                        }
                    });
                }
            }
        }
    }
}

/// Starts the reader and writer of a TCP connection; returns its writer queue.
fn spawn_conn(
    id: u64,
    stream: TcpStream,
    remote: SocketAddr,
    events: mpsc::Sender<ConnEvent>,
    max_msg: usize,
    idle: Duration,
) -> mpsc::Sender<Bytes> {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(256);
    let opened = events.clone();
    let tx2 = tx.clone();
    tokio::spawn(async move {
        if opened
            .send(ConnEvent::Opened(id, remote, tx2))
            .await
            .is_err()
        {
            return;
        }
        let mut framer = StreamFramer::new(max_msg);
        let mut buf = vec![0u8; 16384];
        let writer = tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                if wr.write_all(&b).await.is_err() {
                    break;
                }
            }
        });
        'read: loop {
            let n = match tokio::time::timeout(idle, rd.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => n,
            };
            framer.extend(&buf[..n]);
            loop {
                match framer.next() {
                    Ok(None) => break,
                    Ok(Some(f)) => {
                        if opened
                            .send(ConnEvent::Framed(id, remote, Ok(f)))
                            .await
                            .is_err()
                        {
                            break 'read;
                        }
                    }
                    Err(e) => {
                        let _ = opened.send(ConnEvent::Framed(id, remote, Err(e))).await;
                        break 'read;
                    }
                }
            }
        }
        let _ = opened.send(ConnEvent::Closed(id)).await;
        writer.abort();
    });
    tx
}

/// Our address as seen from a peer: the listening address when it is
/// specific, else the source address the kernel picks toward the peer.
pub(crate) struct LocalAddrs {
    bound: IpAddr,
    cache: HashMap<IpAddr, IpAddr>,
}

impl LocalAddrs {
    fn new(bound: IpAddr) -> Self {
        Self {
            bound,
            cache: HashMap::new(),
        }
    }

    fn toward(&mut self, remote: IpAddr, port: u16) -> SocketAddr {
        if !self.bound.is_unspecified() {
            return SocketAddr::new(self.bound, port);
        }
        if self.cache.len() > 10_000 {
            self.cache.clear();
        }
        let ip = *self
            .cache
            .entry(remote)
            .or_insert_with(|| route_source(remote).unwrap_or(self.bound));
        SocketAddr::new(ip, port)
    }

    fn cached(&self, remote: IpAddr) -> Option<IpAddr> {
        if !self.bound.is_unspecified() {
            return Some(self.bound);
        }
        self.cache.get(&remote).copied()
    }
}

/// The local address the kernel would use to reach `remote` (a connected UDP
/// socket sends nothing).
fn route_source(remote: IpAddr) -> Option<IpAddr> {
    let any: SocketAddr = if remote.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .ok()?;
    let s = std::net::UdpSocket::bind(any).ok()?;
    s.connect(SocketAddr::new(remote, 9)).ok()?;
    Some(s.local_addr().ok()?.ip())
}
