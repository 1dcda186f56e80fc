//! Any program as an agent. The job goes in as JSON on stdin (and the basics in the
//! environment: `CLUTCH_TASK_ID`, `CLUTCH_TASK_TITLE`, `CLUTCH_PURPOSE`, `CLUTCH_PR`); the
//! program works in its current directory (the worktree) and may print one JSON object as the
//! last line of stdout:
//!
//! ```json
//! {"status": "succeeded", "summary": "…", "verdict": "approve", "message": "…",
//!  "cost": {"input_tokens": 0, "output_tokens": 0, "usd_micros": 0}}
//! ```
//!
//! Settings: `command` (run with `sh -c`), `timeout_s` (default 600). A program still running
//! at the timeout is killed and the run recorded as timed out.
//!
//! Policy: the program runs as clutch's own user with a cleared environment. `network=none` is
//! enforced with a network namespace of its own (`unshare --net`, util-linux: only a loopback
//! that is down; Unix sockets on the file system stay reachable); a host allowlist, a sandbox other than `full-access` and a tool allowlist
//! cannot be enforced on a plain process, so they are refused (use the docker runtime).

use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use super::policy::{Network, Policy, Sandbox};
use super::{process, Job, Outcome, Runtime, Unavailable};
use crate::event::{Cost, CostSource, RunPurpose, RunStatus, Verdict};

/// How long a run may take without a `timeout_s` setting.
const DEFAULT_TIMEOUT_S: u64 = 600;

/// `unshare` arguments for a network namespace of its own: root may make one directly; anyone
/// else maps themselves to root in a new user namespace first.
fn unshare_args() -> &'static [&'static str] {
    if rustix::process::geteuid().is_root() {
        &["--net", "--"]
    } else {
        &["--net", "--map-root-user", "--"]
    }
}

/// Whether this machine can give a program a network namespace of its own.
fn isolated_network() -> Result<(), Unavailable> {
    let probe = Command::new("unshare").args(unshare_args()).arg("true").output();
    match probe {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(Policy::cannot(
            "subprocess",
            &format!("network=none here (unshare --net failed: {})", String::from_utf8_lossy(&out.stderr).trim()),
        )),
        Err(err) => Err(Policy::cannot("subprocess", &format!("network=none here (cannot run unshare from util-linux: {err})"))),
    }
}

#[derive(Debug)]
pub struct Subprocess;

/// What a program may say on the last JSON line of its stdout (the contract above); the docker
/// runtime reads its containers' replies the same way.
#[derive(Debug, Default, Deserialize)]
pub struct Reply {
    pub status: Option<RunStatus>,
    pub summary: Option<String>,
    pub verdict: Option<Verdict>,
    pub message: Option<String>,
    cost: Option<ReplyCost>,
}

/// The reply on the last line of `stdout` that starts with `{`, or an empty one when there is
/// none or it is not a reply.
pub fn parse_reply(stdout: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(stdout);
    text.lines().rev().find(|l| l.trim_start().starts_with('{')).and_then(|l| serde_json::from_str(l).ok()).unwrap_or_default()
}

impl Reply {
    /// The run's cost: what the reply says it spent, and `wall` measured by clutch.
    pub fn cost(&self, wall: Duration) -> Cost {
        let wall_ms = wall.as_millis() as u64;
        match &self.cost {
            Some(c) => Cost {
                input_tokens: c.input_tokens,
                output_tokens: c.output_tokens,
                cache_read_tokens: c.cache_read_tokens,
                cache_write_tokens: c.cache_write_tokens,
                usd_micros: c.usd_micros,
                wall_ms,
                source: if c.usd_micros > 0 { CostSource::Provider } else { CostSource::None },
            },
            None => Cost { wall_ms, ..Cost::default() },
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct ReplyCost {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_read_tokens: u64,
    #[serde(default)]
    cache_write_tokens: u64,
    #[serde(default)]
    usd_micros: u64,
}

impl Runtime for Subprocess {
    fn name(&self) -> &'static str {
        "subprocess"
    }

    fn check(&self, job: &Job) -> Result<(), Unavailable> {
        let policy = &job.policy;
        if policy.sandbox.is_some_and(|s| s != Sandbox::FullAccess) {
            return Err(Policy::cannot("subprocess", "a sandbox (the program runs as clutch's own user; use the docker runtime)"));
        }
        if policy.tool_allowlist.is_some() {
            return Err(Policy::cannot("subprocess", "a tool allowlist (a program has no tools clutch can see)"));
        }
        if let Some(Network::Hosts(_)) = &policy.network {
            return Err(Policy::cannot("subprocess", "a host allowlist (use network=none or any)"));
        }
        super::timeout(&job.settings, DEFAULT_TIMEOUT_S)?;
        match job.settings.get("command") {
            Some(command) if !command.trim().is_empty() => Ok(()),
            _ => Err(Unavailable("the subprocess runtime needs a command setting (--runtime-opt command='…')".into())),
        }
    }

    fn pull(&self, job: &Job) -> Result<(), Unavailable> {
        self.check(job)?;
        if job.policy.network == Some(Network::None) {
            isolated_network()?;
        }
        Ok(())
    }

    fn run(&self, job: &Job) -> Outcome {
        let timeout = match super::timeout(&job.settings, DEFAULT_TIMEOUT_S) {
            Ok(timeout) => timeout,
            Err(refused) => return Outcome::failed(refused.0),
        };
        let command = job.settings.get("command").cloned().unwrap_or_default();
        let mut program = match job.policy.network {
            Some(Network::None) => {
                let mut unshare = Command::new("unshare");
                unshare.args(unshare_args()).args(["sh", "-c", &command]);
                unshare
            }
            _ => {
                let mut sh = Command::new("sh");
                sh.args(["-c", &command]);
                sh
            }
        };
        program
            .current_dir(&job.workdir)
            .env("CLUTCH_TASK_ID", &job.task.id)
            .env("CLUTCH_TASK_TITLE", &job.task.title)
            .env("CLUTCH_PURPOSE", if job.purpose == RunPurpose::Work { "work" } else { "review" })
            .env("CLUTCH_PR", job.pr.clone().unwrap_or_default());
        let input = job.wire_json();
        // Variables the program may have from clutch's environment (`pass_env=A,B`); their
        // values are redacted from its transcript.
        let pass_env = job.settings.get("pass_env").cloned().unwrap_or_default();
        let pass: Vec<&str> = pass_env.split(',').map(str::trim).filter(|v| !v.is_empty()).collect();
        let finished = match process::run_agent(program, job, &pass, &input, timeout) {
            Ok(finished) => finished,
            Err(err) => return Outcome::failed(format!("cannot start '{command}': {err}")),
        };
        let (out, timed_out, status) = (&finished.stdout, finished.timed_out, finished.status);
        let started_elapsed = finished.elapsed;
        let transcript = finished.transcript();
        let reply = parse_reply(out);
        let exit_code = status.and_then(|s| s.code());
        let succeeded = status.is_some_and(|s| s.success());
        let run_status = if timed_out {
            RunStatus::TimedOut
        } else if !succeeded {
            RunStatus::Failed
        } else {
            reply.status.unwrap_or(RunStatus::Succeeded)
        };
        let summary = if timed_out {
            format!("killed after {}s", timeout.as_secs())
        } else {
            reply.summary.clone().unwrap_or_else(|| {
                if succeeded {
                    super::last_line(&String::from_utf8_lossy(out))
                } else {
                    // Why it failed is usually the last thing it said on stderr.
                    super::failure_summary(exit_code.map(i64::from), &finished.last_words())
                }
            })
        };
        let cost = reply.cost(started_elapsed);
        let verdict = reply.verdict.map(|v| (v, reply.message.clone().unwrap_or_default()));
        Outcome { status: run_status, exit_code, summary, cost, verdict, transcript, rate_card: None, learned_secrets: Vec::new() }
    }
}
