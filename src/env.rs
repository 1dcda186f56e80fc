//! The one door for environment variables and the clock.
//!
//! Nothing else in clutch reads `std::env` or the system time, so tests pin every input:
//! `CLUTCH_HOME` (keys and machine-local data), `CLUTCH_ACTOR` (who acts), `CLUTCH_NOW`
//! (the time stamped on events, RFC 3339).

use std::path::PathBuf;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct Env {
    /// Machine-local clutch data: `keys/` lives here.
    pub home: PathBuf,
    /// `CLUTCH_ACTOR`, when set.
    pub actor: Option<String>,
    now: Option<i64>,
    /// What unlocks the vault: `CLUTCH_SECRET_KEY`, or the file `CLUTCH_SECRET_KEY_FILE` names.
    secret: Option<SecretSource>,
}

#[derive(Debug, Clone)]
enum SecretSource {
    Text(SecretText),
    File(PathBuf),
}

/// Text that must not be printed: its `Debug` says `[secret]`, and it is wiped when dropped.
#[derive(Clone)]
pub struct SecretText(zeroize::Zeroizing<String>);

impl SecretText {
    pub fn new(text: String) -> Self {
        SecretText(zeroize::Zeroizing::new(text))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[secret]")
    }
}

impl Env {
    #[allow(clippy::disallowed_methods, reason = "this is the one door")]
    pub fn from_process() -> Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let home = match var("CLUTCH_HOME") {
            Some(home) => PathBuf::from(home),
            None => match (var("XDG_CONFIG_HOME"), var("HOME")) {
                (Some(config), _) => PathBuf::from(config).join("clutch"),
                (None, Some(home)) => PathBuf::from(home).join(".config").join("clutch"),
                (None, None) => {
                    return Err(Error::user("cannot find a place for clutch's keys: neither CLUTCH_HOME nor HOME is set")
                        .hint("set CLUTCH_HOME to a directory"))
                }
            },
        };
        let now = match var("CLUTCH_NOW") {
            Some(text) => Some(parse_time(&text).map_err(|err| err.context("CLUTCH_NOW"))?),
            None => None,
        };
        let secret = match (var("CLUTCH_SECRET_KEY"), var("CLUTCH_SECRET_KEY_FILE")) {
            (Some(text), _) => Some(SecretSource::Text(SecretText::new(text))),
            (None, Some(file)) => Some(SecretSource::File(PathBuf::from(file))),
            (None, None) => None,
        };
        // Read once, then gone from the process: no child clutch starts — git and its hooks,
        // a test command, a browser, an agent — inherits the vault's key. (Called at start-up,
        // before any thread exists.)
        std::env::remove_var("CLUTCH_SECRET_KEY");
        std::env::remove_var("CLUTCH_SECRET_KEY_FILE");
        Ok(Env { home, actor: var("CLUTCH_ACTOR"), now, secret })
    }

    /// The vault's key, when one is given; an unreadable key file is an error.
    pub fn secret_key(&self) -> Result<Option<SecretText>> {
        match &self.secret {
            None => Ok(None),
            Some(SecretSource::Text(text)) => Ok(Some(text.clone())),
            Some(SecretSource::File(path)) => std::fs::read_to_string(path)
                .map(|text| Some(SecretText::new(text)))
                .map_err(|err| Error::user(format!("cannot read CLUTCH_SECRET_KEY_FILE {}: {err}", path.display()))),
        }
    }

    /// The same environment with the vault unlocked by `key`.
    pub fn with_secret_key(mut self, key: SecretText) -> Self {
        self.secret = Some(SecretSource::Text(key));
        self
    }

    /// An environment for tests and benches: everything given, nothing read.
    pub fn pinned(home: PathBuf, actor: Option<String>, now: i64) -> Self {
        Env { home, actor, now: Some(now), secret: None }
    }

    /// Seconds since the epoch, UTC.
    pub fn now(&self) -> i64 {
        self.now.unwrap_or_else(|| OffsetDateTime::now_utc().unix_timestamp())
    }

    pub fn keys_dir(&self) -> PathBuf {
        self.home.join("keys")
    }
}

/// Wall-clock milliseconds, for measuring durations only (never stamped on an event).
pub fn monotonic() -> std::time::Instant {
    std::time::Instant::now()
}

/// `2026-11-24T08:00:00Z` from seconds since the epoch.
pub fn format_time(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds).ok().and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_else(|| seconds.to_string())
}

/// Seconds since the epoch from RFC 3339.
pub fn parse_time(text: &str) -> Result<i64> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|err| Error::user(format!("'{text}' is not an RFC 3339 time ({err})")).hint("write it like 2026-11-24T08:00:00Z"))
}

/// Where git's receive-pack keeps a push's objects until its hooks accept them.
#[allow(clippy::disallowed_methods, reason = "this is the one door")]
pub fn quarantine() -> Option<String> {
    std::env::var("GIT_QUARANTINE_PATH").ok().filter(|v| !v.is_empty())
}

/// A program on PATH, as the shell would find it.
#[allow(clippy::disallowed_methods, reason = "this is the one door")]
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

/// Every file named `name` in the directories of PATH, in PATH's order.
#[allow(clippy::disallowed_methods, reason = "this is the one door")]
pub fn on_path(name: &str) -> Vec<PathBuf> {
    let Some(path) = std::env::var_os("PATH") else { return Vec::new() };
    std::env::split_paths(&path).map(|dir| dir.join(name)).filter(|candidate| candidate.is_file()).collect()
}

/// Variables no agent process ever gets.
pub const NEVER_PASSED: &[&str] = &["CLUTCH_SECRET_KEY", "CLUTCH_SECRET_KEY_FILE", "CLUTCH_HOME"];

/// The variables an agent process gets from clutch's environment: the basics every program
/// needs, plus `extra` (a runtime's own credentials). Everything else — CLUTCH_HOME, other
/// tokens — stays out of the agent's reach.
#[allow(clippy::disallowed_methods, reason = "this is the one door")]
pub fn for_agent(extra: &[&str]) -> Vec<(String, std::ffi::OsString)> {
    const BASICS: &[&str] = &["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TMPDIR", "TZ"];
    BASICS
        .iter()
        .chain(extra.iter())
        // The vault's key and clutch's home never reach an agent, whatever a definition's
        // `pass_env` asks for.
        .filter(|name| !NEVER_PASSED.contains(name))
        .filter_map(|name| std::env::var_os(name).map(|value| (name.to_string(), value)))
        .collect()
}

/// `DOCKER_HOST`, when set: where the docker runtime finds the engine.
#[allow(clippy::disallowed_methods, reason = "this is the one door")]
pub fn docker_host() -> Option<String> {
    std::env::var("DOCKER_HOST").ok().filter(|v| !v.is_empty())
}
