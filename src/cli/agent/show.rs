use crate::ops::Ctx;
use crate::sign::PublicKey;
use crate::{Error, Result};

use super::Out;

/// Show one agent: role, key, status, work and spend.
#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &Args, out: &mut Out) -> Result<()> {
    let loaded = ctx.load()?;
    let state = &loaded.state;
    let agent = state
        .agents
        .get(&args.id)
        .ok_or_else(|| Error::user(format!("no agent '{}'", args.id)).hint("see the roster with: git clutch agent list"))?;
    let assigned: Vec<&str> =
        state.tasks.values().filter(|t| t.assignee.as_deref() == Some(agent.id.as_str())).map(|t| t.id.as_str()).collect();
    if args.json {
        let mut value = serde_json::to_value(agent).map_err(|err| Error::internal(err.to_string()))?;
        value["tasks"] = serde_json::json!(assigned);
        return out.json(&value);
    }
    let fingerprint = PublicKey::parse_openssh(&agent.public_key).map(|k| k.fingerprint()).unwrap_or_default();
    out.table(&[
        vec!["agent".into(), agent.id.clone()],
        vec!["role".into(), agent.role.to_string()],
        vec!["status".into(), format!("{:?}", agent.status).to_lowercase()],
        vec!["key".into(), format!("{} ({fingerprint})", agent.public_key)],
        vec!["joined".into(), format!("{} in {}", agent.joined_at, &agent.joined_by[..10])],
        vec!["events".into(), agent.events.to_string()],
        vec!["tasks".into(), assigned.join(" ")],
        vec![
            "spend".into(),
            format!(
                "${:.6}, {} tokens in, {} out",
                agent.spend.usd_micros as f64 / 1e6,
                agent.spend.input_tokens,
                agent.spend.output_tokens
            ),
        ],
    ])
}
