//! Agent memory: `refs/clutch/memory/<agent>`, a chain of commits signed by the agent whose
//! tree holds its notes (`WORKING.md`, `MEMORY.md`). Not events: memory is the agent's own
//! scratch space, shared and audited like any ref, but it changes no state.

use ed25519_dalek::SigningKey;
use gix::objs::{tree, Kind, WriteTo as _};

use super::{bstring, ObjectId, Prepared, Store};
use crate::sign;
use crate::{Error, Result};

/// The files an agent's memory holds.
pub const MEMORY_FILES: &[&str] = &["MEMORY.md", "WORKING.md"];

/// Memory files by name, with their content.
pub type Notes = Vec<(String, Vec<u8>)>;

pub fn memory_ref(agent: &str) -> String {
    format!("refs/clutch/memory/{agent}")
}

impl Store {
    /// The agent's memory files, from the tip of its memory ref (empty when it has none).
    pub fn read_memory(&self, agent: &str) -> Result<(Option<ObjectId>, Notes)> {
        let Some(tip) = self.resolve(&memory_ref(agent))? else { return Ok((None, Vec::new())) };
        let tree = self.tree_of(tip)?;
        let object = self.repo.find_object(tree).map_err(|err| Error::internal(format!("cannot read memory tree {tree}: {err}")))?;
        let parsed = gix::objs::TreeRef::from_bytes(&object.data, gix::hash::Kind::Sha1)
            .map_err(|err| Error::internal(format!("memory tree {tree} is malformed: {err}")))?;
        let mut files = Vec::new();
        for entry in &parsed.entries {
            let name = entry.filename.to_string();
            if entry.mode.is_blob() && MEMORY_FILES.contains(&name.as_str()) {
                files.push((name, self.blob(entry.oid.to_owned())?));
            }
        }
        Ok((Some(tip), files))
    }

    /// Record new memory files as a commit signed by the agent and move its memory ref by
    /// compare-and-swap from `parent`. Returns the new tip.
    pub fn write_memory(
        &self,
        agent: &str,
        parent: Option<ObjectId>,
        files: &[(String, Vec<u8>)],
        key: &SigningKey,
        time: i64,
        note: &str,
    ) -> Result<ObjectId> {
        let hash = |kind: Kind, bytes: &[u8]| {
            gix::objs::compute_hash(gix::hash::Kind::Sha1, kind, bytes).map_err(|err| Error::internal(err.to_string()))
        };
        let mut objects = Vec::new();
        let mut entries = Vec::new();
        for (name, content) in files {
            let oid = hash(Kind::Blob, content)?;
            objects.push((Kind::Blob, oid, content.clone()));
            entries.push(tree::Entry { mode: tree::EntryKind::Blob.into(), filename: name.as_str().into(), oid });
        }
        entries.sort_by(|a, b| a.filename.cmp(&b.filename));
        let mut tree_bytes = Vec::new();
        gix::objs::Tree { entries }.write_to(&mut tree_bytes).map_err(|err| Error::internal(err.to_string()))?;
        let tree_id = hash(Kind::Tree, &tree_bytes)?;
        objects.push((Kind::Tree, tree_id, tree_bytes));
        let who = gix::actor::Signature {
            name: bstring(agent),
            email: bstring(&format!("{agent}@clutch.invalid")),
            time: gix::date::Time { seconds: time, offset: 0 },
        };
        let mut commit = gix::objs::Commit {
            tree: tree_id,
            parents: parent.into_iter().collect(),
            author: who.clone(),
            committer: who,
            encoding: None,
            message: bstring(&format!("memory of {agent}: {note}\n")),
            extra_headers: Vec::new(),
        };
        let mut unsigned = Vec::new();
        commit.write_to(&mut unsigned).map_err(|err| Error::internal(err.to_string()))?;
        commit.extra_headers.push((bstring("gpgsig"), bstring(&sign::sign(key, &unsigned))));
        let mut signed = Vec::new();
        commit.write_to(&mut signed).map_err(|err| Error::internal(err.to_string()))?;
        let oid = hash(Kind::Commit, &signed)?;
        objects.push((Kind::Commit, oid, signed));
        self.write(&Prepared { oid, objects })?;
        if self.update_ref(&memory_ref(agent), parent, oid, agent, time, "clutch: memory")?.is_err() {
            return Err(Error::conflict(format!("{} moved while {agent} ran", memory_ref(agent))));
        }
        Ok(oid)
    }
}
