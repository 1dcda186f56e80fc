use std::path::PathBuf;

use crate::event::schema;
use crate::{Error, Result};

use super::Out;

/// Print or write the JSON Schema of every event type (the checked-in `schemas/` folder is
/// this command's output).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write one file per event type into DIR instead of printing.
    #[arg(long, value_name = "DIR")]
    pub write: Option<PathBuf>,
}

pub fn run(args: &Args, out: &mut Out) -> Result<()> {
    let all = schema::all();
    match &args.write {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|err| Error::user(format!("cannot create {}: {err}", dir.display())))?;
            for (name, value) in &all {
                let text = serde_json::to_string_pretty(value).map_err(|err| Error::internal(err.to_string()))? + "\n";
                std::fs::write(dir.join(name), text).map_err(|err| Error::user(format!("cannot write {name}: {err}")))?;
            }
            eprintln!("wrote {} schemas to {}", all.len(), dir.display());
            Ok(())
        }
        None => out.json(&all.into_iter().collect::<serde_json::Map<_, _>>()),
    }
}
