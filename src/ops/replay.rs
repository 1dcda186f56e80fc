//! Replay: the log, in order, through the verifier and the reducer.
//!
//! Order is first-parent order from the root; the events a merge commit brings in are placed
//! at that merge, sorted topologically with ties broken by (clock, commit id). So the state at
//! a descendant is the state at an ancestor plus the new events, and the cache (keyed by head
//! commit id under `.git/clutch/`) only ever needs the new events applied.
//!
//! Nothing read is trusted: every event's signature, key binding, schema, commit metadata and
//! role are checked here or in the reducer. A refused event is recorded in
//! `State::rejected` and skipped; the events after it are judged without it.

use std::collections::{BTreeMap, HashMap};

use sha2::Digest;

use crate::event::{parse_trailers, Event};
use crate::sign::sshsig::KeyCache;
use crate::sign::Signed;
use crate::state::{self, Rejection, State, Verified};
use crate::store::{ObjectId, RawEvent, Store};
use crate::{Error, Result};

/// State as of a head.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub state: State,
    pub head: Option<ObjectId>,
    /// The clock of the head (a new event's clock must exceed it).
    pub head_clock: u64,
    /// Events applied since the state was last written to the cache.
    pub behind: u64,
}

/// How far the cache may lag behind the head. Re-encoding a large state costs more than
/// replaying a few events, so the cache is rewritten only once it is this many events behind.
pub const CACHE_LAG: u64 = 16;

const CACHE_FILE: &str = "state.bin";
/// Bump when the reducer's rules or the state's shape change: older caches are then ignored.
/// The cache is postcard (binary): a warm read of a large org is bounded by decoding it.
const CACHE_VERSION: u32 = 3;

/// [`Cache`] by reference, for writing without a copy of the state (same fields, same order).
#[derive(serde::Serialize)]
struct CacheRef<'a> {
    version: u32,
    clutch: &'a str,
    head: String,
    head_clock: u64,
    state: &'a State,
}

#[derive(serde::Deserialize)]
struct Cache {
    version: u32,
    clutch: String,
    head: String,
    head_clock: u64,
    state: State,
}

/// The state at the current head, using and refreshing the cache.
pub fn load(store: &Store) -> Result<Loaded> {
    let Some(head) = store.head()? else {
        return Ok(Loaded::default());
    };
    let cached = read_cache(store);
    if let Some(cached) = cached {
        if cached.head == Some(head) {
            return Ok(cached);
        }
        return refresh(store, advance(store, Some(cached), head)?);
    }
    refresh(store, advance(store, None, head)?)
}

/// Write the cache once it lags far enough behind.
fn refresh(store: &Store, mut loaded: Loaded) -> Result<Loaded> {
    if loaded.behind >= CACHE_LAG {
        write_cache(store, &loaded);
        loaded.behind = 0;
    }
    Ok(loaded)
}

/// Replay the whole log from its root, ignoring any cache.
pub fn load_cold(store: &Store) -> Result<Loaded> {
    match store.head()? {
        Some(head) => advance(store, None, head),
        None => Ok(Loaded::default()),
    }
}

static PROGRESS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Show a count and a rate on stderr while long replays run (the CLI turns this on when
/// stderr is a terminal and the output is not JSON).
pub fn set_progress(on: bool) {
    PROGRESS.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Replays shorter than this finish before a progress line would help.
const PROGRESS_FROM: usize = 5_000;

/// Bring `from` (or an empty state) forward to `head`.
pub fn advance(store: &Store, from: Option<Loaded>, head: ObjectId) -> Result<Loaded> {
    let stop = from.as_ref().and_then(|l| l.head);
    // When the cached head is not on this log's first-parent line (history was replaced), the
    // walk went all the way to the root: start over from an empty state.
    let (mut chain, found) = store.first_parent_chain(head, stop)?;
    let mut loaded = if found { from.unwrap_or_default() } else { Loaded::default() };
    chain.reverse();
    let mut replay = Replay { store, clocks: HashMap::new() };
    if let (Some(h), true) = (loaded.head, found) {
        replay.clocks.insert(h, loaded.head_clock);
    }
    let progress = PROGRESS.load(std::sync::atomic::Ordering::Relaxed) && chain.len() >= PROGRESS_FROM;
    let started = crate::env::monotonic();
    let total = chain.len();
    for (n, chunk) in chain.chunks(CHUNK).enumerate() {
        if progress {
            let done = n * CHUNK;
            let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-3);
            eprint!("\rverifying events: {done}/{total} ({rate:.0}/s)   ");
        }
        for mut judged in judge_all(store, chunk)? {
            if judged.raw.parents.len() > 1 {
                let merged = store.merged_in(judged.raw.parents[0], &judged.raw.parents[1..])?;
                let side = topo_order(merged.into_iter().map(|oid| store.read_event(oid)).collect::<Result<Vec<_>>>()?);
                let foreign = foreign_root(&side);
                for raw in side {
                    let verdict = match &foreign {
                        Some(why) => Err(why.clone()),
                        None => prejudge(&raw),
                    };
                    replay.step(&mut loaded.state, Judged { raw, verdict })?;
                }
                if let Some(why) = foreign {
                    judged.verdict = Err(why);
                }
            }
            let oid = judged.raw.oid;
            loaded.head_clock = replay.step(&mut loaded.state, judged)?;
            loaded.head = Some(oid);
            loaded.behind += 1;
        }
    }
    if progress {
        let rate = total as f64 / started.elapsed().as_secs_f64().max(1e-3);
        eprintln!("\rverifying events: {total}/{total} ({rate:.0}/s)   ");
    }
    Ok(loaded)
}

/// Commits judged per batch: large enough to keep both cores and the batch verifier busy,
/// small enough to keep memory flat.
const CHUNK: usize = 2048;

/// A merge whose side holds a parentless commit joins a log with another genesis: another
/// org's history. Nothing it brings in is applied, and the merge itself is refused.
fn foreign_root(side: &[RawEvent]) -> Option<String> {
    side.iter()
        .find(|raw| raw.parents.is_empty())
        .map(|root| format!("brought in by a merge of a log with another genesis ({}): another org's history", root.oid))
}

/// A commit read and checked as far as it can be without state.
struct Judged {
    raw: RawEvent,
    /// The decoded event and the key that signed it, or why the commit is refused.
    verdict: Result<(Event, String), String>,
}

/// Read and pre-judge commits on all cores, each thread with its own repository handle;
/// signatures are checked in batches. Results come back in input order.
fn judge_all(store: &Store, oids: &[ObjectId]) -> Result<Vec<Judged>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    if threads == 1 || oids.len() < 64 {
        return judge_slice(store, oids);
    }
    let per = oids.len().div_ceil(threads);
    let git_dir = store.git_dir().to_path_buf();
    let mut parts: Vec<Result<Vec<Judged>>> = Vec::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = oids[per..]
            .chunks(per)
            .map(|part| {
                let git_dir = git_dir.clone();
                scope.spawn(move || judge_slice(&Store::open(&git_dir)?, part))
            })
            .collect();
        parts.push(judge_slice(store, &oids[..per]));
        for handle in handles {
            parts.push(handle.join().unwrap_or_else(|_| Err(Error::internal("a replay thread panicked"))));
        }
    });
    let mut out = Vec::with_capacity(oids.len());
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

fn judge_slice(store: &Store, oids: &[ObjectId]) -> Result<Vec<Judged>> {
    // Each signature is checked on its own, strictly (as git and ssh-keygen do). A batch check
    // would be faster but can accept a signature with a small-order component that a single
    // check refuses, so verdicts would depend on what happened to be batched together.
    let mut keys = KeyCache::default();
    let mut judged = Vec::with_capacity(oids.len());
    for oid in oids {
        let raw = store.read_event(*oid)?;
        let verdict = decode(&raw, &mut keys).and_then(|(event, sig)| {
            sig.verify(&raw.signed_payload).map_err(|why| format!("bad signature: {why}"))?;
            Ok((event, sig.key.to_openssh()))
        });
        judged.push(Judged { raw, verdict });
    }
    Ok(judged)
}

/// Signature parsed (not yet checked), event decoded, metadata consistent.
fn decode(raw: &RawEvent, keys: &mut KeyCache) -> Result<(Event, Signed), String> {
    if raw.signature.is_none() {
        // A malformed commit says why in place of its event.json.
        raw.event_json.as_ref().map_err(Clone::clone)?;
    }
    let armored = raw.signature.as_deref().ok_or("the commit is not signed")?;
    let signed = Signed::parse_with(armored, keys).map_err(|why| format!("bad signature: {why}"))?;
    let bytes = raw.event_json.as_ref().map_err(Clone::clone)?;
    let event = Event::from_json(bytes)?;
    check_metadata(raw, &event)?;
    check_parents(raw, &event)?;
    Ok((event, signed))
}

/// Everything about one event that does not need state, signature checked on its own.
fn prejudge(raw: &RawEvent) -> Result<(Event, String), String> {
    let (event, signed) = decode(raw, &mut KeyCache::default())?;
    signed.verify(&raw.signed_payload).map_err(|why| format!("bad signature: {why}"))?;
    Ok((event, signed.key.to_openssh()))
}

struct Replay<'a> {
    store: &'a Store,
    /// Claimed clocks of commits seen, for the Lamport check.
    clocks: HashMap<ObjectId, u64>,
}

impl Replay<'_> {
    /// Check the clock, then apply; returns the clock the event claims (0 when unreadable).
    fn step(&mut self, state: &mut State, judged: Judged) -> Result<u64> {
        let Judged { raw, verdict } = judged;
        let commit = raw.oid.to_string();
        let mut result = verdict;
        if let Ok((event, _)) = &result {
            for parent in &raw.parents {
                let parent_clock = self.clock_of(state, *parent)?;
                if event.clock <= parent_clock {
                    result = Err(format!("clock {} is not greater than its parent's clock {parent_clock}", event.clock));
                    break;
                }
            }
        }
        let result = result.and_then(|(event, signer)| {
            let files: Vec<(String, String)> = raw.files.iter().map(|(n, o)| (n.clone(), o.to_string())).collect();
            let verified = Verified { commit: &commit, signer: &signer, event: &event, files: &files, is_root: raw.parents.is_empty() };
            state::apply(state, &verified).map(|_| event.clock)
        });
        let clock = match result {
            Ok(clock) => clock,
            Err(reason) => {
                state.rejected.push(Rejection { commit, reason });
                // A refused event's claimed clock is not trusted: it stands at its parents'
                // clock, so a forged huge clock cannot hold later events hostage.
                let mut clock = 0;
                for parent in &raw.parents {
                    clock = clock.max(self.clock_of(state, *parent)?);
                }
                clock
            }
        };
        self.clocks.insert(raw.oid, clock);
        Ok(clock)
    }

    /// The effective clock of a commit replayed earlier: what it claims if it was applied,
    /// its parents' clock if it was refused. Commits replayed in this run are remembered; older
    /// ones are worked out from the state's list of refused commits, so an incremental replay
    /// judges clocks exactly as a replay from the root does.
    fn clock_of(&mut self, state: &State, oid: ObjectId) -> Result<u64> {
        if let Some(clock) = self.clocks.get(&oid) {
            return Ok(*clock);
        }
        let rejected: std::collections::HashSet<&str> = state.rejected.iter().map(|r| r.commit.as_str()).collect();
        // Iteratively, parents before children: a long chain of refused commits from a hostile
        // remote must not exhaust the stack.
        let mut stack = vec![(oid, false)];
        while let Some((commit, parents_done)) = stack.pop() {
            if self.clocks.contains_key(&commit) {
                continue;
            }
            if !rejected.contains(commit.to_string().as_str()) {
                let clock = claimed_clock(&self.store.read_event(commit)?);
                self.clocks.insert(commit, clock);
                continue;
            }
            let parents = self.store.parents(commit)?;
            if parents_done {
                let clock = parents.iter().filter_map(|p| self.clocks.get(p)).copied().max().unwrap_or(0);
                self.clocks.insert(commit, clock);
            } else {
                stack.push((commit, true));
                stack.extend(parents.into_iter().filter(|p| !self.clocks.contains_key(p)).map(|p| (p, false)));
            }
        }
        Ok(self.clocks.get(&oid).copied().unwrap_or(0))
    }
}

/// Apply the events that merging `others` into `loaded.head` brings in, exactly as replay does
/// at a merge commit. Returns the state before the merge commit itself and the highest clock
/// among the heads being joined (the merge commit's clock must exceed it).
pub fn apply_side(store: &Store, mut loaded: Loaded, others: &[ObjectId]) -> Result<(Loaded, u64)> {
    let first = loaded.head.ok_or_else(|| Error::internal("a merge needs a local head"))?;
    let mut replay = Replay { store, clocks: HashMap::new() };
    replay.clocks.insert(first, loaded.head_clock);
    let merged = store.merged_in(first, others)?;
    let side = topo_order(merged.into_iter().map(|oid| store.read_event(oid)).collect::<Result<Vec<_>>>()?);
    if let Some(why) = foreign_root(&side) {
        return Err(Error::user(format!("cannot join the logs: the other log's events are {why}")));
    }
    for raw in side {
        let verdict = prejudge(&raw);
        replay.step(&mut loaded.state, Judged { raw, verdict })?;
        loaded.behind += 1;
    }
    let mut highest = loaded.head_clock;
    for other in others {
        highest = highest.max(replay.clock_of(&loaded.state, *other)?);
    }
    Ok((loaded, highest))
}

/// Topological order (parents first), ties broken by (clock, commit id).
pub fn topo_order(raws: Vec<RawEvent>) -> Vec<RawEvent> {
    let mut raws: BTreeMap<ObjectId, RawEvent> = raws.into_iter().map(|r| (r.oid, r)).collect();
    let mut waiting: HashMap<ObjectId, usize> = HashMap::new();
    let mut children: HashMap<ObjectId, Vec<ObjectId>> = HashMap::new();
    for (oid, raw) in &raws {
        let inside: Vec<_> = raw.parents.iter().filter(|p| raws.contains_key(*p)).collect();
        waiting.insert(*oid, inside.len());
        for parent in inside {
            children.entry(*parent).or_default().push(*oid);
        }
    }
    let mut ready: std::collections::BTreeSet<(u64, ObjectId)> =
        waiting.iter().filter(|(_, n)| **n == 0).map(|(oid, _)| (claimed_clock(&raws[oid]), *oid)).collect();
    let mut ordered = Vec::with_capacity(raws.len());
    while let Some(first) = ready.pop_first() {
        let oid = first.1;
        for child in children.get(&oid).cloned().unwrap_or_default() {
            let n = waiting.get_mut(&child).expect("child is inside");
            *n -= 1;
            if *n == 0 {
                ready.insert((claimed_clock(&raws[&child]), child));
            }
        }
        ordered.push(raws.remove(&oid).expect("each commit once"));
    }
    ordered
}

/// The clock an event claims, without judging it; 0 when unreadable.
fn claimed_clock(raw: &RawEvent) -> u64 {
    raw.event_json
        .as_ref()
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(bytes).ok())
        .and_then(|v| v.get("clock").and_then(|c| c.as_u64()))
        .unwrap_or(0)
}

/// Only LOG_MERGED joins histories, and it names exactly the heads it joins.
fn check_parents(raw: &RawEvent, event: &Event) -> Result<(), String> {
    match &event.payload {
        crate::event::Payload::LogMerged(p) => {
            let others: Vec<String> = raw.parents.iter().skip(1).map(|p| p.to_string()).collect();
            if raw.parents.len() < 2 || p.merged != others {
                return Err("LOG_MERGED must be a merge commit whose other parents are the heads it lists".into());
            }
        }
        _ if raw.parents.len() > 1 => return Err(format!("a {} commit may not have more than one parent", event.event_type())),
        _ => {}
    }
    Ok(())
}

/// The commit's author, committer, time and trailers must agree with `event.json`.
fn check_metadata(raw: &RawEvent, event: &Event) -> Result<(), String> {
    let at = crate::env::parse_time(&event.at).map_err(|err| err.message)?;
    for (role, person) in [("author", &raw.author), ("committer", &raw.committer)] {
        if person.name != event.actor || person.email != format!("{}@clutch.invalid", event.actor) {
            return Err(format!("commit {role} '{} <{}>' is not the event's actor '{}'", person.name, person.email, event.actor));
        }
        if person.time != at {
            return Err(format!("commit {role} time does not match the event time {}", event.at));
        }
    }
    // The Clutch-* trailers must be exactly the ones event.json implies: none missing, none
    // contradicting, none repeated, so `git log --grep` never tells another story.
    let found: Vec<(String, String)> = parse_trailers(&raw.message).into_iter().filter(|(k, _)| k.starts_with("Clutch-")).collect();
    let expected: Vec<(String, String)> = event.trailers().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    if found != expected {
        let reason = expected
            .iter()
            .find(|pair| found.iter().filter(|f| f == pair).count() != 1)
            .map(|(k, v)| format!("commit message trailer {k} disagrees with event.json, which says '{v}'"))
            .or_else(|| {
                found.iter().find(|f| !expected.contains(f)).map(|(k, v)| format!("commit message trailer {k}: {v} is not in event.json"))
            })
            .unwrap_or_else(|| "commit message trailers are not in the order clutch writes them".into());
        return Err(reason);
    }
    Ok(())
}

/// The cached state, whatever head it is at.
pub fn load_cached(store: &Store) -> Option<Loaded> {
    read_cache(store)
}

fn read_cache(store: &Store) -> Option<Loaded> {
    let bytes = std::fs::read(store.cache_dir().join(CACHE_FILE)).ok()?;
    // The last 32 bytes are the SHA-256 of the rest: a cache damaged on disk is ignored.
    let (body, sum) = bytes.split_at(bytes.len().checked_sub(32)?);
    if sha2::Sha256::digest(body).as_slice() != sum {
        return None;
    }
    let cache: Cache = postcard::from_bytes(body).ok()?;
    if cache.version != CACHE_VERSION || cache.clutch != env!("CARGO_PKG_VERSION") {
        return None;
    }
    Some(Loaded { state: cache.state, head: Store::parse_oid(&cache.head), head_clock: cache.head_clock, behind: 0 })
}

/// Best effort: a cache that cannot be written only costs time on the next read.
pub fn write_cache(store: &Store, loaded: &Loaded) {
    let Some(head) = loaded.head else { return };
    let dir = store.cache_dir();
    let cache = CacheRef {
        version: CACHE_VERSION,
        clutch: env!("CARGO_PKG_VERSION"),
        head: head.to_string(),
        head_clock: loaded.head_clock,
        state: &loaded.state,
    };
    let Ok(mut bytes) = postcard::to_stdvec(&cache) else { return };
    let sum = sha2::Sha256::digest(&bytes);
    bytes.extend_from_slice(&sum);
    let tmp = dir.join(format!("{CACHE_FILE}.{}.tmp", std::process::id()));
    let written =
        std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&tmp, bytes)).and_then(|_| std::fs::rename(&tmp, dir.join(CACHE_FILE)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// The org id this repository is pinned to must be the root of its log.
pub fn check_pin(store: &Store, state: &State) -> Result<()> {
    let Some(pinned) = store.config_string("clutch.orgid") else {
        return Ok(());
    };
    let Some(org) = state.org.as_ref() else {
        return Err(Error::user(format!(
            "refs/clutch/log has no valid ORG_CREATED at its root, but this repository belongs to org {pinned}"
        ))
        .hint("a log with another genesis was put in place; see: git clutch verify"));
    };
    if pinned != org.id {
        return Err(Error::user(format!("this repository belongs to org {pinned}, but refs/clutch/log starts at {}", org.id))
            .hint("a log with another genesis was put in place; restore refs/clutch/log or fix clutch.orgId in git config"));
    }
    Ok(())
}

/// Whether `commit`, refused in the merged order of a log, was valid in the history it was
/// made on. Such an event was overturned by a concurrent one (two claims of one task: replay
/// order decides which stands) — the log working, not a forgery. A forged or gate-breaking
/// event is refused on its own history too; then this returns that refusal's reason.
pub fn refused_on_own_history(store: &Store, commit: ObjectId, genesis: Option<&str>) -> Result<Option<String>> {
    Ok(refused_on_own_histories(store, &[commit], genesis, None)?.remove(0))
}

/// [`refused_on_own_history`] for each of `commits` (in log order), replaying each history
/// from the last one's state when that lies on its first-parent line (`start`, a state known
/// to be on it, to begin with): K forged events appended one after another cost one replay
/// of the log and the K events, not K replays of the whole log.
pub fn refused_on_own_histories(
    store: &Store,
    commits: &[ObjectId],
    genesis: Option<&str>,
    start: Option<Loaded>,
) -> Result<Vec<Option<String>>> {
    let mut last = start;
    let mut verdicts = Vec::with_capacity(commits.len());
    for &commit in commits {
        let own = advance(store, last.take(), commit)?;
        verdicts.push(verdict(&own, commit, genesis));
        last = Some(own);
    }
    Ok(verdicts)
}

fn verdict(own: &Loaded, commit: ObjectId, genesis: Option<&str>) -> Option<String> {
    let own_genesis = own.state.org.as_ref().map(|o| o.id.as_str());
    if let (Some(genesis), Some(own_genesis)) = (genesis, own_genesis) {
        if genesis != own_genesis {
            return Some(format!("it was made in another org's log (genesis {own_genesis})"));
        }
    }
    let hex = commit.to_string();
    own.state.rejected.iter().find(|r| r.commit == hex).map(|r| r.reason.clone())
}
