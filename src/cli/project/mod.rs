//! `git clutch project …`.

mod list;
mod new;

use crate::ops::Ctx;
use crate::Result;

use super::Out;

/// Projects group tasks.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    New(new::Args),
    List(list::Args),
}

pub fn run(ctx: &Ctx, actor: Option<&str>, cmd: &Command, out: &mut Out) -> Result<()> {
    match cmd {
        Command::New(args) => new::run(ctx, &ctx.actor(actor)?, args, out),
        Command::List(args) => list::run(ctx, args, out),
    }
}
