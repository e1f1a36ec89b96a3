//! hotline-ivr: the call flow of the hotline, as a pure state machine.
//!
//! The flow is data ([`FlowDef`], loaded from `config/flow.toml`); one call going through
//! it is a [`Flow`]. Nothing here touches a socket, a task, a file or a clock: the shell
//! passes [`Input`]s (answered, a key, a prompt finished, a recording finished, queue
//! news, hung up) and the time, and carries out the [`Command`]s (play, stop, record,
//! enqueue, hang up, outcome, event-log lines), calling [`Flow::handle_timeout`] at
//! [`Flow::poll_timeout`].
//!
//! ```
//! # use std::{sync::Arc, time::Instant};
//! # use hotline_ivr::{Command, Flow, FlowDef, Input};
//! # let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/flow.toml")).unwrap();
//! let def = Arc::new(FlowDef::from_toml(&text)?);
//! let now = Instant::now(); // the shell's clock, never the flow's
//! let mut flow = Flow::new(def, now, "4821".to_owned());
//! flow.handle(now, Input::Answered);
//! while let Some(command) = flow.poll_command() {
//!     match command {
//!         Command::Play { prompts, .. } => assert_eq!(prompts[0].id, "welcome"),
//!         _ => {}
//!     }
//! }
//! # Ok::<(), hotline_ivr::FlowError>(())
//! ```
//!
//! # Layout
//! - [`def`]: [`FlowDef`] and its [`Node`] kinds, read from TOML with errors that name
//!   the node and the key.
//! - [`validate`]: [`FlowDef::validate`] and [`FlowProblem`]: unknown and unreachable
//!   nodes, missing prompts, menus without a no-input path (`hotline check`).
//! - [`flow`]: [`Flow`], the per-call state machine, one file per kind of step.
//! - [`input`], [`command`]: what goes in and what comes out.
//! - [`lang`]: [`Lang`], the languages of the prompts.
//! - [`error`]: [`FlowError`], the crate's one error type.

pub mod command;
pub mod def;
pub mod error;
pub mod flow;
pub mod input;
mod key;
pub mod lang;
pub mod validate;

pub use command::{Command, Disposition, EventKind, Mark, PromptRef};
pub use def::{
    CallbackNode, DIGIT_PROMPTS, EnqueueNode, FlowDef, GotoNode, HangUpNode, LanguageNode,
    MenuNode, Node, PlayNode, QuestionNode, QuickExit, RecordNode, SavedNode,
};
pub use error::{FlowError, KeyProblem};
pub use flow::Flow;
pub use input::{Input, RecordEnd};
pub use lang::Lang;
pub use validate::FlowProblem;
