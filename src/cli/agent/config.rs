use crate::ops::{org, Ctx};
use crate::Result;

use super::Out;

/// Define how an agent runs (CEO): AGENT_CONFIGURED with a runtime and its settings. Runtimes:
/// in-process, subprocess, claude, codex, docker, http (see docs/runtimes.md); settings
/// `secret:NAME` come from the vault, `env.VAR=…` become environment variables, and
/// sandbox/tool_allowlist/network are the agent's policy. A definition the runtime would refuse
/// on any machine is refused here.
#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
    #[arg(long)]
    pub runtime: String,
    /// A runtime setting, KEY=VALUE (repeatable).
    #[arg(long = "runtime-opt", value_name = "KEY=VALUE")]
    pub runtime_opts: Vec<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, actor: &str, args: &Args, out: &mut Out) -> Result<()> {
    let settings = org::parse_settings(&args.runtime_opts)?;
    let written = org::configure(ctx, actor, &args.id, &args.runtime, &settings)?;
    warn_missing_secrets(ctx, &settings);
    out.written(args.json, &args.id, &written, &format!("{} runs on {}", args.id, args.runtime))
}

/// A warning for each `secret:NAME` the unlocked vault does not hold yet.
pub fn warn_missing_secrets(ctx: &Ctx, settings: &std::collections::BTreeMap<String, String>) {
    use std::io::Write as _;
    for name in org::missing_secrets(ctx, settings) {
        let _ = writeln!(
            std::io::stderr(),
            "warning: the vault holds no secret {name} yet: runs will stop until it does (git clutch secret set {name})"
        );
    }
}
