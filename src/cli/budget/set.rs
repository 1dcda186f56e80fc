use crate::ops::{governance, Ctx};
use crate::{Error, Result};

use super::Out;

/// Set a budget (CEO only): BUDGET_UPDATED. Runs that the remaining budget cannot cover are
/// refused before they start.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// org, project:NAME, agent:ID or task:ID.
    #[arg(long)]
    pub scope: String,
    /// Limit in US dollars.
    #[arg(long, value_name = "USD")]
    pub usd: Option<f64>,
    /// Limit in tokens (input plus output).
    #[arg(long, value_name = "N")]
    pub tokens: Option<u64>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, actor: &str, args: &Args, out: &mut Out) -> Result<()> {
    if args.usd.is_none() && args.tokens.is_none() {
        return Err(Error::usage("give --usd and/or --tokens"));
    }
    let usd_micros = match args.usd {
        Some(usd) if !usd.is_finite() || usd < 0.0 => return Err(Error::usage(format!("--usd {usd} is not a non-negative amount"))),
        Some(usd) => Some((usd * 1e6).round() as u64),
        None => None,
    };
    let written = governance::set_budget(ctx, actor, &args.scope, usd_micros, args.tokens)?;
    let id = written.commit.to_string();
    out.written(args.json, &id, &written, &id)
}
