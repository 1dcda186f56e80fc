use std::io::BufRead;
use std::path::PathBuf;

use crate::env::Env;
use crate::ops::hook::{self, Update};
use crate::store::{Scratch, Store};
use crate::{Error, Result};

/// What the installed hooks run (not for direct use).
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Server side: reads `<old> <new> <ref>` lines from git-receive-pack.
    PreReceive,
    /// Client side: `pre-push REMOTE URL`, reads `<local ref> <local oid> <remote ref> <remote oid>` lines.
    PrePush { remote: Option<String>, url: Option<String> },
}

pub fn run(env: &Env, cmd: &Command) -> Result<()> {
    let _ = env;
    let cwd = std::env::current_dir()?;
    let real = Store::discover(&cwd)?;
    let mut updates = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let parts: Vec<&str> = line.split_whitespace().collect();
        let update = match (cmd, parts.as_slice()) {
            (Command::PreReceive, [old, new, name]) => Update::parse(old, new, name),
            (Command::PrePush { .. }, [_local_ref, local, remote_ref, remote]) => Update::parse(remote, local, remote_ref),
            _ => None,
        };
        updates.push(update.ok_or_else(|| Error::usage(format!("cannot read hook input line '{line}'")))?);
    }
    let current_log = match cmd {
        Command::PreReceive => real.head()?,
        // The remote's current log is the old value of its own update, if any.
        Command::PrePush { .. } => updates.iter().find(|u| u.name == crate::store::LOG_REF).and_then(|u| u.old),
    };
    let pin = real.config_string("clutch.orgid");
    let quarantine = crate::env::quarantine();
    let (refusals, genesis) = match (cmd, quarantine) {
        (Command::PreReceive, Some(quarantine)) => {
            let scratch = Scratch(std::env::temp_dir().join(format!("clutch-hook-{}", std::process::id())));
            let objects = Store::open_quarantined(real.git_dir(), &PathBuf::from(quarantine), &scratch.0)?;
            hook::check_log(&objects, current_log, pin.as_deref(), &updates)?
        }
        _ => hook::check_log(&real, current_log, pin.as_deref(), &updates)?,
    };
    if refusals.is_empty() {
        // A server with no pin takes the org of the first log it accepts, and keeps it.
        if let (Command::PreReceive, None, Some(genesis)) = (cmd, &pin, &genesis) {
            real.config_set("clutch.orgId", genesis, false)?;
        }
        return Ok(());
    }
    for refusal in &refusals {
        eprintln!("clutch: refused: {refusal}");
    }
    Err(Error::user(format!("push refused by clutch ({} problem(s))", refusals.len())))
}
