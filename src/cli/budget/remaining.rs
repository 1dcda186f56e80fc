use crate::ops::{governance, Ctx};
use crate::{Error, Result};

use super::{usd, Out};

/// What remains of one scope's budget; exits 1 when it is exhausted (runtimes call this
/// before a run).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// org, project:NAME, agent:ID or task:ID.
    #[arg(long)]
    pub scope: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &Args, out: &mut Out) -> Result<()> {
    let loaded = ctx.load()?;
    let scope = governance::resolve_scope(&loaded.state, &args.scope)?;
    let r = governance::remaining(&loaded.state, &scope);
    if args.json {
        out.json(&r)?;
    } else {
        let money = match r.remaining_usd_micros {
            Some(left) if left < 0 => format!("-{} (over)", usd(left.unsigned_abs())),
            Some(left) => usd(left as u64),
            None => "no dollar limit".into(),
        };
        let tokens = r.remaining_tokens.map(|t| format!("{t} tokens")).unwrap_or_else(|| "no token limit".into());
        out.line(format!("{scope}: {money}, {tokens} remaining"))?;
    }
    if r.exhausted {
        Err(Error::user(format!("the budget of {scope} is exhausted")))
    } else {
        Ok(())
    }
}
