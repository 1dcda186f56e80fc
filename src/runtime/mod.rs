//! Runtimes: how an agent's work is executed. One trait, three steps (DESIGN §6).
//!
//! The generic halves of `pull` and `push` live in `ops::run`: a worktree on the task branch,
//! the task and its context, the budget check before; a signed commit, the PR, the test run
//! and the RUN_* events after. A runtime implements [`Runtime::run`] and may extend
//! [`Runtime::pull`] (check it can run at all) and [`Runtime::push`] (collect extra results).
//! New runtimes plug in by implementing the trait and adding a line to [`find`].

pub mod claude;
pub mod codex;
pub mod docker;
pub mod http;
pub mod in_process;
pub mod keeper;
pub mod policy;
pub mod process;
pub mod subprocess;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::event::{Cost, RunPurpose, RunStatus, Verdict};

/// Everything a run gets.
#[derive(Clone, Serialize)]
pub struct Job {
    pub agent: String,
    pub purpose: RunPurpose,
    /// The worktree the agent works in (on the task branch, or at the PR head to review).
    pub workdir: PathBuf,
    pub task: TaskBrief,
    /// The PR under work or review, if any.
    pub pr: Option<String>,
    /// Review comments on the PR, oldest first: (reviewer, verdict, body).
    pub reviews: Vec<(String, Verdict, String)>,
    /// Outcomes of the tasks this one depends on: (task, title, status).
    pub dependencies: Vec<(String, String, String)>,
    /// The runtime's settings from the agent definition.
    pub settings: BTreeMap<String, String>,
    /// What to tell a model-driven agent.
    pub prompt: String,
    /// The least that any budget covering the run has left, in US dollars × 1e6.
    pub budget_usd_micros: Option<u64>,
    /// Variables for the agent's process: the definition's `env.NAME` settings, with
    /// `secret:…` values resolved from the vault. Never serialized.
    #[serde(skip)]
    pub env: Vec<(String, String)>,
    /// The secrets this run received; their values are kept only to redact them.
    #[serde(skip)]
    pub secrets: Vec<SecretUse>,
    /// What the definition allows (sandbox, tools, network): each runtime enforces it or
    /// refuses in `pull`.
    pub policy: policy::Policy,
    /// The environment of the clutch command that runs the job (its home and the vault's key),
    /// for runtimes that keep files of their own or tokens in the vault.
    #[serde(skip)]
    pub clutch: Option<crate::env::Env>,
}

/// By hand: settings and `env` hold resolved secret values, so they are shown by name only.
impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("agent", &self.agent)
            .field("purpose", &self.purpose)
            .field("workdir", &self.workdir)
            .field("task", &self.task.id)
            .field("pr", &self.pr)
            .field("settings", &self.settings.keys().collect::<Vec<_>>())
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("secrets", &self.secrets)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A secret handed to a run.
#[derive(Clone)]
pub struct SecretUse {
    pub name: String,
    pub fingerprint: String,
    pub value: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for SecretUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretUse").field("name", &self.name).field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

/// Secret values shorter than this are not searched for (they would match ordinary text);
/// the vault refuses to hand them to runs.
pub const MIN_SECRET_LEN: usize = 6;

impl Job {
    /// `text` with every secret value of the run replaced by `[secret:NAME]`.
    pub fn redact(&self, text: &str) -> String {
        redact(text, &self.secrets)
    }

    /// The job as JSON for the agent, secret values redacted (the program gets them through
    /// its environment, never in the job).
    pub fn wire_json(&self) -> Vec<u8> {
        let json = serde_json::to_string(self).unwrap_or_default();
        self.redact(&json).into_bytes()
    }
}

/// The job an agent definition describes, with no task yet: what [`Runtime::check`] judges
/// when the definition is written (`secret:` settings stay unresolved).
pub fn definition_job(agent: &str, purpose: RunPurpose, settings: BTreeMap<String, String>, policy: policy::Policy) -> Job {
    Job {
        agent: agent.to_string(),
        purpose,
        workdir: PathBuf::from("/nonexistent/clutch-definition-check"),
        task: TaskBrief { id: "t-0".into(), title: String::new(), description: None, project: None },
        pr: None,
        reviews: Vec::new(),
        dependencies: Vec::new(),
        policy,
        settings,
        prompt: String::new(),
        budget_usd_micros: None,
        env: Vec::new(),
        secrets: Vec::new(),
        clutch: None,
    }
}

/// A job for unit tests: `purpose`, these settings and the policy they ask for.
#[cfg(test)]
pub(crate) fn test_job(purpose: RunPurpose, settings: &[(&str, &str)]) -> Job {
    let settings: BTreeMap<String, String> = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let policy = policy::Policy::from_settings(&settings).expect("a valid policy");
    Job {
        workdir: PathBuf::from("/tmp/clutch-test-workdir"),
        task: TaskBrief { id: "t-1".into(), title: "a task".into(), description: None, project: None },
        prompt: "do it".into(),
        ..definition_job("jo", purpose, settings, policy)
    }
}

/// `text` with each secret's value replaced by `[secret:NAME]`.
///
/// A value is also searched for as it appears inside a JSON string (the agent CLIs' stream
/// transcripts and the job itself are JSON), so a value with a newline, a quote or a backslash
/// — a PEM key, a service account's JSON — is found there too. Longer forms go first, so a
/// secret that contains another is replaced whole.
pub fn redact(text: &str, secrets: &[SecretUse]) -> String {
    let mut forms: Vec<(zeroize::Zeroizing<String>, &str)> = Vec::new();
    for secret in secrets.iter().filter(|s| s.value.len() >= MIN_SECRET_LEN) {
        let raw = secret.value.as_str();
        forms.push((raw.to_string().into(), &secret.name));
        let quoted = zeroize::Zeroizing::new(serde_json::to_string(raw).unwrap_or_default());
        let escaped = quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or_default();
        if escaped != raw && !escaped.is_empty() {
            forms.push((escaped.to_string().into(), &secret.name));
        }
    }
    forms.sort_by_key(|(form, _)| std::cmp::Reverse(form.len()));
    let mut text = text.to_string();
    for (form, name) in forms {
        if text.contains(form.as_str()) {
            text = text.replace(form.as_str(), &format!("[secret:{name}]"));
        }
    }
    text
}

/// The last part of an output or transcript, kept bounded: when it grows past twice `keep`
/// bytes, the secret values are replaced first and then the front is dropped, so a cut never
/// leaves part of a secret behind.
pub(crate) struct Tail<'a> {
    bytes: Vec<u8>,
    keep: usize,
    secrets: &'a [SecretUse],
}

impl<'a> Tail<'a> {
    pub(crate) fn new(secrets: &'a [SecretUse], keep: usize) -> Self {
        Tail { bytes: Vec::new(), keep, secrets }
    }
    pub(crate) fn push(&mut self, more: &[u8]) {
        self.bytes.extend_from_slice(more);
        if self.bytes.len() > 2 * self.keep {
            let clean = redact(&String::from_utf8_lossy(&self.bytes), self.secrets).into_bytes();
            self.bytes = clean[clean.len().saturating_sub(self.keep)..].to_vec();
        }
    }
    pub(crate) fn text(&self) -> String {
        redact(&String::from_utf8_lossy(&self.bytes), self.secrets)
    }
}

/// The last non-empty line of `text`, trimmed: what a program said last.
pub fn last_line(text: &str) -> String {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string()
}

/// Why a program that exited unsuccessfully failed, from its exit code (`None`: a signal) and
/// the last thing it said.
pub fn failure_summary(exit_code: Option<i64>, said: &str) -> String {
    match exit_code {
        Some(127) => format!("command not found (exit 127): {said}"),
        Some(code) => format!("exit {code}: {said}"),
        None => format!("killed by a signal: {said}"),
    }
}

/// The `timeout_s` setting (whole seconds, 1 to a week), or `default_s` without one. Every
/// runtime reads it so, and checks it in `pull`, so a bad value refuses the run before it starts.
pub fn timeout(settings: &BTreeMap<String, String>, default_s: u64) -> Result<std::time::Duration, Unavailable> {
    const WEEK_S: u64 = 7 * 24 * 3600;
    match settings.get("timeout_s").map(|v| v.trim()) {
        None => Ok(std::time::Duration::from_secs(default_s)),
        Some(text) => match text.parse::<u64>() {
            Ok(seconds) if (1..=WEEK_S).contains(&seconds) => Ok(std::time::Duration::from_secs(seconds)),
            _ => Err(Unavailable(format!("timeout_s='{text}' is not a whole number of seconds from 1 to {WEEK_S}"))),
        },
    }
}

/// Where an agent finds and keeps its notes in the worktree (`MEMORY.md`, `WORKING.md`).
pub const MEMORY_DIR: &str = ".clutch-memory";

#[derive(Debug, Clone, Serialize)]
pub struct TaskBrief {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub project: Option<String>,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: RunStatus,
    pub exit_code: Option<i32>,
    pub summary: String,
    pub cost: Cost,
    /// For review runs: the verdict and its message.
    pub verdict: Option<(Verdict, String)>,
    /// What the agent printed, kept with the run.
    pub transcript: Vec<u8>,
    /// The rate card that priced the tokens, when clutch priced them.
    pub rate_card: Option<String>,
    /// Secret values the runtime came to hold during the run (codex's refreshed tokens):
    /// `ops::run` redacts them and keeps them out of commits like the job's own.
    pub learned_secrets: Vec<SecretUse>,
}

impl Outcome {
    /// A run that could not get going: nothing to commit, nothing spent but time.
    pub fn failed(summary: String) -> Outcome {
        Outcome {
            status: RunStatus::Failed,
            exit_code: None,
            summary,
            cost: Cost::default(),
            verdict: None,
            transcript: Vec::new(),
            rate_card: None,
            learned_secrets: Vec::new(),
        }
    }
}

/// Why a runtime cannot run at all (missing program, unenforceable setting).
#[derive(Debug, Clone)]
pub struct Unavailable(pub String);

pub trait Runtime: Send + Sync {
    fn name(&self) -> &'static str;

    /// What can be judged from the definition alone, on any machine: settings the runtime
    /// cannot use, a policy it cannot enforce. `agent add`/`agent config` ask this before they
    /// write (with a work job), and `pull` asks it again.
    fn check(&self, _job: &Job) -> Result<(), Unavailable> {
        Ok(())
    }

    /// Check, before anything is recorded, that this runtime can run the job here: [`Self::check`]
    /// and what this machine must have (the program, the engine, the image).
    fn pull(&self, job: &Job) -> Result<(), Unavailable> {
        self.check(job)
    }

    /// Execute the agent in `job.workdir`.
    fn run(&self, job: &Job) -> Outcome;

    /// Collect results beyond the worktree's changes (none by default).
    fn push(&self, _job: &Job, _outcome: &mut Outcome) {}
}

/// The runtime registered under `name`.
pub fn find(name: &str) -> Option<Box<dyn Runtime>> {
    match name {
        "in-process" => Some(Box::new(in_process::InProcess)),
        "subprocess" => Some(Box::new(subprocess::Subprocess)),
        "claude" => Some(Box::new(claude::Claude)),
        "codex" => Some(Box::new(codex::Codex)),
        "docker" => Some(Box::new(docker::Docker)),
        "http" => Some(Box::new(http::Http)),
        _ => None,
    }
}

/// Names of the registered runtimes.
pub const NAMES: &[&str] = &["in-process", "subprocess", "claude", "codex", "docker", "http"];

/// A program named by a setting (`bin=…`) or found on PATH.
pub fn program(settings: &BTreeMap<String, String>, default: &str) -> Result<PathBuf, Unavailable> {
    let name = settings.get("bin").cloned().unwrap_or_else(|| default.to_string());
    let path = PathBuf::from(&name);
    if name.contains('/') {
        return if path.is_file() { Ok(path) } else { Err(Unavailable(format!("{name} does not exist"))) };
    }
    crate::env::find_program(&name).ok_or_else(|| {
        Unavailable(format!("'{name}' is not on PATH: install it (see docs/runtimes.md) or set --runtime-opt bin=/path/to/{name}"))
    })
}

/// What a model-driven agent is told: the job's prompt, and for a review how to answer.
pub fn model_prompt(job: &Job) -> String {
    match job.purpose {
        RunPurpose::Work => job.prompt.clone(),
        RunPurpose::Review => format!(
            "{}\nRead the files of this checkout. Reply with APPROVE on the first line if it does what the task asks, or REQUEST CHANGES on the first line followed by what to change.",
            job.prompt
        ),
    }
}

/// A model's review: APPROVE on its first line, or anything else is a request for changes.
pub fn verdict_of(text: &str) -> (Verdict, String) {
    let first = text.lines().next().unwrap_or("").trim().to_ascii_uppercase();
    let verdict = if first.starts_with("APPROVE") { Verdict::Approve } else { Verdict::RequestChanges };
    (verdict, one_line(text))
}

/// Text on one line, at most 300 characters: for summaries kept in events.
pub fn one_line(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::{redact, timeout, SecretUse};
    use std::time::Duration;

    #[test]
    fn timeout_s_is_one_reading_for_every_runtime() {
        let of = |v: &str| timeout(&[("timeout_s".to_string(), v.to_string())].into(), 600);
        assert_eq!(timeout(&Default::default(), 600).ok(), Some(Duration::from_secs(600)));
        assert_eq!(of(" 90 ").ok(), Some(Duration::from_secs(90)));
        for bad in ["0", "-1", "1.5", "ten", "", "604801", "99999999999999999999"] {
            let refused = of(bad).expect_err(bad).0;
            assert!(refused.contains(&format!("timeout_s='{}'", bad.trim())), "{refused}");
        }
    }

    fn secret(name: &str, value: &str) -> SecretUse {
        SecretUse { name: name.into(), fingerprint: "00".into(), value: value.to_string().into() }
    }

    #[test]
    fn values_are_found_raw_and_as_json_escapes_them_longest_first() {
        let pem = "-----BEGIN KEY-----\nabc\"def\\ghi\n-----END KEY-----";
        let secrets = [secret("SHORT", "token-1234"), secret("LONG", "token-1234-and-more"), secret("PEM", pem)];
        let json = serde_json::json!({ "out": pem, "other": "token-1234-and-more / token-1234" }).to_string();
        let clean = redact(&json, &secrets);
        assert_eq!(clean, r#"{"other":"[secret:LONG] / [secret:SHORT]","out":"[secret:PEM]"}"#);
        assert_eq!(redact(&format!("raw: {pem}"), &secrets), "raw: [secret:PEM]");
        assert_eq!(redact("tok", &[secret("TINY", "tok")]), "tok", "values under the minimum are not searched for");
    }

    #[test]
    fn a_bounded_tail_never_keeps_part_of_a_secret() {
        let secret = "clutch-secret-value-0123456789";
        let secrets = vec![SecretUse { name: "S".into(), fingerprint: String::new(), value: zeroize::Zeroizing::new(secret.into()) }];
        const KEEP_BYTES: usize = 1 << 20;
        let mut tail = super::Tail::new(&secrets, KEEP_BYTES);
        let filler = vec![b'x'; KEEP_BYTES - 10];
        tail.push(&filler);
        tail.push(secret.as_bytes());
        tail.push(&filler);
        tail.push(&filler);
        let text = tail.text();
        assert!(text.len() <= 2 * KEEP_BYTES + secret.len());
        assert!(!text.contains("0123456789") && !text.contains("clutch-secret"), "no piece of the secret survives the cut");
    }
}
