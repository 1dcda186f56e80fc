//! Running an agent program: stdin in, stdout and stderr kept, a time limit that kills the
//! whole process group (kill(2) on the group the child leads), never a shell's `kill`.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{Job, SecretUse};

/// What a finished (or killed) program left.
#[derive(Debug)]
pub struct Finished {
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl Finished {
    pub fn exit_code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }
    pub fn succeeded(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }
    /// stdout then stderr, as the run's transcript.
    pub fn transcript(&self) -> Vec<u8> {
        let mut all = self.stdout.clone();
        all.extend_from_slice(&self.stderr);
        all
    }
    /// The last non-empty line of stderr (or stdout): usually why it failed.
    pub fn last_words(&self) -> String {
        let said = super::last_line(&String::from_utf8_lossy(&self.stderr));
        if said.is_empty() {
            super::last_line(&String::from_utf8_lossy(&self.stdout))
        } else {
            said
        }
    }
}

impl Finished {
    /// Replace every occurrence of each secret value in the output with `[secret:NAME]`, so
    /// a credential the agent printed never reaches the transcript kept in the log.
    pub fn redact(&mut self, secrets: &[SecretUse]) {
        for stream in [&mut self.stdout, &mut self.stderr] {
            let text = String::from_utf8_lossy(stream);
            let clean = super::redact(&text, secrets);
            if clean != text {
                *stream = clean.into_bytes();
            }
        }
    }
}

/// Run `command` (its own process group) with `input` on stdin, for at most `timeout`, with a
/// cleared environment: the basics and `pass` (see [`crate::env::for_agent`]), the job's own
/// variables ([`Job::env`]), then whatever the caller set on `command` after this. Values of
/// `pass` and the job's secrets are redacted from the output. `Err` only when it cannot be
/// started at all.
pub fn run_agent(mut command: Command, job: &Job, pass: &[&str], input: &[u8], timeout: Duration) -> std::io::Result<Finished> {
    let mut env = crate::env::for_agent(pass);
    let mut secrets: Vec<SecretUse> = env
        .iter()
        .filter(|(name, _)| pass.contains(&name.as_str()))
        .map(|(name, v)| SecretUse {
            name: name.clone(),
            fingerprint: String::new(),
            value: zeroize::Zeroizing::new(v.to_string_lossy().into_owned()),
        })
        .collect();
    secrets.extend(job.secrets.iter().cloned());
    for (name, value) in &job.env {
        env.retain(|(n, _)| n != name);
        env.push((name.clone(), value.into()));
    }
    let explicit: Vec<(std::ffi::OsString, Option<std::ffi::OsString>)> =
        command.get_envs().map(|(k, v)| (k.to_os_string(), v.map(|v| v.to_os_string()))).collect();
    command.env_clear();
    for (name, value) in env {
        command.env(name, value);
    }
    for (name, value) in explicit {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let mut finished = run(command, input, timeout)?;
    finished.redact(&secrets);
    Ok(finished)
}

/// Run `command` (its own process group) with `input` on stdin, for at most `timeout`.
/// `Err` only when it cannot be started at all.
pub fn run(mut command: Command, input: &[u8], timeout: Duration) -> std::io::Result<Finished> {
    let started = Instant::now();
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0).spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        let input = input.to_vec();
        // A program that does not read its stdin must not block us: write from a thread.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() >= timeout => {
                timed_out = true;
                kill_group(child.id());
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) if crate::interrupt::interrupted().is_some() => {
                kill_group(child.id());
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    // Children the program left behind in its group die with it too, so the pipes close.
    kill_group(child.id());
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    Ok(Finished { status, stdout, stderr, timed_out, elapsed: started.elapsed() })
}

/// SIGKILL to the process group `leader` leads.
pub fn kill_group(leader: u32) {
    if let Some(group) = i32::try_from(leader).ok().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
}
