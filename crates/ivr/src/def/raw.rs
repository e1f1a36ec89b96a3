//! The flow file as TOML sees it, and its conversion into [`FlowDef`].
//!
//! Every node is read into one flat [`RawNode`] that knows every key of every kind,
//! then converted by kind: a key of another kind is an error naming the node and the
//! key. (An internally tagged serde enum would be shorter, but serde buffers such a
//! table before it looks at `kind`, and the TOML error then points at the table header
//! instead of the key.)

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{
    CallbackNode, EnqueueNode, FlowDef, GotoNode, HangUpNode, LanguageNode, MenuNode, Node,
    PlayNode, QuestionNode, QuickExit, RecordNode, SavedNode,
};
use crate::key::phone_key;
use crate::{FlowError, KeyProblem, Lang};

/// `min_message_ms` when the file does not say.
const DEFAULT_MIN_MESSAGE_MS: u64 = 1_000;

/// The top level of the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    start: String,
    language: Lang,
    max_call_ms: u64,
    #[serde(default = "default_min_message_ms")]
    min_message_ms: u64,
    on_max_call: String,
    quick_exit: Option<RawQuickExit>,
    nodes: BTreeMap<String, RawNode>,
}

/// `[quick_exit]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuickExit {
    key: Option<String>,
    decoy: Vec<String>,
    max_ms: Option<u64>,
}

/// `quick_exit.key` when the file does not say.
const DEFAULT_QUICK_EXIT_KEY: char = '*';

/// `quick_exit.max_ms` when the file does not say: two minutes of a shop's message.
const DEFAULT_DECOY_MS: u64 = 120_000;

/// A `callback` node's `booking_timeout_ms` when the file does not say.
const DEFAULT_BOOKING_TIMEOUT_MS: u64 = 5_000;

fn default_min_message_ms() -> u64 {
    DEFAULT_MIN_MESSAGE_MS
}

/// `kind` of a node.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Play,
    Language,
    Menu,
    Record,
    Saved,
    Enqueue,
    Question,
    Callback,
    Hangup,
    Goto,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Play => "play",
            Self::Language => "language",
            Self::Menu => "menu",
            Self::Record => "record",
            Self::Saved => "saved",
            Self::Enqueue => "enqueue",
            Self::Question => "question",
            Self::Callback => "callback",
            Self::Hangup => "hangup",
            Self::Goto => "goto",
        }
    }
}

/// Every key any node may have; the conversion takes the ones its kind uses.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    kind: Kind,
    prompts: Option<Vec<String>>,
    next: Option<String>,
    barge_in: Option<bool>,
    options: Option<BTreeMap<String, String>>,
    default: Option<Lang>,
    timeout_ms: Option<u64>,
    retries: Option<u32>,
    repeat: Option<String>,
    invalid_prompt: Option<String>,
    no_input_prompt: Option<String>,
    no_input: Option<String>,
    beep: Option<String>,
    max_ms: Option<u64>,
    silence_ms: Option<u64>,
    finish_key: Option<String>,
    short: Option<String>,
    reference_prompt: Option<String>,
    repeat_prompt: Option<String>,
    hold: Option<String>,
    position_prompt: Option<String>,
    max_wait_ms: Option<u64>,
    unavailable: Option<String>,
    connected_prompts: Option<Vec<String>>,
    callback_prompts: Option<Vec<String>>,
    question: Option<String>,
    answers: Option<BTreeMap<String, String>>,
    window_prompts: Option<Vec<String>>,
    windows: Option<BTreeMap<String, String>>,
    confirm_prompts: Option<Vec<String>>,
    yes_key: Option<String>,
    no_key: Option<String>,
    declined: Option<String>,
    booking_timeout_ms: Option<u64>,
    failed_prompt: Option<String>,
    failed: Option<String>,
}

impl RawNode {
    /// The first key still present after the conversion took its own: it belongs to
    /// another kind.
    fn leftover(&self) -> Option<&'static str> {
        [
            ("prompts", self.prompts.is_some()),
            ("next", self.next.is_some()),
            ("barge_in", self.barge_in.is_some()),
            ("options", self.options.is_some()),
            ("default", self.default.is_some()),
            ("timeout_ms", self.timeout_ms.is_some()),
            ("retries", self.retries.is_some()),
            ("repeat", self.repeat.is_some()),
            ("invalid_prompt", self.invalid_prompt.is_some()),
            ("no_input_prompt", self.no_input_prompt.is_some()),
            ("no_input", self.no_input.is_some()),
            ("beep", self.beep.is_some()),
            ("max_ms", self.max_ms.is_some()),
            ("silence_ms", self.silence_ms.is_some()),
            ("finish_key", self.finish_key.is_some()),
            ("short", self.short.is_some()),
            ("reference_prompt", self.reference_prompt.is_some()),
            ("repeat_prompt", self.repeat_prompt.is_some()),
            ("hold", self.hold.is_some()),
            ("position_prompt", self.position_prompt.is_some()),
            ("max_wait_ms", self.max_wait_ms.is_some()),
            ("unavailable", self.unavailable.is_some()),
            ("connected_prompts", self.connected_prompts.is_some()),
            ("callback_prompts", self.callback_prompts.is_some()),
            ("question", self.question.is_some()),
            ("answers", self.answers.is_some()),
            ("window_prompts", self.window_prompts.is_some()),
            ("windows", self.windows.is_some()),
            ("confirm_prompts", self.confirm_prompts.is_some()),
            ("yes_key", self.yes_key.is_some()),
            ("no_key", self.no_key.is_some()),
            ("declined", self.declined.is_some()),
            ("booking_timeout_ms", self.booking_timeout_ms.is_some()),
            ("failed_prompt", self.failed_prompt.is_some()),
            ("failed", self.failed.is_some()),
        ]
        .into_iter()
        .find_map(|(key, present)| present.then_some(key))
    }
}

/// Parses and converts a whole flow file.
pub(super) fn parse(text: &str) -> Result<FlowDef, FlowError> {
    let raw: RawFlow = toml::from_str(text).map_err(|source| FlowError::Toml {
        node: source.span().and_then(|span| node_at(text, span.start)),
        source,
    })?;
    let top = |key: &str, problem| FlowError::Key {
        node: None,
        key: key.to_owned(),
        problem,
    };
    if raw.max_call_ms == 0 {
        return Err(top("max_call_ms", KeyProblem::Zero));
    }
    let quick_exit = raw
        .quick_exit
        .map(|q| {
            let key = match q.key {
                None => DEFAULT_QUICK_EXIT_KEY,
                Some(v) => phone_key(&v)
                    .ok_or_else(|| top("quick_exit.key", KeyProblem::NotAKey { value: v }))?,
            };
            if q.decoy.is_empty() {
                return Err(top("quick_exit.decoy", KeyProblem::NoPrompt));
            }
            let max_ms = q.max_ms.unwrap_or(DEFAULT_DECOY_MS);
            if max_ms == 0 {
                return Err(top("quick_exit.max_ms", KeyProblem::Zero));
            }
            Ok(QuickExit {
                key,
                decoy: q.decoy,
                max_ms,
            })
        })
        .transpose()?;
    let mut nodes = BTreeMap::new();
    for (id, node) in raw.nodes {
        let node = convert(&id, node)?;
        nodes.insert(id, node);
    }
    Ok(FlowDef {
        start: raw.start,
        language: raw.language,
        max_call_ms: raw.max_call_ms,
        min_message_ms: raw.min_message_ms,
        on_max_call: raw.on_max_call,
        quick_exit,
        nodes,
    })
}

/// The conversion of one node: its id and kind, for errors.
struct Cx<'a> {
    node: &'a str,
    kind: &'static str,
}

impl Cx<'_> {
    fn err(&self, key: impl Into<String>, problem: KeyProblem) -> FlowError {
        FlowError::Key {
            node: Some(self.node.to_owned()),
            key: key.into(),
            problem,
        }
    }

    fn need<T>(&self, key: &str, value: Option<T>) -> Result<T, FlowError> {
        value.ok_or_else(|| self.err(key, KeyProblem::Required { kind: self.kind }))
    }

    /// A prompt list that must play something.
    fn prompts(&self, value: Option<Vec<String>>) -> Result<Vec<String>, FlowError> {
        self.prompt_list("prompts", value)
    }

    /// A prompt list under `key` that must play something.
    fn prompt_list(&self, key: &str, value: Option<Vec<String>>) -> Result<Vec<String>, FlowError> {
        let prompts = self.need(key, value)?;
        if prompts.is_empty() {
            return Err(self.err(key, KeyProblem::NoPrompt));
        }
        Ok(prompts)
    }

    /// A duration that must be more than 0.
    fn ms(&self, key: &str, value: Option<u64>) -> Result<u64, FlowError> {
        match self.need(key, value)? {
            0 => Err(self.err(key, KeyProblem::Zero)),
            ms => Ok(ms),
        }
    }

    fn key(&self, key: &str, value: Option<String>) -> Result<Option<char>, FlowError> {
        value
            .map(|v| phone_key(&v).ok_or_else(|| self.err(key, KeyProblem::NotAKey { value: v })))
            .transpose()
    }

    /// `options`: phone key → value.
    fn options<T>(
        &self,
        value: Option<BTreeMap<String, String>>,
        target: impl FnMut(&str, String) -> Result<T, FlowError>,
    ) -> Result<BTreeMap<char, T>, FlowError> {
        self.key_map("options", value, target)
    }

    /// A table under `name`: phone key → value.
    fn key_map<T>(
        &self,
        name: &str,
        value: Option<BTreeMap<String, String>>,
        mut target: impl FnMut(&str, String) -> Result<T, FlowError>,
    ) -> Result<BTreeMap<char, T>, FlowError> {
        let mut options = BTreeMap::new();
        for (k, v) in self.need(name, value)? {
            let key = format!("{name}.{k}");
            let Some(digit) = phone_key(&k) else {
                return Err(self.err(key, KeyProblem::NotAKey { value: k }));
            };
            options.insert(digit, target(&key, v)?);
        }
        Ok(options)
    }
}

fn convert(id: &str, mut r: RawNode) -> Result<Node, FlowError> {
    let cx = Cx {
        node: id,
        kind: r.kind.as_str(),
    };
    let node = match r.kind {
        Kind::Play => Node::Play(PlayNode {
            prompts: cx.prompts(r.prompts.take())?,
            barge_in: r.barge_in.take().unwrap_or(false),
            next: cx.need("next", r.next.take())?,
        }),
        Kind::Language => Node::Language(LanguageNode {
            prompts: cx.prompts(r.prompts.take())?,
            options: cx.options(r.options.take(), |key, v| {
                Lang::from_code(&v)
                    .ok_or_else(|| cx.err(key, KeyProblem::NotALanguage { value: v }))
            })?,
            default: cx.need("default", r.default.take())?,
            timeout_ms: cx.ms("timeout_ms", r.timeout_ms.take())?,
            retries: r.retries.take().unwrap_or(0),
            barge_in: r.barge_in.take().unwrap_or(true),
            invalid_prompt: r.invalid_prompt.take(),
            no_input_prompt: r.no_input_prompt.take(),
            next: cx.need("next", r.next.take())?,
        }),
        Kind::Menu => {
            let options = cx.options(r.options.take(), |_, v| Ok(v))?;
            let repeat = cx.key("repeat", r.repeat.take())?;
            if let Some(key) = repeat.filter(|k| options.contains_key(k)) {
                return Err(cx.err("repeat", KeyProblem::RepeatIsOption { key }));
            }
            Node::Menu(MenuNode {
                prompts: cx.prompts(r.prompts.take())?,
                options,
                repeat,
                timeout_ms: cx.ms("timeout_ms", r.timeout_ms.take())?,
                retries: r.retries.take().unwrap_or(0),
                barge_in: r.barge_in.take().unwrap_or(true),
                invalid_prompt: r.invalid_prompt.take(),
                no_input_prompt: r.no_input_prompt.take(),
                no_input: r.no_input.take(),
            })
        }
        Kind::Record => Node::Record(RecordNode {
            prompts: cx.prompts(r.prompts.take())?,
            beep: r.beep.take(),
            barge_in: r.barge_in.take().unwrap_or(true),
            max_ms: cx.ms("max_ms", r.max_ms.take())?,
            silence_ms: r
                .silence_ms
                .take()
                .map(|v| cx.ms("silence_ms", Some(v)))
                .transpose()?,
            finish_key: cx.key("finish_key", r.finish_key.take())?,
            next: cx.need("next", r.next.take())?,
            short: r.short.take(),
        }),
        Kind::Saved => Node::Saved(SavedNode {
            prompts: r.prompts.take().unwrap_or_default(),
            reference_prompt: cx.need("reference_prompt", r.reference_prompt.take())?,
            repeat_prompt: cx.need("repeat_prompt", r.repeat_prompt.take())?,
            next: cx.need("next", r.next.take())?,
        }),
        Kind::Enqueue => Node::Enqueue(EnqueueNode {
            prompts: r.prompts.take().unwrap_or_default(),
            hold: r.hold.take(),
            position_prompt: r.position_prompt.take(),
            max_wait_ms: r
                .max_wait_ms
                .take()
                .map(|v| cx.ms("max_wait_ms", Some(v)))
                .transpose()?,
            unavailable: cx.need("unavailable", r.unavailable.take())?,
            options: match r.options.take() {
                Some(o) => cx.options(Some(o), |_, v| Ok(v))?,
                None => BTreeMap::new(),
            },
            connected_prompts: r.connected_prompts.take().unwrap_or_default(),
            callback_prompts: r.callback_prompts.take().unwrap_or_default(),
        }),
        Kind::Question => Node::Question(QuestionNode {
            question: cx.need("question", r.question.take())?,
            prompts: cx.prompts(r.prompts.take())?,
            answers: cx.key_map("answers", r.answers.take(), |_, v| Ok(v))?,
            timeout_ms: cx.ms("timeout_ms", r.timeout_ms.take())?,
            retries: r.retries.take().unwrap_or(0),
            barge_in: r.barge_in.take().unwrap_or(true),
            invalid_prompt: r.invalid_prompt.take(),
            no_input_prompt: r.no_input_prompt.take(),
            next: cx.need("next", r.next.take())?,
        }),
        Kind::Callback => {
            let yes_key = cx.key("yes_key", r.yes_key.take())?.unwrap_or('1');
            let no_key = cx.key("no_key", r.no_key.take())?.unwrap_or('2');
            if yes_key == no_key {
                return Err(cx.err("no_key", KeyProblem::YesIsNo { key: no_key }));
            }
            let booking_timeout_ms = match r.booking_timeout_ms.take() {
                Some(v) => cx.ms("booking_timeout_ms", Some(v))?,
                None => DEFAULT_BOOKING_TIMEOUT_MS,
            };
            let mut node = CallbackNode {
                prompts: cx.prompts(r.prompts.take())?,
                window_prompts: cx.prompt_list("window_prompts", r.window_prompts.take())?,
                windows: cx.key_map("windows", r.windows.take(), |_, v| Ok(v))?,
                confirm_prompts: cx.prompt_list("confirm_prompts", r.confirm_prompts.take())?,
                yes_key,
                no_key,
                timeout_ms: cx.ms("timeout_ms", r.timeout_ms.take())?,
                retries: r.retries.take().unwrap_or(0),
                invalid_prompt: r.invalid_prompt.take(),
                no_input_prompt: r.no_input_prompt.take(),
                next: cx.need("next", r.next.take())?,
                declined: cx.need("declined", r.declined.take())?,
                booking_timeout_ms,
                failed_prompt: r.failed_prompt.take(),
                failed: String::new(),
            };
            node.failed = r.failed.take().unwrap_or_else(|| node.declined.clone());
            Node::Callback(node)
        }
        Kind::Hangup => Node::HangUp(HangUpNode {
            prompts: r.prompts.take().unwrap_or_default(),
        }),
        Kind::Goto => Node::Goto(GotoNode {
            next: cx.need("next", r.next.take())?,
        }),
    };
    if let Some(key) = r.leftover() {
        return Err(cx.err(key, KeyProblem::NotAllowed { kind: cx.kind }));
    }
    Ok(node)
}

/// The node whose table holds byte `at` of the file: the last `[nodes.<id>…]` header at
/// or before that line.
fn node_at(text: &str, at: usize) -> Option<String> {
    let end = text
        .get(at..)
        .and_then(|t| t.find('\n'))
        .map_or(text.len(), |i| at + i);
    let header = text
        .get(..end)?
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))?;
    let inner = header.trim_start_matches('[').trim_end_matches(']').trim();
    let rest = inner
        .strip_prefix("nodes")?
        .trim_start()
        .strip_prefix('.')?
        .trim_start();
    let id = match rest.chars().next()? {
        q @ ('"' | '\'') => rest[1..].split(q).next()?,
        _ => rest.split('.').next()?.trim(),
    };
    Some(id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_at_finds_the_enclosing_node() {
        let text = "start = 'a'\n[nodes.a]\nkind = 'play'\n[nodes.\"b-c\"]\nx = 1\n";
        assert_eq!(node_at(text, 0), None);
        assert_eq!(
            node_at(text, text.find("kind").unwrap()).as_deref(),
            Some("a")
        );
        assert_eq!(
            node_at(text, text.find("[nodes.a]").unwrap()).as_deref(),
            Some("a")
        );
        assert_eq!(
            node_at(text, text.find("x = 1").unwrap()).as_deref(),
            Some("b-c")
        );
    }
}
