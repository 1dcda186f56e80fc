//! Claude Code as an agent: `claude -p PROMPT --output-format stream-json --verbose` in the
//! worktree (docs/agents-wire.md has the wire details this follows).
//!
//! Success only when the process exits 0 and its final `result` line says `is_error: false`,
//! `subtype: "success"` and no permission denials (a denied tool still "succeeds" otherwise).
//! Cost is what the CLI reports: `total_cost_usd` (source `provider`) and the tokens of
//! `modelUsage` (the per-message `usage` lines repeat themselves and must not be summed).
//!
//! Settings: `model`, `allowed_tools` (default `Read,Write,Edit,Glob,Grep`; reviews get
//! `Read,Glob,Grep`; the policy's `tool_allowlist`, `sandbox` and `network` narrow them, see
//! [`tools`]), `max_turns` (20), `timeout_s` (900), `base_url` (→ `ANTHROPIC_BASE_URL`),
//! `bin` (default `claude` on PATH). The remaining budget becomes `--max-budget-usd`.

use std::process::Command;

use serde_json::Value;

use super::{model_prompt as prompt, one_line, process, program, verdict_of, Job, Outcome, Runtime, Unavailable};
use crate::event::{Cost, CostSource, RunPurpose, RunStatus};

#[derive(Debug)]
pub struct Claude;

pub const DEFAULT_MODEL: &str = "claude-sonnet-4-5-20250929";
/// How long a run may take without a `timeout_s` setting.
const DEFAULT_TIMEOUT_S: u64 = 900;

impl Runtime for Claude {
    fn name(&self) -> &'static str {
        "claude"
    }

    fn check(&self, job: &Job) -> Result<(), Unavailable> {
        tools(job)?;
        super::timeout(&job.settings, DEFAULT_TIMEOUT_S)?;
        Ok(())
    }

    fn pull(&self, job: &Job) -> Result<(), Unavailable> {
        self.check(job)?;
        program(&job.settings, "claude")?;
        // Claude Code treats everything under .git/ as sensitive and denies writes there.
        if job.workdir.components().any(|c| c.as_os_str() == ".git") {
            return Err(Unavailable(format!("claude cannot write in {}: it is under .git/", job.workdir.display())));
        }
        Ok(())
    }

    fn run(&self, job: &Job) -> Outcome {
        let bin = match program(&job.settings, "claude") {
            Ok(bin) => bin,
            Err(missing) => return Outcome::failed(missing.0),
        };
        let setting = |key: &str, default: &str| job.settings.get(key).cloned().unwrap_or_else(|| default.to_string());
        let (allowed, denied) = match tools(job) {
            Ok(tools) => tools,
            Err(refused) => return Outcome::failed(refused.0),
        };
        let mut command = Command::new(bin);
        command
            .current_dir(&job.workdir)
            .args(["-p", &prompt(job), "--output-format", "stream-json", "--verbose"])
            .args(["--allowedTools", &allowed.join(",")])
            // The checkout is the agents' own: settings, hooks and MCP servers an agent left in
            // `.claude/` or `.mcp.json` must not configure (or widen) a later run. Only the
            // user's settings load, and a tool outside the rules above is denied, not asked for.
            .args(["--setting-sources", "user", "--strict-mcp-config", "--permission-mode", "dontAsk"]);
        if !denied.is_empty() {
            command.args(["--disallowedTools", &denied.join(",")]);
        }
        command
            .args(["--max-turns", &setting("max_turns", "20")])
            .args(["--model", &setting("model", DEFAULT_MODEL)])
            .args(["--session-id", &session_id()])
            // Nothing but the model API: no telemetry, updates or error reports.
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("DISABLE_TELEMETRY", "1")
            .env("DISABLE_AUTOUPDATER", "1")
            .env("DISABLE_ERROR_REPORTING", "1")
            // Its default retries keep a dead endpoint busy for minutes.
            .env("CLAUDE_CODE_MAX_RETRIES", setting("max_retries", "1"));
        if let Some(budget) = job.budget_usd_micros {
            command.args(["--max-budget-usd", &format!("{:.6}", budget as f64 / 1e6)]);
        }
        if let Some(url) = job.settings.get("base_url") {
            command.env("ANTHROPIC_BASE_URL", url);
        }
        let timeout = match super::timeout(&job.settings, DEFAULT_TIMEOUT_S) {
            Ok(timeout) => timeout,
            Err(refused) => return Outcome::failed(refused.0),
        };
        let pass = ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_BASE_URL", "CLAUDE_CONFIG_DIR"];
        let finished = match process::run_agent(command, job, &pass, b"", timeout) {
            Ok(finished) => finished,
            Err(err) => return Outcome::failed(format!("cannot start claude: {err}")),
        };
        let result = String::from_utf8_lossy(&finished.stdout)
            .lines()
            .rev()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|v| v.get("type").and_then(Value::as_str) == Some("result"));
        let cost = result.as_ref().map(cost_of).unwrap_or_default();
        let cost = Cost { wall_ms: finished.elapsed.as_millis() as u64, ..cost };
        let transcript = finished.transcript();
        let exit_code = finished.exit_code();
        let outcome = |status, summary: String, verdict| Outcome {
            status,
            exit_code,
            summary,
            cost: cost.clone(),
            verdict,
            transcript: transcript.clone(),
            rate_card: None,
            learned_secrets: Vec::new(),
        };
        if finished.timed_out {
            return outcome(RunStatus::TimedOut, format!("claude killed after {}s", timeout.as_secs()), None);
        }
        let Some(result) = result else {
            return outcome(RunStatus::Failed, format!("claude gave no result (exit {exit_code:?}): {}", finished.last_words()), None);
        };
        let mut text = result.get("result").and_then(Value::as_str).unwrap_or("").trim().to_string();
        if text.is_empty() {
            // Stops such as max turns or budget carry their cause in errors[], not result.
            let errors: Vec<&str> =
                result.get("errors").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            text = errors.join("; ");
        }
        let subtype = result.get("subtype").and_then(Value::as_str).unwrap_or("");
        let is_error = result.get("is_error").and_then(Value::as_bool).unwrap_or(true);
        let denials = result.get("permission_denials").and_then(Value::as_array).map_or(0, Vec::len);
        if !finished.succeeded() || is_error || subtype != "success" || denials > 0 {
            let why = match (is_error, subtype, denials) {
                (_, _, n) if n > 0 => format!("{n} tool use(s) were denied permission"),
                (true, _, _) => format!("claude reported an error: {}", one_line(&text)),
                (_, "success", _) => format!("claude exited {exit_code:?}: {}", finished.last_words()),
                (_, other, _) => format!("claude stopped: {other}"),
            };
            return outcome(RunStatus::Failed, why, None);
        }
        let verdict = (job.purpose == RunPurpose::Review).then(|| verdict_of(&text));
        outcome(RunStatus::Succeeded, one_line(&text), verdict)
    }
}

/// Tools that write files.
const WRITE_TOOLS: &[&str] = &["Write", "Edit", "MultiEdit", "NotebookEdit"];
/// Tools that reach the network.
const NETWORK_TOOLS: &[&str] = &["WebFetch", "WebSearch"];

/// The tool a permission rule names: `Bash(git diff:*)` → `Bash`.
fn tool_of(rule: &str) -> &str {
    rule.split('(').next().unwrap_or(rule).trim()
}

/// The agent's policy compiled into Claude Code's permission rules: (allowed, disallowed).
///
/// The tools start from the `allowed_tools` setting (reviews: `review_tools`), or the policy's
/// `tool_allowlist` when it has one. `sandbox=read-only` (and every review) drops the tools
/// that write; `workspace-write` keeps Write/Edit (Claude Code confines them to the working
/// directory) but refuses `Bash`, which it cannot confine here. `network=none` refuses the
/// tools that reach the network and `Bash`; a host allowlist becomes `WebFetch(domain:HOST)`
/// rules. Whatever is refused is also listed in `--disallowedTools`, so neither a setting nor a
/// project's own `.claude/settings.json` can bring it back.
fn tools(job: &Job) -> Result<(Vec<String>, Vec<String>), Unavailable> {
    use super::policy::{Network, Policy, Sandbox};
    let policy = &job.policy;
    let configured = match job.purpose {
        RunPurpose::Work => job.settings.get("allowed_tools").map_or("Read,Write,Edit,Glob,Grep", String::as_str),
        RunPurpose::Review => job.settings.get("review_tools").map_or("Read,Glob,Grep", String::as_str),
    };
    let mut allowed: Vec<String> = match &policy.tool_allowlist {
        Some(list) => list.clone(),
        None => configured.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
    };
    let mut denied: Vec<String> = Vec::new();
    let read_only = job.purpose == RunPurpose::Review || policy.sandbox == Some(Sandbox::ReadOnly);
    if read_only || policy.sandbox == Some(Sandbox::WorkspaceWrite) || policy.network.as_ref().is_some_and(|n| *n != Network::Any) {
        // Bash can write anywhere and connect anywhere: no sandbox or network policy holds
        // with it, so it is refused outright when one is asked for.
        if allowed.iter().any(|t| tool_of(t) == "Bash") && policy.tool_allowlist.is_some() {
            return Err(Policy::cannot("claude", "its sandbox or network policy while Bash is in the tool allowlist"));
        }
        denied.push("Bash".into());
    }
    if read_only {
        denied.extend(WRITE_TOOLS.iter().map(|t| t.to_string()));
    }
    match &policy.network {
        Some(Network::None) => denied.extend(NETWORK_TOOLS.iter().map(|t| t.to_string())),
        Some(Network::Hosts(hosts)) => {
            denied.push("WebSearch".into());
            allowed.retain(|t| !NETWORK_TOOLS.contains(&tool_of(t)));
            allowed.extend(hosts.iter().map(|h| format!("WebFetch(domain:{h})")));
        }
        Some(Network::Any) | None => {}
    }
    allowed.retain(|t| !denied.iter().any(|d| d == tool_of(t)));
    denied.sort();
    denied.dedup();
    if allowed.is_empty() {
        return Err(Unavailable("the agent's policy leaves claude no tool at all: allow at least Read".into()));
    }
    Ok((allowed, denied))
}

/// Dollars as the CLI reported them, tokens from `modelUsage` summed over models.
pub fn cost_of(result: &Value) -> Cost {
    let usd = result.get("total_cost_usd").and_then(Value::as_f64).unwrap_or(0.0);
    let mut cost = Cost { usd_micros: (usd * 1e6).round() as u64, source: CostSource::Provider, ..Cost::default() };
    if let Some(models) = result.get("modelUsage").and_then(Value::as_object) {
        for usage in models.values() {
            let n = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
            cost.input_tokens += n("inputTokens");
            cost.output_tokens += n("outputTokens");
            cost.cache_read_tokens += n("cacheReadInputTokens");
            cost.cache_write_tokens += n("cacheCreationInputTokens");
        }
    }
    cost
}

/// A fresh UUID (v4) for `--session-id`.
fn session_id() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::getrandom(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::runtime::test_job;

    fn compiled(purpose: RunPurpose, settings: &[(&str, &str)]) -> Result<(Vec<String>, Vec<String>), Unavailable> {
        tools(&test_job(purpose, settings))
    }

    #[test]
    fn no_policy_keeps_the_configured_tools() {
        let (allowed, denied) = compiled(RunPurpose::Work, &[]).unwrap();
        assert_eq!(allowed, ["Read", "Write", "Edit", "Glob", "Grep"]);
        assert!(denied.is_empty());
        let (allowed, _) = compiled(RunPurpose::Work, &[("allowed_tools", "Read,Bash")]).unwrap();
        assert_eq!(allowed, ["Read", "Bash"]);
    }

    #[test]
    fn read_only_and_reviews_drop_every_writing_tool() {
        for (purpose, settings) in [(RunPurpose::Work, vec![("sandbox", "read-only")]), (RunPurpose::Review, vec![])] {
            let (allowed, denied) = compiled(purpose, &settings).unwrap();
            assert!(allowed.iter().all(|t| !WRITE_TOOLS.contains(&t.as_str()) && t != "Bash"), "{allowed:?}");
            for tool in ["Bash", "Edit", "Write"] {
                assert!(denied.iter().any(|d| d == tool), "{tool} is disallowed: {denied:?}");
            }
        }
    }

    #[test]
    fn network_policies_become_permission_rules() {
        let (allowed, denied) = compiled(RunPurpose::Work, &[("network", "none"), ("allowed_tools", "Read,WebFetch,Bash")]).unwrap();
        assert_eq!(allowed, ["Read"]);
        assert_eq!(denied, ["Bash", "WebFetch", "WebSearch"]);
        let (allowed, denied) = compiled(RunPurpose::Work, &[("network", "docs.rs"), ("tool_allowlist", "Read,WebFetch")]).unwrap();
        assert_eq!(allowed, ["Read", "WebFetch(domain:docs.rs)"]);
        assert_eq!(denied, ["Bash", "WebSearch"]);
    }

    #[test]
    fn bash_asked_for_under_a_sandbox_is_refused_not_dropped() {
        let refused =
            compiled(RunPurpose::Work, &[("sandbox", "workspace-write"), ("tool_allowlist", "Read,Bash(git diff:*)")]).unwrap_err();
        assert!(refused.0.contains("Bash"), "{}", refused.0);
        let (allowed, _) = compiled(RunPurpose::Work, &[("sandbox", "full-access"), ("tool_allowlist", "Read,Bash")]).unwrap();
        assert_eq!(allowed, ["Bash", "Read"], "the allowlist is kept sorted");
        let refused = compiled(RunPurpose::Work, &[("sandbox", "read-only"), ("tool_allowlist", "Write")]).unwrap_err();
        assert!(refused.0.contains("no tool"), "{}", refused.0);
    }
}
