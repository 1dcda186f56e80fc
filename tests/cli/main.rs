//! The command-line test suite: every test drives the real `git-clutch` binary in a fresh
//! temporary git repository with a cleared environment, and checks what a user (or plain git)
//! would see: stdout, stderr, the exit code, and the commits under `refs/clutch/log`.
//!
//! One test binary, so cargo links once; one file per theme.

mod common;

mod a2a;
mod agents;
mod apply;
mod auth;
mod docker;
mod governance;
mod man;
mod runtime;
mod secrets;
mod sync;
mod test_audit;
mod test_concurrency;
mod test_errors;
mod test_forgery;
mod test_keys;
mod test_tour;
