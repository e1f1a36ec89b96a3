//! The store as the binary uses it: open and migrate, the group-commit writer
//! the call path submits to (never waiting for the database), and the caller
//! privacy policy.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hotline_store::privacy::{CallerIdPolicy, CallerPrivacy};
use hotline_store::writer::{StoreWriter, WriterConfig, WriterHandle};
use hotline_store::{CallStore, redact_url};

use crate::config::{CallerId, Config};

/// What call tasks and the console share.
#[derive(Debug, Clone)]
pub(crate) struct Storage {
    pub(crate) writer: WriterHandle,
    pub(crate) privacy: Arc<CallerPrivacy>,
}

/// Opens the database of the config (SQLite file in the data dir by default).
pub(crate) async fn connect(config: &Config) -> anyhow::Result<Arc<dyn CallStore>> {
    let url = config.effective_database_url();
    if let Some(dir) = sqlite_parent(url.as_str()) {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    hotline_store::connect(url.as_str())
        .await
        .with_context(|| format!("opening the database {}", redact_url(url.as_str())))
}

fn sqlite_parent(url: &str) -> Option<std::path::PathBuf> {
    let path = url.strip_prefix("sqlite://")?;
    let path = path.split('?').next()?;
    std::path::Path::new(path)
        .parent()
        .map(std::path::Path::to_path_buf)
}

/// Applies the migrations; for `serve`, a database that is away is retried in the
/// background while calls are taken and writes are spooled.
pub(crate) async fn migrate_or_retry(store: Arc<dyn CallStore>) {
    match store.migrate().await {
        Ok(()) => tracing::info!(backend = ?store.backend(), "database ready"),
        Err(e) => {
            tracing::error!(error = %e, "database not usable yet; calls go on, writes are spooled, migration retried every 5 s");
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    match store.migrate().await {
                        Ok(()) => {
                            tracing::info!("database back; migrations applied, spool replays");
                            return;
                        }
                        Err(e) => tracing::debug!(error = %e, "database still away"),
                    }
                }
            });
        }
    }
}

/// Starts the writer (spool in `<data_dir>/spool`, a cluster node's in
/// `<data_dir>/nodes/<node_id>/spool`) and loads the privacy secret (at the root, shared).
pub(crate) fn start(
    config: &Config,
    store: Arc<dyn CallStore>,
) -> anyhow::Result<(StoreWriter, Storage)> {
    let data_dir = &config.storage.data_dir;
    let writer_config = WriterConfig {
        spool_dir: crate::layout::Layout::of(config).spool_dir(),
        ..WriterConfig::new(data_dir)
    };
    let writer = StoreWriter::start(store, writer_config).context("starting the store writer")?;
    let policy = match config.privacy.caller_id {
        CallerId::Pseudonym => CallerIdPolicy::Pseudonym,
        CallerId::Full => CallerIdPolicy::Full,
        CallerId::None => CallerIdPolicy::None,
    };
    let privacy = CallerPrivacy::load(policy, data_dir).with_context(|| {
        format!(
            "privacy.caller_id: loading the pseudonym secret in {}",
            data_dir.display()
        )
    })?;
    let storage = Storage {
        writer: writer.handle(),
        privacy: Arc::new(privacy),
    };
    Ok((writer, storage))
}
