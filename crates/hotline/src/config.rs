//! Configuration file and overrides. (being written)
