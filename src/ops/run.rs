//! `git clutch run`: one agent run, pull → run → push.
//!
//! pull: the agent's definition and runtime, the budget gate (a run the remaining budget cannot
//! cover is refused and RUN_REFUSED recorded), a worktree on `clutch/<agent>/<task>` from the
//! base branch (or the PR's head when it is being reworked), the task, its dependencies'
//! outcomes and the PR's reviews. run: the runtime. push: the worktree's changes as a commit
//! signed with the agent's key, the PR opened or updated, the agent's test command recorded as
//! TEST_RUN, and RUN_STARTED / RUN_FINISHED with status, duration and cost.

use crate::event::{Cost, Payload, RunFinished, RunPurpose, RunRefused, RunStarted, RunStatus, SecretRef, TaskStatus, Verdict};
use crate::runtime::{self, Job, Outcome, TaskBrief};
use crate::sign::PublicKey;
use crate::state::{PrStatus, State, TestsBy};
use crate::store::ObjectId;
use crate::vault::Vault;
use crate::{Error, Result};
use runtime::policy::Policy;
use std::collections::BTreeMap;
use std::path::Path;

use super::{pr, task, test_run, transact, Ctx, Draft};

/// What one run did.
#[derive(Debug, serde::Serialize)]
pub struct RunReport {
    pub run: String,
    pub agent: String,
    pub task: String,
    pub purpose: RunPurpose,
    pub status: RunStatus,
    pub summary: String,
    /// The commit pushed to the task branch, if the run changed files.
    pub commit: Option<String>,
    pub pr: Option<String>,
    /// For review runs: the verdict recorded.
    pub verdict: Option<Verdict>,
    pub tests_passed: Option<bool>,
}

/// Whether `commit` carries a valid signature by `key` (`ssh-ed25519 AAAA…`).
fn signed_by(ctx: &Ctx, commit: ObjectId, key: &str) -> Result<bool> {
    let raw = ctx.store.read_event(commit)?;
    let Some(armored) = raw.signature.as_deref() else { return Ok(false) };
    Ok(crate::sign::Signed::parse(armored).is_ok_and(|sig| sig.key.to_openssh() == key && sig.verify(&raw.signed_payload).is_ok()))
}

/// The least that any dollar budget covering a run has left.
fn budget_left(state: &State, agent: &str, task: Option<&str>) -> Option<u64> {
    super::governance::applicable(state, agent, task).iter().filter_map(|r| r.remaining_usd_micros).map(|left| left.max(0) as u64).min()
}

/// An agent definition's settings made ready for a run: `secret:NAME` values taken from the
/// vault, `env.VAR` settings split off as the process's variables, the policy parsed. Runs
/// before anything is written, so a locked vault or a missing secret changes nothing.
struct Resolved {
    settings: BTreeMap<String, String>,
    env: Vec<(String, String)>,
    secrets: Vec<runtime::SecretUse>,
    policy: Policy,
}

fn resolve(ctx: &Ctx, agent: &str, def: &crate::state::RuntimeDef) -> Result<Resolved> {
    let settings = &def.settings;
    let fix = format!("fix it with: git clutch agent config {agent} --runtime-opt KEY=VALUE");
    let policy = Policy::from_settings(settings).map_err(|why| Error::user(format!("agent '{agent}': {why}")).hint(fix.clone()))?;
    // `auth=chatgpt` (codex): the ChatGPT sign-in `git clutch auth codex` keeps in the vault.
    let mut settings = settings.clone();
    if def.runtime == "codex" && settings.get("auth").map(|a| a.trim()) == Some("chatgpt") {
        settings.insert(runtime::codex::AUTH_JSON_SETTING.into(), format!("secret:{}", runtime::codex::AUTH_SECRET));
    }
    let settings = &settings;
    let wanted: Vec<&str> = settings.values().filter_map(|v| v.strip_prefix(crate::vault::SECRET_REF)).collect();
    let vault = match wanted.is_empty() {
        true => None,
        false => Some(Vault::open(&ctx.env).map_err(|err| err.context(format!("agent '{agent}' needs secrets ({})", wanted.join(", "))))?),
    };
    let mut out = Resolved { settings: BTreeMap::new(), env: Vec::new(), secrets: Vec::new(), policy };
    for (key, value) in settings {
        let value = match (value.strip_prefix(crate::vault::SECRET_REF), &vault) {
            (Some(name), Some(vault)) => {
                let entry = vault.get(name).filter(|_| !name.starts_with(crate::vault::KEY_PREFIX)).ok_or_else(|| {
                    let add = match name == runtime::codex::AUTH_SECRET {
                        true => "sign in with: git clutch auth codex".to_string(),
                        false => format!("add it with: git clutch secret set {name}"),
                    };
                    Error::user(format!("secret '{name}' (setting {key} of agent '{agent}') is not in the vault")).hint(add)
                })?;
                if entry.value.len() < runtime::MIN_SECRET_LEN {
                    return Err(Error::user(format!(
                        "secret '{name}' is shorter than {} characters: it could not be kept out of transcripts",
                        runtime::MIN_SECRET_LEN
                    ))
                    .hint(format!("set a real credential: git clutch secret set {name}")));
                }
                if !out.secrets.iter().any(|s| s.name == name) {
                    let fingerprint = entry.fingerprint();
                    out.secrets.push(runtime::SecretUse {
                        name: name.to_string(),
                        fingerprint: fingerprint.clone(),
                        value: zeroize::Zeroizing::new(entry.value.clone()),
                    });
                    // A JSON secret (Codex's auth.json) holds its tokens inside: each is
                    // redacted and kept out of commits on its own, too.
                    for token in json_tokens(&entry.value) {
                        out.secrets.push(runtime::SecretUse { name: name.to_string(), fingerprint: fingerprint.clone(), value: token });
                    }
                }
                entry.value.clone()
            }
            _ => value.clone(),
        };
        match key.strip_prefix("env.") {
            Some(var) => {
                let ok = var.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !ok {
                    return Err(Error::user(format!("agent '{agent}': setting '{key}' does not name an environment variable")).hint(fix));
                }
                out.env.push((var.to_string(), value));
            }
            None => {
                out.settings.insert(key.clone(), value);
            }
        }
    }
    Ok(out)
}

/// The string values under keys named like credentials (`…token`, `…key`, `…secret`) of a
/// secret that is a JSON document, at least 16 characters long.
fn json_tokens(value: &str) -> Vec<zeroize::Zeroizing<String>> {
    fn walk(value: &serde_json::Value, key: &str, out: &mut Vec<zeroize::Zeroizing<String>>) {
        match value {
            serde_json::Value::Object(map) => map.iter().for_each(|(k, v)| walk(v, k, out)),
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, key, out)),
            serde_json::Value::String(text) => {
                let key = key.to_ascii_lowercase();
                if text.len() >= 16 && ["token", "key", "secret"].iter().any(|k| key.ends_with(k)) {
                    out.push(zeroize::Zeroizing::new(text.clone()));
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if value.trim_start().starts_with('{') {
        if let Ok(doc) = serde_json::from_str::<serde_json::Value>(value) {
            walk(&doc, "", &mut out);
        }
    }
    out
}

/// The first path in the worktree (outside `.git` and the memory notes) that would carry a
/// secret value of the run into a commit: in a file's contents, in a file or directory name,
/// or as a symbolic link's target (git stores the target as a blob). Such changes are never
/// committed. The path comes back redacted, since it may itself hold the value.
fn leaked_secret(workdir: &Path, secrets: &[runtime::SecretUse]) -> Option<(String, String)> {
    use std::os::unix::ffi::OsStrExt;
    if secrets.is_empty() {
        return None;
    }
    let holding =
        |bytes: &[u8]| secrets.iter().find(|s| !s.value.is_empty() && bytes.windows(s.value.len()).any(|w| w == s.value.as_bytes()));
    let mut stack = vec![workdir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            // Only the top-level notes directory stays out of the commit (see the exclude file).
            if name == ".git" || (name == runtime::MEMORY_DIR && dir == workdir) {
                continue;
            }
            let Ok(kind) = entry.file_type() else { continue };
            let found = holding(name.as_bytes()).or_else(|| {
                if kind.is_symlink() {
                    std::fs::read_link(&path).ok().and_then(|target| holding(target.as_os_str().as_bytes()))
                } else if kind.is_file() {
                    std::fs::read(&path).ok().and_then(|bytes| holding(&bytes))
                } else {
                    None
                }
            });
            if let Some(s) = found {
                let shown = path.strip_prefix(workdir).unwrap_or(&path).display().to_string();
                return Some((s.name.clone(), runtime::redact(&shown, secrets)));
            }
            if kind.is_dir() {
                stack.push(path);
            }
        }
    }
    None
}

/// The outcome with every secret value of the run replaced by its name.
fn redact_outcome(job: &Job, outcome: &mut Outcome) {
    outcome.summary = job.redact(&outcome.summary);
    if let Some((_, body)) = &mut outcome.verdict {
        *body = job.redact(body);
    }
    let transcript = String::from_utf8_lossy(&outcome.transcript);
    let clean = job.redact(&transcript);
    if clean != transcript {
        outcome.transcript = clean.into_bytes();
    }
}

/// A run a signal stopped failed, whatever its runtime made of the killed agent: none of its
/// work is committed (its memory notes are kept, as for any failed run).
fn mark_interrupted(outcome: &mut Outcome) {
    if let Some(signal) = crate::interrupt::interrupted() {
        outcome.status = RunStatus::Failed;
        if !outcome.summary.starts_with("interrupted") {
            outcome.summary = format!("interrupted by {}", signal.name);
        }
    }
}

fn record(ctx: &Ctx, agent: &str, drafts: Vec<Draft>) -> Result<Vec<super::Written>> {
    Ok(transact(ctx, agent, |_| Ok(drafts.clone()))?.0)
}

/// The agent's runtime, or a recorded refusal.
fn runtime_of(ctx: &Ctx, state: &State, agent: &str, task: &str) -> Result<(Box<dyn runtime::Runtime>, crate::state::RuntimeDef)> {
    let def = state.agents.get(agent).and_then(|a| a.runtime.clone()).ok_or_else(|| {
        Error::user(format!("agent '{agent}' has no runtime"))
            .hint(format!("define one: git clutch agent config {agent} --runtime in-process --runtime-opt program=worker"))
    })?;
    match runtime::find(&def.runtime) {
        Some(rt) => Ok((rt, def)),
        None => {
            refuse(ctx, state, agent, task, &format!("no runtime named '{}' (known: {})", def.runtime, runtime::NAMES.join(", ")))?;
            Err(Error::user(format!("agent '{agent}' uses runtime '{}', which this clutch does not have", def.runtime)))
        }
    }
}

fn refuse(ctx: &Ctx, state: &State, agent: &str, task: &str, reason: &str) -> Result<()> {
    let mut draft = Draft::new(Payload::RunRefused(RunRefused { agent: agent.to_string(), reason: reason.to_string() }));
    if let Some(t) = state.tasks.get(task) {
        draft = draft.task(t);
    }
    record(ctx, agent, vec![draft])?;
    Ok(())
}

fn brief(state: &State, id: &str) -> TaskBrief {
    let t = &state.tasks[id];
    TaskBrief { id: t.id.clone(), title: t.title.clone(), description: t.description.clone(), project: t.project.clone() }
}

fn prompt(job: &Job) -> String {
    let mut text = format!("You are {}, working task {}: {}\n", job.agent, job.task.id, job.task.title);
    if let Some(description) = &job.task.description {
        text.push_str(&format!("\n{description}\n"));
    }
    for (id, title, status) in &job.dependencies {
        text.push_str(&format!("\nIt builds on {id} ({title}), which is {status}."));
    }
    for (by, verdict, body) in &job.reviews {
        text.push_str(&format!("\nReview by {by} ({verdict:?}): {body}"));
    }
    text.push_str("\n\nMake the change in the current directory. Do not commit: clutch commits and opens the PR.");
    text.push_str(&format!(
        "\nYour notes from earlier runs are in {0}/MEMORY.md (what to remember) and {0}/WORKING.md (this work in progress): read them first, and update them before you finish; they are kept for your next run, not committed with the task.\n",
        runtime::MEMORY_DIR
    ));
    text
}

/// Work `task` as `agent`: claim and start it if needed, run, push.
pub fn work(ctx: &Ctx, agent: &str, task_id: &str) -> Result<RunReport> {
    let loaded = ctx.load()?;
    let state = &loaded.state;
    let task = state.find_task(task_id).map_err(|why| Error::user(why).hint("see the tasks with: git clutch task list"))?.clone();
    let (rt, def) = runtime_of(ctx, state, agent, &task.id)?;
    let resolved = resolve(ctx, agent, &def)?;
    // The budget gate first: a refused run changes nothing but recording the refusal.
    if let Some(spent) = crate::state::spent_budget(state, agent, Some(&task.id)) {
        let reason = format!("the budget of {spent} is spent");
        refuse(ctx, state, agent, &task.id, &reason)?;
        return Err(Error::user(format!("run refused: {reason}")).hint("raise it with: git clutch budget set --scope … (CEO)"));
    }
    match task.assignee.as_deref() {
        None => {
            task::claim(ctx, agent, &task.id)?;
        }
        Some(a) if a == agent => {}
        Some(other) => return Err(Error::conflict(format!("task {} is assigned to {other}, not {agent}", task.id))),
    }
    let state = ctx.load()?.state;
    if state.tasks[&task.id].status == TaskStatus::Assigned {
        task::set_status(ctx, agent, &task.id, TaskStatus::InProgress, None, Cost::default())?;
    }
    let state = ctx.load()?.state;
    let open_pr = state.governance.prs.values().find(|p| p.task == task.id && p.author == agent && p.status == PrStatus::Open).cloned();
    let base_branch = def.settings.get("base").cloned().unwrap_or_else(|| "main".into());
    let branch = match &open_pr {
        Some(p) => p.head_branch.clone(),
        None => format!("clutch/{agent}/{}", task.id),
    };
    let start = match &open_pr {
        Some(p) => ObjectId::from_hex(p.head.as_bytes()).map_err(|_| Error::internal("bad PR head"))?,
        None => ctx
            .store
            .branch(&base_branch)?
            .ok_or_else(|| Error::user(format!("no branch '{base_branch}' to start from")).hint("commit to it first"))?,
    };
    let reviews = open_pr
        .as_ref()
        .map(|p| p.reviews.iter().filter(|r| r.head == p.head).map(|r| (r.by.clone(), r.verdict, r.body.clone())).collect())
        .unwrap_or_default();
    let dependencies = task
        .after
        .iter()
        .filter_map(|d| state.tasks.get(d))
        .map(|d| (d.id.clone(), d.title.clone(), d.status.as_str().to_string()))
        .collect();
    // From the worktree on, a signal is noted and the run cleaned up, not abandoned.
    let _interruptible = crate::interrupt::Guard::new();
    let worktree = ctx.store.branch_worktree(&branch, start, &format!("{agent}-{}", task.id))?;
    // The agent's memory, placed beside its work (excluded from the task's commit).
    let (memory_tip, mut memory) = ctx.store.read_memory(agent)?;
    if let Some(tip) = memory_tip {
        // Only notes the agent itself signed are handed to it.
        if !signed_by(ctx, tip, &state.agents[agent].public_key)? {
            memory.clear();
        }
    }
    let memory_dir = worktree.path().join(runtime::MEMORY_DIR);
    std::fs::create_dir_all(&memory_dir)?;
    for (name, content) in &memory {
        std::fs::write(memory_dir.join(name), content)?;
    }
    let mut job = Job {
        agent: agent.to_string(),
        purpose: RunPurpose::Work,
        workdir: worktree.path().to_path_buf(),
        task: brief(&state, &task.id),
        pr: open_pr.as_ref().map(|p| p.id.clone()),
        reviews,
        dependencies,
        settings: resolved.settings,
        prompt: String::new(),
        budget_usd_micros: None,
        env: resolved.env,
        secrets: resolved.secrets,
        policy: resolved.policy,
        clutch: Some(ctx.env.clone()),
    };
    job.prompt = prompt(&job);
    job.budget_usd_micros = budget_left(&state, agent, Some(&task.id));
    let started = match crate::interrupt::interrupted() {
        Some(signal) => Err(Error::interrupted(signal, format!("interrupted by {} before the run started: nothing was run", signal.name))),
        None => start_run(ctx, &state, rt.as_ref(), &def.runtime, &job, &start.to_string()),
    };
    let run_id = match started {
        Ok(id) => id,
        Err(err) => {
            drop(worktree);
            if open_pr.is_none() {
                let _ = ctx.store.delete_ref(&format!("refs/heads/{branch}"), start);
            }
            return Err(err);
        }
    };
    let mut outcome = rt.run(&job);
    rt.push(&job, &mut outcome);
    job.secrets.append(&mut outcome.learned_secrets);
    redact_outcome(&job, &mut outcome);
    mark_interrupted(&mut outcome);
    if outcome.status == RunStatus::Succeeded {
        if let Some((name, file)) = leaked_secret(&job.workdir, &job.secrets) {
            outcome.status = RunStatus::Failed;
            outcome.summary = format!("the agent wrote the value of secret {name} into {file}: nothing was committed");
        }
    }

    // push: commit what changed, signed by the agent.
    let mut commit = None;
    let mut pr_id = job.pr.clone();
    let mut tests_passed = None;
    if outcome.status == RunStatus::Succeeded {
        let tree = ctx.store.stage_all(&worktree)?;
        if tree != ctx.store.tree_of(start)? {
            let agent_state = &state.agents[agent];
            let key = ctx.keys.load(agent, &PublicKey::parse_openssh(&agent_state.public_key)?)?;
            let now = ctx.env.now();
            let message =
                format!("{}: {}\n\n{}\n\nClutch-Task: {}\nClutch-Run: {}\n", task.id, task.title, outcome.summary, task.id, run_id);
            let prepared = ctx.store.prepare_merge(tree, &[start], &message, agent, &key, now)?;
            ctx.store.write(&prepared)?;
            if ctx.store.update_ref(&format!("refs/heads/{branch}"), Some(start), prepared.oid, agent, now, "clutch: run")?.is_err() {
                return Err(Error::conflict(format!("branch {branch} moved during the run")));
            }
            commit = Some(prepared.oid);
            match &open_pr {
                Some(p) => {
                    pr::update(ctx, agent, &p.id, Cost::default())?;
                }
                None => {
                    let opened = pr::open(
                        ctx,
                        agent,
                        &pr::Open { task: &task.id, head_branch: Some(&branch), base: &base_branch, title: None, cost: Cost::default() },
                    )?;
                    pr_id = opened.applied.created.clone();
                }
            }
            // Tests are not started once a signal asked clutch to stop.
            let test = def.settings.get("test_command").filter(|_| crate::interrupt::interrupted().is_none());
            if let (Some(test), Some(pr_id)) = (test, &pr_id) {
                let command = vec!["sh".to_string(), "-c".to_string(), test.clone()];
                let run = test_run::Run { task: None, pr: Some(pr_id), command: &command, cost: Cost::default() };
                match test_run::run(ctx, agent, &run) {
                    Ok(tested) => tests_passed = Some(tested.passed),
                    // A signal stopped the tests: no verdict on them; the run is recorded below.
                    Err(_) if crate::interrupt::interrupted().is_some() => {}
                    Err(err) => return Err(err),
                }
            }
        }
    }
    // push: the memory back, when the agent changed it.
    let notes: Vec<(String, Vec<u8>)> = crate::store::MEMORY_FILES
        .iter()
        .filter_map(|name| std::fs::read(memory_dir.join(name)).ok().map(|content| (name.to_string(), content)))
        .map(|(name, content)| (name, job.redact(&String::from_utf8_lossy(&content)).into_bytes()))
        .collect();
    if !notes.is_empty() && notes != memory {
        let key = ctx.keys.load(agent, &PublicKey::parse_openssh(&state.agents[agent].public_key)?)?;
        ctx.store.write_memory(agent, memory_tip, &notes, &key, ctx.env.now(), &format!("after run {run_id} on {}", task.id))?;
    }
    drop(worktree);
    if commit.is_none() && open_pr.is_none() {
        // Nothing was pushed and no PR points at the branch: do not leave it behind.
        let _ = ctx.store.delete_ref(&format!("refs/heads/{branch}"), start);
    }
    finish(ctx, agent, &state, &task.id, &run_id, &outcome, commit)?;
    Ok(RunReport {
        run: run_id,
        agent: agent.to_string(),
        task: task.id.clone(),
        purpose: RunPurpose::Work,
        status: outcome.status,
        summary: outcome.summary,
        commit: commit.map(|c| c.to_string()),
        pr: pr_id,
        verdict: None,
        tests_passed,
    })
}

/// The runtime's own check, then RUN_STARTED; a failed check is recorded as RUN_REFUSED.
/// Returns the run's id.
fn start_run(ctx: &Ctx, state: &State, rt: &dyn runtime::Runtime, runtime: &str, job: &Job, base: &str) -> Result<String> {
    if let Err(unavailable) = rt.pull(job) {
        // A runtime may quote a setting, and settings hold resolved secrets.
        let reason = job.redact(&unavailable.0);
        refuse(ctx, state, &job.agent, &job.task.id, &reason)?;
        return Err(Error::user(format!("run refused: {reason}")));
    }
    let started = record(
        ctx,
        &job.agent,
        vec![Draft::new(Payload::RunStarted(RunStarted {
            agent: job.agent.clone(),
            runtime: runtime.to_string(),
            purpose: job.purpose,
            pr: job.pr.clone(),
            base: base.to_string(),
            secrets: {
                let mut refs: Vec<SecretRef> =
                    job.secrets.iter().map(|s| SecretRef { name: s.name.clone(), fingerprint: s.fingerprint.clone() }).collect();
                refs.dedup();
                refs
            },
            policy: (!job.policy.is_empty()).then(|| job.policy.hash()),
        }))
        .task(&state.tasks[&job.task.id])],
    )?;
    Ok(started[0].applied.created.clone().unwrap_or_default())
}

fn finish(ctx: &Ctx, agent: &str, state: &State, task: &str, run: &str, outcome: &Outcome, commit: Option<ObjectId>) -> Result<()> {
    let mut draft = Draft::new(Payload::RunFinished(RunFinished {
        run: run.to_string(),
        status: outcome.status,
        exit_code: outcome.exit_code,
        duration_ms: outcome.cost.wall_ms,
        summary: outcome.summary.chars().take(500).collect(),
        commit: commit.map(|c| c.to_string()),
        rate_card: outcome.rate_card.clone(),
    }));
    if let Some(t) = state.tasks.get(task) {
        draft = draft.task(t);
    }
    draft.cost = outcome.cost.clone();
    if !outcome.transcript.is_empty() {
        let tail = &outcome.transcript[outcome.transcript.len().saturating_sub(16 * 1024)..];
        draft.files = vec![("transcript.txt".to_string(), tail.to_vec())];
    }
    record(ctx, agent, vec![draft])?;
    Ok(())
}

/// Review a PR's head as `agent` (a Senior or the CEO with a runtime).
pub fn review(ctx: &Ctx, agent: &str, pr_id: &str) -> Result<RunReport> {
    let loaded = ctx.load()?;
    let state = &loaded.state;
    let pr = pr::find_pr(state, pr_id)?.clone();
    let (rt, def) = runtime_of(ctx, state, agent, &pr.task)?;
    let resolved = resolve(ctx, agent, &def)?;
    if let Some(spent) = crate::state::spent_budget(state, agent, Some(&pr.task)) {
        let reason = format!("the budget of {spent} is spent");
        refuse(ctx, state, agent, &pr.task, &reason)?;
        return Err(Error::user(format!("run refused: {reason}")));
    }
    let head = ObjectId::from_hex(pr.head.as_bytes()).map_err(|_| Error::internal("bad PR head"))?;
    // From the worktree on, a signal is noted and the run cleaned up, not abandoned.
    let _interruptible = crate::interrupt::Guard::new();
    let worktree = ctx.store.temp_worktree(head)?;
    let mut job = Job {
        agent: agent.to_string(),
        purpose: RunPurpose::Review,
        workdir: worktree.path().to_path_buf(),
        task: brief(state, &pr.task),
        pr: Some(pr.id.clone()),
        reviews: pr.reviews.iter().map(|r| (r.by.clone(), r.verdict, r.body.clone())).collect(),
        dependencies: Vec::new(),
        settings: resolved.settings,
        prompt: String::new(),
        budget_usd_micros: None,
        env: resolved.env,
        secrets: resolved.secrets,
        policy: resolved.policy,
        clutch: Some(ctx.env.clone()),
    };
    job.prompt = format!(
        "Review PR {} ({}) for task {}: {}. Answer approve or request changes, with a reason.\n",
        pr.id, pr.head_branch, pr.task, pr.title
    );
    if let Some(signal) = crate::interrupt::interrupted() {
        return Err(Error::interrupted(signal, format!("interrupted by {} before the review started: nothing was run", signal.name)));
    }
    let run_id = start_run(ctx, state, rt.as_ref(), &def.runtime, &job, &pr.head)?;
    let mut outcome = rt.run(&job);
    rt.push(&job, &mut outcome);
    job.secrets.append(&mut outcome.learned_secrets);
    redact_outcome(&job, &mut outcome);
    mark_interrupted(&mut outcome);
    drop(worktree);
    // When only a reviewer's tests count (policy tests_by=reviewers), a reviewer with a
    // test_command runs it on the head before its approval is recorded; when they fail, it
    // asks for changes instead, so the task goes back to its author rather than wait.
    let mut tests_passed = None;
    let policy = &state.governance.policy;
    let test = def.settings.get("test_command").filter(|_| crate::interrupt::interrupted().is_none());
    let approving = outcome.status == RunStatus::Succeeded && matches!(outcome.verdict, Some((Verdict::Approve, _)));
    if let (true, TestsBy::Reviewers, true, Some(test)) = (policy.require_tests, policy.tests_by, approving, test) {
        let command = vec!["sh".to_string(), "-c".to_string(), test.clone()];
        let run = test_run::Run { task: None, pr: Some(&pr.id), command: &command, cost: Cost::default() };
        match test_run::run(ctx, agent, &run) {
            Ok(tested) => {
                tests_passed = Some(tested.passed);
                if !tested.passed {
                    let exit = tested.exit_code.map_or("killed by a signal".to_string(), |c| format!("exit {c}"));
                    let why = format!(
                        "the tests fail on head {} ({exit}, TEST_RUN {})",
                        &pr.head[..10.min(pr.head.len())],
                        tested.written.commit
                    );
                    outcome.summary = why.clone();
                    outcome.verdict = Some((Verdict::RequestChanges, why));
                }
            }
            // A signal stopped the tests: no verdict; the run is recorded as interrupted.
            Err(_) if crate::interrupt::interrupted().is_some() => mark_interrupted(&mut outcome),
            Err(err) => {
                outcome.status = RunStatus::Failed;
                outcome.summary = format!("the reviewer's tests could not run: {}", err.message);
            }
        }
    }
    let mut verdict = None;
    if let (RunStatus::Succeeded, Some((v, body))) = (outcome.status, &outcome.verdict) {
        let reviewed = pr::review(ctx, agent, &pr.id, *v, body, Cost::default())?;
        verdict = Some(if reviewed.downgraded { Verdict::Comment } else { *v });
    }
    let state = ctx.load()?.state;
    finish(ctx, agent, &state, &pr.task, &run_id, &outcome, None)?;
    Ok(RunReport {
        run: run_id,
        agent: agent.to_string(),
        task: pr.task.clone(),
        purpose: RunPurpose::Review,
        status: outcome.status,
        summary: outcome.summary,
        commit: None,
        pr: Some(pr.id.clone()),
        verdict,
        tests_passed,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_secrets_yield_their_tokens_and_nothing_else() {
        let auth = r#"{"OPENAI_API_KEY": null, "tokens": {"id_token": "eyJhbGciOi.abcdefghijklmnop", "access_token": "at-0123456789abcdef",
            "refresh_token": "short", "account_id": "acct-0123456789abcdef"}, "clutch_issuer": "http://127.0.0.1:4444"}"#;
        let tokens: Vec<String> = super::json_tokens(auth).iter().map(|t| t.to_string()).collect();
        assert_eq!(tokens, ["at-0123456789abcdef", "eyJhbGciOi.abcdefghijklmnop"]);
        assert!(super::json_tokens("sk-not-json-0123456789").is_empty());
    }
}
