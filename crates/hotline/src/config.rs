//! Configuration file and command-line overrides.
//!
//! The file (`config/hotline.toml` by default) is read once at start-up into [`Config`]: every key has a
//! named default, so a missing key, a missing section and even a missing file at the default path give a
//! working server. Values are parsed into types here ([`SocketAddr`], [`RtpPorts`], [`Cidr`],
//! [`DatabaseUrl`], [`LogFormat`]), so the rest of the program never sees a string it has to check.
//! Flags from the command line ([`Overrides`]) win over the file.
//!
//! Every [`ConfigError`] names the file and the dotted key (`sip.max_calls`), and the line when the key is
//! in the file: the document is parsed once with spans, and the span of a deserialization error is mapped
//! back to the key that holds it.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::de::Visitor;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Where `hotline` looks for its configuration when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "config/hotline.toml";

/// The whole configuration file. Sections appear in the file in this order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `time_zone` (top level, before the first section): the hotline's time zone, an IANA
    /// name (default `America/Lima`). Every day boundary (the board, its charts, "today", the
    /// recordings' date filters, the callback windows) and every time a page or an export
    /// writes is in this zone; the API keeps RFC 3339 UTC.
    #[serde(default)]
    pub time_zone: TimeZoneName,
    /// `[sip]`: signalling.
    #[serde(default)]
    pub sip: SipConfig,
    /// `[rtp]`: media.
    #[serde(default)]
    pub rtp: RtpConfig,
    /// `[http]`: the console and API.
    #[serde(default)]
    pub http: HttpConfig,
    /// `[storage]`: recordings and the database.
    #[serde(default)]
    pub storage: StorageConfig,
    /// `[ivr]`: prompts.
    #[serde(default)]
    pub ivr: IvrConfig,
    /// `[calls]`: limits on a single call.
    #[serde(default)]
    pub calls: CallsConfig,
    /// `[media]`: the media shards and admission control.
    #[serde(default)]
    pub media: MediaConfig,
    /// `[queue]`: the operator queue.
    #[serde(default)]
    pub queue: QueueSettings,
    /// `[privacy]`: what is kept of the caller's number.
    #[serde(default)]
    pub privacy: PrivacyConfig,
    /// `[shutdown]`: what SIGINT/SIGTERM does.
    #[serde(default)]
    pub shutdown: ShutdownConfig,
    /// `[log]`: logging.
    #[serde(default)]
    pub log: LogConfig,
    /// `[cluster]`: several nodes behind Kamailio sharing PostgreSQL and a storage root.
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// `[callback]`: safe callbacks through the carrier. Absent: callbacks are off (the
    /// flow never offers one).
    #[serde(default)]
    pub callback: Option<CallbackConfig>,
}

/// `[callback]`: the hotline calls back callers who asked for it (operator first, then the
/// caller through the carrier's gateway, with a neutral caller ID).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackConfig {
    /// `callback.gateway`: the carrier's SIP address for outgoing calls, `IP:PORT` (no DNS).
    /// The caller's INVITE goes to `sip:<number>@<gateway>`. Required.
    #[serde(deserialize_with = "de_socket_addr")]
    pub gateway: SocketAddr,
    /// `callback.transport`: `"udp"` (default) or `"tcp"` to the gateway.
    #[serde(default)]
    pub transport: GatewayTransport,
    /// `callback.username`: the digest user name for the gateway's 401/407 challenges.
    /// Empty (default): challenges are not answered.
    #[serde(default)]
    pub username: String,
    /// `callback.password_file`: a file holding the digest password (first line). Keep it
    /// outside the repository and the data dir, readable by the hotline only.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// `callback.password_env`: or the name of an environment variable holding it.
    #[serde(default)]
    pub password_env: String,
    /// `callback.caller_id`: the user part of From on calls to callers (a neutral number
    /// the carrier allows, digits and an optional leading `+`). Required.
    pub caller_id: String,
    /// `callback.display_name`: the display name in From (neutral: never the hotline's
    /// name). Default empty: none.
    #[serde(default)]
    pub display_name: String,
    /// `callback.max_attempts`: calls to the caller before the callback is given up.
    /// Default 3.
    #[serde(default = "defaults::callback_max_attempts")]
    pub max_attempts: u32,
    /// `callback.retry_interval_secs`: time between attempts. Default 900.
    #[serde(default = "defaults::callback_retry_interval_secs")]
    pub retry_interval_secs: u64,
    /// `callback.ring_timeout_secs`: how long the caller's phone rings, kept shorter than a
    /// voicemail's pick-up (at most 25 s) so that no message is ever left. Default 18.
    #[serde(default = "defaults::callback_ring_timeout_secs")]
    pub ring_timeout_secs: u64,
    /// `callback.expiry_secs`: an "as soon as possible" callback not placed within this
    /// long expires (a window's callback expires when its window closes). Default 86400.
    #[serde(default = "defaults::callback_expiry_secs")]
    pub expiry_secs: u64,
    /// `callback.key_file`: the 32-byte key (raw or 64 hex digits) numbers are sealed with
    /// in the store. Never inside `storage.data_dir` (a copy of the data dir must not hold
    /// the key beside the numbers). Required.
    pub key_file: PathBuf,
    /// `callback.safety_prompt`: the prompt id played to the operator before the caller is
    /// rung (the safety script). Default `callback-safety-script`.
    #[serde(default = "defaults::callback_safety_prompt")]
    pub safety_prompt: String,
    /// `callback.windows`: name → `"HH:MM-HH:MM"` in the hotline's `time_zone` (Lima, UTC−5, by default), the windows the flow's
    /// `callback` node offers besides `asap`. Default none.
    #[serde(default)]
    pub windows: std::collections::BTreeMap<String, CallbackWindow>,
}

/// `callback.transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayTransport {
    #[default]
    Udp,
    Tcp,
}

/// A `callback.windows` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallbackWindow(pub crate::callback::Window);

impl<'de> Deserialize<'de> for CallbackWindow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<CallbackWindow, D::Error> {
        d.deserialize_str(ParseVisitor::new("a window such as \"09:00-12:00\"", |s| {
            s.parse().map(CallbackWindow).map_err(|e| e.to_string())
        }))
    }
}

impl Serialize for CallbackWindow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl CallbackConfig {
    /// The digest password from `password_file` or `password_env` (`None` without a
    /// `username`).
    pub fn password(&self) -> Result<Option<String>, String> {
        if self.username.is_empty() {
            return Ok(None);
        }
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("callback.password_file {}: {e}", path.display()))?;
            return Ok(Some(text.lines().next().unwrap_or_default().to_owned()));
        }
        std::env::var(&self.password_env)
            .map(Some)
            .map_err(|_| format!("callback.password_env: ${} is not set", self.password_env))
    }

    fn check(&self, data_dir: &Path, user_agent: &str) -> Result<(), (&'static str, String)> {
        let id_ok = !self.caller_id.is_empty()
            && self
                .caller_id
                .trim_start_matches('+')
                .bytes()
                .all(|b| b.is_ascii_digit())
            && self.caller_id.trim_start_matches('+').len() >= 3;
        if !id_ok {
            return Err((
                "callback.caller_id",
                format!(
                    "{:?}: use digits, optionally with a leading +",
                    self.caller_id
                ),
            ));
        }
        if self.display_name.to_lowercase().contains("hotline")
            || self
                .display_name
                .contains(|c: char| c.is_control() || c == '"')
        {
            return Err((
                "callback.display_name",
                "must be neutral: not the hotline's name, no quotes or control characters".into(),
            ));
        }
        if user_agent.to_lowercase().contains("hotline") {
            return Err((
                "sip.user_agent",
                "with [callback] on, calls to callers carry User-Agent: set a neutral sip.user_agent (not naming the hotline)".into(),
            ));
        }
        if self.max_attempts == 0 {
            return Err(("callback.max_attempts", "must be at least 1".into()));
        }
        if self.retry_interval_secs == 0 {
            return Err(("callback.retry_interval_secs", "must be at least 1".into()));
        }
        if !(1..=25).contains(&self.ring_timeout_secs) {
            return Err((
                "callback.ring_timeout_secs",
                "must be from 1 to 25: shorter than a voicemail's pick-up".into(),
            ));
        }
        if self.expiry_secs == 0 {
            return Err(("callback.expiry_secs", "must be at least 1".into()));
        }
        if !self.username.is_empty() {
            match (&self.password_file, self.password_env.is_empty()) {
                (Some(_), true) | (None, false) => {}
                _ => {
                    return Err((
                        "callback.username",
                        "give exactly one of callback.password_file and callback.password_env"
                            .into(),
                    ));
                }
            }
        }
        if let Some(p) = &self.password_file
            && inside(p, data_dir)
        {
            return Err((
                "callback.password_file",
                "must not be inside storage.data_dir".into(),
            ));
        }
        if inside(&self.key_file, data_dir) {
            return Err((
                "callback.key_file",
                "must not be inside storage.data_dir: a copy of the data must not carry the key"
                    .into(),
            ));
        }
        if let Some(bad) = self.windows.keys().find(|n| {
            n.is_empty()
                || n.as_str() == "asap"
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        }) {
            return Err((
                "callback.windows",
                format!("{bad:?}: a window name is a-z, 0-9, - and _, and not \"asap\""),
            ));
        }
        Ok(())
    }
}

/// Whether `path` is `dir` or under it (made absolute against the working directory, and
/// with symlinks resolved where they exist).
fn inside(path: &Path, dir: &Path) -> bool {
    let absolute = |p: &Path| -> PathBuf {
        let p = if p.is_absolute() {
            p.to_owned()
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        };
        // Resolve what exists (the file, else its directory).
        p.canonicalize()
            .or_else(|_| {
                p.parent()
                    .and_then(|d| d.canonicalize().ok())
                    .zip(p.file_name())
                    .map(|(d, f)| d.join(f))
                    .ok_or(())
            })
            .unwrap_or(p)
    };
    absolute(path).starts_with(absolute(dir))
}

/// `[cluster]`: this node's place in a cluster. Empty `node_id` (the default) is the
/// one-process hotline: SQLite or PostgreSQL, in-process queue, nothing else to start.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// `cluster.node_id`: this node's name, unique in the cluster (1-32 of `a-z`, `0-9`,
    /// `-`, a letter first). Set, it needs a `postgres://` `storage.database_url`; the node then keeps its
    /// spool under `<data_dir>/nodes/<node_id>/` and its recordings under
    /// `<data_dir>/recordings/<node_id>/`, shares registrations and the operator queue
    /// through PostgreSQL, and adopts a dead node's unfinished recordings. Default empty.
    #[serde(default)]
    pub node_id: String,
    /// `cluster.lease_secs`: a node that has not renewed its lease (every second) for this
    /// long is dead: its queued callers are dropped from the queue, its operators' calls
    /// end, and a surviving node adopts its unfinished recordings. Default 10.
    #[serde(default = "defaults::cluster_lease_secs")]
    pub lease_secs: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node_id: String::new(),
            lease_secs: defaults::cluster_lease_secs(),
        }
    }
}

impl ClusterConfig {
    /// Whether this node is one of a cluster.
    pub fn enabled(&self) -> bool {
        !self.node_id.is_empty()
    }

    /// This node's id in a cluster, `None` for the one-process hotline.
    pub fn node(&self) -> Option<&str> {
        self.enabled().then_some(self.node_id.as_str())
    }

    /// `lease_secs` as a [`Duration`].
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }
}

/// `[sip]`: the SIP listener and the limits of the SIP stack.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    /// `sip.listen`: address for SIP over UDP and TCP (both on the same address and port).
    /// Port 0 picks a free port. Default `0.0.0.0:5060`.
    #[serde(default = "defaults::sip_listen", deserialize_with = "de_socket_addr")]
    pub listen: SocketAddr,
    /// `sip.domain`: our SIP domain; operators register as `sip:NAME@domain`. Default `hotline.local`.
    #[serde(default = "defaults::sip_domain")]
    pub domain: String,
    /// `sip.trunk_sources`: IP addresses or CIDR networks allowed to place calls (send INVITE).
    /// Empty allows any source. Default empty.
    #[serde(default = "defaults::sip_trunk_sources")]
    pub trunk_sources: Vec<Cidr>,
    /// `sip.max_calls`: calls in progress at once; an INVITE over the limit gets 503. Default 500.
    #[serde(default = "defaults::sip_max_calls")]
    pub max_calls: u32,
    /// `sip.retry_after_secs`: the `Retry-After` sent with a 503. Default 30.
    #[serde(default = "defaults::sip_retry_after_secs")]
    pub retry_after_secs: u32,
    /// `sip.answer_delay_ms`: how long a call rings (180) before we answer it. Default 0.
    #[serde(default = "defaults::sip_answer_delay_ms")]
    pub answer_delay_ms: u64,
    /// `sip.t1_ms`: RFC 3261 T1, the round-trip estimate (§17.1.1.1). Default 500. At least 1.
    #[serde(default = "defaults::sip_t1_ms")]
    pub t1_ms: u64,
    /// `sip.t2_ms`: RFC 3261 T2, the longest retransmit interval for non-INVITE requests and
    /// INVITE responses. Default 4000. At least `t1_ms`.
    #[serde(default = "defaults::sip_t2_ms")]
    pub t2_ms: u64,
    /// `sip.t4_ms`: RFC 3261 T4, the longest time a message stays in the network. Default 5000.
    #[serde(default = "defaults::sip_t4_ms")]
    pub t4_ms: u64,
    /// `sip.max_message_bytes`: a bigger SIP message is rejected (over TCP, 413 and the connection is
    /// closed). Default 65535. At least 1500.
    #[serde(default = "defaults::sip_max_message_bytes")]
    pub max_message_bytes: usize,
    /// `sip.tcp_idle_secs`: a TCP connection with no traffic for this long is closed. Default 600. At least 1.
    #[serde(default = "defaults::sip_tcp_idle_secs")]
    pub tcp_idle_secs: u64,
    /// `sip.user_agent`: value of the `Server` and `User-Agent` headers we send. Default `hotline`.
    #[serde(default = "defaults::sip_user_agent")]
    pub user_agent: String,
    /// `sip.digest_algorithms`: the digest algorithms REGISTER challenges offer, in order of
    /// preference: `"SHA-256"` (RFC 8760) and/or `"MD5"`. Some softphones (baresip 1.0, sipp)
    /// refuse a challenge that offers SHA-256 at all: list only `"MD5"` for them. Default
    /// `["SHA-256", "MD5"]`.
    #[serde(default = "defaults::sip_digest_algorithms")]
    pub digest_algorithms: Vec<String>,
    /// `sip.trusted_proxies`: IP addresses of the SIP proxies in front of this node (Kamailio
    /// in a cluster). A REGISTER from one of them that carries the proxy's Path with a
    /// `received` parameter is counted against the phone's address there, not the proxy's:
    /// by the digest lockout and in the fail2ban line (one attacker must not lock every
    /// operator out, nor get the proxy banned). Only a REGISTER from one of them has its Path
    /// (RFC 3327) kept as the route to the phone, which other nodes of a cluster need to ring
    /// it. Default empty.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// `[rtp]`: media ports and the address we announce in SDP.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RtpConfig {
    /// `rtp.port_range`: UDP ports for RTP, `LOW-HIGH` inclusive; each call takes an even port.
    /// Default `10000-20000`.
    #[serde(default = "defaults::rtp_port_range")]
    pub port_range: RtpPorts,
    /// `rtp.public_address`: the IP address written in SDP (`c=` line), e.g. behind 1:1 NAT.
    /// Empty (`None`) uses the local address that reaches the caller. Default empty.
    #[serde(
        default = "defaults::rtp_public_address",
        deserialize_with = "de_optional_ip",
        serialize_with = "ser_none_as_empty"
    )]
    pub public_address: Option<IpAddr>,
}

/// `[http]`: the console and the JSON API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `http.listen`: address of the console and API. Port 0 picks a free port. Default `127.0.0.1:8080`.
    #[serde(default = "defaults::http_listen", deserialize_with = "de_socket_addr")]
    pub listen: SocketAddr,
    /// `http.secure_cookies`: mark the console's cookies `Secure` (sent over HTTPS only; browsers
    /// also accept them from `http://localhost`). Turn off only to serve the console over plain
    /// HTTP on a trusted network. Default `true`.
    #[serde(default = "defaults::http_secure_cookies")]
    pub secure_cookies: bool,
    /// `http.trusted_proxies`: IP addresses of reverse proxies (the TLS front) whose
    /// `X-Forwarded-For` header names the client, for the audit log and the sign-in refusals.
    /// Without it, behind a proxy every client has the proxy's address, and five failed
    /// sign-ins by anyone would refuse everyone. Default empty (the header is not believed).
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// `[storage]`: where recordings and the database live.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `storage.data_dir`: directory for recordings and the default SQLite file. Default `data`.
    #[serde(default = "defaults::storage_data_dir")]
    pub data_dir: PathBuf,
    /// `storage.database_url`: `sqlite://…`, `postgres://…` or `postgresql://…`. Empty (`None`) means
    /// `sqlite://<data_dir>/hotline.db`; see [`Config::effective_database_url`]. Default empty.
    #[serde(
        default = "defaults::storage_database_url",
        deserialize_with = "de_optional_database_url",
        serialize_with = "ser_none_as_empty"
    )]
    pub database_url: Option<DatabaseUrl>,
}

/// `[ivr]`: the voice menu.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IvrConfig {
    /// `ivr.prompts_dir`: directory of prompts, `<prompts_dir>/<lang>/<prompt-id>.wav`. Default `prompts`.
    #[serde(default = "defaults::ivr_prompts_dir")]
    pub prompts_dir: PathBuf,
    /// `ivr.flow`: the call flow (menus, recording, queue), see `config/flow.toml`. Default
    /// `config/flow.toml`.
    #[serde(default = "defaults::ivr_flow")]
    pub flow: PathBuf,
    /// `ivr.silence_threshold_dbfs`: while recording a message, audio below this level counts as
    /// silence (for the flow's `silence_ms`). Default -45.
    #[serde(default = "defaults::ivr_silence_threshold_dbfs")]
    pub silence_threshold_dbfs: i32,
}

/// `[privacy]`: what is kept of the caller's number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// `privacy.caller_id`: `pseudonym` (default: a keyed HMAC-SHA256 of the number with a
    /// per-deployment secret in `<data_dir>/secret.key`, so repeat callers can be linked without
    /// keeping the number), `full` (the number is stored), or `none` (nothing is stored). The
    /// number is never logged, whatever this says.
    #[serde(default)]
    pub caller_id: CallerId,
}

/// The values of `privacy.caller_id`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallerId {
    /// Keyed HMAC of the number.
    #[default]
    Pseudonym,
    /// The number itself.
    Full,
    /// Nothing.
    None,
}

/// `[calls]`: limits on a single call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CallsConfig {
    /// `calls.max_duration_secs`: hard cap on a call's length; then the server hangs up with BYE.
    /// A conversation with an operator is never cut (the operator ends it). Default 1800. At
    /// least 1.
    #[serde(default = "defaults::calls_max_duration_secs")]
    pub max_duration_secs: u64,
}

/// `[media]`: the media shards (threads that serve many calls each on one 20 ms schedule) and the
/// admission control that refuses new calls (503 with `sip.retry_after_secs`) before the calls in
/// progress lose audio.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// `media.shards`: media threads. 0 (the default): one per core this process may run on.
    #[serde(default)]
    pub shards: u32,
    /// `media.max_cpu_percent`: new calls are refused while the process uses more than this
    /// share of the cores it may run on (over each second). Default 85. 1 to 100.
    #[serde(default = "defaults::media_max_cpu_percent")]
    pub max_cpu_percent: u32,
    /// `media.max_busy_percent`: ... or while a shard's work fills more than this share of its
    /// 20 ms ticks. Default 70. 1 to 100.
    #[serde(default = "defaults::media_max_busy_percent")]
    pub max_busy_percent: u32,
    /// `media.max_late_percent`: ... or while more than this share of a shard's ticks wake over
    /// 8 ms late (the core is busy elsewhere). Default 10. 1 to 100.
    #[serde(default = "defaults::media_max_late_percent")]
    pub max_late_percent: u32,
    /// `media.max_backlog_percent`: ... or while more than this share of a shard's calls have
    /// more than two RTP packets waiting at a tick. Default 5. 1 to 100.
    #[serde(default = "defaults::media_max_backlog_percent")]
    pub max_backlog_percent: u32,
    /// `media.writer_queue`: messages (100 ms of one recording each) the recording writer's queue
    /// holds; beyond that the shards hold them back (nothing is dropped, `/metrics` shows it).
    /// Default 8192. At least 16.
    #[serde(default = "defaults::media_writer_queue")]
    pub writer_queue: u32,
}

/// `[queue]`: how waiting callers are given to operators.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    /// `queue.ring_timeout_secs`: how long an operator's phone rings before the call is offered
    /// to the next operator. Default 20. At least 1.
    #[serde(default = "defaults::queue_ring_timeout_secs")]
    pub ring_timeout_secs: u64,
    /// `queue.language_wait_secs`: how long a Quechua caller is offered only to operators who
    /// speak Quechua (while one is on duty) before any operator may take the call. Default 30.
    #[serde(default = "defaults::queue_language_wait_secs")]
    pub language_wait_secs: u64,
    /// `queue.wrap_up_secs`: time after each conversation before the operator is offered the
    /// next call (for notes). Default 30.
    #[serde(default = "defaults::queue_wrap_up_secs")]
    pub wrap_up_secs: u64,
    /// `queue.max_wait_secs`: longest wait in the queue; then the caller is offered the message
    /// path. Default 300 (the flow's `max_wait_ms` may cut it shorter).
    #[serde(default = "defaults::queue_max_wait_secs")]
    pub max_wait_secs: u64,
    /// `queue.position_every_secs`: a waiting caller hears their position this often (and
    /// whenever it changes), at the end of a hold-music loop. 0: only when it changes.
    /// Default 30.
    #[serde(default = "defaults::queue_position_every_secs")]
    pub position_every_secs: u64,
    /// `queue.missed_offers_before_pause`: an operator who lets this many offers in a row ring
    /// out (or declines them) is paused, and sees why. 0: never. Default 2.
    #[serde(default = "defaults::queue_missed_offers_before_pause")]
    pub missed_offers_before_pause: u32,
    /// `queue.record_conversations`: record the conversation with the operator (caller on the
    /// left channel, operator on the right), kind `conversation`. Default true.
    #[serde(default = "defaults::queue_record_conversations")]
    pub record_conversations: bool,
}

/// `[shutdown]`: graceful shutdown.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// `shutdown.grace_secs`: on SIGINT/SIGTERM new calls get 503 at once; calls in progress may go on
    /// this long, then get BYE. Default 30.
    #[serde(default = "defaults::shutdown_grace_secs")]
    pub grace_secs: u64,
}

/// `[log]`: logging to stderr.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `log.format`: `human` or `json` (one object per line). Default `human`.
    #[serde(default = "defaults::log_format")]
    pub format: LogFormat,
    /// `log.filter`: which events to log, in `tracing` `EnvFilter` syntax (`info`,
    /// `info,hotline_sip=debug`). `RUST_LOG`, when set, wins. Default `info`.
    #[serde(default = "defaults::log_filter", deserialize_with = "de_log_filter")]
    pub filter: String,
}

/// How log lines are written.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Plain text for people.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The named defaults of every key, used both by serde (missing key) and by the `Default` impls.
mod defaults {
    use super::*;

    pub(super) fn sip_listen() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, 5060))
    }
    pub(super) fn sip_domain() -> String {
        "hotline.local".to_owned()
    }
    pub(super) fn sip_trunk_sources() -> Vec<Cidr> {
        Vec::new()
    }
    pub(super) fn sip_max_calls() -> u32 {
        500
    }
    pub(super) fn sip_retry_after_secs() -> u32 {
        30
    }
    pub(super) fn sip_answer_delay_ms() -> u64 {
        0
    }
    pub(super) fn sip_t1_ms() -> u64 {
        500
    }
    pub(super) fn sip_t2_ms() -> u64 {
        4000
    }
    pub(super) fn sip_t4_ms() -> u64 {
        5000
    }
    pub(super) fn sip_max_message_bytes() -> usize {
        65535
    }
    pub(super) fn sip_tcp_idle_secs() -> u64 {
        600
    }
    pub(super) fn sip_user_agent() -> String {
        "hotline".to_owned()
    }
    pub(super) fn rtp_port_range() -> RtpPorts {
        RtpPorts {
            low: 10000,
            high: 20000,
        }
    }
    pub(super) fn rtp_public_address() -> Option<IpAddr> {
        None
    }
    pub(super) fn http_listen() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, 8080))
    }
    pub(super) fn http_secure_cookies() -> bool {
        true
    }
    pub(super) fn storage_data_dir() -> PathBuf {
        PathBuf::from("data")
    }
    pub(super) fn storage_database_url() -> Option<DatabaseUrl> {
        None
    }
    pub(super) fn ivr_prompts_dir() -> PathBuf {
        PathBuf::from("prompts")
    }
    pub(super) fn ivr_flow() -> PathBuf {
        PathBuf::from("config/flow.toml")
    }
    pub(super) fn ivr_silence_threshold_dbfs() -> i32 {
        -45
    }
    pub(super) fn calls_max_duration_secs() -> u64 {
        1800
    }
    pub(super) fn media_max_cpu_percent() -> u32 {
        85
    }
    pub(super) fn media_max_busy_percent() -> u32 {
        70
    }
    pub(super) fn media_max_late_percent() -> u32 {
        10
    }
    pub(super) fn media_max_backlog_percent() -> u32 {
        5
    }
    pub(super) fn media_writer_queue() -> u32 {
        8192
    }
    pub(super) fn sip_digest_algorithms() -> Vec<String> {
        vec!["SHA-256".to_owned(), "MD5".to_owned()]
    }
    pub(super) fn queue_ring_timeout_secs() -> u64 {
        20
    }
    pub(super) fn queue_language_wait_secs() -> u64 {
        30
    }
    pub(super) fn queue_wrap_up_secs() -> u64 {
        30
    }
    pub(super) fn queue_max_wait_secs() -> u64 {
        300
    }
    pub(super) fn queue_position_every_secs() -> u64 {
        30
    }
    pub(super) fn queue_missed_offers_before_pause() -> u32 {
        2
    }
    pub(super) fn queue_record_conversations() -> bool {
        true
    }
    pub(super) fn shutdown_grace_secs() -> u64 {
        30
    }
    pub(super) fn cluster_lease_secs() -> u64 {
        10
    }
    pub(super) fn callback_max_attempts() -> u32 {
        3
    }
    pub(super) fn callback_retry_interval_secs() -> u64 {
        900
    }
    pub(super) fn callback_ring_timeout_secs() -> u64 {
        18
    }
    pub(super) fn callback_expiry_secs() -> u64 {
        86_400
    }
    pub(super) fn callback_safety_prompt() -> String {
        "callback-safety-script".to_owned()
    }
    pub(super) fn log_format() -> LogFormat {
        LogFormat::Human
    }
    pub(super) fn log_filter() -> String {
        "info".to_owned()
    }
}

impl Config {
    /// Reads the file at `path`, then applies `overrides`.
    ///
    /// A missing file at [`DEFAULT_CONFIG_PATH`] is not an error: the defaults are used, so `hotline serve`
    /// runs on a fresh machine. A missing file at any other path (one named by `--config`) is.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::from_str_at(&text, path, overrides),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if path == Path::new(DEFAULT_CONFIG_PATH) {
                    Config::from_str_at("", path, overrides)
                } else {
                    Err(ConfigError::NotFound {
                        path: path.to_owned(),
                    })
                }
            }
            Err(source) => Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses `text` as if read from `path` (used only in messages), then applies `overrides`.
    pub fn from_str_at(
        text: &str,
        path: &Path,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let doc = DeTable::parse(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.message().trim().to_owned(),
            line: e.span().map(|span| line_of(text, span.start)),
        })?;
        let mut config = Config::deserialize(toml::de::Deserializer::from(doc.clone()))
            .map_err(|e| deserialize_error(text, &doc, path, &e))?;
        config.apply(overrides);
        config
            .check()
            .map_err(|(key, message)| ConfigError::Invalid {
                path: path.to_owned(),
                key: key.to_owned(),
                message,
                line: key_span(&doc, key).map(|span| line_of(text, span.start)),
            })?;
        Ok(config)
    }

    /// Replaces every value for which a flag was given.
    pub fn apply(&mut self, overrides: &Overrides) {
        let o = overrides;
        if let Some(v) = o.sip_listen {
            self.sip.listen = v;
        }
        if let Some(v) = o.http_listen {
            self.http.listen = v;
        }
        if let Some(v) = o.rtp_ports {
            self.rtp.port_range = v;
        }
        if let Some(v) = &o.data_dir {
            self.storage.data_dir.clone_from(v);
        }
        if let Some(v) = &o.database_url {
            self.storage.database_url = Some(v.clone());
        }
        if let Some(v) = &o.prompts_dir {
            self.ivr.prompts_dir.clone_from(v);
        }
        if let Some(v) = o.log_format {
            self.log.format = v;
        }
    }

    /// `storage.database_url`, or `sqlite://<data_dir>/hotline.db` when that is empty.
    pub fn effective_database_url(&self) -> DatabaseUrl {
        match &self.storage.database_url {
            Some(url) => url.clone(),
            None => DatabaseUrl::sqlite_file(&self.storage.data_dir.join("hotline.db")),
        }
    }

    /// Rules that involve more than one value's type. Returns the key at fault and why.
    fn check(&self) -> Result<(), (&'static str, String)> {
        let sip = &self.sip;
        if sip.domain.is_empty() || sip.domain.contains(|c: char| c.is_whitespace() || c == '@') {
            return Err((
                "sip.domain",
                format!("{:?} is not a SIP domain", sip.domain),
            ));
        }
        if sip.t1_ms == 0 {
            return Err(("sip.t1_ms", "must be at least 1".to_owned()));
        }
        if sip.t2_ms < sip.t1_ms {
            return Err((
                "sip.t2_ms",
                format!("must be at least sip.t1_ms ({})", sip.t1_ms),
            ));
        }
        if sip.max_message_bytes < 1500 {
            return Err(("sip.max_message_bytes", "must be at least 1500".to_owned()));
        }
        if sip.tcp_idle_secs == 0 {
            return Err(("sip.tcp_idle_secs", "must be at least 1".to_owned()));
        }
        if self.calls.max_duration_secs == 0 {
            return Err(("calls.max_duration_secs", "must be at least 1".to_owned()));
        }
        let m = &self.media;
        for (key, v) in [
            ("media.max_cpu_percent", m.max_cpu_percent),
            ("media.max_busy_percent", m.max_busy_percent),
            ("media.max_late_percent", m.max_late_percent),
            ("media.max_backlog_percent", m.max_backlog_percent),
        ] {
            if !(1..=100).contains(&v) {
                return Err((key, "must be from 1 to 100".to_owned()));
            }
        }
        if m.writer_queue < 16 {
            return Err(("media.writer_queue", "must be at least 16".to_owned()));
        }
        if sip.digest_algorithms.is_empty() {
            return Err((
                "sip.digest_algorithms",
                "must list at least one of \"SHA-256\", \"MD5\"".to_owned(),
            ));
        }
        if let Some(bad) = sip
            .digest_algorithms
            .iter()
            .find(|a| !matches!(a.as_str(), "SHA-256" | "MD5"))
        {
            return Err((
                "sip.digest_algorithms",
                format!("unknown algorithm {bad:?}: use \"SHA-256\" or \"MD5\""),
            ));
        }
        if self.queue.ring_timeout_secs == 0 {
            return Err(("queue.ring_timeout_secs", "must be at least 1".to_owned()));
        }
        let c = &self.cluster;
        if c.enabled() {
            // A letter first: a node's recordings directory never looks like the one-process
            // tree's years (`recordings/2026/`).
            let id_ok = c.node_id.len() <= 32
                && c.node_id.starts_with(|ch: char| ch.is_ascii_lowercase())
                && c.node_id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !id_ok {
                return Err((
                    "cluster.node_id",
                    format!(
                        "{:?}: use 1-32 of a-z, 0-9 and -, a letter first",
                        c.node_id
                    ),
                ));
            }
            if self.effective_database_url().kind() != DatabaseKind::Postgres {
                return Err((
                    "cluster.node_id",
                    "a cluster node needs a postgres:// storage.database_url (nodes share it)"
                        .to_owned(),
                ));
            }
        }
        if c.lease_secs < 2 {
            return Err(("cluster.lease_secs", "must be at least 2".to_owned()));
        }
        if let Some(cb) = &self.callback {
            cb.check(&self.storage.data_dir, &self.sip.user_agent)?;
        }
        Ok(())
    }
}

impl SipConfig {
    /// Whether a call from `source` is accepted: `trunk_sources` is empty or one of them contains it.
    pub fn trunk_allows(&self, source: IpAddr) -> bool {
        self.trunk_sources.is_empty() || self.trunk_sources.iter().any(|net| net.contains(source))
    }

    /// `retry_after_secs` as a [`Duration`].
    pub fn retry_after(&self) -> Duration {
        Duration::from_secs(self.retry_after_secs.into())
    }

    /// `answer_delay_ms` as a [`Duration`].
    pub fn answer_delay(&self) -> Duration {
        Duration::from_millis(self.answer_delay_ms)
    }

    /// RFC 3261 T1 as a [`Duration`].
    pub fn t1(&self) -> Duration {
        Duration::from_millis(self.t1_ms)
    }

    /// RFC 3261 T2 as a [`Duration`].
    pub fn t2(&self) -> Duration {
        Duration::from_millis(self.t2_ms)
    }

    /// RFC 3261 T4 as a [`Duration`].
    pub fn t4(&self) -> Duration {
        Duration::from_millis(self.t4_ms)
    }

    /// `tcp_idle_secs` as a [`Duration`].
    pub fn tcp_idle(&self) -> Duration {
        Duration::from_secs(self.tcp_idle_secs)
    }
}

impl CallsConfig {
    /// `max_duration_secs` as a [`Duration`].
    pub fn max_duration(&self) -> Duration {
        Duration::from_secs(self.max_duration_secs)
    }
}

impl ShutdownConfig {
    /// `grace_secs` as a [`Duration`].
    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.grace_secs)
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            listen: defaults::sip_listen(),
            domain: defaults::sip_domain(),
            trunk_sources: defaults::sip_trunk_sources(),
            max_calls: defaults::sip_max_calls(),
            retry_after_secs: defaults::sip_retry_after_secs(),
            answer_delay_ms: defaults::sip_answer_delay_ms(),
            t1_ms: defaults::sip_t1_ms(),
            t2_ms: defaults::sip_t2_ms(),
            t4_ms: defaults::sip_t4_ms(),
            max_message_bytes: defaults::sip_max_message_bytes(),
            tcp_idle_secs: defaults::sip_tcp_idle_secs(),
            user_agent: defaults::sip_user_agent(),
            digest_algorithms: defaults::sip_digest_algorithms(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for RtpConfig {
    fn default() -> Self {
        Self {
            port_range: defaults::rtp_port_range(),
            public_address: defaults::rtp_public_address(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: defaults::http_listen(),
            secure_cookies: defaults::http_secure_cookies(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: defaults::storage_data_dir(),
            database_url: defaults::storage_database_url(),
        }
    }
}

impl Default for IvrConfig {
    fn default() -> Self {
        Self {
            prompts_dir: defaults::ivr_prompts_dir(),
            flow: defaults::ivr_flow(),
            silence_threshold_dbfs: defaults::ivr_silence_threshold_dbfs(),
        }
    }
}

impl MediaConfig {
    /// What the media plane runs with.
    pub(crate) fn plane_settings(&self) -> crate::media::PlaneSettings {
        let share = |p: u32| f64::from(p) / 100.0;
        crate::media::PlaneSettings {
            shards: self.shard_count(),
            limits: crate::media::overload::Limits {
                max_cpu_share: share(self.max_cpu_percent),
                max_busy_share: share(self.max_busy_percent),
                max_late_share: share(self.max_late_percent),
                max_backlog_share: share(self.max_backlog_percent),
            },
            writer_queue: self.writer_queue as usize,
        }
    }

    /// Shards to run: `shards`, or one per core this process may run on.
    pub fn shard_count(&self) -> usize {
        match self.shards {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n as usize,
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            shards: 0,
            max_cpu_percent: defaults::media_max_cpu_percent(),
            max_busy_percent: defaults::media_max_busy_percent(),
            max_late_percent: defaults::media_max_late_percent(),
            max_backlog_percent: defaults::media_max_backlog_percent(),
            writer_queue: defaults::media_writer_queue(),
        }
    }
}

impl Default for CallsConfig {
    fn default() -> Self {
        Self {
            max_duration_secs: defaults::calls_max_duration_secs(),
        }
    }
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            ring_timeout_secs: defaults::queue_ring_timeout_secs(),
            language_wait_secs: defaults::queue_language_wait_secs(),
            wrap_up_secs: defaults::queue_wrap_up_secs(),
            max_wait_secs: defaults::queue_max_wait_secs(),
            position_every_secs: defaults::queue_position_every_secs(),
            missed_offers_before_pause: defaults::queue_missed_offers_before_pause(),
            record_conversations: defaults::queue_record_conversations(),
        }
    }
}

impl QueueSettings {
    /// The queue's own configuration.
    pub fn queue_config(&self) -> hotline_queue::QueueConfig {
        hotline_queue::QueueConfig {
            ring_timeout: Duration::from_secs(self.ring_timeout_secs),
            language_wait: Duration::from_secs(self.language_wait_secs),
            wrap_up: Duration::from_secs(self.wrap_up_secs),
            max_wait: Duration::from_secs(self.max_wait_secs),
            position_every: Duration::from_secs(self.position_every_secs),
            missed_offers_before_pause: self.missed_offers_before_pause,
        }
    }
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            grace_secs: defaults::shutdown_grace_secs(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: defaults::log_format(),
            filter: defaults::log_filter(),
        }
    }
}

/// Values given on the command line; each `Some` replaces the value from the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--sip ADDR:PORT` → `sip.listen`.
    pub sip_listen: Option<SocketAddr>,
    /// `--http ADDR:PORT` → `http.listen`.
    pub http_listen: Option<SocketAddr>,
    /// `--rtp-ports LOW-HIGH` → `rtp.port_range`.
    pub rtp_ports: Option<RtpPorts>,
    /// `--data-dir DIR` → `storage.data_dir`.
    pub data_dir: Option<PathBuf>,
    /// `--database-url URL` or `DATABASE_URL` → `storage.database_url`.
    pub database_url: Option<DatabaseUrl>,
    /// `--prompts DIR` → `ivr.prompts_dir`.
    pub prompts_dir: Option<PathBuf>,
    /// `--log-format human|json` → `log.format`.
    pub log_format: Option<LogFormat>,
}

/// An inclusive range of UDP ports for RTP: `1024 <= low < high`. Each call takes an even port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RtpPorts {
    low: u16,
    high: u16,
}

impl RtpPorts {
    /// The range `low..=high`, which must hold at least two ports, none below 1024.
    pub fn new(low: u16, high: u16) -> Result<RtpPorts, ValueError> {
        if low < 1024 {
            return Err(ValueError::PrivilegedPort(low));
        }
        if low > high {
            return Err(ValueError::ReversedPortRange { low, high });
        }
        if low == high {
            return Err(ValueError::PortRangeTooSmall { low, high });
        }
        Ok(RtpPorts { low, high })
    }

    /// The lowest port, inclusive.
    pub fn low(&self) -> u16 {
        self.low
    }

    /// The highest port, inclusive.
    pub fn high(&self) -> u16 {
        self.high
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.low..=self.high).contains(&port)
    }

    /// The even ports of the range, lowest first: the ports RTP is bound to.
    pub fn even_ports(&self) -> impl Iterator<Item = u16> + use<> {
        (self.low.next_multiple_of(2)..=self.high).step_by(2)
    }
}

impl FromStr for RtpPorts {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<RtpPorts, ValueError> {
        let syntax = || ValueError::PortRangeSyntax(s.to_owned());
        let (low, high) = s.split_once('-').ok_or_else(syntax)?;
        let port = |p: &str| p.trim().parse::<u16>().map_err(|_| syntax());
        RtpPorts::new(port(low)?, port(high)?)
    }
}

impl<'de> Deserialize<'de> for RtpPorts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RtpPorts, D::Error> {
        d.deserialize_str(ParseVisitor::new(
            "a port range LOW-HIGH such as \"10000-20000\"",
            |s| s.parse().map_err(|e: ValueError| e.to_string()),
        ))
    }
}

impl fmt::Display for RtpPorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.low, self.high)
    }
}

impl Serialize for RtpPorts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An IPv4 or IPv6 network: `10.0.0.0/8`, `2001:db8::/32`, or one address (`192.0.2.7` is `/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

impl Cidr {
    /// The network `network/prefix_len`. Host bits must be zero, so that a typo such as `10.1.0.0/8`
    /// is caught rather than silently widened.
    pub fn new(network: IpAddr, prefix_len: u8) -> Result<Cidr, ValueError> {
        let max = if network.is_ipv4() { 32 } else { 128 };
        if prefix_len > max {
            return Err(ValueError::CidrPrefixTooLong {
                network,
                prefix_len,
                max,
            });
        }
        let cidr = Cidr {
            network,
            prefix_len,
        };
        let masked = cidr.masked(network);
        if masked != network {
            return Err(ValueError::CidrHostBits {
                network,
                prefix_len,
                masked,
            });
        }
        Ok(cidr)
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `ip` is in this network. IPv4-mapped IPv6 addresses (`::ffff:192.0.2.7`, as a dual-stack
    /// socket reports IPv4 peers) match IPv4 networks, and IPv4 addresses match `::ffff:0:0/96` networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.network, ip) {
            (IpAddr::V4(_), ip) => ip.to_canonical(),
            (IpAddr::V6(_), IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
            (IpAddr::V6(_), ip) => ip,
        };
        ip.is_ipv4() == self.network.is_ipv4() && self.masked(ip) == self.network
    }

    /// `ip` (of the network's family) with the host bits cleared.
    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        }
    }
}

impl FromStr for Cidr {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Cidr, ValueError> {
        let syntax = || ValueError::CidrSyntax(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| syntax())?;
        let prefix_len = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().map_err(|_| syntax())?
            }
            Some(_) => return Err(syntax()),
            None if network.is_ipv4() => 32,
            None => 128,
        };
        Cidr::new(network, prefix_len)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        d.deserialize_str(ParseVisitor::new(
            "an IP address or network such as \"10.0.0.0/8\"",
            |s| s.parse().map_err(|e: ValueError| e.to_string()),
        ))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A database URL whose scheme is `sqlite://`, `postgres://` or `postgresql://`. Its text is kept as
/// given; it may hold a password, so log [`DatabaseUrl::kind`] rather than the URL.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DatabaseUrl(String);

/// Which database a [`DatabaseUrl`] points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatabaseKind {
    /// `sqlite://PATH`
    Sqlite,
    /// `postgres://…` or `postgresql://…`
    Postgres,
}

impl DatabaseUrl {
    /// `sqlite://` followed by `path` (a relative path stays relative: `sqlite://data/hotline.db`).
    pub fn sqlite_file(path: &Path) -> DatabaseUrl {
        DatabaseUrl(format!("sqlite://{}", path.display()))
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// SQLite or PostgreSQL.
    pub fn kind(&self) -> DatabaseKind {
        if self.0.starts_with("sqlite://") {
            DatabaseKind::Sqlite
        } else {
            DatabaseKind::Postgres
        }
    }
}

impl FromStr for DatabaseUrl {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<DatabaseUrl, ValueError> {
        if s.is_empty() {
            return Err(ValueError::DatabaseUrlEmpty);
        }
        let rest = ["sqlite://", "postgres://", "postgresql://"]
            .iter()
            .find_map(|scheme| s.strip_prefix(scheme))
            .ok_or(ValueError::DatabaseUrlScheme)?;
        if rest.is_empty() {
            return Err(ValueError::DatabaseUrlBare);
        }
        Ok(DatabaseUrl(s.to_owned()))
    }
}

/// `time_zone`: an IANA time zone the tz database knows (`America/Lima`, `UTC`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeZoneName(pub hotline_store::Zone);

const TIME_ZONE_EXPECTED: &str = "an IANA time zone name such as \"America/Lima\"";

impl<'de> Deserialize<'de> for TimeZoneName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TimeZoneName, D::Error> {
        d.deserialize_str(ParseVisitor::new(TIME_ZONE_EXPECTED, |s| {
            hotline_store::Zone::named(s)
                .map(TimeZoneName)
                .map_err(|e| e.to_string())
        }))
    }
}

impl Serialize for TimeZoneName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name())
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<DatabaseUrl, D::Error> {
        d.deserialize_str(ParseVisitor::new(DATABASE_URL_EXPECTED, |s| {
            s.parse().map_err(|e: ValueError| e.to_string())
        }))
    }
}

impl fmt::Debug for DatabaseUrl {
    /// Hides a password: `postgres://hotline:***@db/hotline`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = match self.0.split_once("://") {
            Some((scheme, rest)) => match rest.split_once('@') {
                Some((user_info, host)) if user_info.contains(':') && !host.is_empty() => {
                    let user = user_info.split_once(':').map_or(user_info, |(u, _)| u);
                    format!("{scheme}://{user}:***@{host}")
                }
                _ => self.0.clone(),
            },
            None => self.0.clone(),
        };
        f.debug_tuple("DatabaseUrl").field(&redacted).finish()
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl FromStr for LogFormat {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<LogFormat, ValueError> {
        match s {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            _ => Err(ValueError::LogFormat(s.to_owned())),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        })
    }
}

/// Why a configuration file could not be used. Each message starts with the file; those about a key name
/// it as a dotted path (`sip.max_calls`) and end with the line when the key is in the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file named by `--config` does not exist.
    #[error("{}: config file not found", path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// The file exists but could not be read.
    #[error("{}: cannot read config file: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is not valid TOML.
    #[error("{}: invalid TOML: {message}{}", path.display(), LineSuffix(*line))]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said.
        message: String,
        /// 1-based line of the error, when known.
        line: Option<usize>,
    },
    /// A key or section that the configuration does not have (often a typo).
    #[error("{}: unknown key {key}{}", path.display(), LineSuffix(Some(*line)))]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// Dotted path of the key, e.g. `sip.max_cals`.
        key: String,
        /// 1-based line of the key.
        line: usize,
    },
    /// The document does not fit the configuration, at no key in particular.
    #[error("{}: {message}{}", path.display(), LineSuffix(*line))]
    Unlocated {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
        /// 1-based line of the error, when known.
        line: Option<usize>,
    },
    /// A key has a value of the wrong type, or one out of range.
    #[error("{}: {key}: {message}{}", path.display(), LineSuffix(*line))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Dotted path of the key, e.g. `sip.max_calls` or `sip.trunk_sources[1]`.
        key: String,
        /// What is wrong.
        message: String,
        /// 1-based line of the key, when the key is in the file (not when a default is at fault).
        line: Option<usize>,
    },
}

/// Why a single value (from the file or a flag) could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The port range is not `LOW-HIGH`.
    #[error("{0:?} is not a port range LOW-HIGH such as 10000-20000")]
    PortRangeSyntax(String),
    /// The port range starts below 1024.
    #[error("port {0} is below 1024; RTP needs unprivileged ports")]
    PrivilegedPort(u16),
    /// The port range has `low > high`.
    #[error("low port {low} is above high port {high}")]
    ReversedPortRange {
        /// First port given.
        low: u16,
        /// Last port given.
        high: u16,
    },
    /// The port range has a single port.
    #[error("{low}-{high} holds fewer than 2 ports")]
    PortRangeTooSmall {
        /// First port given.
        low: u16,
        /// Last port given.
        high: u16,
    },
    /// Not an address or `ADDRESS/PREFIX`.
    #[error("{0:?} is not an IP address or network such as 192.0.2.7, 10.0.0.0/8 or 2001:db8::/32")]
    CidrSyntax(String),
    /// The prefix is longer than the address.
    #[error("prefix /{prefix_len} is longer than {max} bits for {network}")]
    CidrPrefixTooLong {
        /// The address given.
        network: IpAddr,
        /// The prefix given.
        prefix_len: u8,
        /// 32 or 128.
        max: u8,
    },
    /// The address has bits set past the prefix.
    #[error("{network}/{prefix_len} has host bits set; the network is {masked}/{prefix_len}")]
    CidrHostBits {
        /// The address given.
        network: IpAddr,
        /// The prefix given.
        prefix_len: u8,
        /// The address with the host bits cleared.
        masked: IpAddr,
    },
    /// An empty database URL given as a flag or in `DATABASE_URL` (in the file, `""` means the default).
    #[error(
        "the database URL is empty; leave DATABASE_URL unset to use sqlite://<data_dir>/hotline.db"
    )]
    DatabaseUrlEmpty,
    /// The database URL has another scheme.
    #[error("a database URL starts with sqlite://, postgres:// or postgresql://")]
    DatabaseUrlScheme,
    /// The database URL is a bare scheme.
    #[error("the database URL names no database after the scheme")]
    DatabaseUrlBare,
    /// Not `human` or `json`.
    #[error("{0:?} is not a log format; expected human or json")]
    LogFormat(String),
}

/// ` (line N)`, or nothing.
struct LineSuffix(Option<usize>);

impl fmt::Display for LineSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) => write!(f, " (line {line})"),
            None => Ok(()),
        }
    }
}

/// Deserializes a string with `parse`. The error is raised inside the deserializer, so toml gives it
/// the span of the value itself (an array element's, not the whole array's).
struct ParseVisitor<T> {
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
}

impl<T> ParseVisitor<T> {
    fn new(expecting: &'static str, parse: fn(&str) -> Result<T, String>) -> ParseVisitor<T> {
        ParseVisitor { expecting, parse }
    }
}

impl<T> Visitor<'_> for ParseVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).map_err(E::custom)
    }
}

/// `sip.listen`, `http.listen`: an `IP:PORT` socket address.
fn de_socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    d.deserialize_str(ParseVisitor::new(
        "an address such as \"127.0.0.1:8080\"",
        |s| {
            s.parse()
                .map_err(|e| format!("{s:?}: {e} (expected IP:PORT)"))
        },
    ))
}

/// `rtp.public_address`: an IP address, or `""` for none.
fn de_optional_ip<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
    d.deserialize_str(ParseVisitor::new("an IP address or \"\"", |s| {
        if s.is_empty() {
            return Ok(None);
        }
        s.parse().map(Some).map_err(|e| format!("{s:?}: {e}"))
    }))
}

/// What a database URL looks like, for type errors.
const DATABASE_URL_EXPECTED: &str = "a database URL such as \"sqlite://data/hotline.db\"";

/// `storage.database_url`: a [`DatabaseUrl`], or `""` for none. The text is not repeated in the
/// error, as it may hold a password.
fn de_optional_database_url<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<DatabaseUrl>, D::Error> {
    d.deserialize_str(ParseVisitor::new(DATABASE_URL_EXPECTED, |s| {
        if s.is_empty() {
            return Ok(None);
        }
        s.parse().map(Some).map_err(|e: ValueError| e.to_string())
    }))
}

/// `log.filter`: a `tracing` filter that `EnvFilter` accepts.
fn de_log_filter<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_str(ParseVisitor::new("a log filter such as \"info\"", |s| {
        match tracing_subscriber::EnvFilter::builder().parse(s) {
            Ok(_) => Ok(s.to_owned()),
            Err(e) => Err(format!("{s:?} is not a log filter: {e}")),
        }
    }))
}

/// Serializes `None` as `""`, the way the file spells it.
fn ser_none_as_empty<S, T>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error>
where
    S: Serializer,
    T: Serialize,
{
    match v {
        Some(v) => v.serialize(s),
        None => s.serialize_str(""),
    }
}

/// Turns a deserialization error into a [`ConfigError`] naming the key its span falls in.
fn deserialize_error(
    text: &str,
    doc: &Spanned<DeTable<'_>>,
    path: &Path,
    e: &toml::de::Error,
) -> ConfigError {
    let message = e.message().trim();
    let located = e
        .span()
        .and_then(|span| Some((key_at(doc.get_ref(), span.start)?, span)));
    let Some((key, span)) = located else {
        return ConfigError::Unlocated {
            path: path.to_owned(),
            message: message.to_owned(),
            line: e.span().map(|span| line_of(text, span.start)),
        };
    };
    let line = line_of(text, span.start);
    // serde's `Error::unknown_field` message; toml points its span at the unknown key itself.
    if message.starts_with("unknown field `") {
        return ConfigError::UnknownKey {
            path: path.to_owned(),
            key,
            line,
        };
    }
    ConfigError::Invalid {
        path: path.to_owned(),
        key,
        message: message.to_owned(),
        line: Some(line),
    }
}

/// The dotted path of the innermost key whose key or value span holds byte `offset`.
fn key_at(table: &DeTable<'_>, offset: usize) -> Option<String> {
    table.iter().find_map(|(key, value)| {
        let inner = match value.get_ref() {
            DeValue::Table(t) => key_at(t, offset).map(|k| format!(".{k}")),
            DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
                let nested = match item.get_ref() {
                    DeValue::Table(t) => key_at(t, offset).map(|k| format!("[{i}].{k}")),
                    _ => None,
                };
                nested.or_else(|| holds(item.span(), offset).then(|| format!("[{i}]")))
            }),
            _ => None,
        };
        match inner {
            Some(inner) => Some(format!("{}{inner}", key.get_ref())),
            None if holds(key.span(), offset) || holds(value.span(), offset) => {
                Some(key.get_ref().to_string())
            }
            None => None,
        }
    })
}

/// The span of the key at `dotted` (`sip.t2_ms`), when the file has it.
fn key_span(doc: &Spanned<DeTable<'_>>, dotted: &str) -> Option<Range<usize>> {
    let (sections, last) = match dotted.rsplit_once('.') {
        Some((sections, last)) => (Some(sections), last),
        None => (None, dotted),
    };
    let mut table = doc.get_ref();
    for name in sections.into_iter().flat_map(|s| s.split('.')) {
        match table.get(name)?.get_ref() {
            DeValue::Table(t) => table = t,
            _ => return None,
        }
    }
    table.get_key_value(last).map(|(key, _)| key.span())
}

fn holds(span: Range<usize>, offset: usize) -> bool {
    span.contains(&offset) || (span.is_empty() && span.start == offset)
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_str_at(text, Path::new("test.toml"), &Overrides::default())
    }

    fn error(text: &str) -> String {
        parse(text)
            .expect_err("config should be rejected")
            .to_string()
    }

    #[test]
    fn time_zone_is_an_iana_name() {
        let c = parse("time_zone = \"Europe/Madrid\"\n[sip]\n").unwrap();
        assert_eq!(c.time_zone.0.name(), "Europe/Madrid");
        let e = error("time_zone = \"Lima\"\n");
        assert!(
            e.contains("test.toml") && e.contains("time_zone") && e.contains("\"Lima\""),
            "{e}"
        );
        let e = error("time_zone = -5\n");
        assert!(e.contains("time_zone") && e.contains("IANA"), "{e}");
    }

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
        assert_eq!(parse("[sip]\n[log]\n").unwrap(), Config::default());
    }

    #[test]
    fn defaults_are_the_documented_values() {
        let c = Config::default();
        assert_eq!(c.sip.listen, "0.0.0.0:5060".parse().unwrap());
        assert_eq!(c.sip.domain, "hotline.local");
        assert!(c.sip.trunk_sources.is_empty());
        assert_eq!(
            (
                c.sip.max_calls,
                c.sip.retry_after_secs,
                c.sip.answer_delay_ms
            ),
            (500, 30, 0)
        );
        assert_eq!((c.sip.t1_ms, c.sip.t2_ms, c.sip.t4_ms), (500, 4000, 5000));
        assert_eq!((c.sip.max_message_bytes, c.sip.tcp_idle_secs), (65535, 600));
        assert_eq!(c.sip.user_agent, "hotline");
        assert_eq!(
            (c.rtp.port_range.low(), c.rtp.port_range.high()),
            (10000, 20000)
        );
        assert_eq!(c.rtp.public_address, None);
        assert_eq!(c.http.listen, "127.0.0.1:8080".parse().unwrap());
        assert!(c.http.secure_cookies);
        assert_eq!(c.storage.data_dir, Path::new("data"));
        assert_eq!(c.storage.database_url, None);
        assert_eq!(c.ivr.prompts_dir, Path::new("prompts"));
        assert_eq!(c.calls.max_duration_secs, 1800);
        assert_eq!(c.shutdown.grace_secs, 30);
        assert_eq!(c.time_zone.0.name(), "America/Lima");
        assert_eq!(
            (c.log.format, c.log.filter.as_str()),
            (LogFormat::Human, "info")
        );
    }

    #[test]
    fn unknown_key_names_path_and_line() {
        let e = error("[sip]\nlisten = \"0.0.0.0:5060\"\n\nmax_cals = 3\n");
        assert_eq!(e, "test.toml: unknown key sip.max_cals (line 4)");
        assert_eq!(
            error("[sipp]\nlisten = 1\n"),
            "test.toml: unknown key sipp (line 1)"
        );
        assert_eq!(
            error("\nverbose = true\n"),
            "test.toml: unknown key verbose (line 2)"
        );
        assert_eq!(
            error("sip.max_cals = 3\n"),
            "test.toml: unknown key sip.max_cals (line 1)"
        );
        assert_eq!(
            error("sip = { max_cals = 3 }\n"),
            "test.toml: unknown key sip.max_cals (line 1)"
        );
    }

    #[test]
    fn bad_type_names_key_and_line() {
        let e = error("[sip]\n\nmax_calls = \"x\"\n");
        assert_eq!(
            e,
            "test.toml: sip.max_calls: invalid type: string \"x\", expected u32 (line 3)"
        );
        let e = error("[sip]\nmax_calls = -1\n");
        assert!(e.starts_with("test.toml: sip.max_calls: "), "{e}");
        let e = error("[log]\nformat = \"xml\"\n");
        assert!(
            e.starts_with("test.toml: log.format: unknown variant `xml`"),
            "{e}"
        );
        assert!(e.ends_with("(line 2)"), "{e}");
    }

    #[test]
    fn bad_address_names_key() {
        let e = error("[http]\nlisten = \"localhost\"\n");
        assert!(
            e.starts_with("test.toml: http.listen: \"localhost\": "),
            "{e}"
        );
        let e = error("[rtp]\npublic_address = \"203.0.113.300\"\n");
        assert!(e.starts_with("test.toml: rtp.public_address: "), "{e}");
    }

    #[test]
    fn bad_port_range() {
        for (range, why) in [
            ("20000-10000", "low port 20000 is above high port 10000"),
            ("10000", "is not a port range"),
            ("10000-10000", "fewer than 2 ports"),
            ("80-1000", "below 1024"),
            ("10000-70000", "is not a port range"),
        ] {
            let e = error(&format!("[rtp]\nport_range = \"{range}\"\n"));
            assert!(e.starts_with("test.toml: rtp.port_range: "), "{e}");
            assert!(e.contains(why), "{e}");
            assert!(e.ends_with("(line 2)"), "{e}");
        }
    }

    #[test]
    fn rtp_ports_even_ports() {
        let r: RtpPorts = "10001-10006".parse().unwrap();
        assert_eq!(r.even_ports().collect::<Vec<_>>(), [10002, 10004, 10006]);
        assert!(r.contains(10001) && r.contains(10006) && !r.contains(10007));
        assert_eq!(r.to_string(), "10001-10006");
        let top: RtpPorts = "65534-65535".parse().unwrap();
        assert_eq!(top.even_ports().collect::<Vec<_>>(), [65534]);
    }

    #[test]
    fn bad_cidr_names_element() {
        let e = error("[sip]\ntrunk_sources = [\"10.0.0.0/8\",\n  \"10.1.0.0/8\"]\n");
        assert_eq!(
            e,
            "test.toml: sip.trunk_sources[1]: 10.1.0.0/8 has host bits set; the network is 10.0.0.0/8 (line 3)"
        );
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "x",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cidr_contains() {
        let net: Cidr = "192.0.2.0/24".parse().unwrap();
        assert!(net.contains("192.0.2.7".parse().unwrap()));
        assert!(net.contains("::ffff:192.0.2.7".parse().unwrap()));
        assert!(!net.contains("192.0.3.1".parse().unwrap()));
        assert!(!net.contains("2001:db8::1".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(!v6.contains("192.0.2.7".parse().unwrap()));
        let host: Cidr = "192.0.2.7".parse().unwrap();
        assert_eq!(host.to_string(), "192.0.2.7/32");
        assert!(host.contains("192.0.2.7".parse().unwrap()));
        assert!(!host.contains("192.0.2.8".parse().unwrap()));
        let any: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(any.contains("203.0.113.9".parse().unwrap()));
        let mapped: Cidr = "::ffff:0:0/96".parse().unwrap();
        assert!(mapped.contains("198.51.100.1".parse().unwrap()));
    }

    #[test]
    fn trunk_sources_filter() {
        let c = parse("[sip]\ntrunk_sources = [\"198.51.100.0/24\", \"2001:db8::1\"]\n").unwrap();
        assert!(c.sip.trunk_allows("198.51.100.20".parse().unwrap()));
        assert!(c.sip.trunk_allows("2001:db8::1".parse().unwrap()));
        assert!(!c.sip.trunk_allows("203.0.113.1".parse().unwrap()));
        assert!(
            Config::default()
                .sip
                .trunk_allows("203.0.113.1".parse().unwrap())
        );
    }

    #[test]
    fn database_url_scheme() {
        for ok in [
            "sqlite://data/hotline.db",
            "postgres://h@db/hotline",
            "postgresql://db/x",
        ] {
            assert!(ok.parse::<DatabaseUrl>().is_ok(), "{ok}");
        }
        for bad in [
            "mysql://db/x",
            "data/hotline.db",
            "sqlite://",
            "postgres:/db",
        ] {
            assert!(bad.parse::<DatabaseUrl>().is_err(), "{bad}");
        }
        let e = error("[storage]\ndatabase_url = \"mysql://db/x\"\n");
        assert!(e.starts_with("test.toml: storage.database_url: "), "{e}");
        let url: DatabaseUrl = "postgres://hotline:s3cret@db/hotline".parse().unwrap();
        assert_eq!(url.kind(), DatabaseKind::Postgres);
        assert!(!format!("{url:?}").contains("s3cret"));
    }

    #[test]
    fn database_url_defaults_to_sqlite_in_data_dir() {
        let c = parse("[storage]\ndata_dir = \"/var/lib/hotline\"\n").unwrap();
        assert_eq!(
            c.effective_database_url().as_str(),
            "sqlite:///var/lib/hotline/hotline.db"
        );
        assert_eq!(c.effective_database_url().kind(), DatabaseKind::Sqlite);
        let c = parse("[storage]\ndatabase_url = \"postgres://db/hotline\"\n").unwrap();
        assert_eq!(c.effective_database_url().as_str(), "postgres://db/hotline");
    }

    #[test]
    fn cross_key_rules_name_the_key() {
        let e = error("[sip]\nt1_ms = 5000\n");
        assert_eq!(e, "test.toml: sip.t2_ms: must be at least sip.t1_ms (5000)");
        let e = error("[sip]\nt2_ms = 100\n");
        assert_eq!(
            e,
            "test.toml: sip.t2_ms: must be at least sip.t1_ms (500) (line 2)"
        );
        let e = error("[calls]\nmax_duration_secs = 0\n");
        assert_eq!(
            e,
            "test.toml: calls.max_duration_secs: must be at least 1 (line 2)"
        );
        let e = error("[sip]\ndomain = \"\"\n");
        assert!(e.starts_with("test.toml: sip.domain: "), "{e}");
    }

    #[test]
    fn bad_log_filter() {
        let e = error("[log]\nfilter = \"hotline=loud\"\n");
        assert!(e.starts_with("test.toml: log.filter: "), "{e}");
        assert!(parse("[log]\nfilter = \"info,hotline_sip=debug\"\n").is_ok());
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let e = error("[sip]\nlisten = \n");
        assert!(e.starts_with("test.toml: invalid TOML: "), "{e}");
        assert!(e.ends_with("(line 2)"), "{e}");
        let e = error("[sip]\nmax_calls = 1\nmax_calls = 2\n");
        assert!(e.starts_with("test.toml: invalid TOML: "), "{e}");
    }

    #[test]
    fn overrides_win() {
        let text = "[sip]\nlisten = \"0.0.0.0:5060\"\n[storage]\ndata_dir = \"/srv/a\"\n";
        let overrides = Overrides {
            sip_listen: Some("127.0.0.1:0".parse().unwrap()),
            http_listen: Some("127.0.0.1:0".parse().unwrap()),
            rtp_ports: Some(RtpPorts::new(40000, 40100).unwrap()),
            data_dir: Some(PathBuf::from("/srv/b")),
            database_url: None,
            prompts_dir: Some(PathBuf::from("/srv/prompts")),
            log_format: Some(LogFormat::Json),
        };
        let c = Config::from_str_at(text, Path::new("t.toml"), &overrides).unwrap();
        assert_eq!(c.sip.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.http.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.rtp.port_range, RtpPorts::new(40000, 40100).unwrap());
        assert_eq!(c.ivr.prompts_dir, Path::new("/srv/prompts"));
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(
            c.effective_database_url().as_str(),
            "sqlite:///srv/b/hotline.db"
        );
    }

    #[test]
    fn cluster_keys_name_the_key() {
        let e = error("[cluster]\nnode_id = \"a\"\n");
        assert!(
            e.starts_with("test.toml: cluster.node_id: a cluster node needs a postgres://"),
            "{e}"
        );
        let pg = "[storage]\ndatabase_url = \"postgres://u@db/h\"\n[cluster]\n";
        let e = error(&format!("{pg}node_id = \"2026\"\n"));
        assert!(e.contains("cluster.node_id: \"2026\": use 1-32"), "{e}");
        let e = error(&format!("{pg}node_id = \"Node A\"\n"));
        assert!(e.contains("cluster.node_id: "), "{e}");
        let e = error(&format!("{pg}node_id = \"a\"\nlease_secs = 1\n"));
        assert!(e.contains("cluster.lease_secs: must be at least 2"), "{e}");
        let ok = Config::from_str_at(
            &format!("{pg}node_id = \"node-a2\"\n"),
            Path::new("test.toml"),
            &Overrides::default(),
        )
        .unwrap();
        assert!(ok.cluster.enabled());
        assert_eq!(ok.cluster.lease(), Duration::from_secs(10));
    }

    #[test]
    fn line_of_counts_newlines() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
