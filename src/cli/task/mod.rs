//! `git clutch task …`: the task graph.

mod assign;
mod claim;
mod edit;
mod list;
mod new;
mod show;
mod status;

use crate::event::TaskStatus;
use crate::ops::Ctx;
use crate::Result;

use super::Out;

/// Tasks: create, assign, claim, work and finish them.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    New(new::Args),
    Edit(edit::Args),
    Assign(assign::Args),
    Claim(claim::Args),
    /// Start a task assigned to you (its dependencies must be done).
    Start(status::Args),
    /// Mark a task done (its assignee, or a Senior).
    Done(status::Args),
    /// Cancel a task (Senior or CEO).
    Cancel(status::Args),
    List(list::Args),
    Show(show::Args),
}

pub fn run(ctx: &Ctx, actor: Option<&str>, cmd: &Command, out: &mut Out) -> Result<()> {
    match cmd {
        Command::New(args) => new::run(ctx, &ctx.actor(actor)?, args, out),
        Command::Edit(args) => edit::run(ctx, &ctx.actor(actor)?, args, out),
        Command::Assign(args) => assign::run(ctx, &ctx.actor(actor)?, args, out),
        Command::Claim(args) => claim::run(ctx, &ctx.actor(actor)?, args, out),
        Command::Start(args) => status::run(ctx, &ctx.actor(actor)?, TaskStatus::InProgress, args, out),
        Command::Done(args) => status::run(ctx, &ctx.actor(actor)?, TaskStatus::Done, args, out),
        Command::Cancel(args) => status::run(ctx, &ctx.actor(actor)?, TaskStatus::Cancelled, args, out),
        Command::List(args) => list::run(ctx, args, out),
        Command::Show(args) => show::run(ctx, args, out),
    }
}
