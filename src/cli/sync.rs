use crate::ops::{sync, Ctx};
use crate::Result;

use super::Out;

/// Exchange the org log with a remote: fetch, verify every new event, join diverged logs with
/// a signed LOG_MERGED commit, push with an explicit expected old value, retry on a lost race.
/// Refuses a remote whose log has another genesis.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(default_value = "origin")]
    pub remote: String,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, actor: Option<&str>, args: &Args, out: &mut Out) -> Result<()> {
    let report = sync::sync(ctx, &args.remote, actor)?;
    if args.json {
        return out.json(&report);
    }
    let short = |h: &Option<String>| h.as_deref().map(|h| h[..10].to_string()).unwrap_or_else(|| "-".into());
    let mut lines = vec![format!(
        "{}: {} in, {} out{}; log at {}",
        report.remote,
        report.events_in,
        report.events_out,
        if report.merge.is_some() { ", logs joined" } else { "" },
        short(&report.local_after)
    )];
    if report.events_in == 0 && report.events_out == 0 && report.merge.is_none() {
        lines = vec![format!("{}: up to date at {}", report.remote, short(&report.local_after))];
    }
    for line in lines {
        out.line(line)?;
    }
    for rejection in &report.rejected_in {
        eprintln!("warning: after this sync, event {} is refused: {}", rejection.commit, rejection.reason);
    }
    Ok(())
}
