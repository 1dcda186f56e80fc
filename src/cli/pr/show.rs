use crate::ops::{pr, Ctx};
use crate::state::{evaluate_gate, PrStatus};
use crate::{Error, Result};

use super::Out;

/// Show a PR: its heads, reviews, test runs, and what is missing to merge it.
#[derive(Debug, clap::Args)]
pub struct Args {
    pub pr: String,
    /// Evaluate the gate for this merger (default: the acting agent).
    #[arg(long, value_name = "AGENT")]
    pub merger: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, actor: Option<&str>, args: &Args, out: &mut Out) -> Result<()> {
    let loaded = ctx.load()?;
    let state = &loaded.state;
    let pr = pr::find_pr(state, &args.pr)?;
    let merger = args.merger.clone().or_else(|| ctx.actor(actor).ok()).unwrap_or_default();
    let gate = evaluate_gate(state, pr, &merger);
    let tests: Vec<_> = state.governance.test_runs.iter().filter(|t| pr.heads.contains(&t.commit)).collect();
    if args.json {
        let mut value = serde_json::to_value(pr).map_err(|err| Error::internal(err.to_string()))?;
        value["gate"] = serde_json::to_value(&gate).map_err(|err| Error::internal(err.to_string()))?;
        value["gate_for"] = serde_json::json!(merger);
        value["test_runs"] = serde_json::to_value(&tests).map_err(|err| Error::internal(err.to_string()))?;
        return out.json(&value);
    }
    let mut rows = vec![
        vec!["pr".into(), pr.id.clone()],
        vec!["title".into(), pr.title.clone()],
        vec!["task".into(), pr.task.clone()],
        vec!["author".into(), pr.author.clone()],
        vec!["branch".into(), format!("{} → {}", pr.head_branch, pr.base)],
        vec!["head".into(), format!("{} ({} head(s) so far)", pr.head, pr.heads.len())],
        vec!["status".into(), format!("{:?}", pr.status).to_lowercase()],
    ];
    for review in &pr.reviews {
        let stale = if review.head != pr.head { " [older head]" } else { "" };
        rows.push(vec![
            "review".into(),
            format!("{} ({}) {} on {}{stale}: {}", review.by, review.role, verdict_name(review.verdict), &review.head[..10], review.body),
        ]);
    }
    for test in tests {
        rows.push(vec!["test".into(), format!("{} on {} by {}", if test.passed { "pass" } else { "FAIL" }, &test.commit[..10], test.by)]);
    }
    if pr.status == PrStatus::Merged {
        rows.push(vec![
            "merged".into(),
            format!("by {} as {}", pr.merged_by.clone().unwrap_or_default(), pr.result.clone().unwrap_or_default()),
        ]);
    } else if gate.unmet.is_empty() {
        rows.push(vec!["gate".into(), format!("holds for {merger}: approvals {}", gate.approvals.join(", "))]);
    } else {
        for unmet in &gate.unmet {
            rows.push(vec!["missing".into(), unmet.clone()]);
        }
    }
    out.table(&rows)
}

fn verdict_name(verdict: crate::event::Verdict) -> &'static str {
    match verdict {
        crate::event::Verdict::Approve => "approved",
        crate::event::Verdict::RequestChanges => "requested changes",
        crate::event::Verdict::Comment => "commented",
    }
}
