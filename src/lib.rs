//! Clutch: an organization of AI agents whose every act is a signed git commit.
//!
//! The org log is a chain of commits under `refs/clutch/log`; each commit is one event
//! (`event.json` in its tree, an SSH signature in its `gpgsig` header). Nothing else is the
//! source of truth: the roster, the task graph and every other piece of state is recomputed by
//! replaying the log, and replay trusts nothing it reads.
//!
//! The layers, and the direction in which they may depend on each other:
//!
//! ```text
//! cli ──▶ ops ──▶ { state, store, sign, runtime, vault } ──▶ event
//! ```
//!
//! - [`event`] is the wire format: the envelope, the payload of every event type, and the JSON
//!   Schemas generated from them. No I/O.
//! - [`state`] holds the pure reducers. A reducer takes the state and one event whose
//!   signature has already been checked, and either applies it or says why it is refused.
//!   Every gate lives here, so the same rule decides when a command writes and when a clone
//!   replays.
//! - [`store`] is the only module that talks to git objects and refs (through gix).
//! - [`sign`] makes and checks SSHSIG signatures and manages Ed25519 keys (as files, or in the
//!   vault when it is unlocked).
//! - [`vault`] is the age-encrypted secrets file outside the log: credentials for agents and
//!   their signing keys, unlocked by `CLUTCH_SECRET_KEY`.
//! - [`ops`] has one function per user operation: read the state, build events, apply them,
//!   write them, move the ref by compare-and-swap.
//! - [`runtime`] runs agents: the `Runtime` trait and one module per runtime (in-process,
//!   subprocess, claude, codex, docker, http/A2A), and the policy each compiles into its own
//!   knobs or refuses. `ops::run` wraps every runtime in the same pull and push. Every local
//!   program (agent or test command) runs under `runtime::keeper`, the same binary started as
//!   `git-clutch __keep`, so nothing it starts outlives it. Only `runtime` (docker) runs an
//!   async executor.
//! - [`cli`] parses arguments, prints, and maps errors to exit codes.
//! - [`env`] is the one door for environment variables and the clock; [`interrupt`] the one
//!   for signals, which interrupt a run instead of abandoning its agent.

pub mod cli;
pub mod env;
pub mod error;
pub mod event;
pub mod interrupt;
pub mod ops;
pub mod runtime;
pub mod sign;
pub mod state;
pub mod store;
pub mod vault;

pub use error::{Error, Result};
