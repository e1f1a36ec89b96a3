//! Loading the prompts and the call flow at start-up, and `hotline check`.
//!
//! Prompts are read from `<prompts_dir>/<lang>/<prompt-id>.wav` (any rate and
//! channel count; converted once, here), so a deployment swaps voices by
//! swapping files. The flow is `ivr.flow`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hotline_ivr::{FlowDef, FlowProblem};
use hotline_media::prompt::{Lang, Prompt, PromptLibrary};

use crate::config::Config;

/// Everything a call needs that is loaded once.
#[derive(Debug)]
pub(crate) struct Assets {
    pub(crate) prompts: PromptLibrary,
    pub(crate) flow: Arc<FlowDef>,
}

/// A problem that stops `serve` and fails `check`.
#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    /// The flow file is missing or unreadable.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The flow file does not parse.
    #[error("{path}: {message}")]
    Flow {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the node and key.
        message: String,
    },
    /// The flow is inconsistent (unknown node, missing prompt...).
    #[error("{path}: {}", problems.join("; "))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Each problem, naming the node and key.
        problems: Vec<String>,
    },
}

/// Prompts that failed to load, and warnings (fallbacks) for `check`.
#[derive(Debug, Default)]
pub struct Report {
    /// `<file>: <why>` for prompt files that could not be read.
    pub unreadable: Vec<String>,
    /// Prompts the flow needs that are missing in one language (played in the other).
    pub fallbacks: Vec<String>,
}

/// Loads every `<lang>/<id>.wav` under `dir`.
pub(crate) fn load_prompts(dir: &Path, report: &mut Report) -> PromptLibrary {
    let mut lib = PromptLibrary::new();
    for lang in Lang::ALL {
        let sub = dir.join(lang.as_str());
        let Ok(entries) = std::fs::read_dir(&sub) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")))
            .collect();
        files.sort();
        for path in files {
            let Some(id) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let loaded = std::fs::File::open(&path)
                .map_err(|e| e.to_string())
                .and_then(|f| {
                    Prompt::from_wav(std::io::BufReader::new(f)).map_err(|e| e.to_string())
                });
            match loaded {
                Ok(p) => {
                    lib.insert(lang, id, Arc::new(p));
                }
                Err(e) => report.unreadable.push(format!("{}: {e}", path.display())),
            }
        }
    }
    lib
}

/// Loads and validates the prompts and the flow.
pub(crate) fn load(config: &Config) -> Result<(Assets, Report), AssetError> {
    let mut report = Report::default();
    let prompts = load_prompts(&config.ivr.prompts_dir, &mut report);
    let path = config.ivr.flow.clone();
    let text = std::fs::read_to_string(&path).map_err(|source| AssetError::Read {
        path: path.clone(),
        source,
    })?;
    let flow = FlowDef::from_toml(&text).map_err(|e| AssetError::Flow {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let mut problems = Vec::new();
    for problem in flow.validate(|lang, id| {
        let lang = to_media_lang(lang);
        prompts.get(lang, id).is_some()
    }) {
        problems.push(problem.to_string());
    }
    // A prompt present in only one language is played in the other: a warning.
    for problem in flow.validate(|lang, id| {
        let lang = to_media_lang(lang);
        prompts.get(lang, id).is_some_and(|l| !l.fallback)
    }) {
        if matches!(problem, FlowProblem::MissingPrompt { .. })
            && !problems.contains(&problem.to_string())
        {
            report.fallbacks.push(problem.to_string());
        }
    }
    if !problems.is_empty() {
        return Err(AssetError::Invalid { path, problems });
    }
    Ok((
        Assets {
            prompts,
            flow: Arc::new(flow),
        },
        report,
    ))
}

/// The binary converts between the crates' language types (no shared crate, by design).
pub(crate) fn to_media_lang(lang: hotline_ivr::Lang) -> Lang {
    match lang {
        hotline_ivr::Lang::Es => Lang::Es,
        hotline_ivr::Lang::Qu => Lang::Qu,
    }
}

/// `hotline check`: config (already parsed by the caller), flow and prompts.
/// Returns the lines to print and whether everything is usable.
pub fn check(config: &Config) -> (Vec<String>, bool) {
    let mut lines = Vec::new();
    match load(config) {
        Ok((assets, report)) => {
            lines.push(format!(
                "{}: ok ({} nodes)",
                config.ivr.flow.display(),
                assets.flow.nodes().count()
            ));
            for l in hotline_media::prompt::Lang::ALL {
                lines.push(format!(
                    "{}: {} prompts",
                    config.ivr.prompts_dir.join(l.as_str()).display(),
                    assets.prompts.ids(l).count()
                ));
            }
            for f in &report.fallbacks {
                lines.push(format!(
                    "warning: {f} (the other language's file is played)"
                ));
            }
            for u in &report.unreadable {
                lines.push(format!("error: {u}"));
            }
            let callback = crate::callback::check(config, &assets);
            for e in &callback {
                lines.push(format!("error: {e}"));
            }
            (lines, report.unreadable.is_empty() && callback.is_empty())
        }
        Err(e) => {
            lines.push(format!("error: {e}"));
            (lines, false)
        }
    }
}
