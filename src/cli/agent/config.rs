use crate::ops::{org, Ctx};
use crate::Result;

use super::Out;

/// Define how an agent runs (CEO): AGENT_CONFIGURED with a runtime and its settings. Runtimes:
/// in-process (program=worker|reviewer, test_command=…), subprocess (command=…, timeout_s=…,
/// test_command=…).
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
    out.written(args.json, &args.id, &written, &format!("{} runs on {}", args.id, args.runtime))
}
