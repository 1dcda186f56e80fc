//! Keys and signatures.
//!
//! Every event commit is signed the way `git commit -S` signs with `gpg.format=ssh`: an SSHSIG
//! over the commit bytes without the `gpgsig` header, namespace `git`, Ed25519. So
//! `git verify-commit` accepts the log with nothing but an allowed-signers file, which
//! [`allowed_signers`] prints from the roster.

pub mod keys;
pub mod sshsig;

pub use keys::{KeyPlace, KeyStore, PublicKey, StoredKey};
pub use sshsig::{sign, Signed};

/// One line of git's `gpg.ssh.allowedSignersFile`: who may sign as whom. A fired agent's key
/// is valid only for commits made before the firing (`valid-before`, checked by ssh-keygen
/// against the commit time).
pub fn allowed_signers_line(agent: &str, key: &PublicKey, valid_before: Option<&str>) -> String {
    let until =
        valid_before.map(|at| format!(",valid-before=\"{}Z\"", at.trim_end_matches('Z').replace(['-', ':', 'T'], ""))).unwrap_or_default();
    format!("{agent}@clutch.invalid namespaces=\"git\"{until} {}", key.to_openssh())
}
