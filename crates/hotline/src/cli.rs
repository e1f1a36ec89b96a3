//! Command line (clap). (being written)
