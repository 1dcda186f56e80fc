use crate::ops::work::{self, Until};
use crate::ops::Ctx;
use crate::{Error, Result};

use super::Out;

/// Run the organization: assign ready tasks to idle worker agents, send PRs to reviewer agents,
/// merge what passes the gates; at most --parallel runs at once, never two on one task, never
/// a task before its dependencies are merged.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs at once.
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// Stop when idle (default) or after N runs.
    #[arg(long, default_value = "idle")]
    pub until: String,
    /// Print the report as JSON at the end (no progress lines).
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &Args, out: &mut Out) -> Result<()> {
    let until = match args.until.as_str() {
        "idle" => Until::Idle,
        n => Until::Runs(n.parse().map_err(|_| Error::usage(format!("--until '{n}' is not idle or a number")))?),
    };
    let quiet = args.json;
    // Progress lines must not panic when the terminal is gone (SIGHUP) or stdout is closed.
    let say = move |line: &str| {
        if !quiet {
            use std::io::Write as _;
            let _ = writeln!(std::io::stdout(), "{line}");
        }
    };
    let report = work::work(ctx, args.parallel, until, &say)?;
    if args.json {
        return out.json(&report);
    }
    out.line(format!(
        "{} runs, {} merges{}{}",
        report.runs.len(),
        report.merged.len(),
        if report.errors.is_empty() { String::new() } else { format!(", {} problems", report.errors.len()) },
        match report.waiting.len() {
            0 => String::new(),
            1 => ", 1 PR waiting".to_string(),
            n => format!(", {n} PRs waiting"),
        }
    ))
}
