//! `test run`: run a command against a commit and record what happened.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use crate::event::{Cost, Payload, TestRun};
use crate::store::ObjectId;
use crate::{Error, Result};

use super::{transact, Ctx, Draft, Written};

/// How much of the output's end is kept in the event.
pub const TAIL_BYTES: usize = 16 * 1024;

#[derive(Debug)]
pub struct Tested {
    pub written: Written,
    pub commit: ObjectId,
    pub exit_code: Option<i32>,
    pub passed: bool,
}

pub struct Run<'a> {
    pub task: Option<&'a str>,
    pub pr: Option<&'a str>,
    pub command: &'a [String],
    pub cost: Cost,
}

pub fn run(ctx: &Ctx, actor: &str, run: &Run<'_>) -> Result<Tested> {
    if run.command.is_empty() {
        return Err(Error::usage("no command to run").hint("git clutch test run -- cargo test"));
    }
    let loaded = ctx.load()?;
    let (commit, pr, task) = match run.pr {
        Some(id) => {
            let pr = super::pr::find_pr(&loaded.state, id)?;
            let head = ObjectId::from_hex(pr.head.as_bytes()).map_err(|_| Error::internal("bad PR head"))?;
            (head, Some(pr.id.clone()), Some(pr.task.clone()))
        }
        None => {
            let head =
                ctx.store.head_commit()?.ok_or_else(|| Error::user("HEAD has no commit to test").hint("commit first, or pass --pr PR"))?;
            let task = match run.task {
                Some(t) => Some(loaded.state.find_task(t).map_err(Error::user)?.id.clone()),
                None => None,
            };
            (head, None, task)
        }
    };
    if pr.is_none() {
        let dirty = ctx.store.uncommitted()?;
        if !dirty.is_empty() {
            let first = dirty.lines().next().unwrap_or_default().trim().to_string();
            return Err(Error::user(format!("the work tree has uncommitted changes ({first}…): a TEST_RUN vouches for a commit"))
                .hint("commit (or stash) first, or test a PR's head with --pr PR"));
        }
    }
    // A signal from here on stops the command and records nothing (see `execute`).
    let _interruptible = crate::interrupt::Guard::new();
    let worktree = match pr {
        Some(_) => Some(ctx.store.temp_worktree(commit)?),
        None => None,
    };
    let dir = match (&worktree, ctx.store.work_dir()) {
        (Some(w), _) => w.path().to_path_buf(),
        (None, Some(dir)) => dir.to_path_buf(),
        (None, None) => return Err(Error::user("a bare repository has no work tree to test in").hint("pass --pr PR")),
    };
    let started = crate::env::monotonic();
    // A signal before the command started (while the checkout was made) starts nothing.
    let executed = crate::interrupt::interrupted().is_none().then(|| execute(&dir, run.command));
    let duration_ms = started.elapsed().as_millis() as u64;
    drop(worktree);
    // A terminal's Ctrl-C reaches the command too: its failure says nothing about the commit.
    if let Some(signal) = crate::interrupt::interrupted() {
        return Err(Error::interrupted(signal, format!("interrupted by {} while the tests ran: no TEST_RUN was recorded", signal.name)));
    }
    let (status, output) = executed.ok_or_else(|| Error::internal("the test command was not started"))??;
    let exit_code = status.code();
    let passed = status.success();
    let tail = tail(&output);
    let blob = gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Blob, &tail)
        .map_err(|err| Error::internal(err.to_string()))?
        .to_string();
    let (mut written, _) = transact(ctx, actor, |state| {
        let mut draft = Draft::new(Payload::TestRun(TestRun {
            commit: commit.to_string(),
            command: run.command.to_vec(),
            passed,
            exit_code,
            duration_ms,
            pr: pr.clone(),
            output_blob: Some(blob.clone()),
        }));
        if let Some(task) = task.as_ref().and_then(|t| state.tasks.get(t)) {
            draft = draft.task(task);
        }
        draft.refs = vec![commit.to_string(), blob.clone()];
        draft.files = vec![("output.txt".to_string(), tail.clone())];
        draft.cost = run.cost.clone();
        if draft.cost.wall_ms == 0 {
            draft.cost.wall_ms = duration_ms;
        }
        Ok(vec![draft])
    })?;
    Ok(Tested { written: written.remove(0), commit, exit_code, passed })
}

/// Run the command under a keeper (see [`crate::runtime::process::Kept`]), its output passed
/// on to our stderr (our stdout is for ids and JSON) and kept. It runs code an agent may have
/// written, so it never gets the vault's key. A signal (see [`crate::interrupt`]) is passed
/// on to the command's whole group as SIGTERM, so a test suite's own clean-up runs, and the
/// group is killed after a grace period; whatever the command started, in its group or not,
/// ends with it. Being out of the terminal's foreground, a command that reads the terminal is
/// stopped by the kernel: that is reported, not waited on.
fn execute(dir: &std::path::Path, command: &[String]) -> Result<(std::process::ExitStatus, Vec<u8>)> {
    use crate::runtime::process::Kept;
    use rustix::process::Signal;
    let mut program = Command::new(&command[0]);
    program.args(&command[1..]).current_dir(dir).env_remove("CLUTCH_SECRET_KEY").env_remove("CLUTCH_SECRET_KEY_FILE");
    let cannot_run = |err: std::io::Error| Error::user(format!("cannot run '{}': {err}", command[0]));
    let mut kept = Kept::spawn(&program, false, true, Stdio::null()).map_err(cannot_run)?;
    let pass_on = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let _ = std::io::stderr().write_all(&buf[..n]);
                kept.extend_from_slice(&buf[..n]);
            }
            kept
        })
    };
    let out_thread = pass_on(Box::new(kept.child.stdout.take().expect("piped")));
    let err_thread = pass_on(Box::new(kept.child.stderr.take().expect("piped")));
    let grace = std::time::Duration::from_secs(5);
    // When the command was asked to stop (SIGTERM), and when it was killed.
    let mut stopping: Option<std::time::Instant> = None;
    let mut killed: Option<std::time::Instant> = None;
    let mut backoff = crate::runtime::process::Backoff::new(std::time::Duration::from_millis(20));
    loop {
        match kept.child.try_wait() {
            Ok(Some(_)) | Err(_) => break,
            Ok(None) if crate::interrupt::interrupted().is_some() => match (stopping, killed) {
                (None, _) => {
                    kept.signal(Signal::TERM);
                    kept.signal(Signal::CONT);
                    stopping = Some(std::time::Instant::now());
                }
                (Some(since), None) if since.elapsed() >= grace => {
                    kept.kill();
                    killed = Some(std::time::Instant::now());
                }
                (_, Some(since)) if since.elapsed() >= 3 * grace => {
                    kept.force();
                    break;
                }
                _ => {}
            },
            Ok(None) => {}
        }
        backoff.sleep();
    }
    let ended = kept.finish().map_err(cannot_run);
    let mut kept_output = out_thread.join().unwrap_or_default();
    kept_output.extend(err_thread.join().unwrap_or_default());
    let ended = ended?;
    if ended.stopped_for_terminal {
        return Err(Error::user(format!(
            "'{}' stopped to read the terminal, which a test command does not get: nothing was recorded",
            command[0]
        ))
        .hint("make it run without a prompt (stdin is empty, and credentials must come from the environment or a file)"));
    }
    let status =
        ended.status.ok_or_else(|| Error::internal(format!("'{}' ended without an exit status: its keeper was killed", command[0])))?;
    Ok((status, kept_output))
}

fn tail(output: &[u8]) -> Vec<u8> {
    if output.len() <= TAIL_BYTES {
        return output.to_vec();
    }
    let mut start = output.len() - TAIL_BYTES;
    while start < output.len() && output[start] & 0xC0 == 0x80 {
        start += 1;
    }
    output[start..].to_vec()
}
