use crate::ops::Ctx;
use crate::sign::{allowed_signers_line, PublicKey};
use crate::Result;

use super::Out;

/// Print git's allowed-signers file for the roster, so plain git can check the log:
/// `git clutch signers > signers; git -c gpg.ssh.allowedSignersFile=signers verify-commit C`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON: agent, principal and key for each.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &Args, out: &mut Out) -> Result<()> {
    let loaded = ctx.load()?;
    let mut entries = Vec::new();
    for agent in loaded.state.agents.values() {
        let key = PublicKey::parse_openssh(&agent.public_key)?;
        entries.push((agent.id.clone(), key, agent.fired_at.clone()));
    }
    if args.json {
        let json: Vec<_> = entries
            .iter()
            .map(|(id, key, fired)| serde_json::json!({ "agent": id, "principal": format!("{id}@clutch.invalid"), "key": key.to_openssh(), "valid_before": fired }))
            .collect();
        return out.json(&json);
    }
    for (id, key, fired) in &entries {
        out.line(allowed_signers_line(id, key, fired.as_deref()))?;
    }
    Ok(())
}
