//! Running a program for clutch (an agent, a test command): stdin in, stdout and stderr kept,
//! a time limit, and nothing left running afterwards.
//!
//! Every program runs under a keeper ([`Kept`], [`super::keeper`]): a small process of
//! clutch's own that is the program's parent and the child subreaper of everything the program
//! starts. A process that leaves the program's group (`setsid`, a daemon's double fork), clears
//! its environment or makes itself non-dumpable is still the keeper's once orphaned, and the
//! keeper kills and reaps every one when the program ends, is killed, or clutch dies.
//!
//! Behind the keeper, clutch is a subreaper too: if a keeper is itself killed, what it kept
//! comes to clutch, and [`reap`] kills and reaps every child of clutch that carries the run's
//! mark in its environment ([`RUN_MARK`]). Parallel runs have other keepers and marks, so each
//! reaps only its own.

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

/// Run `command` under a keeper (see [`Kept`]) with `input` on stdin, for at most `timeout`.
/// The program gets exactly the environment set on `command`. `Err` only when it cannot be
/// started at all.
fn run(command: Command, input: &[u8], timeout: Duration) -> std::io::Result<Finished> {
    let started = Instant::now();
    let mut kept = Kept::spawn(&command, true, false, Stdio::piped())?;
    if let Some(mut stdin) = kept.child.stdin.take() {
        let input = input.to_vec();
        // A program that does not read its stdin must not block us: write from a thread.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let mut stdout = kept.child.stdout.take().expect("piped");
    let mut stderr = kept.child.stderr.take().expect("piped");
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
    let mut killing: Option<Instant> = None;
    let mut backoff = Backoff::new(Duration::from_millis(20));
    loop {
        match kept.child.try_wait() {
            Ok(Some(_)) | Err(_) => break,
            Ok(None) => {
                let over = started.elapsed() >= timeout;
                match killing {
                    None if over || crate::interrupt::interrupted().is_some() => {
                        timed_out = over;
                        kept.kill();
                        killing = Some(Instant::now());
                    }
                    Some(since) if since.elapsed() >= KEEPER_GRACE => {
                        kept.force();
                        break;
                    }
                    _ => {}
                }
                backoff.sleep();
            }
        }
    }
    let ended = kept.finish();
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    let ended = ended?;
    Ok(Finished { status: ended.status, stdout, stderr, timed_out, elapsed: started.elapsed() })
}

/// How long a keeper may take to kill and sweep its run once asked, before clutch kills the
/// keeper itself and sweeps in its place.
const KEEPER_GRACE: Duration = Duration::from_secs(15);

/// Naps between looks at a running process: 1 ms, doubling up to `max`, so a quick program
/// is seen to end at once and a long one costs a look every `max`.
#[derive(Debug)]
pub struct Backoff {
    nap: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(max: Duration) -> Backoff {
        Backoff { nap: Duration::from_millis(1).min(max), max }
    }

    pub fn sleep(&mut self) {
        std::thread::sleep(self.nap);
        self.nap = (self.nap * 2).min(self.max);
    }
}

/// A program running under a keeper ([`super::keeper`]): clutch's child is the keeper, the
/// program is the keeper's child, in a process group of its own, and whatever it orphans goes
/// to the keeper, which kills and reaps it all when the program ends. Signals go to the
/// keeper, which passes them on. Dropped unfinished (a panic), the keeper is killed.
pub struct Kept {
    /// The keeper. Its stdin, stdout and stderr are the program's.
    pub child: std::process::Child,
    /// Where the keeper reports: an anonymous file (memfd) only clutch holds. The keeper
    /// reaches it as `/proc/CLUTCH/fd/N`; no path in a shared directory can be swapped for a
    /// FIFO or a link by the program, and nothing is left behind if clutch is killed.
    report: std::fs::File,
    mark: String,
    finished: bool,
}

/// How a kept program ended.
#[derive(Debug)]
pub struct Ended {
    /// None when it was killed with its keeper (see [`Kept::force`]).
    pub status: Option<ExitStatus>,
    /// Its group stopped to read the terminal and was killed (with `watch_terminal`).
    pub stopped_for_terminal: bool,
}

impl Kept {
    /// Start the program `command` describes (program, arguments, directory, the variables set
    /// or removed on it; with `clear_env` nothing else of clutch's environment) under a
    /// keeper, stdout and stderr piped. With `watch_terminal` a program that stops to read
    /// the terminal is killed and [`Ended::stopped_for_terminal`].
    pub fn spawn(command: &Command, clear_env: bool, watch_terminal: bool, stdin: Stdio) -> std::io::Result<Kept> {
        let keeper_failed =
            |what: &str, err: std::io::Error| std::io::Error::new(err.kind(), format!("cannot start clutch's keeper ({what}): {err}"));
        // /proc/self/exe runs this very binary even when its file was replaced or removed
        // since (an upgrade during a long `work`); current_exe() would name the removed path.
        let exe = std::path::PathBuf::from("/proc/self/exe");
        let exe = if exe.exists() { exe } else { std::env::current_exe().map_err(|e| keeper_failed("the clutch binary", e))? };
        let report: std::fs::File = rustix::fs::memfd_create("clutch-keeper-report", rustix::fs::MemfdFlags::CLOEXEC)
            .map_err(|e| keeper_failed("its report file", e.into()))?
            .into();
        // Numbered as /proc numbers us, which is how the keeper will look us up.
        let me = stat("self").map_or_else(|| std::process::id() as i32, |me| me.pid);
        let report_path = {
            use std::os::fd::AsRawFd as _;
            format!("/proc/{me}/fd/{}", report.as_raw_fd())
        };
        let mut keeper = Command::new(&exe);
        keeper.arg0("git-clutch");
        let mark = mark(&mut keeper);
        keeper
            .arg(super::keeper::ENTRY)
            .arg(&report_path)
            .arg(if watch_terminal { "tty" } else { "-" })
            .arg(std::process::id().to_string())
            .arg(command.get_program())
            .args(command.get_args());
        if clear_env {
            keeper.env_clear();
            keeper.env(RUN_MARK, &mark);
        }
        for (name, value) in command.get_envs() {
            match value {
                Some(value) => keeper.env(name, value),
                None => keeper.env_remove(name),
            };
        }
        if let Some(dir) = command.get_current_dir() {
            keeper.current_dir(dir);
        }
        let child = keeper.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0).spawn();
        match child {
            Ok(child) => Ok(Kept { child, report, mark, finished: false }),
            // A directory that does not exist is the program's problem, said as before.
            Err(err) if command.get_current_dir().is_some_and(|d| !d.is_dir()) => Err(err),
            Err(err) => Err(keeper_failed(&exe.display().to_string(), err)),
        }
    }

    /// Pass `signal` on to the program's group (SIGTERM, SIGINT, SIGHUP or SIGCONT).
    pub fn signal(&self, signal: rustix::process::Signal) {
        if let Some(keeper) = i32::try_from(self.child.id()).ok().and_then(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process(keeper, signal);
        }
    }

    /// Ask the keeper to kill the program and everything it started, now.
    pub fn kill(&self) {
        self.signal(rustix::process::Signal::USR1);
    }

    /// The keeper did not end after [`Kept::kill`]: kill it, and sweep its run in its place
    /// (what it orphaned comes to clutch, marked).
    pub fn force(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// After the keeper has ended: how the program ended. `Err` when it could not be started,
    /// or the keeper ended without saying.
    pub fn finish(mut self) -> std::io::Result<Ended> {
        self.finished = true;
        let keeper_status = self.child.wait().ok();
        // Normally the keeper swept the run; after [`Kept::force`], or if the keeper itself
        // was killed, its orphans came to clutch and carry the run's mark.
        reap(self.child.id(), Some(&self.mark));
        let mut text = String::new();
        {
            use std::io::{Seek as _, SeekFrom};
            let _ = self.report.seek(SeekFrom::Start(0)).and_then(|_| self.report.read_to_string(&mut text));
        }
        use std::os::unix::process::ExitStatusExt as _;
        match super::keeper::Report::decode(&text) {
            Some(super::keeper::Report::NotStarted(errno)) => Err(std::io::Error::from_raw_os_error(errno)),
            Some(super::keeper::Report::Ended(raw)) => Ok(Ended { status: Some(ExitStatus::from_raw(raw)), stopped_for_terminal: false }),
            Some(super::keeper::Report::StoppedForTerminal) => Ok(Ended { status: None, stopped_for_terminal: true }),
            // Killed (by clutch's force, or by anyone) before it could report.
            None if keeper_status.is_some_and(|s| s.signal().is_some()) => Ok(Ended { status: None, stopped_for_terminal: false }),
            None => Err(std::io::Error::other(format!(
                "clutch's keeper ended ({}) without saying how the program did (is /proc mounted?)",
                keeper_status.map_or("unknown status".to_string(), |s| s.to_string())
            ))),
        }
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.child.kill();
            let _ = self.child.wait();
            reap(self.child.id(), Some(&self.mark));
        }
    }
}

/// The variable that marks every process of one agent run: inherited by whatever the agent
/// starts, however it detaches.
pub const RUN_MARK: &str = "AGENT_RUN_MARK";

/// Give `command` a fresh run mark (see [`reap`]) and make clutch the subreaper that will
/// receive whatever it orphans. Returns the mark.
fn mark(command: &mut Command) -> String {
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
pub(super) struct ProcStat {
    pub(super) pid: i32,
    /// `R`, `S`, `D`, `T` (stopped), `Z` (zombie), …
    pub(super) state: String,
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

/// This process, as /proc describes it; None when /proc numbers processes in another pid
/// namespace than ours (a /proc mounted from outside a container), where a pid read there
/// would name another process to kill(2). Its session may be 0: a session led from outside
/// our pid namespace (a container, `unshare --pid --fork`), which getsid(2) reports as 0 too.
fn me() -> Option<ProcStat> {
    stat("self").filter(|me| me.pid == rustix::process::getpid().as_raw_nonzero().get())
}

/// Whether /proc describes processes as this process numbers them (see [`me`]).
pub(super) fn proc_usable() -> bool {
    me().is_some()
}

/// Every child of this process now.
pub(super) fn children() -> Vec<ProcStat> {
    let Some(me) = me() else { return Vec::new() };
    processes().into_iter().filter(|p| p.ppid == me.pid).collect()
}

/// Whether a process of the group `leader` leads is stopped (state `T`): for a group out of
/// the terminal's foreground, the kernel's answer to reading the terminal (SIGTTIN, SIGTTOU).
pub(super) fn group_stopped(leader: u32) -> bool {
    let leader = leader as i32;
    if me().is_none() {
        return false;
    }
    processes().iter().any(|p| p.pgrp == leader && p.state == "T")
}

/// Reap (never wait for) the dead orphans of other sessions: a daemon's middle process that
/// called setsid and exited. clutch's own children (agents, tests, git) never leave its
/// session, so their exit statuses stay theirs to collect.
fn reap_orphaned_zombies() {
    let Some(me) = me() else { return };
    reap_zombies(|c| c.session != me.session);
}

/// Reap (never wait for) the dead children of this process that `which` picks.
pub(super) fn reap_zombies(which: impl Fn(&ProcStat) -> bool) {
    for child in children().into_iter().filter(|c| c.state == "Z" && which(c)) {
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
fn reap(leader: u32, mark: Option<&str>) {
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
            // Whatever its state: a process whose main thread ended shows as a zombie while its
            // other threads run on.
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    reap_orphaned_zombies();
}
