//! The shipped `config/flow.toml` loads, and validates with every prompt present in
//! every language: listed in `prompts/prompts.toml` and rendered as
//! `prompts/<lang>/<id>.wav`.

mod common;

use std::collections::BTreeSet;

use hotline_ivr::{FlowDef, Lang, Node};

/// The languages and prompt ids of `prompts/prompts.toml`.
fn catalogue() -> (BTreeSet<String>, BTreeSet<String>) {
    let text = std::fs::read_to_string(common::root().join("prompts/prompts.toml"))
        .expect("prompts/prompts.toml is readable");
    let table: toml::Table = toml::from_str(&text).expect("prompts.toml is TOML");
    let languages = table["languages"]
        .as_array()
        .expect("languages is an array")
        .iter()
        .map(|l| l.as_str().expect("a language code").to_owned())
        .collect();
    let ids = table["prompts"]
        .as_table()
        .expect("[prompts]")
        .keys()
        .cloned()
        .collect();
    (languages, ids)
}

#[test]
fn shipped_flow_is_valid_with_the_shipped_prompts() {
    let def = common::shipped();
    let (languages, ids) = catalogue();
    let problems = def.validate(|lang, id| {
        languages.contains(lang.as_str())
            && ids.contains(id)
            && common::root()
                .join("prompts")
                .join(lang.as_str())
                .join(format!("{id}.wav"))
                .is_file()
    });
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(def.languages(), BTreeSet::from([Lang::Es, Lang::Qu]));
}

#[test]
fn shipped_flow_is_the_documented_menu() {
    let def = common::shipped();
    assert_eq!(def.start(), "welcome");
    assert_eq!(def.language(), Lang::Es);
    assert_eq!(def.max_call_ms(), 20 * 60 * 1000);
    let Some(Node::Language(welcome)) = def.node("welcome") else {
        panic!("welcome")
    };
    assert_eq!(welcome.options.get(&'1'), Some(&Lang::Es));
    assert_eq!(welcome.options.get(&'2'), Some(&Lang::Qu));
    assert_eq!(welcome.default, Lang::Es);
    let Some(Node::Menu(menu)) = def.node("main-menu") else {
        panic!("main-menu")
    };
    let options: Vec<(char, &str)> = menu.options.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        options,
        [('1', "information"), ('2', "message"), ('3', "operator")]
    );
    assert_eq!(menu.repeat, Some('9'));
    assert_eq!(menu.no_input.as_deref(), Some("cannot-talk"));
    assert_eq!(menu.retries, 1);
    let Some(Node::Menu(cannot_talk)) = def.node("cannot-talk") else {
        panic!("cannot-talk")
    };
    assert_eq!(cannot_talk.no_input.as_deref(), Some("message"));
    assert_eq!(def.quick_exit().map(|q| q.key), Some('*'));
    let Some(Node::Record(message)) = def.node("message") else {
        panic!("message")
    };
    assert_eq!(message.finish_key, Some('#'));
    assert_eq!(message.beep.as_deref(), Some("beep"));
}

#[test]
fn a_prompt_missing_from_the_catalogue_is_found() {
    let def = FlowDef::from_toml(&common::shipped_text()).expect("loads");
    let problems = def.validate(|lang, id| !(lang == Lang::Qu && id == "digit-7"));
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(
        problems[0].to_string(),
        "node `operator`, key `position_prompt`: prompt `digit-7` missing in `qu`"
    );
}
