//! The wire format: the envelope every event carries (`event.json`), the payload of each event
//! type, and the commit message that repeats the key fields for plain `git log`.
//!
//! Decoding is strict: unknown fields, unknown types and malformed values are errors that name
//! what was wrong, so a forged or corrupt `event.json` is reported rather than half-applied.

pub mod payload;
pub mod schema;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use payload::*;

/// The envelope version this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Where a cost figure came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    /// The agent CLI reported the dollars.
    Provider,
    /// Computed from tokens with a rate card.
    RateCard,
    /// Work done by hand, or not measured.
    #[default]
    None,
}

/// What an event cost. On every event; zero for work that costs nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cost {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// US dollars × 1,000,000.
    pub usd_micros: u64,
    pub wall_ms: u64,
    pub source: CostSource,
}

macro_rules! event_types {
    ($($variant:ident($payload:ty) = $name:literal,)*) => {
        /// Every event type. The names are the wire format: never reuse or rename one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType { $($variant,)* }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            pub fn name(self) -> &'static str {
                match self { $(EventType::$variant => $name,)* }
            }

            pub fn parse(name: &str) -> Option<EventType> {
                match name { $($name => Some(EventType::$variant),)* _ => None }
            }

            /// JSON Schema of this type's payload, with its definitions.
            fn payload_schema(self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                match self { $(EventType::$variant => generator.subschema_for::<$payload>(),)* }
            }
        }

        /// The typed payload of an event.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum Payload { $($variant($payload),)* }

        impl Payload {
            pub fn event_type(&self) -> EventType {
                match self { $(Payload::$variant(_) => EventType::$variant,)* }
            }

            fn decode(kind: EventType, value: Value) -> Result<Payload, serde_json::Error> {
                Ok(match kind { $(EventType::$variant => Payload::$variant(serde_json::from_value(value)?),)* })
            }
        }
    };
}

event_types! {
    OrgCreated(OrgCreated) = "ORG_CREATED",
    AgentRegistered(AgentRegistered) = "AGENT_REGISTERED",
    ProjectCreated(ProjectCreated) = "PROJECT_CREATED",
    TaskCreated(TaskCreated) = "TASK_CREATED",
    TaskUpdated(TaskUpdated) = "TASK_UPDATED",
    TaskAssigned(TaskAssigned) = "TASK_ASSIGNED",
    TaskStatusChanged(TaskStatusChanged) = "TASK_STATUS_CHANGED",
    ArtifactProduced(ArtifactProduced) = "ARTIFACT_PRODUCED",
    TestRun(TestRun) = "TEST_RUN",
    PrOpened(PrOpened) = "PR_OPENED",
    PrUpdated(PrUpdated) = "PR_UPDATED",
    ReviewCommented(ReviewCommented) = "REVIEW_COMMENTED",
    MergeApproved(MergeApproved) = "MERGE_APPROVED",
    MergeBlocked(MergeBlocked) = "MERGE_BLOCKED",
    EvalReported(EvalReported) = "EVAL_REPORTED",
    HiringProposal(HiringProposal) = "HIRING_PROPOSAL",
    FiringProposal(FiringProposal) = "FIRING_PROPOSAL",
    DecisionRecorded(DecisionRecorded) = "DECISION_RECORDED",
    BudgetUpdated(BudgetUpdated) = "BUDGET_UPDATED",
    LogMerged(LogMerged) = "LOG_MERGED",
    AgentConfigured(AgentConfigured) = "AGENT_CONFIGURED",
    RunStarted(RunStarted) = "RUN_STARTED",
    RunFinished(RunFinished) = "RUN_FINISHED",
    RunRefused(RunRefused) = "RUN_REFUSED",
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One event: the envelope with a typed payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub actor: String,
    /// RFC 3339, UTC, seconds: `2026-11-24T08:00:00Z`.
    pub at: String,
    pub clock: u64,
    pub project: Option<String>,
    pub task: Option<String>,
    pub refs: Vec<String>,
    pub cost: Cost,
    pub payload: Payload,
}

#[derive(Serialize)]
struct WireOut<'a> {
    schema: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    actor_agent_id: &'a str,
    at: &'a str,
    clock: u64,
    project: &'a Option<String>,
    task: &'a Option<String>,
    refs: &'a [String],
    cost: &'a Cost,
    payload: &'a Payload,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireIn {
    schema: u32,
    #[serde(rename = "type")]
    kind: String,
    actor_agent_id: String,
    at: String,
    clock: u64,
    project: Option<String>,
    task: Option<String>,
    refs: Vec<String>,
    cost: Cost,
    payload: Value,
}

impl Event {
    pub fn event_type(&self) -> EventType {
        self.payload.event_type()
    }

    /// The bytes of `event.json`: pretty-printed, ending in a newline, fields in envelope order.
    pub fn to_json(&self) -> Vec<u8> {
        let wire = WireOut {
            schema: SCHEMA_VERSION,
            kind: self.event_type().name(),
            actor_agent_id: &self.actor,
            at: &self.at,
            clock: self.clock,
            project: &self.project,
            task: &self.task,
            refs: &self.refs,
            cost: &self.cost,
            payload: &self.payload,
        };
        let mut out = serde_json::to_vec_pretty(&wire).expect("an event always serializes");
        out.push(b'\n');
        out
    }

    /// Decode `event.json`, checking it against the schema of its type.
    pub fn from_json(bytes: &[u8]) -> Result<Event, String> {
        let wire: WireIn = serde_json::from_slice(bytes).map_err(|err| format!("event.json is malformed: {err}"))?;
        if wire.schema != SCHEMA_VERSION {
            return Err(format!("event.json has schema {} but this clutch reads schema {SCHEMA_VERSION}", wire.schema));
        }
        let kind =
            EventType::parse(&wire.kind).ok_or_else(|| format!("unknown event type '{}' (written by a newer clutch?)", wire.kind))?;
        if crate::env::parse_time(&wire.at).is_err() || !wire.at.ends_with('Z') {
            return Err(format!("event.json 'at' is not an RFC 3339 UTC time: '{}'", wire.at));
        }
        if wire.clock == 0 {
            return Err("event.json 'clock' must be at least 1".into());
        }
        if let Some(bad) = wire.refs.iter().find(|r| !is_hex_oid(r)) {
            return Err(format!("event.json 'refs' holds '{bad}', which is not a full object id"));
        }
        let payload = Payload::decode(kind, wire.payload).map_err(|err| format!("payload of {kind} is malformed: {err}"))?;
        Ok(Event {
            actor: wire.actor_agent_id,
            at: wire.at,
            clock: wire.clock,
            project: wire.project,
            task: wire.task,
            refs: wire.refs,
            cost: wire.cost,
            payload,
        })
    }

    /// The commit message: a subject `TYPE [<task>]: <summary>`, then git trailers.
    pub fn commit_message(&self) -> String {
        let mut subject = self.event_type().name().to_string();
        if let Some(task) = &self.task {
            subject.push(' ');
            subject.push_str(task);
        }
        subject.push_str(": ");
        subject.push_str(&one_line(&self.summary(), 100));
        let mut message = subject;
        message.push_str("\n\n");
        for (key, value) in self.trailers() {
            message.push_str(&format!("{key}: {value}\n"));
        }
        message
    }

    /// The trailers, in order. Replay checks that they agree with `event.json`.
    pub fn trailers(&self) -> Vec<(&'static str, String)> {
        let mut trailers = vec![("Clutch-Event", self.event_type().name().to_string()), ("Clutch-Actor", self.actor.clone())];
        if let Some(project) = &self.project {
            trailers.push(("Clutch-Project", project.clone()));
        }
        if let Some(task) = &self.task {
            trailers.push(("Clutch-Task", task.clone()));
        }
        trailers.push(("Clutch-Clock", self.clock.to_string()));
        trailers
    }

    /// A short human description of what happened.
    pub fn summary(&self) -> String {
        match &self.payload {
            Payload::OrgCreated(p) => format!("{} founded by {}", p.name, p.founder),
            Payload::AgentRegistered(p) => format!("{} joins as {}", p.id, p.role),
            Payload::ProjectCreated(p) => p.name.clone(),
            Payload::TaskCreated(p) => p.title.clone(),
            Payload::TaskUpdated(p) => match (&p.title, p.after.is_empty()) {
                (Some(title), _) => format!("retitled {title}"),
                (None, false) => format!("after {}", p.after.join(", ")),
                (None, true) => "description changed".into(),
            },
            Payload::TaskAssigned(p) if p.claim => format!("claimed by {}", p.assignee),
            Payload::TaskAssigned(p) => format!("assigned to {}", p.assignee),
            Payload::TaskStatusChanged(p) => p.status.as_str().to_string(),
            Payload::ArtifactProduced(p) => format!("{} ({}, {} bytes)", p.path, p.kind, p.size),
            Payload::TestRun(p) => format!("{} on {}", if p.passed { "pass" } else { "fail" }, short(&p.commit)),
            Payload::PrOpened(p) => p.title.clone(),
            Payload::PrUpdated(p) => format!("{} now at {}", p.pr, short(&p.head)),
            Payload::ReviewCommented(p) => format!("{} {:?} on {}", p.pr, p.verdict, short(&p.head)),
            Payload::MergeApproved(p) => format!("{} merged as {}", p.pr, short(&p.result)),
            Payload::MergeBlocked(p) => format!("{} blocked: {}", p.pr, p.gate.unmet.join("; ")),
            Payload::EvalReported(p) => format!("{} over {}", p.agent, p.window),
            Payload::HiringProposal(p) => format!("hire {} as {}", p.agent, p.role),
            Payload::FiringProposal(p) => format!("fire {}", p.agent),
            Payload::DecisionRecorded(p) => match (&p.proposal, p.approve) {
                (Some(proposal), Some(true)) => format!("approve {proposal}"),
                (Some(proposal), _) => format!("reject {proposal}"),
                (None, _) => "policy".into(),
            },
            Payload::BudgetUpdated(p) => format!("budget for {}", p.scope),
            Payload::AgentConfigured(p) => format!("{} runs on {}", p.agent, p.runtime),
            Payload::RunStarted(p) => {
                format!("{} starts a {:?} run on {}", p.agent, p.purpose, p.runtime).replace("Work", "work").replace("Review", "review")
            }
            Payload::RunFinished(p) => format!("{} {:?}: {}", p.run, p.status, p.summary).to_lowercase(),
            Payload::RunRefused(p) => format!("{} refused: {}", p.agent, p.reason),
            Payload::LogMerged(p) => format!("merged {}", p.merged.iter().map(|m| short(m)).collect::<Vec<_>>().join(", ")),
        }
    }
}

/// Parse git trailers (`Key: value` lines) from the last paragraph of a commit message.
pub fn parse_trailers(message: &str) -> Vec<(String, String)> {
    let body = message.trim_end();
    let last = body.rsplit("\n\n").next().unwrap_or("");
    last.lines().filter_map(|line| line.split_once(": ")).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect()
}

/// The 32 key bytes of `ssh-ed25519 AAAA… [comment]`, if it is a valid, non-weak Ed25519 key.
pub fn ed25519_key_bytes(text: &str) -> Result<[u8; 32], String> {
    use base64ct::{Base64, Encoding};
    let mut parts = text.split_whitespace();
    if parts.next() != Some("ssh-ed25519") {
        return Err("it does not start with 'ssh-ed25519'".into());
    }
    let encoded = parts.next().ok_or("the key data is missing")?;
    let blob = Base64::decode_vec(encoded).map_err(|_| "the key data is not base64")?;
    if blob.len() != 51 || &blob[..15] != b"\0\0\0\x0bssh-ed25519" || &blob[15..19] != b"\0\0\0\x20" {
        return Err("the key data is not an Ed25519 key".into());
    }
    let bytes: [u8; 32] = blob[19..].try_into().expect("51 - 19 = 32 bytes");
    let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| "the key is not a valid curve point")?;
    if key.is_weak() {
        return Err("the key is a weak (small-order) point".into());
    }
    Ok(bytes)
}

pub fn is_hex_oid(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn short(oid: &str) -> &str {
    &oid[..oid.len().min(10)]
}

fn one_line(text: &str, max: usize) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        line
    } else {
        let mut cut: String = line.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        Event {
            actor: "alice".into(),
            at: "2026-11-24T08:00:00Z".into(),
            clock: 42,
            project: Some("core".into()),
            task: None,
            refs: vec![],
            cost: Cost::default(),
            payload: Payload::TaskCreated(TaskCreated { title: "Write the parser".into(), description: None, after: vec![] }),
        }
    }

    #[test]
    fn exact_json() {
        let json = String::from_utf8(sample().to_json()).expect("utf8");
        let expected = r#"{
  "schema": 1,
  "type": "TASK_CREATED",
  "actor_agent_id": "alice",
  "at": "2026-11-24T08:00:00Z",
  "clock": 42,
  "project": "core",
  "task": null,
  "refs": [],
  "cost": {
    "input_tokens": 0,
    "output_tokens": 0,
    "cache_read_tokens": 0,
    "cache_write_tokens": 0,
    "usd_micros": 0,
    "wall_ms": 0,
    "source": "none"
  },
  "payload": {
    "title": "Write the parser",
    "description": null,
    "after": []
  }
}
"#;
        assert_eq!(json, expected);
        assert_eq!(Event::from_json(json.as_bytes()).expect("decodes"), sample());
    }

    #[test]
    fn strict_decoding_names_the_problem() {
        let good = String::from_utf8(sample().to_json()).expect("utf8");
        let cases = [
            (good.replace("\"clock\": 42", "\"clock\": 42, \"extra\": 1"), "unknown field `extra`"),
            (good.replace("TASK_CREATED", "TASK_EXPLODED"), "unknown event type 'TASK_EXPLODED'"),
            (good.replace("\"title\"", "\"titel\""), "payload of TASK_CREATED is malformed"),
            (good.replace("2026-11-24T08:00:00Z", "yesterday"), "not an RFC 3339"),
            (good.replace("\"schema\": 1", "\"schema\": 9"), "schema 9"),
            (good.replace("\"clock\": 42", "\"clock\": 0"), "at least 1"),
        ];
        for (json, needle) in cases {
            let err = Event::from_json(json.as_bytes()).expect_err(needle);
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }

    #[test]
    fn message_and_trailers() {
        let mut event = sample();
        event.task = Some("t-3f9a2c1".into());
        let message = event.commit_message();
        assert!(message.starts_with("TASK_CREATED t-3f9a2c1: Write the parser\n\n"), "{message}");
        let trailers = parse_trailers(&message);
        assert!(trailers.contains(&("Clutch-Clock".into(), "42".into())));
        assert!(trailers.contains(&("Clutch-Task".into(), "t-3f9a2c1".into())));
    }
}
