use crate::event::Role;
use crate::ops::{governance, Ctx};
use crate::sign::{KeyStore, PublicKey};
use crate::Result;

use super::Out;

/// Propose to hire an agent (HR): HIRING_PROPOSAL. It joins only when the CEO approves it with
/// `git clutch decide PROPOSAL --approve`. Without --key, a key pair is made and kept here.
#[derive(Debug, clap::Args)]
pub struct HireArgs {
    pub id: String,
    #[arg(long)]
    pub role: Role,
    /// The agent's Ed25519 public key, `ssh-ed25519 AAAA…`.
    #[arg(long, value_name = "PUBKEY")]
    pub key: Option<String>,
    /// Why.
    #[arg(short, long)]
    pub message: String,
    /// Print {"id", "event"} as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn hire(ctx: &Ctx, actor: &str, args: &HireArgs, out: &mut Out) -> Result<()> {
    let (public, stored) = match &args.key {
        Some(key) => (PublicKey::parse_openssh(key)?.to_openssh(), None),
        None => {
            let key = KeyStore::generate()?;
            let stored = ctx.keys.store(&args.id, &key)?;
            (PublicKey::of(&key).to_openssh(), Some(stored))
        }
    };
    let written = match governance::propose_hire(ctx, actor, &args.id, args.role, &public, &args.message) {
        Ok(written) => written,
        Err(err) => {
            if let Some(stored) = &stored {
                let _ = ctx.keys.discard(stored); // the refusal is what the user needs to see; an unused key is harmless
            }
            return Err(err);
        }
    };
    let id = written.applied.created.clone().unwrap_or_default();
    out.written(args.json, &id, &written, &id)
}

/// Propose to fire an agent (HR): FIRING_PROPOSAL. It takes effect only with the CEO's
/// decision; after that, the agent's events are refused.
#[derive(Debug, clap::Args)]
pub struct FireArgs {
    pub id: String,
    /// Why.
    #[arg(short, long)]
    pub message: String,
    /// Print {"id", "event"} as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn fire(ctx: &Ctx, actor: &str, args: &FireArgs, out: &mut Out) -> Result<()> {
    let written = governance::propose_fire(ctx, actor, &args.id, &args.message)?;
    let id = written.applied.created.clone().unwrap_or_default();
    out.written(args.json, &id, &written, &id)
}
