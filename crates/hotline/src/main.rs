//! `hotline`: the binary. Reads config, binds sockets, runs the SIP task and the console.

mod cli;
mod config;

fn main() {}
