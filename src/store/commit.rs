//! Event commits: building and signing them, and reading them back for replay.
//!
//! Reading parses the raw commit itself rather than trusting a library's view of it: the
//! signed payload is the commit bytes minus the `gpgsig` header and its continuation lines,
//! exactly as git computes it.

use ed25519_dalek::SigningKey;
use gix::objs::{tree, Kind, WriteTo as _};
use gix::ObjectId;

use super::{bstring, Prepared};
use crate::event::Event;
use crate::sign;
use crate::{Error, Result};

pub(super) fn prepare(
    event: &Event,
    files: &[(String, Vec<u8>)],
    parents: &[ObjectId],
    signer: &SigningKey,
    time: i64,
) -> Result<Prepared> {
    let hash = |kind: Kind, bytes: &[u8]| {
        gix::objs::compute_hash(gix::hash::Kind::Sha1, kind, bytes).map_err(|err| Error::internal(format!("cannot hash object: {err}")))
    };
    let mut objects = Vec::with_capacity(3 + files.len());
    let blob = |bytes: Vec<u8>, objects: &mut Vec<(Kind, ObjectId, Vec<u8>)>| -> Result<ObjectId> {
        let id = hash(Kind::Blob, &bytes)?;
        objects.push((Kind::Blob, id, bytes));
        Ok(id)
    };
    let event_blob = blob(event.to_json(), &mut objects)?;
    let mut entries = vec![tree::Entry { mode: tree::EntryKind::Blob.into(), filename: "event.json".into(), oid: event_blob }];
    if !files.is_empty() {
        let mut file_entries = Vec::with_capacity(files.len());
        for (name, content) in files {
            let oid = blob(content.clone(), &mut objects)?;
            file_entries.push(tree::Entry { mode: tree::EntryKind::Blob.into(), filename: name.as_str().into(), oid });
        }
        file_entries.sort_by(|a, b| a.filename.cmp(&b.filename));
        file_entries.dedup_by(|a, b| a.filename == b.filename);
        let files_tree = gix::objs::Tree { entries: file_entries };
        let mut bytes = Vec::new();
        files_tree.write_to(&mut bytes).map_err(|err| Error::internal(format!("cannot encode tree: {err}")))?;
        let id = hash(Kind::Tree, &bytes)?;
        objects.push((Kind::Tree, id, bytes));
        entries.push(tree::Entry { mode: tree::EntryKind::Tree.into(), filename: "files".into(), oid: id });
    }
    let root = gix::objs::Tree { entries };
    let mut tree_bytes = Vec::new();
    root.write_to(&mut tree_bytes).map_err(|err| Error::internal(format!("cannot encode tree: {err}")))?;
    let tree_id = hash(Kind::Tree, &tree_bytes)?;
    objects.push((Kind::Tree, tree_id, tree_bytes));

    let who = gix::actor::Signature {
        name: bstring(&event.actor),
        email: bstring(&format!("{}@clutch.invalid", event.actor)),
        time: gix::date::Time { seconds: time, offset: 0 },
    };
    let mut commit = gix::objs::Commit {
        tree: tree_id,
        parents: parents.iter().copied().collect(),
        author: who.clone(),
        committer: who,
        encoding: None,
        message: bstring(&event.commit_message()),
        extra_headers: Vec::new(),
    };
    let mut unsigned = Vec::new();
    commit.write_to(&mut unsigned).map_err(|err| Error::internal(format!("cannot encode commit: {err}")))?;
    let signature = sign::sign(signer, &unsigned);
    commit.extra_headers.push((bstring("gpgsig"), bstring(&signature)));
    let mut signed = Vec::with_capacity(unsigned.len() + signature.len() + 16);
    commit.write_to(&mut signed).map_err(|err| Error::internal(format!("cannot encode commit: {err}")))?;
    let oid = hash(Kind::Commit, &signed)?;
    objects.push((Kind::Commit, oid, signed));
    Ok(Prepared { oid, objects })
}

/// The largest `event.json` replay reads (content goes under `files/`, not in the envelope).
pub const MAX_EVENT_JSON: u64 = 1 << 20;

/// An event commit as stored, before anything about it is trusted.
#[derive(Debug, Clone)]
pub struct RawEvent {
    pub oid: ObjectId,
    pub parents: Vec<ObjectId>,
    /// The armored `gpgsig` value, if the commit has one.
    pub signature: Option<String>,
    /// The bytes the signature covers.
    pub signed_payload: Vec<u8>,
    pub author: Person,
    pub committer: Person,
    pub message: String,
    /// `event.json`, or why it could not be read.
    pub event_json: Result<Vec<u8>, String>,
    /// Blobs under `files/`: (name, blob id).
    pub files: Vec<(String, ObjectId)>,
}

impl RawEvent {
    fn malformed(oid: ObjectId, parents: Vec<ObjectId>, why: String) -> RawEvent {
        let nobody = Person { name: String::new(), email: String::new(), time: 0, offset: String::new() };
        RawEvent {
            oid,
            parents,
            signature: None,
            signed_payload: Vec::new(),
            author: nobody.clone(),
            committer: nobody,
            message: String::new(),
            event_json: Err(why),
            files: Vec::new(),
        }
    }
}

/// An author or committer line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub email: String,
    pub time: i64,
    pub offset: String,
}

pub(super) fn read(repo: &gix::Repository, oid: ObjectId) -> Result<RawEvent> {
    let object = repo.find_object(oid).map_err(|err| Error::internal(format!("cannot read commit {oid}: {err}")))?;
    if object.kind != Kind::Commit {
        return Err(Error::internal(format!("{oid} is a {}, not a commit", object.kind)));
    }
    let parsed = match parse(&object.data) {
        Ok(parsed) => parsed,
        Err(why) => {
            // A malformed commit is one refused event, not a broken log: keep its parents so
            // the walk goes on, and let replay report why.
            let parents = parents_of(&object.data).unwrap_or_default();
            return Ok(RawEvent::malformed(oid, parents, format!("the commit is malformed: {why}")));
        }
    };
    let (event_json, files) = read_tree(repo, parsed.tree);
    Ok(RawEvent {
        oid,
        parents: parsed.parents,
        signature: parsed.signature,
        signed_payload: parsed.signed_payload,
        author: parsed.author,
        committer: parsed.committer,
        message: parsed.message,
        event_json,
        files,
    })
}

/// `event.json` (or why it is unreadable) and the blobs under `files/`.
type TreeContent = (Result<Vec<u8>, String>, Vec<(String, ObjectId)>);

fn read_tree(repo: &gix::Repository, tree: ObjectId) -> TreeContent {
    let Ok(object) = repo.find_object(tree) else {
        return (Err(format!("tree {tree} is missing")), Vec::new());
    };
    let Ok(root) = gix::objs::TreeRef::from_bytes(&object.data, gix::hash::Kind::Sha1) else {
        return (Err(format!("tree {tree} is malformed")), Vec::new());
    };
    let mut event_json = Err("the commit's tree has no event.json".to_string());
    let mut files = Vec::new();
    for entry in &root.entries {
        match (entry.filename.to_string().as_str(), entry.mode.is_blob(), entry.mode.is_tree()) {
            ("event.json", true, _) => {
                // An envelope is a few hundred bytes; a huge one is an attack on memory, refused
                // before it is inflated.
                event_json = match repo.find_header(entry.oid) {
                    Ok(header) if header.size() > MAX_EVENT_JSON => {
                        Err(format!("event.json is {} bytes; at most {MAX_EVENT_JSON} are read", header.size()))
                    }
                    _ => {
                        repo.find_object(entry.oid).map(|o| o.detach().data).map_err(|err| format!("event.json blob is unreadable: {err}"))
                    }
                };
            }
            ("files", _, true) => {
                if let Ok(sub) = repo.find_object(entry.oid) {
                    if let Ok(sub_tree) = gix::objs::TreeRef::from_bytes(&sub.data, gix::hash::Kind::Sha1) {
                        for file in &sub_tree.entries {
                            if file.mode.is_blob() {
                                files.push((file.filename.to_string(), file.oid.to_owned()));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    (event_json, files)
}

struct Parsed {
    tree: ObjectId,
    parents: Vec<ObjectId>,
    author: Person,
    committer: Person,
    signature: Option<String>,
    signed_payload: Vec<u8>,
    message: String,
}

pub(super) fn parents_of(data: &[u8]) -> Result<Vec<ObjectId>, String> {
    let mut parents = Vec::new();
    for line in data.split(|b| *b == b'\n') {
        if line.is_empty() {
            break;
        }
        if let Some(hex) = line.strip_prefix(b"parent ") {
            parents.push(ObjectId::from_hex(hex).map_err(|_| "bad parent id".to_string())?);
        }
    }
    Ok(parents)
}

fn parse(data: &[u8]) -> Result<Parsed, String> {
    let split = data.windows(2).position(|w| w == b"\n\n").ok_or("no blank line after the header")?;
    let (header, rest) = data.split_at(split + 1);
    let message = String::from_utf8(rest[1..].to_vec()).map_err(|_| "message is not UTF-8")?;
    let mut tree = None;
    let mut parents = Vec::new();
    let mut author = None;
    let mut committer = None;
    let mut signature: Option<String> = None;
    let mut signed_payload = Vec::with_capacity(data.len());
    let mut in_signature = false;
    // Git's order: tree, parents, author, committer, then other headers. A `parent` anywhere
    // else is not a parent to git (nor to the hook that judges pushes), so it is refused here
    // rather than followed.
    let mut stage = 0u8;
    for line in header.split_inclusive(|b| *b == b'\n') {
        if let Some(continuation) = line.strip_prefix(b" ") {
            if in_signature {
                signature.get_or_insert_with(String::new).push_str(&String::from_utf8_lossy(continuation));
                continue;
            }
            signed_payload.extend_from_slice(line);
            continue;
        }
        in_signature = false;
        let text = std::str::from_utf8(line).map_err(|_| "header is not UTF-8")?.trim_end_matches('\n');
        let (key, value) = text.split_once(' ').unwrap_or((text, ""));
        match key {
            "gpgsig" => {
                if signature.is_some() {
                    return Err("more than one gpgsig header".into());
                }
                in_signature = true;
                signature = Some(format!("{value}\n"));
                continue;
            }
            "tree" if stage == 0 => {
                tree = Some(ObjectId::from_hex(value.as_bytes()).map_err(|_| "bad tree id")?);
                stage = 1;
            }
            "parent" if stage == 1 => parents.push(ObjectId::from_hex(value.as_bytes()).map_err(|_| "bad parent id")?),
            "author" if stage == 1 => {
                author = Some(person(value)?);
                stage = 2;
            }
            "committer" if stage == 2 => {
                committer = Some(person(value)?);
                stage = 3;
            }
            "tree" | "parent" | "author" | "committer" => return Err(format!("'{key}' header out of git's order")),
            _ if stage < 3 => return Err(format!("'{key}' header before the committer")),
            _ => {}
        }
        signed_payload.extend_from_slice(line);
    }
    signed_payload.extend_from_slice(rest);
    Ok(Parsed {
        tree: tree.ok_or("no tree")?,
        parents,
        author: author.ok_or("no author")?,
        committer: committer.ok_or("no committer")?,
        signature,
        signed_payload,
        message,
    })
}

fn person(value: &str) -> Result<Person, String> {
    let open = value.find('<').ok_or("identity without email")?;
    let close = value.rfind('>').ok_or("identity without email")?;
    if close < open {
        return Err("malformed identity".into());
    }
    let name = value[..open].trim().to_string();
    let email = value[open + 1..close].to_string();
    let mut when = value[close + 1..].split_whitespace();
    let time = when.next().and_then(|t| t.parse().ok()).ok_or("identity without time")?;
    let offset = when.next().unwrap_or("+0000").to_string();
    Ok(Person { name, email, time, offset })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_cut_out_of_the_payload() {
        let raw = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor a <a@x> 1 +0000\ncommitter a <a@x> 1 +0000\ngpgsig -----BEGIN SSH SIGNATURE-----\n AAAA\n -----END SSH SIGNATURE-----\n\nsubject\n";
        let parsed = parse(raw).expect("parses");
        assert_eq!(parsed.signature.as_deref(), Some("-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"));
        assert_eq!(
            parsed.signed_payload,
            b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor a <a@x> 1 +0000\ncommitter a <a@x> 1 +0000\n\nsubject\n"
        );
        assert_eq!(parsed.author.name, "a");
        assert_eq!(parsed.message, "subject\n");
    }
}
