use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::ops::Ctx;
use crate::{Error, Result};

use super::Out;

const PRE_RECEIVE: &str = include_str!("../../../hooks/pre-receive");
const PRE_PUSH: &str = include_str!("../../../hooks/pre-push");

/// Install the hooks: with --server, `pre-receive` into a bare repository that serves the org
/// log (rejects rewrites and deletions of refs/clutch/log, invalid events, and protected
/// branches moved without an approved merge); without it, `pre-push` into this repository.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server's (bare) repository.
    #[arg(long, value_name = "DIR")]
    pub server: Option<PathBuf>,
}

pub fn run(ctx: Option<&Ctx>, args: &Args, out: &mut Out) -> Result<()> {
    let (dir, name, text) = match &args.server {
        Some(server) => {
            let store = crate::store::Store::open(server)?;
            (store.git_dir().join("hooks"), "pre-receive", PRE_RECEIVE)
        }
        None => {
            let ctx = ctx.ok_or_else(|| Error::user("not in a git repository").hint("run inside the repository, or pass --server DIR"))?;
            (ctx.store.git_dir().join("hooks"), "pre-push", PRE_PUSH)
        }
    };
    std::fs::create_dir_all(&dir).map_err(|err| Error::user(format!("cannot create {}: {err}", dir.display())))?;
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|err| Error::user(format!("cannot write {}: {err}", path.display())))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    out.line(path.display().to_string())
}
