use crate::ops::Ctx;
use crate::Result;

use super::Out;

/// All of the org's derived state: org, roster, projects, tasks, artifacts, spend, and any
/// refused events.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON (identical on every clone with the same head).
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &Args, out: &mut Out) -> Result<()> {
    let loaded = ctx.load()?;
    let state = &loaded.state;
    if args.json {
        let ready: Vec<&str> = state.tasks.values().filter(|t| state.is_ready(t)).map(|t| t.id.as_str()).collect();
        let mut value = serde_json::to_value(state).map_err(|err| crate::Error::internal(err.to_string()))?;
        value["head"] = serde_json::json!(loaded.head.map(|h| h.to_string()));
        value["ready"] = serde_json::json!(ready);
        return out.json(&value);
    }
    let org = state.org.as_ref().expect("a loaded log has an org");
    let count = |status: crate::event::TaskStatus| state.tasks.values().filter(|t| t.status == status).count();
    use crate::event::TaskStatus::*;
    let active = state.agents.values().filter(|a| a.status == crate::state::AgentStatus::Active).count();
    out.table(&[
        vec!["org".into(), format!("{} ({})", org.name, &org.id[..10])],
        vec!["head".into(), loaded.head.map(|h| h.to_string()).unwrap_or_default()],
        vec!["events".into(), format!("{} applied, {} rejected, clock {}", state.events, state.rejected.len(), state.clock)],
        vec!["agents".into(), format!("{} ({} active)", state.agents.len(), active)],
        vec!["projects".into(), state.projects.len().to_string()],
        vec![
            "tasks".into(),
            format!(
                "{} ({} open, {} assigned, {} in progress, {} done, {} cancelled; {} ready)",
                state.tasks.len(),
                count(Open),
                count(Assigned),
                count(InProgress),
                count(Done),
                count(Cancelled),
                state.tasks.values().filter(|t| state.is_ready(t)).count()
            ),
        ],
        vec!["artifacts".into(), state.artifacts.len().to_string()],
        vec![
            "spend".into(),
            format!("${:.6}, {} tokens", state.spend.usd_micros as f64 / 1e6, state.spend.input_tokens + state.spend.output_tokens),
        ],
    ])?;
    if !state.rejected.is_empty() {
        eprintln!("warning: {} event(s) in the log were refused; see: git clutch verify", state.rejected.len());
    }
    Ok(())
}
