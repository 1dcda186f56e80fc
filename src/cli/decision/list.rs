use crate::ops::Ctx;
use crate::Result;

use super::Out;

/// List proposals (pending first) and decisions, with the policy in force.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON: proposals, decisions and policy.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &Args, out: &mut Out) -> Result<()> {
    let loaded = ctx.load()?;
    let gov = &loaded.state.governance;
    if args.json {
        return out.json(&serde_json::json!({
            "proposals": gov.proposals.values().collect::<Vec<_>>(),
            "decisions": gov.decisions,
            "policy": gov.policy,
        }));
    }
    let mut rows = vec![vec!["PROPOSAL".into(), "STATUS".into(), "KIND".into(), "AGENT".into(), "BY".into(), "REASON".into()]];
    let mut proposals: Vec<_> = gov.proposals.values().collect();
    proposals.sort_by_key(|p| (p.status != crate::state::ProposalStatus::Pending, p.at.clone()));
    for p in proposals {
        let kind = match (p.kind, p.role) {
            (crate::state::ProposalKind::Hire, Some(role)) => format!("hire as {role}"),
            (crate::state::ProposalKind::Hire, None) => "hire".into(),
            (crate::state::ProposalKind::Fire, _) => "fire".into(),
        };
        rows.push(vec![p.id.clone(), format!("{:?}", p.status).to_lowercase(), kind, p.agent.clone(), p.by.clone(), p.reason.clone()]);
    }
    out.table(&rows)?;
    out.line("")?;
    let mut rows = vec![vec!["DECISION".into(), "AT".into(), "WHAT".into(), "REASON".into()]];
    for d in &gov.decisions {
        let what = match (&d.proposal, d.approve) {
            (Some(p), Some(true)) => format!("approved {p}"),
            (Some(p), _) => format!("rejected {p}"),
            (None, _) => d.policy.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "),
        };
        rows.push(vec![d.event[..10].to_string(), d.at.clone(), what, d.reason.clone()]);
    }
    out.table(&rows)?;
    let policy: Vec<String> = gov.policy.knobs().into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    out.line(format!("\npolicy: {}", policy.join(" ")))
}
