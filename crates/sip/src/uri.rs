//! SIP, SIPS and tel URIs. (being written)
