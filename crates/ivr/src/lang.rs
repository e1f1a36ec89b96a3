//! The languages the hotline speaks.

use std::fmt;

use serde::Deserialize;

/// A language of the prompts: one directory of WAV files each
/// (`<prompts_dir>/<lang>/<id>.wav`), the codes of `prompts/prompts.toml`.
///
/// In `config/flow.toml` and in the store a language is its code, `"es"` or `"qu"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub enum Lang {
    /// Spanish (`es`): Peruvian / Latin-American Spanish.
    #[serde(rename = "es")]
    Es,
    /// Southern Quechua (`qu`), Chanka / Collao as spoken in Peru.
    #[serde(rename = "qu")]
    Qu,
}

impl Lang {
    /// Every language, in code order.
    pub const ALL: [Self; 2] = [Self::Es, Self::Qu];

    /// The language code: the prompt directory name and the value stored with the call.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es => "es",
            Self::Qu => "qu",
        }
    }

    /// The language with this code, if we speak it.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == code)
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
