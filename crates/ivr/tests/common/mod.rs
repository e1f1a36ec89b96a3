//! A caller and a shell in one test, on a fake clock.
//!
//! `epoch` is read once; [`Call::advance`] moves `now` and fires every deadline the
//! flow asked for on the way, [`Call::wait`] jumps to the next one. Each step returns
//! the commands the flow emitted, with the event-log lines set aside in
//! [`Call::events`] so that expectations read as what the caller hears.

// Not every test binary that includes this module uses every helper.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_ivr::{
    Command, Disposition, EventKind, Flow, FlowDef, Input, Lang, Mark, PromptRef, RecordEnd,
};

/// The reference number the store gave the call.
pub(crate) const REFERENCE: &str = "4821";

/// The workspace root.
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The text of the shipped `config/flow.toml`.
pub(crate) fn shipped_text() -> String {
    std::fs::read_to_string(root().join("config/flow.toml")).expect("config/flow.toml is readable")
}

/// The shipped flow.
pub(crate) fn shipped() -> Arc<FlowDef> {
    Arc::new(FlowDef::from_toml(&shipped_text()).expect("config/flow.toml loads"))
}

pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(crate) fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// One call, driven by the test.
pub(crate) struct Call {
    pub(crate) flow: Flow,
    pub(crate) epoch: Instant,
    pub(crate) now: Instant,
    /// Every event-log line so far.
    pub(crate) events: Vec<(EventKind, String)>,
}

impl Call {
    /// A call of the shipped flow, not answered yet.
    pub(crate) fn new() -> Self {
        Self::with(shipped())
    }

    pub(crate) fn with(def: Arc<FlowDef>) -> Self {
        let epoch = Instant::now();
        Self {
            flow: Flow::new(def, epoch, REFERENCE.to_owned()),
            epoch,
            now: epoch,
            events: Vec::new(),
        }
    }

    /// Time since the call began.
    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.epoch
    }

    pub(crate) fn input(&mut self, input: Input) -> Vec<Command> {
        self.flow.handle(self.now, input);
        self.drain()
    }

    pub(crate) fn answer(&mut self) -> Vec<Command> {
        self.input(Input::Answered)
    }

    pub(crate) fn key(&mut self, key: char) -> Vec<Command> {
        self.input(Input::Digit(key))
    }

    /// The play list ended.
    pub(crate) fn finished(&mut self) -> Vec<Command> {
        self.input(Input::PromptFinished)
    }

    pub(crate) fn recorded(&mut self, reason: RecordEnd, duration_ms: u64) -> Vec<Command> {
        self.input(Input::RecordingFinished {
            reason,
            duration_ms,
        })
    }

    /// Moves the clock by `d`, firing each deadline at its time on the way.
    pub(crate) fn advance(&mut self, d: Duration) -> Vec<Command> {
        let until = self.now + d;
        let mut out = Vec::new();
        while let Some(at) = self.flow.poll_timeout().filter(|&at| at <= until) {
            self.now = self.now.max(at);
            self.flow.handle_timeout(self.now);
            out.extend(self.drain());
        }
        self.now = until;
        out
    }

    /// Jumps to the flow's next deadline and fires it.
    pub(crate) fn wait(&mut self) -> Vec<Command> {
        let at = self.flow.poll_timeout().expect("the flow has a deadline");
        assert!(at >= self.now, "deadline in the past");
        self.now = at;
        self.flow.handle_timeout(at);
        self.drain()
    }

    fn drain(&mut self) -> Vec<Command> {
        let mut out = Vec::new();
        while let Some(c) = self.flow.poll_command() {
            match c {
                Command::Event { kind, detail } => self.events.push((kind, detail)),
                c => out.push(c),
            }
        }
        out
    }

    /// Answers, takes `key` at the welcome and hears the recording notice to its end:
    /// the main menu plays.
    pub(crate) fn reach_main_menu(&mut self, key: char) {
        let lang = if key == '2' { Lang::Qu } else { Lang::Es };
        assert_eq!(self.answer(), [welcome()]);
        assert_eq!(
            self.key(key),
            [
                Command::StopPlayback,
                play(lang, &["recording-notice"], false)
            ]
        );
        assert_eq!(self.finished(), [play(lang, &["main-menu"], true)]);
    }

    /// Whether an event of this kind and detail was logged.
    pub(crate) fn logged(&self, kind: EventKind, detail: &str) -> bool {
        self.events.iter().any(|(k, d)| *k == kind && d == detail)
    }
}

/// The shipped flow's first play list: the bilingual greeting and the quick-exit notice.
pub(crate) fn welcome() -> Command {
    play(Lang::Es, &["welcome", "quick-exit-notice"], true)
}

/// `Play` of these prompts in `lang`.
pub(crate) fn play(lang: Lang, ids: &[&str], barge_in: bool) -> Command {
    Command::Play {
        prompts: ids
            .iter()
            .map(|id| PromptRef {
                lang,
                id: (*id).to_owned(),
            })
            .collect(),
        barge_in,
    }
}

/// The `Record` of the shipped `message` node.
pub(crate) fn record() -> Command {
    Command::Record {
        max_ms: 300_000,
        silence_ms: Some(10_000),
        finish_key: Some('#'),
    }
}

/// The `Outcome` of a call of the shipped flow with [`REFERENCE`], without marks.
pub(crate) fn outcome(disposition: Disposition, language: Option<Lang>, path: &[&str]) -> Command {
    marked(disposition, language, path, &[])
}

/// The `Outcome` of a call of the shipped flow with [`REFERENCE`] and these marks.
pub(crate) fn marked(
    disposition: Disposition,
    language: Option<Lang>,
    path: &[&str],
    marks: &[Mark],
) -> Command {
    Command::Outcome {
        disposition,
        language,
        path: path.iter().map(|s| (*s).to_owned()).collect(),
        reference: REFERENCE.to_owned(),
        marks: marks.to_vec(),
    }
}

/// What the shipped `saved` node plays for [`REFERENCE`].
pub(crate) fn saved(lang: Lang) -> Command {
    play(
        lang,
        &[
            "message-saved",
            "reference-number",
            "digit-4",
            "digit-8",
            "digit-2",
            "digit-1",
            "repeat-reference",
            "digit-4",
            "digit-8",
            "digit-2",
            "digit-1",
        ],
        false,
    )
}
