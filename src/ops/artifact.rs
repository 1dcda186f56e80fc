//! Artifacts: files produced for a task, stored in the event's own tree.

use std::path::Path;

use crate::event::{ArtifactProduced, Payload};
use crate::{Error, Result};

use super::{transact, Ctx, Draft, Written};

/// Largest artifact accepted; bigger outputs belong in a branch, not the org log.
pub const MAX_SIZE: u64 = 64 * 1024 * 1024;

pub fn add(ctx: &Ctx, actor: &str, task: &str, path: &Path, kind: &str, name: Option<&str>, cost: crate::event::Cost) -> Result<Written> {
    let meta = std::fs::metadata(path).map_err(|err| Error::user(format!("cannot read {}: {err}", path.display())))?;
    if !meta.is_file() {
        return Err(Error::user(format!("{} is not a file", path.display())));
    }
    if meta.len() > MAX_SIZE {
        return Err(Error::user(format!("{} is {} bytes; artifacts are limited to {MAX_SIZE}", path.display(), meta.len()))
            .hint("commit large outputs to the task's branch instead"));
    }
    let name = match name {
        Some(name) => name.to_string(),
        None => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Error::user(format!("{} has no file name", path.display())))?,
    };
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(Error::user(format!("artifact name '{name}' is not a plain file name")).hint("pass --name NAME"));
    }
    let content = std::fs::read(path).map_err(|err| Error::user(format!("cannot read {}: {err}", path.display())))?;
    let blob = gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Blob, &content)
        .map_err(|err| Error::internal(format!("cannot hash {}: {err}", path.display())))?
        .to_string();
    let (mut written, _) = transact(ctx, actor, |state| {
        let task = state.find_task(task).map_err(Error::user)?;
        let mut draft = Draft::new(Payload::ArtifactProduced(ArtifactProduced {
            path: name.clone(),
            kind: kind.to_string(),
            blob: blob.clone(),
            size: content.len() as u64,
        }))
        .task(task);
        draft.refs = vec![blob.clone()];
        draft.files = vec![(name.clone(), content.clone())];
        draft.cost = cost.clone();
        Ok(vec![draft])
    })?;
    Ok(written.remove(0))
}
