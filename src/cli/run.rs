use crate::ops::{run, Ctx};
use crate::{Error, Result};

use super::Out;

/// One agent run: pull (worktree on clutch/AGENT/TASK, context, budget check), run (the agent's
/// runtime), push (signed commit, PR opened or updated, tests, RUN_STARTED/RUN_FINISHED).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The task to work (or, with --review, the PR to review).
    pub target: String,
    /// The agent (default: the task's assignee, else the acting agent).
    #[arg(long)]
    pub agent: Option<String>,
    /// Review this PR instead of working a task.
    #[arg(long)]
    pub review: bool,
    /// Print the run report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, actor: Option<&str>, args: &Args, out: &mut Out) -> Result<()> {
    let agent = match &args.agent {
        Some(agent) => agent.clone(),
        None if args.review => ctx.actor(actor)?,
        None => {
            let state = ctx.load()?.state;
            let task = state.find_task(&args.target).map_err(Error::user)?;
            match &task.assignee {
                Some(a) => a.clone(),
                None => ctx.actor(actor)?,
            }
        }
    };
    let report = if args.review { run::review(ctx, &agent, &args.target)? } else { run::work(ctx, &agent, &args.target)? };
    if args.json {
        out.json(&report)?;
    } else {
        out.line(&report.run)?;
        let status = match report.status {
            crate::event::RunStatus::Succeeded => "succeeded",
            crate::event::RunStatus::Failed => "failed",
            crate::event::RunStatus::TimedOut => "timed out",
        };
        use std::io::Write as _;
        let pr = report.pr.as_ref().map(|p| format!(" ({p})")).unwrap_or_default();
        let _ = writeln!(std::io::stderr(), "{} {status}: {}{pr}", report.agent, report.summary);
    }
    if report.status != crate::event::RunStatus::Succeeded {
        let message = format!("run {} did not succeed: {}", report.run, report.summary);
        return Err(match crate::interrupt::interrupted() {
            Some(signal) => Error::interrupted(signal, message),
            None => Error::user(message),
        });
    }
    Ok(())
}
