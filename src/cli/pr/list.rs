use crate::ops::Ctx;
use crate::state::{evaluate_gate, PrStatus};
use crate::Result;

use super::Out;

/// List PRs with their status and what their gate is waiting for.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only open PRs.
    #[arg(long)]
    pub open: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &Args, out: &mut Out) -> Result<()> {
    let loaded = ctx.load()?;
    let state = &loaded.state;
    let prs: Vec<_> = state.governance.prs.values().filter(|p| !args.open || p.status == PrStatus::Open).collect();
    if args.json {
        return out.json(&prs);
    }
    let mut rows = vec![vec!["PR".into(), "STATUS".into(), "TASK".into(), "AUTHOR".into(), "BRANCH".into(), "HEAD".into(), "TITLE".into()]];
    for pr in prs {
        let status = match pr.status {
            PrStatus::Merged => "merged".to_string(),
            PrStatus::Open => {
                // Which conditions are open regardless of who merges: evaluate for a senior stand-in.
                // "approved" when the gate holds for some active lead other than the author
                // (a merge can still meet a conflict).
                let holds = state
                    .agents
                    .values()
                    .filter(|a| a.id != pr.author && a.status == crate::state::AgentStatus::Active)
                    .filter(|a| matches!(a.role, crate::event::Role::Senior | crate::event::Role::Ceo))
                    .any(|a| evaluate_gate(state, pr, &a.id).unmet.is_empty());
                if holds {
                    "approved".into()
                } else {
                    "open".into()
                }
            }
        };
        rows.push(vec![
            pr.id.clone(),
            status,
            pr.task.clone(),
            pr.author.clone(),
            format!("{} → {}", pr.head_branch, pr.base),
            pr.head[..10].to_string(),
            pr.title.clone(),
        ]);
    }
    out.table(&rows)
}
