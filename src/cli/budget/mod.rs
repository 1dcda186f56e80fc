//! `git clutch budget …`.

mod remaining;
mod set;
mod show;

use crate::ops::Ctx;
use crate::Result;

use super::Out;

/// Spending limits on the org, a project, an agent or a task.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    Set(set::Args),
    Show(show::Args),
    Remaining(remaining::Args),
}

pub fn run(ctx: &Ctx, actor: Option<&str>, cmd: &Command, out: &mut Out) -> Result<()> {
    match cmd {
        Command::Set(args) => set::run(ctx, &ctx.actor(actor)?, args, out),
        Command::Show(args) => show::run(ctx, args, out),
        Command::Remaining(args) => remaining::run(ctx, args, out),
    }
}

pub fn usd(micros: u64) -> String {
    format!("${:.2}", micros as f64 / 1e6)
}
