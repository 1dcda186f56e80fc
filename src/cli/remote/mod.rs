//! `git clutch remote …`.

mod setup;

use crate::ops::Ctx;
use crate::Result;

use super::Out;

/// Remotes that carry the org log.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    Setup(setup::Args),
}

pub fn run(ctx: &Ctx, cmd: &Command, out: &mut Out) -> Result<()> {
    match cmd {
        Command::Setup(args) => setup::run(ctx, args, out),
    }
}
