//! `git clutch hr …`: scorecards, evaluations, hiring and firing proposals.

mod eval;
mod propose;
mod scorecard;

use crate::ops::Ctx;
use crate::Result;

use super::Out;

/// HR: scorecards and evaluations; proposals to hire or fire, which only the CEO's decision
/// puts into effect.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    Scorecard(scorecard::Args),
    Eval(eval::Args),
    ProposeHire(propose::HireArgs),
    ProposeFire(propose::FireArgs),
}

pub fn run(ctx: &Ctx, actor: Option<&str>, cmd: &Command, out: &mut Out) -> Result<()> {
    match cmd {
        Command::Scorecard(args) => scorecard::run(ctx, args, out),
        Command::Eval(args) => eval::run(ctx, &ctx.actor(actor)?, args, out),
        Command::ProposeHire(args) => propose::hire(ctx, &ctx.actor(actor)?, args, out),
        Command::ProposeFire(args) => propose::fire(ctx, &ctx.actor(actor)?, args, out),
    }
}
