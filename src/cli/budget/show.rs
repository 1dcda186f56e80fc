use crate::ops::{governance, Ctx};
use crate::Result;

use super::{usd, Out};

/// Every budget with its spend and what remains.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &Args, out: &mut Out) -> Result<()> {
    let loaded = ctx.load()?;
    let state = &loaded.state;
    let all: Vec<_> = state.governance.budgets.keys().map(|scope| governance::remaining(state, scope)).collect();
    if args.json {
        return out.json(&all);
    }
    let mut rows = vec![vec!["SCOPE".into(), "SPENT".into(), "LIMIT".into(), "TOKENS".into(), "TOKEN LIMIT".into(), "STATE".into()]];
    for r in all {
        rows.push(vec![
            r.scope.clone(),
            usd(r.spent_usd_micros),
            r.limit_usd_micros.map(usd).unwrap_or_else(|| "-".into()),
            r.spent_tokens.to_string(),
            r.limit_tokens.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
            if r.exhausted { "EXHAUSTED".into() } else { "ok".into() },
        ]);
    }
    out.table(&rows)
}
