//! `menu`, `language`, `question` and `callback` nodes: play the prompts, wait for a
//! key, act on it.
//!
//! Every such node works alike: a key during the prompts stops them (barge-in) and
//! counts; a key typed ahead before the node is taken at once, without the prompts;
//! after the prompts the node waits `timeout_ms`. A wrong key or no key is a failed
//! attempt: the prompts play again (after `invalid_prompt` or `no_input_prompt`) up to
//! `retries` times, then the no-input path is taken (the `no_input` node, the `default`
//! language, a question's `next` without an answer, a callback's `declined`), so a
//! caller who cannot press keys always gets somewhere. A `callback` node asks three
//! such questions in turn ([`Stage`]); each starts with its retries unused. After the
//! confirming key it waits in silence for the shell's word on the booking
//! ([`Step::Booking`]): `next` once booked, `failed_prompt` and `failed` when refused or
//! after `booking_timeout_ms`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Flow, Step};
use crate::{Command, EventKind, FlowDef, Lang, Node};

/// A call in one of these nodes.
#[derive(Debug)]
pub(super) struct Choice {
    node: String,
    stage: Stage,
    wait: Wait,
    /// Wrong keys and timeouts so far (in this stage).
    failures: u32,
}

/// Which question of the node is asked: always `Ask` but in a `callback` node.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// The node's `prompts` (a callback's "is this number safe?").
    Ask,
    /// A callback's windows.
    Window,
    /// A callback's confirmation of this window.
    Confirm(String),
}

#[derive(Debug, Clone, Copy)]
enum Wait {
    /// The menu plays.
    Prompt,
    /// The menu played; waiting for a key until then.
    Key { until: Instant },
}

impl Choice {
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.wait {
            Wait::Prompt => None,
            Wait::Key { until } => Some(until),
        }
    }
}

/// What the kinds share.
struct Shape<'a> {
    prompts: &'a [String],
    timeout_ms: u64,
    retries: u32,
    barge_in: bool,
    invalid_prompt: Option<&'a str>,
    no_input_prompt: Option<&'a str>,
}

fn shape<'a>(node: &'a Node, stage: &Stage) -> Option<Shape<'a>> {
    match node {
        Node::Menu(n) => Some(Shape {
            prompts: &n.prompts,
            timeout_ms: n.timeout_ms,
            retries: n.retries,
            barge_in: n.barge_in,
            invalid_prompt: n.invalid_prompt.as_deref(),
            no_input_prompt: n.no_input_prompt.as_deref(),
        }),
        Node::Language(n) => Some(Shape {
            prompts: &n.prompts,
            timeout_ms: n.timeout_ms,
            retries: n.retries,
            barge_in: n.barge_in,
            invalid_prompt: n.invalid_prompt.as_deref(),
            no_input_prompt: n.no_input_prompt.as_deref(),
        }),
        Node::Question(n) => Some(Shape {
            prompts: &n.prompts,
            timeout_ms: n.timeout_ms,
            retries: n.retries,
            barge_in: n.barge_in,
            invalid_prompt: n.invalid_prompt.as_deref(),
            no_input_prompt: n.no_input_prompt.as_deref(),
        }),
        Node::Callback(n) => Some(Shape {
            prompts: match stage {
                Stage::Ask => &n.prompts,
                Stage::Window => &n.window_prompts,
                Stage::Confirm(_) => &n.confirm_prompts,
            },
            timeout_ms: n.timeout_ms,
            retries: n.retries,
            barge_in: true,
            invalid_prompt: n.invalid_prompt.as_deref(),
            no_input_prompt: n.no_input_prompt.as_deref(),
        }),
        _ => None,
    }
}

/// What a key means in a node.
enum Pick<'a> {
    Repeat,
    Go(&'a str),
    Lang(Lang, &'a str),
    /// A question's answer: question, answer, next node.
    Answer(&'a str, &'a str, &'a str),
    /// The next question of a callback node.
    Stage(Stage),
    /// A confirmed callback: window, how long to wait for its booking (ms).
    Book(String, u64),
    /// No callback: why, and the node.
    Decline(&'static str, &'a str),
    Invalid,
}

fn pick<'a>(node: &'a Node, stage: &Stage, key: char) -> Pick<'a> {
    match node {
        Node::Menu(n) if n.repeat == Some(key) => Pick::Repeat,
        Node::Menu(n) => n.options.get(&key).map_or(Pick::Invalid, |to| Pick::Go(to)),
        Node::Language(n) => n
            .options
            .get(&key)
            .map_or(Pick::Invalid, |&l| Pick::Lang(l, &n.next)),
        Node::Question(n) => n
            .answers
            .get(&key)
            .map_or(Pick::Invalid, |a| Pick::Answer(&n.question, a, &n.next)),
        Node::Callback(n) => match stage {
            Stage::Ask if key == n.yes_key => Pick::Stage(Stage::Window),
            Stage::Ask if key == n.no_key => Pick::Decline("not-safe", &n.declined),
            Stage::Window => n
                .windows
                .get(&key)
                .map_or(Pick::Invalid, |w| Pick::Stage(Stage::Confirm(w.clone()))),
            Stage::Confirm(w) if key == n.yes_key => Pick::Book(w.clone(), n.booking_timeout_ms),
            Stage::Confirm(_) if key == n.no_key => Pick::Decline("cancelled", &n.declined),
            _ => Pick::Invalid,
        },
        _ => Pick::Invalid,
    }
}

/// Where a node goes once its retries are used up.
enum Fallback<'a> {
    Go(&'a str),
    Lang(Lang, &'a str),
    /// A callback not booked: why, and the node.
    Decline(&'static str, &'a str),
    /// A menu without `no_input` (reported by `validate`): start it over.
    Restart,
}

fn fallback(node: &Node) -> Fallback<'_> {
    match node {
        Node::Menu(n) => n
            .no_input
            .as_deref()
            .map_or(Fallback::Restart, Fallback::Go),
        Node::Language(n) => Fallback::Lang(n.default, &n.next),
        Node::Question(n) => Fallback::Go(&n.next),
        Node::Callback(n) => Fallback::Decline("no-input", &n.declined),
        _ => Fallback::Restart,
    }
}

impl Flow {
    pub(super) fn enter_choice(&mut self, now: Instant, id: &str) {
        if let Some(Node::Callback(n)) = self.def.node(id)
            && !self.callback_offer
        {
            // No number to call back, or callbacks are not configured.
            let declined = n.declined.clone();
            self.event(EventKind::CallbackDeclined, "not-possible");
            return self.go_to(now, &declined);
        }
        self.step = Step::Choice(Choice {
            node: id.to_owned(),
            stage: Stage::Ask,
            wait: Wait::Prompt,
            failures: 0,
        });
        match self.typed.pop_front() {
            Some(key) => self.choose(now, key),
            None => self.play_choice(None),
        }
    }

    pub(super) fn choice_key(&mut self, now: Instant, key: char) {
        let Some((def, id, stage, wait)) = self.here() else {
            return;
        };
        match wait {
            Wait::Key { .. } => self.choose(now, key),
            Wait::Prompt => {
                if def
                    .node(&id)
                    .and_then(|n| shape(n, &stage))
                    .is_some_and(|s| s.barge_in)
                {
                    self.stop_playback();
                    self.choose(now, key);
                } else {
                    self.type_ahead(key);
                }
            }
        }
    }

    pub(super) fn choice_prompt_finished(&mut self, now: Instant) {
        if let Some(key) = self.typed.pop_front() {
            return self.choose(now, key);
        }
        let Some((def, id, stage, _)) = self.here() else {
            return;
        };
        let Some(shape) = def.node(&id).and_then(|n| shape(n, &stage)) else {
            return;
        };
        let until = now + Duration::from_millis(shape.timeout_ms);
        if let Step::Choice(c) = &mut self.step {
            c.wait = Wait::Key { until };
        }
    }

    pub(super) fn choice_timeout(&mut self, now: Instant) {
        let Some((def, id, stage, _)) = self.here() else {
            return;
        };
        let Some(shape) = def.node(&id).and_then(|n| shape(n, &stage)) else {
            return;
        };
        self.event(EventKind::NoInput, id.as_str());
        self.failed_attempt(now, shape.no_input_prompt);
    }

    /// A key the node takes.
    fn choose(&mut self, now: Instant, key: char) {
        let Some((def, id, stage, _)) = self.here() else {
            return;
        };
        let Some(node) = def.node(&id) else { return };
        match pick(node, &stage, key) {
            Pick::Repeat => self.play_choice(None),
            Pick::Go(to) => self.go_to(now, to),
            Pick::Lang(lang, next) => {
                self.set_language(lang, "key");
                self.go_to(now, next);
            }
            Pick::Answer(question, answer, next) => {
                self.event(EventKind::Answer, format!("{question} = {answer}"));
                self.out.push_back(Command::Answer {
                    question: question.to_owned(),
                    answer: answer.to_owned(),
                });
                self.go_to(now, next);
            }
            Pick::Stage(next) => {
                if let Step::Choice(c) = &mut self.step {
                    c.stage = next;
                    c.failures = 0;
                }
                // A key typed ahead answers the next question too.
                match self.typed.pop_front() {
                    Some(key) => self.choose(now, key),
                    None => self.play_choice(None),
                }
            }
            Pick::Book(window, wait) => {
                self.event(EventKind::CallbackRequested, window.as_str());
                self.out.push_back(Command::Callback {
                    window: window.clone(),
                });
                self.step = Step::Booking {
                    node: id,
                    window,
                    until: now + Duration::from_millis(wait),
                };
            }
            Pick::Decline(why, to) => {
                self.event(EventKind::CallbackDeclined, why);
                self.go_to(now, to);
            }
            Pick::Invalid => {
                self.event(EventKind::InvalidOption, format!("{id} {key}"));
                // The caller got the menu wrong: let them hear it before anything else.
                self.typed.clear();
                let prompt = shape(node, &stage).and_then(|s| s.invalid_prompt);
                self.failed_attempt(now, prompt);
            }
        }
    }

    /// A wrong key or none: play the menu again after `prompt`, or take the no-input path.
    fn failed_attempt(&mut self, now: Instant, prompt: Option<&str>) {
        let Some((def, id, stage, _)) = self.here() else {
            return;
        };
        let Some(node) = def.node(&id) else { return };
        let retries = shape(node, &stage).map_or(0, |s| s.retries);
        let failures = match &mut self.step {
            Step::Choice(c) => {
                c.failures += 1;
                c.failures
            }
            _ => return,
        };
        if failures <= retries {
            return self.play_choice(prompt);
        }
        match fallback(node) {
            Fallback::Go(to) => self.leave(now, prompt, to),
            Fallback::Lang(lang, next) => {
                self.set_language(lang, "default");
                self.leave(now, prompt, next);
            }
            Fallback::Decline(why, to) => {
                self.event(EventKind::CallbackDeclined, why);
                self.leave(now, prompt, to);
            }
            Fallback::Restart => {
                if let Step::Choice(c) = &mut self.step {
                    c.failures = 0;
                }
                self.play_choice(prompt);
            }
        }
    }

    /// Goes to `to`, after `prompt` if there is one.
    fn leave(&mut self, now: Instant, prompt: Option<&str>, to: &str) {
        match prompt {
            Some(prompt) => {
                self.step = Step::Then {
                    next: to.to_owned(),
                };
                self.play(&[prompt], false);
            }
            None => self.go_to(now, to),
        }
    }

    /// Plays the menu, after `before` (the invalid-option or no-input prompt).
    fn play_choice(&mut self, before: Option<&str>) {
        let Some((def, id, stage, _)) = self.here() else {
            return;
        };
        let Some(shape) = def.node(&id).and_then(|n| shape(n, &stage)) else {
            return;
        };
        let list: Vec<&str> = before
            .into_iter()
            .chain(shape.prompts.iter().map(String::as_str))
            .collect();
        if let Step::Choice(c) = &mut self.step {
            c.wait = Wait::Prompt;
        }
        self.play(&list, shape.barge_in);
    }

    // --- A confirmed callback's booking ------------------------------------------------

    /// The shell wrote the booking: say so (the node's `next`).
    pub(super) fn callback_booked(&mut self, now: Instant) {
        let Step::Booking { node, window, .. } = &self.step else {
            return;
        };
        let (node, window) = (node.clone(), window.clone());
        self.event(EventKind::CallbackBooked, window);
        self.callback_booked = true;
        let def = Arc::clone(&self.def);
        if let Some(Node::Callback(n)) = def.node(&node) {
            self.go_to(now, &n.next);
        }
    }

    /// No word of the booking within `booking_timeout_ms`: drop it (the shell cancels it
    /// if it lands later) and say it failed.
    pub(super) fn booking_timeout(&mut self, now: Instant) {
        if matches!(self.step, Step::Booking { .. }) {
            self.out.push_back(Command::DropCallback);
            self.callback_failed(now, "timeout");
        }
    }

    /// The booking failed (`why`: `refused` or `timeout`): `failed_prompt`, then `failed`.
    pub(super) fn callback_failed(&mut self, now: Instant, why: &str) {
        let Step::Booking { node, .. } = &self.step else {
            return;
        };
        let node = node.clone();
        self.event(EventKind::CallbackFailed, why);
        let def = Arc::clone(&self.def);
        if let Some(Node::Callback(n)) = def.node(&node) {
            self.leave(now, n.failed_prompt.as_deref(), &n.failed);
        }
    }

    /// The flow, node id, stage and wait of the current menu.
    fn here(&self) -> Option<(Arc<FlowDef>, String, Stage, Wait)> {
        match &self.step {
            Step::Choice(c) => Some((
                Arc::clone(&self.def),
                c.node.clone(),
                c.stage.clone(),
                c.wait,
            )),
            _ => None,
        }
    }
}
