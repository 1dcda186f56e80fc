//! `git clutch test …`.

mod run;

use crate::ops::Ctx;
use crate::Result;

use super::Out;

/// Test runs, recorded against the commit they tested.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    Run(run::Args),
}

pub fn run(ctx: &Ctx, actor: Option<&str>, cmd: &Command, out: &mut Out) -> Result<()> {
    match cmd {
        Command::Run(args) => run::run(ctx, &ctx.actor(actor)?, args, out),
    }
}
