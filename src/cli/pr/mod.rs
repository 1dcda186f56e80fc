//! `git clutch pr …`: pull requests on branches, reviews and the merge gate.

mod list;
mod merge;
mod open;
mod review;
mod show;
mod update;

use crate::ops::Ctx;
use crate::Result;

use super::Out;

/// Pull requests: a branch proposed for a base branch, reviewed, and merged through the gate.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    Open(open::Args),
    Update(update::Args),
    Review(review::Args),
    Merge(merge::Args),
    List(list::Args),
    Show(show::Args),
}

pub fn run(ctx: &Ctx, actor: Option<&str>, cmd: &Command, out: &mut Out) -> Result<()> {
    match cmd {
        Command::Open(args) => open::run(ctx, &ctx.actor(actor)?, args, out),
        Command::Update(args) => update::run(ctx, &ctx.actor(actor)?, args, out),
        Command::Review(args) => review::run(ctx, &ctx.actor(actor)?, args, out),
        Command::Merge(args) => merge::run(ctx, &ctx.actor(actor)?, args, out),
        Command::List(args) => list::run(ctx, args, out),
        Command::Show(args) => show::run(ctx, actor, args, out),
    }
}
