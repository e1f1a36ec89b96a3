//! Cluster mode (`cluster.node_id` set): this node's [`Cluster`] handle. `None` for the
//! one-process hotline.

use anyhow::Context as _;
use hotline_cluster::Cluster;

use crate::config::Config;

/// Connects (lazily: a database that is away is retried). The lease starts with the
/// storage side, once the migrations ran (`adoption::start_storage`).
pub(crate) fn connect(config: &Config) -> anyhow::Result<Option<Cluster>> {
    let c = &config.cluster;
    if !c.enabled() {
        return Ok(None);
    }
    let url = config.effective_database_url();
    let cluster = Cluster::connect(url.as_str(), &c.node_id, c.lease())
        .context("cluster.node_id: connecting to storage.database_url")?;
    tracing::info!(node = %c.node_id, lease_secs = c.lease_secs, "cluster node");
    Ok(Some(cluster))
}
