use crate::ops::report::{self, By};
use crate::ops::Ctx;
use crate::Result;

use super::Out;

/// Roll up the cost carried by every applied event; totals equal the sum over the events.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Group by agent, task, project, role, day or type.
    #[arg(long, default_value = "agent")]
    pub by: By,
    /// Only events at or after this date (2026-11-24 or RFC 3339).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &Args, out: &mut Out) -> Result<()> {
    let loaded = ctx.load()?;
    let report = report::cost(ctx, &loaded.state, args.by, args.since.as_deref())?;
    if args.json {
        return out.json(&report);
    }
    let mut rows =
        vec![vec![report.by.to_uppercase(), "EVENTS".into(), "USD".into(), "TOKENS IN".into(), "TOKENS OUT".into(), "WALL".into()]];
    for row in report.rows.iter().chain(std::iter::once(&report.total)) {
        rows.push(vec![
            row.key.clone(),
            row.events.to_string(),
            format!("{:.6}", row.spend.usd_micros as f64 / 1e6),
            row.spend.input_tokens.to_string(),
            row.spend.output_tokens.to_string(),
            format!("{:.1}s", row.spend.wall_ms as f64 / 1000.0),
        ]);
    }
    out.table(&rows)
}
