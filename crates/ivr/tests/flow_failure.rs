//! A flow that breaks at run time (a node that does not exist, `goto` nodes in a loop)
//! ends the call as `failed`, with one outcome, instead of hanging.

use std::sync::Arc;
use std::time::Instant;

use hotline_ivr::{Command, Disposition, EventKind, Flow, FlowDef, Input};

fn run(nodes: &str) -> Vec<Command> {
    let text = format!(
        "start = \"a\"\nlanguage = \"es\"\nmax_call_ms = 60_000\non_max_call = \"a\"\n{nodes}"
    );
    let def = Arc::new(FlowDef::from_toml(&text).expect("loads"));
    let epoch = Instant::now();
    let mut flow = Flow::new(def, epoch, "1".into());
    flow.handle(epoch, Input::Answered);
    std::iter::from_fn(|| flow.poll_command()).collect()
}

fn outcome(commands: &[Command]) -> Option<Disposition> {
    commands.iter().find_map(|c| match c {
        Command::Outcome { disposition, .. } => Some(*disposition),
        _ => None,
    })
}

#[test]
fn unknown_node_fails_the_call() {
    let out = run("[nodes.a]\nkind = \"goto\"\nnext = \"nowhere\"\n");
    assert!(out.contains(&Command::HangUp));
    assert_eq!(outcome(&out), Some(Disposition::Failed));
    assert!(out.iter().any(|c| matches!(
        c,
        Command::Event { kind: EventKind::Error, detail } if detail == "no node `nowhere`"
    )));
}

#[test]
fn goto_loop_fails_the_call() {
    let out =
        run("[nodes.a]\nkind = \"goto\"\nnext = \"b\"\n[nodes.b]\nkind = \"goto\"\nnext = \"a\"\n");
    assert_eq!(outcome(&out), Some(Disposition::Failed));
    assert_eq!(
        out.iter()
            .filter(|c| matches!(c, Command::Outcome { .. }))
            .count(),
        1
    );
}
