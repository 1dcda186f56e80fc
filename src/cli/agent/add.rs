use crate::event::Role;
use crate::ops::{org, Ctx};
use crate::Result;

use super::Out;

/// Add an agent to the roster (CEO only). Without --key a key pair is generated and its
/// private half kept under $CLUTCH_HOME/keys/ so `--as ID` can sign for it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The agent's id (lowercase letters, digits, '.', '_', '-').
    pub id: String,
    /// ceo, hr, senior or junior.
    #[arg(long)]
    pub role: Role,
    /// The agent's Ed25519 public key, `ssh-ed25519 AAAA…`.
    #[arg(long, value_name = "PUBKEY")]
    pub key: Option<String>,
    /// How the agent runs (an automated agent): in-process, subprocess, …
    #[arg(long)]
    pub runtime: Option<String>,
    /// A runtime setting, KEY=VALUE (repeatable).
    #[arg(long = "runtime-opt", value_name = "KEY=VALUE", requires = "runtime")]
    pub runtime_opts: Vec<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, actor: &str, args: &Args, out: &mut Out) -> Result<()> {
    let settings = org::parse_settings(&args.runtime_opts)?;
    if let Some(runtime) = &args.runtime {
        if crate::runtime::find(runtime).is_none() {
            return Err(crate::Error::user(format!("no runtime named '{runtime}' (known: {})", crate::runtime::NAMES.join(", "))));
        }
    }
    let added = org::agent_add(ctx, actor, &args.id, args.role, args.key.as_deref())?;
    if let Some(runtime) = &args.runtime {
        org::configure(ctx, actor, &args.id, runtime, &settings)?;
    }
    out.written(args.json, &args.id, &added.written, &args.id)
}
