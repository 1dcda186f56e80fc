use crate::ops::{report, Ctx};
use crate::Result;

use super::Out;

/// Per agent over a window: tasks done, PRs opened and merged, approval rate on first review,
/// review rounds per merged PR, test pass rate, cost per merged PR, median cycle time.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One agent (default: every agent).
    pub agent: Option<String>,
    /// 7d, 24h, 90m or all.
    #[arg(long, default_value = "7d")]
    pub window: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &Args, out: &mut Out) -> Result<()> {
    let loaded = ctx.load()?;
    let state = &loaded.state;
    let agents: Vec<String> = match &args.agent {
        Some(agent) => vec![agent.clone()],
        None => state.agents.keys().cloned().collect(),
    };
    let events = report::applied_events(ctx, state)?;
    let cards = report::scorecards(state, &events, &agents, &args.window, ctx.env.now())?;
    if args.json {
        return out.json(&cards);
    }
    let opt = |v: Option<f64>, scale: f64, digits: usize| v.map(|v| format!("{:.*}", digits, v * scale)).unwrap_or_else(|| "-".into());
    let mut rows = vec![vec![
        "AGENT".into(),
        "ROLE".into(),
        "DONE".into(),
        "PRS".into(),
        "MERGED".into(),
        "1ST-OK%".into(),
        "ROUNDS".into(),
        "TESTS-OK%".into(),
        "USD/MERGE".into(),
        "CYCLE(h)".into(),
    ]];
    for c in cards {
        rows.push(vec![
            c.agent.clone(),
            c.role.clone(),
            c.tasks_done.to_string(),
            c.prs_opened.to_string(),
            c.prs_merged.to_string(),
            opt(c.first_review_approval_rate, 100.0, 0),
            opt(c.review_rounds_per_merged_pr, 1.0, 1),
            opt(c.test_pass_rate, 100.0, 0),
            c.cost_per_merged_pr_usd_micros.map(|m| format!("{:.4}", m as f64 / 1e6)).unwrap_or_else(|| "-".into()),
            opt(c.median_cycle_time_hours, 1.0, 1),
        ]);
    }
    out.table(&rows)
}
