//! Softphone bindings shared between nodes (`sip_bindings`): each node's registrar
//! publishes the bindings it holds; any node looks up an operator's bindings to ring them
//! through the proxy in front (the binding's Path).
//!
//! A node publishes changes only (new, refreshed, removed during this run): a node that
//! restarts with an empty registrar does not wipe the bindings it published before, which
//! stay good until they expire (the phone is still registered; the proxy still reaches it).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::{Cluster, ClusterError};

/// One binding as a node publishes it.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedBinding {
    /// The operator (the user of the AOR).
    pub operator: String,
    /// The contact URI.
    pub contact: String,
    /// The Path URIs (RFC 3327), first hop first, `<>` kept.
    pub path: Vec<String>,
    /// `q`, if given.
    pub q: Option<f32>,
    /// Time left until it expires.
    pub expires_in: Duration,
}

/// (operator, contact) → (path, q in thousandths, expiry in unix seconds).
type Rows = BTreeMap<(String, String), (Vec<String>, Option<u32>, u64)>;

/// What a node published last, to send only the differences.
#[derive(Debug, Default)]
pub struct Published {
    rows: Rows,
}

impl Cluster {
    /// Publishes this node's bindings `now_unix` (seconds, the node's clock: only the time
    /// left is sent): upserts the new and refreshed ones, deletes the ones this run had
    /// published and no longer holds. On an error nothing is marked published; the next
    /// call sends it again.
    pub async fn publish_bindings(
        &self,
        published: &mut Published,
        current: &[SharedBinding],
        now_unix: u64,
    ) -> Result<(), ClusterError> {
        let next: Rows = current
            .iter()
            .map(|b| {
                (
                    (b.operator.clone(), b.contact.clone()),
                    (
                        b.path.clone(),
                        b.q.map(|q| (q * 1000.0) as u32),
                        now_unix + b.expires_in.as_secs(),
                    ),
                )
            })
            .collect();
        // A refresh moves the expiry by the re-registration interval; jitter of a second
        // from rounding is not a change.
        let changed = |k: &(String, String)| match (published.rows.get(k), next.get(k)) {
            (Some(a), Some(b)) => a.0 != b.0 || a.1 != b.1 || a.2.abs_diff(b.2) > 1,
            _ => true,
        };
        let upserts: Vec<&SharedBinding> = current
            .iter()
            .filter(|b| changed(&(b.operator.clone(), b.contact.clone())))
            .collect();
        let removed: Vec<&(String, String)> = published
            .rows
            .keys()
            .filter(|k| !next.contains_key(*k))
            .collect();
        if upserts.is_empty() && removed.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for b in &upserts {
            sqlx::query(
                "INSERT INTO sip_bindings (operator, node_id, contact, path, q, expires_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6), now()) \
                 ON CONFLICT (operator, node_id, contact) DO UPDATE SET \
                 path = excluded.path, q = excluded.q, expires_at = excluded.expires_at, \
                 updated_at = excluded.updated_at",
            )
            .bind(&b.operator)
            .bind(&self.node)
            .bind(&b.contact)
            .bind(serde_json::to_value(&b.path)?)
            .bind(b.q)
            .bind(b.expires_in.as_secs_f64())
            .execute(&mut *tx)
            .await?;
        }
        for (operator, contact) in &removed {
            sqlx::query(
                "DELETE FROM sip_bindings WHERE operator = $1 AND node_id = $2 AND contact = $3",
            )
            .bind(operator)
            .bind(&self.node)
            .bind(contact)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM sip_bindings WHERE expires_at < now() - interval '1 hour'")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        published.rows = next;
        Ok(())
    }

    /// The operator's bindings that have not expired, whichever node holds them: highest
    /// `q` first, then the most recently refreshed; one per contact.
    pub async fn bindings_of(&self, operator: &str) -> Result<Vec<SharedBinding>, ClusterError> {
        let rows: Vec<(String, serde_json::Value, Option<f32>, f64)> = sqlx::query_as(
            "SELECT contact, path, q, left_s FROM ( \
                 SELECT DISTINCT ON (contact) contact, path, q, updated_at, \
                        extract(epoch from (expires_at - now()))::float8 AS left_s \
                 FROM sip_bindings WHERE operator = $1 AND expires_at > now() \
                 ORDER BY contact, updated_at DESC) latest \
             ORDER BY q DESC NULLS LAST, updated_at DESC",
        )
        .bind(operator)
        .fetch_all(&self.pool)
        .await?;
        let out: Vec<SharedBinding> = rows
            .into_iter()
            .map(|(contact, path, q, left)| {
                Ok(SharedBinding {
                    operator: operator.to_owned(),
                    contact,
                    path: serde_json::from_value(path)?,
                    q,
                    expires_in: Duration::from_secs_f64(left.max(0.0)),
                })
            })
            .collect::<Result<_, ClusterError>>()?;
        Ok(out)
    }
}
