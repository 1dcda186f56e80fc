//! JSON Schemas of the envelope of each event type, generated from the Rust types.
//!
//! `schemas/<TYPE>.json` in the repository is the checked-in output of [`all`]; a test fails
//! when the two drift, and `git clutch schemas --write schemas` regenerates them.

use schemars::generate::SchemaSettings;
use serde_json::{json, Value};

use super::{Cost, EventType, SCHEMA_VERSION};

/// `(file name, schema)` for every event type.
pub fn all() -> Vec<(String, Value)> {
    EventType::ALL.iter().map(|kind| (format!("{}.json", kind.name()), for_type(*kind))).collect()
}

pub fn for_type(kind: EventType) -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let cost = generator.subschema_for::<Cost>();
    let payload = kind.payload_schema(&mut generator);
    let defs: serde_json::Map<String, Value> = generator.take_definitions(true);
    let id = r"^[a-z][a-z0-9._-]{0,63}$";
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("https://clutch.invalid/schemas/{}.json", kind.name()),
        "title": kind.name(),
        "description": format!("The event.json of a {} event (envelope schema {SCHEMA_VERSION}).", kind.name()),
        "type": "object",
        "additionalProperties": false,
        "required": ["schema", "type", "actor_agent_id", "at", "clock", "project", "task", "refs", "cost", "payload"],
        "properties": {
            "schema": { "const": SCHEMA_VERSION },
            "type": { "const": kind.name() },
            "actor_agent_id": { "type": "string", "pattern": id },
            "at": { "type": "string", "format": "date-time", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$" },
            "clock": { "type": "integer", "minimum": 1 },
            "project": { "type": ["string", "null"] },
            "task": { "type": ["string", "null"] },
            "refs": { "type": "array", "items": { "type": "string", "pattern": "^[0-9a-f]{40}$" } },
            "cost": cost,
            "payload": payload,
        },
        "$defs": defs,
    })
}
