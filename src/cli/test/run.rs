use crate::cli::cost_args::CostArgs;
use crate::ops::{test_run, Ctx};
use crate::{Error, Result};

use super::Out;

/// Run a test command and record TEST_RUN: the commit tested, pass or fail, exit code, duration
/// and the tail of the output. With --pr it runs in a temporary checkout of the PR's head;
/// otherwise in this work tree at HEAD. Exits with the command's status.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The task the run is for.
    #[arg(long)]
    pub task: Option<String>,
    /// Test the head of this PR.
    #[arg(long)]
    pub pr: Option<String>,
    #[command(flatten)]
    pub cost: CostArgs,
    /// Print {"id", "event", "passed", "exit_code"} as JSON.
    #[arg(long)]
    pub json: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

pub fn run(ctx: &Ctx, actor: &str, args: &Args, out: &mut Out) -> Result<()> {
    let run = test_run::Run { task: args.task.as_deref(), pr: args.pr.as_deref(), command: &args.command, cost: args.cost.cost()? };
    let tested = test_run::run(ctx, actor, &run)?;
    let event = tested.written.commit.to_string();
    if args.json {
        out.json(&serde_json::json!({
            "id": event,
            "event": event,
            "commit": tested.commit.to_string(),
            "passed": tested.passed,
            "exit_code": tested.exit_code,
        }))?;
    } else {
        out.line(&event)?;
    }
    if tested.passed {
        Ok(())
    } else {
        let code = tested.exit_code.unwrap_or(1).clamp(1, 255);
        Err(Error {
            kind: crate::error::Kind::Exit(code),
            message: format!("tests failed on {} (TEST_RUN recorded in {event})", &tested.commit.to_string()[..10]),
            hint: None,
        })
    }
}
