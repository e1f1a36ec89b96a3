//! Checks of a loaded flow as a whole ([`FlowDef::validate`]), for `hotline check` and
//! for startup.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;

use crate::{FlowDef, Lang, Node};

/// Something wrong with a flow that loaded. A flow with problems still runs (an unknown
/// node ends the call as `failed`), but the binary should refuse to serve it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FlowProblem {
    /// `start` names no node.
    NoStart {
        /// The value of `start`.
        start: String,
    },
    /// A key names a node that does not exist.
    UnknownNode {
        /// The node holding the key; `None` for a top-level key (`on_max_call`).
        node: Option<String>,
        /// The key (`next`, `options.2`, ...).
        key: String,
        /// The missing node.
        target: String,
    },
    /// No path leads from `start` (or `on_max_call`) to this node.
    Unreachable {
        /// The node.
        node: String,
    },
    /// A prompt the flow can play has no file in a language the flow can speak.
    MissingPrompt {
        /// The first node that plays it.
        node: String,
        /// The key of that node that names it.
        key: String,
        /// The language.
        lang: Lang,
        /// The prompt id.
        prompt: String,
    },
    /// A menu without `no_input`: a caller who cannot press keys would hear it forever.
    MenuWithoutNoInput {
        /// The menu.
        node: String,
    },
    /// `on_max_call` names a node that is not a `hangup` node.
    MaxCallNotHangUp {
        /// The node it names.
        node: String,
    },
    /// The quick-exit key has another meaning in a node: the caller pressing it there
    /// would get the decoy, never that option.
    QuickExitKeyTaken {
        /// The node.
        node: String,
        /// The key of the node that uses it (`options.*`, `finish_key`).
        key: String,
    },
    /// A decoy prompt of `[quick_exit]` has no file in a language of the flow.
    MissingDecoy {
        /// The language.
        lang: Lang,
        /// The prompt id.
        prompt: String,
    },
    /// `goto` nodes that lead to each other and never to anything else.
    GotoLoop {
        /// One node of the loop (the first by id).
        node: String,
    },
}

impl fmt::Display for FlowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoStart { start } => write!(f, "key `start`: no node `{start}`"),
            Self::UnknownNode {
                node: Some(node),
                key,
                target,
            } => {
                write!(f, "node `{node}`, key `{key}`: no node `{target}`")
            }
            Self::UnknownNode {
                node: None,
                key,
                target,
            } => {
                write!(f, "key `{key}`: no node `{target}`")
            }
            Self::Unreachable { node } => write!(f, "node `{node}`: unreachable from `start`"),
            Self::MissingPrompt {
                node,
                key,
                lang,
                prompt,
            } => {
                write!(
                    f,
                    "node `{node}`, key `{key}`: prompt `{prompt}` missing in `{lang}`"
                )
            }
            Self::MenuWithoutNoInput { node } => {
                write!(f, "node `{node}`: menu without a `no_input` node")
            }
            Self::MaxCallNotHangUp { node } => {
                write!(f, "key `on_max_call`: node `{node}` is not a `hangup` node")
            }
            Self::QuickExitKeyTaken { node, key } => write!(
                f,
                "node `{node}`, key `{key}`: the quick-exit key (`quick_exit.key`) cannot mean anything else"
            ),
            Self::MissingDecoy { lang, prompt } => {
                write!(
                    f,
                    "key `quick_exit.decoy`: prompt `{prompt}` missing in `{lang}`"
                )
            }
            Self::GotoLoop { node } => write!(f, "node `{node}`: `goto` nodes in a loop"),
        }
    }
}

impl FlowDef {
    /// Every problem of the flow as a whole; empty if it is sound.
    ///
    /// `has_prompt(lang, id)` tells whether the prompt `id` exists in `lang` (the binary
    /// checks `<prompts_dir>/<lang>/<id>.wav`). Every prompt of every node is checked in
    /// every language of [`FlowDef::languages`].
    pub fn validate(&self, has_prompt: impl Fn(Lang, &str) -> bool) -> Vec<FlowProblem> {
        let mut problems = Vec::new();
        if !self.nodes.contains_key(&self.start) {
            problems.push(FlowProblem::NoStart {
                start: self.start.clone(),
            });
        }
        match self.nodes.get(&self.on_max_call) {
            None => problems.push(FlowProblem::UnknownNode {
                node: None,
                key: "on_max_call".to_owned(),
                target: self.on_max_call.clone(),
            }),
            Some(Node::HangUp(_)) => {}
            Some(_) => problems.push(FlowProblem::MaxCallNotHangUp {
                node: self.on_max_call.clone(),
            }),
        }
        for (id, node) in &self.nodes {
            for (key, target) in node.targets() {
                if !self.nodes.contains_key(target) {
                    problems.push(FlowProblem::UnknownNode {
                        node: Some(id.clone()),
                        key,
                        target: target.to_owned(),
                    });
                }
            }
        }
        let reachable = self.reachable();
        for id in self
            .nodes
            .keys()
            .filter(|id| !reachable.contains(id.as_str()))
        {
            problems.push(FlowProblem::Unreachable { node: id.clone() });
        }
        for (id, node) in &self.nodes {
            if let Node::Menu(menu) = node
                && menu.no_input.is_none()
            {
                problems.push(FlowProblem::MenuWithoutNoInput { node: id.clone() });
            }
        }
        for node in self.goto_loops() {
            problems.push(FlowProblem::GotoLoop { node });
        }
        if let Some(q) = &self.quick_exit {
            for (id, node) in &self.nodes {
                for (key, _) in node.keys().into_iter().filter(|(_, k)| *k == q.key) {
                    problems.push(FlowProblem::QuickExitKeyTaken {
                        node: id.clone(),
                        key,
                    });
                }
            }
        }
        let langs = self.languages();
        if let Some(q) = &self.quick_exit {
            for prompt in &q.decoy {
                for &lang in &langs {
                    if !has_prompt(lang, prompt) {
                        problems.push(FlowProblem::MissingDecoy {
                            lang,
                            prompt: prompt.clone(),
                        });
                    }
                }
            }
        }
        let mut seen = BTreeSet::new();
        for (id, node) in &self.nodes {
            for (key, prompt) in node.prompts() {
                for &lang in &langs {
                    if !has_prompt(lang, prompt) && seen.insert((lang, prompt)) {
                        problems.push(FlowProblem::MissingPrompt {
                            node: id.clone(),
                            key: key.to_owned(),
                            lang,
                            prompt: prompt.to_owned(),
                        });
                    }
                }
            }
        }
        problems
    }

    /// Ids of the nodes a call can reach from `start` and `on_max_call`.
    fn reachable(&self) -> BTreeSet<&str> {
        let mut seen = BTreeSet::new();
        let mut todo: VecDeque<&str> = [self.start.as_str(), self.on_max_call.as_str()].into();
        while let Some(id) = todo.pop_front() {
            let Some(node) = self.nodes.get(id) else {
                continue;
            };
            if seen.insert(id) {
                todo.extend(node.targets().into_iter().map(|(_, to)| to));
            }
        }
        seen
    }

    /// One node (the first by id) of each loop made only of `goto` nodes.
    fn goto_loops(&self) -> BTreeSet<String> {
        let mut loops = BTreeSet::new();
        for id in self.nodes.keys() {
            let mut chain: Vec<&str> = Vec::new();
            let mut at = id.as_str();
            while let Some(Node::Goto(goto)) = self.nodes.get(at) {
                if let Some(i) = chain.iter().position(|&n| n == at) {
                    let first = chain[i..].iter().min().copied().unwrap_or(at);
                    loops.insert(first.to_owned());
                    break;
                }
                chain.push(at);
                at = &goto.next;
            }
        }
        loops
    }
}
