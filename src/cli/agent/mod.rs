//! `git clutch agent …`: the roster.

mod add;
mod config;
mod list;
mod show;

use crate::ops::Ctx;
use crate::Result;

use super::Out;

/// The roster: agents, their roles and keys.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    Add(add::Args),
    Config(config::Args),
    List(list::Args),
    Show(show::Args),
}

pub fn run(ctx: &Ctx, actor: Option<&str>, cmd: &Command, out: &mut Out) -> Result<()> {
    match cmd {
        Command::Add(args) => add::run(ctx, &ctx.actor(actor)?, args, out),
        Command::Config(args) => config::run(ctx, &ctx.actor(actor)?, args, out),
        Command::List(args) => list::run(ctx, args, out),
        Command::Show(args) => show::run(ctx, args, out),
    }
}
