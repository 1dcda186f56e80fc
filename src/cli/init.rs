use std::path::PathBuf;

use crate::ops::{org, Ctx};
use crate::Result;

use super::Out;

/// Found an org in this repository: write the genesis event ORG_CREATED, signed by the
/// founder, who becomes its CEO and this clone's default actor.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The org's name.
    #[arg(long)]
    pub name: String,
    /// The founder's agent id (lowercase letters, digits, '.', '_', '-').
    #[arg(long)]
    pub founder: String,
    /// An existing unencrypted Ed25519 private key (such as ~/.ssh/id_ed25519); without it a key
    /// pair is generated under $CLUTCH_HOME/keys/.
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &Args, out: &mut Out) -> Result<()> {
    let founded = org::init(ctx, &args.name, &args.founder, args.key.as_deref())?;
    if args.json {
        return out.json(&serde_json::json!({
            "id": founded.org.to_string(),
            "event": founded.org.to_string(),
            "founder": founded.founder,
            "key": founded.key_path,
        }));
    }
    out.line(founded.org.to_string())?;
    let place = if founded.key_in_vault { "key in the vault" } else { "key at" };
    eprintln!("founded org {} with {} as CEO; {place} {}", &founded.org.to_string()[..10], founded.founder, founded.key_path.display());
    Ok(())
}
