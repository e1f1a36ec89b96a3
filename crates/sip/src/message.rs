//! Messages. (being written)
