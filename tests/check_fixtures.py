#!/usr/bin/env python3
"""Check fixtures/events against schemas/ with an independent validator (python jsonschema):
every valid fixture validates against the schema of its type, every invalid one is refused
by the schema of the type it claims (or, for an unknown type, by every schema)."""
import json
import pathlib
import sys

import jsonschema

ROOT = pathlib.Path(__file__).resolve().parent.parent
schemas = {p.stem: json.loads(p.read_text()) for p in (ROOT / "schemas").glob("*.json")}
checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
failures = []
valid = sorted((ROOT / "fixtures/events/valid").glob("*.json"))
invalid = sorted((ROOT / "fixtures/events/invalid").glob("*.json"))
if not valid or not invalid or not schemas:
    sys.exit("no fixtures or no schemas found")

for path in valid:
    event = json.loads(path.read_text())
    schema = schemas.get(event.get("type"))
    if schema is None:
        failures.append(f"{path.name}: no schema for type {event.get('type')}")
        continue
    errors = list(jsonschema.Draft202012Validator(schema, format_checker=checker).iter_errors(event))
    if errors:
        failures.append(f"{path.name}: valid fixture refused: {errors[0].message}")

for path in invalid:
    event = json.loads(path.read_text())
    candidates = [schemas[event["type"]]] if event.get("type") in schemas else list(schemas.values())
    accepted = [s["title"] for s in candidates if jsonschema.Draft202012Validator(s, format_checker=checker).is_valid(event)]
    if accepted:
        failures.append(f"{path.name}: invalid fixture accepted by {', '.join(accepted)}")

for kind in schemas:
    if not (ROOT / "fixtures/events/valid" / f"{kind}.json").exists():
        failures.append(f"schema {kind} has no valid fixture")

for failure in failures:
    print("FAIL", failure)
print(f"{len(valid) + len(invalid) - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
