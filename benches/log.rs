//! Benchmarks of the org log, in-process (plain `std::time`, no framework).
//!
//! For each size N (default 1k, 10k and 100k events) it builds an org in `DIR/org-N/` through
//! the library: `git init`, `org::init`, a lead (Senior), four juniors and three projects, then
//! tasks that go through their life (created, assigned, started, done), appended with
//! `ops::append` in batches (one ref update per batch). The last K events are appended one by one
//! with `ops::transact`, as a command would, to time the per-event append. Then the repository is
//! packed with `git gc` and the harness times a cold verified replay (`replay::load_cold`), its
//! phases (walk, read, signature, JSON, reducer), batch signature verification, and a warm load
//! from the state cache; it notes peak memory. The repositories stay in `DIR` for the
//! process-level measurements of `benches/run.sh`; figures go to `DIR/results.json` and
//! `DIR/harness.md`.
//!
//! ```text
//! cargo bench --bench log -- [--dir DIR] [--batch 1000] [--one-by-one 200] [--runs 3] [SIZE…]
//! ```
//!
//! Sizes may be written `1000`, `10k` or `1m`. Under `cargo test` (no `--bench` argument) it
//! runs a small smoke build instead, so the test suite stays fast.

use std::collections::VecDeque;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;

use clutch::env::{format_time, Env};
use clutch::event::{Event, Payload, Role, TaskAssigned, TaskCreated, TaskStatus, TaskStatusChanged};
use clutch::ops::{self, org, replay, Ctx, Draft, Loaded, Written};
use clutch::sign::{PublicKey, Signed};
use clutch::state::{self, Verified};
use clutch::store::Store;

type Res<T> = Result<T, Box<dyn Error>>;

/// 2026-11-24T08:00:00Z: events are stamped from here on, 30 s per batch.
const T0: i64 = 1_795_507_200;
const JUNIORS: &[&str] = &["dev1", "dev2", "dev3", "dev4"];
const PROJECTS: &[&str] = &["core", "web", "infra"];
const LEAD: &str = "lead";

#[derive(Debug, Clone)]
struct Opts {
    sizes: Vec<u64>,
    dir: PathBuf,
    batch: usize,
    one_by_one: usize,
    runs: usize,
    smoke: bool,
}

fn parse_size(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let (digits, factor) = match lower.as_bytes().last()? {
        b'k' => (&lower[..lower.len() - 1], 1_000),
        b'm' => (&lower[..lower.len() - 1], 1_000_000),
        _ => (lower.as_str(), 1),
    };
    digits.replace('_', "").parse::<u64>().ok().map(|n| n * factor)
}

fn parse_args() -> Res<Opts> {
    let mut args = std::env::args().skip(1);
    let mut opts = Opts {
        sizes: Vec::new(),
        dir: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("clutch-bench"),
        batch: 1000,
        one_by_one: 200,
        runs: 3,
        smoke: true,
    };
    let number = |flag: &str, value: Option<String>| -> Res<usize> {
        value.and_then(|v| v.parse().ok()).ok_or_else(|| format!("{flag} takes a number").into())
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // cargo bench passes --bench; cargo test does not.
            "--bench" => opts.smoke = false,
            "--dir" => opts.dir = PathBuf::from(args.next().ok_or("--dir takes a path")?),
            "--batch" => opts.batch = number("--batch", args.next())?.max(1),
            "--one-by-one" => opts.one_by_one = number("--one-by-one", args.next())?,
            "--runs" => opts.runs = number("--runs", args.next())?.max(1),
            "-h" | "--help" => {
                println!("cargo bench --bench log -- [--dir DIR] [--batch N] [--one-by-one K] [--runs R] [SIZE…]");
                std::process::exit(0);
            }
            other if other.starts_with('-') => {
                // Flags cargo's test harness would understand (--nocapture, …) mean nothing here.
            }
            other => opts.sizes.push(parse_size(other).ok_or_else(|| format!("'{other}' is not a size (like 1000 or 10k)"))?),
        }
    }
    if opts.sizes.is_empty() {
        opts.sizes = vec![1_000, 10_000, 100_000];
    }
    Ok(opts)
}

fn main() -> Res<()> {
    let opts = parse_args()?;
    if opts.smoke {
        return smoke();
    }
    std::fs::create_dir_all(&opts.dir)?;
    let mut results = Vec::new();
    let mut markdown = None;
    for &size in &opts.sizes {
        eprintln!("== {size} events ==");
        let result = bench_size(&opts, size)?;
        results.push(result);
        let table = markdown_table(&results);
        std::fs::write(opts.dir.join("harness.md"), &table)?;
        std::fs::write(opts.dir.join("results.json"), serde_json::to_vec_pretty(&results)?)?;
        markdown = Some(table);
    }
    if let Some(table) = markdown {
        println!("\n{table}");
        eprintln!("results: {}", opts.dir.join("results.json").display());
    }
    Ok(())
}

/// Under `cargo test`: a tiny org through every phase, no timing printed beyond one line.
fn smoke() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let opts = Opts { sizes: vec![120], dir: dir.path().to_path_buf(), batch: 40, one_by_one: 5, runs: 1, smoke: true };
    let result = bench_size(&opts, 120)?;
    assert_eq!(result["events"], 120);
    println!("log bench smoke: built, packed and replayed a 120-event org (run `cargo bench --bench log` for figures)");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Building an org

#[derive(Debug, Clone)]
struct TaskRef {
    id: String,
    project: Option<String>,
}

impl TaskRef {
    fn draft(&self, payload: Payload) -> Draft {
        let mut draft = Draft::new(payload);
        draft.task = Some(self.id.clone());
        draft.project = self.project.clone();
        draft
    }
}

struct Builder {
    ctx: Ctx,
    home: PathBuf,
    t: i64,
    loaded: Loaded,
    lead_key: SigningKey,
    junior_keys: Vec<SigningKey>,
    /// Created, not yet assigned.
    open: VecDeque<TaskRef>,
    /// Per junior: assigned, not started; started, not done.
    assigned: Vec<VecDeque<TaskRef>>,
    started: Vec<VecDeque<TaskRef>>,
    /// Recently finished tasks, for dependencies of new ones.
    done: VecDeque<String>,
    created: u64,
    next_junior: usize,
    batches: u64,
    /// (events, seconds) of every batch.
    timings: Vec<(usize, f64)>,
}

fn git(dir: &Path, args: &[&str]) -> Res<()> {
    let status = Command::new("git").current_dir(dir).args(args).status()?;
    if !status.success() {
        return Err(format!("git {} failed in {}", args.join(" "), dir.display()).into());
    }
    Ok(())
}

impl Builder {
    /// `git init` and the org's founding events (9 events).
    fn found(root: &Path) -> Res<Builder> {
        if root.exists() {
            std::fs::remove_dir_all(root)?;
        }
        let repo = root.join("repo");
        let home = root.join("home");
        std::fs::create_dir_all(&repo)?;
        std::fs::create_dir_all(&home)?;
        git(&repo, &["init", "-q"])?;
        // clutch runs `git gc --auto` now and then; in the foreground it is timed with the
        // append that triggered it instead of racing the measurements that follow.
        git(&repo, &["config", "gc.autoDetach", "false"])?;
        let ctx = Ctx::new(Store::discover(&repo)?, Env::pinned(home.clone(), None, T0));
        org::init(&ctx, "Bench Org", "ceo", None)?;
        org::agent_add(&ctx, "ceo", LEAD, Role::Senior, None)?;
        for junior in JUNIORS {
            org::agent_add(&ctx, "ceo", junior, Role::Junior, None)?;
        }
        for project in PROJECTS {
            org::project_new(&ctx, LEAD, project, Some("bench project"))?;
        }
        let loaded = ctx.load()?;
        let key = |id: &str| -> Res<SigningKey> {
            let agent = loaded.state.agents.get(id).ok_or_else(|| format!("no agent {id}"))?;
            Ok(ctx.keys.load(id, &PublicKey::parse_openssh(&agent.public_key)?)?)
        };
        let lead_key = key(LEAD)?;
        let junior_keys = JUNIORS.iter().map(|j| key(j)).collect::<Res<Vec<_>>>()?;
        Ok(Builder {
            ctx,
            home,
            t: T0,
            loaded,
            lead_key,
            junior_keys,
            open: VecDeque::new(),
            assigned: vec![VecDeque::new(); JUNIORS.len()],
            started: vec![VecDeque::new(); JUNIORS.len()],
            done: VecDeque::new(),
            created: 0,
            next_junior: 0,
            batches: 0,
            timings: Vec::new(),
        })
    }

    fn events(&self) -> u64 {
        self.loaded.state.events + self.loaded.state.rejected.len() as u64
    }

    fn tick(&mut self) {
        self.t += 30;
        self.ctx.env = Env::pinned(self.home.clone(), None, self.t);
    }

    /// One `ops::append`: one ref update for the whole batch.
    fn append(&mut self, who: Option<usize>, drafts: Vec<Draft>) -> Res<Vec<Written>> {
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        self.tick();
        self.batches += 1;
        let (actor, key) = match who {
            None => (LEAD, &self.lead_key),
            Some(j) => (JUNIORS[j], &self.junior_keys[j]),
        };
        let loaded = std::mem::take(&mut self.loaded);
        let n = drafts.len();
        let start = Instant::now();
        let result = ops::append(&self.ctx, key, actor, loaded, drafts)?;
        self.timings.push((n, secs(start.elapsed())));
        match result {
            Ok((written, loaded)) => {
                self.loaded = loaded;
                Ok(written)
            }
            Err(_) => Err("refs/clutch/log moved under the bench".into()),
        }
    }

    fn new_task(&mut self) -> Draft {
        self.created += 1;
        let n = self.created;
        let after = if n % 10 == 0 { self.done.back().cloned().into_iter().collect() } else { Vec::new() };
        let description = (n % 5 == 0).then(|| format!("Details for task {n}: what is to be done, and how to tell it is done."));
        let mut draft =
            Draft::new(Payload::TaskCreated(TaskCreated { title: format!("Bench task {n}: make the thing work"), description, after }));
        draft.project = (n % 7 != 0).then(|| PROJECTS[(n as usize) % PROJECTS.len()].to_string());
        draft
    }

    /// Take up to `quota` tasks from the per-junior queues, round robin: (junior, task).
    fn take(queues: &mut [VecDeque<TaskRef>], quota: usize) -> Vec<(usize, TaskRef)> {
        let mut out = Vec::with_capacity(quota);
        while out.len() < quota && queues.iter().any(|q| !q.is_empty()) {
            for (j, queue) in queues.iter_mut().enumerate() {
                if out.len() < quota {
                    if let Some(task) = queue.pop_front() {
                        out.push((j, task));
                    }
                }
            }
        }
        out
    }

    /// About `budget` events: the lead creates and assigns, the juniors start and finish.
    fn round(&mut self, budget: usize) -> Res<()> {
        let quarter = budget / 4;
        // The lead: assign earlier tasks, create new ones.
        let assigns = quarter.min(self.open.len());
        let waiting_start: usize = self.assigned.iter().map(VecDeque::len).sum();
        let waiting_done: usize = self.started.iter().map(VecDeque::len).sum();
        // Work picked up in an earlier round: some tasks stay assigned or started for a while.
        let starts = quarter.min(waiting_start);
        let dones = quarter.min(waiting_done);
        let creates = budget - assigns - starts - dones;
        let mut drafts = Vec::with_capacity(creates + assigns);
        let mut to_assign = Vec::with_capacity(assigns);
        for _ in 0..assigns {
            let task = self.open.pop_front().expect("counted");
            let j = self.next_junior;
            self.next_junior = (j + 1) % JUNIORS.len();
            drafts.push(task.draft(Payload::TaskAssigned(TaskAssigned { assignee: JUNIORS[j].to_string(), claim: false })));
            to_assign.push((j, task));
        }
        let mut projects = Vec::with_capacity(creates);
        for _ in 0..creates {
            let draft = self.new_task();
            projects.push(draft.project.clone());
            drafts.push(draft);
        }
        let written = self.append(None, drafts)?;
        for (j, task) in to_assign {
            self.assigned[j].push_back(task);
        }
        for (w, project) in written.iter().skip(assigns).zip(projects) {
            let id = w.applied.created.clone().ok_or("TASK_CREATED made no id")?;
            self.open.push_back(TaskRef { id, project });
        }
        // The juniors: finish started tasks, start assigned ones; one batch each.
        let finishing = Self::take(&mut self.started, dones);
        let starting = Self::take(&mut self.assigned, starts);
        for j in 0..JUNIORS.len() {
            let mut drafts = Vec::new();
            let mut now_started = Vec::new();
            let mut now_done = Vec::new();
            for (_, task) in finishing.iter().filter(|(k, _)| *k == j) {
                drafts.push(task.draft(Payload::TaskStatusChanged(TaskStatusChanged { status: TaskStatus::Done, reason: None })));
                now_done.push(task.id.clone());
            }
            for (_, task) in starting.iter().filter(|(k, _)| *k == j) {
                drafts.push(task.draft(Payload::TaskStatusChanged(TaskStatusChanged { status: TaskStatus::InProgress, reason: None })));
                now_started.push(task.clone());
            }
            self.append(Some(j), drafts)?;
            self.started[j].extend(now_started);
            for id in now_done {
                self.done.push_back(id);
                if self.done.len() > 64 {
                    self.done.pop_front();
                }
            }
        }
        Ok(())
    }

    /// One `git clutch task new` worth of work, in-process: `ops::transact` by the lead.
    fn create_one(&mut self) -> Res<()> {
        self.tick();
        let draft = self.new_task();
        let (written, loaded) = ops::transact(&self.ctx, LEAD, |_| Ok(vec![draft.clone()]))?;
        let id = written.first().and_then(|w| w.applied.created.clone()).ok_or("TASK_CREATED made no id")?;
        self.open.push_back(TaskRef { id, project: draft.project.clone() });
        self.loaded = loaded;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn percentile(mut xs: Vec<f64>, p: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (xs.len() - 1) as f64).round() as usize;
    xs[rank.min(xs.len() - 1)]
}

/// Time `f` `runs` times; the median in seconds, and the last result.
fn timed<T>(runs: usize, mut f: impl FnMut() -> Res<T>) -> Res<(f64, T)> {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let out = f()?;
        times.push(secs(start.elapsed()));
        last = Some(out);
    }
    Ok((median(times), last.ok_or("no run")?))
}

/// Resident memory from /proc/self/status, in KiB: (current, peak).
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Reset the peak-RSS mark (Linux: `5` into clear_refs). False when the kernel refuses.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Bytes under `path`, as the disk holds them (blocks, like `du`).
fn disk_usage(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    let mut total = meta.blocks() * 512;
    if meta.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for entry in entries.flatten() {
                total += disk_usage(&entry.path());
            }
        }
    }
    total
}

/// Time spent in each step of a verified replay, measured one event at a time.
#[derive(Debug, Default)]
struct Phases {
    walk: f64,
    read: f64,
    sig_parse: f64,
    verify: f64,
    json: f64,
    apply: f64,
}

/// Replay the first-parent chain by hand with a clock around every step. Mirrors
/// `replay::advance` for a linear log (no merges), minus the metadata and Lamport checks.
fn replay_phases(repo: &Path) -> Res<(Phases, u64)> {
    let store = Store::open(&repo.join(".git"))?;
    let head = store.head()?.ok_or("no log")?;
    let mut phases = Phases::default();
    let start = Instant::now();
    let (mut chain, _) = store.first_parent_chain(head, None)?;
    chain.reverse();
    phases.walk = secs(start.elapsed());
    let mut state = state::State::default();
    let (mut read, mut sig_parse, mut verify, mut json, mut apply) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut applied = 0u64;
    for oid in chain {
        let t = Instant::now();
        let raw = store.read_event(oid)?;
        let t1 = Instant::now();
        let signed = Signed::parse(raw.signature.as_deref().ok_or("unsigned commit")?)?;
        let t2 = Instant::now();
        signed.verify(&raw.signed_payload)?;
        let t3 = Instant::now();
        let event = Event::from_json(raw.event_json.as_ref().map_err(Clone::clone)?)?;
        let t4 = Instant::now();
        let commit = raw.oid.to_string();
        let signer = signed.key.to_openssh();
        let files: Vec<(String, String)> = raw.files.iter().map(|(n, o)| (n.clone(), o.to_string())).collect();
        let verified = Verified { commit: &commit, signer: &signer, event: &event, files: &files, is_root: raw.parents.is_empty() };
        if state::apply(&mut state, &verified).is_ok() {
            applied += 1;
        }
        let t5 = Instant::now();
        read += t1 - t;
        sig_parse += t2 - t1;
        verify += t3 - t2;
        json += t4 - t3;
        apply += t5 - t4;
    }
    phases.read = secs(read);
    phases.sig_parse = secs(sig_parse);
    phases.verify = secs(verify);
    phases.json = secs(json);
    phases.apply = secs(apply);
    Ok((phases, applied))
}

fn bench_size(opts: &Opts, size: u64) -> Res<serde_json::Value> {
    let root = opts.dir.join(format!("org-{size}"));
    let repo = root.join("repo");
    let progress = |what: &str| {
        if !opts.smoke {
            eprintln!("  {what}");
        }
    };

    // Build: batches, then the last K events one by one.
    let build_start = Instant::now();
    let mut b = Builder::found(&root)?;
    let founding = b.events();
    let one_by_one = (opts.one_by_one as u64).min(size.saturating_sub(founding) / 10) as usize;
    let batched_target = size.saturating_sub(one_by_one as u64);
    if size < founding + one_by_one as u64 {
        return Err(format!("{size} events is too few: founding the org takes {founding}").into());
    }
    let batch_start = Instant::now();
    let batch_from = b.events();
    let mut next_report = 10_000;
    while b.events() < batched_target {
        // At least 20 rounds, so even a small org has tasks in every state.
        let round = opts.batch.min((size as usize / 20).max(20));
        let budget = ((batched_target - b.events()) as usize).min(round);
        b.round(budget)?;
        if b.events() >= next_report {
            let rate = (b.events() - batch_from) as f64 / secs(batch_start.elapsed());
            progress(&format!("built {} events ({rate:.0}/s)", b.events()));
            next_report += 10_000;
        }
    }
    let batch_secs = secs(batch_start.elapsed());
    let batched_events = b.events() - batch_from;
    let batches = b.batches;
    let big: Vec<(usize, f64)> = b.timings.iter().filter(|(n, _)| *n >= 200).copied().collect();
    let big_events: usize = big.iter().map(|(n, _)| n).sum();
    let big_secs: f64 = big.iter().map(|(_, s)| s).sum();
    let big_rate = if big.is_empty() { None } else { Some(big_events as f64 / big_secs) };
    progress(&format!("{batched_events} events in {batches} batches: {batch_secs:.1} s"));

    let mut per_event = Vec::with_capacity(one_by_one);
    for _ in 0..one_by_one {
        let start = Instant::now();
        b.create_one()?;
        per_event.push(secs(start.elapsed()));
    }
    if one_by_one > 0 {
        progress(&format!("{one_by_one} one-by-one appends: median {:.2} ms", median(per_event.clone()) * 1e3));
    }

    // Where a one-by-one append spends its time (the parts that can be timed on their own).
    let parts = {
        let n = 20;
        let (load, loaded) = timed(n, || Ok(b.ctx.load()?))?;
        let lead = loaded.state.agents.get(LEAD).ok_or("no lead")?;
        let public = PublicKey::parse_openssh(&lead.public_key)?;
        let (key_load, key) = timed(n, || Ok(b.ctx.keys.load(LEAD, &public)?))?;
        let head = loaded.head.ok_or("no head")?;
        let event = Event {
            actor: LEAD.into(),
            at: format_time(b.t),
            clock: loaded.head_clock + 1,
            project: Some("core".into()),
            task: None,
            refs: Vec::new(),
            cost: Default::default(),
            payload: Payload::TaskCreated(TaskCreated { title: "Timing only".into(), description: None, after: Vec::new() }),
        };
        let (prepare, _) = timed(n, || Ok(b.ctx.store.prepare(&event, &[], &[head], &key, b.t)?))?;
        let (cache_write, _) = timed(n, || {
            replay::write_cache(&b.ctx.store, &loaded);
            Ok(())
        })?;
        let (state_clone, _) = timed(n, || Ok(loaded.state.clone()))?;
        serde_json::json!({ "load_ms": load * 1e3, "key_load_ms": key_load * 1e3, "sign_prepare_ms": prepare * 1e3,
            "cache_write_ms": cache_write * 1e3, "state_clone_ms": state_clone * 1e3 })
    };
    let events = b.events();
    let rejected = b.loaded.state.rejected.len();
    if rejected > 0 || events != size {
        return Err(format!("built {events} events with {rejected} refused; expected {size} valid").into());
    }
    let tasks = b.loaded.state.tasks.len();
    let by_status = |status: TaskStatus| b.loaded.state.tasks.values().filter(|t| t.status == status).count();
    let task_status = serde_json::json!({
        "open": by_status(TaskStatus::Open), "assigned": by_status(TaskStatus::Assigned),
        "in_progress": by_status(TaskStatus::InProgress), "done": by_status(TaskStatus::Done),
    });
    let head = b.loaded.head.ok_or("no head")?;
    let build_secs = secs(build_start.elapsed());
    let built_state = b.loaded.state.clone();
    drop(b);

    // Pack.
    let loose_bytes = disk_usage(&repo.join(".git/objects"));
    let gc_start = Instant::now();
    git(&repo, &["gc", "--quiet"])?;
    let gc_secs = secs(gc_start.elapsed());
    let packed_bytes = disk_usage(&repo.join(".git/objects"));
    progress(&format!("packed {:.1} MB loose into {:.1} MB in {gc_secs:.1} s", loose_bytes as f64 / 1e6, packed_bytes as f64 / 1e6));

    // Cold verified replay, as `git clutch verify` does it.
    let (rss_before, _) = rss_kib();
    let peak_ok = reset_peak();
    let (cold, loaded) = timed(opts.runs, || {
        let store = Store::open(&repo.join(".git"))?;
        Ok(replay::load_cold(&store)?)
    })?;
    let (_, cold_peak) = rss_kib();
    if loaded.head != Some(head) || loaded.state != built_state {
        return Err("a cold replay did not reproduce the state the build computed".into());
    }
    drop(loaded);
    progress(&format!("cold verified replay: {:.3} s, {:.0} events/s", cold, size as f64 / cold));

    let (phases, applied) = replay_phases(&repo)?;
    if applied != size {
        return Err(format!("phase replay applied {applied} of {size} events").into());
    }

    // Warm: the cache is at the head (the last append wrote it).
    let store = Store::open(&repo.join(".git"))?;
    // Whatever the cache file is called this week: everything under `.git/clutch/`.
    let cache_bytes = std::fs::read_dir(store.cache_dir())
        .map(|dir| dir.flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum::<u64>())
        .unwrap_or(0);
    reset_peak();
    let (warm, loaded) = timed(opts.runs.max(5), || Ok(replay::load(&store)?))?;
    if loaded.head != Some(head) {
        return Err("the warm load did not come from the head".into());
    }
    let (list_json, bytes) = timed(opts.runs.max(5), || {
        let loaded = replay::load(&store)?;
        let mut tasks: Vec<_> = loaded.state.tasks.values().collect();
        tasks.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        Ok(serde_json::to_vec_pretty(&tasks)?.len())
    })?;
    let (_, warm_peak) = rss_kib();
    progress(&format!("warm load {:.2} ms, warm task list --json {:.2} ms ({} KB)", warm * 1e3, list_json * 1e3, bytes / 1000));

    let total = |p: &Phases| p.walk + p.read + p.sig_parse + p.verify + p.json + p.apply;
    Ok(serde_json::json!({
        "events": size,
        "tasks": tasks,
        "task_status": task_status,
        "build": {
            "total_s": build_secs,
            "batched_events": batched_events,
            "batches": batches,
            "batched_s": batch_secs,
            "batched_events_per_s": batched_events as f64 / batch_secs,
            "big_batches": big.len(),
            "big_batch_events_per_s": big_rate,
        },
        "one_by_one": {
            "events": one_by_one,
            "median_ms": median(per_event.clone()) * 1e3,
            "p90_ms": percentile(per_event.clone(), 90.0) * 1e3,
            "mean_ms": per_event.iter().sum::<f64>() / per_event.len().max(1) as f64 * 1e3,
            "events_per_s": per_event.len() as f64 / per_event.iter().sum::<f64>().max(f64::MIN_POSITIVE),
            "parts": parts,
        },
        "disk": { "loose_bytes": loose_bytes, "packed_bytes": packed_bytes, "gc_s": gc_secs, "state_cache_bytes": cache_bytes },
        "cold_replay": {
            "median_s": cold,
            "events_per_s": size as f64 / cold,
            "runs": opts.runs,
            "peak_rss_kib": if peak_ok { Some(cold_peak) } else { None },
            "rss_before_kib": rss_before,
        },
        "phases": {
            "walk_s": phases.walk, "read_s": phases.read, "sig_parse_s": phases.sig_parse, "verify_s": phases.verify,
            "json_s": phases.json, "apply_s": phases.apply, "sum_s": total(&phases),
            "verify_one_by_one_per_s": size as f64 / phases.verify,
        },
        "warm": {
            "load_ms": warm * 1e3,
            "task_list_json_ms": list_json * 1e3,
            "task_list_json_bytes": bytes,
            "peak_rss_kib": if peak_ok { Some(warm_peak) } else { None },
        },
    }))
}

// ---------------------------------------------------------------------------------------------
// Report

fn markdown_table(results: &[serde_json::Value]) -> String {
    let f = |v: &serde_json::Value, path: &str| -> f64 { v.pointer(path).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN) };
    let or_dash = |text: String| if text.contains("NaN") { "–".to_string() } else { text };
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: &str, cell: &dyn Fn(&serde_json::Value) -> String| {
        rows.push((name.to_string(), results.iter().map(|r| or_dash(cell(r))).collect()));
    };
    row("tasks (open / assigned / in progress / done)", &|r| {
        let n = |s: &str| f(r, &format!("/task_status/{s}"));
        format!("{} ({} / {} / {} / {})", f(r, "/tasks"), n("open"), n("assigned"), n("in_progress"), n("done"))
    });
    row("build, batched appends (events/s)", &|r| format!("{:.0}", f(r, "/build/batched_events_per_s")));
    row("events per batch (mean)", &|r| format!("{:.0}", f(r, "/build/batched_events") / f(r, "/build/batches")));
    row("… in batches of ≥ 200 events only (events/s)", &|r| format!("{:.0}", f(r, "/build/big_batch_events_per_s")));
    row("one-by-one `transact` append, median (ms)", &|r| format!("{:.2}", f(r, "/one_by_one/median_ms")));
    row("one-by-one `transact` append, p90 (ms)", &|r| format!("{:.2}", f(r, "/one_by_one/p90_ms")));
    row("one-by-one `transact` appends (events/s)", &|r| format!("{:.0}", f(r, "/one_by_one/events_per_s")));
    row("… of which: cached state load (ms)", &|r| format!("{:.2}", f(r, "/one_by_one/parts/load_ms")));
    row("… of which: state cache write (ms)", &|r| format!("{:.2}", f(r, "/one_by_one/parts/cache_write_ms")));
    row("… of which: key file load (ms)", &|r| format!("{:.3}", f(r, "/one_by_one/parts/key_load_ms")));
    row("… of which: build + sign commit (ms)", &|r| format!("{:.3}", f(r, "/one_by_one/parts/sign_prepare_ms")));
    row("objects before the final `git gc` (MB)", &|r| format!("{:.1}", f(r, "/disk/loose_bytes") / 1e6));
    row("objects after `git gc` (MB)", &|r| format!("{:.1}", f(r, "/disk/packed_bytes") / 1e6));
    row("`git gc` (s)", &|r| format!("{:.1}", f(r, "/disk/gc_s")));
    row("state cache under `.git/clutch/` (MB)", &|r| format!("{:.2}", f(r, "/disk/state_cache_bytes") / 1e6));
    row("cold verified replay (s)", &|r| format!("{:.3}", f(r, "/cold_replay/median_s")));
    row("**cold verified replay (events/s)**", &|r| format!("**{:.0}**", f(r, "/cold_replay/events_per_s")));
    row("… walk first-parent chain (s)", &|r| format!("{:.3}", f(r, "/phases/walk_s")));
    row("… read + parse commits and trees (s)", &|r| format!("{:.3}", f(r, "/phases/read_s")));
    row("… parse SSHSIG armor (s)", &|r| format!("{:.3}", f(r, "/phases/sig_parse_s")));
    row("… verify signatures one by one (s)", &|r| format!("{:.3}", f(r, "/phases/verify_s")));
    row("… decode event.json (s)", &|r| format!("{:.3}", f(r, "/phases/json_s")));
    row("… reducer (s)", &|r| format!("{:.3}", f(r, "/phases/apply_s")));
    row("warm load from cache (ms)", &|r| format!("{:.2}", f(r, "/warm/load_ms")));
    row("warm `task list --json` in-process (ms)", &|r| format!("{:.2}", f(r, "/warm/task_list_json_ms")));
    row("peak RSS of the harness during cold replay (MB)", &|r| format!("{:.1}", f(r, "/cold_replay/peak_rss_kib") / 1024.0));
    let mut out = String::from("| in-process | ");
    out += &results.iter().map(|r| format!("{} events", f(r, "/events"))).collect::<Vec<_>>().join(" | ");
    out += " |\n|---|";
    out += &"---:|".repeat(results.len());
    out += "\n";
    for (name, cells) in rows {
        out += &format!("| {name} | {} |\n", cells.join(" | "));
    }
    out
}
