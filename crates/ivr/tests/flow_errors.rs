//! A flow file that cannot be loaded: every error names the node and the key.

use hotline_ivr::{FlowDef, FlowError, KeyProblem};

const HEAD: &str = r#"
start = "m"
language = "es"
max_call_ms = 600_000
on_max_call = "m"
"#;

fn error(nodes: &str) -> FlowError {
    FlowDef::from_toml(&format!("{HEAD}{nodes}")).expect_err("the file is wrong")
}

#[test]
fn unknown_key() {
    let e = error("[nodes.m]\nkind = \"menu\"\nprompts = [\"x\"]\ntimout_ms = 5\n");
    let text = e.to_string();
    assert!(text.starts_with("node `m`: "), "{text}");
    assert!(text.contains("unknown field `timout_ms`"), "{text}");
}

#[test]
fn wrong_type_shows_the_key() {
    let e = error("[nodes.m]\nkind = \"menu\"\nprompts = [\"x\"]\ntimeout_ms = \"6s\"\n");
    let text = e.to_string();
    assert!(text.starts_with("node `m`: "), "{text}");
    assert!(text.contains("timeout_ms = \"6s\""), "{text}");
}

#[test]
fn unknown_kind() {
    let e = error("[nodes.\"main-menu\"]\nkind = \"menus\"\n");
    assert!(e.to_string().starts_with("node `main-menu`: "), "{e}");
}

#[test]
fn key_of_another_kind() {
    let e = error("[nodes.m]\nkind = \"play\"\nprompts = [\"x\"]\nnext = \"m\"\noptions = {}\n");
    assert!(matches!(
        &e,
        FlowError::Key { node: Some(n), key, problem: KeyProblem::NotAllowed { kind: "play" } }
            if n == "m" && key == "options"
    ));
    assert_eq!(
        e.to_string(),
        "node `m`: key `options`: does not apply to a `play` node"
    );
}

#[test]
fn missing_key() {
    let e = error("[nodes.m]\nkind = \"menu\"\nprompts = [\"x\"]\noptions = {}\n");
    assert_eq!(
        e.to_string(),
        "node `m`: key `timeout_ms`: required in a `menu` node"
    );
}

#[test]
fn option_that_is_not_a_phone_key() {
    let e = error(
        "[nodes.m]\nkind = \"menu\"\nprompts = [\"x\"]\ntimeout_ms = 1\noptions = { \"10\" = \"m\" }\n",
    );
    assert_eq!(
        e.to_string(),
        "node `m`: key `options.10`: `10` is not one phone key (0-9, *, #, A-D)"
    );
}

#[test]
fn repeat_key_that_is_an_option() {
    let e = error(
        "[nodes.m]\nkind = \"menu\"\nprompts = [\"x\"]\ntimeout_ms = 1\noptions = { \"9\" = \"m\" }\nrepeat = \"9\"\n",
    );
    assert_eq!(
        e.to_string(),
        "node `m`: key `repeat`: `9` is both the repeat key and an option"
    );
}

#[test]
fn language_option_that_is_not_a_language() {
    let e = error(
        "[nodes.m]\nkind = \"language\"\nprompts = [\"x\"]\ntimeout_ms = 1\ndefault = \"es\"\nnext = \"m\"\noptions = { \"3\" = \"ay\" }\n",
    );
    assert_eq!(
        e.to_string(),
        "node `m`: key `options.3`: `ay` is not a language (es, qu)"
    );
}

#[test]
fn empty_prompt_list_and_zero_duration() {
    let e = error("[nodes.m]\nkind = \"play\"\nprompts = []\nnext = \"m\"\n");
    assert_eq!(
        e.to_string(),
        "node `m`: key `prompts`: must name at least one prompt"
    );
    let e = error("[nodes.m]\nkind = \"record\"\nprompts = [\"x\"]\nmax_ms = 0\nnext = \"m\"\n");
    assert_eq!(e.to_string(), "node `m`: key `max_ms`: must be more than 0");
}

#[test]
fn top_level_errors_name_the_key() {
    let e = FlowDef::from_toml("start = \"m\"\nlanguage = \"fr\"\n").expect_err("wrong");
    assert!(matches!(e, FlowError::Toml { node: None, .. }));
    assert!(e.to_string().contains("language = \"fr\""), "{e}");
}

#[test]
fn a_callback_node_needs_two_different_keys() {
    let e = error(
        "[nodes.m]\nkind = \"callback\"\nprompts = [\"a\"]\nwindow_prompts = [\"b\"]\n\
         windows = { \"1\" = \"asap\" }\nconfirm_prompts = [\"c\"]\ntimeout_ms = 5\n\
         next = \"m\"\ndeclined = \"m\"\nyes_key = \"3\"\nno_key = \"3\"\n",
    );
    assert_eq!(
        e.to_string(),
        "node `m`: key `no_key`: `3` is both the yes key and the no key"
    );
    assert!(matches!(
        e,
        FlowError::Key {
            problem: KeyProblem::YesIsNo { key: '3' },
            ..
        }
    ));
}

#[test]
fn a_question_needs_its_question_and_the_quick_exit_a_phone_key() {
    let e = error(
        "[nodes.m]\nkind = \"question\"\nprompts = [\"a\"]\nanswers = { \"1\" = \"sí\" }\n\
         timeout_ms = 5\nnext = \"m\"\n",
    );
    assert!(e.to_string().contains("key `question`"), "{e}");
    let e = FlowDef::from_toml(&format!(
        "{HEAD}[quick_exit]\nkey = \"X\"\ndecoy = [\"d\"]\n[nodes.m]\nkind = \"hangup\"\n"
    ))
    .expect_err("X is no phone key");
    assert!(e.to_string().contains("quick_exit.key"), "{e}");
    let e = FlowDef::from_toml(&format!(
        "{HEAD}[quick_exit]\ndecoy = []\n[nodes.m]\nkind = \"hangup\"\n"
    ))
    .expect_err("no decoy");
    assert!(e.to_string().contains("quick_exit.decoy"), "{e}");
}
