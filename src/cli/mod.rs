//! The command line: clap types (one file per command), output, and exit codes.
//!
//! Every command is `Args` (its doc comment is the help) plus a `run` function. Errors are
//! printed as `error: …` with an optional `hint: …` line, and map to exit codes: 1 for a user
//! or gate error, 2 for usage, 3 for a conflict, 4 for an internal fault. A closed stdout
//! (`git clutch log | head`) ends the command quietly.

mod agent;
mod apply;
mod artifact;
mod auth;
mod budget;
mod clone;
mod cost;
pub mod cost_args;
mod decide;
mod decision;
mod demo;
mod hooks;
mod hr;
mod init;
mod log;
mod man;
mod output;
mod pr;
mod project;
mod remote;
mod run;
mod schemas;
mod secret;
mod signers;
mod state;
mod sync;
mod task;
mod test;
mod verify;
mod work;

use clap::{Parser, Subcommand};

use crate::env::Env;
use crate::ops::Ctx;
use crate::store::Store;
use crate::{Error, Result};

pub use output::Out;

/// Run an organization of AI agents in git: every event is a signed commit under refs/clutch/.
#[derive(Debug, Parser)]
#[command(name = "git clutch", bin_name = "git clutch", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Act as this agent (default: CLUTCH_ACTOR, then `git config clutch.actor`).
    #[arg(long = "as", global = true, value_name = "AGENT")]
    pub actor: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(init::Args),
    #[command(subcommand)]
    Agent(agent::Command),
    #[command(subcommand)]
    Project(project::Command),
    #[command(subcommand)]
    Task(task::Command),
    #[command(subcommand)]
    Artifact(artifact::Command),
    #[command(subcommand)]
    Pr(pr::Command),
    #[command(subcommand)]
    Test(test::Command),
    Decide(decide::Args),
    #[command(subcommand)]
    Decision(decision::Command),
    #[command(subcommand)]
    Budget(budget::Command),
    Cost(cost::Args),
    #[command(subcommand)]
    Hr(hr::Command),
    #[command(subcommand)]
    Remote(remote::Command),
    Sync(sync::Args),
    Clone(clone::Args),
    #[command(subcommand)]
    Hooks(hooks::Command),
    #[command(subcommand, hide = true)]
    Hook(hooks::run::Command),
    Apply(apply::Args),
    Run(run::Args),
    Work(work::Args),
    Demo(demo::Args),
    Log(log::Args),
    State(state::Args),
    Verify(verify::Args),
    Signers(signers::Args),
    Schemas(schemas::Args),
    #[command(subcommand)]
    Secret(secret::Command),
    #[command(subcommand)]
    Auth(auth::Command),
    Man(man::Args),
}

/// Entry point of the binary: returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = err.exit_code();
            let _ = err.print();
            return code;
        }
    };
    let code = match run(cli) {
        Ok(()) => 0,
        Err(err) if err.kind == crate::error::Kind::BrokenPipe => 0,
        Err(err) => {
            // Not eprintln!: after a SIGHUP the terminal is gone, and a failed write must not
            // turn into a panic.
            use std::io::Write as _;
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "error: {}", err.message);
            if let Some(hint) = &err.hint {
                let _ = writeln!(stderr, "hint: {hint}");
            }
            err.kind.exit_code()
        }
    };
    crate::interrupt::exit_as_interrupted();
    code
}

fn run(cli: Cli) -> Result<()> {
    let env = Env::from_process()?;
    let mut out = Out::stdout();
    {
        use std::io::IsTerminal;
        crate::ops::replay::set_progress(std::io::stderr().is_terminal() && !wants_json(&cli.command));
    }
    match &cli.command {
        Command::Schemas(args) => return schemas::run(args, &mut out),
        Command::Clone(args) => return clone::run(env, args, &mut out),
        Command::Demo(args) => return demo::run(&env, args, &mut out),
        Command::Secret(cmd) => return secret::run(&env, cmd, &mut out),
        Command::Auth(cmd) => return auth::run(&env, cmd, &mut out),
        Command::Man(args) => return man::run(args, &mut out),
        Command::Hook(cmd) => return hooks::run::run(&env, cmd),
        Command::Hooks(cmd) => {
            let ctx = std::env::current_dir().ok().and_then(|cwd| Store::discover(&cwd).ok()).map(|store| Ctx::new(store, env.clone()));
            return hooks::run(ctx.as_ref(), cmd, &mut out);
        }
        _ => {}
    }
    let cwd = std::env::current_dir().map_err(|err| Error::user(format!("cannot read the current directory: {err}")))?;
    let ctx = Ctx::new(Store::discover(&cwd)?, env);
    let actor = cli.actor.as_deref();
    match &cli.command {
        Command::Init(args) => init::run(&ctx, args, &mut out),
        Command::Agent(cmd) => agent::run(&ctx, actor, cmd, &mut out),
        Command::Project(cmd) => project::run(&ctx, actor, cmd, &mut out),
        Command::Task(cmd) => task::run(&ctx, actor, cmd, &mut out),
        Command::Artifact(cmd) => artifact::run(&ctx, actor, cmd, &mut out),
        Command::Pr(cmd) => pr::run(&ctx, actor, cmd, &mut out),
        Command::Test(cmd) => test::run(&ctx, actor, cmd, &mut out),
        Command::Decide(args) => decide::run(&ctx, &ctx.actor(actor)?, args, &mut out),
        Command::Decision(cmd) => decision::run(&ctx, cmd, &mut out),
        Command::Budget(cmd) => budget::run(&ctx, actor, cmd, &mut out),
        Command::Cost(args) => cost::run(&ctx, args, &mut out),
        Command::Hr(cmd) => hr::run(&ctx, actor, cmd, &mut out),
        Command::Log(args) => log::run(&ctx, args, &mut out),
        Command::State(args) => state::run(&ctx, args, &mut out),
        Command::Verify(args) => verify::run(&ctx, args, &mut out),
        Command::Signers(args) => signers::run(&ctx, args, &mut out),
        Command::Remote(cmd) => remote::run(&ctx, cmd, &mut out),
        Command::Sync(args) => sync::run(&ctx, actor, args, &mut out),
        Command::Apply(args) => apply::run(&ctx, &ctx.actor(actor)?, args, &mut out),
        Command::Run(args) => run::run(&ctx, actor, args, &mut out),
        Command::Work(args) => work::run(&ctx, args, &mut out),
        Command::Schemas(_)
        | Command::Clone(_)
        | Command::Demo(_)
        | Command::Hook(_)
        | Command::Hooks(_)
        | Command::Secret(_)
        | Command::Auth(_)
        | Command::Man(_) => {
            unreachable!("handled before opening the repository")
        }
    }
}

/// Whether a command prints JSON (progress lines stay off then).
fn wants_json(command: &Command) -> bool {
    match command {
        Command::Verify(args) => args.json,
        Command::Sync(args) => args.json,
        Command::State(args) => args.json,
        Command::Log(args) => args.json,
        Command::Clone(args) => args.json,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
