use crate::ops::{governance, report, Ctx};
use crate::Result;

use super::Out;

/// Record an evaluation (HR): EVAL_REPORTED with the agent's scorecard over the window.
#[derive(Debug, clap::Args)]
pub struct Args {
    pub agent: String,
    /// 7d, 24h, 90m or all.
    #[arg(long, default_value = "7d")]
    pub window: String,
    /// A summary to keep with the figures.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, actor: &str, args: &Args, out: &mut Out) -> Result<()> {
    let loaded = ctx.load()?;
    let events = report::applied_events(ctx, &loaded.state)?;
    let card = report::scorecards(&loaded.state, &events, std::slice::from_ref(&args.agent), &args.window, ctx.env.now())?.remove(0);
    let written = governance::eval(ctx, actor, &args.agent, &args.window, card.figures(), args.message.clone())?;
    let id = written.commit.to_string();
    out.written(args.json, &id, &written, &id)
}
