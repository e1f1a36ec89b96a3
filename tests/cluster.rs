//! Two nodes, one hotline: Kamailio (the shipped `deploy/kamailio/kamailio.cfg`) in front of
//! two `hotline serve` nodes (`cluster.node_id` "a" and "b") that share one PostgreSQL database
//! and one data directory. sipp, from 127.0.0.1 (the trunk source Kamailio is given), calls
//! Kamailio's address only.
//!
//! 1. `calls_spread_over_both_nodes_and_are_stored_once`: 40 short IVR calls (caller BYE after
//!    1 s) all pass; both nodes took some (each node's `incoming call` log lines name the SIP
//!    Call-ID), no call reached both, and PostgreSQL holds exactly one ended row per Call-ID,
//!    each with events, none of them twice.
//! 2. `failover_after_a_node_is_killed`: after a few calls, node a is killed with SIGKILL;
//!    calls placed right after are all answered by node b. Measured: kill → first answered
//!    call (< 2 s: Kamailio's 1 s INVITE timeout toward the dead node, then the next node);
//!    and the dead node costs at most one call that delay (Kamailio marks it down).
//! 3. `a_node_refusing_calls_sends_them_to_the_other`: node a is at `sip.max_calls` (0), so it
//!    answers INVITE and OPTIONS with 503; every call still gets 200, from node b.
//! 4. `a_node_back_after_a_kill_gets_calls_again`: node a is killed with no call in progress;
//!    Kamailio's keep-alives mark it down; node a is started again on the same address, the
//!    keep-alives bring it back, and calls reach both nodes again.
//! 5. `registers_of_one_operator_stay_on_one_node`: softphone REGISTERs through Kamailio
//!    reach a node (its 401 challenge comes back), and every REGISTER of one operator reaches
//!    the same node.
//! 6. `only_the_trunk_may_call_and_floods_are_dropped`: with the trunk elsewhere, an INVITE from
//!    127.0.0.1 gets 403 from Kamailio and reaches no node; a burst of requests from it is
//!    cut short by pike (dropped, no answer).
//! 7. `the_nodes_bye_reaches_the_caller_through_kamailio`: calls the nodes end
//!    (`calls.max_duration_secs`): their BYE follows the Record-Route back through Kamailio.
//! 8. `a_draining_node_sends_new_calls_to_the_other`: node a gets SIGTERM while it carries a
//!    call; it refuses new calls (503 to INVITE and OPTIONS) while that call finishes, and every
//!    new call is answered by node b without waiting.
//!
//! 9. `an_operator_through_kamailio_takes_callers_of_both_nodes_one_at_a_time`: a pjsua2
//!    softphone registers through Kamailio (Path) on one node; two callers land one on each
//!    node; she is offered both, one after the other (never two at once), each leg reaching
//!    her through Kamailio on the Path she registered with.
//!
//! Needs kamailio (skipped with a note when missing, a failure with `CI` set), sipp and
//! PostgreSQL at postgres@127.0.0.1:5432.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::UdpSocket;
use std::thread;
use std::time::{Duration, Instant};

use common::cluster::{incoming_call_ids, start_node, start_nodes};
use common::http::api;
use common::json::Json;
use common::kamailio::{self, Kamailio};
use common::pcap::Timeline;
use common::pg::PgDatabase;
use common::softphone::Softphone;
use common::{
    Config, PcapScenario, RunningSipp, Server, Setup, Sipp, SippRun, TracedMessage, seconds_between,
};

/// The trunk, as Kamailio is told: sipp sends from 127.0.0.1.
const TRUNK: &str = "127.0.0.1/32";
/// How long the store writers may take to commit every call.
const STORED: Duration = Duration::from_secs(30);
/// Kill → first answered call, at most.
const FAILOVER_LIMIT: Duration = Duration::from_secs(2);

/// A node's config here: media admission control never refuses (every limit at 100 %). These
/// tests run a dozen nodes on two shared cores, where a node would otherwise refuse calls for
/// overload now and then (media_calls.rs tests admission; here a refusing node is made with
/// `sip.max_calls`).
fn node_config() -> Config {
    Config::default().sections(
        "[media]\nmax_cpu_percent = 100\nmax_busy_percent = 100\nmax_late_percent = 100\n\
         max_backlog_percent = 100\n",
    )
}

/// The shared pieces of a cluster test: database, data dir, nodes, Kamailio.
struct Cluster {
    // Dropped first: Kamailio, then the nodes, then the data dir and the database.
    kamailio: Kamailio,
    nodes: Vec<Server>,
    data: tempfile::TempDir,
    db: PgDatabase,
}

impl Cluster {
    /// Nodes "a" and "b" with `config(id)`, and Kamailio over them. `None` without kamailio
    /// (outside CI).
    fn start(config: impl Fn(&str) -> Config) -> Option<Cluster> {
        Self::start_with_trunk(TRUNK, config)
    }

    /// Like [`Cluster::start`], with `trunk` as Kamailio's trunk sources.
    fn start_with_trunk(trunk: &str, config: impl Fn(&str) -> Config) -> Option<Cluster> {
        kamailio::binary()?;
        let db = PgDatabase::create();
        let data = tempfile::Builder::new()
            .prefix("hotline-cluster-data-")
            .tempdir()
            .expect("shared data dir");
        let nodes = start_nodes(&["a", "b"], &db, data.path(), config);
        let addrs: Vec<_> = nodes.iter().map(|n| n.udp).collect();
        let kamailio = Kamailio::start(&addrs, &[trunk])?;
        Some(Cluster {
            kamailio,
            nodes,
            data,
            db,
        })
    }

    /// `tests/sipp/<scenario>.xml` toward Kamailio.
    fn sipp(&self, scenario: &str) -> Sipp<'static> {
        Sipp::toward(self.kamailio.addr, self.kamailio.addr, scenario)
    }

    /// Everything about the cluster, for a failure message.
    fn report(&self) -> String {
        let mut s = self.kamailio.report();
        for n in &self.nodes {
            s.push_str(&n.report());
        }
        s
    }

    /// Panics with `what`, sipp's story and the cluster's unless `cond`.
    #[track_caller]
    fn check(&self, run: &SippRun, cond: bool, what: &str) {
        assert!(
            cond,
            "{what}\n{}\n--- database {}\n{}",
            run.report(),
            self.db.name,
            self.report()
        );
    }

    /// Which node took each call (by its log), and the Call-IDs more than one node took.
    fn takers(&self) -> (HashMap<String, usize>, Vec<String>) {
        let mut by_call = HashMap::new();
        let mut twice = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            for id in incoming_call_ids(n) {
                if by_call
                    .insert(id.clone(), i)
                    .is_some_and(|other| other != i)
                {
                    twice.push(id);
                }
            }
        }
        (by_call, twice)
    }

    /// Waits until PostgreSQL holds `n` ended calls.
    #[track_caller]
    fn wait_stored(&self, run: &SippRun, n: usize) {
        let deadline = Instant::now() + STORED;
        loop {
            let rows = self
                .db
                .rows("SELECT count(*) FROM calls WHERE ended_at IS NOT NULL");
            let have: usize = rows[0][0].parse().unwrap_or(0);
            if have >= n {
                return;
            }
            if Instant::now() >= deadline {
                self.check(
                    run,
                    false,
                    &format!("within {STORED:?} PostgreSQL has {have} ended calls of {n}"),
                );
            }
            thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The Call-IDs of the INVITEs sipp sent, in order, once each.
fn invite_call_ids(messages: &[TracedMessage]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for m in messages {
        if m.sent
            && m.method() == Some("INVITE")
            && let Some(id) = m.header("Call-ID")
            && !ids.iter().any(|i| i == id)
        {
            ids.push(id.to_owned());
        }
    }
    ids
}

/// Per call: seconds from its first INVITE to its 200 (None: never answered), in INVITE order.
fn setup_times(messages: &[TracedMessage]) -> Vec<(String, Option<f64>)> {
    invite_call_ids(messages)
        .into_iter()
        .map(|id| {
            let of_call = |m: &&TracedMessage| m.header("Call-ID") == Some(id.as_str());
            let invite = messages
                .iter()
                .filter(of_call)
                .find(|m| m.sent && m.method() == Some("INVITE"));
            let ok = messages
                .iter()
                .filter(of_call)
                .find(|m| !m.sent && m.is_response(200, "INVITE"));
            let t = match (invite, ok) {
                (Some(i), Some(o)) => Some(seconds_between(i, o)),
                _ => None,
            };
            (id, t)
        })
        .collect()
}

/// How many `method` requests sipp sent (retransmissions included).
fn count_sent(messages: &[TracedMessage], method: &str) -> usize {
    messages
        .iter()
        .filter(|m| m.sent && m.method() == Some(method))
        .count()
}

/// `calls` short calls (caller BYE after `hold_ms`) at `rate` per second, at most `limit` at
/// once.
fn short_calls(
    cluster: &Cluster,
    calls: usize,
    rate: u32,
    limit: u32,
    hold_ms: u64,
) -> RunningSipp {
    cluster
        .sipp("uac_call_bye")
        .duration_ms(hold_ms)
        .arg("-m")
        .arg(&calls.to_string())
        .arg("-r")
        .arg(&rate.to_string())
        .arg("-l")
        .arg(&limit.to_string())
        .spawn()
}

#[test]
fn calls_spread_over_both_nodes_and_are_stored_once() {
    const CALLS: usize = 40;
    let Some(cluster) = Cluster::start(|_| node_config()) else {
        return;
    };
    let started = Instant::now();
    let run = short_calls(&cluster, CALLS, 10, 20, 1000).wait();
    let elapsed = started.elapsed();
    cluster.check(&run, run.passed(), "sipp's calls through Kamailio failed");
    let messages = run.messages();
    let ids = invite_call_ids(&messages);
    let answered = messages
        .iter()
        .filter(|m| !m.sent && m.is_response(200, "INVITE"))
        .map(|m| m.header("Call-ID").unwrap_or_default().to_owned())
        .collect::<HashSet<_>>();
    cluster.check(
        &run,
        ids.len() == CALLS && answered.len() == CALLS,
        &format!(
            "expected {CALLS} calls answered: {} placed, {} answered",
            ids.len(),
            answered.len()
        ),
    );

    // Spread: each node took some, none took a call the other took, every call was taken.
    let (takers, twice) = cluster.takers();
    let per_node: Vec<usize> = (0..cluster.nodes.len())
        .map(|i| ids.iter().filter(|id| takers.get(*id) == Some(&i)).count())
        .collect();
    eprintln!(
        "{CALLS} calls through Kamailio in {elapsed:.2?}: node a took {}, node b took {}",
        per_node[0], per_node[1]
    );
    cluster.check(
        &run,
        twice.is_empty(),
        &format!("calls taken by both nodes: {twice:?}"),
    );
    cluster.check(
        &run,
        ids.iter().all(|id| takers.contains_key(id)),
        &format!(
            "calls no node logged: {:?}",
            ids.iter()
                .filter(|id| !takers.contains_key(*id))
                .collect::<Vec<_>>()
        ),
    );
    cluster.check(
        &run,
        per_node.iter().all(|&n| n > 0),
        &format!("the calls were not spread over both nodes: {per_node:?}"),
    );

    // PostgreSQL: one ended row per Call-ID, events, none twice.
    cluster.wait_stored(&run, CALLS);
    let rows = cluster.db.rows(
        "SELECT sip_call_id, count(*), bool_and(ended_at IS NOT NULL), \
         bool_and(disposition IS NOT NULL) FROM calls GROUP BY sip_call_id",
    );
    let by_sip: HashMap<&str, &Vec<String>> = rows.iter().map(|r| (r[0].as_str(), r)).collect();
    cluster.check(
        &run,
        rows.len() == CALLS,
        &format!(
            "expected {CALLS} distinct Call-IDs in calls, got {}: {rows:?}",
            rows.len()
        ),
    );
    for id in &ids {
        let row = by_sip.get(id.as_str());
        cluster.check(
            &run,
            row.is_some_and(|r| r[1] == "1" && r[2] == "t" && r[3] == "t"),
            &format!("call {id}: expected one ended row with a disposition, got {row:?}"),
        );
    }
    let without_events = cluster.db.rows(
        "SELECT c.sip_call_id FROM calls c WHERE NOT EXISTS \
         (SELECT 1 FROM call_events e WHERE e.call_id = c.id)",
    );
    cluster.check(
        &run,
        without_events.is_empty(),
        &format!("calls without events: {without_events:?}"),
    );
    let dupes = cluster.db.rows(
        "SELECT call_id, kind, detail, at, count(*) FROM call_events \
         GROUP BY call_id, kind, detail, at HAVING count(*) > 1",
    );
    cluster.check(
        &run,
        dupes.is_empty(),
        &format!("events stored twice: {dupes:?}"),
    );
    let ids_unique = cluster
        .db
        .rows("SELECT count(*), count(DISTINCT id) FROM call_events");
    cluster.check(
        &run,
        ids_unique[0][0] == ids_unique[0][1],
        &format!("event ids are not unique: {ids_unique:?}"),
    );
    eprintln!(
        "PostgreSQL: {} calls, {} events",
        rows.len(),
        ids_unique[0][0]
    );
}

#[test]
fn failover_after_a_node_is_killed() {
    const WARM_UP: usize = 4;
    const AFTER: usize = 8;
    let Some(cluster) = Cluster::start(|_| node_config()) else {
        return;
    };
    // Both nodes take calls.
    let warm = short_calls(&cluster, WARM_UP, 10, 1, 300).wait();
    cluster.check(&warm, warm.passed(), "the calls before the kill failed");
    let (takers, _) = cluster.takers();
    let warm_ids = invite_call_ids(&warm.messages());
    let per_node: Vec<usize> = (0..2)
        .map(|i| {
            warm_ids
                .iter()
                .filter(|id| takers.get(*id) == Some(&i))
                .count()
        })
        .collect();
    cluster.check(
        &warm,
        per_node.iter().all(|&n| n > 0),
        &format!("the first calls did not reach both nodes: {per_node:?}"),
    );
    // Round robin: the next call goes to the node that did not take the last one. Kill that
    // one, so that the first call after the kill meets the dead node.
    let last = warm_ids.last().and_then(|id| takers.get(id)).copied();
    let Some(last) = last else {
        panic!("no node logged the last call\n{}", cluster.report());
    };
    let victim = 1 - last;
    let survivor = last;
    let names = ["a", "b"];

    let kam_since = cluster.kamailio.log().len();
    let killed = Instant::now();
    cluster.nodes[victim].sigkill();
    // One call at a time, so that each one meets Kamailio's view of the nodes as it is then.
    let running = short_calls(&cluster, AFTER, 10, 1, 200);
    let first_answered = running
        .wait_until_received(200, "INVITE", Duration::from_secs(10))
        .then(|| killed.elapsed());
    let run = running.wait();
    eprintln!(
        "kill -9 of node {} → first answered call through Kamailio: {}",
        names[victim],
        first_answered.map_or_else(
            || "none".to_owned(),
            |d| format!("{:.0} ms", d.as_secs_f64() * 1000.0)
        )
    );
    cluster.check(&run, run.passed(), "calls after the kill failed");
    let messages = run.messages();
    let times = setup_times(&messages);
    eprintln!(
        "INVITE → 200 of each call after the kill (s): {:?}",
        times
            .iter()
            .map(|(_, t)| t.map(|t| (t * 1000.0).round() / 1000.0))
            .collect::<Vec<_>>()
    );
    cluster.check(
        &run,
        times.len() == AFTER && times.iter().all(|(_, t)| t.is_some()),
        &format!("not every call after the kill was answered: {times:?}"),
    );
    cluster.check(
        &run,
        first_answered.is_some_and(|d| d < FAILOVER_LIMIT),
        &format!("kill → first answered call {first_answered:?}, limit {FAILOVER_LIMIT:?}"),
    );
    // The first call went to the dead node and failed over after Kamailio's INVITE timeout;
    // the node was marked down then, so no other call waited for it.
    let slow = times
        .iter()
        .filter(|(_, t)| t.is_some_and(|t| t > 0.8))
        .count();
    let timeouts = cluster.kamailio.log()[kam_since..]
        .matches("did not answer INVITE in time")
        .count();
    cluster.check(
        &run,
        slow == 1 && timeouts == 1 && times[0].1.is_some_and(|t| t > 0.8),
        &format!(
            "expected the first call only to wait for the dead node: {slow} calls took over \
             0.8 s to answer, Kamailio timed out {timeouts} INVITEs toward it"
        ),
    );
    let (takers, _) = cluster.takers();
    let on_survivor = times
        .iter()
        .filter(|(id, _)| takers.get(id) == Some(&survivor))
        .count();
    cluster.check(
        &run,
        on_survivor == AFTER,
        &format!(
            "node {} took {on_survivor} of the {AFTER} calls after the kill",
            names[survivor]
        ),
    );
    cluster.wait_stored(&run, WARM_UP + AFTER);
}

#[test]
fn a_node_refusing_calls_sends_them_to_the_other() {
    const CALLS: usize = 10;
    // Node a is always at sip.max_calls: 503 to every INVITE and OPTIONS.
    let Some(cluster) = Cluster::start(|id| {
        if id == "a" {
            node_config().max_calls(0).retry_after_secs(5)
        } else {
            node_config()
        }
    }) else {
        return;
    };
    let run = short_calls(&cluster, CALLS, 10, 5, 300).wait();
    cluster.check(&run, run.passed(), "calls with node a refusing failed");
    let messages = run.messages();
    let refused = messages
        .iter()
        .filter(|m| !m.sent && m.status() == Some(503))
        .count();
    let answered = messages
        .iter()
        .filter(|m| !m.sent && m.is_response(200, "INVITE"))
        .count();
    cluster.check(
        &run,
        refused == 0 && answered == CALLS,
        &format!("the caller saw {refused} 503s and {answered} answers of {CALLS} calls"),
    );
    let (takers, _) = cluster.takers();
    let on_a = takers.values().filter(|&&i| i == 0).count();
    let on_b = takers.values().filter(|&&i| i == 1).count();
    cluster.check(
        &run,
        on_a == 0 && on_b == CALLS,
        &format!("node a took {on_a} calls, node b {on_b}"),
    );
    // Kamailio knows why: a's 503 to an INVITE, or its keep-alive's 503, took it out.
    let log = cluster.kamailio.log();
    let a = format!("sip:{}", cluster.nodes[0].udp);
    let down = log.lines().any(|l| {
        l.contains(&a) && (l.contains("refused INVITE with 503") || l.contains("hotline node down"))
    });
    cluster.check(&run, down, &format!("Kamailio never took {a} out"));
    eprintln!(
        "node a refusing: {CALLS} calls answered by node b; Kamailio: {}",
        log.lines()
            .filter(|l| l.contains(&a) && (l.contains("503") || l.contains("down")))
            .take(3)
            .collect::<Vec<_>>()
            .join(" | ")
    );
}

#[test]
fn a_node_back_after_a_kill_gets_calls_again() {
    const CALLS: usize = 10;
    /// Kill → marked down by the keep-alives alone, and start → back, at most.
    const NOTICED: Duration = Duration::from_secs(5);
    let Some(mut cluster) = Cluster::start(|_| node_config()) else {
        return;
    };
    let a = cluster.nodes[0].udp;
    let down = format!("hotline node down: sip:{a}");
    let up = format!("hotline node up: sip:{a}");

    let since = cluster.kamailio.log().len();
    let killed = Instant::now();
    cluster.nodes[0].sigkill();
    assert!(
        cluster.kamailio.wait_for_log(since, &down, NOTICED),
        "the keep-alives did not mark the killed node down within {NOTICED:?}\n{}",
        cluster.report()
    );
    eprintln!(
        "kill -9 of node a → marked down by the keep-alives: {:.2?}",
        killed.elapsed()
    );
    let _ = cluster.nodes[0].wait_exit(Duration::from_secs(5));

    let since = cluster.kamailio.log().len();
    let restarted = Instant::now();
    let again = start_node(
        "a",
        &cluster.db,
        cluster.data.path(),
        &node_config(),
        Some(a),
    );
    cluster.nodes[0] = again;
    assert!(
        cluster.kamailio.wait_for_log(since, &up, NOTICED),
        "the keep-alives did not bring node a back within {NOTICED:?} of its start\n{}",
        cluster.report()
    );
    eprintln!(
        "node a started again → back in Kamailio: {:.2?}",
        restarted.elapsed()
    );

    let run = short_calls(&cluster, CALLS, 10, 2, 300).wait();
    cluster.check(&run, run.passed(), "calls after node a came back failed");
    let ids = invite_call_ids(&run.messages());
    let (takers, _) = cluster.takers();
    let per_node: Vec<usize> = (0..2)
        .map(|i| ids.iter().filter(|id| takers.get(*id) == Some(&i)).count())
        .collect();
    eprintln!(
        "after node a came back: node a took {}, node b {}",
        per_node[0], per_node[1]
    );
    cluster.check(
        &run,
        ids.len() == CALLS
            && per_node.iter().all(|&n| n > 0)
            && per_node.iter().sum::<usize>() == CALLS,
        &format!(
            "{} calls, spread {per_node:?}: expected both nodes to take calls again",
            ids.len()
        ),
    );
    let flaps = cluster.kamailio.log()[since..].matches(&down).count();
    cluster.check(
        &run,
        flaps == 0,
        &format!("node a went down {flaps} times after it came back"),
    );
}

/// How many REGISTERs each node answered so far (its `REGISTER answered` debug lines).
fn registers_answered(cluster: &Cluster) -> Vec<usize> {
    cluster
        .nodes
        .iter()
        .map(|n| n.log().matches("REGISTER answered").count())
        .collect()
}

#[test]
fn registers_of_one_operator_stay_on_one_node() {
    const OPERATORS: [&str; 6] = ["ana", "bruno", "carla", "dario", "elena", "fabio"];
    const TIMES: usize = 3;
    let Some(cluster) = Cluster::start(|_| node_config()) else {
        return;
    };
    let mut mapping = Vec::new();
    for user in OPERATORS {
        let before = registers_answered(&cluster);
        for _ in 0..TIMES {
            let run = cluster
                .sipp("uac_register_401")
                .arg("-key")
                .arg("user")
                .arg(user)
                .arg("-key")
                .arg("domain")
                .arg("hotline.local")
                .spawn()
                .wait();
            cluster.check(
                &run,
                run.passed(),
                &format!("{user}'s REGISTER through Kamailio got no 401"),
            );
        }
        // The debug line comes with the answer; the last 401 may be a moment ahead of it.
        let deadline = Instant::now() + Duration::from_secs(5);
        let delta = loop {
            let after = registers_answered(&cluster);
            let delta: Vec<usize> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
            if delta.iter().sum::<usize>() >= TIMES || Instant::now() >= deadline {
                break delta;
            }
            thread::sleep(Duration::from_millis(20));
        };
        assert!(
            delta.iter().filter(|&&d| d > 0).count() == 1 && delta.iter().sum::<usize>() == TIMES,
            "{user}'s {TIMES} REGISTERs reached the nodes as {delta:?}: expected all on one\n{}",
            cluster.report()
        );
        mapping.push((user, if delta[0] > 0 { "a" } else { "b" }));
    }
    eprintln!("operator → node (by the hash of the To user): {mapping:?}");
}

#[test]
fn only_the_trunk_may_call_and_floods_are_dropped() {
    const BURST: usize = 300;
    // The trunk is 127.0.0.2: sipp and this test's socket (127.0.0.1) are strangers.
    let Some(cluster) = Cluster::start_with_trunk("127.0.0.2/32", |_| node_config()) else {
        return;
    };
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("read timeout");
    let local = socket.local_addr().expect("local address");
    let kam = cluster.kamailio.addr;
    let request = |method: &str, n: usize, body: &str| {
        format!(
            "{method} sip:0800232323@{kam} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKstranger{n};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:stranger@{local}>;tag=s{n}\r\nTo: <sip:0800232323@{kam}>\r\n\
             Call-ID: stranger-{n}-{local}\r\nCSeq: 1 {method}\r\nContact: <sip:stranger@{local}>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        local.port() + 2
    );
    socket
        .send_to(request("INVITE", 0, &sdp).as_bytes(), kam)
        .expect("send the INVITE");
    let mut buf = [0u8; 4096];
    let answer = socket
        .recv_from(&mut buf)
        .ok()
        .map(|(n, _)| String::from_utf8_lossy(&buf[..n]).into_owned());
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.starts_with("SIP/2.0 403")),
        "an INVITE from outside the trunk got {answer:?}, expected 403\n{}",
        cluster.report()
    );
    let (takers, _) = cluster.takers();
    assert!(
        takers.is_empty(),
        "a node took the stranger's call: {takers:?}\n{}",
        cluster.report()
    );

    // A burst of out-of-dialog requests (403 each while pike lets them through).
    for n in 1..=BURST {
        let _ = socket.send_to(request("MESSAGE", n, "").as_bytes(), kam);
    }
    let mut answered = 0;
    while socket.recv_from(&mut buf).is_ok() {
        answered += 1;
    }
    eprintln!(
        "a burst of {BURST} requests from a stranger: {answered} answered, the rest dropped by pike"
    );
    assert!(
        answered < BURST
            && cluster
                .kamailio
                .log()
                .contains("pike: 127.0.0.1 is flooding"),
        "pike did not cut the burst short: {answered} of {BURST} answered\n{}",
        cluster.report()
    );
}

#[test]
fn the_nodes_bye_reaches_the_caller_through_kamailio() {
    const CALLS: usize = 4;
    let Some(cluster) = Cluster::start(|_| node_config().max_duration_secs(2)) else {
        return;
    };
    let run = cluster
        .sipp("uac_server_bye")
        .arg("-m")
        .arg(&CALLS.to_string())
        .arg("-r")
        .arg("10")
        .spawn()
        .wait();
    cluster.check(&run, run.passed(), "calls the nodes end failed");
    let messages = run.messages();
    let byes: Vec<&TracedMessage> = messages
        .iter()
        .filter(|m| !m.sent && m.method() == Some("BYE"))
        .collect();
    let kam = cluster.kamailio.addr.to_string();
    let via_kamailio = byes
        .iter()
        .filter(|m| m.header("Via").is_some_and(|v| v.contains(&kam)))
        .count();
    let (takers, _) = cluster.takers();
    let per_node: Vec<usize> = (0..2)
        .map(|i| takers.values().filter(|&&t| t == i).count())
        .collect();
    cluster.check(
        &run,
        byes.len() >= CALLS && via_kamailio == byes.len() && per_node.iter().all(|&n| n > 0),
        &format!(
            "{} BYEs from the nodes, {via_kamailio} through Kamailio (top Via {kam}); calls per \
             node {per_node:?}",
            byes.len()
        ),
    );
}

#[test]
fn a_draining_node_sends_new_calls_to_the_other() {
    const AFTER: usize = 6;
    // Node a may let its call go on for 20 s after SIGTERM.
    let Some(mut cluster) = Cluster::start(|_| node_config().grace_secs(20)) else {
        return;
    };
    // Two long calls: round robin puts one on each node.
    let long = short_calls(&cluster, 2, 10, 2, 6000);
    let deadline = Instant::now() + Duration::from_secs(10);
    while count_sent(&long.messages(), "ACK") < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let (takers, _) = cluster.takers();
    let carrying: Vec<usize> = (0..2)
        .map(|i| takers.values().filter(|&&t| t == i).count())
        .collect();
    assert!(
        carrying == [1, 1],
        "the two long calls are not one per node: {carrying:?}\n{}",
        cluster.report()
    );
    let since = cluster.kamailio.log().len();
    let node_since = cluster.nodes[0].log_len();
    cluster.nodes[0].sigterm();
    assert!(
        cluster.nodes[0].wait_for_log(node_since, &["new calls get 503"], Duration::from_secs(5)),
        "node a did not start draining\n{}",
        cluster.report()
    );
    let run = short_calls(&cluster, AFTER, 5, 1, 200).wait();
    cluster.check(&run, run.passed(), "calls while node a drains failed");
    let times = setup_times(&run.messages());
    eprintln!(
        "INVITE → 200 of each call while node a drains (s): {:?}",
        times
            .iter()
            .map(|(_, t)| t.map(|t| (t * 1000.0).round() / 1000.0))
            .collect::<Vec<_>>()
    );
    let (takers, _) = cluster.takers();
    let on_b = times
        .iter()
        .filter(|(id, _)| takers.get(id) == Some(&1))
        .count();
    let timeouts = cluster.kamailio.log()[since..]
        .matches("did not answer INVITE in time")
        .count();
    cluster.check(
        &run,
        on_b == AFTER && timeouts == 0 && times.iter().all(|(_, t)| t.is_some_and(|t| t < 0.5)),
        &format!(
            "while node a drains: node b took {on_b} of {AFTER}, {timeouts} INVITE timeouts, \
             setup times {times:?}"
        ),
    );
    let long = long.wait();
    cluster.check(&long, long.passed(), "the long calls did not both finish");
    let exit = cluster.nodes[0].wait_exit(Duration::from_secs(20));
    assert!(
        exit.is_some_and(|s| s.success()),
        "node a did not exit 0 after its call: {exit:?}\n{}",
        cluster.report()
    );
}

// ---------------------------------------------------------------------------------------
// 9. An operator through Kamailio, callers on both nodes

/// `METHOD path` on `server`'s API as `token`; the JSON answer (2xx expected).
impl common::Report for Cluster {
    fn report(&self) -> String {
        Cluster::report(self)
    }
}

#[test]
fn an_operator_through_kamailio_takes_callers_of_both_nodes_one_at_a_time() {
    const PASSWORD: &str = "op-softphone-pw";
    let config = |_: &str| {
        node_config()
            .sip_line("trusted_proxies = [\"127.0.0.1\"]")
            .sections(
                "[queue]\nring_timeout_secs = 10\nwrap_up_secs = 0\nposition_every_secs = 0\n",
            )
    };
    let Some(cluster) = Cluster::start(config) else {
        return;
    };
    let admin = Setup::new_in(&node_config(), Some(cluster.data.path()))
        .env("DATABASE_URL", &cluster.db.url());
    admin
        .admin(
            &[
                "user",
                "add",
                "ana",
                "--role",
                "operator",
                "--password-stdin",
            ],
            Some(&format!("{PASSWORD}\n")),
        )
        .expect_ok();
    admin
        .admin(
            &[
                "user",
                "add",
                "sup",
                "--role",
                "supervisor",
                "--password-stdin",
            ],
            Some("sup-password-1\n"),
        )
        .expect_ok();
    let sup = admin
        .admin(&["token", "create", "sup"], None)
        .expect_ok()
        .trim()
        .to_owned();

    let ana = Softphone::operator(
        cluster.kamailio.addr,
        "ana",
        PASSWORD,
        "hotline.local",
        &[
            "--hangup-after-ms",
            "3000",
            "--calls",
            "2",
            "--timeout-s",
            "150",
        ],
    );
    ana.wait("registered", Duration::from_secs(20), &cluster);
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    // The queue (whichever node leads it) sees her registered, from either node's API.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let q = api(b, "GET", "/api/queue", &sup, None);
        let registered = q.get("operators").as_array().is_some_and(|ops| {
            ops.iter().any(|o| {
                o.get("name").as_str() == Some("ana") && o.get("registered") == &Json::Bool(true)
            })
        });
        if registered {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ana, registered through Kamailio, never shown registered: {q:?}\n{}",
            cluster.report()
        );
        thread::sleep(Duration::from_millis(50));
    }
    api(
        a,
        "PUT",
        "/api/operators/ana/status",
        &sup,
        Some(r#"{"status":"available"}"#),
    );

    // Two callers a second apart: round robin puts one on each node. Each presses 1 then 3
    // and waits for the operator.
    let mut timeline = Timeline::new();
    timeline.until(1_500).digit('1', 100);
    timeline.until(3_000).digit('3', 100);
    let now = timeline.now_ms() as u32;
    timeline.silence(40_000 - now);
    let scenario = PcapScenario::new("uac_media_pcap", &timeline);
    let first = scenario.spawn_toward(cluster.kamailio.addr, 40_000);
    thread::sleep(Duration::from_secs(1));
    let second = scenario.spawn_toward(cluster.kamailio.addr, 40_000);

    // She takes both, one after the other, then her softphone exits (--calls 2).
    let deadline = Instant::now() + Duration::from_secs(60);
    let kinds = |ev: &[Json]| -> Vec<String> {
        ev.iter()
            .filter_map(|e| e.get("event").as_str().map(str::to_owned))
            .filter(|k| k == "incoming" || k == "disconnected")
            .collect()
    };
    loop {
        let k = kinds(&ana.events());
        if k.iter().filter(|k| *k == "disconnected").count() >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ana did not take two calls: {k:?}\n{}\n{}",
            ana.report(),
            cluster.report()
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        kinds(&ana.events()),
        ["incoming", "disconnected", "incoming", "disconnected"],
        "ana was offered a call while on another\n{}",
        ana.report()
    );
    drop((first, second));

    // One caller on each node, both connected to ana.
    let (takers, twice) = cluster.takers();
    let per_node: Vec<usize> = (0..2)
        .map(|i| takers.values().filter(|&&t| t == i).count())
        .collect();
    assert!(
        per_node == [1, 1] && twice.is_empty(),
        "calls per node {per_node:?} (twice: {twice:?})\n{}",
        cluster.report()
    );
    let rows = cluster
        .db
        .rows("SELECT count(*) FROM calls WHERE operator = 'ana'");
    assert_eq!(
        rows[0][0],
        "2",
        "calls connected to ana in PostgreSQL\n{}",
        cluster.report()
    );
    // Both legs reached her from Kamailio (the Path), not from the nodes directly.
    let kam = cluster.kamailio.addr.to_string();
    let sources: Vec<String> = ana
        .events()
        .iter()
        .filter(|e| e.get("event").as_str() == Some("incoming"))
        .filter_map(|e| e.get("source").as_str().map(str::to_owned))
        .collect();
    assert!(
        sources.len() == 2 && sources.iter().all(|s| *s == kam),
        "ana's INVITEs came from {sources:?}, not Kamailio at {kam}\n{}",
        ana.report()
    );
    drop(scenario);
}
