//! Codex as an agent: `codex exec --json` in the worktree, with its own sandbox
//! (docs/agents-wire.md has the wire details this follows, docs/runtime-codex.md the settings).
//!
//! Success when the process exits 0 after a `turn.completed` and no `turn.failed`. Codex
//! reports tokens, not dollars: usage comes from `turn.completed` (cumulative over the
//! thread; each run is a fresh, ephemeral thread, so the last value is the run's), and
//! dollars from the versioned rate card below (source `rate_card`).
//!
//! Settings: `model`, `timeout_s` (900), `base_url` (a Responses endpoint: adds a model
//! provider for it) with `api_key_env` (the variable holding its key, default
//! `OPENAI_API_KEY`), `auth` (`api_key`, the default, or `chatgpt`), `bin` (default `codex`),
//! and `usd_per_mtok_input` / `_cached_input` / `_output` to price a model the card does not
//! know.
//!
//! The policy compiles into codex's own sandbox: `sandbox` → `-s read-only | workspace-write |
//! danger-full-access` (reviews always read-only), `network` none/any →
//! `sandbox_workspace_write.network_access=false/true`. What codex cannot enforce is refused
//! in `pull`: a tool allowlist (codex has none), a host allowlist (its network is on or off),
//! network any under read-only (that sandbox has no network), network none under full access
//! (no sandbox to cut it).
//!
//! `auth=chatgpt` runs codex signed in with the ChatGPT tokens `git clutch auth codex` keeps
//! in the vault ([`AUTH_SECRET`], handed to the job by `ops::run` as the setting
//! [`AUTH_JSON_SETTING`]). Each run gets its own CODEX_HOME: a fresh 0700 directory under
//! `$CLUTCH_HOME/tmp` holding that `auth.json` (0600), removed when the run ends however it
//! ends. Tokens codex refreshed meanwhile are written back to the vault first (unless the
//! vault's entry changed during the run: the newer sign-in wins), and every token value, old
//! and new, is redacted from what the run leaves. Without `auth=chatgpt` nothing is read from
//! the vault: the run uses an API key, and the user's own CODEX_HOME.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use zeroize::Zeroizing;

use super::policy::{Network, Policy, Sandbox};
use super::{model_prompt as prompt, one_line, process, program, verdict_of, Job, Outcome, Runtime, SecretUse, Unavailable};
use crate::event::{Cost, CostSource, RunPurpose, RunStatus};

#[derive(Debug)]
pub struct Codex;

pub const DEFAULT_MODEL: &str = "gpt-5.5";
/// How long a run may take without a `timeout_s` setting.
const DEFAULT_TIMEOUT_S: u64 = 900;

/// The rate card's version: change it whenever a price below changes.
pub const RATE_CARD: &str = "openai-2026-11";

/// The vault entry holding codex's `auth.json` for a ChatGPT sign-in (`git clutch auth codex`
/// writes it; `git clutch secret set codex.auth < ~/.codex/auth.json` imports one).
pub const AUTH_SECRET: &str = "codex.auth";

/// The setting `ops::run` fills with the vault's [`AUTH_SECRET`] when an agent has `auth=chatgpt`.
pub const AUTH_JSON_SETTING: &str = "auth_json";

/// OpenAI's issuer: the one codex refreshes tokens with unless told otherwise.
pub const DEFAULT_ISSUER: &str = "https://auth.openai.com";

/// US dollars per million tokens: (input, cached input, output). Reasoning tokens are output.
pub fn rates(model: &str) -> Option<(f64, f64, f64)> {
    match model {
        "gpt-5.5" | "gpt-5" | "gpt-5-codex" => Some((1.25, 0.125, 10.0)),
        "gpt-5-mini" => Some((0.25, 0.025, 2.0)),
        "gpt-5-nano" => Some((0.05, 0.005, 0.4)),
        _ => None,
    }
}

/// How a run authenticates.
enum Auth {
    /// An API key from the environment (`api_key_env`), and the user's CODEX_HOME.
    ApiKey,
    /// The vault's ChatGPT tokens, in a CODEX_HOME of the run's own.
    Chatgpt(AuthFile),
}

fn auth_of(job: &Job) -> Result<Auth, Unavailable> {
    match job.settings.get("auth").map(|a| a.trim()) {
        None | Some("api_key") => Ok(Auth::ApiKey),
        Some("chatgpt") => {
            if job.settings.contains_key("api_key_env") {
                return Err(Unavailable(
                    "codex settings auth=chatgpt and api_key_env both name credentials: remove api_key_env (ChatGPT tokens come from the vault) or set auth=api_key".into(),
                ));
            }
            let json = job.settings.get(AUTH_JSON_SETTING).ok_or_else(|| {
                Unavailable(format!(
                    "codex auth=chatgpt, but the vault's {AUTH_SECRET} was not handed to the run: sign in with git clutch auth codex"
                ))
            })?;
            AuthFile::parse(json).map(Auth::Chatgpt).map_err(|why| {
                Unavailable(format!("the vault's {AUTH_SECRET} is not a codex auth.json with ChatGPT tokens ({why}): sign in again with git clutch auth codex"))
            })
        }
        Some(other) => Err(Unavailable(format!("codex auth '{other}' is not api_key or chatgpt"))),
    }
}

/// Codex's `auth.json` for a ChatGPT sign-in (openai/codex `login/src/auth/storage.rs`,
/// `AuthDotJson`), plus `clutch_issuer` when the tokens come from another issuer than
/// OpenAI's (codex ignores the field; clutch points codex's token refresh there).
pub struct AuthFile {
    pub id_token: Zeroizing<String>,
    pub access_token: Zeroizing<String>,
    pub refresh_token: Zeroizing<String>,
    pub account_id: Option<String>,
    /// `OPENAI_API_KEY`: what the issuer gave for the id_token, if anything.
    pub api_key: Option<Zeroizing<String>>,
    /// RFC 3339.
    pub last_refresh: String,
    pub issuer: Option<String>,
}

impl std::fmt::Debug for AuthFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthFile").field("account_id", &self.account_id).field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

impl AuthFile {
    /// The JSON codex reads.
    pub fn to_json(&self) -> Value {
        let mut json = serde_json::json!({
            "auth_mode": "chatgpt",
            "OPENAI_API_KEY": self.api_key.as_ref().map(|k| k.as_str()),
            "tokens": {
                "id_token": self.id_token.as_str(),
                "access_token": self.access_token.as_str(),
                "refresh_token": self.refresh_token.as_str(),
                "account_id": self.account_id,
            },
            "last_refresh": self.last_refresh,
        });
        if let (Some(issuer), Some(object)) = (&self.issuer, json.as_object_mut()) {
            object.insert("clutch_issuer".into(), Value::String(issuer.clone()));
        }
        json
    }

    /// An `auth.json` with ChatGPT tokens; `Err` says what is missing.
    pub fn parse(text: &str) -> Result<AuthFile, String> {
        let json: Value = serde_json::from_str(text).map_err(|_| "not JSON".to_string())?;
        if let Some(mode) = json.get("auth_mode").and_then(Value::as_str) {
            if mode != "chatgpt" {
                return Err(format!("auth_mode is '{mode}', not chatgpt"));
            }
        }
        let tokens = json.get("tokens").filter(|t| t.is_object()).ok_or("no tokens")?;
        let token = |name: &str| -> Result<Zeroizing<String>, String> {
            tokens
                .get(name)
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(|t| Zeroizing::new(t.to_string()))
                .ok_or(format!("no {name}"))
        };
        Ok(AuthFile {
            id_token: token("id_token")?,
            access_token: token("access_token")?,
            refresh_token: token("refresh_token")?,
            account_id: tokens.get("account_id").and_then(Value::as_str).map(str::to_string),
            api_key: json.get("OPENAI_API_KEY").and_then(Value::as_str).filter(|k| !k.is_empty()).map(|k| Zeroizing::new(k.to_string())),
            last_refresh: json.get("last_refresh").and_then(Value::as_str).unwrap_or_default().to_string(),
            issuer: json.get("clutch_issuer").and_then(Value::as_str).map(|i| i.trim_end_matches('/').to_string()),
        })
    }

    /// The values that must never be seen: each token, and the API key.
    fn secrets(&self) -> Vec<SecretUse> {
        let mut values = vec![&self.id_token, &self.access_token, &self.refresh_token];
        values.extend(self.api_key.as_ref());
        values
            .into_iter()
            .map(|value| SecretUse { name: AUTH_SECRET.to_string(), fingerprint: String::new(), value: value.clone() })
            .collect()
    }

    fn same_tokens(&self, other: &AuthFile) -> bool {
        *self.id_token == *other.id_token
            && *self.access_token == *other.access_token
            && *self.refresh_token == *other.refresh_token
            && self.api_key.as_deref() == other.api_key.as_deref()
            && self.account_id == other.account_id
    }
}

/// What the policy asks of codex's sandbox: the `-s` mode and, when it matters, whether the
/// workspace-write sandbox lets commands reach the network.
#[derive(Debug, PartialEq, Eq)]
pub struct Compiled {
    pub sandbox: &'static str,
    pub network_access: Option<bool>,
    /// The policy asked for `workspace-write`, which means the checkout only: codex's
    /// workspace sandbox also lets commands write `/tmp`, `$TMPDIR` and the `writable_roots`
    /// of the user's config, which are then turned off.
    pub checkout_only: bool,
}

/// The policy in codex's terms, or what codex cannot enforce. Reviews always run read-only
/// (and so without network, which is stricter than any policy).
pub fn compile(policy: &Policy, purpose: RunPurpose) -> Result<Compiled, Unavailable> {
    if policy.tool_allowlist.is_some() {
        return Err(Policy::cannot(
            "codex",
            "a tool allowlist (codex has no per-tool allowlist; its sandbox decides what commands may do)",
        ));
    }
    if let Some(Network::Hosts(_)) = &policy.network {
        return Err(Policy::cannot(
            "codex",
            "a network host allowlist (codex's sandbox turns the network on or off, it cannot restrict hosts)",
        ));
    }
    let sandbox = match purpose {
        RunPurpose::Review => Sandbox::ReadOnly,
        RunPurpose::Work => policy.sandbox.unwrap_or(Sandbox::WorkspaceWrite),
    };
    let network = policy.network.as_ref();
    let compiled = match (sandbox, network) {
        (Sandbox::WorkspaceWrite, network) => Compiled {
            sandbox: "workspace-write",
            network_access: network.map(|n| *n == Network::Any),
            checkout_only: policy.sandbox == Some(Sandbox::WorkspaceWrite),
        },
        (Sandbox::ReadOnly, Some(Network::Any)) if purpose == RunPurpose::Work => {
            return Err(Policy::cannot("codex", "network any under the read-only sandbox (it has no network): use sandbox=workspace-write"))
        }
        (Sandbox::ReadOnly, _) => Compiled { sandbox: "read-only", network_access: None, checkout_only: false },
        (Sandbox::FullAccess, Some(Network::None)) => {
            return Err(Policy::cannot("codex", "network none with full access (danger-full-access has no sandbox to cut the network)"))
        }
        (Sandbox::FullAccess, _) => Compiled { sandbox: "danger-full-access", network_access: None, checkout_only: false },
    };
    Ok(compiled)
}

impl Runtime for Codex {
    fn name(&self) -> &'static str {
        "codex"
    }

    fn check(&self, job: &Job) -> Result<(), Unavailable> {
        let model = job.settings.get("model").map_or(DEFAULT_MODEL, String::as_str);
        if rates(model).is_none() && !job.settings.contains_key("usd_per_mtok_input") {
            return Err(Unavailable(format!(
                "rate card {RATE_CARD} has no price for model '{model}': set usd_per_mtok_input, usd_per_mtok_cached_input and usd_per_mtok_output"
            )));
        }
        compile(&job.policy, job.purpose)?;
        super::timeout(&job.settings, DEFAULT_TIMEOUT_S)?;
        Ok(())
    }

    fn pull(&self, job: &Job) -> Result<(), Unavailable> {
        self.check(job)?;
        program(&job.settings, "codex")?;
        // The ChatGPT tokens come from the vault at run time.
        auth_of(job)?;
        Ok(())
    }

    fn run(&self, job: &Job) -> Outcome {
        let bin = match program(&job.settings, "codex") {
            Ok(bin) => bin,
            Err(missing) => return Outcome::failed(missing.0),
        };
        let (compiled, auth) = match compile(&job.policy, job.purpose).and_then(|c| Ok((c, auth_of(job)?))) {
            Ok(ready) => ready,
            Err(refused) => return Outcome::failed(refused.0),
        };
        let setting = |key: &str, default: &str| job.settings.get(key).cloned().unwrap_or_else(|| default.to_string());
        let model = setting("model", DEFAULT_MODEL);
        let mut command = Command::new(bin);
        command.current_dir(&job.workdir).args(["exec", "--json", "--ephemeral", "-s", compiled.sandbox, "-m", &model]);
        // No plugins, and no ChatGPT apps (connectors reach the user's accounts through
        // chatgpt.com, outside the policy): the agent has the model and its sandbox.
        command.args([
            "-c",
            "analytics.enabled=false",
            "-c",
            "check_for_update_on_startup=false",
            "--disable",
            "plugins",
            "--disable",
            "apps",
        ]);
        if let Some(network) = compiled.network_access {
            command.args(["-c", &format!("sandbox_workspace_write.network_access={network}")]);
        }
        if compiled.checkout_only {
            command.args([
                "-c",
                "sandbox_workspace_write.exclude_slash_tmp=true",
                "-c",
                "sandbox_workspace_write.exclude_tmpdir_env_var=true",
                "-c",
                "sandbox_workspace_write.writable_roots=[]",
            ]);
        }
        let key_var = setting("api_key_env", "OPENAI_API_KEY");
        let mut pass = vec!["OPENAI_BASE_URL"];
        let mut job = job.clone();
        let home = match &auth {
            Auth::ApiKey => {
                pass.extend(["OPENAI_API_KEY", "CODEX_HOME", key_var.as_str()]);
                None
            }
            Auth::Chatgpt(file) => {
                let json = job.settings.get(AUTH_JSON_SETTING).cloned().unwrap_or_default();
                let Some(clutch) = job.clutch.clone() else {
                    return Outcome::failed("a codex run with auth=chatgpt needs clutch's home for its CODEX_HOME".into());
                };
                let home = match RunHome::create(&clutch, &json) {
                    Ok(home) => home,
                    Err(why) => return Outcome::failed(format!("cannot make the run's CODEX_HOME: {why}")),
                };
                // The tokens are the run's secrets too: redacted wherever the run's output goes.
                job.secrets.extend(file.secrets());
                command.env("CODEX_HOME", home.path()).args(["-c", "cli_auth_credentials_store=\"file\""]);
                if let Some(issuer) = &file.issuer {
                    command.env("CODEX_REFRESH_TOKEN_URL_OVERRIDE", format!("{issuer}/oauth/token"));
                    command.env("CODEX_REVOKE_TOKEN_URL_OVERRIDE", format!("{issuer}/oauth/revoke"));
                }
                Some(home)
            }
        };
        if let Some(url) = job.settings.get("base_url") {
            let credentials = match &auth {
                Auth::ApiKey => format!("env_key=\"{key_var}\""),
                Auth::Chatgpt(_) => "requires_openai_auth=true".to_string(),
            };
            command.args([
                "-c",
                &format!(
                    "model_providers.clutch={{name=\"clutch\",base_url=\"{url}\",wire_api=\"responses\",{credentials},request_max_retries=0,stream_max_retries=0}}"
                ),
                "-c",
                "model_provider=clutch",
            ]);
        }
        command.arg(prompt(&job));
        let timeout = match super::timeout(&job.settings, DEFAULT_TIMEOUT_S) {
            Ok(timeout) => timeout,
            Err(refused) => return Outcome::failed(refused.0),
        };
        let finished = process::run_agent(command, &job, &pass, b"", timeout);
        // Whatever happened, the tokens codex holds now go back to the vault before the run's
        // CODEX_HOME is removed (when `home` drops, at the end of this function).
        let mut notes = Vec::new();
        let mut learned = Vec::new();
        if let (Auth::Chatgpt(before), Some(home)) = (&auth, &home) {
            let (after, failed) =
                write_back(&job, before, home, job.settings.get(AUTH_JSON_SETTING).map(String::as_str).unwrap_or_default());
            learned = after.map(|a| a.secrets()).unwrap_or_default();
            notes.extend(failed);
        }
        job.secrets.extend(learned.iter().cloned());
        let mut finished = match finished {
            Ok(finished) => finished,
            Err(err) => return Outcome::failed(format!("cannot start codex: {err}")),
        };
        finished.redact(&job.secrets);
        let mut outcome = outcome_of(&job, &finished, &model, timeout);
        // The worktree and the notes are checked for them by ops::run, with the job's secrets.
        outcome.learned_secrets = learned;
        for note in notes {
            outcome.summary = one_line(&format!("{} ({note})", outcome.summary));
        }
        drop(home);
        outcome
    }
}

/// The outcome codex's `--json` events describe.
fn outcome_of(job: &Job, finished: &process::Finished, model: &str, timeout: Duration) -> Outcome {
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
    let mut cost = completed.and_then(|v| v.get("usage")).map(|u| cost_of(u, model, &job.settings)).unwrap_or_default();
    cost.wall_ms = finished.elapsed.as_millis() as u64;
    let outcome = |status, summary: String, verdict| Outcome {
        status,
        exit_code: finished.exit_code(),
        summary,
        cost: cost.clone(),
        verdict,
        transcript: finished.transcript(),
        rate_card: Some(RATE_CARD.to_string()),
        learned_secrets: Vec::new(),
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

/// A run's own CODEX_HOME: `$CLUTCH_HOME/tmp/codex-<random>`, 0700, with `auth.json` (0600).
/// Removed, with whatever codex left in it, when dropped.
#[derive(Debug)]
pub struct RunHome(PathBuf);

impl RunHome {
    pub fn create(env: &crate::env::Env, auth_json: &str) -> Result<RunHome, String> {
        RunHome::create_in(&env.home.join("tmp"), auth_json)
    }

    pub fn create_in(parent: &Path, auth_json: &str) -> Result<RunHome, String> {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(parent).map_err(|err| format!("{}: {err}", parent.display()))?;
        let mut random = [0u8; 8];
        getrandom::getrandom(&mut random).map_err(|err| format!("no randomness: {err}"))?;
        let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let dir = parent.join(format!("codex-{name}"));
        std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
        let home = RunHome(dir);
        // The umask may have narrowed the mode, never widened it; make it exact.
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).map_err(|err| err.to_string())?;
        let file = home.auth_file();
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .and_then(|mut f| f.write_all(auth_json.as_bytes()).and_then(|_| f.sync_all()));
        written.map_err(|err| format!("{}: {err}", file.display()))?;
        Ok(home)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn auth_file(&self) -> PathBuf {
        self.0.join("auth.json")
    }
}

impl Drop for RunHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// When codex changed the tokens in the run's `auth.json` (a refresh), store them in the
/// vault, unless the vault's entry is no longer the one the run started with.
///
/// Returns the tokens codex holds now when they changed (whether or not the vault took them:
/// they are secrets of the run either way) and, when the vault did not, why.
fn write_back(job: &Job, before: &AuthFile, home: &RunHome, started_with: &str) -> (Option<AuthFile>, Option<String>) {
    let Ok(text) = std::fs::read_to_string(home.auth_file()) else {
        return (None, None);
    };
    let Ok(after) = AuthFile::parse(&text) else {
        return (None, None);
    };
    if after.same_tokens(before) {
        return (None, None);
    }
    let mut json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if let (Some(issuer), Some(object)) = (&before.issuer, json.as_object_mut()) {
        object.entry("clutch_issuer").or_insert_with(|| Value::String(issuer.clone()));
    }
    let value = serde_json::to_string_pretty(&json).unwrap_or_default();
    let Some(env) = job.clutch.clone() else {
        return (Some(after), Some("codex refreshed its tokens, and there was no clutch environment to reach the vault".into()));
    };
    let kept = crate::vault::Vault::edit(&env, |vault| {
        if vault.get(AUTH_SECRET).is_some_and(|entry| entry.value == started_with) {
            vault.set(AUTH_SECRET, value, env.now()).map(|_| ())
        } else {
            Ok(())
        }
    });
    let why = kept.err().map(|err| format!("codex refreshed its tokens, and they could not be written to the vault: {}", err.message));
    (Some(after), why)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(pairs: &[(&str, &str)]) -> Policy {
        Policy::from_settings(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()).expect("a valid policy")
    }

    #[test]
    fn the_policy_compiles_into_codex_sandbox_flags_or_is_refused() {
        let work = RunPurpose::Work;
        let ok = |pairs: &[(&str, &str)], purpose| compile(&policy(pairs), purpose).expect("enforceable");
        let compiled = |sandbox, network_access, checkout_only| Compiled { sandbox, network_access, checkout_only };
        assert_eq!(ok(&[], work), compiled("workspace-write", None, false), "codex's own default");
        assert_eq!(ok(&[("sandbox", "workspace-write")], work), compiled("workspace-write", None, true), "the checkout only");
        assert_eq!(ok(&[("network", "none")], work), compiled("workspace-write", Some(false), false));
        assert_eq!(ok(&[("network", "any")], work), compiled("workspace-write", Some(true), false));
        assert_eq!(ok(&[("sandbox", "read-only"), ("network", "none")], work), compiled("read-only", None, false));
        assert_eq!(ok(&[("sandbox", "danger-full-access")], work), compiled("danger-full-access", None, false));
        assert_eq!(ok(&[("sandbox", "full-access"), ("network", "any")], work).sandbox, "danger-full-access");
        // A review is read-only whatever the policy says, and so without network.
        assert_eq!(
            ok(&[("sandbox", "full-access"), ("network", "any")], RunPurpose::Review),
            Compiled { sandbox: "read-only", network_access: None, checkout_only: false }
        );
        let refused = |pairs: &[(&str, &str)]| compile(&policy(pairs), work).expect_err("unenforceable").0;
        assert!(refused(&[("tool_allowlist", "shell")]).contains("tool allowlist"));
        assert!(refused(&[("network", "api.example.com")]).contains("host allowlist"));
        assert!(refused(&[("sandbox", "read-only"), ("network", "any")]).contains("read-only"));
        assert!(refused(&[("sandbox", "full-access"), ("network", "none")]).contains("full access"));
        assert!(refused(&[("tool_allowlist", "x")]).starts_with("the codex runtime cannot enforce"));
    }

    fn file() -> AuthFile {
        AuthFile {
            id_token: Zeroizing::new("h.e30.id-sig".into()),
            access_token: Zeroizing::new("access-token-value".into()),
            refresh_token: Zeroizing::new("refresh-token-value".into()),
            account_id: Some("acct-1".into()),
            api_key: None,
            last_refresh: "2026-11-24T08:00:00Z".into(),
            issuer: Some("http://127.0.0.1:9".into()),
        }
    }

    #[test]
    fn auth_files_round_trip_and_bad_ones_are_refused() {
        let json = file().to_json();
        assert_eq!(json["auth_mode"], "chatgpt");
        assert_eq!(json["OPENAI_API_KEY"], Value::Null, "codex always writes the key, null when there is none");
        assert_eq!(json["tokens"]["account_id"], "acct-1");
        let back = AuthFile::parse(&json.to_string()).expect("parses");
        assert!(back.same_tokens(&file()));
        assert_eq!(back.issuer.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(back.secrets().len(), 3);
        assert!(AuthFile::parse("{").is_err());
        assert!(AuthFile::parse(r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-x"}"#).expect_err("refused").contains("apikey"));
        assert!(AuthFile::parse(r#"{"tokens":{"id_token":"a","access_token":"b"}}"#).expect_err("refused").contains("refresh_token"));
        assert!(!format!("{:?}", file()).contains("access-token-value"), "Debug shows no token");
    }

    #[test]
    fn a_run_home_is_private_and_gone_when_dropped() {
        let dir = std::env::temp_dir().join(format!("clutch-codex-test-{}", std::process::id()));
        let home = RunHome::create_in(&dir, "{\"x\":1}").expect("created");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(home.path()), 0o700);
        assert_eq!(mode(&home.auth_file()), 0o600);
        assert_eq!(std::fs::read_to_string(home.auth_file()).expect("read"), "{\"x\":1}");
        let path = home.path().to_path_buf();
        std::fs::write(path.join("left-by-codex"), "x").expect("write");
        drop(home);
        assert!(!path.exists(), "removed with what codex left in it");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
