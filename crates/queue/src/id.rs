//! The names the queue deals in: [`CallId`], [`OperatorName`], [`Language`].
//!
//! Plain strings with a type each, owned here; the binary converts from the store's call
//! row id, the operator's user name and the IVR's language code.

use std::borrow::Borrow;
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Wraps `s`.
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into())
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The text, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// A call in the queue: the store's call row id (`/api/calls/{id}`).
    CallId
);

string_id!(
    /// An operator: the console user name, which is also the SIP user of their softphone.
    OperatorName
);

string_id!(
    /// A language code as the IVR and the store write it (`es`, `qu`). Operators list the
    /// ones they speak; a caller is offered first to operators who speak theirs.
    Language
);
