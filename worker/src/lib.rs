//! The `herald-worker` binary's library: its command line ([`cli`]), so that tests and the
//! generated reference (docs/configuration.md) read the same flags the binary parses.

pub mod cli;
