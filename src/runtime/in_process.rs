//! Agents written in Rust inside clutch: deterministic, offline, free. The demo and the tests
//! use them.
//!
//! - `program=worker` writes `work/<task>.md` from the task, and adds a `## Tests` section
//!   once a reviewer has asked for changes;
//! - `program=reviewer` approves a PR whose task file has a `## Tests` section and asks for
//!   one otherwise — so every PR goes through exactly one round of changes.

use std::fmt::Write as _;

use super::{Job, Outcome, Runtime, Unavailable};
use crate::event::{Cost, CostSource, RunPurpose, RunStatus, Verdict};

#[derive(Debug)]
pub struct InProcess;

const TESTS: &str = "## Tests";

impl Runtime for InProcess {
    fn name(&self) -> &'static str {
        "in-process"
    }

    fn check(&self, job: &Job) -> Result<(), Unavailable> {
        // The built-in programs connect nowhere, use no tools and write one file and the notes
        // inside the checkout: every network and tool policy holds by construction, and so does
        // any sandbox but read-only for a worker, which must write.
        match job.settings.get("program").map(String::as_str) {
            Some("worker") if job.policy.sandbox == Some(super::policy::Sandbox::ReadOnly) => {
                Err(Unavailable("the built-in worker writes its file: a read-only sandbox leaves it nothing to do".into()))
            }
            Some("worker" | "reviewer") => Ok(()),
            Some(other) => Err(Unavailable(format!("no built-in program '{other}' (worker or reviewer)"))),
            None => Err(Unavailable("set program=worker or program=reviewer".into())),
        }
    }

    fn pull(&self, job: &Job) -> Result<(), Unavailable> {
        self.check(job)?;
        match (job.settings.get("program").map(String::as_str).unwrap_or_default(), job.purpose) {
            ("worker", RunPurpose::Work) | ("reviewer", RunPurpose::Review) => Ok(()),
            (program, purpose) => Err(Unavailable(format!("the built-in {program} does not do {purpose:?} runs").to_lowercase())),
        }
    }

    fn run(&self, job: &Job) -> Outcome {
        let started = crate::env::monotonic();
        let file = job.workdir.join("work").join(format!("{}.md", job.task.id));
        let mut transcript = String::new();
        let (status, summary, verdict) = match job.purpose {
            RunPurpose::Work => {
                let mut text = std::fs::read_to_string(&file).unwrap_or_default();
                if text.is_empty() {
                    let _ = writeln!(text, "# {}\n", job.task.title);
                    if let Some(description) = &job.task.description {
                        let _ = writeln!(text, "{description}\n");
                    }
                    for (id, title, status) in &job.dependencies {
                        let _ = writeln!(text, "Builds on {id} ({title}, {status}).");
                    }
                    let _ = writeln!(text, "Written by {} for {}.", job.agent, job.task.id);
                }
                let asked = job.reviews.iter().any(|(_, verdict, _)| *verdict == Verdict::RequestChanges);
                if asked && !text.contains(TESTS) {
                    let _ = write!(text, "\n{TESTS}\n\n- the file names its task and its author\n");
                }
                let _ = writeln!(transcript, "writing {}", file.display());
                // Keep a line of memory per task worked, as a person would.
                let notes = job.workdir.join(super::MEMORY_DIR).join("MEMORY.md");
                let mut memory = std::fs::read_to_string(&notes).unwrap_or_else(|_| format!("# Notes of {}\n\n", job.agent));
                let line = format!("- {}: {}", job.task.id, job.task.title);
                if !memory.contains(&line) {
                    memory.push_str(&line);
                    memory.push('\n');
                    let _ = std::fs::create_dir_all(notes.parent().expect("memory dir")).and_then(|_| std::fs::write(&notes, memory));
                }
                let written =
                    std::fs::create_dir_all(file.parent().expect("work/ has a parent")).and_then(|_| std::fs::write(&file, &text));
                match written {
                    Ok(()) => (RunStatus::Succeeded, format!("wrote work/{}.md", job.task.id), None),
                    Err(err) => (RunStatus::Failed, format!("cannot write {}: {err}", file.display()), None),
                }
            }
            RunPurpose::Review => {
                let text = std::fs::read_to_string(&file).unwrap_or_default();
                let _ = writeln!(transcript, "reading {}", file.display());
                if text.is_empty() {
                    (
                        RunStatus::Succeeded,
                        "asked for the task file".into(),
                        Some((Verdict::RequestChanges, format!("work/{}.md is missing", job.task.id))),
                    )
                } else if text.contains(TESTS) {
                    (
                        RunStatus::Succeeded,
                        "approved".into(),
                        Some((Verdict::Approve, "Looks good: the task file says how it was checked.".into())),
                    )
                } else {
                    (
                        RunStatus::Succeeded,
                        "asked for changes".into(),
                        Some((Verdict::RequestChanges, format!("Add a '{TESTS}' section saying how this was checked."))),
                    )
                }
            }
        };
        Outcome {
            status,
            exit_code: None,
            summary,
            cost: Cost { wall_ms: started.elapsed().as_millis() as u64, source: CostSource::None, ..Cost::default() },
            verdict,
            transcript: transcript.into_bytes(),
            rate_card: None,
            learned_secrets: Vec::new(),
        }
    }
}
