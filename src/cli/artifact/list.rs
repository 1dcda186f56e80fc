use crate::ops::Ctx;
use crate::Result;

use super::Out;

/// List artifacts, optionally of one task.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    pub task: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &Args, out: &mut Out) -> Result<()> {
    let loaded = ctx.load()?;
    let state = &loaded.state;
    let task = match &args.task {
        Some(t) => Some(state.find_task(t).map_err(crate::Error::user)?.id.clone()),
        None => None,
    };
    let artifacts: Vec<_> = state.artifacts.iter().filter(|a| task.as_ref().is_none_or(|t| &a.task == t)).collect();
    if args.json {
        return out.json(&artifacts);
    }
    let mut rows = vec![vec!["TASK".into(), "NAME".into(), "KIND".into(), "SIZE".into(), "BY".into(), "BLOB".into()]];
    for a in artifacts {
        rows.push(vec![a.task.clone(), a.path.clone(), a.kind.clone(), a.size.to_string(), a.by.clone(), a.blob[..10].to_string()]);
    }
    out.table(&rows)
}
