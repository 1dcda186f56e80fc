//! Running an agent program: stdin in, stdout and stderr kept, a time limit that kills the
//! whole process group (kill(2) on the group the child leads), never a shell's `kill`.
//!
//! A process that leaves the group (`setsid`, a daemon's double fork) would outlive that kill.
//! So clutch makes itself the child subreaper: such a process, once orphaned, becomes clutch's
//! child instead of init's, and after the run [`reap`] kills and reaps every child of clutch
//! that carries the run's mark in its environment ([`RUN_MARK`]) or is a dead member of the
//! run's group. Parallel runs have other marks and groups, so each reaps only its own.

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
    let mark = mark(&mut command);
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
    let mut sweep = Instant::now();
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
            Ok(None) => {
                std::thread::sleep(Duration::from_millis(20));
                if sweep.elapsed() >= Duration::from_secs(1) {
                    reap_orphaned_zombies();
                    sweep = Instant::now();
                }
            }
            Err(_) => break None,
        }
    };
    // Children the program left behind in its group die with it too, and so do those that
    // left the group, so the pipes close.
    kill_group(child.id());
    reap(child.id(), Some(&mark));
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    Ok(Finished { status, stdout, stderr, timed_out, elapsed: started.elapsed() })
}

/// The variable that marks every process of one agent run: inherited by whatever the agent
/// starts, however it detaches.
pub const RUN_MARK: &str = "AGENT_RUN_MARK";

/// Give `command` a fresh run mark (see [`reap`]) and make clutch the subreaper that will
/// receive whatever it orphans. Returns the mark.
pub fn mark(command: &mut Command) -> String {
    become_subreaper();
    let mut bytes = [0u8; 8];
    let _ = getrandom::getrandom(&mut bytes);
    let mark: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    command.env(RUN_MARK, &mark);
    mark
}

/// Make clutch the child subreaper (once): orphaned descendants come to it, not to init.
fn become_subreaper() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    });
}

/// A process, as `/proc/PID/stat` describes it.
struct ProcStat {
    pid: i32,
    /// `R`, `S`, `D`, `T` (stopped), `Z` (zombie), …
    state: String,
    ppid: i32,
    pgrp: i32,
    session: i32,
}

/// `/proc/NAME/stat` (NAME a pid, or `self`), read.
fn stat(name: &str) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{name}/stat")).ok()?;
    // pid (comm) state ppid pgrp session …: comm may hold spaces and parentheses.
    let (pid, rest) = stat.split_once(" (")?;
    let fields: Vec<&str> = rest.rsplit_once(')')?.1.split_whitespace().collect();
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<i32>().ok());
    Some(ProcStat { pid: pid.parse().ok()?, state: fields.first()?.to_string(), ppid: number(1)?, pgrp: number(2)?, session: number(3)? })
}

/// Every process this user can see now.
fn processes() -> Vec<ProcStat> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())).and_then(stat))
        .collect()
}

/// clutch itself, numbered as /proc numbers the others. Its session may be 0: a session led
/// from outside clutch's pid namespace (a container, `unshare --pid --fork`), which
/// getsid(2) reports as 0 too.
fn me() -> Option<ProcStat> {
    stat("self")
}

/// Every child of clutch now.
fn children() -> Vec<ProcStat> {
    let Some(me) = me() else { return Vec::new() };
    processes().into_iter().filter(|p| p.ppid == me.pid).collect()
}

/// Whether a process of the group `leader` leads is stopped (state `T`): for a group out of
/// the terminal's foreground, the kernel's answer to reading the terminal (SIGTTIN, SIGTTOU).
pub fn group_stopped(leader: u32) -> bool {
    let leader = leader as i32;
    processes().iter().any(|p| p.pgrp == leader && p.state == "T")
}

/// Reap (never wait for) the dead orphans of other sessions: a daemon's middle process that
/// called setsid and exited. clutch's own children (agents, tests, git) never leave its
/// session, so their exit statuses stay theirs to collect.
fn reap_orphaned_zombies() {
    let Some(me) = me() else { return };
    for child in children().into_iter().filter(|c| c.state == "Z" && c.session != me.session) {
        if let Some(pid) = rustix::process::Pid::from_raw(child.pid) {
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG);
        }
    }
}

/// After the group `leader` led was killed: kill and reap the children of clutch that belong
/// to that run — members of the group (dead now, waiting to be reaped) and, with `mark`,
/// processes that carry the run's mark (those that left the group). Rounds until none is left
/// (a killed process's own children come to clutch in turn), bounded in time: a process that
/// cannot be killed (another user's, or stuck in the kernel) is left, not waited for.
pub fn reap(leader: u32, mark: Option<&str>) {
    let needle = mark.map(|m| format!("{RUN_MARK}={m}\0").into_bytes());
    let leader = leader as i32;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let ours: Vec<ProcStat> = children()
            .into_iter()
            .filter(|c| {
                c.pgrp == leader
                    || needle.as_ref().is_some_and(|needle| {
                        std::fs::read(format!("/proc/{}/environ", c.pid))
                            .is_ok_and(|env| env.windows(needle.len()).any(|w| w == needle.as_slice()))
                    })
            })
            .collect();
        if ours.is_empty() {
            break;
        }
        for child in ours {
            let Some(pid) = rustix::process::Pid::from_raw(child.pid) else { continue };
            if child.state != "Z" {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    reap_orphaned_zombies();
}

/// SIGKILL to the process group `leader` leads.
fn kill_group(leader: u32) {
    signal_group(leader, rustix::process::Signal::KILL);
}

/// `signal` to the process group `leader` leads (kill(2) with -pgid, never a shell's `kill`).
pub fn signal_group(leader: u32, signal: rustix::process::Signal) {
    if let Some(group) = i32::try_from(leader).ok().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process_group(group, signal);
    }
}
