//! Codex as an agent: `codex exec --json` in the worktree, with its own sandbox
//! (docs/agents-wire.md has the wire details this follows).
//!
//! Success when the process exits 0 after a `turn.completed` and no `turn.failed`. Codex
//! reports tokens, not dollars: usage comes from `turn.completed` (cumulative over the
//! thread; each run is a fresh, ephemeral thread, so the last value is the run's), and
//! dollars from the versioned rate card below (source `rate_card`).
//!
//! Settings: `model`, `sandbox` (`read-only`, `workspace-write` (default), `danger-full-access`),
//! `timeout_s` (900), `base_url` (a Responses endpoint: adds a model provider for it) with
//! `api_key_env` (the variable holding its key, default `OPENAI_API_KEY`), `bin` (default
//! `codex`), and `usd_per_mtok_input` / `_cached_input` / `_output` to price a model the card
//! does not know.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::{model_prompt as prompt, one_line, process, program, verdict_of, Job, Outcome, Runtime, Unavailable};
use crate::event::{Cost, CostSource, RunPurpose, RunStatus};

#[derive(Debug)]
pub struct Codex;

pub const DEFAULT_MODEL: &str = "gpt-5.5";

/// The rate card's version: change it whenever a price below changes.
pub const RATE_CARD: &str = "openai-2026-11";

/// US dollars per million tokens: (input, cached input, output). Reasoning tokens are output.
pub fn rates(model: &str) -> Option<(f64, f64, f64)> {
    match model {
        "gpt-5.5" | "gpt-5" | "gpt-5-codex" => Some((1.25, 0.125, 10.0)),
        "gpt-5-mini" => Some((0.25, 0.025, 2.0)),
        "gpt-5-nano" => Some((0.05, 0.005, 0.4)),
        _ => None,
    }
}

impl Runtime for Codex {
    fn name(&self) -> &'static str {
        "codex"
    }

    fn pull(&self, job: &Job) -> Result<(), Unavailable> {
        program(&job.settings, "codex")?;
        let model = job.settings.get("model").map_or(DEFAULT_MODEL, String::as_str);
        if rates(model).is_none() && !job.settings.contains_key("usd_per_mtok_input") {
            return Err(Unavailable(format!(
                "rate card {RATE_CARD} has no price for model '{model}': set usd_per_mtok_input, usd_per_mtok_cached_input and usd_per_mtok_output"
            )));
        }
        match job.settings.get("sandbox").map(String::as_str) {
            None | Some("read-only" | "workspace-write" | "danger-full-access") => Ok(()),
            Some(other) => Err(Unavailable(format!("codex has no sandbox mode '{other}'"))),
        }
    }

    fn run(&self, job: &Job) -> Outcome {
        let bin = match program(&job.settings, "codex") {
            Ok(bin) => bin,
            Err(missing) => return Outcome::failed(missing.0),
        };
        let setting = |key: &str, default: &str| job.settings.get(key).cloned().unwrap_or_else(|| default.to_string());
        let model = setting("model", DEFAULT_MODEL);
        let sandbox = match job.purpose {
            RunPurpose::Work => setting("sandbox", "workspace-write"),
            RunPurpose::Review => "read-only".to_string(),
        };
        let mut command = Command::new(bin);
        command.current_dir(&job.workdir).args(["exec", "--json", "--ephemeral", "-s", &sandbox, "-m", &model]);
        command.args(["-c", "analytics.enabled=false", "-c", "check_for_update_on_startup=false", "--disable", "plugins"]);
        if let Some(url) = job.settings.get("base_url") {
            let key = setting("api_key_env", "OPENAI_API_KEY");
            command.args([
                "-c",
                &format!(
                    "model_providers.clutch={{name=\"clutch\",base_url=\"{url}\",wire_api=\"responses\",env_key=\"{key}\",request_max_retries=0,stream_max_retries=0}}"
                ),
                "-c",
                "model_provider=clutch",
            ]);
        }
        command.arg(prompt(job));
        let timeout = Duration::from_secs(setting("timeout_s", "900").parse().unwrap_or(900));
        let key_var = setting("api_key_env", "OPENAI_API_KEY");
        let pass = ["OPENAI_API_KEY", "CODEX_HOME", "OPENAI_BASE_URL", key_var.as_str()];
        let finished = match process::run_agent(command, job, &pass, b"", timeout) {
            Ok(finished) => finished,
            Err(err) => return Outcome::failed(format!("cannot start codex: {err}")),
        };
        let events: Vec<Value> = String::from_utf8_lossy(&finished.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let kind = |v: &Value| v.get("type").and_then(Value::as_str).unwrap_or("").to_string();
        let completed = events.iter().rev().find(|v| kind(v) == "turn.completed");
        let failed = events.iter().find(|v| kind(v) == "turn.failed");
        let message = events
            .iter()
            .rev()
            .filter(|v| kind(v) == "item.completed")
            .filter_map(|v| v.get("item"))
            .filter(|item| item.get("type").and_then(Value::as_str) == Some("agent_message"))
            .find_map(|item| item.get("text").and_then(Value::as_str))
            .unwrap_or("")
            .to_string();
        let mut cost = completed.and_then(|v| v.get("usage")).map(|u| cost_of(u, &model, &job.settings)).unwrap_or_default();
        cost.wall_ms = finished.elapsed.as_millis() as u64;
        let outcome = |status, summary: String, verdict| Outcome {
            status,
            exit_code: finished.exit_code(),
            summary,
            cost: cost.clone(),
            verdict,
            transcript: finished.transcript(),
            rate_card: Some(RATE_CARD.to_string()),
        };
        if finished.timed_out {
            return outcome(RunStatus::TimedOut, format!("codex killed after {}s", timeout.as_secs()), None);
        }
        if let Some(failed) = failed {
            let why = failed.pointer("/error/message").and_then(Value::as_str).unwrap_or("turn failed");
            return outcome(RunStatus::Failed, format!("codex: {}", one_line(why)), None);
        }
        if !finished.succeeded() || completed.is_none() {
            return outcome(RunStatus::Failed, format!("codex exited {:?}: {}", finished.exit_code(), finished.last_words()), None);
        }
        let verdict = (job.purpose == RunPurpose::Review).then(|| verdict_of(&message));
        outcome(RunStatus::Succeeded, one_line(&message), verdict)
    }
}

/// Tokens from a `turn.completed` usage, priced by the rate card (or the settings).
pub fn cost_of(usage: &Value, model: &str, settings: &std::collections::BTreeMap<String, String>) -> Cost {
    let n = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
    let input = n("input_tokens");
    let cached = n("cached_input_tokens").min(input);
    let output = n("output_tokens");
    let price = |key: &str| settings.get(key).and_then(|v| v.parse::<f64>().ok());
    let (rate_in, rate_cached, rate_out) = match (price("usd_per_mtok_input"), rates(model)) {
        (Some(rate_in), _) => {
            (rate_in, price("usd_per_mtok_cached_input").unwrap_or(rate_in), price("usd_per_mtok_output").unwrap_or(rate_in))
        }
        (None, Some(card)) => card,
        (None, None) => (0.0, 0.0, 0.0),
    };
    // Micro-dollars per token is dollars per million tokens.
    let usd_micros = ((input - cached) as f64 * rate_in + cached as f64 * rate_cached + output as f64 * rate_out).round() as u64;
    // OpenAI's input_tokens includes the cached and cache-written ones; clutch's fields do not
    // overlap (as for Claude): input is what was neither read from nor written to the cache.
    let cache_write = n("cache_write_input_tokens").min(input - cached);
    Cost {
        input_tokens: input - cached - cache_write,
        output_tokens: output,
        cache_read_tokens: cached,
        cache_write_tokens: cache_write,
        usd_micros,
        wall_ms: 0,
        source: CostSource::RateCard,
    }
}
