//! Where a node keeps its files under the storage root (`storage.data_dir`).
//!
//! One process (`cluster.node_id` empty), as always:
//!
//! ```text
//! <root>/spool/store.jsonl                       the store writer's spool
//! <root>/recordings/YYYY/MM/DD/<id>.wav          recordings
//! <root>/secret.key                              pseudonyms and digest nonces
//! ```
//!
//! A cluster node `<node>` (the root is shared by every node, NFS in production):
//!
//! ```text
//! <root>/nodes/<node>/spool/store.jsonl          this node's spool (never shared)
//! <root>/recordings/<node>/YYYY/MM/DD/<id>.wav   this node's recordings
//! <root>/secret.key                              shared: every node makes the same pseudonyms
//! ```
//!
//! A recording's path in the database is relative to the root
//! (`recordings/<node>/YYYY/MM/DD/<id>.wav`), so any node's console serves any recording.
//! A node repairs at start only [`Layout::own_recordings`]; the `.part` files of another node
//! are that node's, or a survivor's to adopt once its lease ran out (`adoption.rs`).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::Config;

/// Sub-directory of the root holding the cluster nodes' own directories (spools).
const NODES_DIR: &str = "nodes";
/// Sub-directory of the root holding the recordings.
const RECORDINGS_DIR: &str = "recordings";

/// This node's view of the storage root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    root: PathBuf,
    /// `None`: the one-process hotline.
    node: Option<String>,
}

impl Layout {
    /// The layout of node `node_id` (empty: one process) on `root`.
    pub(crate) fn new(root: &Path, node_id: &str) -> Layout {
        Layout {
            root: root.to_path_buf(),
            node: (!node_id.is_empty()).then(|| node_id.to_owned()),
        }
    }

    /// The layout of the config's `storage.data_dir` and `cluster.node_id`.
    pub(crate) fn of(config: &Config) -> Layout {
        Layout::new(&config.storage.data_dir, &config.cluster.node_id)
    }

    /// The storage root: recordings' stored paths are relative to it.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The store writer's spool directory: `<root>/spool`, or `<root>/nodes/<node>/spool`.
    pub(crate) fn spool_dir(&self) -> PathBuf {
        let base = match &self.node {
            None => self.root.clone(),
            Some(node) => self.root.join(NODES_DIR).join(node),
        };
        base.join(hotline_store::writer::SPOOL_DIR)
    }

    /// The recordings this node writes and repairs at start: `<root>/recordings`, or
    /// `<root>/recordings/<node>`.
    pub(crate) fn own_recordings(&self) -> PathBuf {
        match &self.node {
            None => self.root.join(RECORDINGS_DIR),
            Some(node) => self.root.join(RECORDINGS_DIR).join(node),
        }
    }

    /// Another cluster node's recordings directory (for an adoption); `None` for an id that
    /// is not a node id (`cluster.node_id`'s rule: 1-32 of `a-z`, `0-9`, `-`), so that a
    /// row in the database can never point a repair outside the recordings.
    pub(crate) fn recordings_of(&self, node: &str) -> Option<PathBuf> {
        let valid = !node.is_empty()
            && node.len() <= 32
            && node
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        valid.then(|| self.root.join(RECORDINGS_DIR).join(node))
    }

    /// The directory of a recording started at `at`: `YYYY/MM/DD` (UTC) under
    /// [`Layout::own_recordings`].
    pub(crate) fn day_dir(&self, at: SystemTime) -> PathBuf {
        let days = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 86_400) as i64;
        let (y, m, d) = civil_from_days(days);
        self.own_recordings()
            .join(format!("{y:04}"))
            .join(format!("{m:02}"))
            .join(format!("{d:02}"))
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// 2026-11-29 00:00 UTC.
    const NOV_29: u64 = 1_795_910_400;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_819), (2027, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn one_process_keeps_the_old_layout() {
        let l = Layout::new(Path::new("/d"), "");
        assert_eq!(l.spool_dir(), Path::new("/d/spool"));
        assert_eq!(l.own_recordings(), Path::new("/d/recordings"));
        let at = UNIX_EPOCH + Duration::from_secs(NOV_29 + 3600);
        assert_eq!(l.day_dir(at), Path::new("/d/recordings/2026/11/29"));
    }

    #[test]
    fn a_cluster_node_has_its_own_spool_and_recordings() {
        let a = Layout::new(Path::new("/shared"), "node-a");
        let b = Layout::new(Path::new("/shared"), "b2");
        assert_eq!(a.spool_dir(), Path::new("/shared/nodes/node-a/spool"));
        assert_eq!(b.spool_dir(), Path::new("/shared/nodes/b2/spool"));
        assert_eq!(a.own_recordings(), Path::new("/shared/recordings/node-a"));
        let at = UNIX_EPOCH + Duration::from_secs(NOV_29 + 86_399);
        assert_eq!(
            a.day_dir(at),
            Path::new("/shared/recordings/node-a/2026/11/29")
        );
        // The stored path, relative to the root, names the node.
        let rel = a.day_dir(at).join("x.wav");
        assert_eq!(
            rel.strip_prefix(a.root()).ok(),
            Some(Path::new("recordings/node-a/2026/11/29/x.wav"))
        );
        // Neither node's directories lie inside the other's.
        assert!(!a.own_recordings().starts_with(b.own_recordings()));
        assert!(!b.own_recordings().starts_with(a.own_recordings()));
        assert!(!a.spool_dir().starts_with(b.spool_dir()));
        // The secret stays at the root: every node's is the same file.
        assert_eq!(a.root(), b.root());
    }

    #[test]
    fn another_nodes_directory_only_for_a_node_id() {
        let a = Layout::new(Path::new("/shared"), "a");
        assert_eq!(
            a.recordings_of("b"),
            Some(PathBuf::from("/shared/recordings/b"))
        );
        for bad in ["", "..", "../x", "b/c", "B", "/etc", &"x".repeat(33)] {
            assert_eq!(a.recordings_of(bad), None, "{bad:?}");
        }
    }
}
