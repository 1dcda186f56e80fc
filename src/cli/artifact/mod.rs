//! `git clutch artifact …`: files produced for tasks.

mod add;
mod list;

use crate::ops::Ctx;
use crate::Result;

use super::Out;

/// Artifacts: files produced for a task, stored in the org log.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    Add(add::Args),
    List(list::Args),
}

pub fn run(ctx: &Ctx, actor: Option<&str>, cmd: &Command, out: &mut Out) -> Result<()> {
    match cmd {
        Command::Add(args) => add::run(ctx, &ctx.actor(actor)?, args, out),
        Command::List(args) => list::run(ctx, args, out),
    }
}
