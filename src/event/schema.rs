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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::all;
    use crate::event::Event;

    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    fn json_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()))
            .map(|entry| entry.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn checked_in_schemas_match_the_types() {
        let generated = all();
        let dir = root().join("schemas");
        for (name, schema) in &generated {
            let text = std::fs::read_to_string(dir.join(name))
                .unwrap_or_else(|_| panic!("schemas/{name} is missing: run `git clutch schemas --write schemas`"));
            let checked_in: serde_json::Value = serde_json::from_str(&text).expect("checked-in schema is JSON");
            assert_eq!(&checked_in, schema, "schemas/{name} drifted from the Rust types: run `git clutch schemas --write schemas`");
        }
        let names: Vec<String> = generated.iter().map(|(n, _)| n.clone()).collect();
        for file in json_files(&dir) {
            let name = file.file_name().expect("file name").to_string_lossy().into_owned();
            assert!(names.contains(&name), "schemas/{name} has no event type behind it");
        }
    }

    #[test]
    fn valid_fixtures_decode_losslessly() {
        let files = json_files(&root().join("fixtures/events/valid"));
        assert!(files.len() >= all().len(), "every event type needs a valid fixture");
        for file in files {
            let bytes = std::fs::read(&file).expect("fixture");
            let event = Event::from_json(&bytes).unwrap_or_else(|why| panic!("{}: {why}", file.display()));
            assert_eq!(
                String::from_utf8(event.to_json()).expect("utf8"),
                String::from_utf8(bytes).expect("utf8"),
                "{} does not round-trip",
                file.display()
            );
        }
    }

    #[test]
    fn invalid_fixtures_are_refused() {
        let files = json_files(&root().join("fixtures/events/invalid"));
        assert!(!files.is_empty());
        for file in files {
            let bytes = std::fs::read(&file).expect("fixture");
            assert!(Event::from_json(&bytes).is_err(), "{} was accepted", file.display());
        }
    }
}
