//! `menu` and `language` nodes: play the menu, wait for a key, act on it.
//!
//! Both kinds work alike: a key during the prompts stops them (barge-in) and counts; a
//! key typed ahead before the node is taken at once, without the prompts; after the
//! prompts the node waits `timeout_ms`. A wrong key or no key is a failed attempt: the
//! menu plays again (after `invalid_prompt` or `no_input_prompt`) up to `retries` times,
//! then the no-input path is taken (the `no_input` node, or the `default` language), so a
//! caller who cannot press keys always gets somewhere.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Flow, Step};
use crate::{FlowDef, Lang, Node};

/// A call in a `menu` or `language` node.
#[derive(Debug)]
pub(super) struct Choice {
    node: String,
    wait: Wait,
    /// Wrong keys and timeouts so far.
    failures: u32,
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

/// What the two kinds share.
struct Shape<'a> {
    prompts: &'a [String],
    timeout_ms: u64,
    retries: u32,
    barge_in: bool,
    invalid_prompt: Option<&'a str>,
    no_input_prompt: Option<&'a str>,
}

fn shape(node: &Node) -> Option<Shape<'_>> {
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
        _ => None,
    }
}

/// What a key means in a node.
enum Pick<'a> {
    Repeat,
    Go(&'a str),
    Lang(Lang, &'a str),
    Invalid,
}

fn pick(node: &Node, key: char) -> Pick<'_> {
    match node {
        Node::Menu(n) if n.repeat == Some(key) => Pick::Repeat,
        Node::Menu(n) => n.options.get(&key).map_or(Pick::Invalid, |to| Pick::Go(to)),
        Node::Language(n) => n
            .options
            .get(&key)
            .map_or(Pick::Invalid, |&l| Pick::Lang(l, &n.next)),
        _ => Pick::Invalid,
    }
}

/// Where a node goes once its retries are used up.
enum Fallback<'a> {
    Go(&'a str),
    Lang(Lang, &'a str),
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
        _ => Fallback::Restart,
    }
}

impl Flow {
    pub(super) fn enter_choice(&mut self, now: Instant, id: &str) {
        self.step = Step::Choice(Choice {
            node: id.to_owned(),
            wait: Wait::Prompt,
            failures: 0,
        });
        match self.typed.pop_front() {
            Some(key) => self.choose(now, key),
            None => self.play_choice(None),
        }
    }

    pub(super) fn choice_key(&mut self, now: Instant, key: char) {
        let Some((def, id, wait)) = self.here() else {
            return;
        };
        match wait {
            Wait::Key { .. } => self.choose(now, key),
            Wait::Prompt => {
                if def.node(&id).and_then(shape).is_some_and(|s| s.barge_in) {
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
        let Some((def, id, _)) = self.here() else {
            return;
        };
        let Some(shape) = def.node(&id).and_then(shape) else {
            return;
        };
        let until = now + Duration::from_millis(shape.timeout_ms);
        if let Step::Choice(c) = &mut self.step {
            c.wait = Wait::Key { until };
        }
    }

    pub(super) fn choice_timeout(&mut self, now: Instant) {
        let Some((def, id, _)) = self.here() else {
            return;
        };
        let Some(shape) = def.node(&id).and_then(shape) else {
            return;
        };
        self.event(crate::EventKind::NoInput, id.as_str());
        self.failed_attempt(now, shape.no_input_prompt);
    }

    /// A key the node takes.
    fn choose(&mut self, now: Instant, key: char) {
        let Some((def, id, _)) = self.here() else {
            return;
        };
        let Some(node) = def.node(&id) else { return };
        match pick(node, key) {
            Pick::Repeat => self.play_choice(None),
            Pick::Go(to) => self.go_to(now, to),
            Pick::Lang(lang, next) => {
                self.set_language(lang, "key");
                self.go_to(now, next);
            }
            Pick::Invalid => {
                self.event(crate::EventKind::InvalidOption, format!("{id} {key}"));
                // The caller got the menu wrong: let them hear it before anything else.
                self.typed.clear();
                let prompt = shape(node).and_then(|s| s.invalid_prompt);
                self.failed_attempt(now, prompt);
            }
        }
    }

    /// A wrong key or none: play the menu again after `prompt`, or take the no-input path.
    fn failed_attempt(&mut self, now: Instant, prompt: Option<&str>) {
        let Some((def, id, _)) = self.here() else {
            return;
        };
        let Some(node) = def.node(&id) else { return };
        let retries = shape(node).map_or(0, |s| s.retries);
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
        let Some((def, id, _)) = self.here() else {
            return;
        };
        let Some(shape) = def.node(&id).and_then(shape) else {
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

    /// The flow, node id and wait of the current menu.
    fn here(&self) -> Option<(Arc<FlowDef>, String, Wait)> {
        match &self.step {
            Step::Choice(c) => Some((Arc::clone(&self.def), c.node.clone(), c.wait)),
            _ => None,
        }
    }
}
