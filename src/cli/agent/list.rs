use crate::ops::Ctx;
use crate::sign::PublicKey;
use crate::Result;

use super::Out;

/// List the agents of the org.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &Args, out: &mut Out) -> Result<()> {
    let loaded = ctx.load()?;
    let agents: Vec<_> = loaded.state.agents.values().collect();
    if args.json {
        return out.json(&agents);
    }
    let mut rows = vec![vec!["AGENT".into(), "ROLE".into(), "STATUS".into(), "EVENTS".into(), "KEY".into()]];
    for agent in agents {
        let fingerprint = PublicKey::parse_openssh(&agent.public_key).map(|k| k.fingerprint()).unwrap_or_default();
        rows.push(vec![
            agent.id.clone(),
            agent.role.to_string(),
            format!("{:?}", agent.status).to_lowercase(),
            agent.events.to_string(),
            fingerprint,
        ]);
    }
    out.table(&rows)
}
