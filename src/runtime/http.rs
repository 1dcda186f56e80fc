//! A remote agent behind a URL, spoken to over A2A (Agent2Agent) JSON-RPC: version 1.0
//! (`SendMessage`, `GetTask`, `CancelTask`, the `A2A-Version: 1.0` header) or 0.3
//! (`message/send`, `tasks/get`, `tasks/cancel`), whichever the agent's card offers.
//! docs/runtime-http.md records the wire details this follows.
//!
//! A run sends one message (the task's prompt, and in its metadata the task, purpose and PR),
//! asks for an immediate answer, and polls the task with backoff until it ends or `timeout_s`
//! passes (then cancels it). Files come back as artifact parts carrying a `filename`: they are
//! written into the worktree, at a relative path that must stay inside it, so clutch commits
//! them like any agent's changes. Cost is what the agent reports under `clutch/cost` in its
//! metadata.
//!
//! Nothing of the agent's policy can be enforced on a machine clutch does not control, so any
//! policy is refused. Settings: `url` (the JSON-RPC endpoint), `protocol` (`1.0` or `0.3`,
//! default `1.0`), `token` (a bearer credential, normally `secret:NAME`), `timeout_s` (600).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use base64ct::Encoding as _;
use serde::Serialize;
use serde_json::{json, Value};

use super::{model_prompt, one_line, verdict_of, Job, Outcome, Runtime, Tail, Unavailable};
use crate::event::{Cost, CostSource, RunPurpose, RunStatus};

#[derive(Debug)]
pub struct Http;

/// Where an A2A agent publishes its card, under its base URL.
pub const CARD_PATH: &str = "/.well-known/agent-card.json";
/// How long a run may take without a `timeout_s` setting.
const DEFAULT_TIMEOUT_S: u64 = 600;

/// The metadata key under which an agent reports what a run cost.
pub const COST_KEY: &str = "clutch/cost";

/// How long a card fetch or a cancellation may take.
const SHORT: Duration = Duration::from_secs(30);

/// Responses larger than this are refused (artifacts come inline, base64).
const MAX_BODY: u64 = 64 * 1024 * 1024;
/// How much of the exchanges the transcript keeps in memory (the log keeps its last 16 KiB):
/// a remote agent polled for minutes must not grow it without bound.
const TRANSCRIPT_BYTES: usize = 256 * 1024;
/// Inline text parts longer than this are cut in the transcript.
const TEXT_CHARS: usize = 4096;

/// The A2A protocol versions clutch speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Protocol {
    #[serde(rename = "1.0")]
    V1,
    #[serde(rename = "0.3")]
    V03,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::V1 => "1.0",
            Protocol::V03 => "0.3",
        }
    }

    /// `1.x` is 1.0, `0.3.x` is 0.3; anything else is not spoken here.
    pub fn parse(text: &str) -> Option<Protocol> {
        let text = text.trim();
        let major_minor: Vec<&str> = text.split('.').collect();
        match major_minor.as_slice() {
            ["1", ..] => Some(Protocol::V1),
            ["0", "3", ..] => Some(Protocol::V03),
            _ => None,
        }
    }

    fn method(self, name: &str) -> &'static str {
        match (self, name) {
            (Protocol::V1, "send") => "SendMessage",
            (Protocol::V1, "get") => "GetTask",
            (Protocol::V1, _) => "CancelTask",
            (Protocol::V03, "send") => "message/send",
            (Protocol::V03, "get") => "tasks/get",
            (Protocol::V03, _) => "tasks/cancel",
        }
    }
}

/// What an agent card says that clutch uses.
#[derive(Debug, Clone, Serialize)]
pub struct Card {
    /// Where the card was read.
    pub card_url: String,
    pub name: String,
    pub description: String,
    /// The JSON-RPC endpoint chosen from the card.
    pub endpoint: String,
    pub protocol: Protocol,
    pub skills: Vec<String>,
}

impl Card {
    /// The `http` runtime's settings for this agent.
    pub fn settings(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("url".to_string(), self.endpoint.clone()),
            ("protocol".to_string(), self.protocol.as_str().to_string()),
            ("card_name".to_string(), self.name.clone()),
        ])
    }
}

fn is_http_url(url: &str) -> bool {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
}

fn agent(timeout: Duration, redirects: u32) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(redirects)
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout.min(SHORT)))
        .build()
        .into()
}

/// Read the agent card at `url`: the card's own address, or the agent's base URL (then
/// `URL/.well-known/agent-card.json`). `Err` is one line saying what is wrong.
pub fn fetch_card(url: &str) -> Result<Card, String> {
    let url = url.trim();
    if !is_http_url(url) {
        return Err(format!("'{url}' is not an http:// or https:// URL"));
    }
    let card_url = if url.contains("/.well-known/") || url.ends_with(".json") {
        url.to_string()
    } else {
        format!("{}{CARD_PATH}", url.trim_end_matches('/'))
    };
    let mut response = agent(SHORT, 3)
        .get(&card_url)
        .header("Accept", "application/json")
        .call()
        .map_err(|err| format!("cannot fetch the agent card at {card_url}: {}", one_line(&err.to_string())))?;
    let status = response.status().as_u16();
    let body = response.body_mut().with_config().limit(1024 * 1024).read_to_string().unwrap_or_default();
    if status != 200 {
        return Err(format!("no agent card at {card_url}: HTTP {status}"));
    }
    let value: Value = serde_json::from_str(&body).map_err(|err| format!("the agent card at {card_url} is not JSON ({err})"))?;
    parse_card(&card_url, &value)
}

/// The card's name and the JSON-RPC interface clutch will use (1.0 preferred over 0.3).
pub fn parse_card(card_url: &str, card: &Value) -> Result<Card, String> {
    let invalid = |why: &str| format!("the agent card at {card_url} is not a valid A2A card: {why}");
    if !card.is_object() {
        return Err(invalid("it is not a JSON object"));
    }
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::trim).unwrap_or("").to_string();
    // What a card says is printed and kept in settings: no control characters (a terminal
    // would obey them), and no `secret:` reference that would hand a vault secret to the agent.
    let printable = |text: String| one_line(&text.replace(|c: char| c.is_control(), " "));
    let name = text(card, "name");
    if name.trim().is_empty() || name.contains(['\n', '\r']) {
        return Err(invalid("it has no name"));
    }
    let name = printable(name);
    if name.starts_with(crate::vault::SECRET_REF) {
        return Err(invalid(&format!("its name starts with '{}', which clutch reads as a vault secret", crate::vault::SECRET_REF)));
    }
    // 1.0: supportedInterfaces [{url, protocolBinding, protocolVersion}]; 0.3: url,
    // preferredTransport, protocolVersion and additionalInterfaces [{url, transport}].
    let mut offers: Vec<(String, Protocol)> = Vec::new();
    for interface in card.get("supportedInterfaces").and_then(Value::as_array).into_iter().flatten() {
        if text(interface, "protocolBinding").eq_ignore_ascii_case("JSONRPC") {
            if let Some(protocol) = Protocol::parse(&text(interface, "protocolVersion")) {
                offers.push((text(interface, "url"), protocol));
            }
        }
    }
    if let Some(protocol) = Protocol::parse(&text(card, "protocolVersion")) {
        let preferred = text(card, "preferredTransport");
        if preferred.is_empty() || preferred.eq_ignore_ascii_case("JSONRPC") {
            offers.push((text(card, "url"), protocol));
        }
        for interface in card.get("additionalInterfaces").and_then(Value::as_array).into_iter().flatten() {
            if text(interface, "transport").eq_ignore_ascii_case("JSONRPC") {
                offers.push((text(interface, "url"), protocol));
            }
        }
    }
    offers.retain(|(url, _)| !url.is_empty());
    offers.sort_by_key(|(_, protocol)| *protocol != Protocol::V1);
    let Some((endpoint, protocol)) = offers.into_iter().next() else {
        return Err(invalid("it offers no JSON-RPC interface of A2A 1.0 or 0.3 (supportedInterfaces, or url and protocolVersion)"));
    };
    if !is_http_url(&endpoint) {
        return Err(invalid(&format!("its endpoint '{endpoint}' is not an http:// or https:// URL")));
    }
    let skills = card
        .get("skills")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| printable(text(s, "name")))
        .filter(|s| !s.is_empty())
        .collect();
    Ok(Card { card_url: card_url.to_string(), name, description: printable(text(card, "description")), endpoint, protocol, skills })
}

impl Runtime for Http {
    fn name(&self) -> &'static str {
        "http"
    }

    fn check(&self, job: &Job) -> Result<(), Unavailable> {
        // The remote agent's sandbox, tools and network are its operator's, not ours.
        job.policy.only("http", &[])?;
        Settings::of(job).map(|_| ())
    }

    fn run(&self, job: &Job) -> Outcome {
        let started = crate::env::monotonic();
        let settings = match Settings::of(job) {
            Ok(settings) => settings,
            Err(why) => return Outcome::failed(why.0),
        };
        let transcript = Tail::new(&job.secrets, TRANSCRIPT_BYTES);
        let mut session = Session { job, settings, transcript, next_id: 1, deadline: started };
        session.deadline = started + session.settings.timeout;
        let mut outcome = session.run();
        outcome.cost.wall_ms = started.elapsed().as_millis() as u64;
        outcome.summary = job.redact(&outcome.summary);
        outcome.transcript = session.transcript.text().into_bytes();
        outcome
    }
}

struct Settings {
    url: String,
    protocol: Protocol,
    token: Option<String>,
    timeout: Duration,
}

impl Settings {
    fn of(job: &Job) -> Result<Settings, Unavailable> {
        let fix = format!("(git clutch agent config {} --runtime http --runtime-opt url=…)", job.agent);
        let url = job.settings.get("url").map(|u| u.trim().to_string()).unwrap_or_default();
        if url.is_empty() {
            return Err(Unavailable(format!("the http runtime needs a url setting: the agent's A2A JSON-RPC endpoint {fix}")));
        }
        // A URL from the vault is resolved when the agent runs; until then it cannot be judged.
        if !is_http_url(&url) && !url.starts_with(crate::vault::SECRET_REF) {
            return Err(Unavailable(format!("the http runtime's url '{url}' is not an http:// or https:// URL {fix}")));
        }
        let protocol = match job.settings.get("protocol") {
            None => Protocol::V1,
            Some(text) => Protocol::parse(text)
                .ok_or_else(|| Unavailable(format!("the http runtime speaks A2A 1.0 and 0.3, not protocol '{text}'")))?,
        };
        let timeout = super::timeout(&job.settings, DEFAULT_TIMEOUT_S)?;
        let token = job.settings.get("token").map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        if token.as_deref().is_some_and(|t| t.contains(['\r', '\n'])) {
            return Err(Unavailable("the http runtime's token has a line break in it".into()));
        }
        Ok(Settings { url, protocol, token, timeout })
    }
}

/// One run's conversation with the agent.
struct Session<'a> {
    job: &'a Job,
    settings: Settings,
    transcript: Tail<'a>,
    next_id: u64,
    deadline: Instant,
}

/// What the agent answered: a task (with its state) or a direct message.
enum Reply {
    Task(Value),
    Message(Value),
}

impl Session<'_> {
    fn run(&mut self) -> Outcome {
        let protocol = self.settings.protocol;
        let message = self.message();
        let params = match protocol {
            Protocol::V1 => json!({"message": message, "configuration": {"returnImmediately": true}}),
            Protocol::V03 => json!({"message": message, "configuration": {"blocking": false}}),
        };
        if let Some(signal) = crate::interrupt::interrupted() {
            return Outcome::failed(format!("interrupted by {} before the task was sent", signal.name));
        }
        let result = match self.call(protocol.method("send"), params, self.remaining(), true) {
            Ok(result) => result,
            Err(Failure::TimedOut) => return self.timed_out(None),
            Err(Failure::Said(why)) => return Outcome::failed(why),
            Err(Failure::Interrupted(signal)) => {
                return Outcome::failed(format!(
                    "interrupted by {} while the agent held the request that sent the task: it may still run it",
                    signal.name
                ))
            }
        };
        let mut task = match classify(&result) {
            Some(Reply::Message(message)) => return self.finish(&[], &message, None, "completed"),
            Some(Reply::Task(task)) => task,
            None => return Outcome::failed(format!("the agent answered {} with neither a task nor a message", protocol.method("send"))),
        };
        let id = task.get("id").and_then(Value::as_str).unwrap_or("").to_string();
        let mut wait = Duration::from_millis(200);
        let mut errors = 0;
        while matches!(state_of(&task).as_str(), "submitted" | "working" | "unspecified" | "unknown") {
            if id.is_empty() {
                return Outcome::failed("the agent's task has no id: clutch cannot follow it".into());
            }
            let left = self.deadline.saturating_duration_since(crate::env::monotonic());
            if left.is_zero() {
                return self.timed_out(Some(&id));
            }
            let until = crate::env::monotonic() + wait.min(left);
            while crate::env::monotonic() < until && crate::interrupt::interrupted().is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Some(signal) = crate::interrupt::interrupted() {
                let cancelled = self.cancel(&id);
                return Outcome::failed(format!("interrupted by {} while the agent's task {id} ran: clutch {cancelled}", signal.name));
            }
            wait = (wait * 3 / 2).min(Duration::from_secs(5));
            match self.call(protocol.method("get"), json!({"id": id, "historyLength": 0}), self.remaining(), true) {
                Ok(result) => {
                    errors = 0;
                    match classify(&result) {
                        Some(Reply::Task(next)) => task = next,
                        _ => {
                            return Outcome::failed(format!(
                                "the agent answered {} with something other than a task",
                                protocol.method("get")
                            ))
                        }
                    }
                }
                Err(Failure::TimedOut) => return self.timed_out(Some(&id)),
                Err(Failure::Interrupted(signal)) => {
                    let cancelled = self.cancel(&id);
                    return Outcome::failed(format!("interrupted by {} while the agent's task {id} ran: clutch {cancelled}", signal.name));
                }
                // A blip while polling is retried; a remote that keeps failing ends the run.
                Err(Failure::Said(why)) => {
                    errors += 1;
                    if errors >= 3 {
                        return Outcome::failed(why);
                    }
                }
            }
        }
        let status = task.get("status").cloned().unwrap_or(Value::Null);
        let message = status.get("message").cloned().unwrap_or(Value::Null);
        let artifacts = task.get("artifacts").and_then(Value::as_array).cloned().unwrap_or_default();
        self.finish(&artifacts, &message, Some(&task), &state_of(&task))
    }

    /// The run's outcome from the agent's last word: a task in `state` (with its artifacts) or
    /// a direct message (`task` None, state "completed").
    fn finish(&mut self, artifacts: &[Value], message: &Value, task: Option<&Value>, state: &str) -> Outcome {
        let job = self.job;
        let text = text_of(message);
        let mut cost = Cost::default();
        for source in [task.and_then(|t| t.get("metadata")), message.get("metadata")].into_iter().flatten() {
            if let Some(reported) = source.get(COST_KEY) {
                cost = cost_of(reported);
                break;
            }
        }
        let said = if text.is_empty() { String::new() } else { format!(": {}", one_line(&text)) };
        let failed = |summary: String| Outcome { cost: cost.clone(), ..Outcome::failed(summary) };
        match state {
            "completed" => {}
            "failed" => return failed(format!("the agent failed the task{said}")),
            "rejected" => return failed(format!("the agent rejected the task{said}")),
            "canceled" | "cancelled" => return failed(format!("the agent's task was canceled{said}")),
            "input-required" | "auth-required" => {
                return failed(format!(
                    "the agent stopped in state {state}: it wants more from the caller, and clutch runs agents unattended{said}"
                ))
            }
            other => return failed(format!("the agent's task ended in an unknown state '{other}'{said}")),
        }
        if job.purpose == RunPurpose::Review {
            let verdict = verdict_of(&text);
            let summary = if text.is_empty() { "the agent answered the review with no text".to_string() } else { one_line(&text) };
            return Outcome {
                status: RunStatus::Succeeded,
                exit_code: None,
                summary,
                cost,
                verdict: Some(verdict),
                transcript: Vec::new(),
                rate_card: None,
                learned_secrets: Vec::new(),
            };
        }
        // Files: the parts of every artifact (and of a direct message) that carry a filename.
        let mut parts: Vec<&Value> = artifacts.iter().filter_map(|a| a.get("parts").and_then(Value::as_array)).flatten().collect();
        if task.is_none() {
            parts.extend(message.get("parts").and_then(Value::as_array).into_iter().flatten());
        }
        let files = match files_of(&parts) {
            Ok(files) => files,
            Err(why) => return failed(why),
        };
        if let Err(why) = write_files(&job.workdir, &files) {
            return failed(why);
        }
        let summary = match (text.is_empty(), files.len()) {
            (false, _) => one_line(&text),
            (true, 0) => "the agent completed the task and sent no files".to_string(),
            (true, n) => format!("the agent completed the task and sent {n} file(s)"),
        };
        Outcome {
            status: RunStatus::Succeeded,
            exit_code: None,
            summary,
            cost,
            verdict: None,
            transcript: Vec::new(),
            rate_card: None,
            learned_secrets: Vec::new(),
        }
    }

    /// Out of time: ask the agent to cancel its task, and say so.
    fn timed_out(&mut self, task: Option<&str>) -> Outcome {
        let seconds = self.settings.timeout.as_secs();
        let Some(id) = task else {
            return Outcome { status: RunStatus::TimedOut, ..Outcome::failed(format!("the agent did not answer within {seconds}s")) };
        };
        let cancelled = self.cancel(id);
        Outcome {
            status: RunStatus::TimedOut,
            ..Outcome::failed(format!("the agent's task {id} did not finish within {seconds}s: {cancelled}"))
        }
    }

    /// Ask the agent to cancel its task; says how that went.
    fn cancel(&mut self, id: &str) -> String {
        match self.call(self.settings.protocol.method("cancel"), json!({"id": id}), SHORT, false) {
            Ok(_) => "cancelled it".to_string(),
            Err(Failure::Said(why)) => format!("could not cancel it ({why})"),
            Err(Failure::TimedOut) => "could not cancel it (no answer)".to_string(),
            Err(Failure::Interrupted(_)) => "could not cancel it (interrupted)".to_string(),
        }
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(crate::env::monotonic()).max(Duration::from_millis(1))
    }

    /// The message that hands the job over. The context groups one agent's runs on one task
    /// (or reviews of one PR); every run is a new task of the agent's.
    fn message(&self) -> Value {
        let job = self.job;
        let purpose = if job.purpose == RunPurpose::Work { "work" } else { "review" };
        let context = match (&job.purpose, &job.pr) {
            (RunPurpose::Review, Some(pr)) => format!("clutch-{}-{}-review-{pr}", job.agent, job.task.id),
            _ => format!("clutch-{}-{}", job.agent, job.task.id),
        };
        let mut metadata = json!({
            "clutch/agent": job.agent,
            "clutch/task": job.task.id,
            "clutch/title": job.task.title,
            "clutch/purpose": purpose,
        });
        if let Some(pr) = &job.pr {
            metadata["clutch/pr"] = json!(pr);
        }
        let prompt = model_prompt(job);
        match self.settings.protocol {
            Protocol::V1 => json!({
                "messageId": message_id(),
                "contextId": context,
                "role": "ROLE_USER",
                "parts": [{"text": prompt, "mediaType": "text/plain"}],
                "metadata": metadata,
            }),
            Protocol::V03 => json!({
                "kind": "message",
                "messageId": message_id(),
                "contextId": context,
                "role": "user",
                "parts": [{"kind": "text", "text": prompt}],
                "metadata": metadata,
            }),
        }
    }

    /// One JSON-RPC call; its `result`, or a one-line failure. The exchange runs on a thread
    /// of its own, so that a signal (see [`crate::interrupt`]) ends the wait at once instead of
    /// when an agent that holds the request finally answers: the call then fails with
    /// [`Failure::Interrupted`], and its thread is left to end at its own timeout. A call that
    /// is not `interruptible` (cancelling the task, after an interrupt) runs to its end.
    fn call(&mut self, method: &str, params: Value, timeout: Duration, interruptible: bool) -> Result<Value, Failure> {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let body = request.to_string();
        let url = self.settings.url.clone();
        let mut builder = agent(timeout, 0)
            .post(&url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .header("A2A-Version", self.settings.protocol.as_str());
        if let Some(token) = &self.settings.token {
            builder = builder.header("Authorization", format!("Bearer {token}"));
        }
        let (sender, answer) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let exchanged = builder.send(body.as_bytes()).map(|mut response| {
                let status = response.status().as_u16();
                (status, response.body_mut().with_config().limit(MAX_BODY).read_to_string())
            });
            let _ = sender.send(exchanged);
        });
        let exchanged = loop {
            match answer.recv_timeout(Duration::from_millis(50)) {
                Ok(exchanged) => break exchanged,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(signal) = crate::interrupt::interrupted().filter(|_| interruptible) {
                        self.log(&request, &json!({"error": format!("interrupted by {}", signal.name)}));
                        return Err(Failure::Interrupted(signal));
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Failure::Said(format!("the request to {url} ended without an answer")))
                }
            }
        };
        let (status, read) = match exchanged {
            Ok(answer) => answer,
            Err(ureq::Error::Timeout(_)) => {
                self.log(&request, &json!({"error": "timed out"}));
                return Err(Failure::TimedOut);
            }
            Err(err) => {
                let why = format!("cannot reach the agent at {url}: {}", one_line(&err.to_string()));
                self.log(&request, &json!({"error": why}));
                return Err(Failure::Said(why));
            }
        };
        let text = match read {
            Ok(text) => text,
            Err(ureq::Error::Timeout(_)) => return Err(Failure::TimedOut),
            Err(err) => return Err(Failure::Said(format!("cannot read the agent's answer to {method}: {}", one_line(&err.to_string())))),
        };
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        self.log(&request, parsed.as_ref().unwrap_or(&json!({"http_status": status, "body": one_line(&text)})));
        if status == 401 || status == 403 {
            let fix = if self.settings.token.is_some() {
                "check the secret named by its token setting"
            } else {
                "set --runtime-opt token=secret:NAME"
            };
            return Err(Failure::Said(format!("the agent at {url} refused the request (HTTP {status}): {fix}")));
        }
        if !(200..300).contains(&status) {
            return Err(Failure::Said(format!("the agent at {url} answered {method} with HTTP {status}: {}", snippet(&text))));
        }
        let Some(reply) = parsed else {
            return Err(Failure::Said(format!("the agent at {url} answered {method} with something that is not JSON: {}", snippet(&text))));
        };
        if let Some(error) = reply.get("error").filter(|e| !e.is_null()) {
            let code = error.get("code").map(Value::to_string).unwrap_or_default();
            let message = error.get("message").and_then(Value::as_str).unwrap_or("");
            return Err(Failure::Said(format!("the agent answered {method} with JSON-RPC error {code}: {}", one_line(message))));
        }
        match reply.get("result") {
            Some(result) if !result.is_null() => Ok(result.clone()),
            _ => Err(Failure::Said(format!("the agent's answer to {method} has no result"))),
        }
    }

    /// One exchange, as a JSON line of the transcript (inline file contents elided).
    fn log(&mut self, request: &Value, response: &Value) {
        let secrets = &self.job.secrets;
        let line = json!({"request": elide(request, secrets), "response": elide(response, secrets)});
        self.transcript.push(line.to_string().as_bytes());
        self.transcript.push(b"\n");
    }
}

enum Failure {
    TimedOut,
    Said(String),
    /// A signal came while the call waited for its answer.
    Interrupted(crate::interrupt::Interrupt),
}

fn snippet(text: &str) -> String {
    let line = one_line(text);
    if line.is_empty() {
        "(empty)".into()
    } else {
        line.chars().take(200).collect()
    }
}

/// A task or a message, from a SendMessage / GetTask result of either protocol version.
fn classify(result: &Value) -> Option<Reply> {
    if let Some(task) = result.get("task").filter(|t| t.is_object()) {
        return Some(Reply::Task(task.clone()));
    }
    if let Some(message) = result.get("message").filter(|m| m.is_object()) {
        return Some(Reply::Message(message.clone()));
    }
    match result.get("kind").and_then(Value::as_str) {
        Some("task") => return Some(Reply::Task(result.clone())),
        Some("message") => return Some(Reply::Message(result.clone())),
        _ => {}
    }
    if result.get("status").is_some() && result.get("id").is_some() {
        Some(Reply::Task(result.clone()))
    } else if result.get("parts").is_some() {
        Some(Reply::Message(result.clone()))
    } else {
        None
    }
}

/// A task's state in 0.3 spelling: `TASK_STATE_INPUT_REQUIRED` (1.0) → `input-required`.
fn state_of(task: &Value) -> String {
    let raw = task.pointer("/status/state").and_then(Value::as_str).unwrap_or("unknown");
    raw.strip_prefix("TASK_STATE_").unwrap_or(raw).to_ascii_lowercase().replace('_', "-")
}

/// The text parts of a message, joined by newlines.
fn text_of(message: &Value) -> String {
    let parts = message.get("parts").and_then(Value::as_array).into_iter().flatten();
    let texts: Vec<&str> = parts
        .filter(|p| p.get("filename").is_none() && p.pointer("/metadata/filename").is_none())
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect();
    texts.join("\n").trim().to_string()
}

/// `clutch/cost`: token counts and dollars × 1e6 (numbers may arrive as floats).
fn cost_of(reported: &Value) -> Cost {
    let n = |key: &str| reported.get(key).and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f.max(0.0).round() as u64))).unwrap_or(0);
    Cost {
        input_tokens: n("input_tokens"),
        output_tokens: n("output_tokens"),
        cache_read_tokens: n("cache_read_tokens"),
        cache_write_tokens: n("cache_write_tokens"),
        usd_micros: n("usd_micros"),
        wall_ms: 0,
        source: CostSource::Provider,
    }
}

/// A file the agent sent: its path relative to the worktree, and its bytes.
type File = (PathBuf, Vec<u8>);

/// The files among `parts`: 1.0 parts with a `filename` and `raw` (base64) or `text`; 0.3 file
/// parts `{file: {name, bytes}}`, and text parts with `metadata.filename`. Parts that point at
/// a URL are not fetched: that is a refusal, not a silent gap. Every path is checked before
/// anything is written.
fn files_of(parts: &[&Value]) -> Result<Vec<File>, String> {
    let mut files = Vec::new();
    for part in parts {
        let file = part.get("file");
        let name = part
            .get("filename")
            .or_else(|| file.and_then(|f| f.get("name")))
            .or_else(|| part.pointer("/metadata/filename"))
            .and_then(Value::as_str);
        let Some(name) = name.filter(|n| !n.is_empty()) else { continue };
        let path = safe_path(name)?;
        let encoded = part.get("raw").or_else(|| file.and_then(|f| f.get("bytes"))).and_then(Value::as_str);
        let bytes = if let Some(encoded) = encoded {
            decode_base64(encoded).ok_or_else(|| format!("the agent's file '{name}' is not valid base64"))?
        } else if let Some(text) = part.get("text").and_then(Value::as_str) {
            text.as_bytes().to_vec()
        } else if let Some(data) = part.get("data") {
            serde_json::to_vec_pretty(data).unwrap_or_default()
        } else if part.get("url").is_some() || file.and_then(|f| f.get("uri")).is_some() {
            return Err(format!("the agent sent file '{name}' as a URL: clutch only takes files sent inline (raw bytes or text)"));
        } else {
            return Err(format!("the agent's file '{name}' has no content"));
        };
        files.push((path, bytes));
    }
    Ok(files)
}

/// A path the agent may write: relative, plain components only, nothing under `.git`.
fn safe_path(name: &str) -> Result<PathBuf, String> {
    let refuse = |why: &str| Err(format!("the agent sent a file with an unsafe path '{}': {why}; nothing was written", one_line(name)));
    if name.contains(['\\', '\0']) || name.chars().any(char::is_control) {
        return refuse("it has a backslash or a control character");
    }
    let path = Path::new(name);
    if path.is_absolute() || name.starts_with('/') {
        return refuse("it is absolute");
    }
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) if part.eq_ignore_ascii_case(".git") => return refuse("it is inside .git"),
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => return refuse("it climbs out with '..'"),
            Component::RootDir | Component::Prefix(_) => return refuse("it is absolute"),
        }
    }
    if clean.as_os_str().is_empty() {
        return refuse("it names no file");
    }
    Ok(clean)
}

/// Write `files` under `root`, refusing to follow a symbolic link anywhere on the way (a
/// link in the checkout could point outside it). Every file is checked before any is written.
fn write_files(root: &Path, files: &[File]) -> Result<(), String> {
    for (path, _) in files {
        let mut at = root.to_path_buf();
        for component in path.components() {
            at.push(component);
            match std::fs::symlink_metadata(&at) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(format!(
                        "the agent's file '{}' would be written through the symbolic link {}: nothing was written",
                        path.display(),
                        at.strip_prefix(root).unwrap_or(&at).display()
                    ))
                }
                Ok(meta) if meta.is_dir() && at.as_path() == root.join(path) => {
                    return Err(format!("the agent's file '{}' is a directory in the checkout: nothing was written", path.display()))
                }
                _ => {}
            }
        }
    }
    for (path, bytes) in files {
        let target = root.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|err| format!("cannot make the directory of '{}': {err}", path.display()))?;
        }
        std::fs::write(&target, bytes).map_err(|err| format!("cannot write the agent's file '{}': {err}", path.display()))?;
    }
    Ok(())
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    base64ct::Base64::decode_vec(text)
        .or_else(|_| base64ct::Base64Unpadded::decode_vec(text))
        .or_else(|_| base64ct::Base64Url::decode_vec(text))
        .or_else(|_| base64ct::Base64UrlUnpadded::decode_vec(text))
        .ok()
}

/// `value` with long inline contents (`raw`, `bytes`) replaced by their length: the transcript
/// keeps the exchange, not the files (those are in the commit).
fn elide(value: &Value, secrets: &[super::SecretUse]) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("raw" | "bytes", Value::String(s)) if s.len() > 256 => (k.clone(), json!(format!("<{} base64 characters>", s.len()))),
                    // Redacted before the cut, so the cut cannot leave part of a secret.
                    ("text", Value::String(s)) if s.len() > TEXT_CHARS => {
                        let clean = super::redact(s, secrets);
                        let kept: String = clean.chars().take(TEXT_CHARS).collect();
                        (k.clone(), json!(format!("{kept}… <{} characters in all>", s.chars().count())))
                    }
                    _ => (k.clone(), elide(v, secrets)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| elide(v, secrets)).collect()),
        other => other.clone(),
    }
}

/// A fresh UUID (v4) for a message id.
fn message_id() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::getrandom(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_of_both_versions_give_an_endpoint() {
        let v1 = json!({"name": "A", "supportedInterfaces": [
            {"url": "http://h/grpc", "protocolBinding": "GRPC", "protocolVersion": "1.0"},
            {"url": "http://h/v03", "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
            {"url": "http://h/rpc", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}]});
        let card = parse_card("http://h/c", &v1).expect("accepted");
        assert_eq!((card.endpoint.as_str(), card.protocol), ("http://h/rpc", Protocol::V1));
        let v03 = json!({"name": "B", "url": "https://h/a2a", "protocolVersion": "0.3.0"});
        let card = parse_card("http://h/c", &v03).expect("accepted");
        assert_eq!((card.endpoint.as_str(), card.protocol), ("https://h/a2a", Protocol::V03));
        assert!(parse_card("u", &json!({"url": "http://h", "protocolVersion": "0.3"})).expect_err("refused").contains("no name"));
        assert!(parse_card("u", &json!({"name": "C", "url": "http://h", "protocolVersion": "0.2"}))
            .expect_err("refused")
            .contains("no JSON-RPC"));
        assert!(parse_card("u", &json!({"name": "C", "url": "file:///x", "protocolVersion": "0.3"}))
            .expect_err("refused")
            .contains("endpoint"));
    }

    #[test]
    fn states_and_replies_of_both_versions() {
        assert_eq!(state_of(&json!({"status": {"state": "TASK_STATE_INPUT_REQUIRED"}})), "input-required");
        assert_eq!(state_of(&json!({"status": {"state": "completed"}})), "completed");
        assert!(matches!(classify(&json!({"task": {"id": "1"}})), Some(Reply::Task(_))));
        assert!(matches!(classify(&json!({"kind": "message", "parts": []})), Some(Reply::Message(_))));
        assert!(classify(&json!({"x": 1})).is_none());
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for bad in ["../x", "/etc/passwd", "a/../../x", ".git/config", "a/.GIT/hooks/x", "a\\b", "", "."] {
            assert!(safe_path(bad).is_err(), "{bad} must be refused");
        }
        assert_eq!(safe_path("./src/a.rs").expect("accepted"), PathBuf::from("src/a.rs"));
    }

    #[test]
    fn files_come_from_raw_text_and_v03_file_parts() {
        let parts = [
            json!({"raw": "aGk=", "filename": "a.txt"}),
            json!({"text": "t", "filename": "b/c.md"}),
            json!({"kind": "file", "file": {"name": "d.bin", "bytes": "AAE="}}),
            json!({"text": "no file here"}),
        ];
        let refs: Vec<&Value> = parts.iter().collect();
        let files = files_of(&refs).expect("accepted");
        assert_eq!(files.len(), 3);
        assert_eq!(files[0], (PathBuf::from("a.txt"), b"hi".to_vec()));
        assert_eq!(files[2].1, vec![0, 1]);
        let by_url = [json!({"url": "http://x/y", "filename": "y"})];
        assert!(files_of(&by_url.iter().collect::<Vec<_>>()).expect_err("refused").contains("URL"));
    }

    #[test]
    fn cost_reads_floats() {
        let cost = cost_of(&json!({"input_tokens": 1200.0, "output_tokens": 80, "usd_micros": 4200.0}));
        assert_eq!((cost.input_tokens, cost.output_tokens, cost.usd_micros, cost.source), (1200, 80, 4200, CostSource::Provider));
    }

    #[test]
    fn long_text_parts_are_cut_after_redaction_in_the_transcript() {
        let secret = "clutch-secret-value-0123456789";
        let secrets = vec![super::super::SecretUse { name: "S".into(), fingerprint: String::new(), value: secret.to_string().into() }];
        let text = format!("{}{secret}{}", "x".repeat(super::TEXT_CHARS - 10), "y".repeat(10_000));
        let elided = super::elide(&serde_json::json!({ "parts": [{ "text": text }] }), &secrets);
        let kept = elided["parts"][0]["text"].as_str().expect("text");
        assert!(kept.len() < super::TEXT_CHARS + 100, "cut: {} bytes", kept.len());
        assert!(!kept.contains("clutch-secret") && !kept.contains("0123"), "no piece of the secret is kept");
        assert!(kept.ends_with(&format!("<{} characters in all>", text.len())), "{}", &kept[kept.len() - 40..]);
    }

    #[test]
    fn a_card_cannot_name_a_vault_secret_or_smuggle_terminal_controls() {
        let card = |name: &str, skill: &str| {
            json!({ "name": name, "description": "d\u{1b}[2J", "skills": [{ "name": skill }],
                    "supportedInterfaces": [{ "url": "http://127.0.0.1:1/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "1.0" }] })
        };
        let refused = parse_card("http://127.0.0.1:1/card.json", &card("secret:KEPT", "Code")).expect_err("refused");
        assert!(refused.contains("starts with 'secret:'"), "{refused}");
        let parsed =
            parse_card("http://127.0.0.1:1/card.json", &card("\u{1b}[31mRed\u{7} Agent", "\u{1b}]0;title\u{7}Code")).expect("parsed");
        let printed = format!("{} {} {}", parsed.name, parsed.description, parsed.skills.join(","));
        assert!(!printed.chars().any(char::is_control), "{printed:?}");
        assert_eq!(parsed.name, "[31mRed Agent");
        assert_eq!(parsed.settings()["card_name"], "[31mRed Agent");
    }
}
