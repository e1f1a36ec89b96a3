//! Cluster nodes for the end-to-end tests: N `hotline serve` processes with `[cluster]
//! node_id` set, sharing one PostgreSQL database (`DATABASE_URL`) and one data directory, each
//! on its own SIP and HTTP ports (127.0.0.1:0). Started one after the other, each once it has
//! migrated the database, so that they never race on the schema or the deployment secret.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::pg::PgDatabase;
use super::{Config, Server, Setup};

/// How long a node may take to say its database is ready.
const DATABASE_READY: Duration = Duration::from_secs(30);

/// The `[cluster]` section for `node_id`.
pub(crate) fn cluster_section(node_id: &str) -> String {
    format!("[cluster]\nnode_id = \"{node_id}\"\n")
}

/// Starts one node per id, each with `config(id)` plus its `[cluster]` section, on `db` and
/// the shared `data_dir` (which the caller keeps alive). Panics with the node's output if one
/// does not start or does not reach the database.
#[track_caller]
pub(crate) fn start_nodes(
    ids: &[&str],
    db: &PgDatabase,
    data_dir: &Path,
    config: impl Fn(&str) -> Config,
) -> Vec<Server> {
    ids.iter()
        .map(|id| start_node(id, db, data_dir, &config(id), None))
        .collect()
}

/// One node `id` with `config` plus its `[cluster]` section, its SIP on `sip` (a free port
/// if `None`), once it has reached the database.
#[track_caller]
pub(crate) fn start_node(
    id: &str,
    db: &PgDatabase,
    data_dir: &Path,
    config: &Config,
    sip: Option<SocketAddr>,
) -> Server {
    let config = config.clone().sections(&cluster_section(id));
    let setup = Setup::new_in(&config, Some(data_dir)).env("DATABASE_URL", &db.url());
    let server = match sip {
        Some(addr) => setup.start_at(&addr.to_string()),
        None => setup.start(),
    };
    assert!(
        server.wait_for_log(0, &["database ready"], DATABASE_READY),
        "node {id} did not report its database ready within {DATABASE_READY:?}\n{}",
        server.report()
    );
    server
}

/// The SIP Call-IDs of the calls `server` took (its `incoming call` log lines), in order.
pub(crate) fn incoming_call_ids(server: &Server) -> Vec<String> {
    server
        .log()
        .lines()
        .filter(|l| l.contains("incoming call"))
        .filter_map(|l| {
            let rest = &l[l.find("sip_call_id=")? + "sip_call_id=".len()..];
            let id = rest.split_whitespace().next()?.trim_matches('"');
            Some(id.to_owned())
        })
        .collect()
}
