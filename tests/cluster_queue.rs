//! One operator queue for two nodes (`[cluster]`), end to end: two `hotline serve` nodes on
//! one PostgreSQL database, sipp callers, a pjsua2 operator softphone.
//!
//! 1. `the_queue_carries_on_when_its_leader_dies`: node A leads the queue; three callers
//!    wait on node B for the operator (registered at B, paused); kill -9 A; the operator
//!    sets herself available on B and is offered the first of the three within 5 s of the
//!    kill; the call she takes is the one that waited longest.
//!
//! PostgreSQL: `postgres@127.0.0.1:5432`, a fresh database per test, dropped after it.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::http::api;
use common::json::Json;
use common::pcap::Timeline;
use common::pg::PgDatabase;
use common::softphone::Softphone;
use common::{Config, PcapScenario, Report, Server, Setup};

const DOMAIN: &str = "hotline.local";
const OP_PASSWORD: &str = "op-softphone-pw";
const EVENT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Nodes

fn node_config(node: &str) -> Config {
    Config::default().sections(&format!(
        "[cluster]\nnode_id = \"{node}\"\nlease_secs = 3\n\
         [queue]\nring_timeout_secs = 10\nwrap_up_secs = 0\nposition_every_secs = 0\n\
         [media]\nmax_cpu_percent = 100\nmax_busy_percent = 100\nmax_late_percent = 100\nmax_backlog_percent = 100\n"
    ))
}

fn node_setup(db: &PgDatabase, node: &str) -> Setup {
    Setup::new(&node_config(node)).env("DATABASE_URL", &db.url())
}

/// The servers of a test, for failure messages.
struct Nodes<'a>(Vec<&'a Server>);

impl Report for Nodes<'_> {
    fn report(&self) -> String {
        self.0
            .iter()
            .enumerate()
            .map(|(i, s)| format!("===== node {i}\n{}", s.report()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn wait_log(server: &Server, needle: &str, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if server.log().contains(needle) {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

fn set_status(server: &Server, token: &str, name: &str, status: &str) {
    api(
        server,
        "PUT",
        &format!("/api/operators/{name}/status"),
        token,
        Some(&format!(r#"{{"status":"{status}"}}"#)),
    );
}

fn queue(server: &Server, token: &str) -> Json {
    api(server, "GET", "/api/queue", token, None)
}

/// Polls `f` until it is true or `timeout` passes.
fn until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Press 1 (Spanish), 3 (operator), then silence until `ms` after the ACK.
fn waiting_caller(ms: u32) -> Timeline {
    let mut t = Timeline::new();
    t.until(1_500).digit('1', 100);
    t.until(3_000).digit('3', 100);
    let now = t.now_ms() as u32;
    t.silence(ms.saturating_sub(now));
    t
}

/// Users ana (operator) and sup (supervisor) on `db`; node a started and leading the queue,
/// then node b; sup's API token.
fn leader_a_and_b(db: &PgDatabase) -> (Server, Server, String) {
    let setup_a = node_setup(db, "a");
    for (name, role, password) in [
        ("ana", "operator", OP_PASSWORD),
        ("sup", "supervisor", "sup-password-1"),
    ] {
        setup_a
            .admin(
                &["user", "add", name, "--role", role, "--password-stdin"],
                Some(&format!("{password}\n")),
            )
            .expect_ok();
    }
    let sup = setup_a
        .admin(&["token", "create", "sup"], None)
        .expect_ok()
        .trim()
        .to_owned();
    let a = setup_a.start();
    assert!(
        wait_log(&a, "this node now leads the operator queue", EVENT),
        "node a did not take the queue's lead\n{}",
        a.report()
    );
    let b = node_setup(db, "b").start();
    (a, b, sup)
}

// ---------------------------------------------------------------------------------------
// 1.

#[test]
fn the_queue_carries_on_when_its_leader_dies() {
    let db = PgDatabase::create();
    let (a, b, sup) = leader_a_and_b(&db);
    let nodes = Nodes(vec![&a, &b]);

    // ana registers at B and is logged in but paused: callers wait for her.
    let ana = Softphone::operator(
        b.udp,
        "ana",
        OP_PASSWORD,
        DOMAIN,
        &["--hangup-after-ms", "2000", "--timeout-s", "150"],
    );
    ana.wait("registered", EVENT, &nodes);
    set_status(&b, &sup, "ana", "paused");
    assert!(
        until(EVENT, || {
            queue(&a, &sup)
                .get("operators")
                .as_array()
                .is_some_and(|ops| {
                    ops.iter().any(|o| {
                        o.get("name").as_str() == Some("ana")
                            && o.get("registered") == &Json::Bool(true)
                            && o.get("status").as_str() == Some("paused")
                    })
                })
        }),
        "ana never shown registered and paused by the queue\n{}",
        nodes.report()
    );

    // Three callers on B, one second apart.
    let scenario = PcapScenario::new("uac_media_pcap", &waiting_caller(60_000));
    let callers: Vec<_> = (0..3)
        .map(|_| {
            let c = scenario.spawn(&b, 60_000);
            thread::sleep(Duration::from_millis(1000));
            c
        })
        .collect();
    let mut waiting: Vec<String> = Vec::new();
    assert!(
        until(Duration::from_secs(30), || {
            let q = queue(&b, &sup);
            waiting = q
                .get("waiting")
                .as_array()
                .unwrap_or_default()
                .iter()
                .filter_map(|w| w.get("call_id").as_str().map(str::to_owned))
                .collect();
            waiting.len() == 3
        }),
        "the three callers never all waited in the queue: {waiting:?}\n{}",
        nodes.report()
    );
    let first = waiting[0].clone();

    // The leader dies; ana becomes available on B.
    a.sigkill();
    let killed = Instant::now();
    set_status(&b, &sup, "ana", "available");
    let incoming = ana.wait("incoming", Duration::from_secs(15), &nodes);
    let offered_after = killed.elapsed();
    eprintln!("kill -9 of the queue leader -> operator offered a call: {offered_after:?}");
    assert!(
        offered_after < Duration::from_secs(5),
        "the operator was offered a call {offered_after:?} after the leader died (limit 5 s): \
         {incoming:?}\n{}",
        nodes.report()
    );
    assert!(
        wait_log(&b, "this node now leads the operator queue", EVENT),
        "node b never took the lead\n{}",
        b.report()
    );

    // The other two still wait, in order, on the surviving node.
    let mut left: Vec<String> = Vec::new();
    assert!(
        until(Duration::from_secs(5), || {
            left = queue(&b, &sup)
                .get("waiting")
                .as_array()
                .unwrap_or_default()
                .iter()
                .filter_map(|w| w.get("call_id").as_str().map(str::to_owned))
                .collect();
            left == waiting[1..]
        }),
        "after the first was taken, the queue holds {left:?}, not {:?}\n{}",
        &waiting[1..],
        nodes.report()
    );

    // The call she took is the one that waited longest.
    let mut operator_call = None;
    assert!(
        until(EVENT, || {
            let calls = api(&b, "GET", "/api/calls?limit=10", &sup, None);
            operator_call = calls
                .get("calls")
                .as_array()
                .unwrap_or_default()
                .iter()
                .find(|c| c.get("operator").as_str() == Some("ana"))
                .and_then(|c| c.get("id").as_str().map(str::to_owned));
            operator_call.is_some()
        }),
        "no call shows ana as its operator\n{}",
        nodes.report()
    );
    assert_eq!(
        operator_call.as_deref(),
        Some(first.as_str()),
        "ana took another call than the one that waited longest ({waiting:?})\n{}",
        nodes.report()
    );
    ana.wait("disconnected", EVENT, &nodes);
    drop(callers);
    drop(scenario);
}

// ---------------------------------------------------------------------------------------
// 2.

/// Node B dies with a caller talking to ana and another waiting: once B's lease runs out
/// the queue (led by A) drops B's waiting caller and frees ana.
#[test]
fn a_dead_nodes_calls_leave_the_queue_and_free_its_operator() {
    let db = PgDatabase::create();
    let (a, b, sup) = leader_a_and_b(&db);
    let nodes = Nodes(vec![&a, &b]);
    let ana = Softphone::operator(b.udp, "ana", OP_PASSWORD, DOMAIN, &["--timeout-s", "150"]);
    ana.wait("registered", EVENT, &nodes);
    assert!(
        until(EVENT, || {
            queue(&a, &sup)
                .get("operators")
                .as_array()
                .is_some_and(|ops| {
                    ops.iter().any(|o| {
                        o.get("name").as_str() == Some("ana")
                            && o.get("registered") == &Json::Bool(true)
                    })
                })
        }),
        "ana never shown registered\n{}",
        nodes.report()
    );
    set_status(&b, &sup, "ana", "available");

    let scenario = PcapScenario::new("uac_media_pcap", &waiting_caller(60_000));
    let talking = scenario.spawn(&b, 60_000);
    ana.wait("confirmed", Duration::from_secs(30), &nodes);
    let waiting = scenario.spawn(&b, 60_000);
    let busy_and_one_waiting = |q: &Json| {
        let busy = q.get("operators").as_array().is_some_and(|ops| {
            ops.iter()
                .any(|o| o.get("name").as_str() == Some("ana") && !o.get("current_call").is_null())
        });
        busy && q.get("waiting").as_array().map(<[Json]>::len) == Some(1)
    };
    assert!(
        until(Duration::from_secs(20), || busy_and_one_waiting(&queue(
            &a, &sup
        ))),
        "never ana busy with one caller waiting: {:?}\n{}",
        queue(&a, &sup),
        nodes.report()
    );

    b.sigkill();
    let killed = Instant::now();
    let mut last = Json::Null;
    assert!(
        until(Duration::from_secs(15), || {
            last = queue(&a, &sup);
            let free = last.get("operators").as_array().is_some_and(|ops| {
                ops.iter().any(|o| {
                    o.get("name").as_str() == Some("ana") && o.get("current_call").is_null()
                })
            });
            free && last.get("waiting").as_array().map(<[Json]>::len) == Some(0)
        }),
        "B's calls still in the queue: {last:?}\n{}",
        nodes.report()
    );
    eprintln!(
        "kill -9 of the node holding the calls -> its calls out of the queue: {:?} (lease 3 s)",
        killed.elapsed()
    );
    drop((talking, waiting, scenario));
}
