//! The flow as data: [`FlowDef`] and its [`Node`]s, loaded from `config/flow.toml`.
//!
//! The file's schema is documented key by key in the shipped `config/flow.toml` and in
//! this crate's README. [`FlowDef::from_toml`] checks the shape of every node (keys that
//! belong to its kind, one phone key where a key is expected); [`FlowDef::validate`]
//! checks the flow as a whole (see [`FlowProblem`](crate::FlowProblem)).

mod raw;

use std::collections::{BTreeMap, BTreeSet};

use crate::{FlowError, Lang};

/// The prompt ids that read a number digit by digit: `digit-0` … `digit-9`.
pub const DIGIT_PROMPTS: [&str; 10] = [
    "digit-0", "digit-1", "digit-2", "digit-3", "digit-4", "digit-5", "digit-6", "digit-7",
    "digit-8", "digit-9",
];

/// A loaded call flow: shared by every call ([`Flow::new`](crate::Flow::new) takes an
/// `Arc<FlowDef>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowDef {
    pub(crate) start: String,
    pub(crate) language: Lang,
    pub(crate) max_call_ms: u64,
    pub(crate) min_message_ms: u64,
    pub(crate) on_max_call: String,
    pub(crate) quick_exit: Option<QuickExit>,
    pub(crate) nodes: BTreeMap<String, Node>,
}

/// `[quick_exit]`: the key a caller presses when someone comes near. It works in every
/// node (during prompts, menus, a recording, the queue, the goodbye), always barges in,
/// and at once replaces whatever plays with the decoy: prompts that do not mention the
/// hotline (a shop's opening hours), looped until the caller hangs up or `max_ms`
/// passed, then the call hangs up without another word. A message being recorded is
/// kept. Not in a conversation with an operator: the operator hears the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuickExit {
    /// `key` (default `*`).
    pub key: char,
    /// `decoy`: the prompts played instead (at least one), in the caller's language.
    pub decoy: Vec<String>,
    /// `max_ms` (default 120 000): how long the decoy plays before the call hangs up.
    pub max_ms: u64,
}

impl FlowDef {
    /// Loads a flow from the text of a flow file. Unknown keys are errors; every error
    /// names the node and the key.
    pub fn from_toml(text: &str) -> Result<Self, FlowError> {
        raw::parse(text)
    }

    /// The node every call starts at (`start`).
    pub fn start(&self) -> &str {
        &self.start
    }

    /// The language of prompts until the caller chooses one (`language`).
    pub fn language(&self) -> Lang {
        self.language
    }

    /// The hard cap on a call's length before an operator answers (`max_call_ms`).
    pub fn max_call_ms(&self) -> u64 {
        self.max_call_ms
    }

    /// The shortest recording that counts as a message (`min_message_ms`).
    pub fn min_message_ms(&self) -> u64 {
        self.min_message_ms
    }

    /// The `hangup` node played when a call reaches `max_call_ms` (`on_max_call`).
    pub fn on_max_call(&self) -> &str {
        &self.on_max_call
    }

    /// The quick-exit key and its decoy (`[quick_exit]`), if the flow has one.
    pub fn quick_exit(&self) -> Option<&QuickExit> {
        self.quick_exit.as_ref()
    }

    /// Every callback window a `callback` node offers (`windows` values, `asap` among
    /// them when offered), for `hotline check` to match against hotline.toml.
    pub fn callback_windows(&self) -> BTreeSet<&str> {
        self.nodes
            .values()
            .filter_map(|n| match n {
                Node::Callback(c) => Some(c.windows.values().map(String::as_str)),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// The node with this id.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// Every node, by id.
    pub fn nodes(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(id, n)| (id.as_str(), n))
    }

    /// Every language a call of this flow can play prompts in: `language` and each one a
    /// `language` node can choose.
    pub fn languages(&self) -> BTreeSet<Lang> {
        let mut langs = BTreeSet::from([self.language]);
        for node in self.nodes.values() {
            if let Node::Language(l) = node {
                langs.insert(l.default);
                langs.extend(l.options.values().copied());
            }
        }
        langs
    }
}

/// One step of the flow, `[nodes.<id>]` in the file; `kind` selects the variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// `kind = "play"`.
    Play(PlayNode),
    /// `kind = "language"`.
    Language(LanguageNode),
    /// `kind = "menu"`.
    Menu(MenuNode),
    /// `kind = "record"`.
    Record(RecordNode),
    /// `kind = "saved"`.
    Saved(SavedNode),
    /// `kind = "enqueue"`.
    Enqueue(EnqueueNode),
    /// `kind = "question"`.
    Question(QuestionNode),
    /// `kind = "callback"`.
    Callback(CallbackNode),
    /// `kind = "hangup"`.
    HangUp(HangUpNode),
    /// `kind = "goto"`.
    Goto(GotoNode),
}

/// Plays prompts, then goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayNode {
    /// `prompts`: played back to back (at least one).
    pub prompts: Vec<String>,
    /// `barge_in` (default false): a key stops the prompts; the key is kept for the next
    /// menu. Without barge-in keys are kept too (typed ahead) but the prompts play to the end.
    pub barge_in: bool,
    /// `next`: the node after the prompts.
    pub next: String,
}

/// The language menu: a key chooses the language of every later prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageNode {
    /// `prompts`: the menu (at least one), in `language` since none is chosen yet.
    pub prompts: Vec<String>,
    /// `options`: key → language.
    pub options: BTreeMap<char, Lang>,
    /// `default`: the language when no valid key comes (the no-input path).
    pub default: Lang,
    /// `timeout_ms`: how long to wait for a key after the prompts.
    pub timeout_ms: u64,
    /// `retries` (default 0): replays after a wrong key or none, before `default`.
    pub retries: u32,
    /// `barge_in` (default true): a key stops the prompts and is taken at once.
    pub barge_in: bool,
    /// `invalid_prompt` (optional): played after a wrong key.
    pub invalid_prompt: Option<String>,
    /// `no_input_prompt` (optional): played after `timeout_ms` without a key.
    pub no_input_prompt: Option<String>,
    /// `next`: the node after the choice.
    pub next: String,
}

/// A menu: a key chooses the next node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuNode {
    /// `prompts`: the menu (at least one).
    pub prompts: Vec<String>,
    /// `options`: key → node.
    pub options: BTreeMap<char, String>,
    /// `repeat` (optional): the key that plays the menu again (not counted as a failure).
    pub repeat: Option<char>,
    /// `timeout_ms`: how long to wait for a key after the prompts.
    pub timeout_ms: u64,
    /// `retries` (default 0): replays after a wrong key or none, before `no_input`.
    pub retries: u32,
    /// `barge_in` (default true): a key stops the prompts and is taken at once.
    pub barge_in: bool,
    /// `invalid_prompt` (optional): played after a wrong key, before the menu again.
    pub invalid_prompt: Option<String>,
    /// `no_input_prompt` (optional): played after `timeout_ms` without a key.
    pub no_input_prompt: Option<String>,
    /// `no_input`: the node once `retries` are used up, so that a caller who cannot press
    /// keys is never stuck. Optional in the file, but [`FlowDef::validate`] reports a menu
    /// without it; such a menu starts over.
    pub no_input: Option<String>,
}

/// Records a message: instructions, beep, recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordNode {
    /// `prompts`: the instructions (at least one).
    pub prompts: Vec<String>,
    /// `beep` (optional): the tone played after the instructions, right before recording.
    pub beep: Option<String>,
    /// `barge_in` (default true): a key during the instructions skips to the beep.
    pub barge_in: bool,
    /// `max_ms`: longest recording.
    pub max_ms: u64,
    /// `silence_ms` (optional): end after this much silence.
    pub silence_ms: Option<u64>,
    /// `finish_key` (optional): the key that ends the recording.
    pub finish_key: Option<char>,
    /// `next`: the node after a message of at least `min_message_ms`.
    pub next: String,
    /// `short` (optional, default `next`): the node after a shorter recording.
    pub short: Option<String>,
}

/// Confirms a message and reads the reference number twice.
///
/// Plays `prompts`, `reference_prompt`, the reference digit by digit (`digit-0` …
/// `digit-9`), `repeat_prompt`, the digits again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedNode {
    /// `prompts`: before the number ("message saved"); may be empty.
    pub prompts: Vec<String>,
    /// `reference_prompt`: "your reference number is".
    pub reference_prompt: String,
    /// `repeat_prompt`: "I repeat", between the two readings.
    pub repeat_prompt: String,
    /// `next`: the node after the second reading.
    pub next: String,
}

/// Puts the call in the operator queue; hold music and position announcements while it
/// waits. An operator answering ends the flow's part (the caller talks to a person).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnqueueNode {
    /// `prompts`: played as the call joins the queue; may be empty.
    pub prompts: Vec<String>,
    /// `hold` (optional): looped while waiting.
    pub hold: Option<String>,
    /// `position_prompt` (optional): said before the position (read with `digit-N`) at
    /// the end of a hold loop after each position report of the queue (when it changes,
    /// and every `queue.position_every_secs`).
    pub position_prompt: Option<String>,
    /// `max_wait_ms` (optional): give up waiting after this long.
    pub max_wait_ms: Option<u64>,
    /// `unavailable`: the node when no operator can take the call or `max_wait_ms` passed.
    pub unavailable: String,
    /// `options` (optional): phone key → node. A key leaves the queue for that node (for
    /// example "2" = leave a message instead of waiting).
    pub options: BTreeMap<char, String>,
    /// `connected_prompts` (optional): played to the caller once an operator answered,
    /// before the two are connected (for example "this call may be recorded").
    pub connected_prompts: Vec<String>,
    /// `callback_prompts` (optional): played after `prompts` when a callback can be
    /// offered ("to be called back, press 3"; the key is an option leading to a
    /// `callback` node). When it cannot, they are not played and such a key is ignored.
    pub callback_prompts: Vec<String>,
}

/// A question answered with a key, for callers who cannot speak ("are you in danger
/// now? yes 1, no 2"). The answer is stored with the call
/// ([`Command::Answer`](crate::Command::Answer)) and shown to operators. Works like a
/// menu (barge-in, typed-ahead keys, `invalid_prompt`, `no_input_prompt`, `retries`);
/// a caller who answers nothing goes on to `next` without an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionNode {
    /// `question`: what is asked, as operators read it ("En peligro ahora").
    pub question: String,
    /// `prompts`: the question and its keys (at least one).
    pub prompts: Vec<String>,
    /// `answers`: key → the answer as operators read it ("sí", "no", "Cusco").
    pub answers: BTreeMap<char, String>,
    /// `timeout_ms`: how long to wait for a key after the prompts.
    pub timeout_ms: u64,
    /// `retries` (default 0): replays after a wrong key or none, before `next`.
    pub retries: u32,
    /// `barge_in` (default true).
    pub barge_in: bool,
    /// `invalid_prompt` (optional).
    pub invalid_prompt: Option<String>,
    /// `no_input_prompt` (optional).
    pub no_input_prompt: Option<String>,
    /// `next`: the node after the answer, or after no answer.
    pub next: String,
}

/// Offers a safe callback, in three questions, each answered with a key: is the number
/// the caller calls from safe to call back (`yes_key`/`no_key`), when (`windows`), and
/// the confirmation (`yes_key` books it). Nothing is booked unless the caller confirms;
/// "no", a wrong key or none after `retries`, or a call whose callback is not possible
/// (no number presented, callbacks not configured) go to `declined`. After the
/// confirming key the flow waits (at most `booking_timeout_ms`, in silence) for the shell
/// to say the booking is durably written: `next` only then; a refused booking or no
/// answer in time plays `failed_prompt` and goes to `failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackNode {
    /// `prompts`: "is it safe to call you back at this number?" (at least one).
    pub prompts: Vec<String>,
    /// `window_prompts`: the windows and their keys (at least one).
    pub window_prompts: Vec<String>,
    /// `windows`: key → window name (`asap`, or a window of hotline.toml's `[callback]`).
    pub windows: BTreeMap<char, String>,
    /// `confirm_prompts`: "to confirm, press 1; to cancel, press 2" (at least one).
    pub confirm_prompts: Vec<String>,
    /// `yes_key` (default `1`).
    pub yes_key: char,
    /// `no_key` (default `2`).
    pub no_key: char,
    /// `timeout_ms`: how long to wait for a key after each question.
    pub timeout_ms: u64,
    /// `retries` (default 0): replays of a question after a wrong key or none.
    pub retries: u32,
    /// `invalid_prompt` (optional).
    pub invalid_prompt: Option<String>,
    /// `no_input_prompt` (optional).
    pub no_input_prompt: Option<String>,
    /// `next`: the node once the callback is booked ("we will call you back").
    pub next: String,
    /// `declined`: the node when no callback is booked.
    pub declined: String,
    /// `booking_timeout_ms` (default 5000): how long to wait after the confirming key
    /// for the shell's word that the booking is written
    /// ([`Input::CallbackBooked`](crate::Input::CallbackBooked)).
    pub booking_timeout_ms: u64,
    /// `failed_prompt` (optional): "we could not book the callback", played when the
    /// booking failed or took too long, before `failed`.
    pub failed_prompt: Option<String>,
    /// `failed` (default: `declined`): the node when the booking failed or took too long.
    pub failed: String,
}

/// Plays prompts (goodbye), then hangs up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HangUpNode {
    /// `prompts`: may be empty.
    pub prompts: Vec<String>,
}

/// Goes to another node at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GotoNode {
    /// `next`: where to go.
    pub next: String,
}

impl Node {
    /// The `kind` of the node in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Play(_) => "play",
            Self::Language(_) => "language",
            Self::Menu(_) => "menu",
            Self::Record(_) => "record",
            Self::Saved(_) => "saved",
            Self::Enqueue(_) => "enqueue",
            Self::Question(_) => "question",
            Self::Callback(_) => "callback",
            Self::HangUp(_) => "hangup",
            Self::Goto(_) => "goto",
        }
    }

    /// Every node this one can lead to, with the key that names it (`options.2`).
    pub fn targets(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        match self {
            Self::Play(n) => out.push(("next".to_owned(), n.next.as_str())),
            Self::Language(n) => out.push(("next".to_owned(), n.next.as_str())),
            Self::Menu(n) => {
                for (key, to) in &n.options {
                    out.push((format!("options.{key}"), to.as_str()));
                }
                if let Some(to) = &n.no_input {
                    out.push(("no_input".to_owned(), to.as_str()));
                }
            }
            Self::Record(n) => {
                out.push(("next".to_owned(), n.next.as_str()));
                if let Some(to) = &n.short {
                    out.push(("short".to_owned(), to.as_str()));
                }
            }
            Self::Saved(n) => out.push(("next".to_owned(), n.next.as_str())),
            Self::Enqueue(n) => {
                out.push(("unavailable".to_owned(), n.unavailable.as_str()));
                for (key, to) in &n.options {
                    out.push((format!("options.{key}"), to.as_str()));
                }
            }
            Self::Question(n) => out.push(("next".to_owned(), n.next.as_str())),
            Self::Callback(n) => {
                out.push(("next".to_owned(), n.next.as_str()));
                out.push(("declined".to_owned(), n.declined.as_str()));
                out.push(("failed".to_owned(), n.failed.as_str()));
            }
            Self::HangUp(_) => {}
            Self::Goto(n) => out.push(("next".to_owned(), n.next.as_str())),
        }
        out
    }

    /// Every phone key this node gives a meaning to, with the key of the file that
    /// names it (the quick-exit key must not be one of them).
    pub fn keys(&self) -> Vec<(String, char)> {
        fn opts<T>(out: &mut Vec<(String, char)>, name: &str, map: &BTreeMap<char, T>) {
            out.extend(map.keys().map(|k| (format!("{name}.{k}"), *k)));
        }
        let mut out = Vec::new();
        match self {
            Self::Language(n) => opts(&mut out, "options", &n.options),
            Self::Menu(n) => {
                opts(&mut out, "options", &n.options);
                out.extend(n.repeat.map(|k| ("repeat".to_owned(), k)));
            }
            Self::Record(n) => out.extend(n.finish_key.map(|k| ("finish_key".to_owned(), k))),
            Self::Enqueue(n) => opts(&mut out, "options", &n.options),
            Self::Question(n) => opts(&mut out, "answers", &n.answers),
            Self::Callback(n) => {
                opts(&mut out, "windows", &n.windows);
                out.push(("yes_key".to_owned(), n.yes_key));
                out.push(("no_key".to_owned(), n.no_key));
            }
            Self::Play(_) | Self::Saved(_) | Self::HangUp(_) | Self::Goto(_) => {}
        }
        out
    }

    /// Every prompt this node can play, with the key that names it. The digit prompts
    /// that read numbers are listed under the key that needs them.
    pub fn prompts(&self) -> Vec<(&'static str, &str)> {
        fn list<'a>(out: &mut Vec<(&'static str, &'a str)>, key: &'static str, ids: &'a [String]) {
            out.extend(ids.iter().map(|id| (key, id.as_str())));
        }
        fn one<'a>(
            out: &mut Vec<(&'static str, &'a str)>,
            key: &'static str,
            id: &'a Option<String>,
        ) {
            out.extend(id.as_deref().map(|id| (key, id)));
        }
        fn digits(out: &mut Vec<(&'static str, &str)>, key: &'static str) {
            out.extend(DIGIT_PROMPTS.iter().map(|id| (key, *id)));
        }
        let mut out = Vec::new();
        match self {
            Self::Play(n) => list(&mut out, "prompts", &n.prompts),
            Self::Language(n) => {
                list(&mut out, "prompts", &n.prompts);
                one(&mut out, "invalid_prompt", &n.invalid_prompt);
                one(&mut out, "no_input_prompt", &n.no_input_prompt);
            }
            Self::Menu(n) => {
                list(&mut out, "prompts", &n.prompts);
                one(&mut out, "invalid_prompt", &n.invalid_prompt);
                one(&mut out, "no_input_prompt", &n.no_input_prompt);
            }
            Self::Record(n) => {
                list(&mut out, "prompts", &n.prompts);
                one(&mut out, "beep", &n.beep);
            }
            Self::Saved(n) => {
                list(&mut out, "prompts", &n.prompts);
                out.push(("reference_prompt", n.reference_prompt.as_str()));
                out.push(("repeat_prompt", n.repeat_prompt.as_str()));
                digits(&mut out, "reference_prompt");
            }
            Self::Enqueue(n) => {
                list(&mut out, "prompts", &n.prompts);
                one(&mut out, "hold", &n.hold);
                list(&mut out, "connected_prompts", &n.connected_prompts);
                list(&mut out, "callback_prompts", &n.callback_prompts);
                if let Some(id) = &n.position_prompt {
                    out.push(("position_prompt", id.as_str()));
                    digits(&mut out, "position_prompt");
                }
            }
            Self::Question(n) => {
                list(&mut out, "prompts", &n.prompts);
                one(&mut out, "invalid_prompt", &n.invalid_prompt);
                one(&mut out, "no_input_prompt", &n.no_input_prompt);
            }
            Self::Callback(n) => {
                list(&mut out, "prompts", &n.prompts);
                list(&mut out, "window_prompts", &n.window_prompts);
                list(&mut out, "confirm_prompts", &n.confirm_prompts);
                one(&mut out, "invalid_prompt", &n.invalid_prompt);
                one(&mut out, "no_input_prompt", &n.no_input_prompt);
                one(&mut out, "failed_prompt", &n.failed_prompt);
            }
            Self::HangUp(n) => list(&mut out, "prompts", &n.prompts),
            Self::Goto(_) => {}
        }
        out
    }
}
