//! The crate's error type.

use std::fmt;

/// A flow file that cannot be loaded. Every variant names the node and the key.
///
/// A file that loads may still describe a broken flow (a reference to a node that does
/// not exist, a missing prompt): [`FlowDef::validate`](crate::FlowDef::validate) reports
/// those as [`FlowProblem`](crate::FlowProblem)s.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// Not TOML, a value of the wrong type, an unknown key or a missing one. The TOML
    /// error shows the line and the key.
    #[error("{}{source}", InNode(node.as_deref()))]
    Toml {
        /// The node whose table holds the error, if any.
        node: Option<String>,
        /// The parser's error, with line, column and the offending line.
        #[source]
        source: toml::de::Error,
    },
    /// A key that does not fit the node's `kind`, or a value the flow cannot use.
    #[error("{}key `{key}`: {problem}", InNode(node.as_deref()))]
    Key {
        /// The node id; `None` for a top-level key.
        node: Option<String>,
        /// The key, dotted for keys in a table (`options.7`).
        key: String,
        /// What is wrong with it.
        problem: KeyProblem,
    },
}

/// What is wrong with a key of a node ([`FlowError::Key`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyProblem {
    /// A key this kind of node needs is absent.
    #[error("required in a `{kind}` node")]
    Required {
        /// The node's kind.
        kind: &'static str,
    },
    /// A key of another kind of node.
    #[error("does not apply to a `{kind}` node")]
    NotAllowed {
        /// The node's kind.
        kind: &'static str,
    },
    /// A value that should be a language code.
    #[error("`{value}` is not a language (es, qu)")]
    NotALanguage {
        /// The value found.
        value: String,
    },
    /// A value that should be one phone key.
    #[error("`{value}` is not one phone key (0-9, *, #, A-D)")]
    NotAKey {
        /// The value found.
        value: String,
    },
    /// The repeat key is also an option.
    #[error("`{key}` is both the repeat key and an option")]
    RepeatIsOption {
        /// The key.
        key: char,
    },
    /// `yes_key` and `no_key` of a `callback` node are the same key.
    #[error("`{key}` is both the yes key and the no key")]
    YesIsNo {
        /// The key.
        key: char,
    },
    /// A prompt list that must play something is empty.
    #[error("must name at least one prompt")]
    NoPrompt,
    /// A duration of 0.
    #[error("must be more than 0")]
    Zero,
}

/// Formats `node `x`: ` before an error that lies in a node's table.
struct InNode<'a>(Option<&'a str>);

impl fmt::Display for InNode<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(node) => write!(f, "node `{node}`: "),
            None => Ok(()),
        }
    }
}
