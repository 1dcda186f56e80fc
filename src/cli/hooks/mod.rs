//! `git clutch hooks …` (install) and `git clutch hook …` (what the installed hooks run).

mod install;
pub mod run;

use crate::ops::Ctx;
use crate::Result;

use super::Out;

/// Install clutch's git hooks.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    Install(install::Args),
}

pub fn run(ctx: Option<&Ctx>, cmd: &Command, out: &mut Out) -> Result<()> {
    match cmd {
        Command::Install(args) => install::run(ctx, args, out),
    }
}
