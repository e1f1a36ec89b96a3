//! Typed header views. (being written)
