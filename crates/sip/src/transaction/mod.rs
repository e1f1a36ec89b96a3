//! The four RFC 3261 §17 transaction machines. (being written)
