//! `validate` finds what `hotline check` must report: unknown and unreachable nodes,
//! missing prompts, menus without a no-input path, no start node.

use hotline_ivr::{FlowDef, FlowProblem, Lang};

/// A small sound flow; each test breaks one thing in it.
const SOUND: &str = r#"
start = "welcome"
language = "es"
max_call_ms = 600_000
on_max_call = "bye"

[nodes.welcome]
kind = "language"
prompts = ["welcome"]
options = { "1" = "es", "2" = "qu" }
default = "es"
timeout_ms = 5_000
next = "menu"

[nodes.menu]
kind = "menu"
prompts = ["main-menu"]
options = { "1" = "info", "2" = "bye" }
timeout_ms = 6_000
no_input = "bye"

[nodes.info]
kind = "play"
prompts = ["information"]
next = "menu"

[nodes.bye]
kind = "hangup"
prompts = ["goodbye"]
"#;

fn problems(text: &str) -> Vec<FlowProblem> {
    FlowDef::from_toml(text)
        .expect("loads")
        .validate(|_, _| true)
}

fn messages(problems: &[FlowProblem]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

#[test]
fn the_sound_flow_has_no_problem() {
    assert_eq!(problems(SOUND), []);
}

#[test]
fn unknown_node() {
    let p = problems(&SOUND.replace(r#""1" = "info""#, r#""1" = "infos""#));
    assert!(p.contains(&FlowProblem::UnknownNode {
        node: Some("menu".into()),
        key: "options.1".into(),
        target: "infos".into(),
    }));
    assert!(messages(&p).contains(&"node `menu`, key `options.1`: no node `infos`".to_owned()));
    // `info` now has no way in.
    assert!(p.contains(&FlowProblem::Unreachable {
        node: "info".into()
    }));
}

#[test]
fn unknown_node_at_the_top() {
    let p = problems(&SOUND.replace(r#"on_max_call = "bye""#, r#"on_max_call = "ciao""#));
    assert_eq!(
        p,
        [FlowProblem::UnknownNode {
            node: None,
            key: "on_max_call".into(),
            target: "ciao".into()
        }]
    );
}

#[test]
fn unreachable_node() {
    let text = format!("{SOUND}\n[nodes.orphan]\nkind = \"goto\"\nnext = \"menu\"\n");
    let p = problems(&text);
    assert_eq!(
        p,
        [FlowProblem::Unreachable {
            node: "orphan".into()
        }]
    );
    assert_eq!(messages(&p), ["node `orphan`: unreachable from `start`"]);
}

#[test]
fn missing_prompt_in_one_language() {
    let def = FlowDef::from_toml(SOUND).expect("loads");
    let p = def.validate(|lang, id| !(lang == Lang::Qu && id == "information"));
    assert_eq!(
        p,
        [FlowProblem::MissingPrompt {
            node: "info".into(),
            key: "prompts".into(),
            lang: Lang::Qu,
            prompt: "information".into(),
        }]
    );
    assert_eq!(
        messages(&p),
        ["node `info`, key `prompts`: prompt `information` missing in `qu`"]
    );
}

#[test]
fn missing_prompt_in_every_language_is_reported_once_each() {
    let p = problems(SOUND);
    assert!(p.is_empty());
    let def = FlowDef::from_toml(SOUND).expect("loads");
    let p = def.validate(|_, id| id != "goodbye");
    assert_eq!(p.len(), 2, "{p:#?}");
}

#[test]
fn menu_without_no_input() {
    let p = problems(&SOUND.replace("no_input = \"bye\"\n", ""));
    assert_eq!(
        p,
        [FlowProblem::MenuWithoutNoInput {
            node: "menu".into()
        }]
    );
    assert_eq!(
        messages(&p),
        ["node `menu`: menu without a `no_input` node"]
    );
}

#[test]
fn no_start_node() {
    let p = problems(&SOUND.replace(r#"start = "welcome""#, r#"start = "hello""#));
    assert!(p.contains(&FlowProblem::NoStart {
        start: "hello".into()
    }));
    assert!(messages(&p).contains(&"key `start`: no node `hello`".to_owned()));
}

#[test]
fn max_call_node_that_does_not_hang_up() {
    let p = problems(&SOUND.replace(r#"on_max_call = "bye""#, r#"on_max_call = "info""#));
    assert_eq!(
        p,
        [FlowProblem::MaxCallNotHangUp {
            node: "info".into()
        }]
    );
}

#[test]
fn goto_loop() {
    let text = SOUND.replace(r#""1" = "info""#, r#""1" = "a""#)
        + "[nodes.a]\nkind = \"goto\"\nnext = \"b\"\n[nodes.b]\nkind = \"goto\"\nnext = \"a\"\n";
    let p = problems(&text);
    assert!(
        p.contains(&FlowProblem::GotoLoop { node: "a".into() }),
        "{p:#?}"
    );
}

#[test]
fn the_quick_exit_key_may_mean_nothing_else_and_its_decoy_must_exist() {
    let text = SOUND.replace(
        "on_max_call = \"bye\"\n",
        "on_max_call = \"bye\"\n[quick_exit]\nkey = \"2\"\ndecoy = [\"decoy\"]\n",
    );
    let found = FlowDef::from_toml(&text)
        .expect("loads")
        .validate(|_, id| id != "decoy");
    assert!(
        found.contains(&FlowProblem::QuickExitKeyTaken {
            node: "welcome".to_owned(),
            key: "options.2".to_owned()
        }),
        "{found:#?}"
    );
    assert!(found.contains(&FlowProblem::QuickExitKeyTaken {
        node: "menu".to_owned(),
        key: "options.2".to_owned()
    }));
    assert!(found.contains(&FlowProblem::MissingDecoy {
        lang: Lang::Qu,
        prompt: "decoy".to_owned()
    }));
    assert_eq!(
        found[0].to_string(),
        "node `menu`, key `options.2`: the quick-exit key (`quick_exit.key`) cannot mean anything else"
    );
}

#[test]
fn question_and_callback_nodes_name_their_targets_and_prompts() {
    let text = SOUND.replace(
        "options = { \"1\" = \"info\", \"2\" = \"bye\" }",
        "options = { \"1\" = \"info\", \"2\" = \"bye\", \"3\" = \"q\", \"4\" = \"cb\" }",
    ) + r#"
[nodes.q]
kind = "question"
question = "En peligro"
prompts = ["ask-danger"]
answers = { "1" = "sí", "2" = "no" }
timeout_ms = 5_000
next = "nowhere"

[nodes.cb]
kind = "callback"
prompts = ["callback-safe"]
window_prompts = ["callback-window"]
windows = { "1" = "asap", "2" = "evening" }
confirm_prompts = ["callback-confirm"]
timeout_ms = 5_000
next = "bye"
declined = "gone"
"#;
    let def = FlowDef::from_toml(&text).expect("loads");
    let found = def.validate(|_, id| id != "callback-window");
    assert!(found.contains(&FlowProblem::UnknownNode {
        node: Some("q".to_owned()),
        key: "next".to_owned(),
        target: "nowhere".to_owned()
    }));
    assert!(found.contains(&FlowProblem::UnknownNode {
        node: Some("cb".to_owned()),
        key: "declined".to_owned(),
        target: "gone".to_owned()
    }));
    assert!(found.contains(&FlowProblem::MissingPrompt {
        node: "cb".to_owned(),
        key: "window_prompts".to_owned(),
        lang: Lang::Es,
        prompt: "callback-window".to_owned()
    }));
    assert_eq!(
        def.callback_windows().into_iter().collect::<Vec<_>>(),
        ["asap", "evening"]
    );
}

#[test]
fn a_callback_node_names_its_failed_node_and_prompt() {
    let text = SOUND.replace(
        "options = { \"1\" = \"info\", \"2\" = \"bye\" }",
        "options = { \"1\" = \"info\", \"2\" = \"bye\", \"4\" = \"cb\" }",
    ) + r#"
[nodes.cb]
kind = "callback"
prompts = ["callback-safe"]
window_prompts = ["callback-window"]
windows = { "1" = "asap" }
confirm_prompts = ["callback-confirm"]
timeout_ms = 5_000
next = "bye"
declined = "bye"
booking_timeout_ms = 3_000
failed_prompt = "callback-failed"
failed = "lost"
"#;
    let def = FlowDef::from_toml(&text).expect("loads");
    let found = def.validate(|_, id| id != "callback-failed");
    assert!(found.contains(&FlowProblem::UnknownNode {
        node: Some("cb".to_owned()),
        key: "failed".to_owned(),
        target: "lost".to_owned()
    }));
    assert!(found.contains(&FlowProblem::MissingPrompt {
        node: "cb".to_owned(),
        key: "failed_prompt".to_owned(),
        lang: Lang::Es,
        prompt: "callback-failed".to_owned()
    }));
    // Without `failed`, a failed booking goes where a declined one does.
    let text = text.replace("failed = \"lost\"\n", "");
    let def = FlowDef::from_toml(&text).expect("loads");
    assert!(def.validate(|_, _| true).is_empty());
    let Some(hotline_ivr::Node::Callback(cb)) = def.node("cb") else {
        panic!("cb is a callback node");
    };
    assert_eq!((cb.failed.as_str(), cb.booking_timeout_ms), ("bye", 3_000));
    // A booking that may not take any time is refused when the file loads.
    let zero = text.replace("booking_timeout_ms = 3_000", "booking_timeout_ms = 0");
    let e = FlowDef::from_toml(&zero).expect_err("0 ms is refused");
    assert!(e.to_string().contains("booking_timeout_ms"), "{e}");
}
