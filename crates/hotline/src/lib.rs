//! `hotline`: the binary's library half, so that integration tests can reach it.
//!
//! - [`config`]: the configuration file (`config/hotline.toml`), its typed values and defaults, and the
//!   command-line overrides.
//! - [`cli`]: the command line (clap): global override flags and the subcommands.
//! - [`serve`]: `hotline serve`: listeners, the SIP task, call tasks, the console, shutdown.

pub mod admin;
pub mod cli;
pub mod config;
pub mod serve;

pub mod prompts;

mod adoption;
mod call;
pub mod callback;
mod cluster;
mod layout;
mod media;
mod metrics;
mod operators;
mod recordings;
mod registrations;
mod rtp_ports;
mod shared_bindings;
mod signal;
mod sip_task;
mod storage;
