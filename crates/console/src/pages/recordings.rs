//! `/recordings`, `/recordings/{id}` (player, review), export, and `/audit`.
//!
//! To be filled: see the module documentation of `pages` for the pattern (and `me.rs`).

use crate::Route;

/// This area's pages.
pub(super) fn routes() -> Vec<Route> {
    Vec::new()
}

/// This area's texts: `(key, Spanish, English)` (see `i18n`).
pub(super) const I18N: &[(&str, &str, &str)] = &[];
