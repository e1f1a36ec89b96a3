//! hotline-console: the HTTP console and API. (being written)
