//! `git clutch decision …`.

mod list;

use crate::ops::Ctx;
use crate::Result;

use super::Out;

/// The CEO's decisions and the proposals awaiting them.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    List(list::Args),
}

pub fn run(ctx: &Ctx, cmd: &Command, out: &mut Out) -> Result<()> {
    match cmd {
        Command::List(args) => list::run(ctx, args, out),
    }
}
