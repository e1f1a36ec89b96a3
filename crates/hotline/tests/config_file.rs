//! The shipped `config/hotline.toml`, and loading config files from disk.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use hotline::config::{Config, ConfigError, DEFAULT_CONFIG_PATH, Overrides};

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/hotline.toml")
}

/// Dotted paths of every leaf key in a TOML table.
fn leaf_keys(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
    for (key, value) in table {
        let path = format!("{prefix}{key}");
        match value {
            toml::Value::Table(t) => leaf_keys(t, &format!("{path}."), out),
            _ => {
                out.insert(path);
            }
        }
    }
}

#[test]
fn shipped_config_is_the_defaults() {
    let config = Config::load(&shipped(), &Overrides::default()).unwrap();
    assert_eq!(config, Config::default());
}

#[test]
fn shipped_config_lists_every_key_in_order() {
    let text = std::fs::read_to_string(shipped()).unwrap();
    let file: toml::Table = toml::from_str(&text).unwrap();
    let defaults = toml::Table::try_from(Config::default()).unwrap();
    let (mut in_file, mut known) = (BTreeSet::new(), BTreeSet::new());
    leaf_keys(&file, "", &mut in_file);
    leaf_keys(&defaults, "", &mut known);
    assert_eq!(in_file, known);

    let sections: Vec<&str> = text.lines().filter(|l| l.starts_with('[')).collect();
    let expected = [
        "[sip]",
        "[rtp]",
        "[http]",
        "[storage]",
        "[ivr]",
        "[calls]",
        "[media]",
        "[queue]",
        "[privacy]",
        "[shutdown]",
        "[log]",
        "[cluster]",
    ];
    assert_eq!(sections, expected);
    // Every key has a comment: the line before a key is a comment or another key of the same group.
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.contains(" = ") && !line.starts_with('#') {
            assert!(
                i > 0 && !lines[i - 1].trim().is_empty(),
                "no comment above {line:?}"
            );
        }
    }
}

#[test]
fn unknown_key_names_file_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hotline.toml");
    std::fs::write(&path, "[sip]\nlisten = \"0.0.0.0:5060\"\n\nmax_cals = 3\n").unwrap();
    let e = Config::load(&path, &Overrides::default()).unwrap_err();
    assert!(matches!(&e, ConfigError::UnknownKey { key, line: 4, .. } if key == "sip.max_cals"));
    assert_eq!(
        e.to_string(),
        format!("{}: unknown key sip.max_cals (line 4)", path.display())
    );
}

#[test]
fn bad_type_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hotline.toml");
    std::fs::write(&path, "[sip]\nmax_calls = \"x\"\n").unwrap();
    let e = Config::load(&path, &Overrides::default()).unwrap_err();
    let expected = "sip.max_calls: invalid type: string \"x\", expected u32 (line 2)";
    assert_eq!(e.to_string(), format!("{}: {expected}", path.display()));
}

#[test]
fn missing_explicit_file_is_an_error_naming_it() {
    let path = Path::new("/nonexistent/hotline.toml");
    let e = Config::load(path, &Overrides::default()).unwrap_err();
    assert!(matches!(e, ConfigError::NotFound { .. }));
    assert_eq!(
        e.to_string(),
        "/nonexistent/hotline.toml: config file not found"
    );
}

#[test]
fn missing_file_at_the_default_path_gives_defaults() {
    // Integration tests run in the package directory, where config/hotline.toml does not exist.
    assert!(!Path::new(DEFAULT_CONFIG_PATH).exists());
    let config = Config::load(Path::new(DEFAULT_CONFIG_PATH), &Overrides::default()).unwrap();
    assert_eq!(config, Config::default());
}

#[test]
fn overrides_win_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hotline.toml");
    let text = "[rtp]\nport_range = \"30000-30010\"\n[storage]\ndata_dir = \"/srv/file\"\n";
    std::fs::write(&path, text).unwrap();
    let overrides = Overrides {
        rtp_ports: Some("40000-40100".parse().unwrap()),
        data_dir: Some(PathBuf::from("/srv/flag")),
        ..Overrides::default()
    };
    let config = Config::load(&path, &overrides).unwrap();
    assert_eq!(config.rtp.port_range.to_string(), "40000-40100");
    assert_eq!(
        config.effective_database_url().as_str(),
        "sqlite:///srv/flag/hotline.db"
    );

    let overrides = Overrides {
        database_url: Some("postgres://db/hotline".parse().unwrap()),
        ..overrides
    };
    let config = Config::load(&path, &overrides).unwrap();
    assert_eq!(
        config.effective_database_url().as_str(),
        "postgres://db/hotline"
    );
}

#[test]
fn database_url_defaults_into_data_dir() {
    assert_eq!(
        Config::default().effective_database_url().as_str(),
        "sqlite://data/hotline.db"
    );
}
