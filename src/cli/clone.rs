use std::path::PathBuf;

use crate::env::Env;
use crate::ops::{sync, Ctx};
use crate::store::Store;
use crate::{Error, Result};

use super::Out;

/// Clone a repository and its org log: `git clone URL DIR`, refspecs for refs/clutch/*, a
/// verified sync, and the local actor picked from the keys this machine holds.
#[derive(Debug, clap::Args)]
pub struct Args {
    pub url: String,
    pub dir: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(env: Env, args: &Args, out: &mut Out) -> Result<()> {
    let dir = args.dir.clone().unwrap_or_else(|| {
        let name = args.url.trim_end_matches('/').rsplit(['/', ':']).next().unwrap_or("repo").trim_end_matches(".git");
        PathBuf::from(if name.is_empty() { "repo" } else { name })
    });
    let status = std::process::Command::new("git")
        .args(["clone", "--quiet", &args.url])
        .arg(&dir)
        .status()
        .map_err(|err| Error::internal(format!("cannot run git clone: {err}")))?;
    if !status.success() {
        return Err(Error::user(format!("git clone {} failed", args.url)));
    }
    let ctx = Ctx::new(Store::discover(&dir)?, env);
    sync::setup_remote(&ctx, "origin")?;
    let report = sync::sync(&ctx, "origin", None)?;
    let actor = sync::pick_actor(&ctx).map_err(|err| {
        err.context(format!("cloned into {}, but could not tell which agent this machine holds a key for", dir.display()))
    })?;
    if args.json {
        return out.json(&serde_json::json!({ "dir": dir, "sync": report, "actor": actor }));
    }
    out.line(dir.display().to_string())?;
    for rejection in &report.rejected_in {
        eprintln!("warning: event {} in the cloned log is refused: {}", rejection.commit, rejection.reason);
    }
    match actor {
        sync::Actor::Chosen(actor) => eprintln!("cloned the org log ({} events); acting as {actor}", report.events_in),
        sync::Actor::Several(agents) => eprintln!(
            "cloned the org log ({} events); this machine holds keys for {}\nhint: choose who acts with: git config clutch.actor AGENT (or pass --as AGENT)",
            report.events_in,
            agents.join(", ")
        ),
        sync::Actor::Nobody => eprintln!(
            "cloned the org log ({} events); no key for any of its agents on this machine\nhint: to join, make a key (ssh-keygen -t ed25519) and ask the CEO: git clutch agent add ID --role ROLE --key \"$(cat ~/.ssh/id_ed25519.pub)\"",
            report.events_in
        ),
    }
    Ok(())
}
