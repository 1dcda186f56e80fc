use std::path::PathBuf;

use crate::env::Env;
use crate::ops::{demo, governance, report, verify};
use crate::{Error, Result};

use super::Out;

/// A whole organization at work, offline, with nothing to configure: a new repository, an org
/// of built-in agents (CEO, HR, a Senior reviewer, two Junior workers), a project of dependent
/// tasks, and `work` until it is done — one round of changes per PR, tests, signed merges — then
/// the state, the budget, the cost and the scorecards, and a verification of the whole log.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to make the demo repository (default: a new temporary directory, kept).
    pub dir: Option<PathBuf>,
    /// Runs at once.
    #[arg(long, default_value_t = 2)]
    pub parallel: usize,
}

pub fn run(env: &Env, args: &Args, out: &mut Out) -> Result<()> {
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("clutch-demo-{}", std::process::id())),
    };
    // The demo's keys stay with the demo, not in the user's CLUTCH_HOME.
    let home = dir.join(".git").join("clutch-demo-home");
    let ctx = demo::setup(&dir, &home, env.now())?;
    out.line(format!("demo org in {}", dir.display()))?;
    out.flush()?;
    let say = |line: &str| println!("  {line}");
    let started = crate::env::monotonic();
    let report = demo::run(&ctx, args.parallel, &say)?;
    let loaded = ctx.load()?;
    let state = &loaded.state;
    out.line(format!(
        "done in {:.1}s: {} runs, {} merges, {}/{} tasks done",
        started.elapsed().as_secs_f64(),
        report.runs.len(),
        report.merged.len(),
        state.tasks.values().filter(|t| t.status == crate::event::TaskStatus::Done).count(),
        state.tasks.len()
    ))?;
    out.line("")?;
    out.line("budget:")?;
    for scope in state.governance.budgets.keys() {
        let r = governance::remaining(state, scope);
        out.line(format!(
            "  {scope}: ${:.2} of ${:.2} spent, {} of {} tokens",
            r.spent_usd_micros as f64 / 1e6,
            r.limit_usd_micros.unwrap_or(0) as f64 / 1e6,
            r.spent_tokens,
            r.limit_tokens.unwrap_or(0)
        ))?;
    }
    let cost = report::cost(&ctx, state, report::By::Agent, None)?;
    out.line("cost by agent (built-in agents use no model: wall time only):")?;
    for row in cost.rows.iter().chain(std::iter::once(&cost.total)) {
        out.line(format!(
            "  {:<6} {:>4} events  ${:.6}  {:.2}s",
            row.key,
            row.events,
            row.spend.usd_micros as f64 / 1e6,
            row.spend.wall_ms as f64 / 1000.0
        ))?;
    }
    let events = report::applied_events(&ctx, state)?;
    let agents: Vec<String> = ["jo", "jill", "sam"].iter().map(|s| s.to_string()).collect();
    out.line("scorecards (window: all):")?;
    for card in report::scorecards(state, &events, &agents, "all", ctx.env.now())? {
        out.line(format!(
            "  {:<5} {:<7} tasks done {}, PRs {} opened / {} merged, first-review approval {}, rounds per merge {}, tests passing {}",
            card.agent,
            card.role,
            card.tasks_done,
            card.prs_opened,
            card.prs_merged,
            card.first_review_approval_rate.map(|r| format!("{:.0}%", r * 100.0)).unwrap_or_else(|| "-".into()),
            card.review_rounds_per_merged_pr.map(|r| format!("{r:.1}")).unwrap_or_else(|| "-".into()),
            card.test_pass_rate.map(|r| format!("{:.0}%", r * 100.0)).unwrap_or_else(|| "-".into()),
        ))?;
    }
    let verified = verify::verify(&ctx)?;
    out.line(format!("verify: {} events, {} valid, {} rejected", verified.events, verified.valid, verified.rejected.len()))?;
    out.line(format!(
        "keys and the demo's secret are in the vault {} (identity {})",
        crate::vault::Vault::path_in(&ctx.env).display(),
        demo::vault_key_path(&home).display()
    ))?;
    out.line(format!("look around: cd {} && CLUTCH_HOME={} git clutch log", dir.display(), home.display()))?;
    out.line(format!(
        "  and: CLUTCH_HOME={} CLUTCH_SECRET_KEY_FILE={} git clutch secret list",
        home.display(),
        demo::vault_key_path(&home).display()
    ))?;
    if !verified.rejected.is_empty() || !report.errors.is_empty() {
        return Err(Error::internal(format!("the demo did not run clean: {}", report.errors.join("; "))));
    }
    Ok(())
}
