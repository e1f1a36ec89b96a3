//! Benchmarks, comparator checks and fuzz harnesses for `hotline-sip`.
//!
//! This crate exists so that the comparator parsers (rsip, rsipstack and their
//! ~190 dependencies) never enter `hotline-sip`'s own build.
//!
//! # Layout
//! - [`fixtures`]: the messages every benchmark and check runs on.
//! - [`extract`]: the five fields each parser must produce ([`Fields`]), and a
//!   fuller owned view ([`Extract`]) for the correctness comparison.
//! - `comparators` (feature `comparators`, on by default): the same work done
//!   with rsip 0.4.0 and rsipstack 0.7.14.
//! - [`harness`]: the bodies of the `fuzz/` targets, shared with the regression
//!   tests so that `cargo test` replays the seeds and every crash found.

pub mod extract;
pub mod fixtures;
pub mod harness;

#[cfg(feature = "comparators")]
pub mod comparators;

pub use extract::{Extract, Fields, Start};
