//! `[callback]`: the commented example in the shipped config parses once uncommented and
//! documents every key; bad values name the key and the file.

use std::collections::BTreeSet;
use std::path::Path;

use hotline::config::{Config, ConfigError, Overrides};

/// The shipped `[callback]` example, uncommented.
fn example() -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/hotline.toml"),
    )
    .unwrap();
    let start = text.find("#[callback]\n").expect("a [callback] example");
    text[start..]
        .lines()
        .filter(|l| {
            l.starts_with("#[") || (l.starts_with('#') && l.contains(" = ") && !l.starts_with("# "))
        })
        .map(|l| &l[1..])
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_str_at(text, Path::new("test.toml"), &Overrides::default())
}

fn with(example: &str, key: &str, value: &str) -> String {
    let mut out = Vec::new();
    let mut set = false;
    for l in example.lines() {
        if l.starts_with(&format!("{key} = ")) {
            out.push(format!("{key} = {value}"));
            set = true;
        } else {
            out.push(l.to_owned());
        }
    }
    assert!(set, "no {key} in the example");
    out.join("\n")
}

const NEUTRAL: &str = "[sip]\nuser_agent = \"pbx\"\n";

#[test]
fn the_shipped_example_parses_and_lists_every_key() {
    let text = format!("{NEUTRAL}{}", example());
    let config = parse(&text).unwrap();
    let cb = config.callback.expect("[callback] on");
    assert_eq!(cb.gateway.to_string(), "203.0.113.5:5060");
    assert_eq!(cb.max_attempts, 3);
    assert_eq!(cb.windows.len(), 3);
    assert_eq!(cb.windows["evening"].0.to_string(), "18:00-21:00");
    // Every key of the section is in the example.
    let table: toml::Table = toml::from_str(&text).unwrap();
    let listed: BTreeSet<&String> = table["callback"].as_table().unwrap().keys().collect();
    let known = toml::Table::try_from(&cb).unwrap();
    let known: BTreeSet<&String> = known.keys().collect();
    assert_eq!(listed, known);
}

#[test]
fn absent_means_off() {
    assert!(parse("").unwrap().callback.is_none());
}

#[test]
fn bad_values_name_the_key_and_the_file() {
    let data = tempfile::tempdir().unwrap();
    let base = format!(
        "{NEUTRAL}[storage]\ndata_dir = \"{}\"\n{}",
        data.path().display(),
        example()
    );
    let inside = format!("\"{}/callback.key\"", data.path().display());
    for (text, key) in [
        (with(&base, "key_file", &inside), "callback.key_file"),
        (
            with(&base, "caller_id", "\"hotline\""),
            "callback.caller_id",
        ),
        (
            with(&base, "display_name", "\"Hotline 1818\""),
            "callback.display_name",
        ),
        (
            with(&base, "ring_timeout_secs", "30"),
            "callback.ring_timeout_secs",
        ),
        (with(&base, "max_attempts", "0"), "callback.max_attempts"),
        (
            with(&base, "username", "\"trunk\"")
                .replace("password_file = \"/etc/hotline/trunk-password\"", ""),
            "callback.username",
        ),
        (
            with(&base, "morning", "\"8-12\""),
            "callback.windows.morning",
        ),
        (
            base.replace("user_agent = \"pbx\"", "user_agent = \"hotline\""),
            "sip.user_agent",
        ),
    ] {
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("test.toml") && e.contains(key), "{key}: {e}");
    }
    // A password from a file or a variable, not both.
    let both = with(
        &with(&base, "username", "\"trunk\""),
        "password_env",
        "\"TRUNK_PW\"",
    );
    let e = parse(&both).unwrap_err().to_string();
    assert!(e.contains("callback.username"), "{e}");
    let one = with(&base, "username", "\"trunk\"")
        .replace("password_file = \"/etc/hotline/trunk-password\"", "");
    parse(&with(&one, "password_env", "\"TRUNK_PW\"")).unwrap();
    parse(&with(&base, "username", "\"trunk\"")).unwrap();
}

/// `hotline check` with `[callback]`: the key file is read, the flow's windows must all be
/// configured, the safety prompt must exist.
#[test]
fn check_matches_the_flow_windows_and_reads_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("callback.key");
    std::fs::write(&key, [9u8; 32]).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let run = |text: &str| {
        let path = dir.path().join("hotline.toml");
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
            .current_dir(&root)
            .args(["--config", path.to_str().unwrap(), "--data-dir"])
            .arg(dir.path().join("data"))
            .arg("check")
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let good = format!(
        "{NEUTRAL}{}",
        with(&example(), "key_file", &format!("\"{}\"", key.display()))
            .replace("password_file = \"/etc/hotline/trunk-password\"", "")
    );
    let (ok, out) = run(&good);
    assert!(ok, "{out}");
    let (ok, out) = run(&good.replace("evening = \"18:00-21:00\"", ""));
    assert!(!ok && out.contains("\"evening\""), "{out}");
    let (ok, out) = run(&good.replace(
        "safety_prompt = \"callback-safety-script\"",
        "safety_prompt = \"no-such-prompt\"",
    ));
    assert!(!ok && out.contains("callback.safety_prompt"), "{out}");
    std::fs::write(&key, b"short").unwrap();
    let (ok, out) = run(&good);
    assert!(!ok && out.contains("callback.key_file"), "{out}");
}
