//! `hotline serve`: binds the listeners, prints them, runs the SIP task and
//! the console until a shutdown signal, then drains calls.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use hotline_console::{AppState, Check, HealthProbe};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

use crate::config::Config;
use crate::rtp_ports::RtpPorts;
use crate::sip_task::{SipStats, SipTask};

/// The sockets `serve` runs on; tests bind port 0 and pass them in.
#[derive(Debug)]
pub struct Listeners {
    /// SIP over UDP.
    pub sip_udp: UdpSocket,
    /// SIP over TCP (same port as UDP).
    pub sip_tcp: TcpListener,
    /// The console.
    pub http: TcpListener,
}

impl Listeners {
    /// Binds the configured addresses. Port 0 picks a free port; SIP UDP and
    /// TCP share one port, so a port free for UDP but taken for TCP is retried.
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        let sip = config.sip.listen;
        let (sip_udp, sip_tcp) = bind_sip(sip)
            .await
            .with_context(|| format!("binding sip.listen {sip}"))?;
        let http = TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("binding http.listen {}", config.http.listen))?;
        Ok(Self {
            sip_udp,
            sip_tcp,
            http,
        })
    }

    /// The lines `serve` prints once ready, one per listener.
    pub fn describe(&self) -> anyhow::Result<Vec<String>> {
        Ok(vec![
            format!("sip udp {}", self.sip_udp.local_addr()?),
            format!("sip tcp {}", self.sip_tcp.local_addr()?),
            format!("http http://{}", self.http.local_addr()?),
        ])
    }
}

async fn bind_sip(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut last_err = None;
    for _ in 0..if addr.port() == 0 { 20 } else { 1 } {
        let udp = UdpSocket::bind(addr).await?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| std::io::Error::other("no port")))
}

struct Health {
    stats: Arc<SipStats>,
    data_dir: std::path::PathBuf,
    writer: hotline_store::WriterHandle,
    media: Arc<crate::media::MediaPlane>,
}

impl HealthProbe for Health {
    fn checks(&self) -> Vec<Check> {
        vec![
            Check {
                name: "sip",
                ok: self.stats.running.load(Ordering::Relaxed),
            },
            Check {
                name: "storage",
                ok: dir_writable(&self.data_dir),
            },
            Check {
                name: "database",
                ok: self.writer.backlog().database_ok,
            },
            // New calls are taken: not draining (shutdown) and not refused by admission
            // control (media overloaded), so a load balancer sends calls elsewhere meanwhile.
            Check {
                name: "admission",
                ok: self.stats.accepting.load(Ordering::Relaxed) && !self.media.refusing(),
            },
        ]
    }
}

struct MetricsText(Arc<crate::metrics::Metrics>, Arc<crate::media::MediaPlane>);

impl hotline_console::MetricsSource for MetricsText {
    fn render(&self) -> String {
        let mut out = self.0.render();
        crate::metrics::render_media(&mut out, &self.1);
        out
    }
}

fn dir_writable(dir: &Path) -> bool {
    std::fs::metadata(dir).is_ok_and(|m| m.is_dir() && !m.permissions().readonly())
}

/// Runs the hotline on `listeners` until `shutdown` completes; then stops
/// taking calls and lets those in progress end within `shutdown.grace_secs`.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = Arc::new(config);
    std::fs::create_dir_all(&config.storage.data_dir).with_context(|| {
        format!(
            "creating storage.data_dir {}",
            config.storage.data_dir.display()
        )
    })?;
    let (assets, report) = crate::prompts::load(&config)?;
    for f in &report.fallbacks {
        tracing::warn!("{f}: the other language's prompt will be played");
    }
    for u in &report.unreadable {
        tracing::error!("prompt not loaded: {u}");
    }
    let assets = Arc::new(assets);
    let callbacks = crate::callback::Callbacks::load(&config)?;
    let cluster: Option<hotline_cluster::Cluster> = crate::cluster::connect(&config)?;
    let store = crate::storage::connect(&config).await?;
    crate::storage::migrate_or_retry(store.clone()).await;
    let (writer, storage) = crate::storage::start(&config, store.clone())?;
    let metrics = Arc::new(crate::metrics::Metrics::new(storage.writer.clone()));
    // Start-up repair of this node's recordings; in a cluster also the lease and adoption.
    crate::adoption::start_storage(cluster.as_ref(), &config, &storage.writer, &metrics);
    let stats = Arc::new(SipStats::default());
    let queue = match &cluster {
        Some(c) => c.spawn_queue(config.queue.queue_config()),
        None => hotline_queue::spawn(config.queue.queue_config()),
    };
    if let Some(c) = &cluster {
        crate::shared_bindings::spawn_publisher(c.clone(), stats.registrations.clone());
    }
    crate::operators::spawn_registration_sync(
        stats.registrations.clone(),
        queue.clone(),
        store.clone(),
    );
    let media = crate::media::MediaPlane::start(
        config.media.plane_settings(),
        &config.storage.data_dir,
        metrics.clone(),
    )
    .context("starting the media shards")?;
    let sip_ip = listeners.sip_udp.local_addr()?.ip();
    let rtp = RtpPorts::new(sip_ip, config.rtp.port_range.even_ports());

    let state = AppState::new(
        Arc::new(Health {
            stats: stats.clone(),
            data_dir: config.storage.data_dir.clone(),
            writer: storage.writer.clone(),
            media: media.clone(),
        }),
        Arc::new(MetricsText(metrics.clone(), media.clone())),
        store.clone(),
        config.storage.data_dir.clone(),
    )
    .with_queue(Arc::new(crate::operators::QueueAdapter {
        queue: queue.clone(),
        store: store.clone(),
    }))
    .with_console_settings(hotline_console::ConsoleSettings {
        secure_cookies: config.http.secure_cookies,
        sip_domain: config.sip.domain.clone(),
        trusted_proxies: config.http.trusted_proxies.clone(),
        time_zone: config.time_zone.0.clone(),
        ..hotline_console::ConsoleSettings::default()
    });
    let app = hotline_console::router(state);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut http_stop = stop_rx.clone();
    let http = tokio::spawn(async move {
        axum::serve(
            listeners.http,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = http_stop.wait_for(|s| *s).await;
        })
        .await
    });
    let sip = tokio::spawn(
        SipTask {
            config: config.clone(),
            udp: listeners.sip_udp,
            tcp: listeners.sip_tcp,
            stats,
            rtp,
            assets,
            metrics: metrics.clone(),
            storage,
            queue,
            media: media.clone(),
            cluster: cluster.clone(),
            callbacks: callbacks.map(|c| (c, store.clone())),
        }
        .run(stop_rx),
    );
    shutdown.await;
    tracing::info!("shutdown requested");
    let _ = stop_tx.send(true);
    let sip_result = sip.await.context("SIP task panicked")?;
    // Call tasks finish their recordings and outcomes before the writer stops.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while metrics.call_tasks() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    if metrics.call_tasks() > 0 {
        tracing::error!(
            left = metrics.call_tasks(),
            "call tasks still running at exit"
        );
    }
    // The calls are over: the shards stop, then the recording writer.
    let plane = media.clone();
    let _ = tokio::task::spawn_blocking(move || plane.shutdown()).await;
    let _ = http.await;
    // Commit or spool what the calls left in the writer's queue.
    let backlog = writer.shutdown().await;
    tracing::info!(
        spooled = backlog.spooled,
        committed = backlog.committed,
        "store writer stopped"
    );
    store.close().await;
    sip_result
}

/// Completes on SIGINT or SIGTERM.
pub async fn signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
